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
    Full,
}

impl Pool {
    /// Filters candidates (exclusions, health, capacity, priority tier) and asks the strategy.
    fn select(&mut self, exclude: &[String], now: Instant) -> Eligibility {
        let mut any_untried = false;
        let mut unhealthy = Vec::new();
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
            if cfg.max_concurrency.is_some_and(|max| s.in_flight >= max) {
                continue;
            }
            best_tier = best_tier.min(cfg.priority);
            cands.push((
                cfg.priority,
                Candidate {
                    index: i,
                    in_flight: s.in_flight,
                    served: s.served,
                    weight: cfg.weight,
                    latency: s.snapshot.latency().map(|d| d.as_secs_f64()),
                },
                probe,
            ));
        }
        if !any_untried {
            return Eligibility::Exhausted;
        }
        if cands.is_empty() {
            let healthy_untried = self
                .slots
                .iter()
                .filter(|s| !exclude.contains(&s.snapshot.config.id))
                .count()
                > unhealthy.len();
            return if healthy_untried {
                Eligibility::Full
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
        let pools = config
            .models
            .iter()
            .map(|m| {
                let name: Arc<str> = m.name.as_str().into();
                let slots = m
                    .providers
                    .iter()
                    .map(|p| {
                        let snapshot = Arc::new(ProviderSnapshot::new(p.clone(), name.clone()));
                        let actor = ProviderActor::new(snapshot.clone(), breaker.clone()).start();
                        Slot {
                            snapshot,
                            actor,
                            in_flight: 0,
                            served: 0,
                            probing: false,
                        }
                    })
                    .collect::<Vec<_>>();
                Pool {
                    name: m.name.clone(),
                    strategy: Strategy::new(kind, slots.len()),
                    slots,
                    waiters: VecDeque::new(),
                }
            })
            .collect::<Vec<_>>();
        let by_name = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        ModelRegistry { pools, by_name }.start()
    }

    fn grant(&mut self, model: usize, index: usize, probe: bool, me: Addr<ModelRegistry>) -> Lease {
        let slot = &mut self.pools[model].slots[index];
        slot.in_flight += 1;
        slot.served += 1;
        slot.probing |= probe;
        slot.snapshot.set_selection(slot.in_flight, slot.served);
        Lease {
            registry: me,
            snapshot: slot.snapshot.clone(),
            model,
            provider: index,
            probe,
            started: Instant::now(),
            first_byte: None,
            outcome: Outcome::Cancelled,
        }
    }

    /// Serves queued requests of `model` in arrival order while capacity allows.
    fn serve_waiters(&mut self, model: usize, me: &Addr<ModelRegistry>) {
        let now = Instant::now();
        while let Some(w) = self.pools[model].waiters.pop_front() {
            if w.tx.is_closed() || now >= w.deadline {
                continue;
            }
            match self.pools[model].select(&w.exclude, now) {
                Eligibility::Full => {
                    self.pools[model].waiters.push_front(w);
                    return;
                }
                Eligibility::Lease(index, probe) => {
                    let lease = self.grant(model, index, probe, me.clone());
                    // If the waiter just gave up, the lease comes back and its Drop releases it.
                    let _ = w.tx.send(Ok(lease));
                }
                Eligibility::Exhausted => {
                    let name = self.pools[model].name.clone();
                    let _ = w.tx.send(Err(ChooseError::Exhausted { model: name }));
                }
                Eligibility::Unhealthy(unhealthy) => {
                    let name = self.pools[model].name.clone();
                    let _ = w.tx.send(Err(ChooseError::NoHealthyProvider {
                        model: name,
                        unhealthy,
                    }));
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
        let answer = match pool.select(&msg.exclude, now) {
            Eligibility::Lease(index, probe) => Ok(self.grant(model, index, probe, ctx.address())),
            Eligibility::Exhausted => Err(ChooseError::Exhausted { model: msg.model }),
            Eligibility::Unhealthy(unhealthy) => Err(ChooseError::NoHealthyProvider {
                model: msg.model,
                unhealthy,
            }),
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
        };
        MessageResult(Choice::Ready(answer))
    }
}

impl Handler<Release> for ModelRegistry {
    type Result = ();

    fn handle(&mut self, msg: Release, ctx: &mut Context<Self>) {
        let slot = &mut self.pools[msg.model].slots[msg.provider];
        slot.in_flight = slot.in_flight.saturating_sub(1);
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
}

impl Lease {
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
