//! Starts the real router (`llm_router::run`) on 127.0.0.1:0 in a thread with its own actix System.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use llm_router::Settings;
use serde_json::Value;

pub struct Router {
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Router {
    /// Starts a router with this models config and these extra `LLM_ROUTER_*` variables.
    pub fn start(models: &Value, env: &[(&str, &str)]) -> Router {
        Router::start_with(models, env, |_| {})
    }

    /// Like `start`, letting the test adjust settings that have no variable (e.g. heartbeat).
    pub fn start_with(
        models: &Value,
        env: &[(&str, &str)],
        adjust: impl FnOnce(&mut Settings),
    ) -> Router {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models-config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(models).unwrap()).unwrap();
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert(
            "LLM_ROUTER_MODELS_CONFIG".into(),
            path.display().to_string(),
        );
        vars.insert("LLM_ROUTER_SERVER_WORKERS_COUNT".into(), "2".into());
        // The config history of reloads goes with the test's files, not into the repository.
        vars.insert(
            "LLM_ROUTER_STATE_DIR".into(),
            dir.path().join("state").display().to_string(),
        );
        // Probes would show up in the fakes' request logs; tests of the monitor turn it on.
        vars.insert(
            "LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS".into(),
            "0".into(),
        );
        for (k, v) in env {
            vars.insert(k.to_string(), v.to_string());
        }
        let mut settings =
            Settings::from_vars(&vars).unwrap_or_else(|e| panic!("settings: {e:#?}"));
        settings.shutdown_grace = Duration::from_secs(1);
        adjust(&mut settings);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = llm_router::run(listener, settings)
                    .await
                    .expect("router starts");
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            });
        });
        let handle = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("router started");
        Router {
            addr,
            handle,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs the standard chat body for `model` to `/v1/chat/completions`.
    pub async fn chat(&self, model: &str, stream: bool) -> awc::ClientResponse {
        super::client()
            .post(self.url("/v1/chat/completions"))
            .send_json(&super::chat_body(model, stream))
            .await
            .unwrap()
    }

    /// The `/health` document.
    pub async fn health(&self) -> Value {
        let mut res = super::client()
            .get(self.url("/health"))
            .send()
            .await
            .unwrap();
        res.json::<Value>().limit(1 << 20).await.unwrap()
    }

    /// In-flight count of one provider, as `/health` reports it.
    pub async fn in_flight(&self, provider: &str) -> u64 {
        self.provider_status(provider).await["in_flight"]
            .as_u64()
            .unwrap()
    }

    pub async fn provider_status(&self, provider: &str) -> Value {
        let h = self.health().await;
        for m in h["models"].as_array().unwrap() {
            for p in m["providers"].as_array().unwrap() {
                if p["id"] == provider {
                    return p.clone();
                }
            }
        }
        panic!("provider {provider} not in /health: {h}");
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        futures_executor::block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
