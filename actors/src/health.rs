//! Passive health: a circuit breaker per provider, as a pure state machine.
//!
//! `Closed` → (`threshold` consecutive failures) → `Open { until }`. Once the cool-down has elapsed the
//! registry admits exactly one request as a *probe* (the half-open state lives with the chooser,
//! because only it can make "exactly one" atomic). The probe's success closes the breaker; its
//! failure re-opens it with a doubled cool-down (capped). Client-caused errors and client
//! disconnects are never reported here. Time is a parameter: no method reads a clock.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until: Instant },
}

#[derive(Clone, Debug)]
pub struct Breaker {
    state: BreakerState,
    consecutive_failures: u32,
    threshold: u32,
    base_cooldown: Duration,
    max_cooldown: Duration,
    cooldown: Duration,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker::new(3, Duration::from_secs(5), Duration::from_secs(60))
    }
}

impl Breaker {
    pub fn new(threshold: u32, base_cooldown: Duration, max_cooldown: Duration) -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            threshold: threshold.max(1),
            base_cooldown,
            max_cooldown,
            cooldown: base_cooldown,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed;
        self.consecutive_failures = 0;
        self.cooldown = self.base_cooldown;
    }

    /// `probe`: the failed request was the single half-open probe.
    pub fn on_failure(&mut self, now: Instant, probe: bool) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            BreakerState::Open { .. } if probe => {
                self.cooldown = (self.cooldown * 2).min(self.max_cooldown);
                self.state = BreakerState::Open {
                    until: now + self.cooldown,
                };
            }
            BreakerState::Closed if self.consecutive_failures >= self.threshold => {
                self.state = BreakerState::Open {
                    until: now + self.cooldown,
                };
            }
            // Late failures of requests admitted before the breaker opened change nothing.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_backs_off_on_failed_probes() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut b = Breaker::new(3, 5 * s, 12 * s);
        b.on_failure(t0, false);
        b.on_failure(t0, false);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "two failures keep it closed"
        );
        b.on_failure(t0, false);
        assert_eq!(b.state(), BreakerState::Open { until: t0 + 5 * s });
        b.on_failure(t0 + s, false);
        assert_eq!(
            b.state(),
            BreakerState::Open { until: t0 + 5 * s },
            "late failures change nothing"
        );
        b.on_failure(t0 + 6 * s, true);
        assert_eq!(
            b.state(),
            BreakerState::Open { until: t0 + 16 * s },
            "failed probe doubles"
        );
        b.on_failure(t0 + 16 * s, true);
        assert_eq!(
            b.state(),
            BreakerState::Open { until: t0 + 28 * s },
            "capped at max"
        );
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure(t0 + 30 * s, false);
        assert_eq!(b.state(), BreakerState::Closed, "success reset the count");
        b.on_failure(t0 + 30 * s, false);
        b.on_failure(t0 + 30 * s, false);
        assert_eq!(
            b.state(),
            BreakerState::Open { until: t0 + 35 * s },
            "and the cool-down"
        );
    }

    #[test]
    fn success_between_failures_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for _ in 0..10 {
            b.on_failure(t0, false);
            b.on_failure(t0, false);
            b.on_success();
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
