//! Access control on the HTTP surface (SPEC §10): API keys, policies, per-key models and rate
//! limits, as one actix-web middleware ([`guard`]) in front of every route.
//!
//! Order for a request that is not public: key (Bearer or `x-api-key`) → lookup by digest →
//! active / unexpired → policy for the route → the key's `models` (body read only for keys that
//! have such a list, then handed on unchanged) → rate limit → the handler. Refusals use the
//! route's dialect error shape. The client's key is never logged (only `key_id`) and never
//! reaches a provider (`upstream` builds its requests from scratch, with its own headers).
//!
//! Handlers find the caller in the request extensions ([`caller`]) and report tokens of each
//! answer with [`Caller::record_tokens`] (the token window).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures_util::StreamExt;
use llm_router_actors::access::keys::digest;
use llm_router_actors::access::policy::expand_public;
use llm_router_actors::access::{
    classify, AuthFailure, Decision, ErrorDialect, KeyStore, LimiterHealth, Policy, RateLimiter,
    RedisKeys, SharedLimits,
};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde_json::json;

use crate::errors::{Dialect, RouterError};
use crate::handlers::AppState;
use crate::settings::RedisSettings;
use crate::usage::{Counted, Sink};

#[path = "access_settings.rs"]
mod settings;
pub use settings::{AccessSettings, StoreKind, VARS};

/// The caller of an authenticated request, in its extensions.
#[derive(Clone)]
pub struct Caller {
    pub key_id: Arc<str>,
    pub policy: Policy,
    limiter: Option<Arc<RateLimiter>>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("key_id", &self.key_id)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Caller {
    /// Counts the tokens of an answer (prompt + completion, streams included) against the key's
    /// token window. Cheap and non-blocking; call it once per answer when its usage is known.
    pub fn record_tokens(&self, n: u64) {
        if let Some(l) = &self.limiter {
            l.record_tokens(&self.key_id, n);
        }
    }
}

/// The authenticated caller of `req`, when auth is on and the route is not public.
pub fn caller(req: &HttpRequest) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
}

/// The access layer's shared state (one per server, in [`AppState`]).
pub struct Access {
    enabled: bool,
    public: Vec<String>,
    prefix: String,
    max_body: usize,
    default_rpm: u32,
    store: KeyStore,
    limiter: Option<Arc<RateLimiter>>,
    rejections: Option<IntCounterVec>,
    /// `/auth/metrics`: per `key_id` (`-` for a missing or unknown key).
    per_key: std::sync::RwLock<HashMap<Arc<str>, Arc<KeyCounts>>>,
}

/// Requests, 401s and 429s of one `key_id`.
#[derive(Default)]
struct KeyCounts {
    requests: std::sync::atomic::AtomicU64,
    unauthorized: std::sync::atomic::AtomicU64,
    forbidden: std::sync::atomic::AtomicU64,
    rate_limited: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Copy)]
enum Tally {
    Served,
    Unauthorized,
    Forbidden,
    RateLimited,
}

impl Access {
    /// Builds the state; registers its metrics in `prom` when given.
    pub fn new(
        s: &AccessSettings,
        prefix: &str,
        max_body: usize,
        redis: Option<&RedisSettings>,
        prom: Option<&Registry>,
    ) -> std::io::Result<Arc<Access>> {
        let store = match (s.store, redis) {
            (StoreKind::Redis, Some(r)) => KeyStore::redis(RedisKeys {
                addr: r.addr(),
                prefix: r.prefix.clone(),
                timeout: Duration::from_millis(500),
            }),
            _ => KeyStore::memory(
                s.keys_file.clone(),
                s.keys.as_ref().map(|k| k.table.clone()).unwrap_or_default(),
            ),
        };
        let limiter = (s.enabled && s.rate_limit).then(|| {
            RateLimiter::new(redis.map(|r| SharedLimits {
                addr: r.addr(),
                prefix: r.prefix.clone(),
                timeout: Duration::from_millis(500),
            }))
        });
        let rejections = match prom {
            Some(reg) if s.enabled => {
                let c = IntCounterVec::new(
                    Opts::new(
                        "llm_router_auth_rejections_total",
                        "requests refused by the access layer, by reason",
                    ),
                    &["reason"],
                )
                .map_err(std::io::Error::other)?;
                reg.register(Box::new(c.clone()))
                    .map_err(std::io::Error::other)?;
                if let Some(l) = &limiter {
                    reg.register(Box::new(LimiterCollector::new(l.health())?))
                        .map_err(std::io::Error::other)?;
                }
                Some(c)
            }
            _ => None,
        };
        if s.enabled {
            tracing::info!(
                store = ?s.store,
                keys = s.keys.as_ref().map_or(0, |k| k.table.len()),
                rate_limit = s.rate_limit,
                shared_limits = s.rate_limit && redis.is_some(),
                "API keys required"
            );
        }
        Ok(Arc::new(Access {
            enabled: s.enabled,
            public: expand_public(&s.public_endpoints, prefix),
            prefix: prefix.to_string(),
            max_body,
            default_rpm: s.default_rpm,
            store,
            limiter,
            rejections,
            per_key: Default::default(),
        }))
    }

    /// Counts one request of `key_id` for `/auth/metrics` (a read lock and an atomic add; the
    /// write lock only for a key's first request).
    fn tally(&self, key_id: &str, t: Tally) {
        use std::sync::atomic::Ordering::Relaxed;
        let found = self
            .per_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
            .cloned();
        let c = match found {
            Some(c) => c,
            None => self
                .per_key
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key_id.into())
                .or_default()
                .clone(),
        };
        c.requests.fetch_add(1, Relaxed);
        match t {
            Tally::Served => {}
            Tally::Unauthorized => {
                c.unauthorized.fetch_add(1, Relaxed);
            }
            Tally::Forbidden => {
                c.forbidden.fetch_add(1, Relaxed);
            }
            Tally::RateLimited => {
                c.rate_limited.fetch_add(1, Relaxed);
            }
        }
    }

    /// `GET /auth/metrics`: per `key_id`, requests seen and how many got 401, 403, 429.
    pub fn metrics_json(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let map = self.per_key.read().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<_> = map
            .iter()
            .map(|(k, c)| {
                json!({"key_id": &**k, "requests": c.requests.load(Relaxed),
                       "unauthorized_401": c.unauthorized.load(Relaxed),
                       "forbidden_403": c.forbidden.load(Relaxed),
                       "rate_limited_429": c.rate_limited.load(Relaxed)})
            })
            .collect();
        keys.sort_by(|a, b| a["key_id"].as_str().cmp(&b["key_id"].as_str()));
        json!({"auth_enabled": self.enabled, "keys": keys})
    }

    /// `GET /auth/status`.
    pub async fn status_json(&self) -> serde_json::Value {
        let keys = match self.store.records().await {
            Ok(r) => json!(r.len()),
            Err(e) => json!({"error": e.0}),
        };
        json!({"auth_enabled": self.enabled, "store": self.store.kind(), "keys": keys,
               "public_endpoints": self.public, "rate_limits": self.limiter_json(),
               "default_rpm": self.default_rpm})
    }

    /// The per-key half of `GET /router/rate-limits`: every key's limits and what its windows
    /// hold now (from Redis when the limits are shared and Redis answers).
    pub async fn key_limits_json(&self) -> serde_json::Value {
        let records = match self.store.records().await {
            Ok(r) => r,
            Err(e) => return json!({"error": e.0}),
        };
        let mut out = Vec::with_capacity(records.len());
        for r in records.iter().take(10_000) {
            let rpm = r.rpm.unwrap_or(self.default_rpm);
            let u = match &self.limiter {
                Some(l) => Some(l.usage(&r.key_id).await),
                None => None,
            };
            out.push(json!({
                "key_id": r.key_id, "policy": r.policy.as_str(), "active": r.is_active,
                "requests": {"limit": rpm, "used": u.map(|u| u.requests),
                             "remaining": u.map(|u| u64::from(rpm).saturating_sub(u.requests))},
                "tokens": {"limit": r.tpm, "used": u.map(|u| u.tokens)},
                "resets_in_seconds": u.and_then(|u| u.resets_in).map(|d| d.as_millis().div_ceil(1000) as u64),
                "source": u.map(|u| if u.shared { "redis" } else { "local" }),
            }));
        }
        json!(out)
    }

    /// Starts the background work (the shared limiter's Redis probe). Inside an actix System.
    pub fn start(&self) {
        if let Some(l) = &self.limiter {
            l.start();
        }
    }

    /// Whether the rate-limit windows are the shared ones, when limits are on with Redis (for
    /// `/health`: `shared` configured, `up` answering, `fallbacks` decided locally).
    pub fn limiter_health(&self) -> Option<Arc<LimiterHealth>> {
        self.limiter.as_ref().map(|l| l.health())
    }

    /// The limiter's state for `/health` and the status routes: which windows decide now
    /// (`backend`: `redis` while Redis answers, else `local`), Redis' state when configured, and
    /// how many requests were decided locally because Redis was away.
    pub fn limiter_json(&self) -> serde_json::Value {
        match self.limiter_health() {
            None => json!({"enabled": false}),
            Some(h) if !h.is_shared() => json!({"enabled": true, "backend": "local"}),
            Some(h) => json!({
                "enabled": true,
                "backend": if h.is_up() { "redis" } else { "local" },
                "redis": if h.is_up() { "up" } else { "down" },
                "degraded": !h.is_up(),
                "local_decisions": h.fallbacks(),
            }),
        }
    }

    /// Re-reads the keys file (memory store); a bad file keeps the running keys.
    pub fn reload_keys(&self) -> Result<usize, Vec<String>> {
        self.store.reload()
    }

    /// Checks a key as the guard does (known, active, unexpired): its digest, `key_id` and
    /// policy, or the message of the 401 (the console's log-in).
    pub async fn identify(
        &self,
        key: &str,
    ) -> Result<(llm_router_actors::access::keys::KeyDigest, String, Policy), String> {
        let d = digest(key);
        let record = match self.store.find(&d).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.count(AuthFailure::Unknown.reason());
                return Err(AuthFailure::Unknown.to_string());
            }
            Err(_) => return Err("cannot check the API key: the key store is unavailable".into()),
        };
        record.check(now_secs()).map_err(|f| {
            self.count(f.reason());
            f.to_string()
        })?;
        Ok((d, record.key_id.clone(), record.policy))
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `path` is served without a key (see [`is_public`]).
    pub fn is_public(&self, path: &str) -> bool {
        is_public(path, &self.public)
    }

    /// `memory` or `redis`.
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    fn count(&self, reason: &str) {
        if let Some(c) = &self.rejections {
            c.with_label_values(&[reason]).inc();
        }
    }
}

/// Prometheus view of the limiter's Redis state, read at scrape time.
struct LimiterCollector {
    health: Arc<LimiterHealth>,
    up: IntGauge,
    local: IntCounter,
}

impl LimiterCollector {
    fn new(health: Arc<LimiterHealth>) -> std::io::Result<LimiterCollector> {
        Ok(LimiterCollector {
            health,
            up: IntGauge::new(
                "llm_router_rate_limit_shared_up",
                "1 while per-key rate limits are enforced in Redis (shared by all replicas)",
            )
            .map_err(std::io::Error::other)?,
            local: IntCounter::new(
                "llm_router_rate_limit_local_decisions_total",
                "requests whose rate limit was decided on local windows because Redis was away",
            )
            .map_err(std::io::Error::other)?,
        })
    }
}

impl Collector for LimiterCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.up.desc();
        d.extend(self.local.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        if self.health.is_shared() {
            self.up.set(i64::from(self.health.is_up()));
            out.extend(self.up.collect());
        }
        let n = self.health.fallbacks();
        if n > self.local.get() {
            self.local.inc_by(n - self.local.get());
        }
        out.extend(self.local.collect());
        out
    }
}

fn dialect(d: ErrorDialect) -> Dialect {
    match d {
        ErrorDialect::OpenAi => Dialect::OpenAi,
        ErrorDialect::Anthropic => Dialect::Anthropic,
        ErrorDialect::Ollama => Dialect::Ollama,
    }
}

/// An access refusal in the route's dialect shape (OpenAI, Anthropic or Ollama).
fn refusal(d: ErrorDialect, status: StatusCode, kind: &str, message: &str) -> HttpResponse {
    let body = match d {
        ErrorDialect::OpenAi => json!({"error": {"message": message, "type": kind,
                                                 "param": null, "code": status.as_u16()}}),
        ErrorDialect::Anthropic => {
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        ErrorDialect::Ollama => json!({"error": message}),
    };
    let mut res = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    res.content_type("application/json").body(body.to_string())
}

static LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
static REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
static LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
static REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");

fn rate_headers(h: &mut header::HeaderMap, d: &Decision) {
    h.insert(LIMIT_REQUESTS.clone(), HeaderValue::from(d.rpm));
    h.insert(REMAINING_REQUESTS.clone(), HeaderValue::from(d.remaining));
    if let Some(t) = d.tpm {
        h.insert(LIMIT_TOKENS.clone(), HeaderValue::from(t));
        h.insert(
            REMAINING_TOKENS.clone(),
            HeaderValue::from(t.saturating_sub(d.tokens_used)),
        );
    }
}

/// The key the client sent: `Authorization: Bearer <key>`, else `x-api-key: <key>`.
fn presented_key(req: &ServiceRequest) -> Option<&str> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    bearer
        .or_else(|| {
            req.headers()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Reads the body (bounded), returns the model it names, and puts the bytes back for the handler.
async fn body_model(
    req: &mut ServiceRequest,
    field: &str,
    limit: usize,
) -> Result<Option<String>, RouterError> {
    let mut payload = req.take_payload();
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            RouterError::bad_request(format!("could not read the request body: {e}"), None)
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(RouterError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    let bytes = buf.freeze();
    let model = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get(field).and_then(|m| m.as_str()).map(String::from));
    req.set_payload(Payload::from(bytes));
    Ok(model)
}

/// Wraps a provider's answer so its token usage reaches the caller's token window and
/// `/router/stats` when the body is done ([`crate::usage`]); other responses pass unwrapped.
fn counted<B: MessageBody>(res: ServiceResponse<B>) -> ServiceResponse<Counted<B>> {
    let provider = res
        .headers()
        .get(&crate::relay::PROVIDER_HEADER)
        .and_then(|v| v.to_str().ok());
    let sink = provider.map(|provider| {
        let model = res
            .headers()
            .get(&crate::relay::MODEL_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let req = res.request();
        let stats = req
            .app_data::<web::Data<AppState>>()
            .and_then(|s| s.metrics.as_ref())
            .map(|m| m.stats.provider(provider, model));
        let request_bytes = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Sink {
            caller: caller(req),
            stats,
            request_bytes,
        }
    });
    res.map_body(|_, b| Counted::new(b, sink))
}

/// Whether `path` is served without a key: listed in `LLM_ROUTER_AUTH_PUBLIC_ENDPOINTS`, one
/// model of a public listing (`/v1/models/{id}` when `/v1/models` is public), or the API
/// description (`/openapi.json`, `/docs`).
fn is_public(path: &str, public: &[String]) -> bool {
    if public.iter().any(|p| p == path) || matches!(path, "/openapi.json" | "/docs") {
        return true;
    }
    ["/v1/models", "/models"].iter().any(|base| {
        path.strip_prefix(base)
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'))
            && public.iter().any(|p| p == base)
    })
}

/// Middleware: enforces keys, policies, models and rate limits (a no-op with auth off), and
/// counts the tokens of every provider answer.
pub async fn guard<B: MessageBody + Unpin + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<Counted<B>, BoxBody>>, Error> {
    // `LLM_ROUTER_ADMIN_API_KEY` (alias `ROUTER_ADMIN_API_KEY`): admin routes accept that key,
    // and with access control off they need it.
    let admin = req.app_data::<web::Data<AppState>>().and_then(|s| {
        let key = s.settings.smart.admin_key.as_ref()?;
        let class = classify(req.path(), &s.settings.prefix).class;
        (class == llm_router_actors::access::RouteClass::Admin)
            .then(|| (digest(key.expose()), s.access.enabled))
    });
    if let Some((want, enabled)) = admin {
        if presented_key(&req).is_some_and(|k| digest(k) == want) {
            return Ok(counted(next.call(req).await?).map_into_left_body());
        }
        if !enabled {
            let d = classify(req.path(), "").dialect;
            let res = refusal(
                d,
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "this admin route needs the admin API key (LLM_ROUTER_ADMIN_API_KEY) as a Bearer \
                 token or x-api-key",
            );
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    let Some(access) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.access.clone())
        .filter(|a| a.enabled)
    else {
        return Ok(counted(next.call(req).await?).map_into_left_body());
    };
    if is_public(req.path(), &access.public) || crate::console::is_public(req.path()) {
        return Ok(counted(next.call(req).await?).map_into_left_body());
    }
    let route = classify(req.path(), &access.prefix);
    let d = route.dialect;
    let refuse =
        |req: ServiceRequest, res: HttpResponse| Ok(req.into_response(res).map_into_right_body());
    let unauthorized = |req: ServiceRequest, f: AuthFailure| {
        access.count(f.reason());
        let key_id = match &f {
            AuthFailure::Inactive { key_id } | AuthFailure::Expired { key_id, .. } => {
                key_id.as_str()
            }
            _ => "-",
        };
        access.tally(key_id, Tally::Unauthorized);
        tracing::info!(
            reason = f.reason(),
            key_id,
            path = req.path(),
            "request refused: 401"
        );
        let res = refusal(
            d,
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            &f.to_string(),
        );
        refuse(req, res)
    };
    // No key: the console's session cookie may stand for one (its CSRF token checked on writes).
    let key_digest = match presented_key(&req) {
        Some(key) => digest(key),
        None => match crate::console::session::from_cookie(&req) {
            crate::console::session::FromCookie::Key(d) => d,
            crate::console::session::FromCookie::None => {
                return unauthorized(req, AuthFailure::Missing)
            }
            crate::console::session::FromCookie::BadCsrf => {
                access.count("forbidden");
                let res = refusal(
                    d,
                    StatusCode::FORBIDDEN,
                    "permission_error",
                    "a console session's write must carry its x-csrf-token header",
                );
                return refuse(req, res);
            }
        },
    };
    let found = access.store.find(&key_digest).await;
    let record = match found {
        Ok(Some(r)) => r,
        Ok(None) => return unauthorized(req, AuthFailure::Unknown),
        Err(e) => {
            access.count("store_unavailable");
            tracing::warn!(error = %e, "request refused: key store unavailable");
            let res = refusal(
                d,
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "cannot check the API key: the key store is unavailable; retry later",
            );
            return refuse(req, res);
        }
    };
    if let Err(f) = record.check(now_secs()) {
        return unauthorized(req, f);
    }
    let forbidden = |req: ServiceRequest, message: String| {
        access.count("forbidden");
        access.tally(&record.key_id, Tally::Forbidden);
        tracing::info!(key_id = %record.key_id, path = req.path(), "request refused: 403");
        let res = refusal(d, StatusCode::FORBIDDEN, "permission_error", &message);
        refuse(req, res)
    };
    if !record.policy.allows(route.class) {
        let msg = format!(
            "API key \"{}\" (policy \"{}\") may not call {}",
            record.key_id,
            record.policy.as_str(),
            req.path()
        );
        return forbidden(req, msg);
    }
    if let (Some(allowed), Some(field)) = (&record.models, route.model_field) {
        match body_model(&mut req, field, access.max_body).await {
            Ok(Some(m)) if !allowed.contains(&m) => {
                let msg = format!(
                    "API key \"{}\" may not use model \"{m}\"; it may use: {}",
                    record.key_id,
                    allowed.join(", ")
                );
                return forbidden(req, msg);
            }
            Ok(_) => {}
            Err(e) => {
                let res = e.render(dialect(d));
                return refuse(req, res);
            }
        }
    }
    let decision = match &access.limiter {
        Some(l) => {
            let rpm = record.rpm.unwrap_or(access.default_rpm);
            let dec = l.admit(&record.key_id, rpm, record.tpm).await;
            if let Some((limit, secs)) = dec.refused {
                access.count("rate_limited");
                access.tally(&record.key_id, Tally::RateLimited);
                tracing::info!(key_id = %record.key_id, limit = ?limit, retry_after = secs, "request refused: 429");
                let what = match limit {
                    llm_router_actors::access::Limit::Requests => {
                        format!("{} requests per minute", dec.rpm)
                    }
                    llm_router_actors::access::Limit::Tokens => {
                        format!("{} tokens per minute", dec.tpm.unwrap_or(0))
                    }
                };
                let mut res = refusal(
                    d,
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    &format!(
                        "API key \"{}\" is over its limit of {what}; retry in {secs}s",
                        record.key_id
                    ),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                rate_headers(res.headers_mut(), &dec);
                return refuse(req, res);
            }
            Some(dec)
        }
        None => None,
    };
    access.tally(&record.key_id, Tally::Served);
    tracing::debug!(key_id = %record.key_id, "authenticated");
    req.extensions_mut().insert(Caller {
        key_id: record.key_id.as_str().into(),
        policy: record.policy,
        limiter: access.limiter.clone(),
    });
    let mut res = next.call(req).await?;
    if let Some(dec) = &decision {
        rate_headers(res.headers_mut(), dec);
    }
    Ok(counted(res).map_into_left_body())
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
