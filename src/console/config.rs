//! The Config page's routes (admin keys when auth is on: they live under `/router/`):
//!
//! - `GET /router/config`: the models-config file as JSON, every secret (`api_token`, …) replaced
//!   by [`PLACEHOLDER`] — a token never reaches the browser.
//! - `POST /router/config/apply`: a whole models-config document. A placeholder left in it keeps
//!   the stored secret of the provider with the same `id` (so an edited config round-trips without
//!   losing tokens). The document is validated exactly as at start-up (400 listing every problem,
//!   nothing written); a good one is written to `LLM_ROUTER_MODELS_CONFIG` and applied through
//!   [`Reloader::reload`]; should the reload refuse it, the previous file is put back.
//! - `GET /router/config/history`, `GET /router/config/history/{id}` (redacted) and
//!   `POST /router/config/history/{id}/restore` ([`super::history`]).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use llm_router_actors::ModelsConfig;
use serde_json::{json, Map, Value};

use crate::errors::RouterError;
use crate::handlers::reload::Reloader;
use crate::handlers::{json_response, read_body, AppState};

/// What the browser sees instead of a secret; sent back, it keeps the stored one.
pub const PLACEHOLDER: &str = "__stored_secret__";

/// Object keys whose string values are secrets.
const SECRETS: &[&str] = &["api_token", "api_key", "token", "password", "secret"];

fn is_secret(key: &str) -> bool {
    SECRETS.contains(&key)
}

/// `doc` with every non-empty secret replaced by [`PLACEHOLDER`].
pub fn redact(doc: &Value) -> Value {
    match doc {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if is_secret(k) && !s.is_empty() => {
                            Value::String(PLACEHOLDER.into())
                        }
                        other => redact(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// Every object of `doc` that has a string `id`, by id (providers, mostly).
fn objects_by_id<'a>(doc: &'a Value, out: &mut Vec<(&'a str, &'a Map<String, Value>)>) {
    match doc {
        Value::Object(m) => {
            if let Some(id) = m.get("id").and_then(Value::as_str) {
                out.push((id, m));
            }
            m.values().for_each(|v| objects_by_id(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| objects_by_id(v, out)),
        _ => {}
    }
}

/// Puts the stored secrets back where `doc` holds [`PLACEHOLDER`]: from the object of `stored`
/// with the same `id`, else from the same place in `stored`. Err names each placeholder that
/// stands for nothing.
pub fn restore_secrets(doc: &mut Value, stored: &Value) -> Result<(), Vec<String>> {
    let mut by_id = Vec::new();
    objects_by_id(stored, &mut by_id);
    let mut problems = Vec::new();
    fill(doc, Some(stored), &by_id, "", &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn fill(
    doc: &mut Value,
    same_place: Option<&Value>,
    by_id: &[(&str, &Map<String, Value>)],
    path: &str,
    problems: &mut Vec<String>,
) {
    match doc {
        Value::Object(m) => {
            let id = m.get("id").and_then(Value::as_str).map(String::from);
            for (k, v) in m.iter_mut() {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let at = same_place.and_then(|s| s.get(k.as_str()));
                if v.as_str() == Some(PLACEHOLDER) {
                    let from_id = id.as_deref().and_then(|id| {
                        by_id
                            .iter()
                            .find(|(i, _)| *i == id)
                            .and_then(|(_, o)| o.get(k.as_str()))
                    });
                    let found = if id.is_some() { from_id } else { at };
                    match found.filter(|s| s.as_str().is_some_and(|s| !s.is_empty())) {
                        Some(stored) => *v = stored.clone(),
                        None => problems.push(format!(
                            "{here}: holds the placeholder of a stored secret, but the running \
                             config has none there{}; type the value instead",
                            id.as_deref()
                                .map(|i| format!(" (no provider \"{i}\" with a {k})"))
                                .unwrap_or_default()
                        )),
                    }
                } else {
                    fill(v, at, by_id, &here, problems);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                let at = same_place.and_then(|s| s.get(i));
                fill(v, at, by_id, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn bad(message: String, problems: Vec<String>) -> HttpResponse {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": {"message": message, "type": "invalid_request_error", "param": null,
                          "code": 400, "problems": problems}}),
    )
}

fn io(e: std::io::Error, what: &str) -> RouterError {
    RouterError::Internal(format!("{what}: {e}"))
}

/// The config file as it is on disk now (`Null` when it cannot be read or parsed).
fn current(state: &AppState) -> Value {
    std::fs::read(&state.settings.models_config_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// `GET /router/config`.
pub async fn show(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    let path = &state.settings.models_config_path;
    let bytes = std::fs::read(path).map_err(|e| io(e, &path.display().to_string()))?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| RouterError::Internal(format!("{}: not JSON: {e}", path.display())))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"config": redact(&doc), "path": path.display().to_string(),
                "placeholder": PLACEHOLDER}),
    ))
}

/// Validates, writes and reloads `doc` (secrets already restored); records it in the history.
async fn apply_doc(
    state: &AppState,
    reloader: &Reloader,
    doc: Value,
    cause: &str,
) -> Result<HttpResponse, RouterError> {
    let path = &state.settings.models_config_path;
    let file = path.display().to_string();
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serialises");
    if let Err(e) = ModelsConfig::from_json_str(&text) {
        let problems: Vec<String> = e.render(&file).lines().map(String::from).collect();
        return Ok(bad(
            format!(
                "configuration not applied ({} problem{}); the running configuration stays",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ),
            problems,
        ));
    }
    let before = std::fs::read(path).ok();
    let tmp = path.with_extension("json.console-tmp");
    std::fs::write(&tmp, text.as_bytes()).map_err(|e| io(e, &file))?;
    std::fs::rename(&tmp, path).map_err(|e| io(e, &file))?;
    match reloader.reload(&format!("console: {cause}")).await {
        Ok(r) => {
            // The reload recorded it (a config equal to the running one is not a new version).
            let id = r.version;
            Ok(json_response(
                StatusCode::OK,
                &json!({"status": "applied", "version": id, "models": r.models,
                        "providers": r.providers, "models_added": r.models_added,
                        "models_removed": r.models_removed}),
            ))
        }
        Err(problems) => {
            if let Some(old) = before {
                std::fs::write(path, old).map_err(|e| io(e, &file))?;
                let _ = reloader.reload("console: previous file put back").await;
            }
            Ok(bad(
                "configuration not applied; the running configuration stays".into(),
                problems,
            ))
        }
    }
}

/// `POST /router/config/apply[?cause=...]`: body = a whole models-config (JSON object).
pub async fn apply(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    reloader: web::Data<Reloader>,
) -> Result<HttpResponse, RouterError> {
    // A cross-site form cannot send JSON without a CORS preflight, which this router refuses.
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err(RouterError::bad_request(
            "the config must be sent as Content-Type: application/json",
            None,
        ));
    }
    let body = read_body(&req, payload, state.settings.max_body).await?;
    let mut doc: Value = serde_json::from_slice(&body)
        .map_err(|e| RouterError::bad_request(format!("the config is not JSON: {e}"), None))?;
    if !doc.is_object() {
        return Err(RouterError::bad_request(
            "the config must be a JSON object (models-config.json)",
            None,
        ));
    }
    if let Err(problems) = restore_secrets(&mut doc, &current(&state)) {
        return Ok(bad(
            "configuration not applied: a placeholder stands for no stored secret".into(),
            problems,
        ));
    }
    let cause =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("cause").cloned())
            .map(|c| {
                c.chars()
                    .filter(|c| !c.is_control())
                    .take(80)
                    .collect::<String>()
            })
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "edited".into());
    apply_doc(&state, &reloader, doc, &cause).await
}

/// `GET /router/config/history`: every version, newest first.
pub async fn history(state: web::Data<AppState>) -> Result<HttpResponse, RouterError> {
    let list = state
        .console
        .history
        .list()
        .map_err(|e| io(e, "config history"))?;
    let versions: Vec<Value> = list
        .iter()
        .map(|m| json!({"id": m.id, "applied_at": m.applied_at, "cause": m.cause, "models": m.models}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"versions": versions, "dir": state.console.history.dir().display().to_string()}),
    ))
}

fn version_id(raw: &str) -> Result<u64, RouterError> {
    raw.parse().map_err(|_| {
        RouterError::bad_request(
            format!("version id must be a whole number, got \"{raw}\""),
            None,
        )
    })
}

/// The version, or the 404 naming it.
fn find_version(state: &AppState, raw: &str) -> Result<Result<Value, HttpResponse>, RouterError> {
    let id = version_id(raw)?;
    let found = state
        .console
        .history
        .get(id)
        .map_err(|e| io(e, "config history"))?;
    Ok(found.ok_or_else(|| {
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"message": format!("no config version {id} in the history"),
                              "type": "not_found_error", "param": null, "code": 404}}),
        )
    }))
}

/// `GET /router/config/history/{id}`: one version, secrets redacted.
pub async fn version(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    Ok(match find_version(&state, &id)? {
        Ok(v) => json_response(StatusCode::OK, &redact(&v)),
        Err(not_found) => not_found,
    })
}

/// `POST /router/config/history/{id}/restore`: applies that version (as a new version).
pub async fn restore(
    id: web::Path<String>,
    state: web::Data<AppState>,
    reloader: web::Data<Reloader>,
) -> Result<HttpResponse, RouterError> {
    let v = match find_version(&state, &id)? {
        Ok(v) => v,
        Err(not_found) => return Ok(not_found),
    };
    let doc = v["config"].clone();
    apply_doc(&state, &reloader, doc, &format!("restored version {id}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_through_the_placeholder() {
        let stored = json!({"g": {"m": {"providers": [
            {"id": "a", "api_token": "sk-secret-a"},
            {"id": "b", "api_token": ""}]}}});
        let shown = redact(&stored);
        assert!(!shown.to_string().contains("sk-secret"));
        assert_eq!(shown["g"]["m"]["providers"][0]["api_token"], PLACEHOLDER);
        assert_eq!(shown["g"]["m"]["providers"][1]["api_token"], "");
        // Moved to another model and reordered: found by id.
        let mut edited = json!({"h": {"n": {"providers": [
            {"id": "b", "api_token": "new"}, {"id": "a", "api_token": PLACEHOLDER}]}}});
        restore_secrets(&mut edited, &stored).unwrap();
        assert_eq!(edited["h"]["n"]["providers"][1]["api_token"], "sk-secret-a");
        assert_eq!(edited["h"]["n"]["providers"][0]["api_token"], "new");
        let mut orphan =
            json!({"g": {"m": {"providers": [{"id": "z", "api_token": PLACEHOLDER}]}}});
        let e = restore_secrets(&mut orphan, &stored).unwrap_err();
        assert!(e[0].contains("g.m.providers[0].api_token"), "{e:?}");
        assert!(e[0].contains("\"z\""), "{e:?}");
    }
}
