//! A fake OpenAI-compatible LLM server (vLLM / OpenAI wire format) for tests and benchmarks.
//!
//! Faithful to the Chat Completions wire format: a `chat.completion` object, or a
//! `text/event-stream` of `chat.completion.chunk` frames (role frame, one frame per token, a
//! finish frame, an optional usage frame, `data: [DONE]`). It can delay, fail with a status,
//! hang, stall before the first token and cut a stream, and it counts requests that are still
//! active or were dropped by the client — how tests prove the router cancelled an upstream call.

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
    pub fault: Fault,
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    pub require_bearer: Option<String>,
    /// Ids listed by `GET /v1/models`.
    pub models: Vec<String>,
}

impl Default for FakeConfig {
    fn default() -> FakeConfig {
        FakeConfig {
            name: "fake".into(),
            latency: Duration::ZERO,
            chunks: 4,
            chunk_delay: Duration::ZERO,
            fault: Fault::None,
            require_bearer: None,
            models: vec!["fake-model".into()],
        }
    }
}

/// Faults apply to chat completions only; listings and `/health` always answer.
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
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// `Null` when the body is not JSON.
    pub body: Value,
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
    config: Mutex<FakeConfig>,
    requests: Mutex<Vec<RecordedRequest>>,
    active: AtomicUsize,
    cancelled: AtomicUsize,
    next_id: AtomicU64,
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
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            config: Mutex::new(cfg),
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
        self.shared.config.lock().unwrap().fault = fault;
    }

    pub fn set_config(&self, cfg: FakeConfig) {
        *self.shared.config.lock().unwrap() = cfg;
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

/// Serves on `listener` in the current actix System (for the `fake-llm` binary).
pub fn serve(listener: TcpListener, cfg: FakeConfig, workers: usize) -> std::io::Result<Server> {
    let shared = Arc::new(Shared {
        config: Mutex::new(cfg),
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
    });
}

fn openai_error(status: u16, message: &str, kind: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}}))
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

async fn chat(shared: web::Data<Arc<Shared>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut guard = Guard::new(&shared);
    record(&shared, &req, &body);
    let cfg = shared.config.lock().unwrap().clone();
    let name = cfg.name.clone();
    let mut res = respond(&shared, &req, &body, cfg, &mut guard).await;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&name) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-fake-upstream"),
            v,
        );
    }
    res
}

async fn respond(
    shared: &Shared,
    req: &HttpRequest,
    body: &[u8],
    cfg: FakeConfig,
    guard: &mut Guard,
) -> HttpResponse {
    if let Some(tok) = &cfg.require_bearer {
        let ok = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {tok}"));
        if !ok {
            guard.finished = true;
            return openai_error(401, "Incorrect API key provided", "invalid_request_error");
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        guard.finished = true;
        return openai_error(
            400,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
        );
    };
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
            let kind = if *code == 429 {
                "rate_limit_exceeded"
            } else if *code >= 500 {
                "server_error"
            } else {
                "invalid_request_error"
            };
            let mut res = openai_error(*code, message, kind);
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
    let reply = Reply::new(&request, &cfg, shared.next_id.fetch_add(1, SeqCst));
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let frames: Vec<Bytes> = if stream {
        reply.sse_frames(include_usage)
    } else {
        vec![Bytes::from(reply.completion().to_string())]
    };
    let (first_delay, cut) = match cfg.fault {
        Fault::SlowFirstToken(d) => (d, None),
        Fault::CutMidStream { after_chunks } => (Duration::ZERO, Some(after_chunks)),
        _ => (Duration::ZERO, None),
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
        first_delay,
        timer: None,
        cut: if stream { cut } else { cut.map(|_| 1) },
        guard: None,
    };
    // From here the body's guard tracks the request; the handler's own is done.
    guard.finished = true;
    let mut res = HttpResponse::Ok();
    if stream {
        res.content_type("text/event-stream")
            .insert_header(("cache-control", "no-cache"));
    } else {
        res.content_type("application/json");
        if cut.is_none() && first_delay.is_zero() {
            // The common case, like a real server: a sized JSON body.
            return res.body(body.frames[0].clone());
        }
    }
    res.streaming(FrameStream {
        guard: Some(Guard::new(&guard.shared)),
        ..body
    })
}

struct Reply {
    id: String,
    model: String,
    created: u64,
    tokens: Vec<String>,
    finish: &'static str,
    prompt_tokens: usize,
}

impl Reply {
    fn new(request: &Value, cfg: &FakeConfig, n: u64) -> Reply {
        let max = request
            .get("max_completion_tokens")
            .or_else(|| request.get("max_tokens"))
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        let count = max.map_or(cfg.chunks, |m| m.min(cfg.chunks));
        let prompt_tokens = request
            .get("messages")
            .and_then(Value::as_array)
            .map_or(0, |ms| {
                ms.iter()
                    .filter_map(|m| m.get("content").and_then(Value::as_str))
                    .map(|c| c.split_whitespace().count())
                    .sum()
            });
        Reply {
            id: format!("chatcmpl-fake{n:08x}{:x}", now_secs()),
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            created: now_secs(),
            tokens: (0..count).map(|i| format!("t{i} ")).collect(),
            finish: if count < cfg.chunks { "length" } else { "stop" },
            prompt_tokens,
        }
    }

    fn usage(&self) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": self.tokens.len(),
               "total_tokens": self.prompt_tokens + self.tokens.len()})
    }

    fn completion(&self) -> Value {
        json!({
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.tokens.concat()},
                         "logprobs": null, "finish_reason": self.finish}],
            "usage": self.usage(),
        })
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        let v = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                       "model": self.model,
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        Bytes::from(format!("data: {v}\n\n"))
    }

    fn sse_frames(&self, include_usage: bool) -> Vec<Bytes> {
        let mut out = vec![self.chunk(json!({"role": "assistant", "content": ""}), None)];
        out.extend(
            self.tokens
                .iter()
                .map(|t| self.chunk(json!({"content": t}), None)),
        );
        out.push(self.chunk(json!({}), Some(self.finish)));
        if include_usage {
            let v = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model, "choices": [], "usage": self.usage()});
            out.push(Bytes::from(format!("data: {v}\n\n")));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }
}

struct FrameStream {
    frames: Vec<Bytes>,
    next: usize,
    delay: Duration,
    first_delay: Duration,
    timer: Option<Pin<Box<actix_rt::time::Sleep>>>,
    cut: Option<usize>,
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
        if this.next >= this.frames.len() {
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
