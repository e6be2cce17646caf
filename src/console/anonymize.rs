//! `POST /ui/api/anonymize` `{"text": "...", "algorithm": "fast" | "pii" | "fast+pii"}` →
//! `{"text": masked, "mappings": [{"placeholder", "original", "type"}], "algorithm"}`: the
//! Anonymizer page, and the Chat page's masking of what it sends. `fast` is the in-process
//! `fast_masker`, `pii` the `pii_masker` service (SPEC §6).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::errors::RouterError;
use crate::handlers::{json_response, read_body, AppState};

/// The rule type a placeholder names: `{PESEL_2}` → `PESEL`; other forms → `PII`.
pub fn placeholder_type(p: &str) -> String {
    p.strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .and_then(|p| p.rsplit_once('_'))
        .filter(|(t, n)| !t.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        .map_or_else(|| "PII".to_string(), |(t, _)| t.to_string())
}

pub async fn anonymize(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
) -> Result<HttpResponse, RouterError> {
    if !state.settings.console.enabled {
        return Err(RouterError::RouteNotFound {
            method: req.method().to_string(),
            path: req.path().to_string(),
        });
    }
    let body = read_body(&req, payload, state.settings.max_body).await?;
    let raw = crate::dialects::raw::RawObject::parse(&body)?;
    let text: String = raw
        .field("text", "a string")?
        .ok_or_else(|| RouterError::bad_request("missing required field \"text\"", Some("text")))?;
    let algorithm: String = raw
        .field("algorithm", "a string")?
        .unwrap_or_else(|| "fast".into());
    let (fast, pii) = match algorithm.as_str() {
        "fast" => (true, false),
        "pii" => (false, true),
        "fast+pii" => (true, true),
        other => {
            return Err(RouterError::bad_request(
                format!("\"algorithm\" must be fast, pii or fast+pii, got \"{other}\""),
                Some("algorithm"),
            ))
        }
    };
    let (masked, mappings) = state
        .masking
        .mask_text(&client, &text, fast, pii, state.settings.pipeline.timeout)
        .await?;
    let mappings: Vec<_> = mappings
        .iter()
        .map(|(p, o)| json!({"placeholder": p, "original": o, "type": placeholder_type(p)}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"text": masked, "mappings": mappings, "algorithm": algorithm}),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholder_types() {
        use super::placeholder_type as t;
        assert_eq!(t("{PESEL_2}"), "PESEL");
        assert_eq!(t("{BANK_ACCOUNT_1}"), "BANK_ACCOUNT");
        assert_eq!(t("<PERSON>"), "PII");
    }
}
