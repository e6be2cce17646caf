//! Sliding 60-second windows of requests and tokens per key (pure: time is a parameter).
//!
//! A window is a log of `(when, amount)` events; an event counts while `now - when < span`. That
//! gives exact counts (no bucket edges letting 2× through) at the cost of one entry per request,
//! which a limit of a few thousand per minute keeps small. The Redis version ([`super::limiter`])
//! runs the same rules in a Lua script on Redis' clock.
//!
//! Rules:
//! - requests: admitted while fewer than `rpm` are in the window; otherwise refused with the time
//!   until the oldest one that must leave does;
//! - tokens: counted after the answer (its usage); a request is refused while the window already
//!   holds `tpm` or more, until enough have aged out to fall below it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const SPAN: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Default)]
pub struct SlidingWindow {
    events: VecDeque<(Instant, u64)>,
    total: u64,
}

impl SlidingWindow {
    fn prune(&mut self, now: Instant) {
        while let Some(&(t, n)) = self.events.front() {
            if now.saturating_duration_since(t) < SPAN {
                break;
            }
            self.events.pop_front();
            self.total -= n;
        }
    }

    /// The amount in the window at `now`.
    pub fn used(&mut self, now: Instant) -> u64 {
        self.prune(now);
        self.total
    }

    pub fn add(&mut self, now: Instant, n: u64) {
        self.prune(now);
        if n > 0 {
            self.events.push_back((now, n));
            self.total += n;
        }
    }

    /// How long until the window holds less than `limit` (zero if it already does).
    pub fn wait_below(&mut self, now: Instant, limit: u64) -> Duration {
        self.prune(now);
        let mut left = self.total;
        for &(t, n) in &self.events {
            if left < limit {
                break;
            }
            left -= n;
            if left < limit {
                return (t + SPAN).saturating_duration_since(now);
            }
        }
        Duration::ZERO
    }
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Requests,
    Tokens,
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub rpm: u32,
    /// Requests left in the window after this one (0 when refused).
    pub remaining: u32,
    pub tpm: Option<u64>,
    /// Tokens used in the window.
    pub tokens_used: u64,
    /// When refused: which limit, and whole seconds (≥ 1) until a retry can succeed.
    pub refused: Option<(Limit, u64)>,
}

/// Whole seconds, at least 1, rounding up (a `Retry-After` that is never too early).
pub fn retry_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// Both windows of one key.
#[derive(Clone, Debug, Default)]
pub struct KeyWindows {
    pub requests: SlidingWindow,
    pub tokens: SlidingWindow,
}

impl KeyWindows {
    /// Admits (and counts) one request at `now`, or says why not and for how long.
    pub fn admit(&mut self, now: Instant, rpm: u32, tpm: Option<u64>) -> Decision {
        let tokens_used = self.tokens.used(now);
        let mut d = Decision {
            allowed: false,
            rpm,
            remaining: 0,
            tpm,
            tokens_used,
            refused: None,
        };
        if let Some(t) = tpm.filter(|t| tokens_used >= *t) {
            let wait = self.tokens.wait_below(now, t);
            d.refused = Some((Limit::Tokens, retry_secs(wait)));
            return d;
        }
        let used = self.requests.used(now);
        if used >= u64::from(rpm) {
            // The event whose leaving frees a slot: the (used - rpm + 1)-th oldest.
            let k = (used - u64::from(rpm)) as usize;
            let t = self.requests.events[k].0;
            d.refused = Some((
                Limit::Requests,
                retry_secs((t + SPAN).saturating_duration_since(now)),
            ));
            return d;
        }
        self.requests.add(now, 1);
        d.allowed = true;
        d.remaining = rpm - used as u32 - 1;
        d
    }

    /// Until the oldest event of either window leaves it (`None` when both are empty).
    pub fn oldest_leaves_in(&mut self, now: Instant) -> Option<Duration> {
        self.requests.prune(now);
        self.tokens.prune(now);
        [&self.requests, &self.tokens]
            .iter()
            .filter_map(|w| w.events.front().map(|&(t, _)| t))
            .min()
            .map(|t| (t + SPAN).saturating_duration_since(now))
    }

    /// True when both windows are empty at `now` (the entry can be dropped).
    pub fn idle(&mut self, now: Instant) -> bool {
        self.requests.used(now) == 0 && self.tokens.used(now) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn requests_slide_exactly_over_sixty_seconds() {
        let t0 = Instant::now();
        let mut w = KeyWindows::default();
        // (offset ms, allowed, remaining, retry seconds)
        let table: &[(u64, bool, u32, Option<u64>)] = &[
            (0, true, 2, None),
            (10_000, true, 1, None),
            (20_000, true, 0, None),
            (20_001, false, 0, Some(40)), // the first leaves at 60 s
            (59_999, false, 0, Some(1)),  // 1 ms left still says 1 s
            (60_000, true, 0, None),      // the first one left
            (60_001, false, 0, Some(10)), // next to leave: the one at 10 s
            (130_000, true, 2, None),     // all gone
        ];
        for &(at, allowed, remaining, retry) in table {
            let d = w.admit(t0 + ms(at), 3, None);
            assert_eq!(d.allowed, allowed, "at {at}");
            assert_eq!(d.remaining, remaining, "at {at}");
            assert_eq!(d.refused.map(|r| r.1), retry, "at {at}");
            if !allowed {
                assert_eq!(d.refused.unwrap().0, Limit::Requests);
            }
        }
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let t0 = Instant::now();
        let mut w = KeyWindows::default();
        assert!(w.admit(t0, 1, None).allowed);
        for i in 1..100 {
            assert!(!w.admit(t0 + ms(i), 1, None).allowed);
        }
        assert_eq!(w.requests.used(t0 + ms(100)), 1);
        assert!(w.admit(t0 + ms(60_000), 1, None).allowed);
    }

    #[test]
    fn tokens_refuse_while_at_or_over_the_limit_until_enough_age_out() {
        let t0 = Instant::now();
        let mut w = KeyWindows::default();
        assert!(w.admit(t0, 100, Some(1000)).allowed);
        w.tokens.add(t0, 600);
        assert!(
            w.admit(t0 + ms(5_000), 100, Some(1000)).allowed,
            "600 < 1000"
        );
        w.tokens.add(t0 + ms(5_000), 500);
        let d = w.admit(t0 + ms(6_000), 100, Some(1000));
        assert_eq!(d.tokens_used, 1100);
        // Dropping the first 600 brings it to 500 < 1000: at 60 s.
        assert_eq!(d.refused, Some((Limit::Tokens, 54)));
        assert!(w.admit(t0 + ms(60_000), 100, Some(1000)).allowed);
        // A single answer bigger than the limit blocks for its full minute.
        let mut w = KeyWindows::default();
        w.tokens.add(t0, 5000);
        assert_eq!(
            w.admit(t0 + ms(30_500), 10, Some(1000)).refused,
            Some((Limit::Tokens, 30))
        );
        assert_eq!(w.oldest_leaves_in(t0 + ms(30_500)), Some(ms(29_500)));
        assert!(w.idle(t0 + ms(200_000)));
        assert_eq!(w.oldest_leaves_in(t0 + ms(200_000)), None);
    }

    #[test]
    fn wait_below_is_zero_when_under_and_exact_when_over() {
        let t0 = Instant::now();
        let mut s = SlidingWindow::default();
        assert_eq!(s.wait_below(t0, 10), Duration::ZERO);
        s.add(t0, 4);
        s.add(t0 + ms(1000), 4);
        s.add(t0 + ms(2000), 4);
        assert_eq!(s.wait_below(t0 + ms(2000), 13), Duration::ZERO);
        assert_eq!(s.wait_below(t0 + ms(2000), 12), ms(58_000));
        assert_eq!(s.wait_below(t0 + ms(2000), 5), ms(59_000));
        assert_eq!(s.wait_below(t0 + ms(2000), 1), ms(60_000));
    }

    #[test]
    fn retry_seconds_round_up_and_are_at_least_one() {
        for (d, s) in [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (59_000, 59)] {
            assert_eq!(retry_secs(ms(d)), s, "{d}");
        }
    }
}
