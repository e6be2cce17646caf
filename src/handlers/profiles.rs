//! `GET /admin/profiles`, `POST /admin/reprofile`, `GET /admin/benchmarks` (SPEC §7): admin
//! routes (the access layer requires an admin key for `/admin/*` when auth is on).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::{json_response, AppState};
use crate::errors::RouterError;

/// `GET /admin/profiles`.
pub async fn show(state: web::Data<AppState>) -> HttpResponse {
    json_response(StatusCode::OK, &state.profiles.to_json())
}

/// `POST /admin/reprofile`: 202 with `"started": true` when a run began, `false` when one was
/// already running (its results will be there all the same). 400 when profiling is off.
pub async fn reprofile(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    let p = &state.profiles;
    if !p.settings.enabled {
        return Err(RouterError::bad_request(
            "profiling is off: set LLM_ROUTER_PROFILES=1",
            None,
        ));
    }
    let started = p.reprofile(state.settings.models.clone());
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"started": started, "running": true, "results": "/admin/profiles"}),
    ))
}

/// `GET /admin/benchmarks`: the benchmarks file as loaded.
pub async fn benchmarks(state: web::Data<AppState>) -> HttpResponse {
    let b = &state.profiles.settings.benchmarks;
    let body = if b.raw.is_null() {
        json!({"models": {}, "note": "no benchmarks file (LLM_ROUTER_BENCHMARKS_FILE)"})
    } else {
        b.raw.clone()
    };
    json_response(StatusCode::OK, &body)
}
