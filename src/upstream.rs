//! Calling providers: the per-worker `awc` client, and one request's attempts with failover.
//!
//! A request is committed to a provider only once that provider has produced its first body
//! chunk: until then nothing has reached the client, so connect errors, timeouts, 5xx, 429 and a
//! broken first read are retried on another provider of the model (at most once per provider,
//! within the request's deadline). An upstream 4xx caused by the request is returned as is.

use std::time::{Duration, Instant};

use actix::Addr;
use actix_rt::net::TcpStream;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use actix_web::HttpMessage as _;
use awc::error::SendRequestError;
use awc::http::{header, StatusCode, Uri};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use llm_router_actors::{
    ApiType, ChooseError, ChooseProvider, FailureKind, Lease, ModelRegistry, Outcome,
    ProviderConfig,
};

use crate::errors::{Attempt, AttemptFailure, RouterError};
use crate::telemetry::Metrics;

/// The upstream response body stream (awc's boxed payload).
pub type UpstreamPayload = actix_http::Payload<actix_http::BoxedPayloadStream>;

/// Sets TCP_NODELAY on every upstream connection: without it the first stream frame can wait
/// for a delayed ACK (tens of milliseconds).
#[derive(Clone, Default)]
struct NoDelay(ConnectorService);

impl Service<ConnectInfo<Uri>> for NoDelay {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let conn = fut.await?;
            let _ = conn.io_ref().set_nodelay(true);
            Ok(conn)
        })
    }
}

/// Installs the TLS crypto provider once per process (awc's rustls connector needs one).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One client per worker (`awc::Client` is `!Send`). No connection cap, no client-wide timeout
/// (each request sets its own), no redirects, no decompression (bytes pass through untouched).
pub fn build_client() -> awc::Client {
    install_crypto();
    let connector = awc::Connector::new()
        .connector(NoDelay::default())
        .limit(0)
        .timeout(Duration::from_secs(10))
        .conn_keep_alive(Duration::from_secs(60));
    awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .disable_redirects()
        .no_default_headers()
        .finish()
}

/// `api_host` + an OpenAI-style path; tolerates hosts configured with a trailing `/v1`.
pub fn openai_url(provider: &ProviderConfig, path: &str) -> String {
    let host = &provider.api_host;
    match (host.ends_with("/v1"), path.strip_prefix("/v1")) {
        (true, Some(rest)) => format!("{host}{rest}"),
        _ => format!("{host}{path}"),
    }
}

/// `api_host` + a provider-native path (Ollama `/api/...` paths are taken as they are).
pub fn provider_url(provider: &ProviderConfig, path: &str) -> String {
    if path.starts_with("/api/") {
        format!("{}{path}", provider.api_host)
    } else {
        openai_url(provider, path)
    }
}

/// One provider's request: where to send it and what.
pub struct Outgoing {
    pub path: &'static str,
    pub body: Bytes,
}

/// Builds the request for one provider (its wire format, `model_path`, tool support), or refuses
/// when this provider cannot serve the request at all (a 400 for the client, no failover).
pub type BuildRequest<'a> = dyn Fn(&ProviderConfig) -> Result<Outgoing, RouterError> + 'a;

/// What one request needs to reach a provider.
pub struct CallSpec<'a> {
    pub model: &'a str,
    pub stream: bool,
    pub request_id: &'a str,
    pub build: &'a BuildRequest<'a>,
    pub started: Instant,
    /// Bound on the whole client request (`LLM_ROUTER_TIMEOUT`), if any.
    pub request_deadline: Option<Instant>,
    pub external_timeout: Duration,
}

/// A provider committed to this request: its response head, the first body chunk, the rest.
pub struct Committed {
    pub lease: Lease,
    pub status: StatusCode,
    pub content_type: Option<header::HeaderValue>,
    pub content_length: Option<u64>,
    pub first: Bytes,
    pub rest: UpstreamPayload,
}

fn failure_of(e: &SendRequestError, waited: Duration) -> (FailureKind, AttemptFailure) {
    match e {
        SendRequestError::Timeout => (FailureKind::Timeout, AttemptFailure::Timeout(waited)),
        SendRequestError::Connect(_) => (FailureKind::Connect, AttemptFailure::Connect),
        _ => (FailureKind::Body, AttemptFailure::Connect),
    }
}

fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Extracts a human message from a provider's error body (OpenAI, Anthropic, Ollama shapes).
pub fn provider_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let m = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"));
        if let Some(m) = m {
            return m.as_str().map_or_else(|| m.to_string(), String::from);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "the provider rejected the request".to_string()
    } else {
        text.chars().take(500).collect()
    }
}

/// Chooses providers and sends the request until one commits or all have failed.
pub async fn call(
    client: &awc::Client,
    registry: &Addr<ModelRegistry>,
    metrics: Option<&Metrics>,
    spec: &CallSpec<'_>,
) -> Result<Committed, RouterError> {
    let mut attempts: Vec<Attempt> = Vec::new();
    loop {
        let now = Instant::now();
        let queue_deadline = spec
            .request_deadline
            .unwrap_or(spec.started + spec.external_timeout);
        if now >= queue_deadline && !attempts.is_empty() {
            break;
        }
        let choice = registry
            .send(ChooseProvider {
                model: spec.model.to_string(),
                exclude: attempts.iter().map(|a| a.provider.clone()).collect(),
                deadline: queue_deadline,
            })
            .await
            .map_err(|e| RouterError::Internal(format!("registry unavailable: {e}")))?;
        let lease = match choice.resolve().await {
            Ok(lease) => lease,
            Err(ChooseError::UnknownModel { model, available }) => {
                return Err(RouterError::UnknownModel { model, available })
            }
            Err(ChooseError::Exhausted { .. }) => break,
            Err(ChooseError::NoHealthyProvider { model, unhealthy }) => {
                if attempts.is_empty() {
                    return Err(RouterError::NoHealthyProvider { model, unhealthy });
                }
                break;
            }
            Err(ChooseError::RateLimited { model, retry_after }) => {
                if attempts.is_empty() {
                    return Err(RouterError::RateLimited { model, retry_after });
                }
                break;
            }
            Err(ChooseError::AllBusy { model }) => {
                // Waited for capacity until the deadline: no provider was tried, none timed
                // out — the model is full (503 with Retry-After), not a gateway timeout.
                if attempts.is_empty() {
                    return Err(RouterError::AllBusy { model });
                }
                break;
            }
        };
        if let Some(m) = metrics {
            m.observe_choice(spec.model);
        }
        match attempt(client, lease, spec).await {
            Ok(committed) => return Ok(committed),
            Err((lease, AttemptError::Rejected(err))) => {
                if let Some(m) = metrics {
                    m.observe_call(&lease);
                }
                return Err(err);
            }
            Err((lease, AttemptError::Failed(reason))) => {
                tracing::warn!(provider = %lease.provider().id, model = spec.model, reason = %reason,
                    "upstream attempt failed");
                if let Some(m) = metrics {
                    m.observe_call(&lease);
                    m.retries.inc();
                }
                attempts.push(Attempt {
                    provider: lease.provider().id.clone(),
                    reason,
                });
            }
        }
    }
    if let Some(d) = spec.request_deadline {
        if Instant::now() >= d {
            return Err(RouterError::RequestTimeout {
                limit: d.saturating_duration_since(spec.started),
            });
        }
    }
    Err(RouterError::UpstreamFailed {
        model: spec.model.to_string(),
        attempts,
    })
}

enum AttemptError {
    /// The provider is at fault or unreachable; try another.
    Failed(AttemptFailure),
    /// The request itself was refused (upstream 4xx): the client gets it, no failover.
    Rejected(RouterError),
}

async fn attempt(
    client: &awc::Client,
    mut lease: Lease,
    spec: &CallSpec<'_>,
) -> Result<Committed, (Lease, AttemptError)> {
    let snapshot = lease.snapshot().clone();
    let p = &snapshot.config;
    let sent = Instant::now();
    // Time allowed until the first body byte: the provider's TTFT bound, else its timeout, else the
    // router's, never past the request's own deadline.
    let mut budget = p
        .ttft_timeout
        .or(p.timeout)
        .unwrap_or(spec.external_timeout);
    if let Some(d) = spec.request_deadline {
        budget = budget.min(d.saturating_duration_since(sent));
    }
    let first_deadline = sent + budget;
    let out = match (spec.build)(p) {
        Ok(out) => out,
        // Nothing was sent: the lease goes back as cancelled, not held against the provider.
        Err(e) => return Err((lease, AttemptError::Rejected(e))),
    };
    let accept = match (spec.stream, p.api_type) {
        (false, _) => "application/json",
        (true, ApiType::Ollama) => "application/x-ndjson",
        (true, _) => "text/event-stream",
    };
    let mut req = client
        .post(provider_url(p, out.path))
        .timeout(budget)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ACCEPT, accept))
        .insert_header(("x-request-id", spec.request_id));
    if p.api_type == ApiType::Anthropic {
        // Anthropic authenticates with `x-api-key`, never a Bearer token.
        req = req.insert_header(("anthropic-version", crate::dialects::anthropic::API_VERSION));
        if !p.api_token.is_empty() {
            req = req.insert_header(("x-api-key", p.api_token.expose()));
        }
    } else if !p.api_token.is_empty() {
        req = req.bearer_auth(p.api_token.expose());
    }
    let fail = |mut lease: Lease, kind: FailureKind, reason: AttemptFailure| {
        lease.set_outcome(Outcome::Failure(kind));
        (lease, AttemptError::Failed(reason))
    };
    let resp = match req.send_body(out.body).await {
        Ok(r) => r,
        Err(e) => {
            let (kind, reason) = failure_of(&e, sent.elapsed());
            return Err(fail(lease, kind, reason));
        }
    };
    let status = resp.status();
    if !status.is_success() {
        let code = status.as_u16();
        let retry = retry_after(resp.headers());
        let remaining = first_deadline.saturating_duration_since(Instant::now());
        let body = resp
            .timeout(remaining)
            .body()
            .limit(64 * 1024)
            .await
            .unwrap_or_default();
        // 401/403/404 from a provider mean the router's credentials or `model_path` are wrong:
        // the provider's fault, not the client's.
        let provider_fault = code == 429 || code >= 500 || matches!(code, 401 | 403 | 404 | 408);
        if provider_fault {
            if let (429, Some(wait)) = (code, retry) {
                lease.set_retry_after(wait);
            }
            let reason = if code == 429 {
                AttemptFailure::RateLimited(retry)
            } else {
                AttemptFailure::Status(code)
            };
            return Err(fail(lease, FailureKind::Status(code), reason));
        }
        lease.set_outcome(Outcome::ClientError(code));
        let err = RouterError::UpstreamRejected {
            status: code,
            message: provider_message(&body),
            provider: p.id.clone(),
        };
        return Err((lease, AttemptError::Rejected(err)));
    }
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let content_length = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut resp = resp;
    let mut rest = resp.take_payload();
    let remaining = first_deadline.saturating_duration_since(Instant::now());
    let first = match tokio::time::timeout(remaining, rest.next()).await {
        Err(_) => {
            return Err(fail(
                lease,
                FailureKind::Timeout,
                AttemptFailure::Timeout(sent.elapsed()),
            ))
        }
        Ok(None) | Ok(Some(Err(_))) => {
            return Err(fail(lease, FailureKind::Body, AttemptFailure::Body))
        }
        Ok(Some(Ok(chunk))) => chunk,
    };
    lease.first_byte(Instant::now());
    Ok(Committed {
        lease,
        status,
        content_type,
        content_length,
        first,
        rest,
    })
}
