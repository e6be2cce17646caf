//! Timers that watch providers without client traffic:
//!
//! - [`ProviderMonitor`] probes every provider's health endpoint on an interval and reports each
//!   verdict to the provider's actor (so `/health`, metrics and routing see a dead provider before
//!   a client request does, and a recovered one at once).
//! - [`KeepAliveMonitor`] keeps models loaded on hosts whose providers set `keep_alive`, by sending
//!   a minimal request before the window lapses (skipped while the host serves another model).
//!
//! Both run on the registry's arbiter, build their own `awc` client there (it is `!Send`), and
//! never let a slow endpoint stack probes: one probe or ping per provider at a time.

mod keepalive;
mod provider_monitor;

pub use keepalive::{KeepAliveMonitor, KeepAliveSchedule, Watched};
pub use provider_monitor::{ProviderMonitor, SetProviders};

use std::time::Duration;

use crate::config::ProviderConfig;
use crate::wire::{url, Wire};

/// A client for probes and pings: no pool cap, no redirects, explicit per-request timeouts.
pub(crate) fn client() -> awc::Client {
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .limit(0)
                .timeout(Duration::from_secs(2)),
        )
        .disable_redirects()
        .disable_timeout()
        .finish()
}

/// A probe or ping to `path` of `p`, with the provider's credentials as its wire expects them.
pub(crate) fn request(
    client: &awc::Client,
    method: awc::http::Method,
    p: &ProviderConfig,
    path: &str,
) -> awc::ClientRequest {
    Wire::of(p.api_type)
        .profile()
        .authorise(client.request(method, url(p, path)), p)
}
