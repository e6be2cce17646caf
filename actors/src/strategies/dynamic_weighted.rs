//! `dynamic_weighted`: smooth weighted round-robin on *effective* weights, each the configured
//! weight (the ceiling) scaled by how the provider is doing now:
//!
//! - latency: best eligible peak-EWMA latency ÷ this provider's (a provider twice as slow as the
//!   fastest gets half its weight), floored at 0.05; unmeasured providers count as fast;
//! - errors: 1 − recent error rate (a time-decayed EWMA published by the provider's actor),
//!   floored at 0.05.
//!
//! Both measures decay with time, so a provider that recovers regains its full share without any
//! reset; the configured weight is never exceeded.

use std::time::Instant;

use super::weighted::swrr;
use super::Candidate;

/// No provider's share drops below this fraction of its weight: it keeps getting the odd request
/// that shows it has recovered.
const FLOOR: f64 = 0.05;

#[derive(Clone, Debug, Default)]
pub struct DynamicWeighted {
    current: Vec<f64>,
}

impl DynamicWeighted {
    pub fn new(providers: usize) -> DynamicWeighted {
        DynamicWeighted {
            current: vec![0.0; providers],
        }
    }

    /// The weight a candidate gets now, given the best latency among the eligible.
    pub fn effective(c: &Candidate, best_latency: Option<f64>) -> f64 {
        let latency = match (best_latency, c.latency) {
            (Some(best), Some(own)) if own > 0.0 => (best / own).clamp(FLOOR, 1.0),
            _ => 1.0,
        };
        let errors = (1.0 - c.error_rate).clamp(FLOOR, 1.0);
        c.weight.max(0.0) * latency * errors
    }

    pub fn pick(&mut self, candidates: &[Candidate], _now: Instant) -> usize {
        let best = candidates
            .iter()
            .filter_map(|c| c.latency)
            .fold(None, |b: Option<f64>, l| Some(b.map_or(l, |b| b.min(l))));
        if candidates.iter().all(|c| c.weight <= 0.0) {
            return swrr(&mut self.current, candidates, |_| 1.0);
        }
        swrr(&mut self.current, candidates, |c| {
            DynamicWeighted::effective(c, best)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, latency: Option<f64>, error_rate: f64) -> Candidate {
        Candidate {
            latency,
            error_rate,
            ..Candidate::new(index)
        }
    }

    fn shares(s: &mut DynamicWeighted, cands: &[Candidate], n: usize) -> Vec<usize> {
        let now = Instant::now();
        let mut counts = vec![0; cands.len()];
        for _ in 0..n {
            counts[s.pick(cands, now)] += 1;
        }
        counts
    }

    #[test]
    fn slow_and_failing_providers_lose_share_and_regain_it() {
        let mut s = DynamicWeighted::new(2);
        // Equal and healthy: equal shares.
        assert_eq!(
            shares(&mut s, &[c(0, Some(0.1), 0.0), c(1, Some(0.1), 0.0)], 100),
            vec![50, 50]
        );
        // Provider 1 four times slower: it gets 1/5 of the traffic.
        assert_eq!(
            shares(&mut s, &[c(0, Some(0.1), 0.0), c(1, Some(0.4), 0.0)], 100),
            vec![80, 20]
        );
        // Provider 1 failing half its calls: half weight.
        assert_eq!(
            shares(&mut s, &[c(0, Some(0.1), 0.0), c(1, Some(0.1), 0.5)], 90),
            vec![60, 30]
        );
        // Failing all: floored, never starved completely.
        let floor = shares(&mut s, &[c(0, Some(0.1), 0.0), c(1, Some(0.1), 1.0)], 105);
        assert_eq!(floor, vec![100, 5]);
        // Recovered (the error EWMA decayed): back to equal.
        assert_eq!(
            shares(&mut s, &[c(0, Some(0.1), 0.0), c(1, Some(0.1), 0.0)], 100),
            vec![50, 50]
        );
    }

    #[test]
    fn configured_weight_is_the_ceiling() {
        let best = Some(0.1);
        let mut fast = c(0, Some(0.05), 0.0);
        fast.weight = 3.0;
        assert_eq!(DynamicWeighted::effective(&fast, best), 3.0);
        let unmeasured = c(1, None, 0.0);
        assert_eq!(DynamicWeighted::effective(&unmeasured, best), 1.0);
    }
}
