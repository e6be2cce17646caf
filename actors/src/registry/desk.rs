//! The registry's state under one short lock: the selection core, the waiters' answer channels
//! and the provider actors its effects name.
//!
//! Without a shared store every effect of the core is local (a oneshot answer, a report to a
//! provider actor), so a worker thread chooses and releases **on its own thread**: lock, run the
//! core, unlock — no round trip to the registry's thread and back. [`Chooser`] is that entry
//! point; the registry actor takes the same lock for its own messages (status, reload, Redis
//! answers). With Redis configured the core's effects include Redis round trips, which only the
//! actor performs, so every choice goes through the actor as a message instead.
//!
//! Invariants:
//! - The lock is never held across I/O or an `.await`; it is taken at most once per thread at a
//!   time (nested locking is a bug, caught by a debug assertion).
//! - Nothing is dropped under the lock that could take it again: leases that find no waiter are
//!   handed out of the critical section in [`After::dropped`]; a lease dropped on a thread that
//!   holds the lock anyway (it cannot happen by construction, but a panic unwinding could) goes
//!   through the actor's release inbox instead of deadlocking.
//! - Provider outcome reports are queued here and forwarded by the actor: a report that can change
//!   a provider's health (failure, probe verdict, `Retry-After`, cancellation) wakes it at once,
//!   routine successes wait for its `REPORT_TICK` (a cross-thread wake-up per request costs more
//!   than the work it delivers).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::provider::{ProviderActor, ReportOutcome};
use crate::routing::SessionKey;

use super::lease::{Release, ReleaseInbox};
use super::selection::{Decision, Effect, Selection, WaiterId};
use super::{Choice, ChooseError, ChooseProvider, Lease, ModelRegistry};

pub(super) type Answer = oneshot::Sender<Result<Lease, ChooseError>>;

thread_local! {
    /// This thread holds a desk lock (of any registry).
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// What the core works on, behind the desk's lock.
pub(super) struct DeskState {
    pub core: Selection,
    /// Where queued requests' answers go.
    pub waiters: HashMap<WaiterId, Answer>,
    /// Provider actors, by model then provider index (the core's current indices).
    pub providers: Vec<Vec<ActorRef>>,
    /// The effects buffer, reused between calls.
    fx: Vec<Effect>,
}

/// A provider's actor as the desk keeps it: shared, so queuing a report for it copies a pointer
/// (cloning an `Addr` allocates its sender's state).
pub(super) type ActorRef = Arc<Addr<ProviderActor>>;

/// Left for after the lock: what needs the actor or must not run under the lock.
#[derive(Default)]
pub(super) struct After {
    /// Redis effects (`Acquire`, `CountUse`, `ReleaseToken`): only with a shared store.
    pub effects: Vec<Effect>,
    pub reports: Vec<(ActorRef, ReportOutcome)>,
    /// Affinity placements to share in Redis: (model name asked for, provider id, session).
    pub placements: Vec<(String, String, SessionKey)>,
    /// Leases nobody took (their waiter left): dropping them releases them.
    pub dropped: Vec<Lease>,
}

/// The lock, the flag that catches nested locking, and what releases need off the lock.
pub(super) struct Desk {
    state: Mutex<DeskState>,
    /// Choices and releases run on the caller's thread (no shared store is configured).
    pub local: bool,
    pub registry: Addr<ModelRegistry>,
    /// Releases applied on the registry's thread (with a shared store, or as a fallback).
    pub inbox: ReleaseInbox,
    /// Outcome reports waiting to be forwarded to provider actors by the registry.
    reports: Mutex<Vec<(ActorRef, ReportOutcome)>>,
}

/// A held desk lock; clears the thread's flag when dropped.
pub(super) struct Locked<'a>(MutexGuard<'a, DeskState>);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        HOLDING.with(|h| h.set(false));
    }
}

impl std::ops::Deref for Locked<'_> {
    type Target = DeskState;
    fn deref(&self) -> &DeskState {
        &self.0
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut DeskState {
        &mut self.0
    }
}

/// How often the registry forwards routine outcome reports queued by workers. Waking the
/// registry's thread for each one cost a context switch per request on a saturated core (the
/// worker is preempted by the wake-up); a success only moves latency figures and counts, which
/// may arrive this much later.
pub(super) const REPORT_TICK: std::time::Duration = std::time::Duration::from_millis(20);
/// Queued reports that wake the registry at once, whatever they say (bounds the queue).
const REPORT_BATCH: usize = 1024;

/// A report that can wait for the tick: a success that is not a half-open probe's verdict and
/// carries no `Retry-After`.
fn is_routine(r: &ReportOutcome) -> bool {
    matches!(r.outcome, crate::provider::Outcome::Success) && !r.probe && r.retry_after.is_none()
}

/// Tells the registry that reports are waiting.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ForwardReports;

impl Desk {
    pub(super) fn new(
        core: Selection,
        providers: Vec<Vec<ActorRef>>,
        local: bool,
        registry: Addr<ModelRegistry>,
    ) -> Desk {
        Desk {
            state: Mutex::new(DeskState {
                core,
                waiters: HashMap::new(),
                providers,
                fx: Vec::new(),
            }),
            local,
            registry,
            inbox: ReleaseInbox::default(),
            reports: Mutex::new(Vec::new()),
        }
    }

    /// Takes the lock (a poisoned lock is taken as is: the core's state is consistent between
    /// calls, and a panic inside one is a bug that must not stop every later request).
    pub(super) fn lock(&self) -> Locked<'_> {
        debug_assert!(
            !holding(),
            "the registry desk is locked twice on one thread"
        );
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        HOLDING.with(|h| h.set(true));
        Locked(guard)
    }

    /// Runs `f` on the core at `now` under the lock and performs the local effects it pushed;
    /// the rest is returned in `after`.
    pub(super) fn run<R>(
        self: &Arc<Self>,
        now: Instant,
        after: &mut After,
        f: impl FnOnce(&mut Selection, Instant, super::Alive, &mut Vec<Effect>) -> R,
    ) -> R {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut fx = std::mem::take(&mut st.fx);
        let waiters = &st.waiters;
        let alive = |id: WaiterId| waiters.get(&id).is_some_and(|tx| !tx.is_closed());
        let r = f(&mut st.core, now, &alive, &mut fx);
        st.perform(&mut fx, self, after);
        st.fx = fx;
        r
    }

    /// One choice under the lock; the actor and [`Chooser`] both come here.
    pub(super) fn choose(self: &Arc<Self>, msg: ChooseProvider, after: &mut After) -> Choice {
        let now = Instant::now();
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut fx = std::mem::take(&mut st.fx);
        let decision = st.core.choose(
            &msg.model,
            msg.exclude,
            msg.session,
            msg.deadline,
            now,
            &mut fx,
        );
        let choice = match decision {
            Decision::Granted(grant) => Choice::Ready(Ok(self.lease(grant, after))),
            Decision::Refused(e) => Choice::Ready(Err(e)),
            Decision::Queued(id) => {
                // Registered before the effects run, so any answer finds its channel.
                let (tx, rx) = oneshot::channel();
                st.waiters.insert(id, tx);
                Choice::Queued(rx, msg.deadline, msg.model)
            }
        };
        st.perform(&mut fx, self, after);
        st.fx = fx;
        choice
    }

    /// Applies a dropped lease's release on this thread (local desks only).
    pub(super) fn release_here(self: &Arc<Self>, r: Release) {
        let mut after = After::default();
        self.run(r.report.at, &mut after, |core, now, alive, fx| {
            core.release(r, now, alive, fx)
        });
        self.finish_here(after);
    }

    /// Queues a release for the registry's thread (woken when the inbox was empty).
    pub(super) fn release_later(&self, r: Release) {
        if self.inbox.push(r) {
            self.registry.do_send(super::lease::DrainReleases);
        }
    }

    /// What a worker does after the lock: queue reports for the actor, drop unwanted leases.
    fn finish_here(&self, after: After) {
        debug_assert!(after.effects.is_empty(), "a Redis effect on a local desk");
        if !after.reports.is_empty() {
            // A routine success (latency and counts only) waits for the actor's next tick
            // (`REPORT_TICK`); anything that can change a provider's health is forwarded now.
            let urgent = after.reports.iter().any(|(_, r)| !is_routine(r));
            // An urgent report wakes the actor even when routine ones are queued before it
            // (they go with it, in order).
            let wake = {
                let mut q = self.reports.lock().unwrap_or_else(|e| e.into_inner());
                q.extend(after.reports);
                urgent || q.len() >= REPORT_BATCH
            };
            if wake {
                self.registry.do_send(ForwardReports);
            }
        }
        drop(after.dropped);
    }

    /// The reports queued by workers (the actor forwards them).
    pub(super) fn take_reports(&self) -> Vec<(ActorRef, ReportOutcome)> {
        std::mem::take(&mut *self.reports.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn lease(self: &Arc<Self>, grant: super::Grant, after: &mut After) -> Lease {
        if let Some((key, _)) = grant.affinity {
            // Keyed by the name asked for (the catch-all model serves many), as it is read.
            let model = grant.alias.as_deref().unwrap_or(&grant.snapshot.model);
            after
                .placements
                .push((model.to_string(), grant.snapshot.config.id.clone(), key));
        }
        Lease::new(self.clone(), grant)
    }
}

impl DeskState {
    /// Does the core's local effects in order; the others go to `after`.
    pub(super) fn perform(&mut self, fx: &mut Vec<Effect>, desk: &Arc<Desk>, after: &mut After) {
        for e in fx.drain(..) {
            match e {
                Effect::Grant { waiter, grant } => {
                    let lease = desk.lease(grant, after);
                    match self.waiters.remove(&waiter) {
                        Some(tx) => {
                            // A waiter that just gave up hands the lease back: released after
                            // the lock.
                            if let Err(Ok(lease)) = tx.send(Ok(lease)) {
                                after.dropped.push(lease);
                            }
                        }
                        None => after.dropped.push(lease),
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
                Effect::Report {
                    model,
                    provider,
                    report,
                } => after
                    .reports
                    .push((self.providers[model][provider].clone(), report)),
                e
                @ (Effect::Acquire(_) | Effect::CountUse { .. } | Effect::ReleaseToken { .. }) => {
                    after.effects.push(e)
                }
            }
        }
    }
}

/// Whether this thread holds a desk lock.
pub(super) fn holding() -> bool {
    HOLDING.with(|h| h.get())
}

/// Chooses providers from any thread: on the caller's own thread under the registry's lock
/// when the registry has no shared store, else through the registry actor.
#[derive(Clone)]
pub struct Chooser {
    desk: Arc<Desk>,
}

impl Chooser {
    pub(super) fn new(desk: Arc<Desk>) -> Chooser {
        Chooser { desk }
    }

    /// A lease now, or a place in the model's queue (resolve it with [`Choice::resolve`]).
    pub async fn choose(&self, msg: ChooseProvider) -> Result<Choice, MailboxError> {
        if self.desk.local {
            let mut after = After::default();
            let choice = self.desk.choose(msg, &mut after);
            self.desk.finish_here(after);
            return Ok(choice);
        }
        self.desk.registry.send(msg).await
    }

    /// Choices are made on the caller's thread (no shared store).
    pub fn is_local(&self) -> bool {
        self.desk.local
    }
}

impl std::fmt::Debug for Chooser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chooser")
            .field("local", &self.desk.local)
            .finish()
    }
}
