//! One provider: its immutable config, its published snapshot, and the actor that owns its health.
//!
//! `ProviderActor` (one per configured provider, on the registry's arbiter) receives
//! [`ReportOutcome`] for every finished [`Lease`](crate::Lease) (forwarded by the registry with the
//! lease's release) and is the only writer of the
//! provider's breaker and latency/TTFT EWMAs. It publishes them into a [`ProviderSnapshot`] of
//! atomics, which the registry (choosing) and the HTTP layer (`/health`, metrics) read without a
//! round trip. The registry writes the snapshot's selection counters (in-flight, served).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::config::ProviderConfig;
use crate::ewma::{DecayingRate, PeakEwma};
use crate::health::{Breaker, BreakerState};

/// Instants are stored in atomics as nanoseconds since this process-wide origin.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn to_ns(t: Instant) -> u64 {
    // +1 so that 0 can mean "none".
    t.saturating_duration_since(origin()).as_nanos() as u64 + 1
}

fn from_ns(ns: u64) -> Option<Instant> {
    (ns != 0).then(|| origin() + Duration::from_nanos(ns - 1))
}

const NONE: u64 = u64::MAX;

/// How a leased call ended, as far as the provider's health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(FailureKind),
    /// The provider answered a 4xx caused by the request itself: not held against the provider.
    ClientError(u16),
    /// The client went away (or the lease was dropped before a verdict): not held against the provider.
    Cancelled,
}

/// Why a provider call failed — the one failure vocabulary of the router: the registry's health
/// accounting, metrics labels, and the client's error message are all read from it. Every kind is
/// the provider's fault (a request the provider refused because of the request itself is
/// [`Outcome::ClientError`]), so before the commit point another provider may always be tried;
/// [`FailureKind::is_transient`] says whether the same provider is likely to answer if asked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection (refused, reset, DNS, TLS).
    Connect,
    /// No response head or first byte (or, in a stream, no data) within this bound.
    Timeout(Duration),
    /// The provider answered with this error status (5xx, or a 401/403/404/408 that means the
    /// router's own credentials or `model_path` are wrong).
    Status(u16),
    /// 429, with the provider's `Retry-After` if it sent one.
    RateLimited(Option<Duration>),
    /// The connection broke or the body was malformed after the response started.
    Body,
}

impl FailureKind {
    /// A short, stable label (metrics `error_code`).
    pub fn code(self) -> String {
        match self {
            FailureKind::Connect => "connect".into(),
            FailureKind::Timeout(_) => "timeout".into(),
            FailureKind::Status(s) => s.to_string(),
            FailureKind::RateLimited(_) => "429".into(),
            FailureKind::Body => "body".into(),
        }
    }

    /// Whether asking the same provider again soon may succeed (a blip, not a broken provider).
    pub fn is_transient(self) -> bool {
        match self {
            FailureKind::Connect | FailureKind::RateLimited(_) => true,
            FailureKind::Status(s) => matches!(s, 500 | 502 | 503),
            FailureKind::Timeout(_) | FailureKind::Body => false,
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureKind::Connect => f.write_str("connection failed"),
            FailureKind::Timeout(d) => write!(f, "no response within {:.1}s", d.as_secs_f64()),
            FailureKind::Status(s) => write!(f, "HTTP {s}"),
            FailureKind::RateLimited(_) => f.write_str("rate limited (HTTP 429)"),
            FailureKind::Body => f.write_str("response broke off"),
        }
    }
}

/// Health as shown to operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthView {
    Healthy,
    /// Circuit open; no traffic until the cool-down ends.
    Open,
    /// Cool-down over; the next request is a probe.
    HalfOpen,
}

impl HealthView {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthView::Healthy => "healthy",
            HealthView::Open => "open",
            HealthView::HalfOpen => "half_open",
        }
    }
}

/// Lock-free view of one provider, shared by the registry, its actor and the HTTP layer.
#[derive(Debug)]
pub struct ProviderSnapshot {
    pub config: ProviderConfig,
    /// Public name of the model this provider serves.
    pub model: Arc<str>,
    open_until: AtomicU64,
    latency_us: AtomicU64,
    ttft_us: AtomicU64,
    in_flight: AtomicU32,
    served: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU32,
    /// Error-rate EWMA as of its last sample (f64 bits), and that sample's time (ns, 0 = none).
    error_rate: AtomicU64,
    error_rate_at: AtomicU64,
    /// The provider asked (429 + `Retry-After`) not to be called before this (ns, 0 = none).
    retry_after_until: AtomicU64,
}

impl ProviderSnapshot {
    pub fn new(config: ProviderConfig, model: Arc<str>) -> ProviderSnapshot {
        ProviderSnapshot {
            config,
            model,
            open_until: AtomicU64::new(0),
            latency_us: AtomicU64::new(NONE),
            ttft_us: AtomicU64::new(NONE),
            in_flight: AtomicU32::new(0),
            served: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            error_rate: AtomicU64::new(0f64.to_bits()),
            error_rate_at: AtomicU64::new(0),
            retry_after_until: AtomicU64::new(0),
        }
    }

    /// Recent share of failed calls at `now` (time-decayed; see [`DecayingRate`]).
    pub fn error_rate(&self, now: Instant) -> f64 {
        let value = f64::from_bits(self.error_rate.load(Relaxed));
        match from_ns(self.error_rate_at.load(Relaxed)) {
            Some(at) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                value * (-dt / ERROR_RATE_TAU.as_secs_f64()).exp()
            }
            None => 0.0,
        }
    }

    /// Until when the provider asked not to be called (a 429's `Retry-After`), if that is ahead.
    pub fn rate_limited_until(&self, now: Instant) -> Option<Instant> {
        from_ns(self.retry_after_until.load(Relaxed)).filter(|t| *t > now)
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// `Some(until)` while the circuit is open (until may already be past: half-open).
    pub fn open_until(&self) -> Option<Instant> {
        from_ns(self.open_until.load(Relaxed))
    }

    pub fn health(&self, now: Instant) -> HealthView {
        match self.open_until() {
            None => HealthView::Healthy,
            Some(until) if now >= until => HealthView::HalfOpen,
            Some(_) => HealthView::Open,
        }
    }

    pub fn latency(&self) -> Option<Duration> {
        let v = self.latency_us.load(Relaxed);
        (v != NONE).then(|| Duration::from_micros(v))
    }

    pub fn ttft(&self) -> Option<Duration> {
        let v = self.ttft_us.load(Relaxed);
        (v != NONE).then(|| Duration::from_micros(v))
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    pub fn served(&self) -> u64 {
        self.served.load(Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Relaxed)
    }

    /// A snapshot for a new configuration of the same provider (a reload kept its `id` and
    /// `api_host`): every published value carries over, so health and latency survive.
    pub fn carried(&self, config: ProviderConfig, model: Arc<str>) -> ProviderSnapshot {
        let next = ProviderSnapshot::new(config, model);
        next.copy_from(self);
        next
    }

    fn copy_from(&self, old: &ProviderSnapshot) {
        let pairs64 = [
            (&self.open_until, &old.open_until),
            (&self.latency_us, &old.latency_us),
            (&self.ttft_us, &old.ttft_us),
            (&self.served, &old.served),
            (&self.failures, &old.failures),
            (&self.error_rate, &old.error_rate),
            (&self.error_rate_at, &old.error_rate_at),
            (&self.retry_after_until, &old.retry_after_until),
        ];
        for (to, from) in pairs64 {
            to.store(from.load(Relaxed), Relaxed);
        }
        self.in_flight.store(old.in_flight.load(Relaxed), Relaxed);
        self.consecutive_failures
            .store(old.consecutive_failures.load(Relaxed), Relaxed);
    }

    pub(crate) fn set_selection(&self, in_flight: u32, served: u64) {
        self.in_flight.store(in_flight, Relaxed);
        self.served.store(served, Relaxed);
    }
}

/// Time constant of the error-rate EWMA (`dynamic_weighted` reads it).
pub const ERROR_RATE_TAU: Duration = Duration::from_secs(10);

/// Sent by a finished lease to the provider's actor.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ReportOutcome {
    pub outcome: Outcome,
    pub latency: Duration,
    pub ttft: Option<Duration>,
    /// The call was the single half-open probe.
    pub probe: bool,
    /// The provider answered 429 with `Retry-After`: skip it for this long.
    pub retry_after: Option<Duration>,
    pub at: Instant,
}

/// An active health probe's verdict (from the `ProviderMonitor`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct ProbeResult {
    pub ok: bool,
    pub at: Instant,
}

/// A reload changed this provider's configuration but kept its identity: publish into `snapshot`
/// from now on (the actor's breaker and EWMAs carry on).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Rebind {
    pub snapshot: Arc<ProviderSnapshot>,
}

/// Owns one provider's health truth; see the module docs.
pub struct ProviderActor {
    snapshot: Arc<ProviderSnapshot>,
    breaker: Breaker,
    latency: PeakEwma,
    ttft: PeakEwma,
    errors: DecayingRate,
}

impl ProviderActor {
    pub fn new(snapshot: Arc<ProviderSnapshot>, breaker: Breaker) -> ProviderActor {
        ProviderActor {
            snapshot,
            breaker,
            latency: PeakEwma::new(Duration::from_secs(10)),
            ttft: PeakEwma::new(Duration::from_secs(10)),
            errors: DecayingRate::new(ERROR_RATE_TAU),
        }
    }

    /// Applies an active probe's verdict: a failed probe counts as a failure (consecutive ones open
    /// the circuit like failed calls do); a successful one closes an open circuit at once.
    pub fn apply_probe(&mut self, p: ProbeResult) {
        if p.ok {
            if self.breaker.state() != BreakerState::Closed {
                tracing::info!(provider = %self.snapshot.id(), "health probe succeeded; circuit closed");
            }
            self.breaker.on_success();
        } else {
            let was_open = self.breaker.state() != BreakerState::Closed;
            self.breaker.on_failure(p.at, was_open);
            if !was_open && self.breaker.state() != BreakerState::Closed {
                tracing::warn!(provider = %self.snapshot.id(), "health probes failed; circuit opened");
            }
        }
        self.publish();
    }

    /// Applies one outcome to the pure state and republishes the snapshot.
    pub fn apply(&mut self, r: &ReportOutcome) {
        if let Some(wait) = r.retry_after {
            self.snapshot
                .retry_after_until
                .store(to_ns(r.at + wait), Relaxed);
        }
        match r.outcome {
            Outcome::Success => self.errors.observe(false, r.at),
            Outcome::Failure(_) => self.errors.observe(true, r.at),
            Outcome::ClientError(_) | Outcome::Cancelled => {}
        }
        match r.outcome {
            Outcome::Success => {
                self.breaker.on_success();
                self.latency.observe(r.latency.as_secs_f64(), r.at);
                if let Some(t) = r.ttft {
                    self.ttft.observe(t.as_secs_f64(), r.at);
                }
            }
            Outcome::Failure(_) => {
                self.breaker.on_failure(r.at, r.probe);
                self.snapshot.failures.fetch_add(1, Relaxed);
            }
            // A probe that ended without a verdict leaves the circuit as it was; the registry frees the probe slot.
            Outcome::ClientError(_) | Outcome::Cancelled => {
                if r.probe && matches!(r.outcome, Outcome::ClientError(_)) {
                    // The provider answered coherently: it is up.
                    self.breaker.on_success();
                }
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let s = &self.snapshot;
        let open = match self.breaker.state() {
            BreakerState::Closed => 0,
            BreakerState::Open { until } => to_ns(until),
        };
        s.open_until.store(open, Relaxed);
        s.consecutive_failures
            .store(self.breaker.consecutive_failures(), Relaxed);
        let us = |v: Option<f64>| v.map_or(NONE, |secs| (secs * 1e6) as u64);
        s.latency_us.store(us(self.latency.get()), Relaxed);
        s.ttft_us.store(us(self.ttft.get()), Relaxed);
        let (rate, at) = self.errors.raw();
        s.error_rate.store(rate.to_bits(), Relaxed);
        s.error_rate_at.store(at.map_or(0, to_ns), Relaxed);
    }
}

impl Actor for ProviderActor {
    type Context = Context<Self>;
}

impl Handler<ReportOutcome> for ProviderActor {
    type Result = ();
    fn handle(&mut self, msg: ReportOutcome, _: &mut Context<Self>) {
        self.apply(&msg);
    }
}

/// Outcome reports of one provider, in the order they were made (the registry forwards the
/// routine ones it queued in one message per actor).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ReportBatch(pub Vec<ReportOutcome>);

impl Handler<ReportBatch> for ProviderActor {
    type Result = ();
    fn handle(&mut self, msg: ReportBatch, _: &mut Context<Self>) {
        for r in &msg.0 {
            self.apply(r);
        }
    }
}

impl Handler<Rebind> for ProviderActor {
    type Result = ();
    fn handle(&mut self, msg: Rebind, _: &mut Context<Self>) {
        // Counters written since the registry made the new snapshot (failures, Retry-After).
        msg.snapshot
            .failures
            .fetch_max(self.snapshot.failures(), Relaxed);
        msg.snapshot
            .retry_after_until
            .fetch_max(self.snapshot.retry_after_until.load(Relaxed), Relaxed);
        self.snapshot = msg.snapshot;
        self.publish();
    }
}

impl Handler<ProbeResult> for ProviderActor {
    type Result = ();
    fn handle(&mut self, msg: ProbeResult, _: &mut Context<Self>) {
        self.apply_probe(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiType;

    fn actor() -> ProviderActor {
        let cfg = ProviderConfig::new("p1", "http://127.0.0.1:1", ApiType::Vllm);
        let snap = Arc::new(ProviderSnapshot::new(cfg, "m".into()));
        ProviderActor::new(
            snap,
            Breaker::new(2, Duration::from_secs(5), Duration::from_secs(60)),
        )
    }

    fn report(outcome: Outcome, at: Instant) -> ReportOutcome {
        ReportOutcome {
            outcome,
            latency: Duration::from_millis(20),
            ttft: Some(Duration::from_millis(5)),
            probe: false,
            retry_after: None,
            at,
        }
    }

    #[test]
    fn snapshot_follows_outcomes() {
        let t0 = Instant::now();
        let mut a = actor();
        assert_eq!(a.snapshot.health(t0), HealthView::Healthy);
        a.apply(&report(Outcome::Success, t0));
        assert_eq!(a.snapshot.latency(), Some(Duration::from_millis(20)));
        assert_eq!(a.snapshot.ttft(), Some(Duration::from_millis(5)));
        // Client errors and disconnects never count against the provider.
        for _ in 0..5 {
            a.apply(&report(Outcome::ClientError(400), t0));
            a.apply(&report(Outcome::Cancelled, t0));
        }
        assert_eq!(a.snapshot.health(t0), HealthView::Healthy);
        a.apply(&report(Outcome::Failure(FailureKind::Connect), t0));
        a.apply(&report(Outcome::Failure(FailureKind::Status(500)), t0));
        assert_eq!(a.snapshot.health(t0), HealthView::Open);
        assert_eq!(a.snapshot.failures(), 2);
        assert_eq!(
            a.snapshot.health(t0 + Duration::from_secs(5)),
            HealthView::HalfOpen
        );
        let mut probe = report(Outcome::Success, t0 + Duration::from_secs(5));
        probe.probe = true;
        a.apply(&probe);
        assert_eq!(
            a.snapshot.health(t0 + Duration::from_secs(5)),
            HealthView::Healthy
        );
    }
}
