//! OpenAI-dialect routes. Chat completions to OpenAI-wire providers is the same-dialect fast path:
//! the body is forwarded with only `model` rewritten, and the provider's bytes (JSON or SSE
//! frames) are passed through as they arrive.

use std::time::Instant;

use actix_web::body::SizedStream;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::{read_body, request_id, AppState};
use crate::dialects::openai::ChatRequest;
use crate::errors::RouterError;
use crate::streaming::{openai_sse_error, BodyLimits, Framing, LeaseBody};
use crate::upstream::{self, CallSpec, Committed};

pub async fn chat_completions(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
) -> Result<HttpResponse, RouterError> {
    let started = Instant::now();
    let s = &state.settings;
    let body = read_body(&req, payload, s.max_body).await?;
    let chat = ChatRequest::parse(&body)?;
    let rid = request_id(&req);
    let build = |p: &llm_router_actors::ProviderConfig| chat.upstream_body(p);
    let spec = CallSpec {
        model: &chat.model,
        path: "/v1/chat/completions",
        stream: chat.stream,
        request_id: &rid,
        body: &build,
        started,
        request_deadline: s.request_timeout.map(|t| started + t),
        external_timeout: s.external_timeout,
    };
    let committed = upstream::call(&client, &state.registry, state.metrics.as_ref(), &spec).await?;
    Ok(passthrough(committed, &state, &spec))
}

/// Sends the provider's response on unchanged, holding the lease until the body is done.
pub fn passthrough(c: Committed, state: &AppState, spec: &CallSpec<'_>) -> HttpResponse {
    let s = &state.settings;
    let sse = c
        .content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let framing = if sse {
        Framing::Sse
    } else {
        Framing::Whole {
            len: c.content_length,
        }
    };
    let status = StatusCode::from_u16(c.status.as_u16()).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    res.insert_header(("x-llm-router-provider", c.lease.provider().id.as_str()));
    res.insert_header(("x-llm-router-model", spec.model));
    match &c.content_type {
        Some(ct) => res.insert_header((header::CONTENT_TYPE, ct.clone())),
        None => res.insert_header((header::CONTENT_TYPE, "application/json")),
    };
    if sse {
        res.insert_header((header::CACHE_CONTROL, "no-cache"));
        res.insert_header(("x-accel-buffering", "no"));
    }
    let limits = BodyLimits {
        idle: c.lease.provider().timeout.unwrap_or(s.external_timeout),
        deadline: spec.request_deadline,
        heartbeat: s.heartbeat,
    };
    let len = c.content_length;
    let body = LeaseBody::new(
        c.lease,
        c.first,
        c.rest,
        framing,
        openai_sse_error,
        limits,
        state.metrics.clone(),
    );
    match (framing, len) {
        (Framing::Whole { .. }, Some(len)) => res.body(SizedStream::new(len, body)),
        _ => res.streaming(body),
    }
}
