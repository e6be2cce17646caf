//! `adaptive`: power of two choices. Two distinct candidates are drawn at random and the one with
//! the lower expected cost — peak-EWMA latency × (in-flight + 1) — wins. Providers with no
//! measurement yet cost 0, so they are tried early (optimistic). Health comes from the registry's
//! filter (open circuits are never candidates). The random source is a seeded xorshift, so a
//! strategy instance is reproducible in tests.

use std::time::Instant;

use super::Candidate;

#[derive(Clone, Debug)]
pub struct Adaptive {
    state: u64,
}

impl Adaptive {
    pub fn new(seed: u64) -> Adaptive {
        Adaptive { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn cost(c: &Candidate) -> f64 {
        c.latency.unwrap_or(0.0) * f64::from(c.in_flight + 1)
    }

    pub fn pick(&mut self, candidates: &[Candidate], _now: Instant) -> usize {
        let n = candidates.len();
        if n == 1 {
            return candidates[0].index;
        }
        let a = (self.next() % n as u64) as usize;
        let mut b = (self.next() % (n as u64 - 1)) as usize;
        if b >= a {
            b += 1;
        }
        let (ca, cb) = (&candidates[a], &candidates[b]);
        // Ties go to the first drawn: random, so equal providers share evenly.
        let key = |c: &Candidate| (Adaptive::cost(c), c.in_flight);
        if key(ca).partial_cmp(&key(cb)) == Some(std::cmp::Ordering::Greater) {
            cb.index
        } else {
            ca.index
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, latency: Option<f64>, in_flight: u32) -> Candidate {
        Candidate {
            latency,
            in_flight,
            ..Candidate::new(index)
        }
    }

    #[test]
    fn the_cheaper_of_two_wins_and_a_slow_provider_is_avoided() {
        let now = Instant::now();
        let mut s = Adaptive::new(42);
        // Two candidates: both are always drawn, so the cheaper always wins.
        assert!((0..50).all(|_| s.pick(&[c(0, Some(0.5), 0), c(1, Some(0.1), 0)], now) == 1));
        // In-flight counts: 0.1 × 5 = 0.5 > 0.2 × 1.
        assert_eq!(s.pick(&[c(0, Some(0.1), 4), c(1, Some(0.2), 0)], now), 1);
        // Unmeasured providers are tried first.
        assert_eq!(s.pick(&[c(0, Some(0.1), 0), c(1, None, 0)], now), 1);
        // Among many, a very slow provider is picked only when drawn against another slow one.
        let cands: Vec<Candidate> = (0..5)
            .map(|i| c(i, Some(if i == 2 { 5.0 } else { 0.1 }), 0))
            .collect();
        let picks: Vec<usize> = (0..1000).map(|_| s.pick(&cands, now)).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 2).count(), 0);
        for i in [0, 1, 3, 4] {
            let n = picks.iter().filter(|&&p| p == i).count();
            assert!((150..350).contains(&n), "provider {i}: {n} of 1000");
        }
    }

    #[test]
    fn a_seed_reproduces_its_sequence() {
        let now = Instant::now();
        let cands: Vec<Candidate> = (0..4).map(|i| c(i, Some(0.1), 0)).collect();
        let run = |seed| {
            let mut s = Adaptive::new(seed);
            (0..20).map(|_| s.pick(&cands, now)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
