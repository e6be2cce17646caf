//! `first_available`: each provider serves one request at a time (or its `max_concurrency`); a
//! request takes the first free provider in config order. The capacity rule is applied by the
//! registry's filter (see [`super::Strategy::default_capacity`]); waiting requests queue FIFO in
//! the registry and give up at their deadline.

use std::time::Instant;

use super::Candidate;

#[derive(Clone, Copy, Debug, Default)]
pub struct FirstAvailable;

impl FirstAvailable {
    pub fn pick(&mut self, candidates: &[Candidate], _now: Instant) -> usize {
        candidates.iter().map(|c| c.index).min().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_config_order() {
        let now = Instant::now();
        let cands = [Candidate::new(2), Candidate::new(1), Candidate::new(3)];
        assert_eq!(FirstAvailable.pick(&cands, now), 1);
    }
}
