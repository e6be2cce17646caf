//! Cache affinity in the registry (SPEC §7): where [`CacheAffinity`] meets the selection core and
//! the shared store.
//!
//! - **Selection**: [`Pool::select`] filters candidates (health, exclusions, capacity, priority
//!   tier) as for any request; a request with a session key is then placed among exactly those
//!   candidates by bounded-load consistent hashing instead of the strategy's pick — so affinity
//!   works with every strategy and never picks a provider the strategy could not have picked.
//!   The placement is recorded at once (the session's last-served provider), and travels with
//!   the grant and the [`Lease`](super::Lease) for the decision summary.
//! - **Across replicas** (Redis): the ring is the same on every replica; the last-served table is
//!   shared under `affinity:{model}:{session hash, 16 hex}` → provider id, `SET … EX ttl` on every
//!   placement (a spawned write, never awaited by the mailbox). A choice with a session reads the
//!   key first (the registry answers that [`ChooseProvider`](super::ChooseProvider) when the read
//!   is back; other messages are served meanwhile) and takes the shared entry as the freshest
//!   one. Redis down: the local table alone, as for everything else.

use std::time::Instant;

use actix::prelude::*;

use crate::routing::{AffinityConfig, CacheAffinity, Placement, SessionKey};
use crate::strategies::Candidate;

use super::pool::Pool;
use super::selection::Selection;
use super::{Choice, ChooseProvider, ModelRegistry};

impl Pool {
    /// The affinity placement of `session` among `tier` (recorded as its last-served provider),
    /// or `None` — no session, affinity off, or no candidate on the ring — for the strategy.
    pub(super) fn place_session(
        &mut self,
        session: Option<SessionKey>,
        tier: &[Candidate],
        now: Instant,
    ) -> Option<(SessionKey, Placement)> {
        let key = session?;
        let affinity = self.affinity.as_mut()?;
        let placed = affinity.place(key, tier, now)?;
        affinity.record(key, placed.index, now);
        Some((key, placed))
    }

    /// A fresh affinity table over this pool's providers (config order).
    pub(super) fn affinity_for(&self, cfg: Option<&AffinityConfig>) -> Option<CacheAffinity> {
        let ids: Vec<&str> = self
            .slots
            .iter()
            .map(|s| s.snapshot.config.id.as_str())
            .collect();
        cfg.map(|c| CacheAffinity::new(&ids, c))
    }
}

impl Selection {
    /// Turns cache affinity on (`Some`) or off for every model, now and after reloads.
    pub fn set_affinity(&mut self, cfg: Option<AffinityConfig>) {
        self.affinity = cfg;
        for i in 0..self.pools.len() {
            let a = self.pools[i].affinity_for(cfg.as_ref());
            self.pools[i].affinity = a;
        }
    }

    pub fn affinity(&self) -> Option<&AffinityConfig> {
        self.affinity.as_ref()
    }

    /// Another replica placed `key` of `model` on `provider` (by id) most recently.
    pub fn remember_session(&mut self, model: &str, key: SessionKey, provider: &str, now: Instant) {
        let Some(m) = self.pool_of(model) else { return };
        let pool = &mut self.pools[m];
        let Some(index) = pool
            .slots
            .iter()
            .position(|s| s.snapshot.config.id == provider)
        else {
            return;
        };
        if let Some(a) = pool.affinity.as_mut() {
            a.record(key, index, now);
        }
    }
}

/// The shared-table key of a session of `model` (under the store's prefix).
pub fn session_key(model: &str, key: SessionKey) -> String {
    format!("affinity:{model}:{:016x}", key.hash)
}

impl ModelRegistry {
    /// With affinity on, a session and Redis reachable: the choice waits for the shared entry.
    pub(super) fn choose_with_shared_session(
        &mut self,
        msg: ChooseProvider,
    ) -> Result<ActorResponse<Self, Choice>, ChooseProvider> {
        let affinity = self.desk.lock().core.affinity().is_some();
        let (Some(key), true) = (msg.session, affinity) else {
            return Err(msg);
        };
        let Some(store) = self.live_store() else {
            return Err(msg);
        };
        let redis_key = session_key(&msg.model, key);
        let fut = async move { store.get_session(&redis_key).await };
        Ok(ActorResponse::r#async(fut.into_actor(self).map(
            move |res, act, ctx| {
                match res {
                    Ok(Some(provider)) => act.desk.lock().core.remember_session(
                        &msg.model,
                        key,
                        &provider,
                        Instant::now(),
                    ),
                    Ok(None) => {}
                    Err(e) => act.mark_down(&e),
                }
                act.choose_now(msg, ctx)
            },
        )))
    }

    /// Shares a placement in Redis (spawned; a failure only costs the other replicas a hint).
    pub(super) fn share_placement(&self, model: &str, provider: &str, key: SessionKey) {
        let cfg = self.desk.lock().core.affinity().copied();
        let (Some(store), Some(cfg)) = (self.live_store(), cfg) else {
            return;
        };
        let redis_key = session_key(model, key);
        let (provider, ttl) = (provider.to_string(), cfg.ttl);
        actix::spawn(async move {
            if let Err(e) = store.put_session(&redis_key, &provider, ttl).await {
                tracing::debug!("cache affinity: sharing a placement failed: {e}");
            }
        });
    }
}
