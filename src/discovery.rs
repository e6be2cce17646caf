//! The model discovery task (SPEC §7): at start and every
//! `LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS`, lists the models of every `"discover": true`
//! provider's host (all hosts at once, each bounded by a short timeout) and hands the listings
//! to the [`Reloader`], which installs the file's config merged with them through the one
//! reload path (registry `Reload`, `LiveModels`, monitor list): a model a host no longer lists
//! is withdrawn (requests in flight on it finish), a new one is served at once.
//!
//! A host that does not answer keeps its last good listing (its health is the circuit
//! breaker's business, not discovery's) and is asked again on the next round; one that was
//! down at start simply has no models until it answers. Every failure is logged, none is fatal.
//! Runs on the main System's arbiter (its `awc` client is `!Send`) until the System stops.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use llm_router_actors::discovery::{self, Listings};

use crate::handlers::reload::Reloader;

/// How long one host may take to list its models.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Discovery {
    reloader: Arc<Reloader>,
    interval: Duration,
    client: awc::Client,
    /// The last good listing of each provider (kept across a failed round).
    listings: Listings,
}

impl Discovery {
    pub fn new(reloader: Arc<Reloader>, interval: Duration) -> Discovery {
        Discovery {
            reloader,
            interval,
            client: discovery::listing_client(),
            listings: Listings::new(),
        }
    }

    /// Whether the file's config has any provider to list.
    pub fn wanted(&self) -> bool {
        !discovery::discovering(&self.reloader.file_config()).is_empty()
    }

    /// One round: list every discovering provider, install the merge when it changed.
    pub async fn refresh(&mut self) {
        let config = self.reloader.file_config();
        let providers = discovery::discovering(&config);
        let timeout = LIST_TIMEOUT.min(self.interval.max(Duration::from_millis(200)));
        let answers = join_all(
            providers
                .iter()
                .map(|p| discovery::list(&self.client, p, timeout)),
        )
        .await;
        let mut next = Listings::new();
        for (p, answer) in providers.iter().zip(answers) {
            match answer {
                Ok(found) => {
                    tracing::debug!(provider = %p.id, models = found.len(), "model discovery: listed");
                    next.insert(p.id.clone(), found);
                }
                Err(e) => {
                    let kept = self.listings.get(&p.id);
                    tracing::warn!(provider = %p.id, error = %e,
                        kept_models = kept.map_or(0, Vec::len),
                        retry_in_s = self.interval.as_secs_f64(),
                        "model discovery: host not listed; its last listing stays");
                    if let Some(k) = kept {
                        next.insert(p.id.clone(), k.clone());
                    }
                }
            }
        }
        self.listings = next.clone();
        self.reloader.discovered(next).await;
    }

    /// Refreshes every interval (0: never on a timer) and after every file reload (a host just
    /// configured is listed at once); the first round is the caller's. Runs until the System
    /// stops.
    pub async fn run(mut self) {
        use futures_util::future::{select, Either};
        let rediscover = self.reloader.rediscover.clone();
        let mut tick = (!self.interval.is_zero()).then(|| {
            let mut t = tokio::time::interval(self.interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        loop {
            let timer = async {
                match tick.as_mut() {
                    Some(t) => drop(t.tick().await),
                    None => std::future::pending::<()>().await,
                }
            };
            let cause = match select(Box::pin(timer), Box::pin(rediscover.notified())).await {
                Either::Left(_) => "interval",
                Either::Right(_) => "file reload",
            };
            if self.wanted() || !self.listings.is_empty() {
                tracing::debug!(cause, "model discovery: listing");
                self.refresh().await;
            }
        }
    }
}
