//! The external plugin services of SPEC §6 (`pii_masker`, `nask_guard`, `sojka_guard`): one
//! [`Service`] per configured plugin, the one way to call it ([`Service::call`], bounded by an
//! explicit timeout), and the [`ServicesMonitor`] that probes each (`GET {host}/api/ping` →
//! `{"response":"pong"}`) and records its verdict.
//!
//! Invariants: a call either returns the service's JSON answer or a [`PluginError`] — there is no
//! third outcome, so a stage cannot forward a payload a plugin did not process (fail closed). A
//! service the last probe found down fails calls at once, without waiting for a timeout. A
//! service never probed yet, or whose monitor is off, is called (its own timeout bounds it).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::errors::RouterError;

/// Largest answer read from a plugin service.
const MAX_ANSWER: usize = 32 << 20;

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// One plugin service.
#[derive(Debug)]
pub struct Service {
    /// The plugin's name (`pii_masker`, `nask_guard`, `sojka_guard`): every error names it.
    pub name: &'static str,
    endpoint: String,
    ping: String,
    timeout: Duration,
    health: AtomicU8,
}

/// Why a plugin call produced no usable answer.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginError {
    /// The last probe found the service down.
    Down,
    Timeout(Duration),
    Connect(String),
    Status(u16),
    /// Not JSON, or JSON not of the plugin's shape.
    BadAnswer(String),
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginError::Down => write!(f, "is down (its last /api/ping probe failed)"),
            PluginError::Timeout(d) => write!(f, "did not answer within {:.1}s", d.as_secs_f64()),
            PluginError::Connect(e) => write!(f, "could not be reached ({e})"),
            PluginError::Status(s) => write!(f, "answered HTTP {s}"),
            PluginError::BadAnswer(why) => write!(f, "gave an unusable answer ({why})"),
        }
    }
}

impl PluginError {
    /// The kind label of `masker_incidents_total` / `guardrail_incidents_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Down => "down",
            PluginError::Timeout(_) => "timeout",
            PluginError::Connect(_) => "unreachable",
            PluginError::Status(_) => "status",
            PluginError::BadAnswer(_) => "bad_answer",
        }
    }
}

/// The client's error for a request blocked because plugin `name` failed: 503, naming the
/// plugin and saying the request was not sent.
pub fn blocked(name: &str, why: &PluginError) -> RouterError {
    RouterError::UpstreamRejected {
        status: 503,
        message: format!("{name} {why}; the request was blocked and not sent to any provider"),
        provider: name.to_string(),
    }
}

impl Service {
    /// `host` is the service's base URL; `path` the plugin's endpoint (`api/maskers/pii`).
    pub fn new(name: &'static str, host: &str, path: &str, timeout: Duration) -> Service {
        let host = host.trim().trim_end_matches('/');
        Service {
            name,
            endpoint: format!("{host}/{path}"),
            ping: format!("{host}/api/ping"),
            timeout,
            health: AtomicU8::new(UNKNOWN),
        }
    }

    /// The last probe's verdict: `Some(true)` up, `Some(false)` down, `None` not probed yet.
    pub fn healthy(&self) -> Option<bool> {
        match self.health.load(Ordering::Relaxed) {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        }
    }

    pub fn set_healthy(&self, up: bool) {
        self.health
            .store(if up { UP } else { DOWN }, Ordering::Relaxed);
    }

    /// POSTs `body` to the plugin's endpoint; the JSON answer of a 2xx, or why there is none.
    pub async fn call(&self, client: &awc::Client, body: &Value) -> Result<Value, PluginError> {
        if self.healthy() == Some(false) {
            return Err(PluginError::Down);
        }
        let bytes = get_json_bytes(
            client
                .post(&self.endpoint)
                .insert_header(("content-type", "application/json")),
            Some(body),
            self.timeout,
        )
        .await?;
        serde_json::from_slice(&bytes).map_err(|e| PluginError::BadAnswer(format!("not JSON: {e}")))
    }

    /// One probe: up when `/api/ping` answers 2xx `{"response":"pong"}` within the timeout.
    pub async fn probe(&self, client: &awc::Client) -> bool {
        let answer = get_json_bytes(client.get(&self.ping), None, self.timeout).await;
        let up = answer
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v["response"] == "pong");
        self.set_healthy(up);
        up
    }
}

/// Sends `req` (with `body` as JSON, if any) and reads a 2xx answer, all within `timeout`.
async fn get_json_bytes(
    req: awc::ClientRequest,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<bytes::Bytes, PluginError> {
    let end = Instant::now() + timeout;
    let req = req.timeout(timeout);
    let sent = match body {
        Some(b) => {
            let payload = serde_json::to_vec(b)
                .map_err(|e| PluginError::BadAnswer(format!("request not serialisable: {e}")))?;
            tokio::time::timeout(timeout, req.send_body(payload)).await
        }
        None => tokio::time::timeout(timeout, req.send()).await,
    };
    let mut res = match sent {
        Err(_) | Ok(Err(awc::error::SendRequestError::Timeout)) => {
            return Err(PluginError::Timeout(timeout))
        }
        Ok(Err(e)) => return Err(PluginError::Connect(e.to_string())),
        Ok(Ok(r)) => r,
    };
    if !res.status().is_success() {
        return Err(PluginError::Status(res.status().as_u16()));
    }
    let left = end.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, res.body().limit(MAX_ANSWER)).await {
        Err(_) => Err(PluginError::Timeout(timeout)),
        Ok(Err(awc::error::PayloadError::Io(e))) if e.kind() == std::io::ErrorKind::TimedOut => {
            Err(PluginError::Timeout(timeout))
        }
        Ok(Err(e)) => Err(PluginError::BadAnswer(format!("body: {e}"))),
        Ok(Ok(b)) => Ok(b),
    }
}

/// Probes every configured plugin service each period, on the actix System it is started on.
pub struct ServicesMonitor;

impl ServicesMonitor {
    /// Starts probing (at once, then every `interval`); nothing when there is nothing to probe or
    /// the interval is zero. Must be called inside an actix System.
    pub fn start(services: Vec<Arc<Service>>, interval: Duration) {
        if services.is_empty() || interval.is_zero() {
            return;
        }
        actix_rt::spawn(async move {
            let client = crate::relay::client::build_client();
            loop {
                let round = services.iter().map(|s| s.probe(&client));
                for (s, up) in services
                    .iter()
                    .zip(futures_util::future::join_all(round).await)
                {
                    if !up {
                        tracing::warn!(
                            service = s.name,
                            "plugin service probe failed: marked down"
                        );
                    }
                }
                actix_rt::time::sleep(interval).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_starts_unknown_and_follows_the_probes() {
        let s = Service::new(
            "nask_guard",
            "http://127.0.0.1:9/",
            "api/guardrails/nask_guard",
            Duration::from_secs(1),
        );
        assert_eq!(s.endpoint, "http://127.0.0.1:9/api/guardrails/nask_guard");
        assert_eq!(s.ping, "http://127.0.0.1:9/api/ping");
        assert_eq!(s.healthy(), None);
        s.set_healthy(false);
        assert_eq!(s.healthy(), Some(false));
        s.set_healthy(true);
        assert_eq!(s.healthy(), Some(true));
    }

    #[actix_rt::test]
    async fn a_known_down_service_fails_at_once_without_a_call() {
        // Nothing listens there: the verdict answers before any connection is tried.
        let s = Service::new(
            "pii_masker",
            "http://127.0.0.1:9",
            "api/maskers/pii",
            Duration::from_secs(30),
        );
        s.set_healthy(false);
        let started = Instant::now();
        let e = s
            .call(&crate::relay::client::build_client(), &Value::Null)
            .await
            .unwrap_err();
        assert_eq!(e, PluginError::Down);
        assert!(started.elapsed() < Duration::from_secs(1));
        let msg = blocked("pii_masker", &e).to_string();
        assert!(msg.starts_with("pii_masker is down"), "{msg}");
        assert!(msg.contains("not sent to any provider"), "{msg}");
    }
}
