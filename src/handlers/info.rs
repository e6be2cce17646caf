//! Liveness, version, health and model listings. Listings are built from the config and never
//! show a provider's `api_host` or token.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use llm_router_actors::{GetStatus, HealthView};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{json_response, AppState};
use crate::errors::RouterError;

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

/// RFC 3339 UTC timestamp (civil-from-days; no calendar crate needed for this one field).
fn rfc3339(t: SystemTime) -> String {
    let secs = unix_secs(t) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub async fn models(state: web::Data<AppState>) -> HttpResponse {
    let created = unix_secs(state.started_at);
    let data: Vec<_> = state
        .settings
        .models
        .models
        .iter()
        .map(|m| json!({"id": m.name, "object": "model", "created": created, "owned_by": m.group}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// Ollama's `/api/tags` shape.
pub async fn tags(state: web::Data<AppState>) -> HttpResponse {
    let modified = rfc3339(state.started_at);
    let models: Vec<_> = state
        .settings
        .models
        .models
        .iter()
        .map(|m| {
            let digest = format!("{:x}", Sha256::digest(m.name.as_bytes()));
            json!({
                "name": m.name, "model": m.name, "modified_at": modified, "size": 0, "digest": digest,
                "details": {"parent_model": "", "format": "", "family": "", "families": null,
                            "parameter_size": "", "quantization_level": ""}
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"models": models}))
}

/// Per-model provider health. 200 while at least one model has a provider that can take
/// traffic (healthy, or half-open and due for a probe), 503 otherwise.
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
    let (code, word) = if any_available {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    Ok(json_response(
        code,
        &json!({"status": word, "models": models}),
    ))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match &state.metrics {
        Some(m) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(m.render()),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_391_999)),
            "2026-11-22T23:59:59Z"
        );
    }
}
