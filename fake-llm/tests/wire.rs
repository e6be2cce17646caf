//! The fake provider's own wire format and knobs, checked over real sockets.

use std::time::{Duration, Instant};

use fake_llm::{FakeConfig, FakeUpstream, Fault};
use serde_json::{json, Value};

fn client() -> awc::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    awc::Client::default()
}

fn frames(body: &[u8]) -> Vec<String> {
    std::str::from_utf8(body)
        .unwrap()
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: ").map(String::from))
        .collect()
}

#[actix_rt::test]
async fn listings_health_and_auth() {
    let up = FakeUpstream::start(FakeConfig {
        name: "gpu-7".into(),
        require_bearer: Some("tok".into()),
        models: vec!["a".into(), "b".into()],
        ..Default::default()
    });
    let mut res = client()
        .get(format!("{}/v1/models", up.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("x-fake-upstream"),
        None,
        "listings are plain"
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1]["id"], "b");
    let res = client()
        .get(format!("{}/health", up.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json!({"model": "a", "messages": [{"role": "user", "content": "one two"}]});
    let mut res = client()
        .post(format!("{}/v1/chat/completions", up.url()))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers().get("x-fake-upstream").unwrap(), "gpu-7");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Incorrect API key provided");
    let mut res = client()
        .post(format!("{}/v1/chat/completions", up.url()))
        .bearer_auth("tok")
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6})
    );
    assert_eq!(up.request_count(), 4);
    assert_eq!(up.requests()[3].header("Authorization"), Some("Bearer tok"));
}

#[actix_rt::test]
async fn latency_max_tokens_and_usage_frame() {
    let up = FakeUpstream::start(FakeConfig {
        latency: Duration::from_millis(150),
        chunks: 6,
        ..Default::default()
    });
    let t0 = Instant::now();
    let body = json!({"model": "m", "messages": [], "stream": true, "max_tokens": 2,
                      "stream_options": {"include_usage": true}});
    let mut res = client()
        .post(format!("{}/v1/chat/completions", up.url()))
        .send_json(&body)
        .await
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "latency applies before the head"
    );
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let f = frames(&res.body().await.unwrap());
    assert_eq!(f.len(), 6, "role, 2 tokens, finish, usage, [DONE]: {f:?}");
    let finish: Value = serde_json::from_str(&f[3]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let usage: Value = serde_json::from_str(&f[4]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 2);
    assert_eq!(f[5], "[DONE]");
}

#[actix_rt::test]
async fn slow_first_token_sends_the_head_first() {
    let up = FakeUpstream::start(FakeConfig {
        fault: Fault::SlowFirstToken(Duration::from_millis(300)),
        ..Default::default()
    });
    let t0 = Instant::now();
    let body = json!({"model": "m", "messages": [], "stream": true});
    let mut res = client()
        .post(format!("{}/v1/chat/completions", up.url()))
        .send_json(&body)
        .await
        .unwrap();
    let head = t0.elapsed();
    assert!(head < Duration::from_millis(250), "head at once: {head:?}");
    let f = frames(&res.body().await.unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(f.last().unwrap(), "[DONE]");
    assert_eq!(up.active(), 0);
    assert_eq!(
        up.cancelled(),
        0,
        "a completed stream is not a cancellation"
    );
}
