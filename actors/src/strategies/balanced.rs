//! `balanced`: the provider with the fewest requests in flight; ties go to the one that has served
//! the fewest so far, then to config order. Deterministic.

use std::time::Instant;

use super::Candidate;

#[derive(Clone, Copy, Debug, Default)]
pub struct Balanced;

impl Balanced {
    pub fn pick(&mut self, candidates: &[Candidate], _now: Instant) -> usize {
        candidates
            .iter()
            .min_by_key(|c| (c.in_flight, c.served, c.index))
            .map_or(0, |c| c.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, in_flight: u32, served: u64) -> Candidate {
        Candidate {
            in_flight,
            served,
            ..Candidate::new(index)
        }
    }

    #[test]
    fn table() {
        let now = Instant::now();
        let cases: &[(&[Candidate], usize)] = &[
            (&[c(0, 0, 0)], 0),
            (&[c(0, 2, 0), c(1, 1, 50)], 1),
            (&[c(0, 1, 9), c(1, 1, 3), c(2, 1, 4)], 1),
            (&[c(0, 0, 5), c(1, 0, 5)], 0),
            (&[c(3, 0, 0), c(5, 0, 0)], 3),
        ];
        for (cands, want) in cases {
            assert_eq!(Balanced.pick(cands, now), *want, "{cands:?}");
        }
    }

    #[test]
    fn spreads_sequential_requests_evenly() {
        let now = Instant::now();
        let mut served = [0u64; 3];
        for _ in 0..300 {
            let cands: Vec<_> = (0..3).map(|i| c(i, 0, served[i])).collect();
            served[Balanced.pick(&cands, now)] += 1;
        }
        assert_eq!(served, [100, 100, 100]);
    }
}
