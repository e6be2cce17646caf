//! Provider-choice strategies: one file per algorithm, dispatched by the [`Strategy`] enum.
//!
//! The registry filters candidates first (health, exclusions, capacity, priority tier), so a
//! strategy only ranks the providers it is given. Each strategy is plain data with a `pick`
//! method; time is a parameter, so tests need no runtime and no sleeps.

mod balanced;

use std::fmt;
use std::time::Instant;

pub use balanced::Balanced;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    Balanced,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 1] = [StrategyKind::Balanced];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Balanced => "balanced",
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
}

impl Strategy {
    pub fn new(kind: StrategyKind, _providers: usize) -> Strategy {
        match kind {
            StrategyKind::Balanced => Strategy::Balanced(Balanced),
        }
    }

    pub fn kind(&self) -> StrategyKind {
        match self {
            Strategy::Balanced(_) => StrategyKind::Balanced,
        }
    }

    /// Picks one of `candidates` (never empty) and returns its `index`.
    pub fn pick(&mut self, candidates: &[Candidate], now: Instant) -> usize {
        debug_assert!(!candidates.is_empty());
        match self {
            Strategy::Balanced(s) => s.pick(candidates, now),
        }
    }
}
