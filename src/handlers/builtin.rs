//! HTTP handlers of the built-in endpoints (SPEC §5). The pure work — request → plan of model
//! calls, answers → response — is `crate::builtin::routes`; this file reads the body, checks the
//! model, runs the calls and writes the response.
//!
//! Every model call goes through [`call_model`] (whole answer) or [`stream_model`] (the answer
//! as OpenAI chat SSE); nothing else here talks to providers.
//!
//! Streams (`"stream": true`) are OpenAI chat-completion SSE ending `data: [DONE]`:
//! - single-call routes stream the model's tokens as they come, the system prompt applied;
//! - per-text routes (translate, simplify_text, generate_questions) send one chunk per text when
//!   its call completes, in completion order, `choices[0].index` = the text's index and the
//!   content its whole result (questions one per line). The response starts with the first
//!   completed text, so a failure before that is an ordinary HTTP error; a later failure ends the
//!   stream with an in-band error frame naming the text, never a silent `[DONE]`; while texts are
//!   pending, an SSE comment is sent every `heartbeat` (10 s).

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};

use super::{json_response, read_body, request_id, AppState};
use crate::builtin::prompts::Language;
use crate::builtin::routes::{self, per_text_chunk, Plan, Route};
use crate::dialects::canonical::{new_id, unix_now, Request, StopReason};
use crate::dialects::openai;
use crate::dialects::openai::sse_error as openai_sse_error;
use crate::errors::{Dialect, RouterError};
use crate::relay::stages::RequestContext;

/// Model calls of one per-text request in flight at once.
pub const PER_TEXT_CONCURRENCY: usize = 8;

/// A model's whole answer.
pub struct ModelAnswer {
    pub text: String,
    pub stop: StopReason,
    /// The provider that answered.
    pub provider: String,
    /// `x-llm-router-model` and `x-llm-router-decision` of the call, for the route's response.
    pub routed: Vec<(header::HeaderName, header::HeaderValue)>,
}

/// One model call, whole answer (failover and provider choice as for any request). `ctx`: what
/// the request stages learned (the masked originals to restore, when asked for).
pub async fn call_model(
    state: &AppState,
    client: &awc::Client,
    request_id: &str,
    started: Instant,
    mut request: Request,
    ctx: &RequestContext,
) -> Result<ModelAnswer, RouterError> {
    request.stream = false;
    let res = crate::relay::run_built(state, client, request_id, started, request, ctx).await?;
    let provider = res
        .headers()
        .get("x-llm-router-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let routed = ["x-llm-router-model", crate::relay::DECISION_HEADER]
        .into_iter()
        .filter_map(|n| {
            let v = res.headers().get(n)?.clone();
            Some((header::HeaderName::from_static(n), v))
        })
        .collect();
    let bytes = actix_web::body::to_bytes(res.into_body())
        .await
        .map_err(|e| RouterError::Internal(format!("reading the converted answer: {e}")))?;
    let answer = openai::read_chat_response(&bytes)
        .map_err(|e| RouterError::Internal(format!("the converted answer is unreadable: {e}")))?;
    Ok(ModelAnswer {
        text: answer.text,
        stop: answer.stop,
        provider,
        routed,
    })
}

/// One model call, the answer streamed to the client as OpenAI chat SSE.
pub async fn stream_model(
    state: &AppState,
    client: &awc::Client,
    request_id: &str,
    started: Instant,
    mut request: Request,
    ctx: &RequestContext,
) -> Result<HttpResponse, RouterError> {
    request.stream = true;
    crate::relay::run_built(state, client, request_id, started, request, ctx).await
}

/// Why a built-in request failed: on its own, or in the call for one of its texts.
enum Failure {
    Request(RouterError),
    Text { index: usize, error: RouterError },
}

impl From<RouterError> for Failure {
    fn from(e: RouterError) -> Failure {
        Failure::Request(e)
    }
}

impl Failure {
    fn render(self) -> HttpResponse {
        match self {
            Failure::Request(e) => e.render(Dialect::OpenAi),
            Failure::Text { index, error } => {
                // The error's own status, type and Retry-After; the message names the text.
                let res = error.render(Dialect::OpenAi);
                let status = res.status();
                let retry = res.headers().get(header::RETRY_AFTER).cloned();
                let mut body = match actix_web::body::MessageBody::try_into_bytes(res.into_body())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                {
                    Some(v) => v,
                    None => serde_json::json!({"error": {}}),
                };
                body["error"]["message"] = format!("texts[{index}]: {error}").into();
                let mut out = HttpResponse::build(status);
                if let Some(r) = retry {
                    out.insert_header((header::RETRY_AFTER, r));
                }
                out.content_type("application/json").body(body.to_string())
            }
        }
    }
}

macro_rules! builtin_route {
    ($name:ident, $route:expr) => {
        pub async fn $name(
            req: HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
            client: web::Data<awc::Client>,
        ) -> HttpResponse {
            match handle($route, &req, payload, state, client).await {
                Ok(r) => r,
                Err(f) => f.render(),
            }
        }
    };
}

builtin_route!(conversation_with_model, Route::Conversation);
builtin_route!(
    extended_conversation_with_model,
    Route::ExtendedConversation
);
builtin_route!(generative_answer, Route::GenerativeAnswer);
builtin_route!(generate_article_from_text, Route::ArticleFromText);
builtin_route!(create_full_article_from_texts, Route::FullArticle);
builtin_route!(translate, Route::Translate);
builtin_route!(simplify_text, Route::SimplifyText);
builtin_route!(generate_questions, Route::GenerateQuestions);
builtin_route!(anonymize_text_genai, Route::AnonymizeText);

async fn handle(
    route: Route,
    req: &HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
) -> Result<HttpResponse, Failure> {
    let started = Instant::now();
    let s = &state.settings;
    if route == Route::AnonymizeText && !s.builtin.genai_anonymize {
        return Err(RouterError::RouteNotFound {
            method: req.method().to_string(),
            path: req.path().to_string(),
        }
        .into());
    }
    let mut body = read_body(req, payload, s.max_body).await?;
    // The privacy pipeline, as on the proxied routes: guardrails, then masking; the answers are
    // restored and checked by the response guardrails as on the proxied routes (`run_built`).
    let mut ctx = RequestContext {
        endpoint: req.path().to_string(),
        builtin: true,
        ..Default::default()
    };
    let api = crate::relay::ClientApi::Generate(crate::relay::Ingress::OpenAiChat);
    state
        .stages
        .run_request(api, &client, &mut body, &mut ctx)
        .await?;
    let default_language = Language::parse(&s.default_language).unwrap_or(Language::Pl);
    let plan = routes::plan(route, &body, &s.builtin.prompts, default_language)?;
    // Checked before any call, so a per-text request never fans out to an unknown model.
    if s.models.model(&plan.model).is_none() && !s.smart.is_auto(&plan.model) {
        return Err(RouterError::UnknownModel {
            model: plan.model.clone(),
            available: s
                .models
                .model_names()
                .into_iter()
                .map(String::from)
                .collect(),
        }
        .into());
    }
    let rid = request_id(req);
    let ctx = Arc::new(ctx);
    if plan.shape.per_text() {
        return if plan.stream {
            let client = client.get_ref().clone();
            per_text_stream(state.clone(), client, rid, started, plan, ctx).await
        } else {
            per_text_whole(&state, &client, &rid, started, plan, &ctx).await
        };
    }
    let Plan {
        mut calls, shape, ..
    } = plan;
    let request = calls
        .pop()
        .ok_or_else(|| RouterError::Internal("a single-call route planned no call".into()))?;
    if request.stream {
        return Ok(stream_model(&state, &client, &rid, started, request, &ctx).await?);
    }
    let answer = call_model(&state, &client, &rid, started, request, &ctx).await?;
    let body = shape.body(&[answer.text], started.elapsed());
    let mut res = json_response(StatusCode::OK, &body);
    if let Ok(v) = header::HeaderValue::from_str(&answer.provider) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-llm-router-provider"), v);
    }
    for (k, v) in answer.routed {
        res.headers_mut().insert(k, v);
    }
    Ok(res)
}

/// Per-text calls, at most [`PER_TEXT_CONCURRENCY`] at once, answers in input order; the first
/// failing text fails the request (the calls still running are cancelled).
async fn per_text_whole(
    state: &AppState,
    client: &awc::Client,
    rid: &str,
    started: Instant,
    plan: Plan,
    ctx: &RequestContext,
) -> Result<HttpResponse, Failure> {
    let answers: Vec<String> =
        stream::iter(plan.calls.into_iter().enumerate().map(|(i, r)| async move {
            call_model(state, client, rid, started, r, ctx)
                .await
                .map(|a| a.text)
                .map_err(|error| Failure::Text { index: i, error })
        }))
        .buffered(PER_TEXT_CONCURRENCY)
        .try_collect()
        .await?;
    let body = plan.shape.body(&answers, started.elapsed());
    Ok(json_response(StatusCode::OK, &body))
}

/// Per-text results as OpenAI chunks, each sent when its call completes (see the module docs).
async fn per_text_stream(
    state: web::Data<AppState>,
    client: awc::Client,
    rid: Arc<str>,
    started: Instant,
    plan: Plan,
    ctx: Arc<RequestContext>,
) -> Result<HttpResponse, Failure> {
    let heartbeat = state.settings.heartbeat;
    let Plan {
        model,
        calls,
        shape,
        ..
    } = plan;
    let calls = calls.into_iter().enumerate().map(move |(i, r)| {
        let (state, client, rid, ctx) = (state.clone(), client.clone(), rid.clone(), ctx.clone());
        async move { (i, call_model(&state, &client, &rid, started, r, &ctx).await) }
    });
    // Dropping `results` (the client left, or a text failed) cancels the calls still running.
    let mut results = stream::iter(calls).buffer_unordered(PER_TEXT_CONCURRENCY);
    let (first_index, first) = match results.next().await {
        Some((i, Ok(a))) => (i, a),
        Some((index, Err(error))) => return Err(Failure::Text { index, error }),
        None => {
            return Err(RouterError::Internal("a per-text route planned no call".into()).into())
        }
    };
    let (id, created) = (new_id("chatcmpl-"), unix_now());
    let frame = move |index: usize, a: &ModelAnswer| -> Bytes {
        let text = shape.stream_text(&a.text);
        let v = per_text_chunk(&id, &model, created, index, &text, a.stop);
        Bytes::from(format!("data: {v}\n\n"))
    };
    let head = frame(first_index, &first);
    let rest = stream::unfold(Some((results, frame)), move |st| async move {
        let (mut results, frame) = st?;
        // While texts are still being worked on, an SSE comment now and then: proxies keep the
        // connection, and a client that left is noticed (dropping the body cancels the calls).
        // `next()` is cancel-safe: the calls in flight stay in `results`.
        let Ok(next) = tokio::time::timeout(heartbeat, results.next()).await else {
            return Some((
                Bytes::from_static(b": keep-alive\n\n"),
                Some((results, frame)),
            ));
        };
        let last = match next {
            Some((i, Ok(a))) => {
                let chunk = frame(i, &a);
                return Some((chunk, Some((results, frame))));
            }
            Some((index, Err(error))) => {
                tracing::warn!(index, error = %error, "a per-text call failed mid-stream");
                openai_sse_error(&format!("texts[{index}]: {error}"))
            }
            None => Bytes::from_static(b"data: [DONE]\n\n"),
        };
        Some((last, None))
    });
    let body = stream::once(async move { head })
        .chain(rest)
        .map(Ok::<Bytes, std::convert::Infallible>);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .streaming(body))
}
