//! One model's providers as the selection core sees them: per-provider [`Slot`]s (in-flight,
//! served, the half-open probe flag, rpm window, Redis tokens, verdicts seen by other replicas),
//! per-host [`Host`] occupancy, and [`Pool::select`], the candidate filter in front of the
//! strategy. Pure: time is a parameter.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::provider::ProviderSnapshot;
use crate::routing::{CacheAffinity, Placement, SessionKey};
use crate::strategies::{Candidate, Strategy};

use super::selection::WaiterId;

pub(super) struct Slot {
    pub snapshot: Arc<ProviderSnapshot>,
    pub in_flight: u32,
    pub served: u64,
    pub probing: bool,
    /// Index into the core's hosts (providers on one `api_host` share a GPU host).
    pub host: usize,
    /// In-flight cap: `max_concurrency`, else the strategy's default (1 for first_available*).
    pub capacity: Option<u32>,
    /// Redis lease tokens held by this replica for this provider.
    pub tokens: Vec<String>,
    /// Tokens released here whose removal Redis has not confirmed yet.
    pub released: Vec<String>,
    /// Start times of this replica's requests in the last minute (for `rpm`).
    pub recent: VecDeque<Instant>,
    /// Every slot is held by other replicas (as of a failed acquire): not asked until then.
    pub remote_busy_until: Option<Instant>,
    /// The shared `rpm` window (all replicas) is full until then (as of a refused admission).
    pub remote_rpm_until: Option<Instant>,
    /// Another replica saw this provider's circuit open until then.
    pub remote_open_until: Option<Instant>,
    /// Requests started on this provider by all replicas (from Redis), for tie-breaking.
    pub global_served: Option<u64>,
    /// The open-until this replica last published.
    pub published_open: Option<Instant>,
}

impl Slot {
    pub fn new(snapshot: Arc<ProviderSnapshot>, host: usize, capacity: Option<u32>) -> Slot {
        Slot {
            snapshot,
            in_flight: 0,
            served: 0,
            probing: false,
            host,
            capacity,
            tokens: Vec::new(),
            released: Vec::new(),
            recent: VecDeque::new(),
            remote_busy_until: None,
            remote_rpm_until: None,
            remote_open_until: None,
            global_served: None,
            published_open: None,
        }
    }

    /// This slot's state under a new snapshot (a reload kept the provider); the caller sets
    /// host and capacity. The verdicts seen from other replicas are re-read at the next sync.
    pub fn carry(&mut self, snapshot: Arc<ProviderSnapshot>) -> Slot {
        Slot {
            snapshot,
            in_flight: self.in_flight,
            served: self.served,
            probing: self.probing,
            host: self.host,
            capacity: self.capacity,
            tokens: std::mem::take(&mut self.tokens),
            released: std::mem::take(&mut self.released),
            recent: std::mem::take(&mut self.recent),
            remote_busy_until: self.remote_busy_until,
            remote_rpm_until: self.remote_rpm_until,
            remote_open_until: self.remote_open_until,
            global_served: self.global_served,
            published_open: self.published_open,
        }
    }

    /// Records a request started at `now` in the rpm window (only when `rpm` is set).
    pub fn record_start(&mut self, now: Instant) {
        if self.snapshot.config.rpm.is_none() {
            return;
        }
        let window = self.snapshot.config.rpm_window;
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
    }
}

/// What a host (scheme + authority of `api_host`) is doing, across all models.
#[derive(Debug, Default)]
pub(super) struct Host {
    pub key: String,
    /// In-flight requests per model index.
    pub in_flight: crate::FastMap<usize, u32>,
    /// The model it served last and when (the request started).
    pub last: Option<(usize, Instant)>,
    /// With Redis: models other replicas are serving on this host now.
    pub remote_busy: Vec<usize>,
    /// With Redis: the latest model served here by any replica, and when.
    pub remote_last: Option<(usize, Instant)>,
    /// The `last` this replica published.
    pub published_last: Option<Instant>,
}

impl Host {
    pub fn busy_with_other(&self, model: usize) -> bool {
        self.in_flight.iter().any(|(m, n)| *m != model && *n > 0)
            || self.remote_busy.iter().any(|m| *m != model)
    }

    /// The latest model served here, by this replica or (with Redis) any other.
    pub fn latest(&self) -> Option<(usize, Instant)> {
        match (self.last, self.remote_last) {
            (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// With `rpm` requests started in the last `window` (a minute unless configured otherwise),
/// when the oldest leaves the window.
pub(super) fn rpm_full_until(
    recent: &VecDeque<Instant>,
    rpm: u32,
    window: Duration,
    now: Instant,
) -> Option<Instant> {
    let in_window = recent
        .iter()
        .filter(|t| now.saturating_duration_since(**t) < window)
        .count();
    if in_window < rpm as usize {
        return None;
    }
    recent
        .iter()
        .find(|t| now.saturating_duration_since(**t) < window)
        .map(|oldest| *oldest + window)
}

/// Host key of an `api_host`: scheme and authority, without path.
pub(super) fn host_key(api_host: &str) -> String {
    let (scheme, rest) = api_host.split_once("://").unwrap_or(("http", api_host));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

/// A request waiting for capacity (queued, or while its Redis acquire is in flight).
#[derive(Debug)]
pub(super) struct Waiter {
    pub id: WaiterId,
    pub exclude: Vec<String>,
    pub deadline: Instant,
    /// The requested model name, when the catch-all model serves it.
    pub alias: Option<Arc<str>>,
    /// The request's session, for cache affinity.
    pub session: Option<SessionKey>,
}

pub(super) struct Pool {
    pub name: String,
    pub slots: Vec<Slot>,
    pub strategy: Strategy,
    /// FIFO of requests waiting for capacity.
    pub waiters: VecDeque<Waiter>,
    /// Scratch buffers of `select`, kept so a choice allocates nothing.
    pub scratch: (Vec<(u32, Candidate, bool)>, Vec<Candidate>),
    /// Cache affinity (`LLM_ROUTER_CACHE_AFFINITY`), when on.
    pub affinity: Option<CacheAffinity>,
}

/// A pool's verdict for one request.
#[derive(Debug, PartialEq)]
pub(super) enum Eligibility {
    /// Lease this provider index (`true`: as the half-open probe), placed by cache affinity
    /// (with its session) or by the strategy (`None`).
    Lease(usize, bool, Option<(SessionKey, Placement)>),
    Exhausted,
    Unhealthy(Vec<String>),
    RateLimited(Duration),
    Full,
}

impl Pool {
    /// Filters candidates (exclusions, health, `Retry-After`, capacity, priority tier), then
    /// places the request's session among them (cache affinity) or asks the strategy.
    pub fn select(
        &mut self,
        model: usize,
        hosts: &[Host],
        exclude: &[String],
        session: Option<SessionKey>,
        now: Instant,
    ) -> Eligibility {
        let (mut cands, mut tier) = std::mem::take(&mut self.scratch);
        let e = self.select_in(model, hosts, exclude, session, now, &mut cands, &mut tier);
        cands.clear();
        tier.clear();
        self.scratch = (cands, tier);
        e
    }

    #[allow(clippy::too_many_arguments)]
    fn select_in(
        &mut self,
        model: usize,
        hosts: &[Host],
        exclude: &[String],
        session: Option<SessionKey>,
        now: Instant,
        cands: &mut Vec<(u32, Candidate, bool)>,
        tier: &mut Vec<Candidate>,
    ) -> Eligibility {
        cands.clear();
        tier.clear();
        let mut any_untried = false;
        let mut unhealthy = Vec::new();
        let mut limited: Option<Instant> = None;
        let mut limited_count = 0;
        let mut best_tier = u32::MAX;
        for (i, s) in self.slots.iter().enumerate() {
            let cfg = &s.snapshot.config;
            if exclude.contains(&cfg.id) {
                continue;
            }
            any_untried = true;
            let probe = match s.snapshot.open_until() {
                None => false,
                Some(until) if now >= until && !s.probing => true,
                Some(_) => {
                    unhealthy.push(cfg.id.clone());
                    continue;
                }
            };
            if s.remote_open_until.is_some_and(|t| t > now) && !probe {
                unhealthy.push(cfg.id.clone());
                continue;
            }
            if s.remote_busy_until.is_some_and(|t| t > now) {
                continue;
            }
            let rpm_until = cfg
                .rpm
                .and_then(|rpm| rpm_full_until(&s.recent, rpm, cfg.rpm_window, now))
                .or(s.remote_rpm_until.filter(|t| *t > now));
            if let Some(until) = s.snapshot.rate_limited_until(now).or(rpm_until) {
                limited = Some(limited.map_or(until, |l: Instant| l.min(until)));
                limited_count += 1;
                continue;
            }
            if s.capacity.is_some_and(|max| s.in_flight >= max) {
                continue;
            }
            best_tier = best_tier.min(cfg.priority);
            let host = &hosts[s.host];
            cands.push((
                cfg.priority,
                Candidate {
                    index: i,
                    in_flight: s.in_flight,
                    served: s.global_served.unwrap_or(s.served).max(s.served),
                    weight: cfg.weight,
                    latency: s.snapshot.latency().map(|d| d.as_secs_f64()),
                    error_rate: s.snapshot.error_rate(now),
                    warm: host.latest().is_some_and(|(m, _)| m == model),
                    busy_other: host.busy_with_other(model),
                },
                probe,
            ));
        }
        if !any_untried {
            return Eligibility::Exhausted;
        }
        if cands.is_empty() {
            let untried = self
                .slots
                .iter()
                .filter(|s| !exclude.contains(&s.snapshot.config.id))
                .count();
            return if untried > unhealthy.len() + limited_count {
                Eligibility::Full
            } else if let (Some(until), true) = (limited, limited_count > 0) {
                Eligibility::RateLimited(until.saturating_duration_since(now))
            } else {
                Eligibility::Unhealthy(unhealthy)
            };
        }
        tier.extend(
            cands
                .iter()
                .filter(|(p, _, _)| *p == best_tier)
                .map(|(_, c, _)| *c),
        );
        let placed = self.place_session(session, tier, now);
        let index = match placed {
            Some((_, p)) => p.index,
            None => self.strategy.pick(tier, now),
        };
        let probe = cands.iter().any(|(_, c, probe)| c.index == index && *probe);
        Eligibility::Lease(index, probe, placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_rpm_window_fills_and_frees_as_requests_age() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let recent: VecDeque<Instant> = [at(0), at(10), at(20)].into_iter().collect();
        let cases = [
            ("room under the limit", 4, at(30), None),
            ("full until the oldest leaves", 3, at(30), Some(at(60))),
            ("the oldest left at 60 s", 3, at(61), None),
            ("full until the second leaves", 2, at(61), Some(at(70))),
        ];
        for (name, rpm, now, want) in cases {
            assert_eq!(rpm_full_until(&recent, rpm, MINUTE, now), want, "{name}");
        }
        // A 10 s window (the FastAPI router's `rate_limit_window: 10`): only the last start is in it.
        let ten = Duration::from_secs(10);
        assert_eq!(rpm_full_until(&recent, 2, ten, at(25)), None);
        assert_eq!(rpm_full_until(&recent, 1, ten, at(25)), Some(at(30)));
    }

    #[test]
    fn host_keys_keep_scheme_and_authority_only() {
        let cases = [
            ("http://10.0.0.1:8000", "http://10.0.0.1:8000"),
            ("HTTP://Gpu-1:8000/v1/", "http://gpu-1:8000"),
            ("https://api.example.com/openai", "https://api.example.com"),
            ("gpu-2:7000", "http://gpu-2:7000"),
        ];
        for (api_host, want) in cases {
            assert_eq!(host_key(api_host), want, "{api_host}");
        }
    }
}
