//! Request guardrails (SPEC §6): with `LLM_ROUTER_FORCE_GUARDRAIL_REQUEST` on, the text of every
//! request is POSTed to each guardrail of `LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST` in
//! order (`{HOST}/api/guardrails/<name>`, body `{"text": ...}`), answer
//! `{"results": {"safe": bool, "detailed": [...]}}`. The first unsafe verdict refuses the request
//! with 422 naming the guardrail; any failure of a guardrail (down, timeout, non-2xx, not JSON,
//! no boolean `results.safe`) refuses it with 503 naming the guardrail. Either way nothing is
//! sent to a provider. The stage runs before masking, so guardrails judge what the user wrote.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use super::services::{blocked, PluginError, Service};
use super::Shared;
use crate::errors::RouterError;
use crate::relay::stages::{RequestContext, RequestStage};
use crate::relay::ClientApi;

/// A guardrail plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    NaskGuard,
    SojkaGuard,
}

impl Guard {
    pub fn parse(name: &str) -> Option<Guard> {
        match name {
            "nask_guard" => Some(Guard::NaskGuard),
            "sojka_guard" => Some(Guard::SojkaGuard),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Guard::NaskGuard => "nask_guard",
            Guard::SojkaGuard => "sojka_guard",
        }
    }

    /// The variable naming its service's host.
    pub fn host_var(self) -> &'static str {
        match self {
            Guard::NaskGuard => "LLM_ROUTER_GUARDRAIL_NASK_GUARD_HOST",
            Guard::SojkaGuard => "LLM_ROUTER_GUARDRAIL_SOJKA_GUARD_HOST",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Guard::NaskGuard => "api/guardrails/nask_guard",
            Guard::SojkaGuard => "api/guardrails/sojka_guard",
        }
    }
}

/// Parses a guardrail pipeline variable; unknown names go to `errs`.
pub fn parse_pipeline(var: &str, raw: &str, errs: &mut Vec<String>) -> Vec<Guard> {
    let mut out = Vec::new();
    for name in raw
        .split([',', '|', ' '])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        match Guard::parse(name) {
            Some(g) if !out.contains(&g) => out.push(g),
            Some(_) => {}
            None => errs.push(format!(
                "{var}: unknown guardrail \"{name}\"; valid: nask_guard, sojka_guard"
            )),
        }
    }
    out
}

/// Every string of a request body that a person or model wrote: all string values but the
/// top-level `model` and the structural `role` / `type` fields, joined by newlines. Taking every
/// other string (rather than known text fields) means no dialect's text is left unchecked.
pub fn request_text(doc: &Value) -> String {
    fn walk(v: &Value, key: Option<&str>, top: bool, out: &mut String) {
        match v {
            Value::String(s) => {
                let skip =
                    matches!(key, Some("role") | Some("type")) || (top && key == Some("model"));
                if !skip && !s.is_empty() {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(s);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, false, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, Some(k), false, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    match doc {
        Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, Some(k), true, &mut out)),
        other => walk(other, None, true, &mut out),
    }
    out
}

/// The guardrail's verdict from its answer: `results.safe` must be a boolean.
pub fn verdict(answer: &Value) -> Result<bool, PluginError> {
    answer
        .get("results")
        .and_then(|r| r.get("safe"))
        .and_then(Value::as_bool)
        .ok_or_else(|| PluginError::BadAnswer("no boolean \"results.safe\"".into()))
}

/// A short account of an unsafe verdict for the client: the labels of the unsafe chunks.
fn refusal_reason(answer: &Value) -> String {
    let labels: Vec<&str> = answer["results"]["detailed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["safe"] == json!(false))
        .filter_map(|d| d["label"].as_str())
        .collect();
    if labels.is_empty() {
        String::new()
    } else {
        format!(" ({})", labels.join(", "))
    }
}

/// The client's error for text a guardrail judged unsafe (422, SPEC §3).
pub fn refused(guard: &str, direction: &str, answer: &Value) -> RouterError {
    RouterError::UpstreamRejected {
        status: 422,
        message: format!(
            "the {direction} was rejected by guardrail {guard}{}",
            refusal_reason(answer)
        ),
        provider: guard.to_string(),
    }
}

/// The client's error for an answer withheld because guardrail `name` failed checking it: 503,
/// naming the guardrail.
pub fn withheld(name: &str, why: &PluginError) -> RouterError {
    RouterError::UpstreamRejected {
        status: 503,
        message: format!("{name} {why}; the answer could not be checked and was withheld"),
        provider: name.to_string(),
    }
}

/// Checks `text` with every guard in order; `Ok(())` when all say safe.
pub async fn check(
    guards: &[Arc<Service>],
    client: &awc::Client,
    endpoint: &str,
    text: &str,
    direction: &'static str,
    shared: &Shared,
) -> Result<(), RouterError> {
    let body = json!({ "text": text });
    for g in guards {
        let answer = g.call(client, &body).await;
        let outcome = answer.and_then(|a| verdict(&a).map(|safe| (safe, a)));
        let record = |verdict: &Value| -> Result<(), RouterError> {
            Ok(shared.audit_guardrail(endpoint, direction, g.name, text, verdict)?)
        };
        match outcome {
            Ok((true, a)) => record(&a)?,
            Ok((false, a)) => {
                shared
                    .metrics
                    .guardrail_incident(g.name, direction, "unsafe");
                record(&a)?;
                return Err(refused(g.name, direction, &a));
            }
            Err(e) => {
                shared
                    .metrics
                    .guardrail_incident(g.name, direction, e.kind());
                record(&json!({"error": e.to_string()}))?;
                tracing::warn!(guardrail = g.name, direction, error = %e, "guardrail failed: blocked");
                return Err(if direction == "response" {
                    withheld(g.name, &e)
                } else {
                    blocked(g.name, &e)
                });
            }
        }
    }
    Ok(())
}

/// The request-side guardrail stage.
pub struct GuardrailStage {
    pub guards: Vec<Arc<Service>>,
    pub shared: Arc<Shared>,
}

impl RequestStage for GuardrailStage {
    fn apply<'a>(
        &'a self,
        _api: ClientApi,
        client: &'a awc::Client,
        body: &'a mut BytesMut,
        ctx: &'a mut RequestContext,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            let doc: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                // Not JSON: the plan refuses it with the precise message; nothing is sent.
                Err(_) => return Ok(()),
            };
            let text = request_text(&doc);
            check(
                &self.guards,
                client,
                &ctx.endpoint,
                &text,
                "request",
                &self.shared,
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_every_written_string_of_any_dialect() {
        let chat = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello"}]}]});
        assert_eq!(request_text(&chat), "be brief\nhello");
        let gen = json!({"model": "m", "prompt": "p", "system": "s", "options": {"stop": ["x"]}});
        let t = request_text(&gen);
        for want in ["p", "s", "x"] {
            assert!(t.split('\n').any(|l| l == want), "{t}");
        }
        assert!(!t.contains('m'), "the model name is not text: {t}");
        // A nested "model" field (not routing) is text like any other.
        assert_eq!(
            request_text(&json!({"input": {"model": "secret"}})),
            "secret"
        );
    }

    #[test]
    fn verdicts_need_a_boolean_safe() {
        assert_eq!(
            verdict(&json!({"results": {"safe": true, "detailed": []}})),
            Ok(true)
        );
        assert_eq!(verdict(&json!({"results": {"safe": false}})), Ok(false));
        for bad in [
            json!({}),
            json!({"results": {"safe": "no"}}),
            json!({"safe": true}),
            json!([]),
        ] {
            assert!(
                matches!(verdict(&bad), Err(PluginError::BadAnswer(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refusal_is_422_naming_the_guard_and_the_unsafe_labels() {
        let a = json!({"results": {"safe": false, "detailed": [
            {"chunk_index": 0, "label": "safe", "safe": true},
            {"chunk_index": 1, "label": "hate", "safe": false}]}});
        let e = refused("nask_guard", "request", &a);
        assert_eq!(actix_web::ResponseError::status_code(&e).as_u16(), 422);
        assert_eq!(
            e.to_string(),
            "the request was rejected by guardrail nask_guard (hate)"
        );
    }

    #[test]
    fn pipelines_parse_known_names_and_report_unknown_ones() {
        let mut errs = Vec::new();
        let p = parse_pipeline("V", "nask_guard, sojka_guard,nask_guard", &mut errs);
        assert_eq!(p, vec![Guard::NaskGuard, Guard::SojkaGuard]);
        assert!(errs.is_empty());
        parse_pipeline("V", "llama_guard", &mut errs);
        assert_eq!(
            errs,
            vec!["V: unknown guardrail \"llama_guard\"; valid: nask_guard, sojka_guard"]
        );
    }
}
