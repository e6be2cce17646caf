//! A fake LLM server for tests and benchmarks, faithful to every provider wire format the router
//! speaks (see `wire.rs` for the frames):
//!
//! - OpenAI / vLLM: `POST /v1/chat/completions` (`chat.completion` or `chat.completion.chunk`
//!   frames: role, one per token, finish, optional usage, `data: [DONE]`; tool calls),
//!   `POST /v1/completions` (legacy `text_completion`), `POST /v1/embeddings`, `GET /v1/models`,
//!   `GET /health`.
//! - Ollama: `POST /api/chat`, `POST /api/generate` (NDJSON unless `"stream": false`, last line
//!   `"done": true` with counts and durations), `POST /api/embed`, `POST /api/embeddings`,
//!   `GET /api/tags`, `POST /api/show`, `GET /api/version`, `GET /`.
//! - Anthropic: `POST /v1/messages` (rejects a request without `x-api-key` — 401
//!   `authentication_error` — or without `anthropic-version` or `max_tokens` — 400
//!   `invalid_request_error`; the full event sequence when streaming; `tool_use` blocks).
//!
//! Every generation endpoint honours the same latency, chunk count, chunk delay and faults (an
//! error status in the endpoint's own error shape with `Retry-After`, hang, slow first token, cut
//! mid-stream), and the fake counts requests that are still active or were dropped by the client
//! — how tests prove the router cancelled an upstream call. With `tool_arguments` set, a request
//! that offers tools gets a call to its first tool with those arguments (until the tool answered).
//! With `prefix_cache` set, a generation's time to first token grows with the prompt tokens this
//! instance has not cached yet (`prefix_cache.rs`), which the cache-affinity benchmark measures.
//! Ollama generations load their model into a modelled memory (`GET /api/ps`, unload with
//! `keep_alive: 0`, an over-capacity load failing as Ollama's does: `vram.rs`).

#![forbid(unsafe_code)]

use std::future::Future as _;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::{json, Value};

pub mod golden;
mod prefix_cache;
pub mod vram;
mod wire;

pub use prefix_cache::{prompt_blocks, Block, Lookup, PrefixCache, PrefixCacheModel};
use wire::Reply;
pub use wire::{embedding, prefill_of, Kind};

#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Echoed in `x-fake-upstream` on every chat-completions response.
    pub name: String,
    /// Delay before the response head.
    pub latency: Duration,
    /// Tokens in the reply; token i is `"t{i} "`.
    pub chunks: usize,
    /// Delay between stream frames.
    pub chunk_delay: Duration,
    /// Delay between a stream's last frame and the end of its body (the chunked terminator).
    pub end_delay: Duration,
    pub fault: Fault,
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    pub require_bearer: Option<String>,
    /// Ids listed by `GET /v1/models` and `GET /api/tags`.
    pub models: Vec<String>,
    /// When set, a request offering tools gets a call to its first tool with these arguments.
    pub tool_arguments: Option<Value>,
    /// When set, Anthropic requests must carry `x-api-key: <this>` (any non-empty key otherwise).
    pub require_api_key: Option<String>,
    /// Answer with the words of the last user text (one token per word).
    pub echo: bool,
    /// When set, prefill time for uncached prompt tokens is added before the response, and the
    /// response carries `x-fake-cached-tokens` / `x-fake-uncached-tokens`. Off by default.
    pub prefix_cache: Option<PrefixCacheModel>,
    /// The fault hits only this many generation requests, then the fake answers normally (a
    /// transient failure); `None`: every request.
    pub fault_times: Option<usize>,
    /// Refuse a prefilled request (a trailing assistant turn, `continue_final_message`) with 400,
    /// as a server without prefill support does.
    pub reject_prefill: bool,
    /// Ollama model memory in bytes: a load that does not fit fails (500, Ollama's message).
    /// `None`: unlimited (models are still listed by `/api/ps` once used).
    pub vram_capacity: Option<u64>,
    /// Model sizes in bytes (`/api/tags` `size`, `/api/ps` `size_vram`); others are
    /// [`vram::DEFAULT_SIZE`].
    pub model_sizes: Vec<(String, u64)>,
}

impl FakeConfig {
    /// The size of `model` (see [`FakeConfig::model_sizes`]).
    pub fn model_size(&self, model: &str) -> u64 {
        self.model_sizes
            .iter()
            .find(|(m, _)| m == model)
            .map_or(vram::DEFAULT_SIZE, |(_, n)| *n)
    }
}

impl Default for FakeConfig {
    fn default() -> FakeConfig {
        FakeConfig {
            name: "fake".into(),
            latency: Duration::ZERO,
            chunks: 4,
            chunk_delay: Duration::ZERO,
            end_delay: Duration::ZERO,
            fault: Fault::None,
            require_bearer: None,
            models: vec!["fake-model".into()],
            tool_arguments: None,
            require_api_key: None,
            echo: false,
            prefix_cache: None,
            fault_times: None,
            reject_prefill: false,
            vram_capacity: None,
            model_sizes: Vec::new(),
        }
    }
}

/// Faults apply to every generation and embedding endpoint; listings and `/health` always answer.
#[derive(Clone, Debug)]
pub enum Fault {
    None,
    /// This status with an OpenAI-shaped error body, plus `Retry-After` when given.
    Status {
        code: u16,
        message: String,
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Head at once; the first body bytes only after this delay.
    SlowFirstToken(Duration),
    /// Send this many frames (the role frame counts), then abort the connection mid-body.
    CutMidStream {
        after_chunks: usize,
    },
    /// An OpenAI-wire stream that ends after its final chunk without `data: [DONE]` (some
    /// servers do; the answer is complete).
    NoDoneFrame,
    /// Send this many frames (the role frame counts), then nothing more, never ending the body.
    StallAfter {
        after_chunks: usize,
    },
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// `Null` when the body is not JSON.
    pub body: Value,
    /// The client's TCP port: requests with the same port came over the same connection.
    pub peer_port: u16,
    /// When the request arrived (for tests of the spacing between requests).
    pub received: std::time::Instant,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    /// Shared, not copied, by each request (an `Arc` clone instead of its strings').
    config: Mutex<Arc<FakeConfig>>,
    /// Whether requests are kept for [`FakeUpstream::requests`]: a standalone server ([`serve`])
    /// has no one to read them, and under benchmark load the list grew without bound.
    record: bool,
    requests: Mutex<Vec<RecordedRequest>>,
    /// The standalone server's last answer, to answer the same request again by copy.
    template: Mutex<Option<Template>>,
    active: AtomicUsize,
    cancelled: AtomicUsize,
    /// Generation requests that met the fault so far (for `FakeConfig::fault_times`).
    faulted: AtomicUsize,
    next_id: AtomicU64,
    /// Built on first use from `FakeConfig::prefix_cache` (again if its capacity changes).
    prefix_cache: Mutex<Option<PrefixCache>>,
    cached_tokens: AtomicU64,
    uncached_tokens: AtomicU64,
    /// Ollama models loaded (`/api/ps`).
    memory: Mutex<vram::Memory>,
}

impl Shared {
    /// Looks the prompt up in this instance's prefix cache, if the config models one.
    fn prefill(
        &self,
        model: Option<PrefixCacheModel>,
        request: &Value,
    ) -> Option<(Lookup, Duration)> {
        let model = model?;
        let blocks = prompt_blocks(request);
        let lookup = {
            let mut cache = self.prefix_cache.lock().unwrap();
            if cache
                .as_ref()
                .is_none_or(|c| c.capacity_tokens() != model.capacity_tokens)
            {
                *cache = Some(PrefixCache::new(model.capacity_tokens));
            }
            cache.as_mut().expect("just built").serve(&blocks)
        };
        self.cached_tokens
            .fetch_add(lookup.cached_tokens as u64, SeqCst);
        self.uncached_tokens
            .fetch_add(lookup.uncached_tokens as u64, SeqCst);
        let delay = model
            .per_uncached_token
            .saturating_mul(u32::try_from(lookup.uncached_tokens).unwrap_or(u32::MAX));
        Some((lookup, delay))
    }
}

/// Counts a request as active until dropped; dropped before `finish()` means the client left.
struct Guard {
    shared: Arc<Shared>,
    finished: bool,
}

impl Guard {
    fn new(shared: &Arc<Shared>) -> Guard {
        shared.active.fetch_add(1, SeqCst);
        Guard {
            shared: shared.clone(),
            finished: false,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.cancelled.fetch_add(1, SeqCst);
        }
        self.shared.active.fetch_sub(1, SeqCst);
    }
}

pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    /// Starts on 127.0.0.1:0 in its own thread and actix System; returns once it accepts.
    pub fn start(cfg: FakeConfig) -> FakeUpstream {
        FakeUpstream::start_on(cfg, 0)
    }

    /// Like [`FakeUpstream::start`], on a chosen port of 127.0.0.1 (a provider coming back).
    pub fn start_on(cfg: FakeConfig, port: u16) -> FakeUpstream {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            config: Mutex::new(Arc::new(cfg)),
            record: true,
            ..Default::default()
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = build(listener, s, 1).expect("fake server");
                tx.send(server.handle()).expect("report handle");
                let _ = server.await;
            });
        });
        let handle = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake server started");
        FakeUpstream {
            addr,
            shared,
            handle,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_fault(&self, fault: Fault) {
        Arc::make_mut(&mut self.shared.config.lock().unwrap()).fault = fault;
    }

    pub fn set_config(&self, cfg: FakeConfig) {
        *self.shared.config.lock().unwrap() = Arc::new(cfg);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn active(&self) -> usize {
        self.shared.active.load(SeqCst)
    }

    pub fn cancelled(&self) -> usize {
        self.shared.cancelled.load(SeqCst)
    }

    /// Prompt tokens served from / not found in the prefix cache so far (both 0 when it is off).
    pub fn prefix_cache_tokens(&self) -> (u64, u64) {
        (
            self.shared.cached_tokens.load(SeqCst),
            self.shared.uncached_tokens.load(SeqCst),
        )
    }

    /// Ollama models loaded now (`/api/ps` order: load order).
    pub fn loaded_models(&self) -> Vec<String> {
        self.shared.memory.lock().unwrap().loaded()
    }

    /// Models unloaded by a `keep_alive: 0` request, in order.
    pub fn unloaded_models(&self) -> Vec<String> {
        self.shared.memory.lock().unwrap().unloaded()
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        futures_executor::block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Serves on `listener` in the current actix System (for the `fake-llm` binary), keeping no
/// record of the requests.
pub fn serve(listener: TcpListener, cfg: FakeConfig, workers: usize) -> std::io::Result<Server> {
    let shared = Arc::new(Shared {
        config: Mutex::new(Arc::new(cfg)),
        record: false,
        ..Default::default()
    });
    build(listener, shared, workers)
}

fn build(listener: TcpListener, shared: Arc<Shared>, workers: usize) -> std::io::Result<Server> {
    let data = web::Data::new(shared);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 << 20))
            .route("/v1/chat/completions", web::post().to(chat))
            .route("/chat/completions", web::post().to(chat))
            .route("/v1/completions", web::post().to(completions))
            .route("/v1/messages", web::post().to(messages))
            .route("/api/chat", web::post().to(ollama_chat))
            .route("/api/generate", web::post().to(ollama_generate))
            .route("/v1/embeddings", web::post().to(embeddings))
            .route("/api/embed", web::post().to(embeddings))
            .route("/api/embeddings", web::post().to(embeddings))
            .route("/api/tags", web::get().to(tags))
            .route("/api/ps", web::get().to(ps))
            .route("/api/show", web::post().to(show))
            .route("/api/version", web::get().to(version))
            .route("/v1/models", web::get().to(models))
            .route("/health", web::get().to(health))
            .route("/", web::get().to(root))
    })
    .workers(workers)
    .tcp_nodelay(true)
    .h1_allow_half_closed(false)
    .shutdown_timeout(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

fn record(shared: &Shared, req: &HttpRequest, body: &[u8]) {
    if !shared.record {
        return;
    }
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    shared.requests.lock().unwrap().push(RecordedRequest {
        method: req.method().to_string(),
        path: req.path().to_string(),
        headers,
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        peer_port: req.peer_addr().map_or(0, |a| a.port()),
        received: std::time::Instant::now(),
    });
}

fn error(kind: Kind, status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .json(kind.error_body(status, message))
}

async fn root(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    record(&shared, &req, b"");
    HttpResponse::Ok()
        .content_type("text/plain")
        .body("fake-llm is running")
}

async fn health(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    record(&shared, &req, b"");
    HttpResponse::Ok().finish()
}

async fn models(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    record(&shared, &req, b"");
    let cfg = shared.config.lock().unwrap().clone();
    let data: Vec<_> = cfg
        .models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": now_secs(), "owned_by": "fake"}))
        .collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data}))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn tags(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    record(&shared, &req, b"");
    let cfg = shared.config.lock().unwrap().clone();
    let models: Vec<_> = cfg
        .models
        .iter()
        .map(|m| {
            json!({"name": m, "model": m, "modified_at": "2026-11-01T10:00:00.000000001Z",
                        "size": cfg.model_size(m), "digest": format!("{:064x}", m.len()),
                        "details": {"parent_model": "", "format": "gguf", "family": "llama",
                                    "families": ["llama"], "parameter_size": "8B",
                                    "quantization_level": "Q4_K_M"}})
        })
        .collect();
    HttpResponse::Ok().json(json!({"models": models}))
}

async fn ps(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    record(&shared, &req, b"");
    let body = shared.memory.lock().unwrap().ps();
    HttpResponse::Ok().json(body)
}

async fn show(shared: web::Data<Arc<Shared>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    record(&shared, &req, &body);
    HttpResponse::Ok().json(
        json!({"modelfile": "FROM fake", "parameters": "", "template": "{{ .Prompt }}",
        "details": {"format": "gguf", "family": "llama"}, "model_info": {},
        "capabilities": ["completion", "tools"]}),
    )
}

async fn version(shared: web::Data<Arc<Shared>>, req: HttpRequest) -> HttpResponse {
    record(&shared, &req, b"");
    HttpResponse::Ok().json(json!({"version": "0.12.0"}))
}

/// Embeddings in the shape of the path asked: OpenAI list, Ollama `embeddings`, legacy `embedding`.
async fn embeddings(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    record(&shared, &req, &body);
    let cfg = shared.config.lock().unwrap().clone();
    let path = req.path().to_string();
    let kind = if path.starts_with("/api/") {
        Kind::OllamaChat
    } else {
        Kind::Chat
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(kind, 400, "invalid JSON body");
    };
    if !cfg.latency.is_zero() {
        actix_rt::time::sleep(cfg.latency).await;
    }
    if let Fault::Status { code, message, .. } = &cfg.fault {
        return error(kind, *code, message);
    }
    let model = request.get("model").cloned().unwrap_or(Value::Null);
    let texts: Vec<String> = match request.get(if path == "/api/embeddings" {
        "prompt"
    } else {
        "input"
    }) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect(),
        _ => return error(kind, 400, "input is required"),
    };
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    let vectors: Vec<Vec<f64>> = texts.iter().map(|t| embedding(t)).collect();
    let v = match path.as_str() {
        "/api/embed" => json!({"model": model, "embeddings": vectors, "total_duration": 1000,
                               "load_duration": 10, "prompt_eval_count": words}),
        "/api/embeddings" => json!({"embedding": vectors[0]}),
        _ => {
            let data: Vec<Value> = vectors
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e}))
                .collect();
            json!({"object": "list", "data": data, "model": model,
                   "usage": {"prompt_tokens": words, "total_tokens": words}})
        }
    };
    HttpResponse::Ok().json(v)
}

async fn chat(shared: web::Data<Arc<Shared>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    generate(Kind::Chat, shared, req, body).await
}

async fn completions(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    generate(Kind::Completions, shared, req, body).await
}

async fn messages(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    generate(Kind::Anthropic, shared, req, body).await
}

async fn ollama_chat(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    generate(Kind::OllamaChat, shared, req, body).await
}

async fn ollama_generate(
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    generate(Kind::OllamaGenerate, shared, req, body).await
}

async fn generate(
    kind: Kind,
    shared: web::Data<Arc<Shared>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let mut guard = Guard::new(&shared);
    record(&shared, &req, &body);
    let mut cfg = shared.config.lock().unwrap().clone();
    if let Some(times) = cfg.fault_times {
        if shared.faulted.fetch_add(1, SeqCst) >= times {
            Arc::make_mut(&mut cfg).fault = Fault::None;
        }
    }
    if matches!(kind, Kind::OllamaChat | Kind::OllamaGenerate) {
        if let Some(res) = ollama_memory(kind, &shared, &body, &cfg) {
            guard.finished = true;
            return res;
        }
    }
    let mut res = respond(kind, &shared, &req, &body, &cfg, &mut guard).await;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&cfg.name) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-fake-upstream"),
            v,
        );
    }
    res
}

/// An Ollama request's effect on the model memory: the unload request is answered here, a
/// load that does not fit fails here; `None` goes on to generate.
fn ollama_memory(
    kind: Kind,
    shared: &Shared,
    body: &[u8],
    cfg: &FakeConfig,
) -> Option<HttpResponse> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let model = request.get("model").and_then(Value::as_str)?;
    let mut memory = shared.memory.lock().unwrap();
    if vram::is_unload(kind, &request) {
        memory.unload(model);
        return Some(HttpResponse::Ok().json(vram::unload_reply(kind, model)));
    }
    match memory.load(model, cfg.model_size(model), cfg.vram_capacity) {
        Ok(()) => None,
        Err(message) => Some(error(kind, 500, &message)),
    }
}

/// Why an Anthropic request is refused before any work, as the real API does.
fn anthropic_refusal(
    req: &HttpRequest,
    request: &Value,
    cfg: &FakeConfig,
) -> Option<(u16, String)> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let key = header("x-api-key");
    if key.is_empty() {
        return Some((401, "x-api-key header is required".into()));
    }
    if cfg
        .require_api_key
        .as_deref()
        .is_some_and(|want| want != key)
    {
        return Some((401, "invalid x-api-key".into()));
    }
    if header("anthropic-version").is_empty() {
        return Some((400, "anthropic-version: header is required".into()));
    }
    if request.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Some((400, "max_tokens: Field required".into()));
    }
    None
}

async fn respond(
    kind: Kind,
    shared: &Shared,
    req: &HttpRequest,
    body: &[u8],
    cfg: &FakeConfig,
    guard: &mut Guard,
) -> HttpResponse {
    if let (Some(tok), false) = (&cfg.require_bearer, kind == Kind::Anthropic) {
        let ok = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {tok}"));
        if !ok {
            guard.finished = true;
            return error(kind, 401, "Incorrect API key provided");
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        guard.finished = true;
        return error(
            kind,
            400,
            "We could not parse the JSON body of your request.",
        );
    };
    if kind == Kind::Anthropic {
        if let Some((status, message)) = anthropic_refusal(req, &request, cfg) {
            guard.finished = true;
            return error(kind, status, &message);
        }
    }
    let prefill = wire::prefill_of(kind, &request);
    if let Some(p) = &prefill {
        if cfg.reject_prefill {
            guard.finished = true;
            return error(
                kind,
                400,
                "assistant prefill is not supported by this model",
            );
        }
        if kind == Kind::Anthropic && p.trim_end() != p {
            guard.finished = true;
            let m = "messages: final assistant content cannot end with trailing whitespace";
            return error(kind, 400, m);
        }
    }
    if !cfg.latency.is_zero() {
        actix_rt::time::sleep(cfg.latency).await;
    }
    match &cfg.fault {
        Fault::Status {
            code,
            message,
            retry_after,
        } => {
            guard.finished = true;
            let mut res = error(kind, *code, message);
            if let Some(s) = retry_after {
                res.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(*s),
                );
            }
            return res;
        }
        Fault::Hang => {
            actix_rt::time::sleep(Duration::from_secs(3600)).await;
            return HttpResponse::InternalServerError().finish();
        }
        _ => {}
    }
    let cached = shared.prefill(cfg.prefix_cache, &request);
    if let Some((_, delay)) = cached.filter(|(_, d)| !d.is_zero()) {
        actix_rt::time::sleep(delay).await;
    }
    let n = shared.next_id.fetch_add(1, SeqCst);
    let stream = kind.stream(&request);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let build = || {
        let mut reply = Reply::new(kind, &request, cfg.chunks, cfg.tool_arguments.as_ref(), n);
        if cfg.echo {
            reply.echo(&request);
        }
        if let Some(p) = &prefill {
            reply.continue_from(p);
        }
        let frames = if stream {
            let mut frames = reply.frames(include_usage);
            let done = |f: &Bytes| f.starts_with(b"data: [DONE]");
            if matches!(cfg.fault, Fault::NoDoneFrame) && frames.last().is_some_and(done) {
                frames.pop();
            }
            frames
        } else {
            vec![Bytes::from(reply.whole().to_string())]
        };
        (reply.created, frames)
    };
    // Tool calls carry the id in a second place; tests (recording) always build afresh.
    let fresh = shared.record || cfg.tool_arguments.is_some() || cfg.echo || prefill.is_some();
    let frames: Vec<Bytes> = if fresh {
        build().1
    } else {
        let key = (kind, cfg.chunks, body);
        let mut template = shared.template.lock().unwrap();
        match template.as_ref().and_then(|t| t.frames(key, now_secs(), n)) {
            Some(frames) => frames,
            None => {
                let (created, frames) = build();
                *template = Template::new(key, created, &frames, n);
                frames
            }
        }
    };
    let (first_delay, cut) = match cfg.fault {
        Fault::SlowFirstToken(d) => (d, None),
        Fault::CutMidStream { after_chunks } => (Duration::ZERO, Some(after_chunks)),
        _ => (Duration::ZERO, None),
    };
    let stall = match cfg.fault {
        Fault::StallAfter { after_chunks } => Some(after_chunks),
        _ => None,
    };
    // A non-stream body cut short: send a prefix of the JSON, then abort.
    let frames = match (stream, cut) {
        (false, Some(_)) => {
            let full = frames[0].clone();
            vec![full.slice(..full.len() / 2)]
        }
        _ => frames,
    };
    let body = FrameStream {
        frames,
        next: 0,
        delay: cfg.chunk_delay,
        end_delay: if stream {
            cfg.end_delay
        } else {
            Duration::ZERO
        },
        first_delay,
        timer: None,
        cut: if stream { cut } else { cut.map(|_| 1) },
        stall,
        guard: None,
    };
    // From here the body's guard tracks the request; the handler's own is done.
    guard.finished = true;
    let mut res = HttpResponse::Ok();
    if let Some((lookup, _)) = cached {
        res.insert_header(("x-fake-cached-tokens", lookup.cached_tokens))
            .insert_header(("x-fake-uncached-tokens", lookup.uncached_tokens));
    }
    if stream {
        res.content_type(kind.content_type(true))
            .insert_header(("cache-control", "no-cache"));
    } else {
        res.content_type("application/json");
        if cut.is_none() && stall.is_none() && first_delay.is_zero() {
            // The common case, like a real server: a sized JSON body.
            return res.body(body.frames[0].clone());
        }
    }
    res.streaming(FrameStream {
        guard: Some(Guard::new(&guard.shared)),
        ..body
    })
}

/// An answer's frames with the place of the id's counter digits in each (the id is
/// `<prefix>fake{n:08x}`), so the same request in the same second (a benchmark's) is answered by
/// copying them with the new counter instead of building and serialising the reply again: the
/// same bytes `Reply` gives (a test checks it), for a fraction of the standalone server's CPU.
struct Template {
    kind: Kind,
    chunks: usize,
    request: Vec<u8>,
    created: u64,
    frames: Vec<(Bytes, Option<usize>)>,
}

impl Template {
    /// `None` when an id is ambiguous in a frame (or the counter does not fit 8 digits).
    fn new(
        (kind, chunks, request): (Kind, usize, &[u8]),
        created: u64,
        frames: &[Bytes],
        n: u64,
    ) -> Option<Template> {
        if n > u64::from(u32::MAX) {
            return None;
        }
        let needle = format!("fake{n:08x}\"");
        let frames = frames
            .iter()
            .map(|f| {
                let mut at = f
                    .windows(needle.len())
                    .enumerate()
                    .filter(|(_, w)| *w == needle.as_bytes())
                    .map(|(i, _)| i + "fake".len());
                match (at.next(), at.next()) {
                    (first, None) => Some((f.clone(), first)),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Template {
            kind,
            chunks,
            request: request.to_vec(),
            created,
            frames,
        })
    }

    /// The frames for counter `n`, if this template answers that request at `now` (seconds).
    fn frames(
        &self,
        (kind, chunks, request): (Kind, usize, &[u8]),
        now: u64,
        n: u64,
    ) -> Option<Vec<Bytes>> {
        if kind != self.kind
            || chunks != self.chunks
            || now != self.created
            || request != self.request
            || n > u64::from(u32::MAX)
        {
            return None;
        }
        let digits = format!("{n:08x}");
        Some(
            self.frames
                .iter()
                .map(|(f, at)| match at {
                    None => f.clone(),
                    Some(i) => {
                        let mut v = f.to_vec();
                        v[*i..*i + 8].copy_from_slice(digits.as_bytes());
                        Bytes::from(v)
                    }
                })
                .collect(),
        )
    }
}

struct FrameStream {
    frames: Vec<Bytes>,
    next: usize,
    delay: Duration,
    end_delay: Duration,
    first_delay: Duration,
    timer: Option<Pin<Box<actix_rt::time::Sleep>>>,
    cut: Option<usize>,
    /// After this many frames nothing more comes (the body stays open).
    stall: Option<usize>,
    guard: Option<Guard>,
}

impl Stream for FrameStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.cut == Some(this.next) {
            // Let the frames sent so far reach the wire first, as they would from a real server
            // that dies mid-stream; then an error from the body makes actix abort the connection
            // without the terminating chunk.
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(Duration::from_millis(50))));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.timer = None;
            this.cut = None;
            return Poll::Ready(Some(Err(std::io::Error::other("fake: cut mid-stream"))));
        }
        if this.stall == Some(this.next) {
            // Never woken: the body stays open until the client gives up.
            return Poll::Pending;
        }
        if this.next >= this.frames.len() {
            if !this.end_delay.is_zero() {
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(this.end_delay)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.timer = None;
                this.end_delay = Duration::ZERO;
            }
            if let Some(g) = this.guard.as_mut() {
                g.finished = true;
            }
            this.guard = None;
            return Poll::Ready(None);
        }
        let wait = if this.next == 0 {
            this.first_delay
        } else {
            this.delay
        };
        if !wait.is_zero() {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(wait)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.timer = None;
        }
        let frame = this.frames[this.next].clone();
        this.next += 1;
        Poll::Ready(Some(Ok(frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    async fn chat(
        up: &FakeUpstream,
        messages: &[(&str, &str)],
    ) -> (Option<usize>, Option<usize>, Duration) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let messages: Vec<Value> = messages
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let t = Instant::now();
        let res = awc::Client::default()
            .post(format!("{}/v1/chat/completions", up.url()))
            .send_json(&json!({"model": "fake-model", "messages": messages}))
            .await
            .expect("fake answers");
        let elapsed = t.elapsed();
        assert_eq!(res.status(), 200);
        let header = |n: &str| {
            res.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().parse::<usize>().unwrap())
        };
        (
            header("x-fake-cached-tokens"),
            header("x-fake-uncached-tokens"),
            elapsed,
        )
    }

    #[actix_rt::test]
    async fn a_next_turn_is_fast_only_on_the_instance_that_served_the_conversation() {
        let model = PrefixCacheModel {
            per_uncached_token: Duration::from_micros(200),
            capacity_tokens: 100_000,
        };
        let cfg = FakeConfig {
            prefix_cache: Some(model),
            ..Default::default()
        };
        let (a, b) = (FakeUpstream::start(cfg.clone()), FakeUpstream::start(cfg));
        let system = "You are a careful assistant. ".repeat(100);
        let turn1 = [("system", system.as_str()), ("user", "hello")];
        let turn2 = [
            ("system", system.as_str()),
            ("user", "hello"),
            ("assistant", "t0 t1 t2 t3 "),
            ("user", "and then?"),
        ];
        let (cached, uncached, took) = chat(&a, &turn1).await;
        let first = uncached.expect("header");
        assert_eq!(cached, Some(0));
        assert!(first > 700, "{first}");
        // The prefill delay is a lower bound on the answer time.
        assert!(took >= model.per_uncached_token * first as u32, "{took:?}");

        // Only the two new messages are prefilled on the instance that served turn 1.
        let new_tokens: usize = turn2[2..]
            .iter()
            .map(|(role, content)| {
                json!({"role": role, "content": content})
                    .to_string()
                    .len()
                    .div_ceil(4)
            })
            .sum();
        let (cached, uncached, _) = chat(&a, &turn2).await;
        assert_eq!((cached, uncached), (Some(first), Some(new_tokens)));
        assert!(new_tokens * 20 < first, "{new_tokens} vs {first}");
        let (cached, uncached, took) = chat(&b, &turn2).await;
        assert_eq!(cached, Some(0));
        assert!(uncached.unwrap() > first);
        assert!(took >= model.per_uncached_token * uncached.unwrap() as u32);
        assert_eq!(a.prefix_cache_tokens().0, first as u64);
        assert_eq!(b.prefix_cache_tokens().0, 0);
    }

    #[actix_rt::test]
    async fn without_the_model_nothing_changes() {
        let up = FakeUpstream::start(FakeConfig::default());
        let (cached, uncached, _) = chat(&up, &[("user", "hi")]).await;
        assert_eq!((cached, uncached), (None, None));
        assert_eq!(up.prefix_cache_tokens(), (0, 0));
    }

    /// A template made from one answer gives, for another counter, the very bytes a fresh reply
    /// for that counter has (same second), for every id-carrying format, streamed or not.
    #[test]
    fn templates_give_the_bytes_a_fresh_reply_gives() {
        for (kind, request) in [
            (
                Kind::Chat,
                json!({"model": "m", "messages": [{"role": "user", "content": "a b"}]}),
            ),
            (
                Kind::Chat,
                json!({"model": "m", "messages": [], "stream": true, "max_tokens": 3,
                                "stream_options": {"include_usage": true}}),
            ),
            (
                Kind::Completions,
                json!({"model": "m", "prompt": "x", "stream": true}),
            ),
            (
                Kind::Anthropic,
                json!({"model": "m", "max_tokens": 9, "stream": true,
                                     "messages": [{"role": "user", "content": "hi"}]}),
            ),
            (
                Kind::Anthropic,
                json!({"model": "m", "max_tokens": 9, "messages": []}),
            ),
        ] {
            let body = request.to_string();
            let key = (kind, 5, body.as_bytes());
            let frames = |n: u64, created: Option<u64>| {
                let mut r = Reply::new(kind, &request, 5, None, n);
                r.created = created.unwrap_or(r.created);
                let f = if kind.stream(&request) {
                    r.frames(true)
                } else {
                    vec![Bytes::from(r.whole().to_string())]
                };
                (r.created, f)
            };
            let (created, first) = frames(3, None);
            let t = Template::new(key, created, &first, 3).expect("a template");
            assert_eq!(t.frames(key, created, 3).unwrap(), first, "{kind:?}");
            let (_, fresh) = frames(0xbeef, Some(created));
            assert_eq!(
                t.frames(key, created, 0xbeef).unwrap(),
                fresh,
                "{kind:?} {request}"
            );
            // Another request, another second or another token count: not this template's.
            assert!(t.frames((kind, 5, b"{}"), created, 4).is_none());
            assert!(t.frames(key, created + 1, 4).is_none());
            assert!(t.frames((kind, 6, body.as_bytes()), created, 4).is_none());
            assert!(t.frames(key, created, 1 << 32).is_none());
        }
    }
}
