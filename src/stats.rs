//! Recent per-provider statistics for `GET /router/stats`: requests, errors by class, latency and
//! TTFT percentiles and tokens over the last five minutes, plus totals since start.
//!
//! [`Ring`] is pure (time in whole seconds is a parameter): 30 slots of 10 s, each holding counts
//! and two log-linear histograms (4 bins per octave of milliseconds, so a percentile is within
//! about ±12 % of the true value). A slot is reused when its 10 s come round again, so the ring
//! never allocates after it is made. [`Stats`] holds one ring per provider behind its own short
//! `Mutex` (no lock shared between providers); it is fed where a lease ends
//! (`telemetry::Metrics::observe_call`) and by the usage counter ([`crate::usage`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use llm_router_actors::{FailureKind, Lease, Outcome};
use serde_json::{json, Value};

use crate::usage::Usage;

pub const SLOT_SECS: u64 = 10;
pub const SLOTS: usize = 30;
const BINS: usize = 88;

/// Error classes, in the order of [`Slot::errors`].
pub const CLASSES: [&str; 7] = [
    "connect",
    "timeout",
    "status_5xx",
    "rate_limited",
    "body",
    "client_4xx",
    "cancelled",
];

fn class(outcome: Outcome) -> Option<usize> {
    Some(match outcome {
        Outcome::Success => return None,
        Outcome::Failure(FailureKind::Connect) => 0,
        Outcome::Failure(FailureKind::Timeout(_)) => 1,
        Outcome::Failure(FailureKind::Status(_)) => 2,
        Outcome::Failure(FailureKind::RateLimited(_)) => 3,
        Outcome::Failure(FailureKind::Body) => 4,
        Outcome::ClientError(_) => 5,
        Outcome::Cancelled => 6,
    })
}

/// Histogram bin of `ms`: exact below 4, then 4 bins per octave.
fn bin(ms: u64) -> usize {
    if ms < 4 {
        return ms as usize;
    }
    let e = 63 - ms.leading_zeros() as u64;
    let sub = (ms >> (e - 2)) & 3;
    ((e * 4 + sub) as usize).min(BINS - 1)
}

/// Middle of bin `b`'s range, in ms.
fn bin_value(b: usize) -> f64 {
    if b < 4 {
        return b as f64;
    }
    let (e, sub) = ((b / 4) as u32, (b % 4) as u64);
    let low = (4 + sub) << (e - 2);
    let width = 1u64 << (e - 2);
    low as f64 + (width as f64 - 1.0) / 2.0
}

#[derive(Clone)]
struct Slot {
    /// Which 10 s this slot holds (`now / SLOT_SECS`); a stale slot is cleared before reuse.
    epoch: u64,
    requests: u32,
    errors: [u32; CLASSES.len()],
    latency: [u32; BINS],
    ttft: [u32; BINS],
    tokens_in: u64,
    tokens_out: u64,
}

impl Slot {
    const EMPTY: Slot = Slot {
        epoch: u64::MAX,
        requests: 0,
        errors: [0; CLASSES.len()],
        latency: [0; BINS],
        ttft: [0; BINS],
        tokens_in: 0,
        tokens_out: 0,
    };
}

/// Counts since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// The last five minutes of one provider.
pub struct Ring {
    slots: Box<[Slot; SLOTS]>,
    totals: Totals,
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            slots: Box::new([const { Slot::EMPTY }; SLOTS]),
            totals: Totals::default(),
        }
    }
}

/// A window's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub errors: [u64; CLASSES.len()],
    /// p50, p95, p99 in ms (`None` without a successful call).
    pub latency_ms: Option<[f64; 3]>,
    pub ttft_ms: Option<[f64; 3]>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub totals: Totals,
}

/// The `q` quantile of histogram `h`: the middle of the smallest bin whose cumulative count
/// reaches ceil(q·n) (`n` > 0 calls in it).
fn quantile(h: &[u64; BINS], n: u64, q: f64) -> f64 {
    let rank = ((q * n as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (b, c) in h.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return bin_value(b);
        }
    }
    bin_value(BINS - 1)
}

fn percentiles(h: &[u64; BINS]) -> Option<[f64; 3]> {
    let n: u64 = h.iter().sum();
    (n > 0).then(|| {
        [
            quantile(h, n, 0.50),
            quantile(h, n, 0.95),
            quantile(h, n, 0.99),
        ]
    })
}

/// The `q` quantile of the TTFT histograms of the slots of the last five minutes at `now`, and
/// how many calls they hold.
fn ttft_quantile(slots: &[Slot], now: u64, q: f64) -> Option<(f64, u64)> {
    let epoch = now / SLOT_SECS;
    let mut h = [0u64; BINS];
    for s in slots {
        if s.epoch > epoch || epoch - s.epoch >= SLOTS as u64 {
            continue;
        }
        for (a, b) in h.iter_mut().zip(s.ttft) {
            *a += u64::from(b);
        }
    }
    let n: u64 = h.iter().sum();
    (n > 0).then(|| (quantile(&h, n, q), n))
}

impl Ring {
    /// The p95 TTFT of the last five minutes at `now` (ms) and its number of calls.
    pub fn ttft_p95(&self, now: u64) -> Option<(f64, u64)> {
        ttft_quantile(&self.slots[..], now, 0.95)
    }

    fn slot(&mut self, now: u64) -> &mut Slot {
        let epoch = now / SLOT_SECS;
        let s = &mut self.slots[(epoch % SLOTS as u64) as usize];
        if s.epoch != epoch {
            *s = Slot::EMPTY;
            s.epoch = epoch;
        }
        s
    }

    /// One finished call at `now` (seconds).
    pub fn call(&mut self, now: u64, outcome: Outcome, latency: Duration, ttft: Option<Duration>) {
        let c = class(outcome);
        self.totals.requests += 1;
        self.totals.errors += u64::from(c.is_some());
        let s = self.slot(now);
        s.requests += 1;
        match c {
            Some(i) => s.errors[i] += 1,
            None => {
                s.latency[bin(latency.as_millis() as u64)] += 1;
                if let Some(t) = ttft {
                    s.ttft[bin(t.as_millis() as u64)] += 1;
                }
            }
        }
    }

    pub fn tokens(&mut self, now: u64, u: Usage) {
        self.totals.tokens_in += u.input;
        self.totals.tokens_out += u.output;
        let s = self.slot(now);
        s.tokens_in += u.input;
        s.tokens_out += u.output;
    }

    /// The slots of the last five minutes at `now`.
    pub fn window(&self, now: u64) -> Window {
        let epoch = now / SLOT_SECS;
        let mut w = Window::default();
        for s in self.slots.iter() {
            if s.epoch > epoch || epoch - s.epoch >= SLOTS as u64 {
                continue;
            }
            w.requests += u64::from(s.requests);
            if epoch - s.epoch < 6 {
                w.last_minute += u64::from(s.requests);
            }
            for (o, e) in w.errors.iter_mut().zip(s.errors) {
                *o += u64::from(e);
            }
            for b in 0..BINS {
                w.latency[b] += u64::from(s.latency[b]);
                w.ttft[b] += u64::from(s.ttft[b]);
            }
            w.tokens_in += s.tokens_in;
            w.tokens_out += s.tokens_out;
        }
        w.totals = self.totals;
        w
    }

    pub fn summary(&self, now: u64) -> Summary {
        self.window(now).summary()
    }
}

/// The last five minutes of one provider or (added up) of a model.
#[derive(Clone)]
pub struct Window {
    requests: u64,
    /// Calls that finished in the last six slots (about a minute).
    pub last_minute: u64,
    errors: [u64; CLASSES.len()],
    latency: [u64; BINS],
    ttft: [u64; BINS],
    tokens_in: u64,
    tokens_out: u64,
    totals: Totals,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            requests: 0,
            last_minute: 0,
            errors: [0; CLASSES.len()],
            latency: [0; BINS],
            ttft: [0; BINS],
            tokens_in: 0,
            tokens_out: 0,
            totals: Totals::default(),
        }
    }
}

impl Window {
    pub fn add(&mut self, o: &Window) {
        self.requests += o.requests;
        self.last_minute += o.last_minute;
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        for b in 0..BINS {
            self.latency[b] += o.latency[b];
            self.ttft[b] += o.ttft[b];
        }
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.totals.requests += o.totals.requests;
        self.totals.errors += o.totals.errors;
        self.totals.tokens_in += o.totals.tokens_in;
        self.totals.tokens_out += o.totals.tokens_out;
    }

    pub fn summary(&self) -> Summary {
        Summary {
            requests: self.requests,
            errors: self.errors,
            latency_ms: percentiles(&self.latency),
            ttft_ms: percentiles(&self.ttft),
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            totals: self.totals,
        }
    }
}

/// One provider's ring, with what names it.
pub struct ProviderStats {
    pub provider: Arc<str>,
    pub model: Arc<str>,
    origin: Instant,
    ring: Mutex<Ring>,
    /// The last p95 [`ProviderStats::ttft_p95`] found: `second << 32 | ms` (`u64::MAX`: none),
    /// so a hedge decision costs one atomic load within a second.
    p95_cache: AtomicU64,
}

/// Calls a p95 needs before it is trusted (fewer: no p95).
pub const P95_MIN_CALLS: u64 = 20;

impl ProviderStats {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    pub fn tokens(&self, u: Usage) {
        let now = self.now();
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tokens(now, u);
    }

    /// The p95 TTFT over the last five minutes, once at least [`P95_MIN_CALLS`] calls measured
    /// one. A p95 is worked out at most once a second; "too few calls" is not kept (a provider
    /// with so little traffic costs nothing to ask again, and its p95 counts from its 20th call).
    pub fn ttft_p95(&self) -> Option<Duration> {
        let now = self.now();
        let cached = self.p95_cache.load(Relaxed);
        if cached != u64::MAX && cached >> 32 == now {
            return Some(Duration::from_millis(cached & u64::from(u32::MAX)));
        }
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let (v, n) = ring.ttft_p95(now)?;
        drop(ring);
        if n < P95_MIN_CALLS {
            return None;
        }
        let ms = v.round().min(f64::from(u32::MAX - 1)) as u64;
        self.p95_cache.store(now << 32 | ms, Relaxed);
        Some(Duration::from_millis(ms))
    }

    pub fn window(&self) -> Window {
        let now = self.now();
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .window(now)
    }
}

/// Every provider's ring, made on the provider's first call (so providers added by a reload
/// appear too).
pub struct Stats {
    origin: Instant,
    by_provider: RwLock<llm_router_actors::FastMap<Arc<str>, Arc<ProviderStats>>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            origin: Instant::now(),
            by_provider: RwLock::new(llm_router_actors::FastMap::default()),
        }
    }
}

impl Stats {
    /// The ring of `provider` (serving `model`), made if new.
    pub fn provider(&self, provider: &str, model: &str) -> Arc<ProviderStats> {
        if let Some(p) = self
            .by_provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(provider)
        {
            return p.clone();
        }
        let mut map = self.by_provider.write().unwrap_or_else(|e| e.into_inner());
        map.entry(provider.into())
            .or_insert_with(|| {
                Arc::new(ProviderStats {
                    provider: provider.into(),
                    model: model.into(),
                    origin: self.origin,
                    ring: Mutex::new(Ring::default()),
                    p95_cache: AtomicU64::new(u64::MAX),
                })
            })
            .clone()
    }

    /// The ring of `provider` if it has served a call.
    pub fn get(&self, provider: &str) -> Option<Arc<ProviderStats>> {
        self.by_provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(provider)
            .cloned()
    }

    /// One finished lease.
    pub fn observe(&self, lease: &Lease) {
        let p = self.provider(&lease.provider().id, lease.model());
        let now = p.now();
        let latency = lease.started().elapsed();
        p.ring.lock().unwrap_or_else(|e| e.into_inner()).call(
            now,
            lease.outcome(),
            latency,
            lease.ttft(),
        );
    }

    /// `provider`'s p95 TTFT (see [`ProviderStats::ttft_p95`]); `None` before it has served
    /// enough calls.
    pub fn ttft_p95(&self, provider: &str) -> Option<Duration> {
        self.get(provider)?.ttft_p95()
    }
}

/// JSON of a summary (the `/router/stats` provider entry, without in-flight and health).
pub fn summary_json(s: &Summary) -> Value {
    let pct = |p: Option<[f64; 3]>| match p {
        Some([a, b, c]) => json!({"p50": a, "p95": b, "p99": c}),
        None => Value::Null,
    };
    let errors: serde_json::Map<String, Value> = CLASSES
        .iter()
        .zip(s.errors)
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "window_seconds": SLOT_SECS * SLOTS as u64,
        "requests": s.requests,
        "errors": errors,
        "latency_ms": pct(s.latency_ms),
        "ttft_ms": pct(s.ttft_ms),
        "tokens": {"input": s.tokens_in, "output": s.tokens_out},
        "since_start": {"requests": s.totals.requests, "errors": s.totals.errors,
                        "tokens": {"input": s.totals.tokens_in, "output": s.totals.tokens_out}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Outcome = Outcome::Success;
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bins_are_ordered_and_values_fall_in_their_bin() {
        let mut last = 0;
        for v in [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 100, 1000, 65_000, 600_000] {
            let b = bin(v);
            assert!(b >= last, "{v}");
            last = b;
            let mid = bin_value(b);
            assert!(bin(mid as u64) == b, "{v}: mid {mid} of bin {b}");
            assert!(
                (mid - v as f64).abs() <= (v as f64) * 0.125 + 0.5,
                "{v} ~ {mid}"
            );
        }
    }

    #[test]
    fn percentiles_errors_and_tokens_over_the_window() {
        let mut r = Ring::default();
        // 100 calls at t=5: latencies 1..=100 ms, TTFT a tenth of that.
        for i in 1..=100 {
            r.call(5, OK, ms(i), Some(ms(i / 10)));
        }
        r.call(
            6,
            Outcome::Failure(FailureKind::Timeout(ms(1))),
            ms(5000),
            None,
        );
        r.call(7, Outcome::Failure(FailureKind::Status(503)), ms(1), None);
        r.call(7, Outcome::ClientError(400), ms(1), None);
        r.tokens(
            8,
            Usage {
                input: 30,
                output: 12,
                estimated: false,
            },
        );
        let s = r.summary(9);
        assert_eq!(r.window(9).last_minute, 103);
        assert_eq!(s.requests, 103);
        assert_eq!(s.errors, [0, 1, 1, 0, 0, 1, 0]);
        let [p50, p95, p99] = s.latency_ms.unwrap();
        assert!((44.0..=56.0).contains(&p50), "{p50}");
        assert!((84.0..=104.0).contains(&p95), "{p95}");
        assert!((88.0..=112.0).contains(&p99), "{p99}");
        assert!(s.ttft_ms.unwrap()[0] <= 6.0);
        assert_eq!((s.tokens_in, s.tokens_out), (30, 12));
        assert_eq!(s.totals.requests, 103);
        assert_eq!(s.totals.errors, 3);
    }

    #[test]
    fn the_ttft_p95_follows_the_window_and_waits_for_enough_calls() {
        let mut r = Ring::default();
        // 94 fast first tokens and 6 slow ones: the p95 is a slow one.
        for i in 0..100 {
            let t = if i < 94 { 100 } else { 1000 };
            r.call(5, OK, ms(t + 50), Some(ms(t)));
        }
        let (p95, n) = r.ttft_p95(9).unwrap();
        assert_eq!(n, 100);
        assert!((880.0..=1120.0).contains(&p95), "{p95}");
        // The same as the summary's p95, which reads the same histograms.
        assert_eq!(p95, r.summary(9).ttft_ms.unwrap()[1]);
        // 200 more fast ones: the slow six are now under 5 %.
        for _ in 0..200 {
            r.call(6, OK, ms(150), Some(ms(100)));
        }
        let (p95, _) = r.ttft_p95(9).unwrap();
        assert!((88.0..=112.0).contains(&p95), "{p95}");
        // Five minutes on, nothing measured is left.
        assert_eq!(r.ttft_p95(5 + 300), None);

        let p = ProviderStats {
            provider: "p".into(),
            model: "m".into(),
            origin: Instant::now(),
            ring: Mutex::new(Ring::default()),
            p95_cache: AtomicU64::new(u64::MAX),
        };
        for _ in 0..P95_MIN_CALLS - 1 {
            p.ring.lock().unwrap().call(0, OK, ms(60), Some(ms(40)));
        }
        assert_eq!(p.ttft_p95(), None, "too few calls to trust a p95");
        // The 20th call counts at once ("too few" is not kept) ...
        p.ring.lock().unwrap().call(0, OK, ms(60), Some(ms(40)));
        let first = p.ttft_p95().expect("20 calls give a p95");
        assert!((35..=45).contains(&first.as_millis()), "{first:?}");
        // ... and a p95 found stands for the rest of its second.
        for _ in 0..100 {
            p.ring.lock().unwrap().call(0, OK, ms(600), Some(ms(400)));
        }
        let got = p.ttft_p95();
        assert!(
            got == Some(first) || p.origin.elapsed().as_secs() > 0,
            "{got:?} within the second of {first:?}"
        );
        let start = Instant::now();
        while p.origin.elapsed().as_secs() == 0 && start.elapsed() < Duration::from_secs(2) {
            std::thread::yield_now();
        }
        let next = p.ttft_p95().unwrap();
        assert!((350..=450).contains(&next.as_millis()), "{next:?}");
    }

    #[test]
    fn old_slots_leave_the_window_and_totals_stay() {
        let mut r = Ring::default();
        r.call(0, OK, ms(10), None);
        r.call(295, OK, ms(1000), None);
        assert_eq!(r.summary(299).requests, 2);
        assert_eq!(r.window(299).last_minute, 1);
        // A model's window adds its providers' histograms.
        let mut both = r.window(299);
        both.add(&r.window(299));
        assert_eq!(both.summary().requests, 4);
        assert_eq!(both.summary().latency_ms, r.summary(299).latency_ms);
        // At 300 s the first 10 s slot is five minutes old.
        let s = r.summary(300);
        assert_eq!(s.requests, 1);
        assert!(s.latency_ms.unwrap()[0] > 800.0);
        // The slot is reused for a new period: the old counts are gone, not added.
        r.call(301, OK, ms(10), None);
        let s = r.summary(301);
        assert_eq!(s.requests, 2);
        assert_eq!(s.totals.requests, 3);
        assert_eq!(r.summary(1000).requests, 0);
        assert_eq!(r.summary(1000).latency_ms, None);
    }
}
