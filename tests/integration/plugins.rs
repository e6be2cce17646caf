//! The plugin services of SPEC §6 (`pii_masker`, `nask_guard`, `sojka_guard`), faked: a real
//! HTTP server answering in the services' shapes, or failing in each way a service can.

use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// How the fake answers its plugin endpoint (its `/api/ping` is separate: `ping_up`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Guards: unsafe when the text contains "bomb"; pii: masks "Kowalski".
    Faithful,
    Status500,
    /// Answers after 5 s.
    Hang,
    BadJson,
    /// 200 with JSON of the wrong shape (`{"ok": true}`).
    WrongShape,
    /// pii_masker only: the original's failure mode, an empty payload.
    EmptyPayload,
}

struct State {
    mode: Mode,
    ping_up: bool,
    pings: usize,
    /// Bodies POSTed to the plugin endpoints, with their path.
    calls: Vec<(String, Value)>,
}

pub struct Plugins {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn mask(v: &mut Value) {
    match v {
        Value::String(s) => *s = s.replace("Kowalski", "{NAME_1}"),
        Value::Array(a) => a.iter_mut().for_each(mask),
        Value::Object(m) => m.values_mut().for_each(mask),
        _ => {}
    }
}

async fn plugin(
    req: actix_web::HttpRequest,
    body: web::Bytes,
    st: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let path = req.path().to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mode = {
        let mut s = st.lock().unwrap();
        s.calls.push((path.clone(), body.clone()));
        s.mode
    };
    match mode {
        Mode::Status500 => return HttpResponse::InternalServerError().body("boom"),
        Mode::Hang => actix_rt::time::sleep(Duration::from_secs(5)).await,
        Mode::BadJson => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body("{\"results\": {\"safe\": tr")
        }
        Mode::WrongShape => return HttpResponse::Ok().json(json!({"ok": true})),
        Mode::EmptyPayload => {
            return HttpResponse::Ok().json(json!({"anonymized": "", "mappings": {}}))
        }
        Mode::Faithful => {}
    }
    if path == "/api/maskers/pii" {
        let mut anonymized = body;
        mask(&mut anonymized);
        return HttpResponse::Ok()
            .json(json!({"anonymized": anonymized, "mappings": {"{NAME_1}": "Kowalski"}}));
    }
    let text = body["text"].as_str().unwrap_or_default();
    let safe = !text.contains("bomb");
    let label = if safe { "safe" } else { "crime" };
    HttpResponse::Ok().json(json!({"results": {"safe": safe, "detailed": [
        {"chunk_index": 0, "chunk_text": text, "label": label, "safe": safe, "score": 0.98}]}}))
}

async fn ping(st: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let mut s = st.lock().unwrap();
    s.pings += 1;
    if s.ping_up {
        HttpResponse::Ok().json(json!({"response": "pong"}))
    } else {
        HttpResponse::ServiceUnavailable().finish()
    }
}

impl Plugins {
    pub fn start(mode: Mode) -> Plugins {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            mode,
            ping_up: true,
            pings: 0,
            calls: Vec::new(),
        }));
        let s = state.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(s.clone()))
                        .route("/api/ping", web::get().to(ping))
                        .route("/api/maskers/pii", web::post().to(plugin))
                        .route("/api/guardrails/{name}", web::post().to(plugin))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .listen(listener)
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            });
        });
        let handle = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Plugins {
            addr,
            state,
            handle,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_ping_up(&self, up: bool) {
        self.state.lock().unwrap().ping_up = up;
    }

    pub fn pings(&self) -> usize {
        self.state.lock().unwrap().pings
    }

    /// Bodies POSTed to `path`.
    pub fn calls(&self, path: &str) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.calls
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

impl Drop for Plugins {
    fn drop(&mut self) {
        futures_executor::block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
