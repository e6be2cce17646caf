//! The HTTP surface: the route table and one module per route family, all thin. Proxied routes
//! name their client API and hand the request to [`crate::relay`].

pub mod builtin;
pub mod embeddings;
pub mod generate;
pub mod info;
pub mod status;

use std::sync::Arc;
use std::time::SystemTime;

use actix::Addr;
use actix_web::http::Method;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, Route};
use bytes::BytesMut;
use futures_util::StreamExt;
use llm_router_actors::ModelRegistry;

use crate::errors::RouterError;
use crate::settings::Settings;
use crate::telemetry::{Metrics, RequestId};

/// Shared by every worker.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub registry: Addr<ModelRegistry>,
    pub metrics: Option<Metrics>,
    pub started_at: SystemTime,
    /// Reachability of the shared store (Redis), when one is configured.
    pub shared: Option<Arc<llm_router_actors::registry::SharedHealth>>,
    /// The pipeline's request and frame stages (SPEC §6, §7).
    pub stages: crate::relay::stages::Stages,
    /// The masker, for `P/fast_text_mask`.
    pub masking: Arc<crate::pipeline::masking::Masking>,
    /// API keys, policies and rate limits (SPEC §10).
    pub access: Arc<crate::access::Access>,
    /// Set on SIGTERM/SIGINT: `/health` answers 503 `draining`.
    pub drain: crate::Drain,
}

/// Registers every route of this build under its paths; other methods on them get 405.
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str, prometheus: bool) {
    let p = |path: &str| format!("{prefix}{path}");
    let mut add = |paths: &[String], method: Method, route: fn() -> Route| {
        for path in paths {
            cfg.service(
                web::resource(path.as_str())
                    .route(route().method(method.clone()))
                    .default_service(web::to(method_not_allowed)),
            );
        }
    };
    add(&["/".into()], Method::GET, || web::route().to(info::root));
    add(&[p("/ping")], Method::GET, || web::route().to(info::ping));
    add(&[p("/version")], Method::GET, || {
        web::route().to(info::version)
    });
    add(&["/health".into()], Method::GET, || {
        web::route().to(info::health)
    });
    add(&[p("/tags")], Method::GET, || web::route().to(info::tags));
    // One model of the listing; `{id}` may hold slashes (`google/gemma-3`).
    add(
        &["/v1/models/{id:.+}".into(), "/models/{id:.+}".into()],
        Method::GET,
        || web::route().to(status::model),
    );
    add(&["/router/stats".into()], Method::GET, || {
        web::route().to(status::stats)
    });
    add(&["/router/health".into()], Method::GET, || {
        web::route().to(status::router_health)
    });
    add(&["/router/rate-limits".into()], Method::GET, || {
        web::route().to(status::rate_limits)
    });
    add(&["/auth/status".into()], Method::GET, || {
        web::route().to(status::auth_status)
    });
    add(&["/auth/metrics".into()], Method::GET, || {
        web::route().to(status::auth_metrics)
    });
    add(&["/auth/reload-keys".into()], Method::POST, || {
        web::route().to(status::reload_keys)
    });
    add(
        &["/models".into(), "/v1/models".into(), p("/models")],
        Method::GET,
        || web::route().to(info::models),
    );
    add(
        &[
            "/v1/chat/completions".into(),
            "/chat/completions".into(),
            p("/chat/completions"),
            p("/v1/chat/completions"),
        ],
        Method::POST,
        || web::route().to(generate::openai_chat),
    );
    add(
        &["/v1/completions".into(), p("/v1/completions")],
        Method::POST,
        || web::route().to(generate::openai_completions),
    );
    add(
        &["/v1/responses".into(), "/responses".into()],
        Method::POST,
        || web::route().to(generate::openai_responses),
    );
    add(
        &["/v1/messages".into(), p("/v1/messages")],
        Method::POST,
        || web::route().to(generate::anthropic_messages),
    );
    add(&[p("/chat")], Method::POST, || {
        web::route().to(generate::ollama_chat)
    });
    add(&[p("/generate")], Method::POST, || {
        web::route().to(generate::ollama_generate)
    });
    add(&[p("/v0/chat/completions")], Method::POST, || {
        web::route().to(generate::openai_chat)
    });
    add(&[p("/v0/models")], Method::GET, || {
        web::route().to(info::lmstudio_models)
    });
    add(&[p("/show")], Method::POST, || web::route().to(info::show));
    add(&[p("/fast_text_mask")], Method::POST, || {
        web::route().to(info::fast_text_mask)
    });
    add(
        &[
            "/v1/embeddings".into(),
            "/embeddings".into(),
            p("/v1/embeddings"),
        ],
        Method::POST,
        || web::route().to(embeddings::openai),
    );
    add(&[p("/embed")], Method::POST, || {
        web::route().to(embeddings::ollama_embed)
    });
    add(&[p("/embeddings")], Method::POST, || {
        web::route().to(embeddings::ollama_legacy)
    });
    // Built-in endpoints (SPEC §5); `anonymize_text_genai` answers 404 unless enabled.
    {
        use crate::builtin::routes::Route as B;
        let builtin: [(B, fn() -> Route); 9] = [
            (B::Conversation, || {
                web::route().to(builtin::conversation_with_model)
            }),
            (B::ExtendedConversation, || {
                web::route().to(builtin::extended_conversation_with_model)
            }),
            (B::GenerativeAnswer, || {
                web::route().to(builtin::generative_answer)
            }),
            (B::ArticleFromText, || {
                web::route().to(builtin::generate_article_from_text)
            }),
            (B::FullArticle, || {
                web::route().to(builtin::create_full_article_from_texts)
            }),
            (B::Translate, || web::route().to(builtin::translate)),
            (B::SimplifyText, || web::route().to(builtin::simplify_text)),
            (B::GenerateQuestions, || {
                web::route().to(builtin::generate_questions)
            }),
            (B::AnonymizeText, || {
                web::route().to(builtin::anonymize_text_genai)
            }),
        ];
        for (r, handler) in builtin {
            add(&[p(r.path())], Method::POST, handler);
        }
    }
    if prometheus {
        add(&["/metrics".into(), p("/metrics")], Method::GET, || {
            web::route().to(info::metrics)
        });
    }
}

pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, RouterError> {
    Err(RouterError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_string(),
    })
}

pub async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, RouterError> {
    Err(RouterError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().to_string(),
    })
}

/// Reads the request body, refusing more than `limit` bytes (413) before buffering them.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<BytesMut, RouterError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RouterError::PayloadTooLarge { limit });
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            RouterError::bad_request(format!("could not read the request body: {e}"), None)
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(RouterError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

pub fn request_id(req: &HttpRequest) -> Arc<str> {
    req.extensions()
        .get::<RequestId>()
        .map_or_else(|| "-".into(), |r| r.0.clone())
}

pub fn json_response(
    status: actix_web::http::StatusCode,
    body: &serde_json::Value,
) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}
