//! Attempts and failover. A request is committed to a provider only at the commit point — its
//! first body chunk for a stream, its whole answer otherwise: until then nothing has reached the
//! client, so a connect error, a timeout, a 5xx, a 429, a broken first read or a non-stream body
//! cut short is retried on another provider of the model (at most once per provider, at most
//! `LLM_ROUTER_MAX_ATTEMPTS` attempts, within `LLM_ROUTER_TIMEOUT` when set). When every untried
//! provider is waiting out a `Retry-After` no longer than `LLM_ROUTER_MAX_RETRY_AFTER_SECONDS`,
//! the request waits for the first to come free. An upstream 4xx caused by the request is
//! returned as it is.

use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use awc::error::SendRequestError;
use awc::http::{header, StatusCode};
use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use llm_router_actors::wire::{EndTracker, Framing, Wire};
use llm_router_actors::{ChooseError, ChooseProvider, FailureKind, Lease, Outcome};

use super::client::UpstreamPayload;
use super::finish::finish;
use super::h1::SendError;
use super::plan::{Outgoing, Route};
use super::Call;
use crate::errors::{Attempt, RouterError};
use crate::handlers::AppState;

mod hedge;
use hedge::hedged;

/// A provider committed to this request: its response head, the first body chunk, the rest, and
/// how the answer is handled (decided when the request was built).
pub struct Committed {
    pub lease: Lease,
    pub wire: Wire,
    pub route: Route,
    pub status: StatusCode,
    pub content_type: Option<header::HeaderValue>,
    pub content_length: Option<u64>,
    pub first: Bytes,
    pub rest: UpstreamPayload,
    /// The `x-llm-router-decision` value, set once the request is committed.
    pub decision: Option<header::HeaderValue>,
}

/// Why an attempt did not commit.
enum NotCommitted {
    /// The provider is at fault or unreachable; try another.
    Failed(FailureKind),
    /// The connection was made, then reset before a response head: transient, like a 502.
    Reset,
    /// The provider refused the request itself (this 4xx): the client gets it, no failover.
    Refused(u16, RouterError),
}

/// Why a model could not serve the request, and so which of its fallback lists applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fallback {
    /// Every provider failed (or none could be had) before the first byte: `fallbacks`.
    Failed,
    /// The prompt is too long for the model: `context_window_fallbacks`.
    ContextWindow,
    /// A provider refused the content: `content_policy_fallbacks`.
    ContentPolicy,
}

impl Fallback {
    fn key(self) -> &'static str {
        match self {
            Fallback::Failed => "fallbacks",
            Fallback::ContextWindow => "context_window_fallbacks",
            Fallback::ContentPolicy => "content_policy_fallbacks",
        }
    }
}

/// Serves the request from its model's providers, then, when they cannot, from the model's
/// fallbacks (SPEC §2, §11): at most `LLM_ROUTER_MAX_ATTEMPTS` upstream attempts in all.
pub async fn failover(
    client: &awc::Client,
    state: &AppState,
    call: &Call<'_>,
) -> Result<Committed, RouterError> {
    let models = &state.settings.models;
    // Borrowed until a fallback is taken (no allocation on the usual path).
    let mut model = std::borrow::Cow::Borrowed(call.plan.model.as_str());
    // Fallback models taken so far (the request's own model aside).
    let mut visited: Vec<String> = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    // A prompt estimated too long for every provider of the model goes to a larger model at once.
    if let Some(cfg) = models.model(&model) {
        let estimate = call.plan.estimated_tokens();
        let limit = cfg.providers.iter().map(|p| p.input_size).max().flatten();
        let all_sized = cfg.providers.iter().all(|p| p.input_size.is_some());
        if let (true, Some(limit), Some(next)) =
            (all_sized, limit, cfg.context_window_fallbacks.first())
        {
            if estimate > limit {
                tracing::info!(model = %model, estimate, limit, fallback = %next,
                    "prompt longer than every provider's input_size; using a context-window fallback");
                count_fallback(state, &model, Fallback::ContextWindow);
                visited.push(next.clone());
                model = std::borrow::Cow::Owned(next.clone());
            }
        }
    }
    loop {
        // Boxed: the attempts' state is most of this future's size, and every future that
        // holds this one inline (up to the handler's, itself boxed by actix) is copied whole
        // when it is made and moved.
        let serving = Box::pin(serve_model(client, state, call, &model, &mut attempts));
        let (why, err) = match serving.await {
            Ok(mut c) => {
                c.decision = super::explain::decision(state, call, &c, &attempts, &visited);
                return Ok(c);
            }
            Err((Some(why), err)) => (why, err),
            Err((None, err)) => return Err(err),
        };
        let next = models.model(&model).and_then(|cfg| {
            cfg.fallback_list(why.key())
                .iter()
                .find(|m| **m != call.plan.model && !visited.contains(m))
        });
        match next {
            Some(next) if attempts.len() < state.settings.max_attempts => {
                tracing::info!(model = %model, fallback = %next, reason = why.key(), "falling back");
                count_fallback(state, &model, why);
                visited.push(next.clone());
                model = std::borrow::Cow::Owned(next.clone());
            }
            _ => return Err(err),
        }
    }
}

fn count_fallback(state: &AppState, model: &str, why: Fallback) {
    if let Some(m) = &state.metrics {
        m.fallbacks.with_label_values(&[model, why.key()]).inc();
    }
}

/// A provider's 4xx that says the prompt does not fit the model's context.
fn is_context_too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "context length",
        "context_length",
        "context window",
        "maximum context",
        "prompt is too long",
        "too many tokens",
        "input is too long",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// A provider's 4xx that refuses the content itself.
fn is_content_policy(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "content policy",
        "content_policy",
        "content management policy",
        "content_filter",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// Chooses providers of `model` and sends the request until one commits or every one has failed.
async fn serve_model(
    client: &awc::Client,
    state: &AppState,
    call: &Call<'_>,
    model: &str,
    attempts: &mut Vec<Attempt>,
) -> Result<Committed, (Option<Fallback>, RouterError)> {
    let metrics = state.metrics.as_ref();
    let s = &state.settings;
    let tried_before = attempts.len();
    // Time spent waiting out providers' `Retry-After`, bounded by the same setting in total.
    let mut waited = Duration::ZERO;
    // A provider whose transient failure may be retried once, if nothing on its tier can serve.
    let mut retry: Option<Retry> = None;
    // Set for the one attempt that retries the same provider.
    let mut only: Option<String> = None;
    // Providers whose Ollama host had no room (VRAM management): skipped, not failed.
    let mut no_room: Option<llm_router_actors::vram::NoRoom> = None;
    let mut skipped: Vec<String> = Vec::new();
    // Each attempt has its own bounds; only `LLM_ROUTER_TIMEOUT` bounds the request, so a
    // timed-out attempt is followed by the next provider while one remains.
    while attempts.len() < s.max_attempts {
        let now = Instant::now();
        if call.deadline.is_some_and(|d| now >= d) && !attempts.is_empty() {
            break;
        }
        // How long this request may wait for capacity before its next attempt.
        let queue_deadline = call.deadline.unwrap_or(now + call.external_timeout);
        let exclude = match &only {
            // The retry: every other provider of the model is excluded.
            Some(id) => state
                .settings
                .models
                .model(model)
                .map(|cfg| {
                    cfg.providers
                        .iter()
                        .filter(|p| p.id != *id)
                        .map(|p| p.id.clone())
                        .collect()
                })
                .unwrap_or_default(),
            None => attempts
                .iter()
                .map(|a| a.provider.clone())
                .chain(skipped.iter().cloned())
                .collect(),
        };
        let choice = state
            .chooser
            .choose(ChooseProvider {
                model: model.to_string(),
                exclude,
                deadline: queue_deadline,
                session: call.session,
            })
            .await
            .map_err(|e| {
                (
                    None,
                    RouterError::Internal(format!("registry unavailable: {e}")),
                )
            })?;
        let chosen = choice.resolve().await;
        if only.take().is_some() && chosen.is_err() {
            // The retried provider cannot be had (its circuit opened, say): go on without it.
            continue;
        }
        // Retry before tier change: the next choice would leave the failed provider's tier (or
        // there is none), so the failed provider gets its one retry after a short pause instead.
        if let Some(r) = retry.take() {
            let leaves_tier = chosen
                .as_ref()
                .map_or(true, |l| l.provider().priority > r.priority);
            let pause = r.pause();
            let fits = call
                .deadline
                .is_none_or(|d| Instant::now() + pause + Duration::from_millis(1) < d);
            if leaves_tier && fits {
                // Not used: back unannounced (`Cancelled` is held against nobody).
                drop(chosen);
                if r.wait.is_some() {
                    waited += pause;
                }
                tracing::info!(provider = %r.provider, model = %model, pause_ms = pause.as_millis() as u64,
                    "retrying the provider before changing tier");
                tokio::time::sleep(pause).await;
                only = Some(r.provider);
                continue;
            }
        }
        let lease = match chosen {
            Ok(lease) => lease,
            // Every untried provider asked for a short pause: wait it out, then look again.
            Err(ChooseError::RateLimited { retry_after, .. })
                if waited + retry_after <= s.max_retry_after
                    && call
                        .deadline
                        .is_none_or(|d| Instant::now() + retry_after < d) =>
            {
                let pause = retry_after.max(Duration::from_millis(1));
                waited += pause;
                tokio::time::sleep(pause).await;
                continue;
            }
            Err(ChooseError::UnknownModel { model, available }) => {
                // Not a failure of the model's providers: no fallback applies.
                return Err((None, RouterError::UnknownModel { model, available }));
            }
            Err(e) => match refusal(e, attempts.len() == tried_before) {
                Some(err) => return Err((Some(Fallback::Failed), err)),
                None => break,
            },
        };
        if let Some(m) = metrics {
            m.observe_choice(&lease);
        }
        let out = match call.plan.outgoing(lease.provider(), lease.model()) {
            Ok(out) => out,
            // Nothing was sent: the lease goes back as cancelled, not held against the provider.
            Err(e) => {
                finish(lease, Outcome::Cancelled, metrics);
                return Err((None, e));
            }
        };
        // VRAM management: an Ollama host makes room for the model before it is sent; a host
        // that cannot is skipped for this request (another provider may have room).
        if let Some(vram) = state.vram.as_ref().filter(|_| !call.plan.is_unload()) {
            let deadline = call
                .deadline
                .unwrap_or_else(|| Instant::now() + call.external_timeout);
            let upstream = lease.provider().upstream_model(lease.model()).to_string();
            if let Err(e) = vram
                .make_room(client, lease.provider(), &upstream, deadline)
                .await
            {
                tracing::warn!(provider = %e.provider, model = %e.model, "{e}");
                finish(lease, Outcome::Cancelled, metrics);
                skipped.push(e.provider.clone());
                no_room = Some(e);
                continue;
            }
        }
        match hedged(client, state, call, model, lease, out, attempts).await {
            Ok(committed) => return Ok(committed),
            Err((lease, NotCommitted::Refused(status, err))) => {
                finish(lease, Outcome::ClientError(status), metrics);
                let message = err.to_string();
                let why = if is_context_too_long(&message) {
                    Some(Fallback::ContextWindow)
                } else if is_content_policy(&message) {
                    Some(Fallback::ContentPolicy)
                } else {
                    None
                };
                return Err((why, err));
            }
            Err((mut lease, failed @ (NotCommitted::Failed(_) | NotCommitted::Reset))) => {
                let (kind, reset) = match failed {
                    NotCommitted::Failed(kind) => (kind, false),
                    _ => (FailureKind::Connect, true),
                };
                let provider = lease.provider().id.clone();
                tracing::warn!(provider = %provider, model = %model, reason = %kind,
                    "upstream attempt failed");
                if let FailureKind::RateLimited(Some(wait)) = kind {
                    // Skipped by every request until then.
                    lease.set_retry_after(wait);
                }
                let retried = attempts.iter().any(|a| a.provider == provider);
                if !retried {
                    let priority = lease.provider().priority;
                    retry = Retry::of(&provider, priority, kind, reset, s.max_retry_after);
                }
                finish(lease, Outcome::Failure(kind), metrics);
                if let Some(m) = metrics {
                    m.retries.inc();
                }
                attempts.push(Attempt { provider, kind });
            }
        }
    }
    if let Some(e) = no_room.filter(|_| attempts.len() == tried_before) {
        return Err((Some(Fallback::Failed), RouterError::NoRoom(e)));
    }
    if let Some(d) = call.deadline {
        if Instant::now() >= d {
            let limit = d.saturating_duration_since(call.started);
            return Err((None, RouterError::RequestTimeout { limit }));
        }
    }
    Err((
        Some(Fallback::Failed),
        RouterError::UpstreamFailed {
            model: model.to_string(),
            attempts: named_once(&attempts[tried_before..]),
        },
    ))
}

/// Each provider's last attempt, in order (a retried provider is named once).
fn named_once(attempts: &[Attempt]) -> Vec<Attempt> {
    let mut out: Vec<Attempt> = Vec::with_capacity(attempts.len());
    for a in attempts {
        out.retain(|b| b.provider != a.provider);
        out.push(a.clone());
    }
    out
}

/// A transient failure that may earn its provider one retry (SPEC §11, retry before tier change).
struct Retry {
    provider: String,
    priority: u32,
    /// The provider's `Retry-After`, when it gave one.
    wait: Option<Duration>,
}

impl Retry {
    /// `Some` for a 500/502/503, a connection reset (not refused: nobody listens there), or a
    /// 429 asking for at most `max_wait`.
    fn of(
        provider: &str,
        priority: u32,
        kind: FailureKind,
        reset: bool,
        max_wait: Duration,
    ) -> Option<Retry> {
        let wait = match kind {
            FailureKind::Status(500 | 502 | 503) => None,
            FailureKind::Connect if reset => None,
            FailureKind::RateLimited(Some(w)) if w <= max_wait => Some(w),
            _ => return None,
        };
        Some(Retry {
            provider: provider.to_string(),
            priority,
            wait,
        })
    }

    /// The `Retry-After` (and a little, so the provider's pause has surely ended), else a
    /// jittered backoff of 50–150 ms (so retries do not line up).
    fn pause(&self) -> Duration {
        self.wait
            .map(|w| w + Duration::from_millis(10))
            .unwrap_or_else(|| {
                let jitter = (uuid::Uuid::new_v4().as_u128() % 100) as u64;
                Duration::from_millis(50 + jitter)
            })
    }
}

/// The client's error when no provider could be leased; `None` when failover simply ran out of
/// providers after some were tried (the attempts tell the story).
fn refusal(e: ChooseError, first: bool) -> Option<RouterError> {
    match e {
        ChooseError::UnknownModel { model, available } => {
            Some(RouterError::UnknownModel { model, available })
        }
        ChooseError::Exhausted { .. } => None,
        ChooseError::NoHealthyProvider { model, unhealthy } => {
            first.then_some(RouterError::NoHealthyProvider { model, unhealthy })
        }
        ChooseError::RateLimited { model, retry_after } => {
            first.then_some(RouterError::RateLimited { model, retry_after })
        }
        // Waited for capacity until the deadline: no provider was tried, none timed out — the
        // model is full (503 with Retry-After), not a gateway timeout.
        ChooseError::AllBusy { model } => first.then_some(RouterError::AllBusy { model }),
    }
}

fn retry_after(v: &header::HeaderValue) -> Option<Duration> {
    v.to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Largest non-stream answer read whole before the commit.
const MAX_WHOLE: usize = 64 * 1024 * 1024;

/// Reads a non-stream answer to its end (idle-bounded, and within the request's deadline);
/// a cut, a stall or a body that ends unfinished is the provider's failure.
async fn read_rest(
    first: Bytes,
    mut rest: UpstreamPayload,
    framing: Framing,
    idle: Duration,
    deadline: Option<Instant>,
) -> Result<Bytes, FailureKind> {
    let mut end = EndTracker::new(framing);
    end.feed(&first);
    // Usually the first chunk is the whole answer: copied into a buffer only when more follow.
    let mut more: Option<BytesMut> = None;
    loop {
        // What has arrived already is taken without a timer (or a clock read).
        let next = match rest.next().now_or_never() {
            Some(next) => Ok(next),
            None => {
                let wait = deadline.map_or(idle, |d| {
                    idle.min(d.saturating_duration_since(Instant::now()))
                });
                tokio::time::timeout(wait, rest.next())
                    .await
                    .map_err(|_| wait)
            }
        };
        match next {
            Ok(Some(Ok(chunk))) => {
                let buf = more.get_or_insert_with(|| BytesMut::from(&first[..]));
                if buf.len() + chunk.len() > MAX_WHOLE {
                    return Err(FailureKind::Body);
                }
                end.feed(&chunk);
                buf.extend_from_slice(&chunk);
            }
            Ok(None) if end.incomplete().is_none() => {
                return Ok(more.map_or(first, BytesMut::freeze));
            }
            Ok(None) | Ok(Some(Err(_))) => return Err(FailureKind::Body),
            Err(wait) => return Err(FailureKind::Timeout(wait)),
        }
    }
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

/// A provider's response head (what the relay uses of it) and its body.
struct Answer {
    status: StatusCode,
    content_type: Option<header::HeaderValue>,
    content_length: Option<u64>,
    retry_after: Option<Duration>,
    body: UpstreamPayload,
}

/// A plain-HTTP provider: the relay's own HTTP/1.1 client (see `h1.rs`). Both clients report a
/// missing response head as `h1::SendError`.
async fn send_h1(
    target: &super::h1::Target<'_>,
    wire: &Wire,
    call: &Call<'_>,
    p: &llm_router_actors::ProviderConfig,
    body: Bytes,
    budget: Duration,
) -> Result<Answer, SendError> {
    let headers = |h: &mut super::h1::Head| {
        h.header("content-type", "", "application/json");
        h.header("accept", "", wire.accept(call.plan.stream));
        h.header("x-request-id", "", call.request_id);
        wire.profile()
            .credentials(p, &mut |name, prefix, value| h.header(name, prefix, value));
    };
    let r = super::h1::post(target, headers, body, budget).await?;
    Ok(Answer {
        status: StatusCode::from_u16(r.status).map_err(|_| SendError::Reset)?,
        retry_after: r.retry_after.as_ref().and_then(retry_after),
        content_type: r.content_type,
        content_length: r.content_length,
        body: actix_http::Payload::Stream {
            payload: Box::pin(r.body),
        },
    })
}

/// An `https://` (or otherwise unusual) provider: awc.
async fn send_awc(
    client: &awc::Client,
    url: &str,
    wire: &Wire,
    call: &Call<'_>,
    p: &llm_router_actors::ProviderConfig,
    body: Bytes,
    budget: Duration,
) -> Result<Answer, SendError> {
    let req = client
        .post(url)
        .timeout(budget)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ACCEPT, wire.accept(call.plan.stream)))
        .insert_header(("x-request-id", call.request_id));
    let req = wire.profile().authorise(req, p);
    match req.send_body(body).await {
        Ok(mut resp) => {
            let headers = resp.headers();
            Ok(Answer {
                status: resp.status(),
                content_type: headers.get(header::CONTENT_TYPE).cloned(),
                content_length: headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok()),
                retry_after: headers.get(header::RETRY_AFTER).and_then(retry_after),
                body: resp.take_payload(),
            })
        }
        Err(SendRequestError::Send(_) | SendRequestError::Response(_)) => Err(SendError::Reset),
        Err(SendRequestError::Timeout) => Err(SendError::Timeout),
        // Anything else before a response head (refused, unresolvable, a request awc would not
        // build) is the connection's failure. (awc's error enum is foreign and may grow.)
        Err(_) => Err(SendError::Connect),
    }
}

/// Up to `limit` bytes of an error answer's body, within `wait` (what arrived when either ends).
async fn read_limited(body: &mut UpstreamPayload, limit: usize, wait: Duration) -> Bytes {
    let mut buf = BytesMut::new();
    let read = async {
        while let Some(Ok(chunk)) = body.next().await {
            let room = limit - buf.len();
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() >= limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
    buf.freeze()
}

/// Sends one attempt and waits for its commit point (the first body chunk).
async fn attempt(
    client: &awc::Client,
    mut lease: Lease,
    out: Outgoing,
    call: &Call<'_>,
) -> Result<Committed, (Lease, NotCommitted)> {
    let snapshot = lease.snapshot().clone();
    let p = &snapshot.config;
    let wire = Wire::of(p.api_type);
    let sent = Instant::now();
    // Time allowed until the first body byte: the provider's TTFT bound, else its timeout, else
    // the router's, never past the request's own deadline.
    let mut budget = p
        .ttft_timeout
        .or(p.timeout)
        .unwrap_or(call.external_timeout);
    if let Some(d) = call.deadline {
        budget = budget.min(d.saturating_duration_since(sent));
    }
    let first_deadline = sent + budget;
    let url = llm_router_actors::wire::url(p, out.path);
    let h1 = if call.upstream_awc {
        None
    } else {
        super::h1::Target::parse(&url)
    };
    let sent_by = match h1 {
        Some(target) => send_h1(&target, &wire, call, p, out.body, budget).await,
        None => send_awc(client, &url, &wire, call, p, out.body, budget).await,
    };
    let mut answer = match sent_by {
        Ok(answer) => answer,
        Err(failed) => {
            let failed = match failed {
                SendError::Reset => NotCommitted::Reset,
                SendError::Connect => NotCommitted::Failed(FailureKind::Connect),
                SendError::Timeout => NotCommitted::Failed(FailureKind::Timeout(sent.elapsed())),
            };
            return Err((lease, failed));
        }
    };
    let status = answer.status;
    if !status.is_success() {
        let code = status.as_u16();
        let wait = answer.retry_after;
        let remaining = first_deadline.saturating_duration_since(Instant::now());
        let body = read_limited(&mut answer.body, 64 * 1024, remaining).await;
        // 401/403/404 from a provider mean the router's credentials or `model_path` are wrong:
        // the provider's fault, not the client's.
        let kind = match code {
            429 => Some(FailureKind::RateLimited(wait)),
            401 | 403 | 404 | 408 => Some(FailureKind::Status(code)),
            c if c >= 500 => Some(FailureKind::Status(code)),
            _ => None,
        };
        if let Some(kind) = kind {
            return Err((lease, NotCommitted::Failed(kind)));
        }
        let err = RouterError::UpstreamRejected {
            status: code,
            message: provider_message(&body),
            provider: p.id.clone(),
        };
        return Err((lease, NotCommitted::Refused(code, err)));
    }
    let content_type = answer.content_type;
    let content_length = answer.content_length;
    let mut rest = answer.body;
    // Usually the first chunk came with the head: taken without a timer.
    let first = match rest.next().now_or_never() {
        Some(first) => Ok(first),
        None => tokio::time::timeout_at(first_deadline.into(), rest.next()).await,
    };
    let first = match first {
        Err(_) => {
            let kind = FailureKind::Timeout(sent.elapsed());
            return Err((lease, NotCommitted::Failed(kind)));
        }
        Ok(None) | Ok(Some(Err(_))) => {
            return Err((lease, NotCommitted::Failed(FailureKind::Body)))
        }
        Ok(Some(Ok(chunk))) => chunk,
    };
    lease.first_byte(Instant::now());
    let framing = wire.framing_of(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        content_length,
    );
    let (first, rest) = if framing.is_stream() {
        (first, rest)
    } else {
        // Nothing needs to stream: read the answer whole before committing, so a body cut
        // half-way fails over like a connect error instead of reaching the client truncated.
        let idle = p.timeout.unwrap_or(call.external_timeout);
        match read_rest(first, rest, framing, idle, call.deadline).await {
            Ok(whole) => (whole, actix_http::Payload::None),
            Err(kind) => return Err((lease, NotCommitted::Failed(kind))),
        }
    };
    Ok(Committed {
        lease,
        wire,
        route: out.route,
        status,
        content_type,
        content_length,
        first,
        rest,
        decision: None,
    })
}
