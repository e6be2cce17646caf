//! The cache-affinity session of a request (SPEC §7): `x-session-id`, else
//! `x-claude-code-session-id`, else the body's `prompt_cache_key`, else the conversation's opening
//! (system text + first user message). Only computed when affinity is on; the body is parsed only
//! when no header names the session.

use actix_web::HttpRequest;
use llm_router_actors::routing::affinity::SessionInputs;
use llm_router_actors::routing::SessionKey;
use serde_json::Value;

use crate::dialects::canonical::{Request, Role};

fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

/// The session of a client's request (`body`: its JSON, as received).
pub fn of_request(req: &HttpRequest, body: &[u8]) -> Option<SessionKey> {
    let session_id = header(req, "x-session-id");
    let claude = header(req, "x-claude-code-session-id");
    if session_id.is_some() || claude.is_some() {
        return SessionKey::derive(&SessionInputs {
            session_id,
            claude_code_session_id: claude,
            ..Default::default()
        });
    }
    let doc: Value = serde_json::from_slice(body).ok()?;
    let cache_key = doc.get("prompt_cache_key").and_then(Value::as_str);
    let (system, first) = super::text::opening(&doc);
    SessionKey::derive(&SessionInputs {
        prompt_cache_key: cache_key,
        system: Some(&system),
        first_user: Some(&first),
        ..Default::default()
    })
}

/// The session of a request the router built (a built-in endpoint): its opening.
pub fn of_built(req: &Request) -> Option<SessionKey> {
    let first = req
        .messages
        .iter()
        .find(|m| m.role == Role::User)
        .map(|m| m.joined_text());
    SessionKey::derive(&SessionInputs {
        system: req.system.as_deref(),
        first_user: first.as_deref(),
        ..Default::default()
    })
}
