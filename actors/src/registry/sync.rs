//! The selection core's half of the periodic shared-state sync: what this replica publishes
//! ([`SyncRequest`]: circuits it saw open, its occupancy per host, hosts' last-served model) and
//! how the answer ([`SyncReply`]: other replicas' circuits, usage, occupancy, last-served) changes
//! selection. Pure: `now` and `now_ms` (epoch milliseconds, the clock shared between hosts) are
//! parameters; the Redis round trip itself lives in `shared.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::selection::Selection;

/// What one sync sends; built by [`Selection::sync_request`].
#[derive(Debug, Default, PartialEq)]
pub struct SyncRequest {
    /// Redis was up when the sync started (if not, held leases are re-added when it answers).
    pub was_up: bool,
    pub replica: String,
    /// Every provider id, in config order (circuits are read for each).
    pub providers: Vec<String>,
    pub models: Vec<String>,
    /// Newly seen open circuits: `(provider, open until in epoch ms, time left)`.
    pub publish: Vec<(String, u64, Duration)>,
    /// This replica's `(model, in flight)` per host key, for every host.
    pub occupancy: Vec<(String, Vec<(String, u32)>)>,
    /// Hosts whose last-served changed: `(host, model, started at epoch ms)`.
    pub lasts: Vec<(String, String, u64)>,
    pub hosts: Vec<String>,
}

/// What Redis answered, in the request's orders.
#[derive(Debug, Default)]
pub struct SyncReply {
    /// Per provider: open until (epoch ms), as published by any replica.
    pub circuits: Vec<Option<u64>>,
    /// Per model: requests started per provider id, all replicas.
    pub usage: Vec<HashMap<String, u64>>,
    /// Per host: `(replica, model, in flight)` of every replica.
    pub busy: Vec<Vec<(String, String, u32)>>,
    /// Per host: latest `(epoch ms, model)` served by any replica.
    pub last: Vec<Option<(u64, String)>>,
}

impl Selection {
    /// What to publish and read now; remembers what was published so it is sent once.
    pub fn sync_request(&mut self, now: Instant, now_ms: u64) -> SyncRequest {
        let providers = self
            .snapshots()
            .map(|(_, _, s)| s.config.id.clone())
            .collect();
        let models: Vec<String> = self.pools.iter().map(|p| p.name.clone()).collect();
        let mut publish = Vec::new();
        for slot in self.pools.iter_mut().flat_map(|p| p.slots.iter_mut()) {
            if let Some(until) = slot.snapshot.open_until().filter(|u| *u > now) {
                if slot.published_open != Some(until) {
                    slot.published_open = Some(until);
                    let left = until - now;
                    publish.push((
                        slot.snapshot.config.id.clone(),
                        now_ms + left.as_millis() as u64,
                        left,
                    ));
                }
            }
        }
        let mut occupancy = Vec::with_capacity(self.hosts.len());
        let mut lasts = Vec::new();
        for h in self.hosts.iter_mut() {
            let mut mine: Vec<(String, u32)> = h
                .in_flight
                .iter()
                .map(|(m, n)| (models[*m].clone(), *n))
                .collect();
            mine.sort();
            occupancy.push((h.key.clone(), mine));
            if let Some((m, at)) = h.last.filter(|(_, at)| Some(*at) != h.published_last) {
                h.published_last = Some(at);
                let age = now.saturating_duration_since(at).as_millis() as u64;
                lasts.push((h.key.clone(), models[m].clone(), now_ms.saturating_sub(age)));
            }
        }
        SyncRequest {
            was_up: self.is_up(),
            replica: self.replica().unwrap_or_default().to_string(),
            providers,
            hosts: self.hosts.iter().map(|h| h.key.clone()).collect(),
            models,
            publish,
            occupancy,
            lasts,
        }
    }

    /// Applies a successful sync: Redis is up; other replicas' verdicts and occupancy count.
    pub fn apply_sync(&mut self, reply: SyncReply, now: Instant, now_ms: u64) {
        let SyncReply {
            circuits,
            usage,
            busy,
            last,
        } = reply;
        let names: Vec<String> = self.pools.iter().map(|p| p.name.clone()).collect();
        let index_of = |name: &str| names.iter().position(|m| m == name);
        let replica = self.replica().unwrap_or_default().to_string();
        for (h, (others, latest)) in self.hosts.iter_mut().zip(busy.into_iter().zip(last)) {
            h.remote_busy = others
                .iter()
                .filter(|(r, _, n)| *r != replica && *n > 0)
                .filter_map(|(_, m, _)| index_of(m))
                .collect();
            h.remote_last = latest.and_then(|(at, m)| {
                let age = Duration::from_millis(now_ms.saturating_sub(at));
                Some((index_of(&m)?, now.checked_sub(age)?))
            });
        }
        self.set_up(true);
        let mut i = 0;
        for (mi, pool) in self.pools.iter_mut().enumerate() {
            for slot in pool.slots.iter_mut() {
                slot.remote_open_until = circuits
                    .get(i)
                    .copied()
                    .flatten()
                    .filter(|u| *u > now_ms)
                    .map(|u| now + Duration::from_millis(u - now_ms));
                i += 1;
                slot.global_served = usage
                    .get(mi)
                    .and_then(|u| u.get(&slot.snapshot.config.id))
                    .copied();
            }
        }
    }
}
