//! One error enum for the HTTP layer, mapped exhaustively to status codes and to each dialect's
//! error body (SPEC §3): OpenAI `{"error":{message,type,param,code}}`, Anthropic
//! `{"type":"error","error":{type,message}}`, Ollama `{"error":"..."}`.
//!
//! Messages name what is wrong (the field, the model, the provider id) and never a provider's URL
//! or token: upstream failures are described from our own classification, not the client
//! library's error text.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use llm_router_actors::FailureKind;
use serde_json::json;

use crate::dialects::Invalid;

/// The wire dialect a client speaks; decides the error body shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Ollama,
}

/// One failed upstream attempt: which provider, and why (no URLs, no tokens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub provider: String,
    pub kind: FailureKind,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<String>,
    },
    #[error("model \"{model}\" not found; available models: {}", available.join(", "))]
    UnknownModel {
        model: String,
        available: Vec<String>,
    },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method {method} not allowed for {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A 4xx the provider returned because of the request itself, passed through.
    #[error("{message}")]
    UpstreamRejected {
        status: u16,
        message: String,
        provider: String,
    },
    #[error("no healthy provider for model \"{model}\" (circuit open: {})", unhealthy.join(", "))]
    NoHealthyProvider {
        model: String,
        unhealthy: Vec<String>,
    },
    #[error("all providers of model \"{model}\" are busy; retry later")]
    AllBusy { model: String },
    #[error("every provider of model \"{model}\" asked not to be called for {:.0}s (rate limited)", retry_after.as_secs_f64().ceil())]
    RateLimited {
        model: String,
        retry_after: Duration,
    },
    #[error("{}", attempts_message(model, attempts))]
    UpstreamFailed {
        model: String,
        attempts: Vec<Attempt>,
    },
    /// VRAM management found no room for the model on its Ollama host.
    #[error("{0}")]
    NoRoom(llm_router_actors::vram::NoRoom),
    #[error("request exceeded the router's time limit of {:.1}s", limit.as_secs_f64())]
    RequestTimeout { limit: Duration },
    #[error("internal error: {0}")]
    Internal(String),
    /// A RAG collection that holds nothing (never ingested, or deleted).
    #[error("collection \"{name}\" not found; collections: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    CollectionNotFound { name: String, known: Vec<String> },
    /// The RAG embedding model could not embed (its providers failed, or it answered nonsense):
    /// the request is refused rather than answered without its context.
    #[error("langchain_rag: embedding model \"{model}\" failed: {cause}")]
    EmbedderFailed { model: String, cause: String },
    /// A route of a feature this configuration does not turn on (the message says how to).
    #[error("{0}")]
    FeatureOff(String),
}

fn attempts_message(model: &str, attempts: &[Attempt]) -> String {
    let tried: Vec<String> = attempts
        .iter()
        .map(|a| format!("{} ({})", a.provider, a.kind))
        .collect();
    format!(
        "model \"{model}\": every provider failed; tried {}",
        if tried.is_empty() {
            "none".to_string()
        } else {
            tried.join(", ")
        }
    )
}

impl RouterError {
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> RouterError {
        RouterError::BadRequest {
            message: message.into(),
            param: param.map(String::from),
        }
    }

    /// The HTTP status and the OpenAI/Anthropic error `type` of this error: one table, every
    /// variant named (no catch-all), so a new variant cannot be mapped by accident.
    fn code(&self) -> (u16, &'static str) {
        const INVALID: &str = "invalid_request_error";
        match self {
            RouterError::BadRequest { .. } => (400, INVALID),
            RouterError::UnknownModel { .. } => (404, "not_found_error"),
            RouterError::RouteNotFound { .. } => (404, "not_found_error"),
            RouterError::MethodNotAllowed { .. } => (405, INVALID),
            RouterError::PayloadTooLarge { .. } => (413, INVALID),
            RouterError::UpstreamRejected { status, .. } => (*status, type_of_status(*status)),
            RouterError::NoHealthyProvider { .. } => (503, "overloaded_error"),
            RouterError::AllBusy { .. } => (503, "overloaded_error"),
            RouterError::NoRoom(_) => (503, "overloaded_error"),
            RouterError::RateLimited { .. } => (429, "rate_limit_error"),
            RouterError::UpstreamFailed { attempts, .. } => {
                let all = |f: fn(&FailureKind) -> bool| {
                    !attempts.is_empty() && attempts.iter().all(|a| f(&a.kind))
                };
                if all(|k| matches!(k, FailureKind::Timeout(_))) {
                    (504, "timeout_error")
                } else if all(|k| matches!(k, FailureKind::RateLimited(_))) {
                    (429, "rate_limit_error")
                } else {
                    (502, "api_error")
                }
            }
            RouterError::RequestTimeout { .. } => (504, "timeout_error"),
            RouterError::Internal(_) => (500, "api_error"),
            RouterError::CollectionNotFound { .. } => (404, "not_found_error"),
            RouterError::EmbedderFailed { .. } => (502, "api_error"),
            RouterError::FeatureOff(_) => (404, "not_found_error"),
        }
    }

    fn kind(&self) -> &'static str {
        self.code().1
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            RouterError::AllBusy { .. } | RouterError::NoRoom(_) => Some(1),
            RouterError::RateLimited { retry_after, .. } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            RouterError::NoHealthyProvider { .. } => Some(5),
            RouterError::UpstreamFailed { attempts, .. } => {
                let waits: Option<Vec<Duration>> = attempts
                    .iter()
                    .map(|a| match a.kind {
                        FailureKind::RateLimited(d) => Some(d.unwrap_or(Duration::from_secs(1))),
                        FailureKind::Connect
                        | FailureKind::Timeout(_)
                        | FailureKind::Status(_)
                        | FailureKind::Body => None,
                    })
                    .collect();
                waits
                    .and_then(|w| w.into_iter().min())
                    .map(|d| d.as_secs().max(1))
            }
            RouterError::BadRequest { .. }
            | RouterError::UnknownModel { .. }
            | RouterError::RouteNotFound { .. }
            | RouterError::MethodNotAllowed { .. }
            | RouterError::PayloadTooLarge { .. }
            | RouterError::UpstreamRejected { .. }
            | RouterError::RequestTimeout { .. }
            | RouterError::CollectionNotFound { .. }
            | RouterError::EmbedderFailed { .. }
            | RouterError::FeatureOff(_)
            | RouterError::Internal(_) => None,
        }
    }

    /// The body and status in the client's dialect.
    pub fn render(&self, dialect: Dialect) -> HttpResponse {
        let status = self.status_code();
        let message = self.to_string();
        let body = match dialect {
            Dialect::OpenAi => {
                let param = match self {
                    RouterError::BadRequest { param, .. } => json!(param),
                    RouterError::UnknownModel { .. } => json!("model"),
                    RouterError::RouteNotFound { .. }
                    | RouterError::MethodNotAllowed { .. }
                    | RouterError::PayloadTooLarge { .. }
                    | RouterError::UpstreamRejected { .. }
                    | RouterError::NoHealthyProvider { .. }
                    | RouterError::AllBusy { .. }
                    | RouterError::NoRoom(_)
                    | RouterError::RateLimited { .. }
                    | RouterError::UpstreamFailed { .. }
                    | RouterError::RequestTimeout { .. }
                    | RouterError::CollectionNotFound { .. }
                    | RouterError::EmbedderFailed { .. }
                    | RouterError::FeatureOff(_)
                    | RouterError::Internal(_) => json!(null),
                };
                json!({"error": {"message": message, "type": self.kind(), "param": param,
                                 "code": status.as_u16()}})
            }
            Dialect::Anthropic => {
                json!({"type": "error", "error": {"type": self.kind(), "message": message}})
            }
            Dialect::Ollama => json!({"error": message}),
        };
        let mut res = HttpResponse::build(status);
        if let Some(secs) = self.retry_after() {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.content_type("application/json").body(body.to_string())
    }
}

impl ResponseError for RouterError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().0).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    fn error_response(&self) -> HttpResponse {
        self.render(Dialect::OpenAi)
    }
}

/// The error `type` of a status a provider returned (passed through to the client).
fn type_of_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        0..=399 | 500..=u16::MAX => "api_error",
    }
}

impl From<Invalid> for RouterError {
    fn from(e: Invalid) -> RouterError {
        RouterError::BadRequest {
            message: e.message,
            param: e.param,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(p: &str, kind: FailureKind) -> Attempt {
        Attempt {
            provider: p.into(),
            kind,
        }
    }

    #[test]
    fn upstream_failures_map_to_502_504_or_429() {
        let t = FailureKind::Timeout(Duration::from_secs(3));
        let cases = [
            (vec![attempt("a", FailureKind::Connect)], 502),
            (vec![attempt("a", t), attempt("b", t)], 504),
            (
                vec![attempt("a", t), attempt("b", FailureKind::Status(500))],
                502,
            ),
            (
                vec![
                    attempt("a", FailureKind::RateLimited(Some(Duration::from_secs(7)))),
                    attempt("b", FailureKind::RateLimited(Some(Duration::from_secs(3)))),
                ],
                429,
            ),
        ];
        for (attempts, want) in cases {
            let e = RouterError::UpstreamFailed {
                model: "m".into(),
                attempts,
            };
            assert_eq!(e.status_code().as_u16(), want, "{e}");
        }
    }

    #[test]
    fn rate_limit_passes_the_shortest_retry_after() {
        let e = RouterError::UpstreamFailed {
            model: "m".into(),
            attempts: vec![
                attempt("a", FailureKind::RateLimited(Some(Duration::from_secs(7)))),
                attempt("b", FailureKind::RateLimited(Some(Duration::from_secs(3)))),
            ],
        };
        let r = e.render(Dialect::OpenAi);
        assert_eq!(r.headers().get("retry-after").unwrap(), "3");
    }

    #[test]
    fn each_dialect_gets_its_own_error_shape() {
        let e = RouterError::bad_request("\"model\" must be a string", Some("model"));
        let body = |d| {
            let r = e.render(d);
            assert_eq!(r.status(), 400);
            let bytes = actix_web::body::MessageBody::try_into_bytes(r.into_body())
                .unwrap_or_else(|_| panic!("sized body"));
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        assert_eq!(
            body(Dialect::OpenAi),
            json!({"error": {"message": "\"model\" must be a string", "type": "invalid_request_error",
                             "param": "model", "code": 400}})
        );
        assert_eq!(
            body(Dialect::Anthropic),
            json!({"type": "error", "error": {"type": "invalid_request_error",
                                              "message": "\"model\" must be a string"}})
        );
        assert_eq!(
            body(Dialect::Ollama),
            json!({"error": "\"model\" must be a string"})
        );
    }

    #[test]
    fn message_names_providers_and_reasons() {
        let e = RouterError::UpstreamFailed {
            model: "gemma".into(),
            attempts: vec![
                attempt("gemma-a", FailureKind::Connect),
                attempt("gemma-b", FailureKind::Status(500)),
            ],
        };
        assert_eq!(
            e.to_string(),
            "model \"gemma\": every provider failed; tried gemma-a (connection failed), gemma-b (HTTP 500)"
        );
    }
}
