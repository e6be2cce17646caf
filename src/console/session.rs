//! Console sessions (SPEC §12): with auth on, the page posts an API key once to
//! `POST /ui/api/login`; the router answers with a cookie `llmr_session=<random id>; HttpOnly;
//! SameSite=Strict; Path=/` naming an in-memory session (the key's digest, never the key, and a
//! CSRF token), valid for [`SESSION_TTL`].
//!
//! [`crate::access::guard`] takes the session's key digest when a request carries no key, so the
//! key's policy, models and limits apply unchanged — and a revoked key ends its sessions. Writes
//! (any method but GET/HEAD/OPTIONS) made with the cookie must also carry the session's token in
//! `x-csrf-token`; `SameSite=Strict` already keeps other sites' pages from sending the cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::ServiceRequest;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use llm_router_actors::access::keys::KeyDigest;
use llm_router_actors::access::{Policy, RouteClass};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::json;

use crate::errors::RouterError;
use crate::handlers::{json_response, read_body, AppState};

pub const COOKIE: &str = "llmr_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lives after log-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
pub struct Session {
    pub digest: KeyDigest,
    pub key_id: String,
    pub policy: Policy,
    pub csrf: String,
    expires: Instant,
}

/// Session id → session, in memory (a restart logs everyone out).
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

fn random(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// A new session for this key; returns its id and the session.
    pub fn create(&self, digest: KeyDigest, key_id: &str, policy: Policy) -> (String, Session) {
        let id = random(43);
        let s = Session {
            digest,
            key_id: key_id.to_string(),
            policy,
            csrf: random(32),
            expires: Instant::now() + self.ttl,
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), s.clone());
        (id, s)
    }

    /// The live session of this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'a>(headers: &'a header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// What the guard learns from a request without a key.
pub enum FromCookie {
    /// No session cookie, or an unknown / expired one.
    None,
    /// A live session; the guard looks its key up by this digest.
    Key(KeyDigest),
    /// A write without the session's CSRF token.
    BadCsrf,
}

/// For [`crate::access::guard`]: the session named by the request's cookie, with its CSRF check.
pub fn from_cookie(req: &ServiceRequest) -> FromCookie {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return FromCookie::None;
    };
    let Some(s) = cookie_value(req.headers(), COOKIE).and_then(|id| state.console.sessions.get(id))
    else {
        return FromCookie::None;
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let token = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if safe || token.is_some_and(|t| constant_eq(t.as_bytes(), s.csrf.as_bytes())) {
        FromCookie::Key(s.digest)
    } else {
        FromCookie::BadCsrf
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a page may do under this policy (the console hides what the key cannot use).
fn abilities(policy: Option<Policy>) -> serde_json::Value {
    let can = |c: RouteClass| policy.is_none_or(|p| p.allows(c));
    json!({
        "status": can(RouteClass::Admin),
        "chat": can(RouteClass::OpenAiGenerate),
        "anonymizer": can(RouteClass::Other),
        "config": can(RouteClass::Admin),
    })
}

fn session_json(state: &AppState, s: Option<&Session>) -> serde_json::Value {
    let auth = state.access.enabled();
    json!({
        "auth_enabled": auth,
        "logged_in": !auth || s.is_some(),
        "key_id": s.map(|s| s.key_id.clone()),
        "policy": s.map(|s| s.policy.as_str()),
        "csrf": s.map(|s| s.csrf.clone()),
        "can": abilities(if auth { Some(s.map_or(Policy::Chat, |s| s.policy)) } else { None }),
        "language": state.settings.default_language,
        "prefix": state.settings.prefix,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

fn console_off(req: &HttpRequest, state: &AppState) -> Result<(), RouterError> {
    if state.settings.console.enabled {
        Ok(())
    } else {
        Err(RouterError::RouteNotFound {
            method: req.method().to_string(),
            path: req.path().to_string(),
        })
    }
}

/// `GET /ui/api/session`: who is logged in (if anyone), what the pages may do, the defaults.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    console_off(&req, &state)?;
    let s = cookie_value(req.headers(), COOKIE).and_then(|id| state.console.sessions.get(id));
    Ok(json_response(
        StatusCode::OK,
        &session_json(&state, s.as_ref()),
    ))
}

/// `POST /ui/api/login` `{"key": "..."}`: checks the key as the guard would and starts a session.
/// 400 when auth is off or the body is wrong, 401 naming why the key is refused.
pub async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    console_off(&req, &state)?;
    if !state.access.enabled() {
        return Err(RouterError::bad_request(
            "authentication is off (LLM_ROUTER_AUTH_ENABLED): the console needs no log-in",
            None,
        ));
    }
    let body = read_body(&req, payload, 64 * 1024).await?;
    let raw = crate::dialects::raw::RawObject::parse(&body)?;
    let key: String = raw
        .field("key", "a string")?
        .filter(|k: &String| !k.trim().is_empty())
        .ok_or_else(|| RouterError::bad_request("missing required field \"key\"", Some("key")))?;
    let (digest, key_id, policy) = match state.access.identify(key.trim()).await {
        Ok(found) => found,
        Err(message) => {
            return Ok(json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": {"message": message, "type": "authentication_error",
                                  "param": "key", "code": 401}}),
            ))
        }
    };
    let (id, s) = state.console.sessions.create(digest, &key_id, policy);
    tracing::info!(key_id = %key_id, "console log-in");
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut res = json_response(StatusCode::OK, &session_json(&state, Some(&s)));
    res.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&cookie).expect("ascii cookie"),
    );
    Ok(res)
}

/// `POST /ui/api/logout`: ends the session (if any) and clears the cookie.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    console_off(&req, &state)?;
    if let Some(id) = cookie_value(req.headers(), COOKIE) {
        state.console.sessions.remove(id);
    }
    let mut res = json_response(StatusCode::OK, &json!({"logged_in": false}));
    res.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_static(
            "llmr_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_removed() {
        let s = Sessions::new(Duration::from_secs(60));
        let (id, made) = s.create([1; 32], "k1", Policy::Admin);
        assert_eq!(id.len(), 43);
        assert_eq!(s.get(&id).unwrap().csrf, made.csrf);
        s.remove(&id);
        assert!(s.get(&id).is_none());
        let short = Sessions::new(Duration::ZERO);
        let (id, _) = short.create([1; 32], "k1", Policy::Admin);
        assert!(short.get(&id).is_none(), "an expired session is gone");
    }

    #[test]
    fn cookie_header_is_parsed() {
        let mut h = header::HeaderMap::new();
        h.insert(
            header::COOKIE,
            header::HeaderValue::from_static("a=1; llmr_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&h, COOKIE), Some("abc"));
        assert_eq!(cookie_value(&h, "zzz"), None);
    }
}
