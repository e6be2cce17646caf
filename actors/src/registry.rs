//! `ModelRegistry`: model → providers, one strategy per model, and the RAII [`Lease`].
//!
//! Messages: [`ChooseProvider`] (from HTTP handlers, any worker thread) → [`Choice`];
//! [`Release`] (from a dropped `Lease`, carrying its outcome for the provider actor); [`GetStatus`] (from `/health`). The registry is the only
//! writer of selection state (in-flight, served, the half-open probe slot); provider health comes
//! from each provider's [`ProviderSnapshot`], written by its [`ProviderActor`]. No handler awaits
//! I/O, so the mailbox never blocks: a request that must wait for capacity gets a oneshot receiver
//! and the registry completes it on a later `Release`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::config::{ModelsConfig, ProviderConfig};
use crate::health::Breaker;
use crate::provider::{Outcome, ProviderActor, ProviderSnapshot, ReportOutcome};
use crate::store::{epoch_ms, Store, StoreOptions};
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
    /// Shared state in Redis (leases of capacity-limited providers, usage, circuits).
    pub shared: Option<SharedOptions>,
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

/// How long a provider found fully held by other replicas is not asked again.
const REMOTE_BUSY_BACKOFF: Duration = Duration::from_millis(50);
/// How often queued requests of shared pools retry (other replicas' releases are not pushed).
const SHARED_POLL: Duration = Duration::from_millis(25);
/// How often usage, circuits and Redis' liveness are synchronised.
const SHARED_SYNC: Duration = Duration::from_millis(500);

/// The registry's side of the shared store.
struct Shared {
    opts: StoreOptions,
    health: Arc<SharedHealth>,
    store: Option<Store>,
    connecting: bool,
    up: bool,
    replica: String,
    next_token: u64,
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

/// Left by a dropped lease in the registry's [`ReleaseInbox`]; frees the slot, forwards the
/// outcome to the provider's actor (on the registry's own thread) and may serve a queued request.
#[derive(Debug)]
pub struct Release {
    model: usize,
    provider: usize,
    report: ReportOutcome,
    token: Option<String>,
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
    /// Redis lease tokens held by this replica for this provider.
    tokens: Vec<String>,
    /// Tokens released here whose removal Redis has not confirmed yet.
    released: Vec<String>,
    /// Start times of this replica's requests in the last minute (for `rpm`).
    recent: VecDeque<Instant>,
    /// Every slot is held by other replicas (as of a failed acquire): not asked until then.
    remote_busy_until: Option<Instant>,
    /// Another replica saw this provider's circuit open until then.
    remote_open_until: Option<Instant>,
    /// Requests started on this provider by all replicas (from Redis), for tie-breaking.
    global_served: Option<u64>,
    /// The open-until this replica last published.
    published_open: Option<Instant>,
}

/// What a host (scheme + authority of `api_host`) is doing, across all models.
#[derive(Debug, Default)]
struct Host {
    key: String,
    /// In-flight requests per model index.
    in_flight: HashMap<usize, u32>,
    /// The model it served last and when (the request started).
    last: Option<(usize, Instant)>,
    /// With Redis: models other replicas are serving on this host now.
    remote_busy: Vec<usize>,
    /// With Redis: the latest model served here by any replica, and when.
    remote_last: Option<(usize, Instant)>,
    /// The `last` this replica published.
    published_last: Option<Instant>,
}

impl Host {
    fn busy_with_other(&self, model: usize) -> bool {
        self.in_flight.iter().any(|(m, n)| *m != model && *n > 0)
            || self.remote_busy.iter().any(|m| *m != model)
    }

    /// The latest model served here, by this replica or (with Redis) any other.
    fn latest(&self) -> Option<(usize, Instant)> {
        match (self.last, self.remote_last) {
            (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// With `rpm` requests started in the last minute, when the oldest leaves the window.
fn rpm_full_until(recent: &VecDeque<Instant>, rpm: u32, now: Instant) -> Option<Instant> {
    let in_window = recent
        .iter()
        .filter(|t| now.saturating_duration_since(**t) < MINUTE)
        .count();
    if in_window < rpm as usize {
        return None;
    }
    recent
        .iter()
        .find(|t| now.saturating_duration_since(**t) < MINUTE)
        .map(|oldest| *oldest + MINUTE)
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
            if s.remote_open_until.is_some_and(|t| t > now) && !probe {
                unhealthy.push(cfg.id.clone());
                continue;
            }
            if s.remote_busy_until.is_some_and(|t| t > now) {
                continue;
            }
            let rpm_until = cfg.rpm.and_then(|rpm| rpm_full_until(&s.recent, rpm, now));
            if let Some(until) = s.snapshot.rate_limited_until(now).or(rpm_until) {
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
                    served: s.global_served.unwrap_or(s.served).max(s.served),
                    weight: cfg.weight,
                    latency: s.snapshot.latency().map(|d| d.as_secs_f64()),
                    error_rate: s.snapshot.error_rate(now),
                    warm: host.latest().is_some_and(|(m, _)| m == model),
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
    shared: Option<Shared>,
    inbox: Arc<ReleaseInbox>,
}

/// Releases of dropped leases waiting for the registry. A dropping lease wakes the registry only
/// when the inbox was empty, so under load one wake-up drains many releases (a cross-thread
/// wake-up costs more than the release itself).
#[derive(Default)]
pub struct ReleaseInbox(std::sync::Mutex<Vec<Release>>);

/// Tells the registry the inbox has releases.
#[derive(Message)]
#[rtype(result = "()")]
struct DrainReleases;

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
                            tokens: Vec::new(),
                            released: Vec::new(),
                            recent: VecDeque::new(),
                            remote_busy_until: None,
                            remote_open_until: None,
                            global_served: None,
                            published_open: None,
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
        let mut hosts: Vec<Host> = (0..host_ids.len()).map(|_| Host::default()).collect();
        for (key, i) in host_ids {
            hosts[i].key = key;
        }
        let by_name = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        let shared = opts.shared.map(|o| Shared {
            opts: o.store,
            health: o.health,
            store: None,
            connecting: false,
            up: false,
            replica: format!("{}-{:x}", std::process::id(), epoch_ms()),
            next_token: 0,
        });
        ModelRegistry {
            pools,
            by_name,
            hosts,
            shared,
            inbox: Arc::new(ReleaseInbox::default()),
        }
        .start()
    }

    /// The store, when configured and reachable.
    fn live_store(&self) -> Option<Store> {
        self.shared
            .as_ref()
            .filter(|s| s.up)
            .and_then(|s| s.store.clone())
    }

    /// Whether leasing this provider must go through the shared store.
    fn needs_shared(&self, model: usize, index: usize) -> bool {
        self.pools[model].slots[index].capacity.is_some() && self.live_store().is_some()
    }

    fn mark_down(&mut self, why: &dyn std::fmt::Display) {
        if let Some(sh) = self.shared.as_mut() {
            if sh.up {
                tracing::warn!("shared state (Redis) unreachable: {why}; serving on local state");
            }
            sh.up = false;
            sh.health.up.store(false, Relaxed);
        }
    }

    /// Finds a provider for a request that may have to wait: grants (through Redis when the
    /// provider's capacity is shared), queues, or refuses — answering on `tx`.
    fn place(&mut self, model: usize, w: Waiter, ctx: &mut Context<Self>) -> Option<Waiter> {
        let now = Instant::now();
        if w.tx.is_closed() {
            return None;
        }
        match self.pools[model].select(model, &self.hosts, &w.exclude, now) {
            Eligibility::Lease(index, probe) if self.needs_shared(model, index) => {
                self.acquire_shared(model, index, probe, w, ctx);
                None
            }
            Eligibility::Lease(index, probe) => {
                let lease = self.grant(model, index, probe, ctx.address());
                // If the waiter just gave up, the lease comes back and its Drop releases it.
                let _ = w.tx.send(Ok(lease));
                None
            }
            Eligibility::Full if now >= w.deadline => {
                let name = self.pools[model].name.clone();
                let _ = w.tx.send(Err(ChooseError::AllBusy { model: name }));
                None
            }
            Eligibility::Full => Some(w),
            other => {
                let _ = w.tx.send(Err(self.refusal(model, other)));
                None
            }
        }
    }

    /// Takes a slot of `index` in Redis (atomically across replicas), then grants it. The slot is
    /// reserved locally meanwhile, so this replica does not hand it out twice.
    fn acquire_shared(
        &mut self,
        model: usize,
        index: usize,
        probe: bool,
        w: Waiter,
        ctx: &mut Context<Self>,
    ) {
        let Some(store) = self.live_store() else {
            return;
        };
        let sh = self.shared.as_mut().expect("live store implies shared");
        sh.next_token += 1;
        let token = format!("{}:{}", sh.replica, sh.next_token);
        let slot = &mut self.pools[model].slots[index];
        slot.in_flight += 1;
        let cap = slot.capacity.unwrap_or(1);
        let id = slot.snapshot.config.id.clone();
        let released = slot.released.clone();
        let t = token.clone();
        let fut = async move { store.acquire(&id, &t, cap, &released).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let slot = &mut act.pools[model].slots[index];
            slot.in_flight = slot.in_flight.saturating_sub(1);
            match res {
                Ok(true) => {
                    let mut lease = act.grant(model, index, probe, ctx.address());
                    lease.token = Some(token.clone());
                    act.pools[model].slots[index].tokens.push(token);
                    let _ = w.tx.send(Ok(lease));
                }
                Ok(false) => {
                    // Held by other replicas: look again (another provider, or wait).
                    act.pools[model].slots[index].remote_busy_until =
                        Some(Instant::now() + REMOTE_BUSY_BACKOFF);
                    if let Some(w) = act.place(model, w, ctx) {
                        act.pools[model].waiters.push_back(w);
                    }
                }
                Err(e) => {
                    act.mark_down(&e);
                    let lease = act.grant(model, index, probe, ctx.address());
                    let _ = w.tx.send(Ok(lease));
                }
            }
        }));
    }

    /// Connects, checks liveness, publishes and reads shared verdicts; runs every `SHARED_SYNC`.
    fn sync_shared(&mut self, ctx: &mut Context<Self>) {
        let Some(sh) = self.shared.as_mut() else {
            return;
        };
        let Some(store) = sh.store.clone() else {
            if !sh.connecting {
                sh.connecting = true;
                let opts = sh.opts.clone();
                ctx.spawn(
                    async move { Store::connect(&opts).await }
                        .into_actor(self)
                        .map(|res, act, ctx| {
                            let Some(sh) = act.shared.as_mut() else {
                                return;
                            };
                            sh.connecting = false;
                            match res {
                                Ok(store) => {
                                    sh.store = Some(store);
                                    act.sync_shared(ctx);
                                }
                                Err(e) => act.mark_down(&e),
                            }
                        }),
                );
            }
            return;
        };
        let was_up = sh.up;
        let ids: Vec<String> = self
            .pools
            .iter()
            .flat_map(|p| p.slots.iter().map(|s| s.snapshot.config.id.clone()))
            .collect();
        let models: Vec<String> = self.pools.iter().map(|p| p.name.clone()).collect();
        // Circuits this replica saw open and has not published yet.
        let now = Instant::now();
        let now_ms = epoch_ms();
        let mut publish = Vec::new();
        for slot in self.pools.iter_mut().flat_map(|p| p.slots.iter_mut()) {
            if let Some(until) = slot.snapshot.open_until().filter(|u| *u > now) {
                if slot.published_open != Some(until) {
                    slot.published_open = Some(until);
                    let left = until - now;
                    publish.push((
                        slot.snapshot.config.id.clone(),
                        now_ms + left.as_millis() as u64,
                        left,
                    ));
                }
            }
        }
        // This replica's occupancy per host, and hosts whose last-served changed.
        let replica = sh.replica.clone();
        let mut occupancy = Vec::with_capacity(self.hosts.len());
        let mut lasts = Vec::new();
        for h in self.hosts.iter_mut() {
            let mine: Vec<(String, u32)> = h
                .in_flight
                .iter()
                .map(|(m, n)| (models[*m].clone(), *n))
                .collect();
            occupancy.push((h.key.clone(), mine));
            if let Some((m, at)) = h.last.filter(|(_, at)| Some(*at) != h.published_last) {
                h.published_last = Some(at);
                let age = now.saturating_duration_since(at).as_millis() as u64;
                lasts.push((h.key.clone(), models[m].clone(), now_ms.saturating_sub(age)));
            }
        }
        let host_keys: Vec<String> = self.hosts.iter().map(|h| h.key.clone()).collect();
        let me = replica.clone();
        let fut = async move {
            store.ping().await?;
            for (id, until, left) in &publish {
                store.publish_open(id, *until, *left).await?;
            }
            let circuits = store.open_circuits(&ids).await?;
            let mut usage = Vec::with_capacity(models.len());
            for m in &models {
                usage.push(store.usage(m).await?);
            }
            let mut busy = Vec::with_capacity(occupancy.len());
            for (host, mine) in &occupancy {
                busy.push(store.exchange_occupancy(host, &me, mine).await?);
            }
            for (host, model, at) in &lasts {
                store.publish_last(host, model, *at).await?;
            }
            let last = store.last_served(&host_keys).await?;
            Ok::<_, redis::RedisError>((circuits, usage, busy, last, models))
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok((circuits, usage, busy, last, models)) => {
                let index_of = |name: &str| models.iter().position(|m| m == name);
                let now = Instant::now();
                let now_ms = epoch_ms();
                for (h, (others, latest)) in act.hosts.iter_mut().zip(busy.into_iter().zip(last)) {
                    h.remote_busy = others
                        .iter()
                        .filter(|(r, _, n)| *r != replica && *n > 0)
                        .filter_map(|(_, m, _)| index_of(m))
                        .collect();
                    h.remote_last = latest.and_then(|(at, m)| {
                        let age = Duration::from_millis(now_ms.saturating_sub(at));
                        Some((index_of(&m)?, now.checked_sub(age)?))
                    });
                }
                if !was_up {
                    tracing::info!("shared state (Redis) reachable; synchronising");
                }
                if let Some(sh) = act.shared.as_mut() {
                    sh.up = true;
                    sh.health.up.store(true, Relaxed);
                }
                if !was_up {
                    // Re-establish the leases held while Redis was away.
                    act.renew_leases(true, ctx);
                }
                let now = Instant::now();
                let now_ms = epoch_ms();
                let mut i = 0;
                for (mi, pool) in act.pools.iter_mut().enumerate() {
                    for slot in pool.slots.iter_mut() {
                        slot.remote_open_until = circuits
                            .get(i)
                            .copied()
                            .flatten()
                            .filter(|u| *u > now_ms)
                            .map(|u| now + Duration::from_millis(u - now_ms));
                        i += 1;
                        slot.global_served = usage
                            .get(mi)
                            .and_then(|u| u.get(&slot.snapshot.config.id))
                            .copied();
                    }
                }
            }
            Err(e) => act.mark_down(&e),
        }));
    }

    /// Extends every lease this replica holds; with `readd`, re-adds those Redis lost.
    fn renew_leases(&mut self, readd: bool, ctx: &mut Context<Self>) {
        let Some(store) = self.live_store() else {
            return;
        };
        let leases: Vec<(String, String)> = self
            .pools
            .iter()
            .flat_map(|p| p.slots.iter())
            .flat_map(|s| {
                s.tokens
                    .iter()
                    .map(|t| (s.snapshot.config.id.clone(), t.clone()))
            })
            .collect();
        if leases.is_empty() {
            return;
        }
        ctx.spawn(
            async move { store.renew(&leases, readd).await }
                .into_actor(self)
                .map(|res, act, _| {
                    if let Err(e) = res {
                        act.mark_down(&e);
                    }
                }),
        );
    }

    fn grant(&mut self, model: usize, index: usize, probe: bool, me: Addr<ModelRegistry>) -> Lease {
        let slot = &mut self.pools[model].slots[index];
        slot.in_flight += 1;
        slot.served += 1;
        slot.probing |= probe;
        slot.snapshot.set_selection(slot.in_flight, slot.served);
        if slot.snapshot.config.rpm.is_some() {
            let now = Instant::now();
            while slot
                .recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
            {
                slot.recent.pop_front();
            }
            slot.recent.push_back(now);
        }
        let snapshot = slot.snapshot.clone();
        let host = &mut self.hosts[slot.host];
        *host.in_flight.entry(model).or_insert(0) += 1;
        host.last = Some((model, Instant::now()));
        if let Some(store) = self.live_store() {
            let (m, p) = (snapshot.model.to_string(), snapshot.config.id.clone());
            actix::spawn(async move {
                let _ = store.count_use(&m, &p).await;
            });
        }
        Lease {
            registry: me,
            inbox: self.inbox.clone(),
            snapshot,
            model,
            provider: index,
            probe,
            started: Instant::now(),
            first_byte: None,
            outcome: Outcome::Cancelled,
            retry_after: None,
            token: None,
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
    fn serve_waiters(&mut self, model: usize, ctx: &mut Context<Self>) {
        while let Some(w) = self.pools[model].waiters.pop_front() {
            if w.tx.is_closed() || Instant::now() >= w.deadline {
                continue;
            }
            if let Some(w) = self.place(model, w, ctx) {
                self.pools[model].waiters.push_front(w);
                return;
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
            if act.live_store().is_none() {
                return;
            }
            for m in 0..act.pools.len() {
                if !act.pools[m].waiters.is_empty() {
                    act.serve_waiters(m, ctx);
                }
            }
        });
    }
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
        let answer = match self.pools[model].select(model, &self.hosts, &msg.exclude, now) {
            Eligibility::Lease(index, probe) if !self.needs_shared(model, index) => {
                Ok(self.grant(model, index, probe, ctx.address()))
            }
            Eligibility::Full if now >= msg.deadline => {
                Err(ChooseError::AllBusy { model: msg.model })
            }
            e @ (Eligibility::Lease(..) | Eligibility::Full) => {
                let (tx, rx) = oneshot::channel();
                let w = Waiter {
                    exclude: msg.exclude,
                    deadline: msg.deadline,
                    tx,
                };
                match e {
                    Eligibility::Lease(index, probe) => {
                        self.acquire_shared(model, index, probe, w, ctx)
                    }
                    _ => self.pools[model].waiters.push_back(w),
                }
                return MessageResult(Choice::Queued(rx, msg.deadline, msg.model));
            }
            other => Err(self.refusal(model, other)),
        };
        MessageResult(Choice::Ready(answer))
    }
}

impl Handler<DrainReleases> for ModelRegistry {
    type Result = ();

    fn handle(&mut self, _: DrainReleases, ctx: &mut Context<Self>) {
        let batch = std::mem::take(&mut *self.inbox.0.lock().unwrap_or_else(|e| e.into_inner()));
        for r in batch {
            self.release(r, ctx);
        }
    }
}

impl ModelRegistry {
    fn release(&mut self, msg: Release, ctx: &mut Context<Self>) {
        let slot = &mut self.pools[msg.model].slots[msg.provider];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if let Some(token) = msg.token {
            slot.tokens.retain(|t| *t != token);
            let id = slot.snapshot.config.id.clone();
            if let Some(store) = self.shared.as_ref().and_then(|s| s.store.clone()) {
                // Until Redis confirms, the next acquire of this provider removes the token
                // itself (futures are not polled in a guaranteed order). A failed release
                // expires with its TTL.
                slot.released.push(token.clone());
                let (model, provider) = (msg.model, msg.provider);
                ctx.spawn(
                    async move {
                        let _ = store.release(&id, &token).await;
                        token
                    }
                    .into_actor(self)
                    .map(move |token, act, _| {
                        act.pools[model].slots[provider]
                            .released
                            .retain(|t| *t != token);
                    }),
                );
            }
        }
        let slot = &mut self.pools[msg.model].slots[msg.provider];
        if let Some(n) = self.hosts[slot.host].in_flight.get_mut(&msg.model) {
            *n = n.saturating_sub(1);
        }
        if msg.report.probe {
            slot.probing = false;
        }
        slot.actor.do_send(msg.report);
        slot.snapshot.set_selection(slot.in_flight, slot.served);
        if !self.pools[msg.model].waiters.is_empty() {
            self.serve_waiters(msg.model, ctx);
        }
    }
}

/// Asks whether this replica should send the next keep-warm ping of `provider` (with Redis, one
/// replica per window; without it, always yes).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ClaimKeepAlive {
    pub provider: String,
    pub hold: Duration,
}

impl Handler<ClaimKeepAlive> for ModelRegistry {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, msg: ClaimKeepAlive, _: &mut Context<Self>) -> Self::Result {
        let Some((store, replica)) = self
            .live_store()
            .zip(self.shared.as_ref().map(|s| s.replica.clone()))
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
                    last_served: host.latest().filter(|(m, _)| *m == mi).map(|(_, t)| t),
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
    inbox: Arc<ReleaseInbox>,
    snapshot: Arc<ProviderSnapshot>,
    model: usize,
    provider: usize,
    probe: bool,
    started: Instant,
    first_byte: Option<Instant>,
    outcome: Outcome,
    retry_after: Option<Duration>,
    /// The Redis lease behind this one, when the provider's capacity is shared.
    token: Option<String>,
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
        let release = Release {
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
            token: self.token.take(),
        };
        let was_empty = {
            let mut q = self.inbox.0.lock().unwrap_or_else(|e| e.into_inner());
            q.push(release);
            q.len() == 1
        };
        if was_empty {
            self.registry.do_send(DrainReleases);
        }
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

#[cfg(test)]
mod rpm_tests {
    use super::*;

    #[test]
    fn the_window_fills_and_frees_as_requests_age() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let recent: VecDeque<Instant> = [at(0), at(10), at(20)].into_iter().collect();
        assert_eq!(rpm_full_until(&recent, 4, at(30)), None);
        assert_eq!(rpm_full_until(&recent, 3, at(30)), Some(at(60)));
        // The first one left the window at 60 s: room again.
        assert_eq!(rpm_full_until(&recent, 3, at(61)), None);
        assert_eq!(rpm_full_until(&recent, 2, at(61)), Some(at(70)));
    }
}
