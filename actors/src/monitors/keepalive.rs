//! `KeepAliveMonitor`: keeps a model loaded on the hosts that serve it. For a provider with
//! `keep_alive` (e.g. `"35m"`), once its host has served the model, a minimal request is sent when
//! 80 % of the window has passed since the last use or ping, so the window never lapses while the
//! model is in use somewhere — unless the host is busy with another model (the ping would only
//! fight it for memory). After the window has lapsed nothing is sent: the model is gone and
//! reloading it unasked is not "keeping it warm".
//!
//! Pings: Ollama `POST /api/chat` with no messages and the provider's `keep_alive` (Ollama loads
//! the model and keeps it for that long); OpenAI-wire providers a one-token chat completion.
//! Anthropic providers are hosted APIs with nothing to keep warm: never pinged. The scheduling is
//! the pure [`KeepAliveSchedule`]; the actor only does I/O. With Redis, "last served" is the
//! latest request on the host from any replica, and a `SET NX` claim makes one replica send each
//! ping.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{client, request};
use crate::config::ProviderConfig;
use crate::registry::{ClaimKeepAlive, GetKeepAlive, ModelRegistry};
use crate::wire::Wire;
use awc::http::Method;

/// Fraction of the window after which a ping is due.
const DUE_AT: f64 = 0.8;

/// What the schedule needs to know about one provider at one tick.
#[derive(Clone, Debug)]
pub struct Watched {
    pub id: String,
    pub keep_alive: Duration,
    pub last_served: Option<Instant>,
    pub busy_other: bool,
}

#[derive(Debug, Default)]
pub struct KeepAliveSchedule {
    last_ping: HashMap<String, Instant>,
}

impl KeepAliveSchedule {
    /// The providers to ping at `now`; records the pings as sent.
    pub fn due(&mut self, watched: &[Watched], now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for w in watched {
            let base = match (w.last_served, self.last_ping.get(&w.id).copied()) {
                (Some(s), Some(p)) => s.max(p),
                (Some(s), None) => s,
                // Never served here: nothing to keep warm.
                (None, _) => continue,
            };
            let age = now.saturating_duration_since(base);
            if w.busy_other || age >= w.keep_alive || age < w.keep_alive.mul_f64(DUE_AT) {
                continue;
            }
            self.last_ping.insert(w.id.clone(), now);
            out.push(w.id.clone());
        }
        out
    }
}

pub struct KeepAliveMonitor {
    registry: Addr<ModelRegistry>,
    interval: Duration,
    schedule: KeepAliveSchedule,
    in_flight: HashSet<String>,
    client: Option<awc::Client>,
}

impl KeepAliveMonitor {
    pub fn new(registry: Addr<ModelRegistry>, interval: Duration) -> KeepAliveMonitor {
        KeepAliveMonitor {
            registry,
            interval,
            schedule: KeepAliveSchedule::default(),
            in_flight: HashSet::new(),
            client: None,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let ask = self.registry.send(GetKeepAlive);
        ctx.spawn(ask.into_actor(self).map(|views, act, ctx| {
            let Ok(views) = views else { return };
            let now = Instant::now();
            let watched: Vec<Watched> = views
                .iter()
                // Only wires that keep models loaded have a ping (not hosted APIs).
                .filter(|v| {
                    let p = &v.provider.config;
                    let wire = Wire::of(p.api_type).profile();
                    wire.keepalive_ping(&v.provider.model, Duration::ZERO)
                        .is_some()
                })
                .filter_map(|v| {
                    Some(Watched {
                        id: v.provider.config.id.clone(),
                        keep_alive: v.provider.config.keep_alive?,
                        last_served: v.last_served,
                        busy_other: v.busy_other,
                    })
                })
                .collect();
            for id in act.schedule.due(&watched, now) {
                let Some(v) = views.iter().find(|v| v.provider.config.id == id) else {
                    continue;
                };
                let (p, model) = (v.provider.config.clone(), v.provider.model.to_string());
                // With Redis, one replica pings per window.
                let hold = p.keep_alive.unwrap_or_default().mul_f64(1.0 - DUE_AT) / 2;
                let claim = act.registry.send(ClaimKeepAlive { provider: id, hold });
                ctx.spawn(claim.into_actor(act).map(move |ok, act, ctx| {
                    if ok.unwrap_or(true) {
                        act.ping(p, model, ctx);
                    }
                }));
            }
        }));
    }

    fn ping(&mut self, p: ProviderConfig, model: String, ctx: &mut Context<Self>) {
        let keep = p.keep_alive.unwrap_or_default();
        let Some((path, body)) = Wire::of(p.api_type)
            .profile()
            .keepalive_ping(p.upstream_model(&model), keep)
        else {
            return;
        };
        if !self.in_flight.insert(p.id.clone()) {
            return;
        }
        let client = self.client.get_or_insert_with(client).clone();
        let req = request(&client, Method::POST, &p, path).timeout(Duration::from_secs(30));
        let id = p.id.clone();
        let fut = async move {
            match req.send_json(&body).await {
                Ok(mut res) => {
                    let _ = res.body().limit(1 << 20).await;
                    tracing::debug!(provider = %id, status = res.status().as_u16(), "keep-alive ping sent");
                }
                Err(e) => tracing::warn!(provider = %id, "keep-alive ping failed: {e}"),
            }
            id
        };
        ctx.spawn(fut.into_actor(self).map(|id, act, _| {
            act.in_flight.remove(&id);
        }));
    }
}

impl Actor for KeepAliveMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str, served_ago: Option<u64>, busy_other: bool, now: Instant) -> Watched {
        Watched {
            id: id.into(),
            keep_alive: Duration::from_secs(100),
            last_served: served_ago.map(|s| now - Duration::from_secs(s)),
            busy_other,
        }
    }

    #[test]
    fn pings_fall_due_late_in_the_window_and_restart_it() {
        let now = Instant::now() + Duration::from_secs(1000);
        let mut s = KeepAliveSchedule::default();
        let cases = [
            (w("never", None, false, now), false),
            (w("fresh", Some(10), false, now), false),
            (w("due", Some(85), false, now), true),
            (w("busy", Some(85), true, now), false),
            (w("lapsed", Some(150), false, now), false),
        ];
        let watched: Vec<Watched> = cases.iter().map(|(w, _)| w.clone()).collect();
        let due = s.due(&watched, now);
        let want: Vec<String> = cases
            .iter()
            .filter(|(_, d)| *d)
            .map(|(w, _)| w.id.clone())
            .collect();
        assert_eq!(due, want);
        // The ping restarts the window: not due again until 80 s after it.
        assert!(s.due(&watched, now + Duration::from_secs(10)).is_empty());
        let later = s.due(&watched, now + Duration::from_secs(81));
        assert_eq!(
            later,
            vec!["fresh".to_string(), "due".to_string()],
            "fresh is now late in its window, due's ping window came round; the lapsed one never"
        );
    }
}
