//! Liveness, version, health and model listings. Listings are built from the config and never
//! show a provider's `api_host` or token.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use llm_router_actors::{GetStatus, HealthView};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{json_response, read_body, AppState};
use crate::dialects::canonical::rfc3339;
use crate::dialects::Fields;
use crate::errors::{Dialect, RouterError};

pub async fn root() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("Ollama is running")
}

pub async fn ping() -> HttpResponse {
    json_response(StatusCode::OK, &json!({"status": true, "body": "pong"}))
}

pub async fn version() -> HttpResponse {
    json_response(
        StatusCode::OK,
        &json!({"version": env!("CARGO_PKG_VERSION")}),
    )
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The one name for UIs (`LLM_ROUTER_EXTERNAL_MODEL_NAME`), listed first when set.
fn external(state: &AppState) -> Option<&str> {
    state.settings.smart.external_model.as_deref()
}

pub async fn models(state: web::Data<AppState>) -> HttpResponse {
    let created = unix_secs(state.started_at);
    let listed = state
        .settings
        .models
        .models
        .iter()
        .map(|m| (&*m.name, &*m.group));
    let data: Vec<_> = external(&state)
        .map(|name| (name, "llm-router"))
        .into_iter()
        .chain(listed)
        .map(|(name, group)| json!({"id": name, "object": "model", "created": created, "owned_by": group}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// Ollama's `/api/tags` shape.
pub async fn tags(state: web::Data<AppState>) -> HttpResponse {
    let modified = rfc3339(unix_secs(state.started_at), 0);
    let listed = state.settings.models.models.iter().map(|m| m.name.as_str());
    let models: Vec<_> = external(&state)
        .into_iter()
        .chain(listed)
        .map(|name| {
            let digest = format!("{:x}", Sha256::digest(name.as_bytes()));
            json!({
                "name": name, "model": name, "modified_at": modified, "size": 0, "digest": digest,
                "details": ollama_details()
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"models": models}))
}

fn ollama_details() -> serde_json::Value {
    json!({"parent_model": "", "format": "", "family": "", "families": null,
           "parameter_size": "", "quantization_level": ""})
}

/// LM Studio's `/api/v0/models` listing.
pub async fn lmstudio_models(state: web::Data<AppState>) -> HttpResponse {
    let data: Vec<_> = state
        .settings
        .models
        .models
        .iter()
        .map(|m| {
            let embedding = m.providers.iter().all(|p| p.is_embedding);
            let context = m.providers.iter().filter_map(|p| p.input_size).max();
            json!({"id": m.name, "object": "model",
                   "type": if embedding { "embeddings" } else { "llm" },
                   "publisher": m.group, "arch": "", "compatibility_type": "", "quantization": "",
                   "state": "loaded", "max_context_length": context})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// `P/fast_text_mask`: `{"text": "..."}` → `{"text": masked, "mappings": {placeholder: original}}`.
pub async fn fast_text_mask(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    let body = super::read_body(&req, payload, state.settings.max_body).await?;
    let raw = crate::dialects::raw::RawObject::parse(&body)?;
    let text: String = raw
        .field("text", "a string")?
        .ok_or_else(|| RouterError::bad_request("missing required field \"text\"", Some("text")))?;
    let v = state.masking.fast_text_mask(&text);
    Ok(super::json_response(StatusCode::OK, &v))
}

/// Ollama's `/api/show`, minimal and from the config (nothing about hosts or tokens).
pub async fn show(
    req: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let run = async {
        let body = read_body(&req, payload, state.settings.max_body).await?;
        let m = crate::dialects::parse_object(&body)?;
        let name = match m.opt_str("model")? {
            Some(n) => n,
            None => m.req_str("name").map_err(|_| {
                RouterError::bad_request("missing required field \"model\"", Some("model"))
            })?,
        };
        let models = &state.settings.models;
        let model = models
            .model(name)
            .ok_or_else(|| RouterError::UnknownModel {
                model: name.to_string(),
                available: models.model_names().iter().map(|s| s.to_string()).collect(),
            })?;
        let mut capabilities = vec!["completion"];
        if model.providers.iter().any(|p| p.tool_calling) {
            capabilities.push("tools");
        }
        if model.providers.iter().any(|p| p.is_embedding) {
            capabilities = vec!["embedding"];
        }
        let context = model.providers.iter().filter_map(|p| p.input_size).max();
        Ok::<_, RouterError>(json!({
            "modelfile": format!("# served by llm-router\nFROM {}\n", model.name),
            "parameters": "", "template": "{{ .Prompt }}", "details": ollama_details(),
            "model_info": {"general.architecture": "", "general.context_length": context},
            "capabilities": capabilities,
            "modified_at": rfc3339(unix_secs(state.started_at), 0),
        }))
    };
    match run.await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.render(Dialect::Ollama),
    }
}

/// Per-model provider health. 200 while at least one model has a provider that can take
/// traffic (healthy, or half-open and due for a probe), 503 otherwise, and 503 `draining` while
/// the server shuts down.
pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    let status = state
        .registry
        .send(GetStatus)
        .await
        .map_err(|e| RouterError::Internal(format!("registry unavailable: {e}")))?;
    let now = Instant::now();
    let mut any_available = false;
    let models: Vec<_> = status
        .iter()
        .map(|m| {
            let mut available = 0;
            let providers: Vec<_> = m
                .providers
                .iter()
                .map(|s| {
                    let health = s.health(now);
                    if health != HealthView::Open {
                        available += 1;
                    }
                    let ms = |d: Option<std::time::Duration>| d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
                    json!({
                        "id": s.id(), "api_type": s.config.api_type.as_str(), "state": health.as_str(),
                        "in_flight": s.in_flight(), "served": s.served(), "failures": s.failures(),
                        "consecutive_failures": s.consecutive_failures(),
                        "latency_ms": ms(s.latency()), "ttft_ms": ms(s.ttft()),
                    })
                })
                .collect();
            any_available |= available > 0;
            json!({"name": m.name, "strategy": m.strategy.as_str(), "available_providers": available,
                   "queued": m.queued, "providers": providers})
        })
        .collect();
    let (code, word) = if state.drain.is_draining() {
        // Shutting down: take this replica out of rotation while it finishes.
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if any_available {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let shared = match &state.shared {
        None => json!({"backend": "local"}),
        Some(h) => json!({"backend": "redis", "state": if h.is_up() { "up" } else { "down" }}),
    };
    Ok(json_response(
        code,
        &json!({"status": word, "shared_state": shared,
                "rate_limits": state.access.limiter_json(), "models": models}),
    ))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.as_ref().filter(|m| m.exposed()) {
        Some(m) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(m.render()),
        None => HttpResponse::NotFound().finish(),
    }
}
