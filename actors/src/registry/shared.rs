//! The registry's Redis protocol side: connecting, the Lua acquire of a shared slot, token
//! releases, usage counts, lease renewal (and re-adding after Redis returns), and the periodic
//! sync of circuits, usage and host occupancy.
//!
//! Every round trip runs as a future spawned on the registry's context — never awaited inside a
//! handler — and reports back to the [`Selection`](super::selection::Selection) core when it
//! ends. Any Redis error marks the store down ([`ModelRegistry::mark_down`]): the registry serves
//! on local state and the next sync retries.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::store::{epoch_ms, Admit, Store, StoreOptions};

use super::selection::{Acquire, Acquired};
use super::sync::SyncReply;
use super::{ModelRegistry, SharedHealth};

/// How often queued requests of shared pools retry (other replicas' releases are not pushed).
pub(super) const SHARED_POLL: Duration = Duration::from_millis(25);
/// How often usage, circuits and Redis' liveness are synchronised.
pub(super) const SHARED_SYNC: Duration = Duration::from_millis(500);

/// The actor's side of the shared store (the core keeps what selection needs).
pub(super) struct Shared {
    pub opts: StoreOptions,
    pub health: Arc<SharedHealth>,
    pub store: Option<Store>,
    pub connecting: bool,
}

impl ModelRegistry {
    /// The store, when configured and reachable.
    pub(super) fn live_store(&self) -> Option<Store> {
        if !self.desk.lock().core.is_live() {
            return None;
        }
        self.shared.as_ref().and_then(|s| s.store.clone())
    }

    pub(super) fn mark_down(&mut self, why: &dyn std::fmt::Display) {
        if let Some(sh) = self.shared.as_ref() {
            let mut st = self.desk.lock();
            if st.core.is_up() {
                tracing::warn!("shared state (Redis) unreachable: {why}; serving on local state");
            }
            st.core.set_up(false);
            sh.health.up.store(false, Relaxed);
        }
    }

    /// Runs a Lua acquire; its result goes back to the core.
    pub(super) fn acquire(&mut self, a: Acquire, ctx: &mut Context<Self>) {
        let Some(store) = self.live_store() else {
            // Not reachable after all: serve on local state.
            self.with_core(ctx, |core, now, alive, fx| {
                core.acquired(a, Acquired::StoreDown, now, alive, fx)
            });
            return;
        };
        let (id, token, cap, rpm, released) = (
            a.provider.clone(),
            a.token.clone(),
            a.cap,
            a.rpm,
            a.released.clone(),
        );
        let fut = async move { store.admit(&id, &token, cap, rpm, &released).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let result = match res {
                Ok(Admit::Taken) => Acquired::Taken,
                // Held by other replicas: look again (another provider, or wait).
                Ok(Admit::Held) => Acquired::HeldElsewhere,
                Ok(Admit::RateLimited(wait)) => Acquired::RateLimited(wait),
                Err(e) => {
                    act.mark_down(&e);
                    Acquired::StoreDown
                }
            };
            act.with_core(ctx, |core, now, alive, fx| {
                core.acquired(a, result, now, alive, fx)
            });
        }));
    }

    /// Removes a released token from Redis, then tells the core.
    pub(super) fn release_token(
        &mut self,
        provider: String,
        token: String,
        ctx: &mut Context<Self>,
    ) {
        let Some(store) = self.shared.as_ref().and_then(|s| s.store.clone()) else {
            self.desk.lock().core.token_released(&provider, &token);
            return;
        };
        ctx.spawn(
            async move {
                // A failed release expires with its TTL.
                let _ = store.release(&provider, &token).await;
                (provider, token)
            }
            .into_actor(self)
            .map(|(provider, token), act, _| {
                act.desk.lock().core.token_released(&provider, &token)
            }),
        );
    }

    pub(super) fn count_use(&self, model: &str, provider: String) {
        if let Some(store) = self.live_store() {
            let model = model.to_string();
            actix::spawn(async move {
                let _ = store.count_use(&model, &provider).await;
            });
        }
    }

    /// Extends every lease this replica holds; with `readd`, re-adds those Redis lost.
    pub(super) fn renew_leases(&mut self, readd: bool, ctx: &mut Context<Self>) {
        let Some(store) = self.live_store() else {
            return;
        };
        let leases = self.desk.lock().core.held_tokens();
        if leases.is_empty() {
            return;
        }
        ctx.spawn(
            async move { store.renew(&leases, readd).await }
                .into_actor(self)
                .map(|res, act, _| {
                    if let Err(e) = res {
                        act.mark_down(&e);
                    }
                }),
        );
    }

    /// Connects, checks liveness, publishes and reads shared verdicts; runs every `SHARED_SYNC`.
    pub(super) fn sync_shared(&mut self, ctx: &mut Context<Self>) {
        let Some(sh) = self.shared.as_mut() else {
            return;
        };
        let Some(store) = sh.store.clone() else {
            if !sh.connecting {
                sh.connecting = true;
                let opts = sh.opts.clone();
                ctx.spawn(
                    async move { Store::connect(&opts).await }
                        .into_actor(self)
                        .map(|res, act, ctx| {
                            let Some(sh) = act.shared.as_mut() else {
                                return;
                            };
                            sh.connecting = false;
                            match res {
                                Ok(store) => {
                                    sh.store = Some(store);
                                    act.desk.lock().core.set_connected();
                                    act.sync_shared(ctx);
                                }
                                Err(e) => act.mark_down(&e),
                            }
                        }),
                );
            }
            return;
        };
        let (req, generation) = {
            let mut st = self.desk.lock();
            // The reply is positional: a reload in between makes it describe other slots.
            (
                st.core.sync_request(Instant::now(), epoch_ms()),
                st.core.generation(),
            )
        };
        let was_up = req.was_up;
        let fut = async move {
            store.ping().await?;
            for (id, until, left) in &req.publish {
                store.publish_open(id, *until, *left).await?;
            }
            let circuits = store.open_circuits(&req.providers).await?;
            let mut usage = Vec::with_capacity(req.models.len());
            for m in &req.models {
                usage.push(store.usage(m).await?);
            }
            let mut busy = Vec::with_capacity(req.occupancy.len());
            for (host, mine) in &req.occupancy {
                busy.push(store.exchange_occupancy(host, &req.replica, mine).await?);
            }
            for (host, model, at) in &req.lasts {
                store.publish_last(host, model, *at).await?;
            }
            let last = store.last_served(&req.hosts).await?;
            Ok::<_, redis::RedisError>(SyncReply {
                circuits,
                usage,
                busy,
                last,
            })
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(reply) => {
                if !was_up {
                    tracing::info!("shared state (Redis) reachable; synchronising");
                }
                let mut st = act.desk.lock();
                if st.core.generation() == generation {
                    st.core.apply_sync(reply, Instant::now(), epoch_ms());
                }
                drop(st);
                if let Some(sh) = act.shared.as_ref() {
                    sh.health.up.store(true, Relaxed);
                }
                if !was_up {
                    // Re-establish the leases held while Redis was away.
                    act.renew_leases(true, ctx);
                }
            }
            Err(e) => act.mark_down(&e),
        }));
    }
}
