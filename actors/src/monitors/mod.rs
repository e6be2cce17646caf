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
pub use provider_monitor::ProviderMonitor;

use std::time::Duration;

use crate::config::{ApiType, ProviderConfig};

/// A client for probes and pings: no pool cap, no redirects, explicit per-request timeouts.
fn client() -> awc::Client {
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

/// `api_host` + an OpenAI-style path, tolerating hosts configured with a trailing `/v1`.
fn url(p: &ProviderConfig, path: &str) -> String {
    let host = &p.api_host;
    match (host.ends_with("/v1"), path.strip_prefix("/v1")) {
        (true, Some(rest)) => format!("{host}{rest}"),
        _ => format!("{host}{path}"),
    }
}

/// Adds the provider's credentials the way its type expects them.
fn authorise(req: awc::ClientRequest, p: &ProviderConfig) -> awc::ClientRequest {
    if p.api_type == ApiType::Anthropic {
        let req = req.insert_header(("anthropic-version", "2023-06-01"));
        if p.api_token.is_empty() {
            req
        } else {
            req.insert_header(("x-api-key", p.api_token.expose()))
        }
    } else if p.api_token.is_empty() {
        req
    } else {
        req.bearer_auth(p.api_token.expose())
    }
}
