//! The registry's selection core: every model's [`Pool`], the hosts, the wait queues, the rpm
//! windows and the bookkeeping of grants, releases and Redis tokens — as a plain `Send` value.
//!
//! Its operations take `now` (and `now_ms`, epoch milliseconds, where Redis is involved) and
//! never read a clock nor do I/O: they change the state and push [`Effect`]s — what the caller
//! must do (hand a lease to a waiter, refuse one, run a Redis acquire, count usage, release a
//! token, forward an outcome to a provider actor). [`ModelRegistry`](super::ModelRegistry) is the
//! caller that reads the clock and performs them; a waiter is an id the caller maps to its answer
//! channel, and `alive` tells the core whether that channel still has a receiver.
//!
//! Invariants: a slot's `in_flight` counts granted leases plus Redis acquires in flight (the slot
//! is reserved locally meanwhile, so it is never handed out twice); every [`Grant`] is balanced
//! by exactly one [`release`](Selection::release); queues are served in arrival order. A
//! [`reload`](Selection::reload) starts a new generation: indices in grants, releases and
//! acquires are those of their generation, mapped to the current slots (or to nothing, for a
//! provider that is gone) when they come back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{ModelsConfig, ProviderConfig, WILDCARD};
use crate::provider::{Outcome, ProviderSnapshot, ReportOutcome};
use crate::routing::{AffinityConfig, Placement, SessionKey};
use crate::strategies::{Strategy, StrategyKind};

use super::lease::Release;
use super::pool::{host_key, Eligibility, Host, Pool, Slot, Waiter};
use super::{ChooseError, KeepAliveView, ModelStatus};

mod reload;
pub use reload::Origin;

/// How long a provider found fully held by other replicas is not asked again.
pub const REMOTE_BUSY_BACKOFF: Duration = Duration::from_millis(50);

/// Identifies a queued request; the caller maps it to where the answer goes.
pub type WaiterId = u64;

/// Whether a waiter still wants its answer (its receiver is alive).
pub type Alive<'a> = &'a dyn Fn(WaiterId) -> bool;

/// A granted provider slot: the caller wraps it in a [`Lease`](super::Lease).
#[derive(Debug)]
pub struct Grant {
    /// The registry generation whose indices `model` and `provider` are (see [`Selection::reload`]).
    pub generation: u64,
    pub model: usize,
    pub provider: usize,
    /// The requested model name, when the catch-all model serves it.
    pub alias: Option<Arc<str>>,
    /// The lease is the single half-open probe.
    pub probe: bool,
    pub snapshot: Arc<ProviderSnapshot>,
    pub started: Instant,
    /// The Redis lease behind this one, when the provider's capacity is shared.
    pub token: Option<String>,
    /// Placed by cache affinity: the session and how.
    pub affinity: Option<(SessionKey, Placement)>,
}

impl Grant {
    /// The release of this grant ending with `outcome` at `now` (no TTFT, no `Retry-After`).
    pub fn release(self, outcome: Outcome, now: Instant) -> Release {
        Release {
            generation: self.generation,
            model: self.model,
            provider: self.provider,
            report: ReportOutcome {
                outcome,
                latency: now.saturating_duration_since(self.started),
                ttft: None,
                probe: self.probe,
                retry_after: None,
                at: now,
            },
            token: self.token,
        }
    }
}

/// A Redis acquire to run: take one of `cap` slots of `provider` for `token`, removing the
/// `released` tokens in the same atomic step; then hand the struct back to
/// [`Selection::acquired`] with the result.
#[derive(Debug)]
pub struct Acquire {
    pub provider: String,
    pub token: String,
    /// The provider's in-flight cap, when capped (a Redis lease is then held).
    pub cap: Option<u32>,
    /// The provider's `rpm` and window, when set (a start in the shared window is taken).
    pub rpm: Option<(u32, Duration)>,
    pub released: Vec<String>,
    waiter: Waiter,
    generation: u64,
    model: usize,
    index: usize,
    probe: bool,
    affinity: Option<(SessionKey, Placement)>,
}

impl Acquire {
    pub fn waiter(&self) -> WaiterId {
        self.waiter.id
    }
}

/// How a Redis acquire ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    Taken,
    /// Every slot is held by other replicas.
    HeldElsewhere,
    /// The provider's shared `rpm` window is full for this long.
    RateLimited(Duration),
    /// Redis failed: the core serves on local state.
    StoreDown,
}

/// What the caller must do, in order.
#[derive(Debug)]
pub enum Effect {
    /// Answer the waiter with a lease of this grant.
    Grant {
        waiter: WaiterId,
        grant: Grant,
    },
    Refuse {
        waiter: WaiterId,
        error: ChooseError,
    },
    /// The waiter left the queue unanswered (gone, or past its deadline): drop its channel.
    Forget {
        waiter: WaiterId,
    },
    Acquire(Acquire),
    /// Count a started request in Redis' usage hash.
    CountUse {
        model: Arc<str>,
        provider: String,
    },
    /// Remove `token` from `provider`'s Redis leases, then call
    /// [`Selection::token_released`].
    ReleaseToken {
        provider: String,
        token: String,
    },
    /// Forward a finished lease's outcome to the provider's actor.
    Report {
        model: usize,
        provider: usize,
        report: ReportOutcome,
    },
}

/// The answer to a choice.
#[derive(Debug)]
pub enum Decision {
    Granted(Grant),
    Refused(ChooseError),
    /// Queued (or waiting for a Redis acquire): answered later by an [`Effect`] naming it.
    Queued(WaiterId),
}

/// The core's side of the shared store.
#[derive(Debug)]
struct SharedState {
    replica: String,
    next_token: u64,
    /// A connection exists (it may be failing).
    connected: bool,
    /// Reachable as of the last sync: leases of capacity-limited providers go through it.
    up: bool,
}

pub struct Selection {
    pub(super) pools: Vec<Pool>,
    by_name: crate::FastMap<String, usize>,
    /// The pool of the catch-all model (`*`), serving names no other model has.
    wildcard: Option<usize>,
    pub(super) hosts: Vec<Host>,
    shared: Option<SharedState>,
    next_waiter: WaiterId,
    kind: StrategyKind,
    /// Bumped by every reload; grants, releases and acquires name the generation of their indices.
    generation: u64,
    /// Grants and Redis acquires of the current generation not yet released.
    outstanding: u64,
    /// Older generations with leases still out: where their slots are now.
    old: crate::FastMap<u64, OldGeneration>,
    /// `(provider, token)` Redis leases of removed providers' leases still out: renewed until
    /// they are released, so the capacity stays reserved while their streams finish.
    draining: Vec<(String, String)>,
    /// Cache affinity, when on (see `affinity.rs`).
    pub(super) affinity: Option<AffinityConfig>,
}

/// Where the slots of an older generation went, while its leases are out.
#[derive(Debug)]
struct OldGeneration {
    outstanding: u64,
    /// `[model][provider]` of that generation → now.
    slots: Vec<Vec<Dest>>,
    /// Model index of that generation → now.
    models: Vec<Option<usize>>,
}

/// Where an older slot is now.
#[derive(Clone, Debug, PartialEq)]
enum Dest {
    At(usize, usize),
    /// Removed (or replaced by another endpoint): its leases drain, their releases only give
    /// back the Redis token.
    Gone(String),
}

impl Selection {
    /// One pool per model with strategy `kind`; `replica` (with Redis) names this replica's
    /// tokens.
    pub fn new(config: &ModelsConfig, kind: StrategyKind, replica: Option<String>) -> Selection {
        let mut core = Selection {
            pools: Vec::new(),
            by_name: crate::FastMap::default(),
            wildcard: None,
            hosts: Vec::new(),
            shared: replica.map(|replica| SharedState {
                replica,
                next_token: 0,
                connected: false,
                up: false,
            }),
            next_waiter: 0,
            kind,
            generation: 0,
            outstanding: 0,
            old: crate::FastMap::default(),
            draining: Vec::new(),
            affinity: None,
        };
        let (pools, hosts) = core.build(config, &mut |_, _| None);
        core.install(pools, hosts);
        core
    }

    /// Pools and hosts for `config`; `reuse` may supply a provider's slot (state carried over).
    fn build(
        &self,
        config: &ModelsConfig,
        reuse: &mut dyn FnMut(&Arc<str>, &ProviderConfig) -> Option<Slot>,
    ) -> (Vec<Pool>, Vec<Host>) {
        let kind = self.kind;
        let mut host_ids: HashMap<String, usize> = HashMap::new();
        let pools: Vec<Pool> = config
            .all()
            .enumerate()
            .map(|(mi, m)| {
                let name: Arc<str> = m.name.as_str().into();
                let slots: Vec<Slot> = m
                    .providers
                    .iter()
                    .map(|p| {
                        let next = host_ids.len();
                        let host = *host_ids.entry(host_key(&p.api_host)).or_insert(next);
                        let capacity = p.max_concurrency.or(kind.default_capacity());
                        match reuse(&name, p) {
                            Some(mut slot) => {
                                slot.host = host;
                                slot.capacity = capacity;
                                slot
                            }
                            None => Slot::new(
                                Arc::new(ProviderSnapshot::new(p.clone(), name.clone())),
                                host,
                                capacity,
                            ),
                        }
                    })
                    .collect();
                let mut pool = Pool {
                    name: m.name.clone(),
                    strategy: Strategy::new(kind, slots.len(), 0x9e37_79b9 ^ mi as u64),
                    slots,
                    waiters: Default::default(),
                    scratch: Default::default(),
                    affinity: None,
                };
                pool.affinity = pool.affinity_for(self.affinity.as_ref());
                pool
            })
            .collect();
        let mut hosts: Vec<Host> = (0..host_ids.len()).map(|_| Host::default()).collect();
        for (key, i) in host_ids {
            hosts[i].key = key;
        }
        (pools, hosts)
    }

    fn install(&mut self, pools: Vec<Pool>, hosts: Vec<Host>) {
        self.by_name = pools
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name != WILDCARD)
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        self.wildcard = pools.iter().position(|p| p.name == WILDCARD);
        self.pools = pools;
        self.hosts = hosts;
    }

    /// The generation grants are made in now.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every provider's snapshot with its (model, provider) indices, in config order.
    pub fn snapshots(&self) -> impl Iterator<Item = (usize, usize, &Arc<ProviderSnapshot>)> {
        self.pools.iter().enumerate().flat_map(|(mi, p)| {
            p.slots
                .iter()
                .enumerate()
                .map(move |(pi, s)| (mi, pi, &s.snapshot))
        })
    }

    pub fn replica(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| s.replica.as_str())
    }

    /// The shared store is connected and reachable: capacity goes through it.
    pub fn is_live(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.connected && s.up)
    }

    /// A connection to the shared store now exists.
    pub fn set_connected(&mut self) {
        if let Some(s) = self.shared.as_mut() {
            s.connected = true;
        }
    }

    /// Redis answered (`true`) or failed (`false`).
    pub fn set_up(&mut self, up: bool) {
        if let Some(s) = self.shared.as_mut() {
            s.up = up && s.connected;
        }
    }

    pub fn is_up(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.up)
    }

    /// The pool serving `model` (its own, else the catch-all).
    pub(super) fn pool_of(&self, model: &str) -> Option<usize> {
        self.by_name.get(model).copied().or(self.wildcard)
    }

    /// Asks for a provider of `model`, skipping `exclude`: granted now, refused, or queued until
    /// `deadline`. With a `session` and cache affinity on, the session is placed among the
    /// eligible providers instead of the strategy's pick.
    pub fn choose(
        &mut self,
        model: &str,
        exclude: Vec<String>,
        session: Option<SessionKey>,
        deadline: Instant,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Decision {
        let Some(m) = self.pool_of(model) else {
            return Decision::Refused(ChooseError::UnknownModel {
                model: model.to_string(),
                available: self.pools.iter().map(|p| p.name.clone()).collect(),
            });
        };
        let alias: Option<Arc<str>> = (Some(m) == self.wildcard).then(|| model.into());
        match self.pools[m].select(m, &self.hosts, &exclude, session, now) {
            Eligibility::Lease(index, probe, placed) if !self.needs_shared(m, index) => {
                Decision::Granted(self.grant(m, index, probe, None, alias, placed, now, fx))
            }
            Eligibility::Full if now >= deadline => Decision::Refused(ChooseError::AllBusy {
                model: model.to_string(),
            }),
            e @ (Eligibility::Lease(..) | Eligibility::Full) => {
                self.next_waiter += 1;
                let w = Waiter {
                    id: self.next_waiter,
                    exclude,
                    deadline,
                    alias,
                    session,
                };
                let id = w.id;
                match e {
                    Eligibility::Lease(index, probe, placed) => {
                        self.acquire_shared(m, index, probe, placed, w, fx)
                    }
                    _ => self.pools[m].waiters.push_back(w),
                }
                Decision::Queued(id)
            }
            other => Decision::Refused(self.refusal(m, other)),
        }
    }

    /// A lease ended: frees its slot, forwards its outcome, releases its Redis token and serves
    /// the model's queue.
    pub fn release(&mut self, mut r: Release, now: Instant, alive: Alive, fx: &mut Vec<Effect>) {
        let connected = self.shared.as_ref().is_some_and(|s| s.connected);
        match self.settle(r.generation, r.model, r.provider) {
            Dest::At(m, p) => (r.model, r.provider) = (m, p),
            Dest::Gone(provider) => {
                // A drained provider: nothing here counts it any more but Redis.
                if let Some(token) = r.token {
                    self.draining.retain(|(_, t)| *t != token);
                    if connected && !provider.is_empty() {
                        fx.push(Effect::ReleaseToken { provider, token });
                    }
                }
                return;
            }
        }
        let slot = &mut self.pools[r.model].slots[r.provider];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if let Some(token) = r.token {
            slot.tokens.retain(|t| *t != token);
            if connected {
                // Until Redis confirms, the next acquire of this provider removes the token
                // itself (the caller's futures are not polled in a guaranteed order). A failed
                // release expires with its TTL.
                slot.released.push(token.clone());
                fx.push(Effect::ReleaseToken {
                    provider: slot.snapshot.config.id.clone(),
                    token,
                });
            }
        }
        if let Some(n) = self.hosts[slot.host].in_flight.get_mut(&r.model) {
            *n = n.saturating_sub(1);
        }
        if r.report.probe {
            slot.probing = false;
        }
        slot.snapshot.set_selection(slot.in_flight, slot.served);
        fx.push(Effect::Report {
            model: r.model,
            provider: r.provider,
            report: r.report,
        });
        if !self.pools[r.model].waiters.is_empty() {
            self.serve_waiters(r.model, now, alive, fx);
        }
    }

    /// Redis confirmed the removal of a released token of `provider`.
    pub fn token_released(&mut self, provider: &str, token: &str) {
        for slot in self
            .pools
            .iter_mut()
            .flat_map(|p| p.slots.iter_mut())
            .filter(|s| s.snapshot.config.id == provider)
        {
            slot.released.retain(|t| t != token);
        }
    }

    /// A Redis acquire ended: grants, or (held elsewhere) backs the provider off and looks again.
    pub fn acquired(
        &mut self,
        acq: Acquire,
        result: Acquired,
        now: Instant,
        alive: Alive,
        fx: &mut Vec<Effect>,
    ) {
        let Acquire {
            token,
            waiter,
            generation,
            model,
            index,
            probe,
            provider,
            affinity,
            ..
        } = acq;
        let model_now = self.model_now(generation, model);
        let (model, index) = match self.settle(generation, model, index) {
            Dest::At(m, p) => (m, p),
            Dest::Gone(_) => {
                // The provider left while Redis answered: give its slot back, queue again.
                if result == Acquired::Taken {
                    fx.push(Effect::ReleaseToken { provider, token });
                }
                match model_now {
                    Some(m) => {
                        if let Some(w) = self.place(m, waiter, now, alive, fx) {
                            self.pools[m].waiters.push_back(w);
                        }
                    }
                    None => fx.push(Effect::Refuse {
                        waiter: waiter.id,
                        error: ChooseError::Exhausted {
                            model: String::from("(removed by a reload)"),
                        },
                    }),
                }
                return;
            }
        };
        let slot = &mut self.pools[model].slots[index];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        match result {
            Acquired::Taken => {
                let alias = waiter.alias.clone();
                // Only a capped provider holds a lease; an rpm start needs no release.
                let held = slot.capacity.is_some().then(|| token.clone());
                let grant = self.grant(model, index, probe, held, alias, affinity, now, fx);
                if grant.token.is_some() {
                    self.pools[model].slots[index].tokens.push(token);
                }
                fx.push(Effect::Grant {
                    waiter: waiter.id,
                    grant,
                });
            }
            Acquired::HeldElsewhere => {
                slot.remote_busy_until = Some(now + REMOTE_BUSY_BACKOFF);
                if let Some(w) = self.place(model, waiter, now, alive, fx) {
                    self.pools[model].waiters.push_back(w);
                }
            }
            Acquired::RateLimited(wait) => {
                // All replicas together used the provider's rpm: limited here too until then.
                slot.remote_rpm_until = Some(now + wait);
                if let Some(w) = self.place(model, waiter, now, alive, fx) {
                    self.pools[model].waiters.push_back(w);
                }
            }
            Acquired::StoreDown => {
                self.set_up(false);
                let alias = waiter.alias.clone();
                let grant = self.grant(model, index, probe, None, alias, affinity, now, fx);
                fx.push(Effect::Grant {
                    waiter: waiter.id,
                    grant,
                });
            }
        }
    }

    /// Retries every queue (other replicas' releases are not pushed to this one).
    pub fn serve_queues(&mut self, now: Instant, alive: Alive, fx: &mut Vec<Effect>) {
        for m in 0..self.pools.len() {
            if !self.pools[m].waiters.is_empty() {
                self.serve_waiters(m, now, alive, fx);
            }
        }
    }

    /// Every `(provider, token)` Redis lease this replica holds.
    pub fn held_tokens(&self) -> Vec<(String, String)> {
        self.pools
            .iter()
            .flat_map(|p| p.slots.iter())
            .flat_map(|s| {
                s.tokens
                    .iter()
                    .map(|t| (s.snapshot.config.id.clone(), t.clone()))
            })
            .chain(self.draining.iter().cloned())
            .collect()
    }

    /// Status of every model (queued counts only live waiters).
    pub fn status(&self, alive: Alive) -> Vec<ModelStatus> {
        self.pools
            .iter()
            .map(|p| ModelStatus {
                name: p.name.clone(),
                strategy: p.strategy.kind(),
                queued: p.waiters.iter().filter(|w| alive(w.id)).count(),
                providers: p.slots.iter().map(|s| s.snapshot.clone()).collect(),
            })
            .collect()
    }

    /// Providers with `keep_alive`, with what their host last served.
    pub fn keep_alive(&self) -> Vec<KeepAliveView> {
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
        out
    }

    /// Whether leasing this provider must go through the shared store (a capped provider's
    /// slots, an `rpm` provider's window).
    fn needs_shared(&self, model: usize, index: usize) -> bool {
        let slot = &self.pools[model].slots[index];
        (slot.capacity.is_some() || slot.snapshot.config.rpm.is_some()) && self.is_live()
    }

    #[allow(clippy::too_many_arguments)]
    fn grant(
        &mut self,
        model: usize,
        index: usize,
        probe: bool,
        token: Option<String>,
        alias: Option<Arc<str>>,
        affinity: Option<(SessionKey, Placement)>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Grant {
        let live = self.is_live();
        self.outstanding += 1;
        let slot = &mut self.pools[model].slots[index];
        slot.in_flight += 1;
        slot.served += 1;
        slot.probing |= probe;
        slot.snapshot.set_selection(slot.in_flight, slot.served);
        slot.record_start(now);
        let host = &mut self.hosts[slot.host];
        *host.in_flight.entry(model).or_insert(0) += 1;
        host.last = Some((model, now));
        if live {
            fx.push(Effect::CountUse {
                model: slot.snapshot.model.clone(),
                provider: slot.snapshot.config.id.clone(),
            });
        }
        Grant {
            generation: self.generation,
            model,
            provider: index,
            alias,
            probe,
            snapshot: slot.snapshot.clone(),
            started: now,
            token,
            affinity,
        }
    }

    /// Reserves a slot of `index` locally and asks for it in Redis.
    fn acquire_shared(
        &mut self,
        model: usize,
        index: usize,
        probe: bool,
        affinity: Option<(SessionKey, Placement)>,
        waiter: Waiter,
        fx: &mut Vec<Effect>,
    ) {
        let live = self.is_live();
        let Some(sh) = self.shared.as_mut().filter(|_| live) else {
            fx.push(Effect::Forget { waiter: waiter.id });
            return;
        };
        sh.next_token += 1;
        let token = format!("{}:{}", sh.replica, sh.next_token);
        // The reservation counts as a lease of this generation until Redis answers.
        self.outstanding += 1;
        let slot = &mut self.pools[model].slots[index];
        slot.in_flight += 1;
        fx.push(Effect::Acquire(Acquire {
            provider: slot.snapshot.config.id.clone(),
            token,
            cap: slot.capacity,
            rpm: (slot.snapshot.config.rpm).map(|n| (n, slot.snapshot.config.rpm_window)),
            released: slot.released.clone(),
            waiter,
            generation: self.generation,
            model,
            index,
            probe,
            affinity,
        }));
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

    /// Finds a provider for a waiting request: grants (through Redis when the provider's
    /// capacity is shared), refuses, or hands the waiter back (still full).
    fn place(
        &mut self,
        model: usize,
        w: Waiter,
        now: Instant,
        alive: Alive,
        fx: &mut Vec<Effect>,
    ) -> Option<Waiter> {
        if !alive(w.id) {
            fx.push(Effect::Forget { waiter: w.id });
            return None;
        }
        match self.pools[model].select(model, &self.hosts, &w.exclude, w.session, now) {
            Eligibility::Lease(index, probe, placed) if self.needs_shared(model, index) => {
                self.acquire_shared(model, index, probe, placed, w, fx);
                None
            }
            Eligibility::Lease(index, probe, placed) => {
                let alias = w.alias.clone();
                let grant = self.grant(model, index, probe, None, alias, placed, now, fx);
                fx.push(Effect::Grant {
                    waiter: w.id,
                    grant,
                });
                None
            }
            Eligibility::Full if now >= w.deadline => {
                let name = self.pools[model].name.clone();
                fx.push(Effect::Refuse {
                    waiter: w.id,
                    error: ChooseError::AllBusy { model: name },
                });
                None
            }
            Eligibility::Full => Some(w),
            other => {
                fx.push(Effect::Refuse {
                    waiter: w.id,
                    error: self.refusal(model, other),
                });
                None
            }
        }
    }

    /// Serves queued requests of `model` in arrival order while capacity allows.
    fn serve_waiters(&mut self, model: usize, now: Instant, alive: Alive, fx: &mut Vec<Effect>) {
        while let Some(w) = self.pools[model].waiters.pop_front() {
            if !alive(w.id) || now >= w.deadline {
                fx.push(Effect::Forget { waiter: w.id });
                continue;
            }
            if let Some(w) = self.place(model, w, now, alive, fx) {
                self.pools[model].waiters.push_front(w);
                return;
            }
        }
    }
}
