//! Embeddings routes: OpenAI `/v1/embeddings`, Ollama `P/embed` and legacy `P/embeddings`, to
//! OpenAI-wire or Ollama providers. Same shape → passthrough; otherwise converted (whole JSON).

use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use llm_router_actors::{ApiType, FailureKind, Outcome, ProviderConfig};

use super::generate::{passthrough, read_whole, Wire};
use super::{read_body, request_id, AppState};
use crate::dialects::embeddings::{self, Shape};
use crate::dialects::raw::RawObject;
use crate::errors::{Attempt, AttemptFailure, Dialect, RouterError};
use crate::streaming::openai_sse_error;
use crate::upstream::{self, CallSpec, Outgoing};

fn native_path(shape: Shape, t: ApiType) -> Option<&'static str> {
    match (shape, Wire::of(t)) {
        (Shape::OpenAi, Wire::OpenAi) => Some("/v1/embeddings"),
        (Shape::OllamaEmbed, Wire::Ollama) => Some("/api/embed"),
        (Shape::OllamaLegacy, Wire::Ollama) => Some("/api/embeddings"),
        _ => None,
    }
}

macro_rules! route {
    ($name:ident, $shape:expr, $dialect:expr) => {
        pub async fn $name(
            req: HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
            client: web::Data<awc::Client>,
        ) -> HttpResponse {
            match embed($shape, &req, payload, &state, &client).await {
                Ok(r) => r,
                Err(e) => e.render($dialect),
            }
        }
    };
}

route!(openai, Shape::OpenAi, Dialect::OpenAi);
route!(ollama_embed, Shape::OllamaEmbed, Dialect::Ollama);
route!(ollama_legacy, Shape::OllamaLegacy, Dialect::Ollama);

async fn embed(
    shape: Shape,
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    client: &awc::Client,
) -> Result<HttpResponse, RouterError> {
    let started = Instant::now();
    let s = &state.settings;
    let body = read_body(req, payload, s.max_body).await?;
    let raw = RawObject::parse(&body)?;
    // Validated whole up front: embeddings bodies are small and every conversion needs them.
    let parsed = embeddings::read_request(&body, shape)?;
    let build = |p: &ProviderConfig| -> Result<Outgoing, RouterError> {
        match native_path(shape, p.api_type) {
            Some(path) => {
                let model =
                    serde_json::to_string(p.upstream_model(&parsed.model)).unwrap_or_default();
                Ok(Outgoing {
                    path,
                    body: raw.to_bytes(&[("model", &model)], &["anonymize"]),
                })
            }
            None => {
                let (path, body) = embeddings::write_request(&parsed, p)?;
                Ok(Outgoing { path, body })
            }
        }
    };
    let rid = request_id(req);
    let spec = CallSpec {
        model: &parsed.model,
        stream: false,
        request_id: &rid,
        build: &build,
        started,
        request_deadline: s.request_timeout.map(|t| started + t),
        external_timeout: s.external_timeout,
    };
    let c = upstream::call(client, &state.registry, state.metrics.as_ref(), &spec).await?;
    if native_path(shape, c.lease.provider().api_type).is_some() {
        return Ok(passthrough(c, state, &spec, openai_sse_error));
    }
    let (mut c, bytes) = read_whole(c, state, &spec).await?;
    let answer = embeddings::read_response(&bytes);
    let provider = c.lease.provider().id.clone();
    let outcome = match &answer {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure(FailureKind::Body),
    };
    c.lease.set_outcome(outcome);
    if let Some(m) = &state.metrics {
        m.observe_call(&c.lease);
    }
    let answer = answer.map_err(|why| {
        tracing::warn!(provider = %provider, "unreadable embeddings answer: {why}");
        RouterError::UpstreamFailed {
            model: parsed.model.clone(),
            attempts: vec![Attempt {
                provider: provider.clone(),
                reason: AttemptFailure::Body,
            }],
        }
    })?;
    let v = embeddings::write_response(&parsed, &answer);
    Ok(HttpResponse::Ok()
        .insert_header(("x-llm-router-provider", provider.as_str()))
        .insert_header(("x-llm-router-model", parsed.model.as_str()))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(v.to_string()))
}
