//! `ProviderMonitor`: every interval, one health probe per provider (skipped while the previous
//! one is still out): vLLM / llama.cpp `GET /health`, Ollama `GET /`, OpenAI / LM Studio /
//! Anthropic `GET /v1/models`. A 2xx within the timeout is healthy. Each verdict goes to the
//! provider's actor as [`ProbeResult`]: failures count towards opening the circuit like failed
//! calls do, a success closes an open circuit at once. After a reload, [`SetProviders`] replaces
//! the list: added providers are probed from the next tick, removed ones no more (a probe
//! already out still reports to its actor, harmlessly).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{client, request};
use crate::config::ProviderConfig;
use crate::provider::{ProbeResult, ProviderActor, ProviderSnapshot};
use crate::wire::Wire;
use awc::http::Method;

pub struct ProviderMonitor {
    providers: Vec<(Arc<ProviderSnapshot>, Addr<ProviderActor>)>,
    interval: Duration,
    timeout: Duration,
    /// Ids of providers with a probe out.
    in_flight: HashSet<String>,
    client: Option<awc::Client>,
}

impl ProviderMonitor {
    pub fn new(
        providers: Vec<(Arc<ProviderSnapshot>, Addr<ProviderActor>)>,
        interval: Duration,
    ) -> ProviderMonitor {
        ProviderMonitor {
            providers,
            interval,
            // Short, and never longer than the interval (probes must not pile up).
            timeout: interval.min(Duration::from_secs(2)),
            in_flight: HashSet::new(),
            client: None,
        }
    }

    fn probe_all(&mut self, ctx: &mut Context<Self>) {
        let client = self.client.get_or_insert_with(client).clone();
        for (snap, actor) in self.providers.iter() {
            if !self.in_flight.insert(snap.config.id.clone()) {
                continue;
            }
            let p: &ProviderConfig = &snap.config;
            let path = Wire::of(p.api_type).profile().probe_path(p.api_type);
            let req = request(&client, Method::GET, p, path).timeout(self.timeout);
            let actor = actor.clone();
            let id = p.id.clone();
            let done = p.id.clone();
            let fut = async move {
                let ok = match req.send().await {
                    Ok(mut res) => {
                        let ok = res.status().is_success();
                        // Drain a little so the connection can be reused.
                        let _ = res.body().limit(64 * 1024).await;
                        ok
                    }
                    Err(e) => {
                        tracing::debug!(provider = %id, "health probe failed: {e}");
                        false
                    }
                };
                actor.do_send(ProbeResult {
                    ok,
                    at: Instant::now(),
                });
            };
            ctx.spawn(fut.into_actor(self).map(move |_, act, _| {
                act.in_flight.remove(&done);
            }));
        }
    }
}

/// Replaces the providers probed (from `GetProviders` after a reload).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetProviders(pub Vec<(Arc<ProviderSnapshot>, Addr<ProviderActor>)>);

impl Handler<SetProviders> for ProviderMonitor {
    type Result = ();

    fn handle(&mut self, msg: SetProviders, ctx: &mut Context<Self>) {
        let added = msg
            .0
            .iter()
            .any(|(s, _)| !self.providers.iter().any(|(o, _)| o.id() == s.id()));
        self.providers = msg.0;
        // New providers get their first verdict now, not an interval later.
        if added {
            self.probe_all(ctx);
        }
    }
}

impl Actor for ProviderMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.probe_all(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.probe_all(ctx));
    }
}
