//! Every text-generation route, whatever the client's dialect: OpenAI chat / completions /
//! responses, LM Studio chat, Anthropic messages, Ollama chat / generate.
//!
//! The provider is chosen first; the request is then built for that provider's wire format. When
//! the client's dialect is the provider's wire format the body is forwarded with only `model`
//! rewritten and the answer passed through untouched (the fast path). Otherwise the request is
//! read into the canonical model, written in the provider's format, and the answer — every stream
//! frame — converted back. Failover may cross provider types; each attempt builds its own body.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use actix_web::body::SizedStream;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use llm_router_actors::{ApiType, FailureKind, Outcome, ProviderConfig};

use super::{read_body, request_id, AppState};
use crate::dialects::canonical::{Decoder, Encoder, Event, Request, Response};
use crate::dialects::raw::RawObject;
use crate::dialects::{anthropic, ollama, openai, responses};
use crate::errors::{Dialect, RouterError};
use crate::streaming::{openai_sse_error, BodyLimits, ErrorFrame, Framing, LeaseBody, Mode};
use crate::upstream::{self, CallSpec, Committed, Outgoing};

/// The client's dialect and endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    OpenAiChat,
    OpenAiCompletions,
    Responses,
    Anthropic,
    OllamaChat,
    OllamaGenerate,
}

/// A provider's wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Ollama,
    Anthropic,
}

impl Wire {
    pub fn of(t: ApiType) -> Wire {
        match t {
            ApiType::Ollama => Wire::Ollama,
            ApiType::Anthropic => Wire::Anthropic,
            _ => Wire::OpenAi,
        }
    }
}

/// Fields removed for providers configured with `tool_calling: false` (every dialect's names).
const TOOL_FIELDS: &[&str] = &[
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "parallel_tool_calls",
];
/// Router-level request fields that are never sent upstream. The Python gateway read system
/// prompts from `prompt_str_force` / `prompt_str_postfix` / `map_prompt` on any route (SPEC §9):
/// here no route honours them, and passthrough strips them so no upstream does either.
const ROUTER_FIELDS: &[&str] = &[
    "anonymize",
    "prompt_str_force",
    "prompt_str_postfix",
    "map_prompt",
];

impl Ingress {
    pub fn dialect(self) -> Dialect {
        match self {
            Ingress::OpenAiChat | Ingress::OpenAiCompletions | Ingress::Responses => {
                Dialect::OpenAi
            }
            Ingress::Anthropic => Dialect::Anthropic,
            Ingress::OllamaChat | Ingress::OllamaGenerate => Dialect::Ollama,
        }
    }

    /// Ollama streams unless told otherwise; the others don't (SPEC §3).
    fn default_stream(self) -> bool {
        matches!(self, Ingress::OllamaChat | Ingress::OllamaGenerate)
    }

    /// The provider path when this request can pass through to `wire` unconverted.
    fn native_path(self, wire: Wire) -> Option<&'static str> {
        match (self, wire) {
            (Ingress::OpenAiChat, Wire::OpenAi) => Some("/v1/chat/completions"),
            (Ingress::OpenAiCompletions, Wire::OpenAi) => Some("/v1/completions"),
            (Ingress::Anthropic, Wire::Anthropic) => Some("/v1/messages"),
            (Ingress::OllamaChat, Wire::Ollama) => Some("/api/chat"),
            (Ingress::OllamaGenerate, Wire::Ollama) => Some("/api/generate"),
            _ => None,
        }
    }

    /// Reads the request into the canonical model (only when a conversion is needed).
    fn read(self, body: &[u8]) -> Result<Request, RouterError> {
        match self {
            Ingress::OpenAiChat => openai::read_chat(body),
            Ingress::OpenAiCompletions => openai::read_completion(body),
            Ingress::Responses => responses::read_request(body),
            Ingress::Anthropic => anthropic::read_request(body),
            Ingress::OllamaChat => ollama::read_chat(body),
            Ingress::OllamaGenerate => ollama::read_generate(body),
        }
    }

    /// What the fast path checks before routing (the rest is the provider's to judge).
    fn validate(self, raw: &RawObject<'_>) -> Result<(), RouterError> {
        match self {
            Ingress::OpenAiChat => raw.require_array("messages"),
            Ingress::Anthropic => {
                raw.require_array("messages")?;
                if raw.get("max_tokens").is_none() {
                    return Err(RouterError::bad_request(
                        "missing required field \"max_tokens\"",
                        Some("max_tokens"),
                    ));
                }
                Ok(())
            }
            Ingress::OpenAiCompletions => match raw.get("prompt") {
                None | Some("null") => Err(RouterError::bad_request(
                    "missing required field \"prompt\"",
                    Some("prompt"),
                )),
                Some(_) => Ok(()),
            },
            Ingress::Responses | Ingress::OllamaChat | Ingress::OllamaGenerate => Ok(()),
        }
    }

    fn error_frame(self) -> ErrorFrame {
        match self.dialect() {
            Dialect::OpenAi => openai_sse_error,
            Dialect::Anthropic => anthropic::error_event,
            Dialect::Ollama => ollama::error_line,
        }
    }

    fn encoder(self, req: &Request) -> Box<dyn Encoder> {
        match self {
            Ingress::OpenAiChat | Ingress::OpenAiCompletions => {
                Box::new(openai::ChatEncoder::new(req))
            }
            Ingress::Responses => Box::new(responses::StreamEncoder::new(req)),
            Ingress::Anthropic => Box::new(anthropic::StreamEncoder::new(req)),
            Ingress::OllamaChat | Ingress::OllamaGenerate => {
                Box::new(ollama::StreamEncoder::new(req))
            }
        }
    }

    fn stream_content_type(self) -> &'static str {
        match self.dialect() {
            Dialect::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        }
    }

    /// A complete answer in the client's dialect.
    fn write_response(self, r: &Response, req: &Request, took: Duration) -> serde_json::Value {
        match self {
            Ingress::OpenAiChat => openai::write_chat_response(r, &req.model),
            Ingress::OpenAiCompletions => openai::write_completion_response(r, &req.model),
            Ingress::Responses => responses::write_response(r, &req.model),
            Ingress::Anthropic => anthropic::write_response(r, &req.model),
            Ingress::OllamaChat => {
                ollama::write_response(r, &req.model, false, took.as_nanos() as u64)
            }
            Ingress::OllamaGenerate => {
                ollama::write_response(r, &req.model, true, took.as_nanos() as u64)
            }
        }
    }
}

fn decoder(wire: Wire) -> Box<dyn Decoder> {
    match wire {
        Wire::OpenAi => Box::<openai::ChatDecoder>::default(),
        Wire::Ollama => Box::<ollama::StreamDecoder>::default(),
        Wire::Anthropic => Box::<anthropic::StreamDecoder>::default(),
    }
}

fn read_answer(wire: Wire, body: &[u8]) -> Result<Response, String> {
    match wire {
        Wire::OpenAi => openai::read_chat_response(body),
        Wire::Ollama => ollama::read_response(body),
        Wire::Anthropic => anthropic::read_response(body),
    }
}

/// The canonical request in a provider's wire format.
fn write_request(wire: Wire, req: &Request, p: &ProviderConfig) -> Outgoing {
    match wire {
        Wire::OpenAi => Outgoing {
            path: "/v1/chat/completions",
            body: openai::write_chat(req, p),
        },
        Wire::Ollama => Outgoing {
            path: "/api/chat",
            body: ollama::write_chat(req, p),
        },
        Wire::Anthropic => Outgoing {
            path: "/v1/messages",
            body: anthropic::write_request(req, p),
        },
    }
}

/// A complete answer replayed as stream events (a provider that answered a stream request whole).
fn events_of(r: &Response) -> Vec<Event> {
    let mut ev = vec![Event::Start {
        id: r.id.clone(),
        model: r.model.clone(),
    }];
    if !r.text.is_empty() {
        ev.push(Event::Text(r.text.clone()));
    }
    for (index, (id, name, args)) in r.tool_calls.iter().enumerate() {
        ev.push(Event::ToolStart {
            index,
            id: id.clone(),
            name: name.clone(),
        });
        ev.push(Event::ToolArgs {
            index,
            fragment: args.clone(),
        });
    }
    ev.push(Event::Stop(r.stop));
    if let Some(u) = r.usage {
        ev.push(Event::Usage(u));
    }
    ev.push(Event::Done);
    ev
}

macro_rules! route {
    ($name:ident, $ingress:expr) => {
        pub async fn $name(
            req: HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
            client: web::Data<awc::Client>,
        ) -> HttpResponse {
            let ingress = $ingress;
            match generate(ingress, &req, payload, &state, &client).await {
                Ok(r) => r,
                Err(e) => e.render(ingress.dialect()),
            }
        }
    };
}

route!(openai_chat, Ingress::OpenAiChat);
route!(openai_completions, Ingress::OpenAiCompletions);
route!(openai_responses, Ingress::Responses);
route!(anthropic_messages, Ingress::Anthropic);
route!(ollama_chat, Ingress::OllamaChat);
route!(ollama_generate, Ingress::OllamaGenerate);

async fn generate(
    ingress: Ingress,
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    client: &awc::Client,
) -> Result<HttpResponse, RouterError> {
    let started = Instant::now();
    let s = &state.settings;
    let body = read_body(req, payload, s.max_body).await?;
    let raw = RawObject::parse(&body)?;
    let model = raw.required_str("model")?;
    let stream = raw
        .field::<bool>("stream", "true or false")?
        .unwrap_or(ingress.default_stream());
    if raw
        .field::<bool>("anonymize", "true or false")?
        .unwrap_or(false)
    {
        // Fail closed: never send a payload upstream unmasked when masking was asked for.
        return Err(RouterError::bad_request(
            "\"anonymize\": masking is not available in this build; the request was not sent",
            Some("anonymize"),
        ));
    }
    ingress.validate(&raw)?;
    // Read into the canonical model at most once, and only if some provider needs it.
    let canonical: RefCell<Option<Request>> = RefCell::new(None);
    let canonical_for = |p: &ProviderConfig| -> Result<Outgoing, RouterError> {
        let wire = Wire::of(p.api_type);
        let mut slot = canonical.borrow_mut();
        if slot.is_none() {
            let mut c = ingress.read(&body)?;
            c.stream = stream;
            *slot = Some(c);
        }
        Ok(write_request(wire, slot.as_ref().expect("set above"), p))
    };
    let build = |p: &ProviderConfig| -> Result<Outgoing, RouterError> {
        match ingress.native_path(Wire::of(p.api_type)) {
            Some(path) => {
                let upstream_model =
                    serde_json::to_string(p.upstream_model(&model)).unwrap_or_default();
                let mut drop: Vec<&str> = ROUTER_FIELDS.to_vec();
                if !p.tool_calling {
                    drop.extend_from_slice(TOOL_FIELDS);
                }
                Ok(Outgoing {
                    path,
                    body: raw.to_bytes(&[("model", &upstream_model)], &drop),
                })
            }
            None => canonical_for(p),
        }
    };
    let rid = request_id(req);
    let spec = CallSpec {
        model: &model,
        stream,
        request_id: &rid,
        build: &build,
        started,
        request_deadline: s.request_timeout.map(|t| started + t),
        external_timeout: s.external_timeout,
    };
    let committed = upstream::call(client, &state.registry, state.metrics.as_ref(), &spec).await?;
    let wire = Wire::of(committed.lease.provider().api_type);
    if ingress.native_path(wire).is_some() {
        return Ok(passthrough(committed, state, &spec, ingress.error_frame()));
    }
    let canonical = canonical
        .borrow_mut()
        .take()
        .ok_or_else(|| RouterError::Internal("converted request was not built".into()))?;
    convert(committed, state, &spec, ingress, wire, canonical).await
}

fn routed_headers(
    res: &mut actix_web::HttpResponseBuilder,
    c: &Committed,
    spec: &CallSpec<'_>,
    stream: bool,
) {
    res.insert_header(("x-llm-router-provider", c.lease.provider().id.as_str()));
    res.insert_header(("x-llm-router-model", spec.model));
    if stream {
        res.insert_header((header::CACHE_CONTROL, "no-cache"));
        res.insert_header(("x-accel-buffering", "no"));
        // Never let a compression layer hold frames back.
        res.insert_header((header::CONTENT_ENCODING, "identity"));
    }
}

fn limits(c: &Committed, state: &AppState, spec: &CallSpec<'_>) -> BodyLimits {
    let s = &state.settings;
    BodyLimits {
        idle: c.lease.provider().timeout.unwrap_or(s.external_timeout),
        deadline: spec.request_deadline,
        heartbeat: s.heartbeat,
    }
}

/// Sends the provider's response on unchanged, holding the lease until the body is done.
pub fn passthrough(
    c: Committed,
    state: &AppState,
    spec: &CallSpec<'_>,
    error_frame: ErrorFrame,
) -> HttpResponse {
    let ct = c.content_type.as_ref().and_then(|v| v.to_str().ok());
    let anthropic = c.lease.provider().api_type == ApiType::Anthropic;
    let framing = Framing::of(ct, c.content_length, anthropic);
    let status = StatusCode::from_u16(c.status.as_u16()).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    routed_headers(&mut res, &c, spec, framing.is_stream());
    match &c.content_type {
        Some(ct) => res.insert_header((header::CONTENT_TYPE, ct.clone())),
        None => res.insert_header((header::CONTENT_TYPE, "application/json")),
    };
    let limits = limits(&c, state, spec);
    let len = c.content_length;
    let mode = Mode::Pass {
        framing,
        error_frame,
    };
    let body = LeaseBody::new(
        c.lease,
        c.first,
        c.rest,
        mode,
        limits,
        state.metrics.clone(),
    );
    match (framing, len) {
        (Framing::Whole { .. }, Some(len)) => res.body(SizedStream::new(len, body)),
        _ => res.streaming(body),
    }
}

/// Largest provider answer buffered for a non-stream conversion.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Reads the rest of a provider's answer (idle-bounded), settling the lease's outcome.
pub async fn read_whole(
    mut c: Committed,
    state: &AppState,
    spec: &CallSpec<'_>,
) -> Result<(Committed, Bytes), RouterError> {
    let idle = limits(&c, state, spec).idle;
    let mut buf = BytesMut::from(&c.first[..]);
    let failed = loop {
        let next = match spec.request_deadline {
            Some(d) => idle.min(d.saturating_duration_since(Instant::now())),
            None => idle,
        };
        match tokio::time::timeout(next, c.rest.next()).await {
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > MAX_ANSWER {
                    break Some((
                        FailureKind::Body,
                        "the answer is too large to convert".to_string(),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break None,
            Ok(Some(Err(e))) => break Some((FailureKind::Body, format!("connection broke ({e})"))),
            Err(_) => {
                break Some((
                    FailureKind::Timeout,
                    format!("no data for {:.1}s", next.as_secs_f64()),
                ))
            }
        }
    };
    if let Some((kind, why)) = failed {
        let provider = c.lease.provider().id.clone();
        tracing::warn!(provider = %provider, "provider failed mid-response: {why}");
        c.lease.set_outcome(Outcome::Failure(kind));
        if let Some(m) = &state.metrics {
            m.observe_call(&c.lease);
        }
        return Err(RouterError::UpstreamFailed {
            model: spec.model.to_string(),
            attempts: vec![crate::errors::Attempt {
                provider,
                reason: match kind {
                    FailureKind::Timeout => crate::errors::AttemptFailure::Timeout(idle),
                    _ => crate::errors::AttemptFailure::Body,
                },
            }],
        });
    }
    Ok((c, buf.freeze()))
}

/// Converts the provider's answer into the client's dialect (stream frame by frame, or whole).
async fn convert(
    c: Committed,
    state: &AppState,
    spec: &CallSpec<'_>,
    ingress: Ingress,
    wire: Wire,
    req: Request,
) -> Result<HttpResponse, RouterError> {
    let ct = c.content_type.as_ref().and_then(|v| v.to_str().ok());
    let upstream_streams = Framing::of(ct, c.content_length, wire == Wire::Anthropic).is_stream();
    let mut res = HttpResponse::Ok();
    routed_headers(&mut res, &c, spec, req.stream);
    if req.stream && upstream_streams {
        res.insert_header((header::CONTENT_TYPE, ingress.stream_content_type()));
        let limits = limits(&c, state, spec);
        let mode = Mode::Convert {
            decoder: decoder(wire),
            encoder: ingress.encoder(&req),
        };
        let body = LeaseBody::new(
            c.lease,
            c.first,
            c.rest,
            mode,
            limits,
            state.metrics.clone(),
        );
        return Ok(res.streaming(body));
    }
    let started = spec.started;
    let (mut c, bytes) = read_whole(c, state, spec).await?;
    // A provider that streamed although asked not to: collect its events.
    let answer = if upstream_streams {
        let mut d = decoder(wire);
        let mut events = Vec::new();
        d.feed(&bytes, &mut events);
        let mut col = crate::dialects::canonical::Collector::default();
        events.iter().for_each(|e| col.push(e));
        match (d.finished(), col.response) {
            (true, Some(r)) => Ok(r),
            _ => Err("the stream ended before its final frame".to_string()),
        }
    } else {
        read_answer(wire, &bytes)
    };
    let answer = match answer {
        Ok(a) => a,
        Err(why) => {
            c.lease.set_outcome(Outcome::Failure(FailureKind::Body));
            if let Some(m) = &state.metrics {
                m.observe_call(&c.lease);
            }
            let provider = c.lease.provider().id.clone();
            tracing::warn!(provider = %provider, "unreadable answer: {why}");
            return Err(RouterError::UpstreamFailed {
                model: spec.model.to_string(),
                attempts: vec![crate::errors::Attempt {
                    provider,
                    reason: crate::errors::AttemptFailure::Body,
                }],
            });
        }
    };
    c.lease.set_outcome(Outcome::Success);
    if let Some(m) = &state.metrics {
        m.observe_call(&c.lease);
    }
    if req.stream {
        // The client asked for a stream but the provider answered whole: replay it as one.
        let mut enc = ingress.encoder(&req);
        let mut out = BytesMut::new();
        for e in events_of(&answer) {
            enc.encode(&e, &mut out);
        }
        res.insert_header((header::CONTENT_TYPE, ingress.stream_content_type()));
        return Ok(res.body(out.freeze()));
    }
    let v = ingress.write_response(&answer, &req, started.elapsed());
    res.insert_header((header::CONTENT_TYPE, "application/json"));
    Ok(res.body(v.to_string()))
}

/// Runs a request the router built itself (the built-in endpoints, `handlers/builtin.rs`) the way
/// a converted OpenAI chat request runs: on any provider type, with failover, the answer as
/// OpenAI chat JSON, or as OpenAI chat SSE when `req.stream`.
pub async fn run_canonical(
    state: &AppState,
    client: &awc::Client,
    request_id: &str,
    started: Instant,
    req: Request,
) -> Result<HttpResponse, RouterError> {
    let s = &state.settings;
    let build = |p: &ProviderConfig| -> Result<Outgoing, RouterError> {
        Ok(write_request(Wire::of(p.api_type), &req, p))
    };
    let spec = CallSpec {
        model: &req.model,
        stream: req.stream,
        request_id,
        build: &build,
        started,
        request_deadline: s.request_timeout.map(|t| started + t),
        external_timeout: s.external_timeout,
    };
    let committed = upstream::call(client, &state.registry, state.metrics.as_ref(), &spec).await?;
    let wire = Wire::of(committed.lease.provider().api_type);
    convert(
        committed,
        state,
        &spec,
        Ingress::OpenAiChat,
        wire,
        req.clone(),
    )
    .await
}
