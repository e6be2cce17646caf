//! `ModelRegistry`: model → providers, one strategy per model, handing out RAII [`Lease`]s.
//!
//! The registry is split in three:
//! - [`selection`] (with `pool.rs` and `sync.rs`): the pure selection core — pools, slots, hosts,
//!   wait queues, rpm windows, candidate filtering, grant/release bookkeeping. It takes `now` and
//!   returns [`Effect`]s; it never reads a clock nor does I/O.
//! - this module: the actor. It is the only place that reads the clock, routes messages to the
//!   core and performs its effects (oneshot answers, `do_send` to provider actors, spawned Redis
//!   futures). No handler awaits I/O, so the mailbox never blocks: a request that must wait gets
//!   a oneshot receiver, completed on a later release (or Redis answer).
//! - `shared.rs`: the Redis protocol side; [`lease`]: the `Lease` and its release inbox.
//!
//! Messages: [`ChooseProvider`] (from HTTP handlers, any worker thread) → [`Choice`]; releases of
//! dropped leases (through the [`ReleaseInbox`]); [`GetStatus`], [`GetProviders`],
//! [`GetKeepAlive`], [`ClaimKeepAlive`]; [`Reload`] (hot reload: the core swaps in the new
//! config, this actor reuses, rebinds or starts provider actors). The registry is the only
//! writer of selection state;
//! provider health comes from each provider's [`ProviderSnapshot`], written by its
//! [`ProviderActor`].

mod affinity;
pub mod diff;
mod lease;
mod pool;
pub mod selection;
mod shared;
pub mod sync;

#[cfg(test)]
mod affinity_tests;
#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod selection_tests;
#[cfg(test)]
mod shared_tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::config::ModelsConfig;
use crate::health::Breaker;
use crate::provider::{ProviderActor, ProviderSnapshot, Rebind};
use crate::routing::{AffinityConfig, SessionKey};
use crate::store::{epoch_ms, StoreOptions};
use crate::strategies::StrategyKind;

pub use affinity::session_key;
pub use diff::ConfigDiff;
pub use lease::{Lease, Release, ReleaseInbox};
pub use selection::{Alive, Decision, Effect, Grant, Origin, Selection, WaiterId};

use lease::DrainReleases;
use shared::{Shared, SHARED_POLL, SHARED_SYNC};

/// Why no provider could be leased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChooseError {
    UnknownModel {
        model: String,
        available: Vec<String>,
    },
    /// Every provider is excluded (already tried by this request).
    Exhausted { model: String },
    /// Every provider not yet tried has its circuit open.
    NoHealthyProvider {
        model: String,
        unhealthy: Vec<String>,
    },
    /// Providers are healthy but all at capacity until the request's deadline.
    AllBusy { model: String },
    /// Every provider not yet tried asked (429 + `Retry-After`) not to be called yet.
    RateLimited {
        model: String,
        retry_after: Duration,
    },
}

#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    pub strategy: Option<StrategyKind>,
    /// Consecutive failures that open a provider's circuit.
    pub breaker_threshold: Option<u32>,
    pub breaker_cooldown: Option<Duration>,
    /// Shared state in Redis (leases of capacity-limited providers, usage, circuits).
    pub shared: Option<SharedOptions>,
    /// Cache affinity (`LLM_ROUTER_CACHE_AFFINITY`), when on.
    pub affinity: Option<AffinityConfig>,
}

#[derive(Clone, Debug)]
pub struct SharedOptions {
    pub store: StoreOptions,
    /// Written by the registry, read by `/health` and metrics.
    pub health: Arc<SharedHealth>,
}

/// Whether the shared store is reachable (false until the first successful connection).
#[derive(Debug, Default)]
pub struct SharedHealth {
    up: AtomicBool,
}

impl SharedHealth {
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }
}

/// Asks for a provider of `model`, skipping `exclude` (provider ids already tried); `session`:
/// the request's cache-affinity key, if it has one.
#[derive(Message, Debug)]
#[rtype(result = "Choice")]
pub struct ChooseProvider {
    pub model: String,
    pub exclude: Vec<String>,
    pub deadline: Instant,
    pub session: Option<SessionKey>,
}

/// The registry's answer: a lease now, or a place in the model's queue.
pub enum Choice {
    Ready(Result<Lease, ChooseError>),
    Queued(
        oneshot::Receiver<Result<Lease, ChooseError>>,
        Instant,
        String,
    ),
}

impl Choice {
    /// Resolves the answer, waiting in the queue until the deadline if needed.
    pub async fn resolve(self) -> Result<Lease, ChooseError> {
        match self {
            Choice::Ready(r) => r,
            Choice::Queued(rx, deadline, model) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(wait, rx).await {
                    Ok(Ok(r)) => r,
                    _ => Err(ChooseError::AllBusy { model }),
                }
            }
        }
    }
}

/// Status of every model and provider, for `/health`.
#[derive(Message)]
#[rtype(result = "Vec<ModelStatus>")]
pub struct GetStatus;

/// Every provider's snapshot and actor (for the `ProviderMonitor`).
#[derive(Message)]
#[rtype(result = "Vec<(Arc<ProviderSnapshot>, Addr<ProviderActor>)>")]
pub struct GetProviders;

/// Providers with `keep_alive`, with when their host last served their model (for the
/// `KeepAliveMonitor`).
#[derive(Message)]
#[rtype(result = "Vec<KeepAliveView>")]
pub struct GetKeepAlive;

#[derive(Debug)]
pub struct KeepAliveView {
    pub provider: Arc<ProviderSnapshot>,
    /// When the provider's host last started a request for this provider's model.
    pub last_served: Option<Instant>,
    /// The host is serving another model right now.
    pub busy_other: bool,
}

#[derive(Debug)]
pub struct ModelStatus {
    pub name: String,
    pub strategy: StrategyKind,
    pub queued: usize,
    pub providers: Vec<Arc<ProviderSnapshot>>,
}

/// Asks whether this replica should send the next keep-warm ping of `provider` (with Redis, one
/// replica per window; without it, always yes).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ClaimKeepAlive {
    pub provider: String,
    pub hold: Duration,
}

/// Swaps in a new, already validated models config (hot reload). New choices see it at once;
/// leases in flight finish on the providers they hold; removed providers drain; providers whose
/// `id` and `api_host` are unchanged keep their health and latency state.
#[derive(Message)]
#[rtype(result = "ReloadSummary")]
pub struct Reload {
    pub config: ModelsConfig,
}

/// What a [`Reload`] changed.
#[derive(Debug)]
pub struct ReloadSummary {
    pub diff: ConfigDiff,
    /// Models now served (the catch-all counted).
    pub models: usize,
    pub providers: usize,
}

type Answer = oneshot::Sender<Result<Lease, ChooseError>>;

pub struct ModelRegistry {
    core: Selection,
    /// The config the core was built from (what the next reload is compared with).
    config: ModelsConfig,
    /// The breaker settings new provider actors start with.
    breaker: Breaker,
    /// Provider actors, by model then provider index.
    providers: Vec<Vec<Addr<ProviderActor>>>,
    /// Where queued requests' answers go.
    waiters: HashMap<WaiterId, Answer>,
    shared: Option<Shared>,
    inbox: Arc<ReleaseInbox>,
    /// The effects buffer, reused between messages.
    fx: Vec<Effect>,
}

impl ModelRegistry {
    /// Starts the registry and one `ProviderActor` per provider on the current arbiter.
    pub fn start(config: &ModelsConfig, opts: RegistryOptions) -> Addr<ModelRegistry> {
        let kind = opts.strategy.unwrap_or(StrategyKind::Balanced);
        let breaker = Breaker::new(
            opts.breaker_threshold.unwrap_or(3),
            opts.breaker_cooldown.unwrap_or(Duration::from_secs(5)),
            Duration::from_secs(60),
        );
        let replica = opts
            .shared
            .as_ref()
            .map(|_| format!("{}-{:x}", std::process::id(), epoch_ms()));
        let mut core = Selection::new(config, kind, replica);
        core.set_affinity(opts.affinity);
        let mut providers: Vec<Vec<Addr<ProviderActor>>> = Vec::new();
        for (mi, _, snapshot) in core.snapshots() {
            if providers.len() <= mi {
                providers.resize_with(mi + 1, Vec::new);
            }
            providers[mi].push(ProviderActor::new(snapshot.clone(), breaker.clone()).start());
        }
        let shared = opts.shared.map(|o| Shared {
            opts: o.store,
            health: o.health,
            store: None,
            connecting: false,
        });
        ModelRegistry {
            core,
            config: config.clone(),
            breaker,
            providers,
            waiters: HashMap::new(),
            shared,
            inbox: Arc::new(ReleaseInbox::default()),
            fx: Vec::new(),
        }
        .start()
    }

    /// Runs `f` on the core at the current instant, then performs the effects it pushed.
    fn with_core<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Selection, Instant, Alive, &mut Vec<Effect>) -> R,
    ) -> R {
        let now = Instant::now();
        let mut fx = std::mem::take(&mut self.fx);
        let waiters = &self.waiters;
        let alive = |id: WaiterId| waiters.get(&id).is_some_and(|tx| !tx.is_closed());
        let r = f(&mut self.core, now, &alive, &mut fx);
        self.perform(&mut fx, ctx);
        self.fx = fx;
        r
    }

    fn lease(&self, grant: Grant, ctx: &Context<Self>) -> Lease {
        if let Some((key, _)) = grant.affinity {
            // Keyed by the name asked for (the catch-all model serves many), as it is read.
            let model = grant.alias.as_deref().unwrap_or(&grant.snapshot.model);
            self.share_placement(model, &grant.snapshot.config.id, key);
        }
        Lease::new(ctx.address(), self.inbox.clone(), grant)
    }

    /// Does what the core asked, in order.
    fn perform(&mut self, fx: &mut Vec<Effect>, ctx: &mut Context<Self>) {
        for e in fx.drain(..) {
            match e {
                Effect::Grant { waiter, grant } => {
                    let lease = self.lease(grant, ctx);
                    // A waiter that just gave up hands the lease back; its Drop releases it.
                    if let Some(tx) = self.waiters.remove(&waiter) {
                        let _ = tx.send(Ok(lease));
                    }
                }
                Effect::Refuse { waiter, error } => {
                    if let Some(tx) = self.waiters.remove(&waiter) {
                        let _ = tx.send(Err(error));
                    }
                }
                Effect::Forget { waiter } => {
                    self.waiters.remove(&waiter);
                }
                Effect::Acquire(a) => self.acquire(a, ctx),
                Effect::CountUse { model, provider } => self.count_use(&model, provider),
                Effect::ReleaseToken { provider, token } => {
                    self.release_token(provider, token, ctx)
                }
                Effect::Report {
                    model,
                    provider,
                    report,
                } => self.providers[model][provider].do_send(report),
            }
        }
    }
}

impl Actor for ModelRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(sh) = &self.shared else { return };
        let renew = sh.opts.lease_ttl / 3;
        self.sync_shared(ctx);
        ctx.run_interval(SHARED_SYNC, |act, ctx| act.sync_shared(ctx));
        ctx.run_interval(renew.max(Duration::from_millis(50)), |act, ctx| {
            act.renew_leases(false, ctx)
        });
        // Other replicas' releases are not pushed to us: queued requests of shared pools retry.
        ctx.run_interval(SHARED_POLL, |act, ctx| {
            if act.core.is_live() {
                act.with_core(ctx, |core, now, alive, fx| {
                    core.serve_queues(now, alive, fx)
                });
            }
        });
    }
}

impl Handler<ChooseProvider> for ModelRegistry {
    type Result = ActorResponse<Self, Choice>;

    fn handle(&mut self, msg: ChooseProvider, ctx: &mut Context<Self>) -> Self::Result {
        match self.choose_with_shared_session(msg) {
            Ok(waiting) => waiting,
            Err(msg) => ActorResponse::reply(self.choose_now(msg, ctx)),
        }
    }
}

impl ModelRegistry {
    fn choose_now(&mut self, msg: ChooseProvider, ctx: &mut Context<Self>) -> Choice {
        let mut fx = std::mem::take(&mut self.fx);
        let decision = self.core.choose(
            &msg.model,
            msg.exclude,
            msg.session,
            msg.deadline,
            Instant::now(),
            &mut fx,
        );
        let choice = match decision {
            Decision::Granted(grant) => Choice::Ready(Ok(self.lease(grant, ctx))),
            Decision::Refused(e) => Choice::Ready(Err(e)),
            Decision::Queued(id) => {
                // Registered before the effects run, so any answer finds its channel.
                let (tx, rx) = oneshot::channel();
                self.waiters.insert(id, tx);
                Choice::Queued(rx, msg.deadline, msg.model)
            }
        };
        self.perform(&mut fx, ctx);
        self.fx = fx;
        choice
    }
}

impl Handler<Reload> for ModelRegistry {
    type Result = MessageResult<Reload>;

    fn handle(&mut self, msg: Reload, ctx: &mut Context<Self>) -> Self::Result {
        let diff = diff::diff(&self.config, &msg.config);
        let mut fx = std::mem::take(&mut self.fx);
        let waiters = &self.waiters;
        let alive = |id: WaiterId| waiters.get(&id).is_some_and(|tx| !tx.is_closed());
        let origins = self
            .core
            .reload(&msg.config, Instant::now(), &alive, &mut fx);
        // Provider actors first: the effects below may name the new indices.
        let old = std::mem::take(&mut self.providers);
        let mut providers = Vec::with_capacity(origins.len());
        for (mi, row) in origins.iter().enumerate() {
            let mut actors = Vec::with_capacity(row.len());
            for (pi, origin) in row.iter().enumerate() {
                let snapshot = self.core.pools[mi].slots[pi].snapshot.clone();
                actors.push(match *origin {
                    Origin::Same(om, op) => old[om][op].clone(),
                    Origin::Carried(om, op) => {
                        let actor = old[om][op].clone();
                        actor.do_send(Rebind { snapshot });
                        actor
                    }
                    Origin::Fresh => ProviderActor::new(snapshot, self.breaker.clone()).start(),
                });
            }
            providers.push(actors);
        }
        self.providers = providers;
        self.perform(&mut fx, ctx);
        self.fx = fx;
        self.config = msg.config;
        MessageResult(ReloadSummary {
            diff,
            models: self.config.all().count(),
            providers: self.config.all().map(|m| m.providers.len()).sum(),
        })
    }
}

impl Handler<DrainReleases> for ModelRegistry {
    type Result = ();

    fn handle(&mut self, _: DrainReleases, ctx: &mut Context<Self>) {
        let batch = self.inbox.take();
        self.with_core(ctx, |core, now, alive, fx| {
            for r in batch {
                core.release(r, now, alive, fx);
            }
        });
    }
}

impl Handler<ClaimKeepAlive> for ModelRegistry {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, msg: ClaimKeepAlive, _: &mut Context<Self>) -> Self::Result {
        let Some((store, replica)) = self
            .live_store()
            .zip(self.core.replica().map(str::to_string))
        else {
            return Box::pin(actix::fut::ready(true));
        };
        // A spawned-style future: the mailbox keeps being served meanwhile.
        Box::pin(
            async move {
                store
                    .claim_keepalive(&msg.provider, &replica, msg.hold)
                    .await
            }
            .into_actor(self)
            .map(|res, act, _| match res {
                Ok(claimed) => claimed,
                Err(e) => {
                    act.mark_down(&e);
                    true
                }
            }),
        )
    }
}

impl Handler<GetProviders> for ModelRegistry {
    type Result = MessageResult<GetProviders>;

    fn handle(&mut self, _: GetProviders, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.core
                .snapshots()
                .map(|(m, p, s)| (s.clone(), self.providers[m][p].clone()))
                .collect(),
        )
    }
}

impl Handler<GetKeepAlive> for ModelRegistry {
    type Result = MessageResult<GetKeepAlive>;

    fn handle(&mut self, _: GetKeepAlive, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.keep_alive())
    }
}

impl Handler<GetStatus> for ModelRegistry {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let waiters = &self.waiters;
        MessageResult(
            self.core
                .status(&|id| waiters.get(&id).is_some_and(|tx| !tx.is_closed())),
        )
    }
}
