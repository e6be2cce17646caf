//! Provider-choice strategies: one file per algorithm, dispatched by the [`Strategy`] enum.
//!
//! The registry filters candidates first (health, exclusions, capacity, priority tier), so a
//! strategy only ranks the providers it is given. Each strategy is plain data with a `pick`
//! method; time is a parameter, so tests need no runtime and no sleeps.

mod adaptive;
mod balanced;
mod dynamic_weighted;
mod first_available;
mod first_available_optim;
mod weighted;

use std::fmt;
use std::time::Instant;

pub use adaptive::Adaptive;
pub use balanced::Balanced;
pub use dynamic_weighted::DynamicWeighted;
pub use first_available::FirstAvailable;
pub use first_available_optim::FirstAvailableOptim;
pub use weighted::Weighted;

/// What a strategy may look at for one eligible provider.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Index of the provider in its model's config order.
    pub index: usize,
    pub in_flight: u32,
    pub served: u64,
    pub weight: f64,
    /// Peak-EWMA latency in seconds, if measured.
    pub latency: Option<f64>,
    /// Recent share of failed calls, 0..=1 (time-decayed).
    pub error_rate: f64,
    /// The provider's host last served this model (its cache is warm).
    pub warm: bool,
    /// The provider's host is serving another model right now.
    pub busy_other: bool,
}

impl Candidate {
    /// A candidate with neutral values (for tests and builders).
    pub fn new(index: usize) -> Candidate {
        Candidate {
            index,
            in_flight: 0,
            served: 0,
            weight: 1.0,
            latency: None,
            error_rate: 0.0,
            warm: false,
            busy_other: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    Balanced,
    Weighted,
    DynamicWeighted,
    FirstAvailable,
    FirstAvailableOptim,
    Adaptive,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 6] = [
        StrategyKind::Balanced,
        StrategyKind::Weighted,
        StrategyKind::DynamicWeighted,
        StrategyKind::FirstAvailable,
        StrategyKind::FirstAvailableOptim,
        StrategyKind::Adaptive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Balanced => "balanced",
            StrategyKind::Weighted => "weighted",
            StrategyKind::DynamicWeighted => "dynamic_weighted",
            StrategyKind::FirstAvailable => "first_available",
            StrategyKind::FirstAvailableOptim => "first_available_optim",
            StrategyKind::Adaptive => "adaptive",
        }
    }

    /// Strategies that give each provider one request at a time unless `max_concurrency` says
    /// otherwise.
    pub fn default_capacity(self) -> Option<u32> {
        match self {
            StrategyKind::FirstAvailable | StrategyKind::FirstAvailableOptim => Some(1),
            _ => None,
        }
    }

    /// Parses `LLM_ROUTER_BALANCE_STRATEGY`; the error names the valid values.
    pub fn parse(s: &str) -> Result<StrategyKind, String> {
        let s = s.trim().to_ascii_lowercase();
        StrategyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let valid: Vec<_> = StrategyKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown balance strategy \"{s}\"; valid: {}",
                    valid.join(", ")
                )
            })
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One strategy instance per model.
#[derive(Clone, Debug)]
pub enum Strategy {
    Balanced(Balanced),
    Weighted(Weighted),
    DynamicWeighted(DynamicWeighted),
    FirstAvailable(FirstAvailable),
    FirstAvailableOptim(FirstAvailableOptim),
    Adaptive(Adaptive),
}

impl Strategy {
    /// `seed` feeds randomised strategies (`adaptive`); use distinct seeds per model.
    pub fn new(kind: StrategyKind, providers: usize, seed: u64) -> Strategy {
        match kind {
            StrategyKind::Balanced => Strategy::Balanced(Balanced),
            StrategyKind::Weighted => Strategy::Weighted(Weighted::new(providers)),
            StrategyKind::DynamicWeighted => {
                Strategy::DynamicWeighted(DynamicWeighted::new(providers))
            }
            StrategyKind::FirstAvailable => Strategy::FirstAvailable(FirstAvailable),
            StrategyKind::FirstAvailableOptim => Strategy::FirstAvailableOptim(FirstAvailableOptim),
            StrategyKind::Adaptive => Strategy::Adaptive(Adaptive::new(seed)),
        }
    }

    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Balanced(_) => StrategyKind::Balanced,
            Strategy::Weighted(_) => StrategyKind::Weighted,
            Strategy::DynamicWeighted(_) => StrategyKind::DynamicWeighted,
            Strategy::FirstAvailable(_) => StrategyKind::FirstAvailable,
            Strategy::FirstAvailableOptim(_) => StrategyKind::FirstAvailableOptim,
            Strategy::Adaptive(_) => StrategyKind::Adaptive,
        }
    }

    /// Picks one of `candidates` (never empty) and returns its `index`.
    pub fn pick(&mut self, candidates: &[Candidate], now: Instant) -> usize {
        debug_assert!(!candidates.is_empty());
        match self {
            Strategy::Balanced(s) => s.pick(candidates, now),
            Strategy::Weighted(s) => s.pick(candidates, now),
            Strategy::DynamicWeighted(s) => s.pick(candidates, now),
            Strategy::FirstAvailable(s) => s.pick(candidates, now),
            Strategy::FirstAvailableOptim(s) => s.pick(candidates, now),
            Strategy::Adaptive(s) => s.pick(candidates, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_list_the_valid_ones() {
        for k in StrategyKind::ALL {
            assert_eq!(StrategyKind::parse(k.as_str()), Ok(k));
        }
        assert_eq!(
            StrategyKind::parse(" Weighted "),
            Ok(StrategyKind::Weighted)
        );
        let e = StrategyKind::parse("round_robin").unwrap_err();
        assert_eq!(
            e,
            "unknown balance strategy \"round_robin\"; valid: balanced, weighted, dynamic_weighted, first_available, first_available_optim, adaptive"
        );
    }
}
