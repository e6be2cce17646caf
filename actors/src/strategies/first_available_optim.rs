//! `first_available_optim`: as `first_available` (one request per provider, first free in config
//! order), but it prefers a provider whose host last served this model (its weights and KV cache
//! are warm) and avoids hosts that are busy with another model right now (a GPU host switching
//! models pays a load). The registry fills `warm` and `busy_other` per candidate and records what
//! each host served, which also feeds the KeepAliveMonitor.

use std::time::Instant;

use super::Candidate;

#[derive(Clone, Copy, Debug, Default)]
pub struct FirstAvailableOptim;

impl FirstAvailableOptim {
    pub fn pick(&mut self, candidates: &[Candidate], _now: Instant) -> usize {
        let rank = |c: &Candidate| (c.busy_other, !c.warm, c.index);
        candidates
            .iter()
            .min_by_key(|c| rank(c))
            .map_or(0, |c| c.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: usize, warm: bool, busy_other: bool) -> Candidate {
        Candidate {
            warm,
            busy_other,
            ..Candidate::new(index)
        }
    }

    #[test]
    fn warm_and_idle_hosts_first_then_config_order() {
        let now = Instant::now();
        let cases: &[(&[Candidate], usize)] = &[
            (&[c(0, false, false), c(1, true, false)], 1),
            (&[c(0, true, true), c(1, false, false)], 1),
            (&[c(0, false, true), c(1, false, true)], 0),
            (&[c(0, false, false), c(1, false, false)], 0),
            (&[c(0, true, true), c(1, false, true), c(2, true, false)], 2),
        ];
        for (cands, want) in cases {
            assert_eq!(FirstAvailableOptim.pick(cands, now), *want, "{cands:?}");
        }
    }
}
