//! Cache affinity (SPEC §7): requests of one session go to the provider that holds the session's
//! prefix/KV cache, as long as its load stays within a bound — bounded-load consistent hashing
//! (Mirrokni, Thorup, Zadimoghaddam 2018).
//!
//! - **Session key** ([`SessionKey::derive`]): `x-session-id`, else `x-claude-code-session-id`,
//!   else the body's `prompt_cache_key`, else the system prompt + first user message (the part of a
//!   conversation every later turn repeats). Only a 64-bit hash is kept, never the text.
//! - **Ring**: [`VNODES`] points per provider at `xxh3(provider id, seed = point number)`, built
//!   from the model's configured provider ids. A session belongs to the first provider clockwise
//!   from its hash that is a candidate (healthy, not excluded). Removing a provider moves only its
//!   own sessions (to their next provider on the ring); adding one takes sessions only to it.
//! - **Bound**: with `m` requests in flight over `n` candidates, a provider may take the session
//!   while its in-flight count is below `ceil(c × (m + 1) / n)` (`c` = the load factor ≥ 1);
//!   otherwise the walk goes on clockwise. Some candidate is always below the bound (not all can be
//!   above the average), so a placement always succeeds and no provider exceeds `c ×` its fair share.
//! - **Last served** ([`LastServed`]): the provider that served a session most recently, bounded
//!   (LRU) and expiring. It is preferred over the ring while within the bound, because after a
//!   spill or a failover the session's freshest prefix lives where it was last served, not at its
//!   ring owner; and when a provider comes back, its former sessions stay where they are warm.
//!
//! **Across replicas** the ring is a pure function of the provider ids and xxh3 (a specified hash
//! with a fixed seed, unlike std's `DefaultHasher`), so every router replica sends a session to
//! the same provider without sharing any state; only the load bound (each replica sees its own
//! in-flight counts, or the shared ones where leases live in Redis) and the last-served table
//! (local) can make replicas differ, and only for sessions that spilled.
//!
//! The types are plain data; time is a parameter. The registry applies [`CacheAffinity::place`]
//! to its filtered candidates before a strategy's pick, so affinity works with every strategy.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::strategies::Candidate;

pub const AFFINITY_VAR: &str = "LLM_ROUTER_CACHE_AFFINITY";
pub const LOAD_FACTOR_VAR: &str = "LLM_ROUTER_CACHE_AFFINITY_LOAD_FACTOR";
pub const TABLE_SIZE_VAR: &str = "LLM_ROUTER_CACHE_AFFINITY_SESSIONS";
pub const TABLE_TTL_VAR: &str = "LLM_ROUTER_CACHE_AFFINITY_TTL_SECONDS";

/// Ring points per provider: a provider's share of sessions deviates ~1/√160 ≈ 8 % from fair.
/// Part of the cross-replica contract: replicas with different values disagree.
pub const VNODES: u64 = 160;

// Seeds separate the key sources, so the same string as a session id and as a cache key differ.
const SEED_SESSION_ID: u64 = 0x5e55_1011;
const SEED_CLAUDE_SESSION: u64 = 0xc1a0_de00;
const SEED_CACHE_KEY: u64 = 0xcac4_e000;
const SEED_CONVERSATION: u64 = 0xc0_4e75;

/// Where a session key came from (for the decision summary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySource {
    SessionId,
    ClaudeCodeSession,
    PromptCacheKey,
    Conversation,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::SessionId => "x-session-id",
            KeySource::ClaudeCodeSession => "x-claude-code-session-id",
            KeySource::PromptCacheKey => "prompt_cache_key",
            KeySource::Conversation => "conversation",
        }
    }
}

/// What a request offers to identify its session; empty strings count as absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionInputs<'a> {
    /// `x-session-id` header.
    pub session_id: Option<&'a str>,
    /// `x-claude-code-session-id` header.
    pub claude_code_session_id: Option<&'a str>,
    /// The body's `prompt_cache_key` (OpenAI).
    pub prompt_cache_key: Option<&'a str>,
    /// The system prompt (all system text, as sent).
    pub system: Option<&'a str>,
    /// The text of the first user message.
    pub first_user: Option<&'a str>,
}

/// A session's identity: a hash, never the text it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub hash: u64,
    pub source: KeySource,
}

impl SessionKey {
    /// The first present of: session id, Claude Code session id, prompt cache key, conversation
    /// opening (system + first user message; either may be missing, not both). `None`: nothing to
    /// key on, so no affinity.
    pub fn derive(inputs: &SessionInputs<'_>) -> Option<SessionKey> {
        fn present(s: Option<&str>) -> Option<&str> {
            s.map(str::trim).filter(|s| !s.is_empty())
        }
        let key = |hash, source| Some(SessionKey { hash, source });
        if let Some(id) = present(inputs.session_id) {
            return key(
                xxh3_64_with_seed(id.as_bytes(), SEED_SESSION_ID),
                KeySource::SessionId,
            );
        }
        if let Some(id) = present(inputs.claude_code_session_id) {
            return key(
                xxh3_64_with_seed(id.as_bytes(), SEED_CLAUDE_SESSION),
                KeySource::ClaudeCodeSession,
            );
        }
        if let Some(k) = present(inputs.prompt_cache_key) {
            return key(
                xxh3_64_with_seed(k.as_bytes(), SEED_CACHE_KEY),
                KeySource::PromptCacheKey,
            );
        }
        // Untrimmed text: the cache holds the bytes as sent. Nested hashing keeps the boundary
        // between the two parts ("ab" + "c" ≠ "a" + "bc").
        let system = inputs.system.filter(|s| !s.is_empty());
        let user = inputs.first_user.filter(|s| !s.is_empty());
        if system.is_none() && user.is_none() {
            return None;
        }
        let inner = xxh3_64_with_seed(system.unwrap_or("").as_bytes(), SEED_CONVERSATION);
        key(
            xxh3_64_with_seed(user.unwrap_or("").as_bytes(), inner),
            KeySource::Conversation,
        )
    }
}

/// Validated settings (from `LLM_ROUTER_CACHE_AFFINITY*`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffinityConfig {
    /// `c` ≥ 1: how far above the average load a session's provider may be.
    pub load_factor: f64,
    /// Sessions remembered per model in the last-served table (0: ring only).
    pub table_size: usize,
    pub ttl: Duration,
}

impl Default for AffinityConfig {
    fn default() -> AffinityConfig {
        AffinityConfig {
            load_factor: 1.25,
            table_size: 10_000,
            ttl: Duration::from_secs(600),
        }
    }
}

impl AffinityConfig {
    /// `Ok(None)` when affinity is off (the default); every bad variable is reported by name.
    pub fn from_vars(
        vars: &HashMap<String, String>,
    ) -> Result<Option<AffinityConfig>, Vec<String>> {
        let mut errors = Vec::new();
        let on = match vars.get(AFFINITY_VAR).map(|s| s.trim()) {
            None | Some("" | "0" | "false" | "off") => false,
            Some("1" | "true" | "on") => true,
            Some(v) => {
                errors.push(format!("{AFFINITY_VAR}={v:?}: expected 1 or 0"));
                false
            }
        };
        let mut cfg = AffinityConfig::default();
        if let Some(v) = vars.get(LOAD_FACTOR_VAR) {
            match v.trim().parse::<f64>() {
                Ok(c) if c.is_finite() && c >= 1.0 => cfg.load_factor = c,
                _ => errors.push(format!(
                    "{LOAD_FACTOR_VAR}={v:?}: expected a number ≥ 1 (e.g. 1.25)"
                )),
            }
        }
        if let Some(v) = vars.get(TABLE_SIZE_VAR) {
            match v.trim().parse::<usize>() {
                Ok(n) => cfg.table_size = n,
                Err(_) => errors.push(format!(
                    "{TABLE_SIZE_VAR}={v:?}: expected a whole number of sessions (0 = ring only)"
                )),
            }
        }
        if let Some(v) = vars.get(TABLE_TTL_VAR) {
            match v.trim().parse::<u64>() {
                Ok(s) if s > 0 => cfg.ttl = Duration::from_secs(s),
                _ => errors.push(format!(
                    "{TABLE_TTL_VAR}={v:?}: expected a positive whole number of seconds"
                )),
            }
        }
        match (errors.is_empty(), on) {
            (false, _) => Err(errors),
            (true, true) => Ok(Some(cfg)),
            (true, false) => Ok(None),
        }
    }
}

/// Why a provider was chosen for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementReason {
    /// The provider that served the session last (its cache is warmest there).
    LastServed,
    /// The session's ring owner, with no other provider remembered for it.
    RingOwner,
    /// The provider remembered for the session is unavailable or over the bound.
    Moved,
    /// The ring owner is over the bound; a later provider on the ring took the session.
    Spilled,
}

impl PlacementReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementReason::LastServed => "last",
            PlacementReason::RingOwner => "owner",
            PlacementReason::Moved => "moved",
            PlacementReason::Spilled => "spilled",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The provider's index in the model's config order (as [`Candidate::index`]).
    pub index: usize,
    pub reason: PlacementReason,
    /// Providers passed over on the ring because of the load bound.
    pub skipped: usize,
}

impl Placement {
    /// The session went where its cache is expected to be.
    pub fn hit(&self) -> bool {
        matches!(
            self.reason,
            PlacementReason::LastServed | PlacementReason::RingOwner
        )
    }
}

/// The consistent-hash ring over one model's providers.
#[derive(Clone, Debug)]
pub struct Ring {
    /// (point, provider index), sorted.
    points: Vec<(u64, u32)>,
    providers: usize,
}

impl Ring {
    /// `ids[i]` is provider `i`'s configured id; the ring depends only on the ids, not their order
    /// of listing beyond the index each maps to.
    pub fn new<S: AsRef<str>>(ids: &[S]) -> Ring {
        let mut points: Vec<(u64, u32)> = ids
            .iter()
            .enumerate()
            .flat_map(|(i, id)| {
                let id = id.as_ref().as_bytes();
                (0..VNODES).map(move |v| (xxh3_64_with_seed(id, v), i as u32))
            })
            .collect();
        points.sort_unstable();
        Ring {
            points,
            providers: ids.len(),
        }
    }

    /// Candidate providers in ring order from `hash`, each once, with `keep(provider)` true.
    fn walk<'a>(
        &'a self,
        hash: u64,
        mut keep: impl FnMut(usize) -> bool + 'a,
    ) -> impl Iterator<Item = usize> + 'a {
        let start = self.points.partition_point(|&(p, _)| p < hash);
        let mut seen = vec![false; self.providers];
        let (wrapped, from_start) = self.points.split_at(start);
        from_start
            .iter()
            .chain(wrapped)
            .map(|&(_, i)| i as usize)
            .filter(move |&i| {
                if seen[i] || !keep(i) {
                    return false;
                }
                seen[i] = true;
                true
            })
    }
}

/// Bounded-load placement for one model: the ring plus the last-served table.
#[derive(Clone, Debug)]
pub struct CacheAffinity {
    ring: Ring,
    load_factor: f64,
    last: LastServed,
}

impl CacheAffinity {
    pub fn new<S: AsRef<str>>(provider_ids: &[S], cfg: &AffinityConfig) -> CacheAffinity {
        CacheAffinity {
            ring: Ring::new(provider_ids),
            load_factor: cfg.load_factor.max(1.0),
            last: LastServed::new(cfg.table_size, cfg.ttl),
        }
    }

    /// The provider for `key` among `candidates` (already filtered for health, exclusions and
    /// capacity), or `None` when no candidate is on the ring. Does not change state: call
    /// [`CacheAffinity::record`] with the provider that actually served.
    pub fn place(
        &self,
        key: SessionKey,
        candidates: &[Candidate],
        now: Instant,
    ) -> Option<Placement> {
        let n = self.ring.providers;
        let mut load: Vec<Option<u32>> = vec![None; n];
        let (mut total, mut count) = (0u64, 0u64);
        for c in candidates.iter().filter(|c| c.index < n) {
            load[c.index] = Some(c.in_flight);
            total += u64::from(c.in_flight);
            count += 1;
        }
        if count == 0 {
            return None;
        }
        let bound = (self.load_factor * (total + 1) as f64 / count as f64).ceil() as u64;
        let fits = |i: usize| load[i].is_some_and(|l| u64::from(l) < bound);

        let remembered = self.last.get(key.hash, now);
        if let Some(i) = remembered.filter(|&i| i < n && fits(i)) {
            return Some(Placement {
                index: i,
                reason: PlacementReason::LastServed,
                skipped: 0,
            });
        }
        let mut skipped = 0;
        for i in self.ring.walk(key.hash, |i| load[i].is_some()) {
            if fits(i) {
                let reason = match (remembered, skipped) {
                    (Some(_), _) => PlacementReason::Moved,
                    (None, 0) => PlacementReason::RingOwner,
                    (None, _) => PlacementReason::Spilled,
                };
                return Some(Placement {
                    index: i,
                    reason,
                    skipped,
                });
            }
            skipped += 1;
        }
        // Unreachable by the bound's arithmetic; keep the owner rather than fail.
        let owner = self.ring.walk(key.hash, |i| load[i].is_some()).next();
        owner.map(|index| Placement {
            index,
            reason: PlacementReason::Spilled,
            skipped,
        })
    }

    /// Remembers that `provider` served the session at `now`.
    pub fn record(&mut self, key: SessionKey, provider: usize, now: Instant) {
        self.last.record(key.hash, provider, now);
    }

    /// Sessions currently remembered (expired ones may still count until evicted).
    pub fn remembered(&self) -> usize {
        self.last.len()
    }
}

/// Session → the provider that served it last: at most `capacity` entries (least recently
/// recorded evicted first), each forgotten `ttl` after it was recorded.
#[derive(Clone, Debug)]
pub struct LastServed {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<u64, Served>,
    /// Recording order: stamp → session.
    order: BTreeMap<u64, u64>,
    next_stamp: u64,
}

#[derive(Clone, Copy, Debug)]
struct Served {
    provider: usize,
    at: Instant,
    stamp: u64,
}

impl LastServed {
    pub fn new(capacity: usize, ttl: Duration) -> LastServed {
        LastServed {
            capacity,
            ttl,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
        }
    }

    pub fn get(&self, session: u64, now: Instant) -> Option<usize> {
        self.entries
            .get(&session)
            .filter(|e| now.saturating_duration_since(e.at) < self.ttl)
            .map(|e| e.provider)
    }

    pub fn record(&mut self, session: u64, provider: usize, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if let Some(old) = self.entries.insert(
            session,
            Served {
                provider,
                at: now,
                stamp,
            },
        ) {
            self.order.remove(&old.stamp);
        }
        self.order.insert(stamp, session);
        // Oldest first: drop what expired, then whatever exceeds the capacity.
        while let Some((&s, &oldest)) = self.order.first_key_value() {
            let expired = self
                .entries
                .get(&oldest)
                .is_some_and(|e| now.saturating_duration_since(e.at) >= self.ttl);
            if !expired && self.entries.len() <= self.capacity {
                break;
            }
            self.order.remove(&s);
            self.entries.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("vllm-{i}")).collect()
    }

    fn idle(indices: impl IntoIterator<Item = usize>) -> Vec<Candidate> {
        indices.into_iter().map(Candidate::new).collect()
    }

    fn loaded(loads: &[(usize, u32)]) -> Vec<Candidate> {
        loads
            .iter()
            .map(|&(i, l)| Candidate {
                in_flight: l,
                ..Candidate::new(i)
            })
            .collect()
    }

    fn key(i: u64) -> SessionKey {
        SessionKey {
            hash: xxh3_64_with_seed(&i.to_le_bytes(), 7),
            source: KeySource::SessionId,
        }
    }

    fn ring_only(n: usize) -> CacheAffinity {
        CacheAffinity::new(
            &ids(n),
            &AffinityConfig {
                table_size: 0,
                ..Default::default()
            },
        )
    }

    fn owner(a: &CacheAffinity, k: SessionKey, c: &[Candidate]) -> usize {
        a.place(k, c, Instant::now()).expect("a candidate").index
    }

    #[test]
    fn the_same_key_goes_to_the_same_provider_on_every_replica() {
        let now = Instant::now();
        let a = ring_only(5);
        let b = ring_only(5);
        for i in 0..1000 {
            let pa = a.place(key(i), &idle(0..5), now).unwrap();
            let pb = b.place(key(i), &idle(0..5), now).unwrap();
            assert_eq!(pa, pb);
            assert_eq!(pa.reason, PlacementReason::RingOwner);
            assert_eq!(a.place(key(i), &idle(0..5), now), Some(pa));
        }
    }

    #[test]
    fn sessions_spread_evenly_over_providers() {
        let a = ring_only(4);
        let mut count = [0usize; 4];
        for i in 0..10_000 {
            count[owner(&a, key(i), &idle(0..4))] += 1;
        }
        for c in count {
            assert!((1_800..=3_200).contains(&c), "{count:?}");
        }
    }

    #[test]
    fn a_provider_leaving_moves_only_its_own_sessions() {
        let a = ring_only(5);
        let all = idle(0..5);
        let without_2 = idle([0, 1, 3, 4]);
        let (mut moved, mut owned_by_2) = (0, 0);
        for i in 0..10_000 {
            let before = owner(&a, key(i), &all);
            let after = owner(&a, key(i), &without_2);
            if before == 2 {
                owned_by_2 += 1;
            }
            if before != after {
                moved += 1;
                assert_eq!(before, 2, "session {i} moved off a provider that stayed");
            }
        }
        let fraction = moved as f64 / 10_000.0;
        assert_eq!(moved, owned_by_2);
        assert!((0.12..=0.28).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn a_provider_joining_takes_sessions_only_to_itself() {
        let small = ring_only(4);
        let big = ring_only(5);
        let mut taken = 0;
        for i in 0..10_000 {
            let before = owner(&small, key(i), &idle(0..4));
            let after = owner(&big, key(i), &idle(0..5));
            if before != after {
                assert_eq!(after, 4);
                taken += 1;
            }
        }
        assert!((1_200..=2_800).contains(&taken), "{taken}");
    }

    #[test]
    fn the_load_bound_spills_to_the_next_provider_on_the_ring() {
        let a = ring_only(3);
        let k = key(42);
        let first = owner(&a, k, &idle(0..3));
        let order: Vec<usize> = a.ring.walk(k.hash, |_| true).collect();
        assert_eq!(order[0], first);
        // (loads by ring position, factor → chosen ring position, reason)
        let cases: [([u32; 3], f64, usize, PlacementReason); 5] = [
            // Total 0: bound ceil(1.25 × 1/3) = 1, everyone at 0 fits.
            ([0, 0, 0], 1.25, 0, PlacementReason::RingOwner),
            // Total 6: bound ceil(1.25 × 7/3) = 3; owner at 3 does not fit.
            ([3, 2, 1], 1.25, 1, PlacementReason::Spilled),
            ([2, 2, 2], 1.25, 0, PlacementReason::RingOwner),
            // Factor 2: bound ceil(2 × 7/3) = 5; the owner at 4 still fits.
            ([4, 1, 1], 2.0, 0, PlacementReason::RingOwner),
            ([5, 5, 0], 1.0, 2, PlacementReason::Spilled),
        ];
        for (loads, factor, want, reason) in cases {
            let a = CacheAffinity::new(
                &ids(3),
                &AffinityConfig {
                    load_factor: factor,
                    table_size: 0,
                    ..Default::default()
                },
            );
            let c = loaded(&[
                (order[0], loads[0]),
                (order[1], loads[1]),
                (order[2], loads[2]),
            ]);
            let p = a.place(k, &c, Instant::now()).unwrap();
            assert_eq!(
                (p.index, p.reason),
                (order[want], reason),
                "{loads:?} c={factor}"
            );
            assert_eq!(p.skipped, want);
        }
    }

    #[test]
    fn no_provider_ever_exceeds_the_bound() {
        // Sessions arrive and never finish; every placement keeps the chosen load ≤ the bound.
        for factor in [1.0, 1.25, 2.0] {
            let a = CacheAffinity::new(
                &ids(4),
                &AffinityConfig {
                    load_factor: factor,
                    table_size: 0,
                    ..Default::default()
                },
            );
            let mut load = [0u32; 4];
            // Few distinct sessions, so owners are heavily skewed without the bound.
            for i in 0..2_000u64 {
                let c = loaded(&[(0, load[0]), (1, load[1]), (2, load[2]), (3, load[3])]);
                let p = a.place(key(i % 3), &c, Instant::now()).unwrap();
                load[p.index] += 1;
                let placed = i + 1;
                let bound = (factor * placed as f64 / 4.0).ceil() as u32;
                assert!(load[p.index] <= bound, "c={factor} {load:?} after {placed}");
            }
        }
    }

    #[test]
    fn only_candidates_are_chosen_and_none_without_any() {
        let a = ring_only(3);
        for i in 0..200 {
            assert_eq!(owner(&a, key(i), &idle([1])), 1);
        }
        assert_eq!(a.place(key(1), &[], Instant::now()), None);
        // Indices beyond the ring (a config that grew) are not placeable.
        assert_eq!(a.place(key(1), &idle([7]), Instant::now()), None);
    }

    #[test]
    fn the_last_served_provider_is_preferred_within_the_bound() {
        let t0 = Instant::now();
        let mut a = CacheAffinity::new(&ids(3), &AffinityConfig::default());
        let k = key(9);
        let own = owner(&a, k, &idle(0..3));
        let other = (own + 1) % 3;
        a.record(k, other, t0);
        let p = a.place(k, &idle(0..3), t0).unwrap();
        assert_eq!(
            (p.index, p.reason, p.hit()),
            (other, PlacementReason::LastServed, true)
        );
        // Over the bound → back to the ring, reported as moved (a miss).
        let mut c = idle(0..3);
        c[other].in_flight = 5;
        let p = a.place(k, &c, t0).unwrap();
        assert_eq!(
            (p.index, p.reason, p.hit()),
            (own, PlacementReason::Moved, false)
        );
        // Unhealthy (not a candidate) → moved as well.
        let c: Vec<Candidate> = idle((0..3).filter(|&i| i != other));
        assert_eq!(a.place(k, &c, t0).unwrap().reason, PlacementReason::Moved);
        // Expired after the TTL: the ring owner again.
        let later = t0 + Duration::from_secs(600);
        assert_eq!(
            a.place(k, &idle(0..3), later).unwrap().reason,
            PlacementReason::RingOwner
        );
    }

    #[test]
    fn the_table_is_bounded_least_recently_recorded_first() {
        let t0 = Instant::now();
        let mut t = LastServed::new(3, Duration::from_secs(60));
        for s in 0..3 {
            t.record(s, s as usize, t0);
        }
        t.record(0, 5, t0); // refreshes 0: 1 is now the oldest
        t.record(3, 3, t0);
        assert_eq!(t.len(), 3);
        assert_eq!(
            (0..4).map(|s| t.get(s, t0)).collect::<Vec<_>>(),
            [Some(5), None, Some(2), Some(3)]
        );
        // Expired entries are dropped when something is recorded.
        let later = t0 + Duration::from_secs(61);
        t.record(9, 1, later);
        assert_eq!(
            (t.len(), t.get(9, later), t.get(0, later)),
            (1, Some(1), None)
        );
        // Capacity 0 remembers nothing.
        let mut none = LastServed::new(0, Duration::from_secs(60));
        none.record(1, 1, t0);
        assert!(none.is_empty());
    }

    #[test]
    fn session_keys_follow_the_precedence_and_ignore_empty_values() {
        let s = |session_id, claude, cache, system, user| SessionInputs {
            session_id,
            claude_code_session_id: claude,
            prompt_cache_key: cache,
            system,
            first_user: user,
        };
        let k = |i: SessionInputs| SessionKey::derive(&i).map(|k| k.source);
        let all = s(Some("a"), Some("b"), Some("c"), Some("sys"), Some("hi"));
        assert_eq!(k(all), Some(KeySource::SessionId));
        assert_eq!(
            k(s(Some(" "), Some("b"), Some("c"), None, None)),
            Some(KeySource::ClaudeCodeSession)
        );
        assert_eq!(
            k(s(None, Some(""), Some("c"), None, None)),
            Some(KeySource::PromptCacheKey)
        );
        assert_eq!(
            k(s(None, None, None, None, Some("hi"))),
            Some(KeySource::Conversation)
        );
        assert_eq!(
            k(s(None, None, None, Some("sys"), None)),
            Some(KeySource::Conversation)
        );
        assert_eq!(k(s(None, None, None, Some(""), Some(""))), None);
        assert_eq!(k(SessionInputs::default()), None);

        let h = |i: SessionInputs| SessionKey::derive(&i).unwrap().hash;
        // Same inputs → same key; the split between system and user matters; sources differ.
        assert_eq!(h(all), h(s(Some("a"), None, None, None, None)));
        assert_ne!(
            h(s(None, None, None, Some("ab"), Some("c"))),
            h(s(None, None, None, Some("a"), Some("bc")))
        );
        assert_ne!(
            h(s(Some("x"), None, None, None, None)),
            h(s(None, None, Some("x"), None, None))
        );
        assert_eq!(
            h(s(None, None, None, Some("sys"), Some("hi"))),
            h(s(None, None, None, Some("sys"), Some("hi")))
        );
    }

    #[test]
    fn config_from_variables() {
        let v = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert_eq!(AffinityConfig::from_vars(&v(&[])), Ok(None));
        assert_eq!(
            AffinityConfig::from_vars(&v(&[(AFFINITY_VAR, "1"), (LOAD_FACTOR_VAR, "1.5")])),
            Ok(Some(AffinityConfig {
                load_factor: 1.5,
                ..Default::default()
            }))
        );
        let e = AffinityConfig::from_vars(&v(&[
            (AFFINITY_VAR, "yes please"),
            (LOAD_FACTOR_VAR, "0.9"),
            (TABLE_SIZE_VAR, "-1"),
            (TABLE_TTL_VAR, "0"),
        ]))
        .unwrap_err();
        for var in [AFFINITY_VAR, LOAD_FACTOR_VAR, TABLE_SIZE_VAR, TABLE_TTL_VAR] {
            assert!(
                e.iter().any(|e| e.starts_with(&format!("{var}="))),
                "{var}: {e:?}"
            );
        }
    }
}
