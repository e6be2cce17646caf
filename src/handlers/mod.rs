//! The HTTP surface: the route table and one module per route family, all thin. Proxied routes
//! name their client API and hand the request to [`crate::relay`].

pub mod builtin;
pub mod embeddings;
pub mod generate;
pub mod info;
pub mod openapi;
pub mod profiles;
pub mod rag;
pub mod reload;
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
    /// Provider choice: on the worker's own thread when no shared store is configured.
    pub chooser: llm_router_actors::Chooser,
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
    /// VRAM management of Ollama hosts (`LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT`).
    pub vram: Option<llm_router_actors::vram::VramManager>,
    /// The web console's sessions and config history (SPEC §12).
    pub console: Arc<crate::console::Console>,
    /// The `langchain_rag` plugin, when on (SPEC §7).
    pub rag: Option<Arc<crate::rag::Rag>>,
    /// Measured model profiles and the benchmark scores (SPEC §7).
    pub profiles: Arc<crate::profiles::Profiles>,
}

/// What the API description says about a route (see [`openapi`]).
#[derive(Clone, Copy, Debug)]
pub struct Doc {
    pub summary: &'static str,
    /// The route family (`openai`, `anthropic`, `ollama`, `lmstudio`, `builtin`, `status`, …).
    pub tag: &'static str,
    /// Name of the request body schema in `components.schemas`, if the route takes a body.
    pub body: Option<&'static str>,
    /// The answer may be a stream (SSE or NDJSON) when the request asks for one.
    pub stream: bool,
    /// Name of the success answer's schema.
    pub answer: &'static str,
}

pub(crate) const fn doc(
    summary: &'static str,
    tag: &'static str,
    body: Option<&'static str>,
    stream: bool,
    answer: &'static str,
) -> Doc {
    Doc {
        summary,
        tag,
        body,
        stream,
        answer,
    }
}

/// One row of the route table: its paths, method, handler and description.
pub struct Entry {
    pub paths: Vec<String>,
    pub method: Method,
    pub route: fn() -> Route,
    pub doc: Doc,
}

/// Every route of this build. [`configure`] registers exactly these and `/openapi.json` is built
/// from them, so the description cannot miss or invent a route.
pub fn table(prefix: &str, prometheus: bool) -> Vec<Entry> {
    let p = |path: &str| format!("{prefix}{path}");
    let mut t = Vec::new();
    let mut add = |paths: Vec<String>, method: Method, route: fn() -> Route, doc: Doc| {
        t.push(Entry {
            paths,
            method,
            route,
            doc,
        })
    };
    use Method as M;
    let s = |v: &str| v.to_string();
    add(
        vec![s("/")],
        M::GET,
        || web::route().to(info::root),
        doc(
            "Ollama probe: `Ollama is running`",
            "ollama",
            None,
            false,
            "Text",
        ),
    );
    add(
        vec![p("/ping")],
        M::GET,
        || web::route().to(info::ping),
        doc(
            "Liveness: `{\"status\": true, \"body\": \"pong\"}`",
            "builtin",
            None,
            false,
            "Ping",
        ),
    );
    add(
        vec![p("/version")],
        M::GET,
        || web::route().to(info::version),
        doc("The router's version", "builtin", None, false, "Version"),
    );
    add(vec![s("/health")], M::GET, || web::route().to(info::health),
        doc("Liveness and readiness: per-model provider health; 503 when no model can serve or while draining",
            "status", None, false, "Health"));
    add(
        vec![p("/tags")],
        M::GET,
        || web::route().to(info::tags),
        doc("Ollama model listing", "ollama", None, false, "OllamaTags"),
    );
    add(
        vec![s("/models"), s("/v1/models"), p("/models")],
        M::GET,
        || web::route().to(info::models),
        doc("OpenAI model listing", "openai", None, false, "ModelList"),
    );
    // One model of the listing; `{id}` may hold slashes (`google/gemma-3`).
    add(
        vec![s("/v1/models/{id:.+}"), s("/models/{id:.+}")],
        M::GET,
        || web::route().to(status::model),
        doc(
            "OpenAI retrieve model; 404 naming an unknown id",
            "openai",
            None,
            false,
            "Model",
        ),
    );
    add(
        vec![
            s("/v1/chat/completions"),
            s("/chat/completions"),
            p("/chat/completions"),
            p("/v1/chat/completions"),
        ],
        M::POST,
        || web::route().to(generate::openai_chat),
        doc(
            "OpenAI chat completions",
            "openai",
            Some("ChatCompletionRequest"),
            true,
            "ChatCompletion",
        ),
    );
    add(
        vec![s("/v1/completions"), p("/v1/completions")],
        M::POST,
        || web::route().to(generate::openai_completions),
        doc(
            "OpenAI legacy text completions",
            "openai",
            Some("CompletionRequest"),
            true,
            "Completion",
        ),
    );
    add(
        vec![s("/v1/responses"), s("/responses")],
        M::POST,
        || web::route().to(generate::openai_responses),
        doc(
            "OpenAI Responses API",
            "openai",
            Some("ResponsesRequest"),
            true,
            "Response",
        ),
    );
    add(
        vec![s("/v1/messages"), p("/v1/messages")],
        M::POST,
        || web::route().to(generate::anthropic_messages),
        doc(
            "Anthropic Messages",
            "anthropic",
            Some("MessagesRequest"),
            true,
            "Message",
        ),
    );
    add(
        vec![p("/chat")],
        M::POST,
        || web::route().to(generate::ollama_chat),
        doc(
            "Ollama chat (NDJSON stream by default)",
            "ollama",
            Some("OllamaChatRequest"),
            true,
            "OllamaChat",
        ),
    );
    add(
        vec![p("/generate")],
        M::POST,
        || web::route().to(generate::ollama_generate),
        doc(
            "Ollama generate (NDJSON stream by default)",
            "ollama",
            Some("OllamaGenerateRequest"),
            true,
            "OllamaGenerate",
        ),
    );
    add(
        vec![p("/v0/chat/completions")],
        M::POST,
        || web::route().to(generate::openai_chat),
        doc(
            "LM Studio chat",
            "lmstudio",
            Some("ChatCompletionRequest"),
            true,
            "ChatCompletion",
        ),
    );
    add(
        vec![p("/v0/models")],
        M::GET,
        || web::route().to(info::lmstudio_models),
        doc(
            "LM Studio model listing",
            "lmstudio",
            None,
            false,
            "ModelList",
        ),
    );
    add(
        vec![p("/show")],
        M::POST,
        || web::route().to(info::show),
        doc(
            "Ollama model info (from the config)",
            "ollama",
            Some("OllamaShowRequest"),
            false,
            "OllamaShow",
        ),
    );
    add(
        vec![p("/fast_text_mask")],
        M::POST,
        || web::route().to(info::fast_text_mask),
        doc(
            "Masks personal data in a text: `{text, mappings}`",
            "builtin",
            Some("TextRequest"),
            false,
            "MaskedText",
        ),
    );
    add(
        vec![s("/v1/embeddings"), s("/embeddings"), p("/v1/embeddings")],
        M::POST,
        || web::route().to(embeddings::openai),
        doc(
            "OpenAI embeddings",
            "openai",
            Some("EmbeddingsRequest"),
            false,
            "Embeddings",
        ),
    );
    add(
        vec![p("/embed")],
        M::POST,
        || web::route().to(embeddings::ollama_embed),
        doc(
            "Ollama embed (`input` string or list)",
            "ollama",
            Some("OllamaEmbedRequest"),
            false,
            "OllamaEmbed",
        ),
    );
    add(
        vec![p("/embeddings")],
        M::POST,
        || web::route().to(embeddings::ollama_legacy),
        doc(
            "Ollama legacy embeddings (`prompt`)",
            "ollama",
            Some("OllamaEmbeddingsRequest"),
            false,
            "OllamaEmbedding",
        ),
    );
    // Built-in endpoints (SPEC §5); `anonymize_text_genai` answers 404 unless enabled.
    {
        use crate::builtin::routes::Route as B;
        type Row = (B, fn() -> Route, &'static str);
        let builtin: [Row; 9] = [
            (
                B::Conversation,
                || web::route().to(builtin::conversation_with_model),
                "A conversation turn with a model",
            ),
            (
                B::ExtendedConversation,
                || web::route().to(builtin::extended_conversation_with_model),
                "A conversation with history and a system prompt",
            ),
            (
                B::GenerativeAnswer,
                || web::route().to(builtin::generative_answer),
                "An answer to a question from given texts",
            ),
            (
                B::ArticleFromText,
                || web::route().to(builtin::generate_article_from_text),
                "An article from a text",
            ),
            (
                B::FullArticle,
                || web::route().to(builtin::create_full_article_from_texts),
                "A full article from several texts",
            ),
            (
                B::Translate,
                || web::route().to(builtin::translate),
                "Translates texts",
            ),
            (
                B::SimplifyText,
                || web::route().to(builtin::simplify_text),
                "Simplifies texts",
            ),
            (
                B::GenerateQuestions,
                || web::route().to(builtin::generate_questions),
                "Questions about texts",
            ),
            (
                B::AnonymizeText,
                || web::route().to(builtin::anonymize_text_genai),
                "Anonymises a text with a model (404 unless enabled)",
            ),
        ];
        for (r, handler, summary) in builtin {
            add(
                vec![p(r.path())],
                M::POST,
                handler,
                doc(
                    summary,
                    "builtin",
                    Some("BuiltinRequest"),
                    true,
                    "BuiltinAnswer",
                ),
            );
        }
    }
    // langchain_rag (SPEC §7); 404 when the plugin is off.
    add(
        vec![p("/rag/collections")],
        M::GET,
        || web::route().to(rag::list),
        doc(
            "RAG collections: documents, chunks, dimensions, embedder",
            "rag",
            None,
            false,
            "Object",
        ),
    );
    add(
        vec![p("/rag/collections/{name}/documents")],
        M::POST,
        || web::route().to(rag::ingest),
        doc(
            "Adds documents to a RAG collection (chunked, embedded, persisted; a document id again replaces it)",
            "rag",
            Some("RagDocuments"),
            false,
            "Object",
        ),
    );
    add(
        vec![p("/rag/collections/{name}")],
        M::GET,
        || web::route().to(rag::show),
        doc(
            "One RAG collection; 404 when unknown",
            "rag",
            None,
            false,
            "Object",
        ),
    );
    add(
        vec![p("/rag/collections/{name}")],
        M::DELETE,
        || web::route().to(rag::delete),
        doc(
            "Deletes a RAG collection and its index file; 404 when unknown",
            "rag",
            None,
            false,
            "Object",
        ),
    );
    // Profiles and benchmarks (SPEC §7); admin routes.
    add(
        vec![s("/admin/profiles")],
        M::GET,
        || web::route().to(profiles::show),
        doc(
            "Measured model profiles per provider and category: TTFT, tokens/s, success",
            "status",
            None,
            false,
            "Object",
        ),
    );
    add(
        vec![s("/admin/reprofile")],
        M::POST,
        || web::route().to(profiles::reprofile),
        doc(
            "Runs the profile probes again (202; results at /admin/profiles)",
            "status",
            None,
            false,
            "Object",
        ),
    );
    add(
        vec![s("/admin/benchmarks")],
        M::GET,
        || web::route().to(profiles::benchmarks),
        doc(
            "Per-model category quality scores (resources/routing/benchmarks.json)",
            "status",
            None,
            false,
            "Object",
        ),
    );
    add(vec![s("/router/stats")], M::GET, || web::route().to(status::stats),
        doc("Per model and provider, the last 5 minutes: requests, errors by class, latency and TTFT percentiles, tokens, in flight, health",
            "status", None, false, "Stats"));
    add(
        vec![s("/router/health")],
        M::GET,
        || web::route().to(status::router_health),
        doc(
            "Providers, shared state, rate limiter, key store, plugins",
            "status",
            None,
            false,
            "RouterHealth",
        ),
    );
    add(
        vec![s("/router/rate-limits")],
        M::GET,
        || web::route().to(status::rate_limits),
        doc(
            "Per key and per provider: limit, used, resets in",
            "status",
            None,
            false,
            "RateLimits",
        ),
    );
    add(
        vec![s("/router/reload")],
        M::POST,
        || web::route().to(reload::reload),
        doc(
            "Re-reads models-config.json and the keys file; 400 listing every problem (the running state stays)",
            "status",
            None,
            false,
            "Object",
        ),
    );
    add(
        vec![s("/auth/status")],
        M::GET,
        || web::route().to(status::auth_status),
        doc(
            "Auth on/off, key store, key count, limiter backend",
            "status",
            None,
            false,
            "AuthStatus",
        ),
    );
    add(
        vec![s("/auth/metrics")],
        M::GET,
        || web::route().to(status::auth_metrics),
        doc(
            "Per key_id: requests, 401s, 403s, 429s",
            "status",
            None,
            false,
            "AuthMetrics",
        ),
    );
    add(
        vec![s("/auth/reload-keys")],
        M::POST,
        || web::route().to(status::reload_keys),
        doc(
            "Re-reads the keys file; 400 listing every problem",
            "status",
            None,
            false,
            "KeysReloaded",
        ),
    );
    add(
        vec![s("/openapi.json")],
        M::GET,
        || web::route().to(openapi::spec),
        doc(
            "This API description (OpenAPI 3.1)",
            "status",
            None,
            false,
            "Object",
        ),
    );
    add(
        vec![s("/docs")],
        M::GET,
        || web::route().to(openapi::docs),
        doc(
            "A page rendering /openapi.json",
            "status",
            None,
            false,
            "Text",
        ),
    );
    crate::console::routes::rows(&mut add);
    if prometheus {
        add(
            vec![s("/metrics"), p("/metrics")],
            M::GET,
            || web::route().to(info::metrics),
            doc(
                "Prometheus metrics (text format)",
                "status",
                None,
                false,
                "Text",
            ),
        );
    }
    t
}

/// Registers every route of [`table`] under its paths; other methods on them get 405.
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str, prometheus: bool) {
    let table = table(prefix, prometheus);
    // Paths with a pattern (`/v1/models/{id:.+}`) last: actix tries resources in order, and a
    // pattern placed first would run its regex on the path of every chat request.
    let rows = |dynamic: bool| {
        table.iter().flat_map(move |e| {
            e.paths
                .iter()
                .filter(move |p| p.contains('{') == dynamic)
                .map(move |p| (e, p))
        })
    };
    // One resource per path, with a route for each of its rows' methods.
    let mut seen = std::collections::HashSet::new();
    for (_, path) in rows(false).chain(rows(true)) {
        if !seen.insert(path) {
            continue;
        }
        let mut resource = web::resource(path.as_str());
        for e in table.iter().filter(|e| e.paths.contains(path)) {
            resource = resource.route((e.route)().guard(IsMethod(e.method.clone())));
        }
        cfg.service(resource.default_service(web::to(method_not_allowed)));
    }
}

/// A route's method, compared and nothing else: actix's own method guard also records every
/// method it was asked about in the request's extensions (for an `Allow` header this router
/// does not send), which costs two allocations on each request.
struct IsMethod(actix_web::http::Method);

impl actix_web::guard::Guard for IsMethod {
    fn check(&self, ctx: &actix_web::guard::GuardContext<'_>) -> bool {
        ctx.head().method == self.0
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
