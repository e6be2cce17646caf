//! `weighted`: smooth weighted round-robin (the "current weight" scheme): every pick adds each
//! eligible provider's weight to its current value, takes the largest, and subtracts the total
//! from the winner. Over any window of Σw consecutive picks each provider is chosen exactly w
//! times (weights taken as given, not clamped to 1), interleaved rather than in bursts.
//!
//! Weight 0 means "only when nothing else can serve": such a provider is picked only when every
//! eligible candidate has weight 0 (then in config order, round-robin).

use std::time::Instant;

use super::Candidate;

#[derive(Clone, Debug, Default)]
pub struct Weighted {
    /// Current weight per provider index.
    current: Vec<f64>,
}

impl Weighted {
    pub fn new(providers: usize) -> Weighted {
        Weighted {
            current: vec![0.0; providers],
        }
    }

    pub fn pick(&mut self, candidates: &[Candidate], _now: Instant) -> usize {
        let weight = |c: &Candidate| c.weight.max(0.0);
        if candidates.iter().all(|c| weight(c) == 0.0) {
            // All zero: plain round robin by the same mechanism with unit weights.
            return swrr(&mut self.current, candidates, |_| 1.0);
        }
        swrr(&mut self.current, candidates, weight)
    }
}

/// One step of smooth weighted round-robin over `candidates` with `weight`.
pub(super) fn swrr(
    current: &mut Vec<f64>,
    candidates: &[Candidate],
    weight: impl Fn(&Candidate) -> f64,
) -> usize {
    let needed = candidates.iter().map(|c| c.index + 1).max().unwrap_or(0);
    if current.len() < needed {
        current.resize(needed, 0.0);
    }
    let mut total = 0.0;
    let mut best: Option<(f64, usize)> = None;
    for c in candidates {
        let w = weight(c);
        if w <= 0.0 {
            continue;
        }
        total += w;
        current[c.index] += w;
        let cur = current[c.index];
        // Ties go to config order.
        if best.is_none_or(|(b, i)| cur > b || (cur == b && c.index < i)) {
            best = Some((cur, c.index));
        }
    }
    match best {
        Some((_, i)) => {
            current[i] -= total;
            i
        }
        None => candidates[0].index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, weight: f64) -> Candidate {
        Candidate {
            weight,
            ..Candidate::new(index)
        }
    }

    #[test]
    fn exact_shares_in_every_window_and_interleaved() {
        let now = Instant::now();
        let cases: &[&[f64]] = &[
            &[3.0, 1.0],
            &[1.0, 1.0, 1.0],
            &[5.0, 2.0, 1.0],
            &[0.5, 1.5],
            &[10.0, 1.0],
        ];
        for weights in cases {
            let cands: Vec<Candidate> = weights.iter().enumerate().map(|(i, w)| c(i, *w)).collect();
            let mut s = Weighted::new(weights.len());
            let total: f64 = weights.iter().sum();
            // Σw picks per window when weights are integers; scale fractional ones.
            let scale = if weights.iter().all(|w| w.fract() == 0.0) {
                1.0
            } else {
                2.0
            };
            let window = (total * scale) as usize;
            let picks: Vec<usize> = (0..window * 5).map(|_| s.pick(&cands, now)).collect();
            for w in picks.chunks(window) {
                for (i, weight) in weights.iter().enumerate() {
                    let got = w.iter().filter(|&&p| p == i).count();
                    assert_eq!(got, (weight * scale) as usize, "{weights:?}: window {w:?}");
                }
            }
            if *weights == [3.0, 1.0] {
                assert_eq!(
                    &picks[..4],
                    &[0, 0, 1, 0],
                    "smooth: the light provider is not last in a burst"
                );
            }
        }
    }

    #[test]
    fn zero_weight_only_when_nothing_else_is_eligible() {
        let now = Instant::now();
        let mut s = Weighted::new(2);
        let both = [c(0, 0.0), c(1, 2.0)];
        assert!((0..10).all(|_| s.pick(&both, now) == 1));
        let zeros = [c(0, 0.0), c(1, 0.0)];
        let picks: Vec<usize> = (0..4).map(|_| s.pick(&zeros, now)).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 2, "{picks:?}");
    }

    #[test]
    fn a_provider_leaving_the_candidates_does_not_skew_the_rest() {
        let now = Instant::now();
        let mut s = Weighted::new(3);
        let all = [c(0, 1.0), c(1, 1.0), c(2, 2.0)];
        for _ in 0..7 {
            s.pick(&all, now);
        }
        // Provider 2 becomes ineligible (busy/unhealthy): 0 and 1 alternate.
        let two = [c(0, 1.0), c(1, 1.0)];
        let picks: Vec<usize> = (0..10).map(|_| s.pick(&two, now)).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 5, "{picks:?}");
    }
}
