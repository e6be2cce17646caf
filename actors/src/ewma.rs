//! Peak-sensitive, time-decayed moving average (latency, time to first token).
//!
//! A sample above the current value replaces it at once (react fast to a slowing provider); lower
//! samples pull it down with weight `1 - exp(-Δt/τ)`, so the value decays on wall time, not sample
//! count. Time is a parameter: `observe(sample, now)` never reads a clock.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct PeakEwma {
    tau: Duration,
    value: Option<f64>,
    last: Option<Instant>,
}

impl PeakEwma {
    pub fn new(tau: Duration) -> PeakEwma {
        PeakEwma {
            tau,
            value: None,
            last: None,
        }
    }

    /// Records a sample (seconds) taken at `now`.
    pub fn observe(&mut self, sample: f64, now: Instant) {
        let next = match (self.value, self.last) {
            (Some(v), _) if sample >= v => sample,
            (Some(v), Some(last)) => {
                let dt = now.saturating_duration_since(last).as_secs_f64();
                let w = (-dt / self.tau.as_secs_f64()).exp();
                v * w + sample * (1.0 - w)
            }
            _ => sample,
        };
        self.value = Some(next);
        self.last = Some(now);
    }

    /// The current estimate in seconds, or `None` before the first sample.
    pub fn get(&self) -> Option<f64> {
        self.value
    }
}

/// A time-decayed rate of events (e.g. failures among calls), 0..=1. Each outcome is a sample
/// (1 = failure, 0 = success) weighted by `1 - exp(-Δt/τ)`, and without samples the rate decays
/// towards 0 on wall time, so a provider that stops failing recovers even without traffic.
#[derive(Clone, Debug)]
pub struct DecayingRate {
    tau: Duration,
    value: f64,
    last: Option<Instant>,
}

impl DecayingRate {
    pub fn new(tau: Duration) -> DecayingRate {
        DecayingRate {
            tau,
            value: 0.0,
            last: None,
        }
    }

    fn decay(&self, now: Instant) -> f64 {
        match self.last {
            Some(last) => {
                let dt = now.saturating_duration_since(last).as_secs_f64();
                (-dt / self.tau.as_secs_f64()).exp()
            }
            None => 0.0,
        }
    }

    /// Records one outcome at `now`; the first sample weighs at least a quarter.
    pub fn observe(&mut self, failed: bool, now: Instant) {
        let keep = self.decay(now).min(0.75);
        let sample = if failed { 1.0 } else { 0.0 };
        self.value = self.value * keep + sample * (1.0 - keep);
        self.last = Some(now);
    }

    /// The rate at `now`, decayed since the last sample.
    pub fn get(&self, now: Instant) -> f64 {
        match self.last {
            Some(_) => self.value * self.decay(now),
            None => 0.0,
        }
    }

    /// The value as of the last sample, and when that was.
    pub fn raw(&self) -> (f64, Option<Instant>) {
        (self.value, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_jump_and_lows_decay_with_time() {
        let t0 = Instant::now();
        let mut e = PeakEwma::new(Duration::from_secs(10));
        assert_eq!(e.get(), None);
        e.observe(0.1, t0);
        assert_eq!(e.get(), Some(0.1));
        e.observe(1.0, t0 + Duration::from_secs(1));
        assert_eq!(e.get(), Some(1.0), "a slower sample is taken at once");
        // A fast sample right away barely moves it; after many τ it dominates.
        e.observe(0.1, t0 + Duration::from_secs(1));
        assert_eq!(e.get(), Some(1.0));
        e.observe(0.1, t0 + Duration::from_secs(11));
        let v = e.get().unwrap();
        let expect = 1.0 * (-1.0f64).exp() + 0.1 * (1.0 - (-1.0f64).exp());
        assert!((v - expect).abs() < 1e-9, "{v} vs {expect}");
        e.observe(0.1, t0 + Duration::from_secs(1000));
        assert!((e.get().unwrap() - 0.1).abs() < 1e-6);
    }

    #[test]
    fn failure_rate_rises_with_failures_and_decays_without_them() {
        let t0 = Instant::now();
        let mut r = DecayingRate::new(Duration::from_secs(10));
        assert_eq!(r.get(t0), 0.0);
        for i in 0..20 {
            r.observe(true, t0 + Duration::from_millis(i * 10));
        }
        let high = r.get(t0 + Duration::from_millis(200));
        assert!(high > 0.9, "{high}");
        // Successes pull it down; so does time alone.
        let later = r.get(t0 + Duration::from_secs(30));
        assert!(later < high * 0.06, "{later}");
        r.observe(false, t0 + Duration::from_secs(31));
        assert!(r.get(t0 + Duration::from_secs(31)) < later);
    }
}
