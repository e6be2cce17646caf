//! Status routes (SPEC §10): `/router/stats`, `/router/health`, `/router/rate-limits`,
//! `/auth/status`, `/auth/metrics`, `/auth/reload-keys`, and the public `/v1/models/{id}`.
//! The access layer keeps `/router/*` and `/auth/*` to admin keys when auth is on.
//! Nothing here shows a provider's `api_host` or token, or a client key (only `key_id`).

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use llm_router_actors::{GetStatus, HealthView, ModelStatus};
use serde_json::{json, Value};

use super::{json_response, AppState};
use crate::errors::RouterError;
use crate::stats::{summary_json, Window};

async fn registry_status(state: &AppState) -> Result<Vec<ModelStatus>, RouterError> {
    state
        .registry
        .send(GetStatus)
        .await
        .map_err(|e| RouterError::Internal(format!("registry unavailable: {e}")))
}

/// `GET /router/stats`: per model and provider, the last five minutes (requests, errors by
/// class, latency and TTFT percentiles, tokens) with in-flight and health now.
pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    let status = registry_status(&state).await?;
    let stats = state.metrics.as_ref().map(|m| m.stats.clone());
    let now = Instant::now();
    let models: Vec<Value> = status
        .iter()
        .map(|m| {
            let mut model = Window::default();
            let mut in_flight = 0;
            let providers: Vec<Value> = m
                .providers
                .iter()
                .map(|s| {
                    let w = stats
                        .as_ref()
                        .and_then(|st| st.get(s.id()))
                        .map(|p| p.window())
                        .unwrap_or_default();
                    model.add(&w);
                    in_flight += s.in_flight();
                    let mut v = summary_json(&w.summary());
                    v["id"] = json!(s.id());
                    v["api_type"] = json!(s.config.api_type.as_str());
                    v["in_flight"] = json!(s.in_flight());
                    v["health"] = json!(s.health(now).as_str());
                    v
                })
                .collect();
            let mut v = summary_json(&model.summary());
            v["name"] = json!(m.name);
            v["in_flight"] = json!(in_flight);
            v["queued"] = json!(m.queued);
            v["providers"] = json!(providers);
            v
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"models": models})))
}

/// `GET /router/health`: providers, shared state (Redis), the rate limiter, the key store and
/// the pipeline's plugins. 200 when some model can serve, else 503 (as `/health`).
pub async fn router_health(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    let status = registry_status(&state).await?;
    let now = Instant::now();
    let mut any = false;
    let providers: Vec<Value> = status
        .iter()
        .flat_map(|m| m.providers.iter().map(move |s| (m, s)))
        .map(|(m, s)| {
            let h = s.health(now);
            any |= h != HealthView::Open;
            json!({"id": s.id(), "model": m.name, "api_type": s.config.api_type.as_str(),
                   "state": h.as_str(), "consecutive_failures": s.consecutive_failures(),
                   "in_flight": s.in_flight()})
        })
        .collect();
    let shared = match &state.shared {
        None => json!({"backend": "local"}),
        Some(h) => json!({"backend": "redis", "state": if h.is_up() { "up" } else { "down" }}),
    };
    let masking = &state.settings.masking;
    let body = json!({
        "status": if any { "ok" } else { "unavailable" },
        "providers": providers,
        "shared_state": shared,
        "rate_limits": state.access.limiter_json(),
        "key_store": {"auth_enabled": state.access.enabled(), "kind": state.access.store_kind()},
        // The pipeline's plugins in this build: the in-process masker. No external guardrail or
        // masker service is called, so none is listed.
        "plugins": {"masking": {"in_process": true, "forced": masking.force,
                                "restore": masking.restore}},
    });
    let code = if any {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(code, &body))
}

/// `GET /router/rate-limits`: per key (limits, used, resets in) and per provider (`rpm`, calls
/// finished in about the last minute, a provider's own `Retry-After` still running).
pub async fn rate_limits(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    let status = registry_status(&state).await?;
    let stats = state.metrics.as_ref().map(|m| m.stats.clone());
    let now = Instant::now();
    let providers: Vec<Value> = status
        .iter()
        .flat_map(|m| m.providers.iter())
        .map(|s| {
            let recent = stats
                .as_ref()
                .and_then(|st| st.get(s.id()))
                .map_or(0, |p| p.window().last_minute);
            let retry = s
                .rate_limited_until(now)
                .map(|t| t.saturating_duration_since(now).as_millis().div_ceil(1000) as u64);
            json!({"id": s.id(), "model": &*s.model, "rpm": s.config.rpm,
                   "used_last_minute": recent + u64::from(s.in_flight()),
                   "retry_after_seconds": retry})
        })
        .collect();
    let keys = if state.access.enabled() {
        state.access.key_limits_json().await
    } else {
        json!([])
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"limiter": state.access.limiter_json(), "keys": keys, "providers": providers}),
    ))
}

/// `GET /auth/status`.
pub async fn auth_status(state: web::Data<AppState>) -> HttpResponse {
    json_response(StatusCode::OK, &state.access.status_json().await)
}

/// `GET /auth/metrics`.
pub async fn auth_metrics(state: web::Data<AppState>) -> HttpResponse {
    json_response(StatusCode::OK, &state.access.metrics_json())
}

/// `POST /auth/reload-keys`: re-reads the keys file; a bad file keeps the running keys and is
/// answered 400 listing every problem.
pub async fn reload_keys(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    if state.access.store_kind() == "redis" {
        // Nothing held to reload: every request reads its key from Redis.
        let body = json!({"reloaded": false, "store": "redis",
                          "message": "the Redis key store is read on every request"});
        return Ok(json_response(StatusCode::OK, &body));
    }
    match state.access.reload_keys() {
        Ok(n) => {
            tracing::info!(keys = n, "keys reloaded");
            Ok(json_response(
                StatusCode::OK,
                &json!({"reloaded": true, "keys": n}),
            ))
        }
        Err(problems) => {
            tracing::warn!(
                problems = problems.len(),
                "keys reload refused: {}",
                problems.join("; ")
            );
            Err(RouterError::bad_request(
                format!(
                    "the keys file was not reloaded (the running keys stay): {}",
                    problems.join("; ")
                ),
                None,
            ))
        }
    }
}

/// `GET /v1/models/{id}`: OpenAI's retrieve-model shape; 404 naming an unknown id.
pub async fn model(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    let models = &state.settings.models;
    let m = models.model(&id).ok_or_else(|| RouterError::UnknownModel {
        model: id.to_string(),
        available: models.model_names().iter().map(|s| s.to_string()).collect(),
    })?;
    let created = state
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": m.name, "object": "model", "created": created, "owned_by": m.group}),
    ))
}
