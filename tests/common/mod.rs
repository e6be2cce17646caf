//! Shared helpers for the integration tests: a real router on an ephemeral port (in its own actix
//! System, like a real process), config builders, and an HTTP client.

#![allow(dead_code)]

pub mod redis_server;
pub mod router;

use std::time::{Duration, Instant};

pub use fake_llm::{FakeConfig, FakeUpstream, Fault};
pub use redis_server::{MonitorLine, RedisServer};
pub use router::Router;
use serde_json::{json, Value};

/// A client for talking to the router (no timeouts shorter than the tests' own).
pub fn client() -> awc::Client {
    llm_router::relay::client::install_crypto();
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// One provider entry for `models-config.json`.
pub fn provider(id: &str, upstream: &FakeUpstream) -> Value {
    json!({"id": id, "api_host": upstream.url(), "api_type": "vllm", "api_token": "", "model_path": "",
           "weight": 1.0, "keep_alive": null, "tool_calling": true})
}

/// A config with one group holding `models` (name → providers), all active.
pub fn models_config(models: &[(&str, Vec<Value>)]) -> Value {
    let mut group = serde_json::Map::new();
    for (name, providers) in models {
        group.insert(
            name.to_string(),
            json!({"providers": providers, "providers_sleep": []}),
        );
    }
    let names: Vec<&str> = models.iter().map(|(n, _)| *n).collect();
    json!({"test_models": group, "active_models": {"test_models": names}})
}

/// One fake provider "a" serving model "m", and a router in front of it.
pub fn single(fake: FakeConfig, env: &[(&str, &str)]) -> (FakeUpstream, Router) {
    let up = FakeUpstream::start(fake);
    let r = Router::start(&models_config(&[("m", vec![provider("a", &up)])]), env);
    (up, r)
}

pub fn chat_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}], "stream": stream})
}

/// Polls `f` until it returns true or `within` passes; returns the last answer.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Splits an SSE body into its `data:` payloads.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|frame| {
            let lines: Vec<&str> = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data:").map(|d| d.trim_start()))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}
