//! Operations over real sockets (SPEC §10): token limits from answers' usage (streams included),
//! the limiter's state in `/health`, the status routes, CORS and the drain on SIGTERM.

use std::path::Path;

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

const ADMIN: &str = "sk-ops-admin-0000000000000000";
const DEV: &str = "sk-ops-dev-00000000000000000";

fn key_of(name: &str) -> String {
    format!("sk-ops-{name}-0123456789abcdef")
}

fn write_keys(dir: &Path, extra: &[Value]) -> String {
    let mut entries = vec![
        json!({"key_plain": ADMIN, "key_id": "admin", "policy_name": "admin"}),
        json!({"key_plain": DEV, "key_id": "dev", "policy_name": "developer"}),
    ];
    entries.extend(extra.iter().cloned());
    let path = dir.join("memory-keys.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&entries).unwrap()).unwrap();
    path.display().to_string()
}

struct Answer {
    status: u16,
    headers: awc::http::header::HeaderMap,
    text: String,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request; `headers` are added as given.
async fn send(
    r: &Router,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let c = client();
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = c.request(method, r.url(path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut res = match body {
        Some(b) => req.send_json(b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let bytes = res.body().limit(1 << 22).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[actix_rt::test]
async fn ops_token_limits_count_the_usage_of_answers_and_streams_in_every_dialect() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let msgs = json!([{"role": "user", "content": "hello there"}]);
    // (key, path, body): each key may use 1 token a minute, so one answer uses its window up.
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "whole",
            "/v1/chat/completions",
            json!({"model": "m", "messages": msgs}),
        ),
        (
            "sse-usage",
            "/v1/chat/completions",
            json!({"model": "m", "messages": msgs, "stream": true,
                   "stream_options": {"include_usage": true}}),
        ),
        // No usage asked for: the stream is estimated from its deltas.
        (
            "sse-plain",
            "/v1/chat/completions",
            json!({"model": "m", "messages": msgs, "stream": true}),
        ),
        (
            "anthropic",
            "/v1/messages",
            json!({"model": "m", "messages": msgs, "max_tokens": 50, "stream": true}),
        ),
        (
            "ollama",
            "/api/chat",
            json!({"model": "m", "messages": msgs}),
        ),
    ];
    let extra: Vec<Value> = cases
        .iter()
        .map(|(k, _, _)| json!({"key_plain": key_of(k), "key_id": k, "tpm": 1, "rpm": 100}))
        .chain([json!({"key_plain": key_of("roomy"), "key_id": "roomy", "tpm": 100000})])
        .collect();
    let keys = write_keys(dir.path(), &extra);
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
        ],
    );
    for (k, path, body) in &cases {
        let auth = bearer(&key_of(k));
        let first = send(&r, "POST", path, Some(body), &[("authorization", &auth)]).await;
        assert_eq!(first.status, 200, "{k}: {}", first.text);
        assert_eq!(first.header("x-ratelimit-limit-tokens"), Some("1"), "{k}");
        let second = send(&r, "POST", path, Some(body), &[("authorization", &auth)]).await;
        assert_eq!(second.status, 429, "{k}: {}", second.text);
        let retry: u64 = second.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{k}: {retry}");
        assert!(
            second.text.contains("1 tokens per minute"),
            "{k}: {}",
            second.text
        );
        assert_eq!(
            second.header("x-ratelimit-remaining-tokens"),
            Some("0"),
            "{k}"
        );
    }
    // The exact usage of a whole answer is what the window holds.
    let auth = bearer(&key_of("roomy"));
    let body = json!({"model": "m", "messages": msgs});
    let a = send(
        &r,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        &[("authorization", &auth)],
    )
    .await;
    let used = a.body["usage"]["prompt_tokens"].as_u64().unwrap()
        + a.body["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(used > 0);
    let b = send(
        &r,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        &[("authorization", &auth)],
    )
    .await;
    let remaining: u64 = b
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        remaining,
        100000 - used,
        "the window holds the first answer's usage"
    );
}

async fn metric(r: &Router, name: &str) -> Option<f64> {
    let a = send(r, "GET", "/metrics", None, &[]).await;
    a.text
        .lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[actix_rt::test]
async fn ops_health_shows_the_rate_limiter_falling_back_to_local_windows_when_redis_is_lost() {
    let mut redis = RedisServer::start();
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), &[]);
    let rport = redis.port.to_string();
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
            ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
            ("LLM_ROUTER_REDIS_PORT", &rport),
            ("LLM_ROUTER_USE_PROMETHEUS", "1"),
        ],
    );
    let limits = || async { r.health().await["rate_limits"].clone() };
    assert!(
        eventually(Duration::from_secs(5), || async {
            limits().await["backend"] == "redis"
        })
        .await,
        "{}",
        limits().await
    );
    assert_eq!(
        limits().await,
        json!({"enabled": true, "backend": "redis", "redis": "up", "degraded": false,
               "local_decisions": 0})
    );
    let auth = bearer(DEV);
    let (body, headers) = (chat_body("m", false), [("authorization", auth.as_str())]);
    let chat = || send(&r, "POST", "/v1/chat/completions", Some(&body), &headers);
    assert_eq!(chat().await.status, 200);
    redis.stop();
    // Requests keep being served, decided on local windows, and /health says so.
    assert_eq!(chat().await.status, 200);
    assert_eq!(chat().await.status, 200);
    let h = send(&r, "GET", "/health", None, &[]).await;
    assert_eq!(
        h.status, 200,
        "a degraded limiter does not make the router unready"
    );
    assert_eq!(
        h.body["rate_limits"],
        json!({"enabled": true, "backend": "local", "redis": "down", "degraded": true,
               "local_decisions": 2})
    );
    assert_eq!(
        metric(&r, "llm_router_rate_limit_shared_up").await,
        Some(0.0)
    );
    assert_eq!(
        metric(&r, "llm_router_rate_limit_local_decisions_total").await,
        Some(2.0)
    );
    redis.restart();
    assert!(
        eventually(Duration::from_secs(5), || async {
            limits().await["backend"] == "redis"
        })
        .await,
        "back on Redis: {}",
        limits().await
    );
    assert_eq!(
        metric(&r, "llm_router_rate_limit_shared_up").await,
        Some(1.0)
    );
}

#[actix_rt::test]
async fn ops_health_without_limits_or_redis_says_which_limiter_runs() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    assert_eq!(r.health().await["rate_limits"], json!({"enabled": false}));
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), &[]);
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
        ],
    );
    assert_eq!(
        r.health().await["rate_limits"],
        json!({"enabled": true, "backend": "local"})
    );
}
