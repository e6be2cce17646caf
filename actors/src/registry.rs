//! `ModelRegistry`: model → providers, one strategy per model, and the RAII [`Lease`].
//!
//! Messages: [`ChooseProvider`] (from HTTP handlers, any worker thread) → [`Choice`];
//! [`Release`] (from a dropped `Lease`, carrying its outcome for the provider actor); [`GetStatus`] (from `/health`). The registry is the only
//! writer of selection state (in-flight, served, the half-open probe slot); provider health comes
//! from each provider's [`ProviderSnapshot`], written by its [`ProviderActor`]. No handler awaits
//! I/O, so the mailbox never blocks: a request that must wait for capacity gets a oneshot receiver
//! and the registry completes it on a later `Release`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::config::{ModelsConfig, ProviderConfig};
use crate::health::Breaker;
use crate::provider::{Outcome, ProviderActor, ProviderSnapshot, ReportOutcome};
use crate::strategies::{Candidate, Strategy, StrategyKind};

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
}

/// Asks for a provider of `model`, skipping `exclude` (provider ids already tried).
#[derive(Message, Debug)]
#[rtype(result = "Choice")]
pub struct ChooseProvider {
    pub model: String,
    pub exclude: Vec<String>,
    pub deadline: Instant,
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

/// Sent by a dropped lease; frees the slot, forwards the outcome to the provider's actor (on the
/// registry's own thread, so a request costs one cross-thread wake-up, not two) and may serve a
/// queued request.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Release {
    model: usize,
    provider: usize,
    report: ReportOutcome,
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

pub struct KeepAliveView {
    pub provider: Arc<ProviderSnapshot>,
    /// When the provider's host last started a request for this provider's model.
    pub last_served: Option<Instant>,
    /// The host is serving another model right now.
    pub busy_other: bool,
}

pub struct ModelStatus {
    pub name: String,
    pub strategy: StrategyKind,
    pub queued: usize,
    pub providers: Vec<Arc<ProviderSnapshot>>,
}

struct Slot {
    snapshot: Arc<ProviderSnapshot>,
    actor: Addr<ProviderActor>,
    in_flight: u32,
    served: u64,
    probing: bool,
    /// Index into the registry's hosts (providers on one `api_host` share a GPU host).
    host: usize,
    /// In-flight cap: `max_concurrency`, else the strategy's default (1 for first_available*).
    capacity: Option<u32>,
}

/// What a host (scheme + authority of `api_host`) is doing, across all models.
#[derive(Debug, Default)]
struct Host {
    /// In-flight requests per model index.
    in_flight: HashMap<usize, u32>,
    /// The model it served last and when (the request started).
    last: Option<(usize, Instant)>,
}

impl Host {
    fn busy_with_other(&self, model: usize) -> bool {
        self.in_flight.iter().any(|(m, n)| *m != model && *n > 0)
    }
}

/// Host key of an `api_host`: scheme and authority, without path.
fn host_key(api_host: &str) -> String {
    let (scheme, rest) = api_host.split_once("://").unwrap_or(("http", api_host));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

struct Waiter {
    exclude: Vec<String>,
    deadline: Instant,
    tx: oneshot::Sender<Result<Lease, ChooseError>>,
}

struct Pool {
    name: String,
    slots: Vec<Slot>,
    strategy: Strategy,
    waiters: VecDeque<Waiter>,
}

enum Eligibility {
    Lease(usize, bool),
    Exhausted,
    Unhealthy(Vec<String>),
    RateLimited(Duration),
    Full,
}

impl Pool {
    /// Filters candidates (exclusions, health, `Retry-After`, capacity, priority tier) and asks
    /// the strategy.
    fn select(
        &mut self,
        model: usize,
        hosts: &[Host],
        exclude: &[String],
        now: Instant,
    ) -> Eligibility {
        let mut any_untried = false;
        let mut unhealthy = Vec::new();
        let mut limited: Option<Instant> = None;
        let mut limited_count = 0;
        let mut best_tier = u32::MAX;
        let mut cands: Vec<(u32, Candidate, bool)> = Vec::with_capacity(self.slots.len());
        for (i, s) in self.slots.iter().enumerate() {
            let cfg = &s.snapshot.config;
            if exclude.contains(&cfg.id) {
                continue;
            }
            any_untried = true;
            let probe = match s.snapshot.open_until() {
                None => false,
                Some(until) if now >= until && !s.probing => true,
                Some(_) => {
                    unhealthy.push(cfg.id.clone());
                    continue;
                }
            };
            if let Some(until) = s.snapshot.rate_limited_until(now) {
                limited = Some(limited.map_or(until, |l: Instant| l.min(until)));
                limited_count += 1;
                continue;
            }
            if s.capacity.is_some_and(|max| s.in_flight >= max) {
                continue;
            }
            best_tier = best_tier.min(cfg.priority);
            let host = &hosts[s.host];
            cands.push((
                cfg.priority,
                Candidate {
                    index: i,
                    in_flight: s.in_flight,
                    served: s.served,
                    weight: cfg.weight,
                    latency: s.snapshot.latency().map(|d| d.as_secs_f64()),
                    error_rate: s.snapshot.error_rate(now),
                    warm: host.last.is_some_and(|(m, _)| m == model),
                    busy_other: host.busy_with_other(model),
                },
                probe,
            ));
        }
        if !any_untried {
            return Eligibility::Exhausted;
        }
        if cands.is_empty() {
            let untried = self
                .slots
                .iter()
                .filter(|s| !exclude.contains(&s.snapshot.config.id))
                .count();
            return if untried > unhealthy.len() + limited_count {
                Eligibility::Full
            } else if let (Some(until), true) = (limited, limited_count > 0) {
                Eligibility::RateLimited(until.saturating_duration_since(now))
            } else {
                Eligibility::Unhealthy(unhealthy)
            };
        }
        let tier: Vec<Candidate> = cands
            .iter()
            .filter(|(p, _, _)| *p == best_tier)
            .map(|(_, c, _)| *c)
            .collect();
        let index = self.strategy.pick(&tier, now);
        let probe = cands.iter().any(|(_, c, probe)| c.index == index && *probe);
        Eligibility::Lease(index, probe)
    }
}

pub struct ModelRegistry {
    pools: Vec<Pool>,
    by_name: HashMap<String, usize>,
    hosts: Vec<Host>,
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
        let mut host_ids: HashMap<String, usize> = HashMap::new();
        let pools = config
            .models
            .iter()
            .enumerate()
            .map(|(mi, m)| {
                let name: Arc<str> = m.name.as_str().into();
                let slots = m
                    .providers
                    .iter()
                    .map(|p| {
                        let snapshot = Arc::new(ProviderSnapshot::new(p.clone(), name.clone()));
                        let actor = ProviderActor::new(snapshot.clone(), breaker.clone()).start();
                        let next = host_ids.len();
                        let host = *host_ids.entry(host_key(&p.api_host)).or_insert(next);
                        Slot {
                            snapshot,
                            actor,
                            in_flight: 0,
                            served: 0,
                            probing: false,
                            host,
                            capacity: p.max_concurrency.or(kind.default_capacity()),
                        }
                    })
                    .collect::<Vec<_>>();
                Pool {
                    name: m.name.clone(),
                    strategy: Strategy::new(kind, slots.len(), 0x9e37_79b9 ^ mi as u64),
                    slots,
                    waiters: VecDeque::new(),
                }
            })
            .collect::<Vec<_>>();
        let hosts = (0..host_ids.len()).map(|_| Host::default()).collect();
        let by_name = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        ModelRegistry {
            pools,
            by_name,
            hosts,
        }
        .start()
    }

    fn grant(&mut self, model: usize, index: usize, probe: bool, me: Addr<ModelRegistry>) -> Lease {
        let slot = &mut self.pools[model].slots[index];
        slot.in_flight += 1;
        slot.served += 1;
        slot.probing |= probe;
        slot.snapshot.set_selection(slot.in_flight, slot.served);
        let host = &mut self.hosts[slot.host];
        *host.in_flight.entry(model).or_insert(0) += 1;
        host.last = Some((model, Instant::now()));
        Lease {
            registry: me,
            snapshot: slot.snapshot.clone(),
            model,
            provider: index,
            probe,
            started: Instant::now(),
            first_byte: None,
            outcome: Outcome::Cancelled,
            retry_after: None,
        }
    }

    /// Maps a pool's verdict for a request of `model` to an answer (`Full` excluded).
    fn refusal(&self, model: usize, e: Eligibility) -> ChooseError {
        let name = self.pools[model].name.clone();
        match e {
            Eligibility::Exhausted => ChooseError::Exhausted { model: name },
            Eligibility::Unhealthy(unhealthy) => ChooseError::NoHealthyProvider {
                model: name,
                unhealthy,
            },
            Eligibility::RateLimited(retry_after) => ChooseError::RateLimited {
                model: name,
                retry_after,
            },
            Eligibility::Full | Eligibility::Lease(..) => ChooseError::AllBusy { model: name },
        }
    }

    /// Serves queued requests of `model` in arrival order while capacity allows.
    fn serve_waiters(&mut self, model: usize, me: &Addr<ModelRegistry>) {
        let now = Instant::now();
        while let Some(w) = self.pools[model].waiters.pop_front() {
            if w.tx.is_closed() || now >= w.deadline {
                continue;
            }
            match self.pools[model].select(model, &self.hosts, &w.exclude, now) {
                Eligibility::Full => {
                    self.pools[model].waiters.push_front(w);
                    return;
                }
                Eligibility::Lease(index, probe) => {
                    let lease = self.grant(model, index, probe, me.clone());
                    // If the waiter just gave up, the lease comes back and its Drop releases it.
                    let _ = w.tx.send(Ok(lease));
                }
                other => {
                    let _ = w.tx.send(Err(self.refusal(model, other)));
                }
            }
        }
    }
}

impl Actor for ModelRegistry {
    type Context = Context<Self>;
}

impl Handler<ChooseProvider> for ModelRegistry {
    type Result = MessageResult<ChooseProvider>;

    fn handle(&mut self, msg: ChooseProvider, ctx: &mut Context<Self>) -> Self::Result {
        let Some(&model) = self.by_name.get(&msg.model) else {
            return MessageResult(Choice::Ready(Err(ChooseError::UnknownModel {
                model: msg.model,
                available: self.pools.iter().map(|p| p.name.clone()).collect(),
            })));
        };
        let now = Instant::now();
        let pool = &mut self.pools[model];
        let answer = match pool.select(model, &self.hosts, &msg.exclude, now) {
            Eligibility::Lease(index, probe) => Ok(self.grant(model, index, probe, ctx.address())),
            Eligibility::Full if now >= msg.deadline => {
                Err(ChooseError::AllBusy { model: msg.model })
            }
            Eligibility::Full => {
                let (tx, rx) = oneshot::channel();
                pool.waiters.push_back(Waiter {
                    exclude: msg.exclude,
                    deadline: msg.deadline,
                    tx,
                });
                return MessageResult(Choice::Queued(rx, msg.deadline, msg.model));
            }
            other => Err(self.refusal(model, other)),
        };
        MessageResult(Choice::Ready(answer))
    }
}

impl Handler<Release> for ModelRegistry {
    type Result = ();

    fn handle(&mut self, msg: Release, ctx: &mut Context<Self>) {
        let slot = &mut self.pools[msg.model].slots[msg.provider];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if let Some(n) = self.hosts[slot.host].in_flight.get_mut(&msg.model) {
            *n = n.saturating_sub(1);
        }
        if msg.report.probe {
            slot.probing = false;
        }
        slot.actor.do_send(msg.report);
        slot.snapshot.set_selection(slot.in_flight, slot.served);
        if !self.pools[msg.model].waiters.is_empty() {
            self.serve_waiters(msg.model, &ctx.address());
        }
    }
}

impl Handler<GetProviders> for ModelRegistry {
    type Result = MessageResult<GetProviders>;

    fn handle(&mut self, _: GetProviders, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.pools
                .iter()
                .flat_map(|p| {
                    p.slots
                        .iter()
                        .map(|s| (s.snapshot.clone(), s.actor.clone()))
                })
                .collect(),
        )
    }
}

impl Handler<GetKeepAlive> for ModelRegistry {
    type Result = MessageResult<GetKeepAlive>;

    fn handle(&mut self, _: GetKeepAlive, _: &mut Context<Self>) -> Self::Result {
        let mut out = Vec::new();
        for (mi, pool) in self.pools.iter().enumerate() {
            for slot in pool
                .slots
                .iter()
                .filter(|s| s.snapshot.config.keep_alive.is_some())
            {
                let host = &self.hosts[slot.host];
                out.push(KeepAliveView {
                    provider: slot.snapshot.clone(),
                    last_served: host.last.filter(|(m, _)| *m == mi).map(|(_, t)| t),
                    busy_other: host.busy_with_other(mi),
                });
            }
        }
        MessageResult(out)
    }
}

impl Handler<GetStatus> for ModelRegistry {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.pools
                .iter()
                .map(|p| ModelStatus {
                    name: p.name.clone(),
                    strategy: p.strategy.kind(),
                    queued: p.waiters.iter().filter(|w| !w.tx.is_closed()).count(),
                    providers: p.slots.iter().map(|s| s.snapshot.clone()).collect(),
                })
                .collect(),
        )
    }
}

/// A held provider slot. Dropping it releases the slot exactly once and reports the outcome
/// (default: `Cancelled`, i.e. the client went away, which never counts against the provider).
/// Move it into the response body so a client disconnect drops it.
pub struct Lease {
    registry: Addr<ModelRegistry>,
    snapshot: Arc<ProviderSnapshot>,
    model: usize,
    provider: usize,
    probe: bool,
    started: Instant,
    first_byte: Option<Instant>,
    outcome: Outcome,
    retry_after: Option<Duration>,
}

impl Lease {
    /// The provider answered 429 with `Retry-After`: it is skipped for that long.
    pub fn set_retry_after(&mut self, wait: Duration) {
        self.retry_after = Some(wait);
    }

    pub fn provider(&self) -> &ProviderConfig {
        &self.snapshot.config
    }

    pub fn snapshot(&self) -> &Arc<ProviderSnapshot> {
        &self.snapshot
    }

    /// Public name of the leased model.
    pub fn model(&self) -> &str {
        &self.snapshot.model
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Marks the first response byte from the provider (time to first token).
    pub fn first_byte(&mut self, now: Instant) {
        self.first_byte.get_or_insert(now);
    }

    pub fn ttft(&self) -> Option<Duration> {
        self.first_byte
            .map(|t| t.saturating_duration_since(self.started))
    }

    /// Records how the call ended; the last call before drop wins.
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = outcome;
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let now = Instant::now();
        self.registry.do_send(Release {
            model: self.model,
            provider: self.provider,
            report: ReportOutcome {
                outcome: self.outcome,
                latency: now.saturating_duration_since(self.started),
                ttft: self.ttft(),
                probe: self.probe,
                retry_after: self.retry_after,
                at: now,
            },
        });
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("provider", &self.snapshot.config.id)
            .field("model", &self.snapshot.model)
            .field("probe", &self.probe)
            .finish()
    }
}
