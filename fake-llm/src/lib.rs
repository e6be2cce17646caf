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

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub mod fast;
pub mod golden;
mod prefix_cache;
mod respond;
pub mod vram;
mod wire;

pub use prefix_cache::{prompt_blocks, Block, Lookup, PrefixCache, PrefixCacheModel};
use respond::{respond, Template};
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

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
