//! `ModelRegistry`: model → providers, one strategy per model, handing out RAII [`Lease`]s.
//!
//! The registry is split in four:
//! - [`selection`] (with `pool.rs` and `sync.rs`): the pure selection core — pools, slots, hosts,
//!   wait queues, rpm windows, candidate filtering, grant/release bookkeeping. It takes `now` and
//!   returns [`Effect`]s; it never reads a clock nor does I/O.
//! - `desk.rs`: the core and its waiters under one short lock, and the [`Chooser`] request
//!   handlers use — without a shared store they choose and release on their own thread (no round
//!   trip to the registry's thread). The desk and this actor are the only places reading the
//!   clock.
//! - this module: the actor. It serves the messages below and performs the effects that need it
//!   (spawned Redis futures, outcome reports to the provider actors on its thread). No handler
//!   awaits I/O, so the mailbox never blocks: a request that must wait gets a oneshot receiver,
//!   completed on a later release (or Redis answer).
//! - `shared.rs`: the Redis protocol side; [`lease`]: the `Lease` and its release inbox.
//!
//! Messages: [`ChooseProvider`] (from HTTP handlers, any worker thread) → [`Choice`]; releases of
//! dropped leases (through the [`ReleaseInbox`]); [`GetStatus`], [`GetProviders`],
//! [`GetKeepAlive`], [`ClaimKeepAlive`]; [`Reload`] (hot reload: the core swaps in the new
//! config, this actor reuses, rebinds or starts provider actors). The core, under the desk's
//! lock, is the only writer of selection state;
//! provider health comes from each provider's [`ProviderSnapshot`], written by its
//! [`ProviderActor`].

mod affinity;
mod desk;
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

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use desk::{After, Desk, ForwardReports};

use crate::config::ModelsConfig;
use crate::health::Breaker;
use crate::provider::{ProviderActor, ProviderSnapshot, Rebind, ReportBatch, ReportOutcome};
use crate::routing::{AffinityConfig, SessionKey};
use crate::store::{epoch_ms, StoreOptions};
use crate::strategies::StrategyKind;

pub use affinity::session_key;
pub use desk::Chooser;
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

pub struct ModelRegistry {
    /// The core, the waiters and the provider actors, under the lock workers choose under.
    desk: Arc<Desk>,
    /// The config the core was built from (what the next reload is compared with).
    config: ModelsConfig,
    /// The breaker settings new provider actors start with.
    breaker: Breaker,
    shared: Option<Shared>,
}

impl ModelRegistry {
    /// Starts the registry and one `ProviderActor` per provider on the current arbiter.
    pub fn start(config: &ModelsConfig, opts: RegistryOptions) -> Addr<ModelRegistry> {
        Self::launch(config, opts).0
    }

    /// [`start`](Self::start), also returning the [`Chooser`] request handlers choose with.
    pub fn launch(config: &ModelsConfig, opts: RegistryOptions) -> (Addr<ModelRegistry>, Chooser) {
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
        let mut providers: Vec<Vec<desk::ActorRef>> = Vec::new();
        for (mi, _, snapshot) in core.snapshots() {
            if providers.len() <= mi {
                providers.resize_with(mi + 1, Vec::new);
            }
            providers[mi].push(Arc::new(
                ProviderActor::new(snapshot.clone(), breaker.clone()).start(),
            ));
        }
        let shared = opts.shared.map(|o| Shared {
            opts: o.store,
            health: o.health,
            store: None,
            connecting: false,
        });
        // Without a shared store every effect of the core is local: workers choose on their
        // own thread under the desk's lock.
        let local = shared.is_none();
        let mut desk = None;
        let registry = ModelRegistry::create(|ctx| {
            let d = Arc::new(Desk::new(core, providers, local, ctx.address()));
            desk = Some(d.clone());
            ModelRegistry {
                desk: d,
                config: config.clone(),
                breaker,
                shared,
            }
        });
        let desk = desk.expect("`create` runs its closure before returning");
        (registry, Chooser::new(desk))
    }

    /// Runs `f` on the core at the current instant, then performs the effects it pushed.
    fn with_core<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Selection, Instant, Alive, &mut Vec<Effect>) -> R,
    ) -> R {
        let mut after = After::default();
        let r = self.desk.run(Instant::now(), &mut after, f);
        self.after(after, ctx);
        r
    }

    /// Does what the core left for after the lock, in order: reports, Redis effects,
    /// placements to share; then drops the leases nobody took.
    fn after(&mut self, after: After, ctx: &mut Context<Self>) {
        for (actor, report) in after.reports {
            actor.do_send(report);
        }
        for e in after.effects {
            match e {
                Effect::Acquire(a) => self.acquire(a, ctx),
                Effect::CountUse { model, provider } => self.count_use(&model, provider),
                Effect::ReleaseToken { provider, token } => {
                    self.release_token(provider, token, ctx)
                }
                Effect::Grant { .. }
                | Effect::Refuse { .. }
                | Effect::Forget { .. }
                | Effect::Report { .. } => {
                    unreachable!("local effects are performed under the lock")
                }
            }
        }
        for (model, provider, key) in after.placements {
            self.share_placement(&model, &provider, key);
        }
        drop(after.dropped);
    }
}

impl Actor for ModelRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.desk.local {
            ctx.run_interval(desk::REPORT_TICK, |act, _| act.forward_reports());
        }
        let Some(sh) = &self.shared else { return };
        let renew = sh.opts.lease_ttl / 3;
        self.sync_shared(ctx);
        ctx.run_interval(SHARED_SYNC, |act, ctx| act.sync_shared(ctx));
        ctx.run_interval(renew.max(Duration::from_millis(50)), |act, ctx| {
            act.renew_leases(false, ctx)
        });
        // Other replicas' releases are not pushed to us: queued requests of shared pools retry.
        ctx.run_interval(SHARED_POLL, |act, ctx| {
            let live = act.desk.lock().core.is_live();
            if live {
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
    /// Sends the reports workers queued to their provider actors (on this thread).
    /// One message per actor: under load a tick carries hundreds of routine successes.
    fn forward_reports(&self) {
        let mut batches: Vec<(desk::ActorRef, Vec<ReportOutcome>)> = Vec::new();
        for (actor, report) in self.desk.take_reports() {
            match batches.iter_mut().find(|(a, _)| Arc::ptr_eq(a, &actor)) {
                Some((_, batch)) => batch.push(report),
                None => batches.push((actor, vec![report])),
            }
        }
        for (actor, batch) in batches {
            actor.do_send(ReportBatch(batch));
        }
    }

    fn choose_now(&mut self, msg: ChooseProvider, ctx: &mut Context<Self>) -> Choice {
        let mut after = After::default();
        let choice = self.desk.choose(msg, &mut after);
        self.after(after, ctx);
        choice
    }
}

impl Handler<Reload> for ModelRegistry {
    type Result = MessageResult<Reload>;

    fn handle(&mut self, msg: Reload, ctx: &mut Context<Self>) -> Self::Result {
        let diff = diff::diff(&self.config, &msg.config);
        let mut after = After::default();
        let mut guard = self.desk.lock();
        let st = &mut *guard;
        let mut fx = Vec::new();
        let waiters = &st.waiters;
        let alive = |id: WaiterId| waiters.get(&id).is_some_and(|tx| !tx.is_closed());
        let origins = st.core.reload(&msg.config, Instant::now(), &alive, &mut fx);
        // Provider actors first: the effects below may name the new indices.
        let old = std::mem::take(&mut st.providers);
        let mut providers = Vec::with_capacity(origins.len());
        for (mi, row) in origins.iter().enumerate() {
            let mut actors = Vec::with_capacity(row.len());
            for (pi, origin) in row.iter().enumerate() {
                let snapshot = st.core.pools[mi].slots[pi].snapshot.clone();
                actors.push(match *origin {
                    Origin::Same(om, op) => old[om][op].clone(),
                    Origin::Carried(om, op) => {
                        let actor = old[om][op].clone();
                        actor.do_send(Rebind { snapshot });
                        actor
                    }
                    Origin::Fresh => {
                        Arc::new(ProviderActor::new(snapshot, self.breaker.clone()).start())
                    }
                });
            }
            providers.push(actors);
        }
        st.providers = providers;
        st.perform(&mut fx, &self.desk, &mut after);
        drop(guard);
        self.after(after, ctx);
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
        let batch = self.desk.inbox.take();
        self.with_core(ctx, |core, now, alive, fx| {
            for r in batch {
                core.release(r, now, alive, fx);
            }
        });
    }
}

impl Handler<ForwardReports> for ModelRegistry {
    type Result = ();

    /// Reports of leases released on worker threads, forwarded from here so their provider
    /// actors (on this thread) are reached without a cross-thread wake-up each.
    fn handle(&mut self, _: ForwardReports, _: &mut Context<Self>) {
        self.forward_reports();
    }
}

impl Handler<ClaimKeepAlive> for ModelRegistry {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, msg: ClaimKeepAlive, _: &mut Context<Self>) -> Self::Result {
        let replica = self.desk.lock().core.replica().map(str::to_string);
        let Some((store, replica)) = self.live_store().zip(replica) else {
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
        let st = self.desk.lock();
        MessageResult(
            st.core
                .snapshots()
                .map(|(m, p, s)| (s.clone(), Addr::clone(&st.providers[m][p])))
                .collect(),
        )
    }
}

impl Handler<GetKeepAlive> for ModelRegistry {
    type Result = MessageResult<GetKeepAlive>;

    fn handle(&mut self, _: GetKeepAlive, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.desk.lock().core.keep_alive())
    }
}

impl Handler<GetStatus> for ModelRegistry {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let st = self.desk.lock();
        let waiters = &st.waiters;
        MessageResult(
            st.core
                .status(&|id| waiters.get(&id).is_some_and(|tx| !tx.is_closed())),
        )
    }
}
