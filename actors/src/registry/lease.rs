//! The RAII [`Lease`] of one provider slot, and the [`ReleaseInbox`] its `Drop` writes to.
//!
//! Invariant: a lease releases exactly once — `Drop` is the only place a [`Release`] is made for
//! it, and the registry applies each release it drains once. Default outcome `Cancelled` (the
//! client went away), which never counts against the provider.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::config::ProviderConfig;
use crate::provider::{Outcome, ProviderSnapshot, ReportOutcome};
use crate::routing::{Placement, SessionKey};

use super::desk::{self, Desk};
use super::selection::Grant;

/// Made by a dropped lease: frees the slot, forwards the outcome to the provider's actor and may
/// serve a queued request. Applied on the dropping thread under the registry's lock (no shared
/// store), or left in the registry's [`ReleaseInbox`] for its own thread.
#[derive(Debug)]
pub struct Release {
    /// The registry generation of `model` and `provider`.
    pub generation: u64,
    pub model: usize,
    pub provider: usize,
    pub report: ReportOutcome,
    /// The Redis lease to give back, when the provider's capacity is shared.
    pub token: Option<String>,
}

/// Releases of dropped leases waiting for the registry. A dropping lease wakes the registry only
/// when the inbox was empty, so under load one wake-up drains many releases (a cross-thread
/// wake-up costs more than the release itself).
#[derive(Default)]
pub struct ReleaseInbox(Mutex<Vec<Release>>);

impl ReleaseInbox {
    /// Adds a release; true when the inbox was empty (the registry must be woken).
    pub(super) fn push(&self, r: Release) -> bool {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.push(r);
        q.len() == 1
    }

    pub(super) fn take(&self) -> Vec<Release> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Tells the registry the inbox has releases.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct DrainReleases;

/// A held provider slot. Dropping it releases the slot exactly once and reports the outcome.
/// Move it into the response body so a client disconnect drops it.
pub struct Lease {
    desk: Arc<Desk>,
    snapshot: Arc<ProviderSnapshot>,
    generation: u64,
    model: usize,
    provider: usize,
    /// The requested name, when the catch-all model serves it.
    alias: Option<Arc<str>>,
    probe: bool,
    started: Instant,
    first_byte: Option<Instant>,
    outcome: Outcome,
    retry_after: Option<Duration>,
    /// The Redis lease behind this one, when the provider's capacity is shared.
    token: Option<String>,
    affinity: Option<(SessionKey, Placement)>,
}

impl Lease {
    pub(super) fn new(desk: Arc<Desk>, g: Grant) -> Lease {
        Lease {
            desk,
            snapshot: g.snapshot,
            generation: g.generation,
            model: g.model,
            provider: g.provider,
            alias: g.alias,
            probe: g.probe,
            started: g.started,
            first_byte: None,
            outcome: Outcome::Cancelled,
            retry_after: None,
            token: g.token,
            affinity: g.affinity,
        }
    }

    /// How cache affinity placed this lease (`None`: the strategy chose).
    pub fn affinity(&self) -> Option<&(SessionKey, Placement)> {
        self.affinity.as_ref()
    }

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

    /// The name asked for, when the catch-all model `*` serves it.
    pub fn alias(&self) -> Option<&str> {
        self.alias.as_deref()
    }

    /// Public name of the leased model (for the catch-all model: the name asked for).
    pub fn model(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.snapshot.model)
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
            generation: self.generation,
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
        if self.desk.local && !desk::holding() {
            self.desk.release_here(release);
        } else {
            self.desk.release_later(release);
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
