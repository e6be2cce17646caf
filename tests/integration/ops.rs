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
    let first = chat().await;
    assert_eq!(first.status, 200);
    let used = first.body["usage"]["total_tokens"].as_u64().unwrap();
    // /router/rate-limits reads the shared windows from Redis.
    let admin = bearer(ADMIN);
    let key_row = || async {
        let rl = send(
            &r,
            "GET",
            "/router/rate-limits",
            None,
            &[("authorization", &admin)],
        )
        .await;
        rl.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == "dev")
            .cloned()
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(2), || async {
            key_row().await["tokens"]["used"] == used
        })
        .await,
        "the answer's tokens reach Redis: {}",
        key_row().await
    );
    let k = key_row().await;
    assert_eq!(k["source"], "redis", "{k}");
    assert_eq!(
        k["requests"],
        json!({"limit": 60, "used": 1, "remaining": 59}),
        "{k}"
    );
    assert!(
        (1..=60).contains(&k["resets_in_seconds"].as_u64().unwrap()),
        "{k}"
    );
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

#[actix_rt::test]
async fn ops_status_routes_report_stats_limits_and_auth_to_admin_keys_only() {
    let up = FakeUpstream::start(FakeConfig::default());
    let broken = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 500,
            message: "boom".into(),
            retry_after: None,
        },
        ..FakeConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let lim = key_of("lim");
    let keys = write_keys(
        dir.path(),
        &[json!({"key_plain": lim, "key_id": "lim", "rpm": 5, "tpm": 100000})],
    );
    let r = Router::start(
        &models_config(&[
            ("m", vec![provider("a", &up)]),
            ("m2", vec![provider("b", &broken)]),
        ]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
        ],
    );
    let admin = bearer(ADMIN);
    let admin_h = [("authorization", admin.as_str())];
    let dev = bearer(DEV);
    for path in [
        "/router/stats",
        "/router/health",
        "/router/rate-limits",
        "/auth/status",
        "/auth/metrics",
    ] {
        assert_eq!(send(&r, "GET", path, None, &[]).await.status, 401, "{path}");
        let a = send(&r, "GET", path, None, &[("authorization", &dev)]).await;
        assert_eq!(a.status, 403, "{path}: a developer key");
        let a = send(&r, "GET", path, None, &admin_h).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
    }
    assert_eq!(
        send(
            &r,
            "POST",
            "/auth/reload-keys",
            None,
            &[("authorization", &dev)]
        )
        .await
        .status,
        403
    );

    // Traffic: three whole answers and a stream on "a", one failure on "b".
    let lim_auth = bearer(&lim);
    let lim_h = [("authorization", lim_auth.as_str())];
    let mut tokens = 0;
    for _ in 0..3 {
        let a = send(
            &r,
            "POST",
            "/v1/chat/completions",
            Some(&chat_body("m", false)),
            &lim_h,
        )
        .await;
        assert_eq!(a.status, 200);
        tokens += a.body["usage"]["total_tokens"].as_u64().unwrap();
    }
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}],
                      "stream": true, "stream_options": {"include_usage": true}});
    let a = send(&r, "POST", "/v1/chat/completions", Some(&body), &lim_h).await;
    let last = sse_data(&a.text)
        .into_iter()
        .rfind(|d| d != "[DONE]")
        .unwrap();
    tokens += serde_json::from_str::<Value>(&last).unwrap()["usage"]["total_tokens"]
        .as_u64()
        .unwrap();
    let failed = send(
        &r,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body("m2", false)),
        &admin_h,
    )
    .await;
    assert_eq!(failed.status, 502);

    let s = send(&r, "GET", "/router/stats", None, &admin_h).await.body;
    let m = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "m")
        .unwrap();
    let a = &m["providers"][0];
    assert_eq!(a["id"], "a");
    assert_eq!(a["requests"], 4, "{a}");
    assert_eq!(a["health"], "healthy");
    assert_eq!(a["in_flight"], 0);
    assert_eq!(a["window_seconds"], 300);
    assert!(
        a["errors"].as_object().unwrap().values().all(|v| v == 0),
        "{a}"
    );
    for p in ["p50", "p95", "p99"] {
        assert!(a["latency_ms"][p].as_f64().is_some(), "{a}");
        assert!(a["ttft_ms"][p].as_f64().is_some(), "{a}");
    }
    let (tin, tout) = (
        a["tokens"]["input"].as_u64().unwrap(),
        a["tokens"]["output"].as_u64().unwrap(),
    );
    assert_eq!(
        tin + tout,
        tokens,
        "tokens of the answers, the stream included"
    );
    assert_eq!(m["requests"], 4);
    let m2 = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "m2")
        .unwrap();
    // One request, whose 500 was retried once on the same provider (SPEC §11: no other provider
    // of its tier can take it): two failed calls.
    assert_eq!(m2["providers"][0]["errors"]["status_5xx"], 2, "{m2}");
    assert_eq!(m2["providers"][0]["latency_ms"], Value::Null);
    assert!(
        !s.to_string().contains("127.0.0.1"),
        "no provider host: {s}"
    );

    let rl = send(&r, "GET", "/router/rate-limits", None, &admin_h)
        .await
        .body;
    let k = rl["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == "lim")
        .unwrap();
    assert_eq!(
        k["requests"],
        json!({"limit": 5, "used": 4, "remaining": 1}),
        "{k}"
    );
    assert_eq!(k["tokens"], json!({"limit": 100000, "used": tokens}), "{k}");
    let resets = k["resets_in_seconds"].as_u64().unwrap();
    assert!((1..=60).contains(&resets), "{k}");
    assert_eq!(k["source"], "local");
    let pa = rl["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "a")
        .unwrap();
    assert_eq!(pa["used_last_minute"], 4, "{pa}");
    assert_eq!(pa["rpm"], Value::Null);
    assert!(!rl.to_string().contains(&lim), "never a key");

    // One more passes, the next is refused: /auth/metrics counts both, and a stranger's 401.
    assert_eq!(
        send(
            &r,
            "POST",
            "/v1/chat/completions",
            Some(&chat_body("m", false)),
            &lim_h
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(
            &r,
            "POST",
            "/v1/chat/completions",
            Some(&chat_body("m", false)),
            &lim_h
        )
        .await
        .status,
        429
    );
    let stranger = bearer("sk-nobody-000000000000");
    assert_eq!(
        send(
            &r,
            "GET",
            "/router/stats",
            None,
            &[("authorization", &stranger)]
        )
        .await
        .status,
        401
    );
    let am = send(&r, "GET", "/auth/metrics", None, &admin_h).await.body;
    let of = |id: &str| {
        am["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        of("lim"),
        json!({"key_id": "lim", "requests": 6, "unauthorized_401": 0, "forbidden_403": 0,
               "rate_limited_429": 1})
    );
    assert_eq!(of("dev")["forbidden_403"], 6);
    assert!(of("-")["unauthorized_401"].as_u64().unwrap() >= 6);

    let st = send(&r, "GET", "/auth/status", None, &admin_h).await.body;
    assert_eq!(st["auth_enabled"], true);
    assert_eq!(st["store"], "memory");
    assert_eq!(st["keys"], 3);
    assert_eq!(
        st["rate_limits"],
        json!({"enabled": true, "backend": "local"})
    );

    let h = send(&r, "GET", "/router/health", None, &admin_h).await;
    assert_eq!(h.status, 200);
    assert_eq!(
        h.body["key_store"],
        json!({"auth_enabled": true, "kind": "memory"})
    );
    assert_eq!(h.body["providers"].as_array().unwrap().len(), 2);
    assert_eq!(h.body["shared_state"]["backend"], "local");

    // Reload: a good file swaps the keys; a bad one is refused, naming the problem, and the
    // running keys stay.
    let new = key_of("new");
    write_keys(dir.path(), &[json!({"key_plain": new, "key_id": "new"})]);
    let a = send(&r, "POST", "/auth/reload-keys", None, &admin_h).await;
    assert_eq!(
        (a.status, a.body.clone()),
        (200, json!({"reloaded": true, "keys": 3}))
    );
    let new_h = bearer(&new);
    assert_eq!(
        send(&r, "GET", "/v1/models", None, &[("authorization", &new_h)])
            .await
            .status,
        200
    );
    assert_eq!(
        send(
            &r,
            "POST",
            "/v1/chat/completions",
            Some(&chat_body("m", false)),
            &lim_h
        )
        .await
        .status,
        401,
        "lim is gone"
    );
    std::fs::write(&keys, r#"[{"key_plain": "x", "policy_name": "nope"}]"#).unwrap();
    let a = send(&r, "POST", "/auth/reload-keys", None, &admin_h).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown policy \"nope\""),
        "{}",
        a.text
    );
    assert_eq!(
        send(&r, "GET", "/router/stats", None, &admin_h)
            .await
            .status,
        200,
        "running keys kept"
    );
}

#[actix_rt::test]
async fn ops_retrieve_model_is_public_and_an_unknown_id_is_a_404_naming_it() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), &[]);
    let r = Router::start(
        &models_config(&[
            ("m", vec![provider("a", &up)]),
            ("org/x-1", vec![provider("b", &up)]),
        ]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
        ],
    );
    let list = send(&r, "GET", "/v1/models", None, &[]).await.body;
    for id in ["m", "org/x-1"] {
        let a = send(&r, "GET", &format!("/v1/models/{id}"), None, &[]).await;
        assert_eq!(a.status, 200, "{id}: {}", a.text);
        let listed = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap();
        assert_eq!(&a.body, listed, "the listing's entry");
        assert_eq!(a.body["object"], "model");
    }
    let a = send(&r, "GET", "/v1/models/nope", None, &[]).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body["error"]["code"], 404);
    let msg = a.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("nope") && msg.contains("org/x-1"), "{msg}");
    // With auth off the admin routes are open.
    let (_up, open) = single(FakeConfig::default(), &[]);
    for path in [
        "/router/stats",
        "/router/health",
        "/router/rate-limits",
        "/auth/status",
        "/auth/metrics",
    ] {
        assert_eq!(
            send(&open, "GET", path, None, &[]).await.status,
            200,
            "{path}"
        );
    }
    assert_eq!(
        send(&open, "GET", "/auth/status", None, &[]).await.body["auth_enabled"],
        false
    );
}

#[actix_rt::test]
async fn ops_cors_preflight_streams_and_errors_carry_the_headers_for_allowed_origins_only() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(
        dir.path(),
        &[json!({"key_plain": key_of("one"), "key_id": "one", "rpm": 1})],
    );
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
            (
                "LLM_ROUTER_CORS_ORIGINS",
                "http://app.test, https://ui.example.com:8443",
            ),
        ],
    );
    const APP: &str = "http://app.test";
    // Preflight: no key needed, the SDK's own headers echoed.
    let pre = send(
        &r,
        "OPTIONS",
        "/v1/chat/completions",
        None,
        &[
            ("origin", APP),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type, x-stainless-os",
            ),
        ],
    )
    .await;
    assert_eq!(pre.status, 204, "{}", pre.text);
    assert_eq!(pre.header("access-control-allow-origin"), Some(APP));
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    let allow = pre.header("access-control-allow-headers").unwrap();
    for h in [
        "authorization",
        "x-api-key",
        "content-type",
        "x-stainless-os",
    ] {
        assert!(allow.contains(h), "{h} in {allow}");
    }
    assert_eq!(pre.header("access-control-max-age"), Some("600"));
    assert_eq!(pre.header("vary"), Some("Origin"));

    let expose_ok = |a: &Answer| {
        assert_eq!(
            a.header("access-control-allow-origin"),
            Some(APP),
            "{}",
            a.status
        );
        let e = a.header("access-control-expose-headers").unwrap();
        for h in [
            "x-llm-router-model",
            "x-request-id",
            "x-ratelimit-remaining-requests",
            "retry-after",
        ] {
            assert!(e.contains(h), "{h} in {e}");
        }
        assert!(a.headers.get_all("vary").any(|v| v == "Origin"));
    };
    // A stream read from the page: headers on its head, the stream whole.
    let auth = bearer(&key_of("one"));
    let s = send(
        &r,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body("m", true)),
        &[("origin", APP), ("authorization", &auth)],
    )
    .await;
    assert_eq!(s.status, 200);
    expose_ok(&s);
    assert_eq!(sse_data(&s.text).last().map(String::as_str), Some("[DONE]"));
    assert_eq!(s.header("x-ratelimit-remaining-requests"), Some("0"));
    // Errors: 429 from the limiter, 401, 403, 404, 405.
    let limited = send(
        &r,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body("m", false)),
        &[("origin", APP), ("authorization", &auth)],
    )
    .await;
    assert_eq!(limited.status, 429);
    expose_ok(&limited);
    let dev = bearer(DEV);
    for (method, path, headers, status) in [
        ("POST", "/v1/chat/completions", vec![("origin", APP)], 401),
        (
            "GET",
            "/router/stats",
            vec![("origin", APP), ("authorization", dev.as_str())],
            403,
        ),
        (
            "GET",
            "/no/such/route",
            vec![("origin", APP), ("authorization", dev.as_str())],
            404,
        ),
        (
            "GET",
            "/v1/chat/completions",
            vec![("origin", APP), ("authorization", dev.as_str())],
            405,
        ),
    ] {
        let body = (method == "POST").then(|| chat_body("m", false));
        let a = send(&r, method, path, body.as_ref(), &headers).await;
        assert_eq!(a.status, status, "{path}: {}", a.text);
        expose_ok(&a);
    }
    // The second listed origin, port included.
    let a = send(
        &r,
        "GET",
        "/v1/models",
        None,
        &[("origin", "https://ui.example.com:8443")],
    )
    .await;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://ui.example.com:8443")
    );
    // Another origin: no CORS headers, on a preflight or a request.
    for origin in ["http://evil.test", "https://ui.example.com"] {
        let a = send(&r, "GET", "/v1/models", None, &[("origin", origin)]).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("access-control-allow-origin"), None, "{origin}");
        let p = send(
            &r,
            "OPTIONS",
            "/v1/chat/completions",
            None,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
        assert_ne!(p.status, 204);
        assert_eq!(p.header("access-control-allow-origin"), None, "{origin}");
        assert_eq!(p.header("access-control-allow-methods"), None, "{origin}");
    }
    // CORS off (the default): no headers at all.
    let (_up, plain) = single(FakeConfig::default(), &[]);
    let a = send(&plain, "GET", "/v1/models", None, &[("origin", APP)]).await;
    assert_eq!(a.header("access-control-allow-origin"), None);
    assert_eq!(a.header("vary"), None);
}

#[test]
fn ops_a_bad_cors_origin_or_grace_period_stops_start_up_naming_it() {
    let mut vars = std::collections::HashMap::new();
    vars.insert(
        "LLM_ROUTER_CORS_ORIGINS".to_string(),
        "https://ok.test, app.test/".to_string(),
    );
    vars.insert(
        "LLM_ROUTER_SHUTDOWN_GRACE_SECONDS".to_string(),
        "soon".to_string(),
    );
    let errs = llm_router::Settings::from_vars(&vars).unwrap_err();
    let all = errs.join("\n");
    assert!(
        all.contains("LLM_ROUTER_CORS_ORIGINS: \"app.test/\" is not an origin"),
        "{all}"
    );
    assert!(all.contains("LLM_ROUTER_SHUTDOWN_GRACE_SECONDS"), "{all}");
}

fn signal(child: &std::process::Child, sig: &str) {
    // The shell builtin, so the test needs no procps.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{sig} {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
}

fn refused(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[actix_rt::test]
async fn ops_sigterm_and_sigint_drain_streams_in_flight_refuse_new_connections_and_exit_0() {
    use futures_util::StreamExt;
    for sig in ["TERM", "INT"] {
        let up = FakeUpstream::start(FakeConfig {
            chunks: 6,
            chunk_delay: Duration::from_millis(300),
            ..Default::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let (mut child, port) = crate::process::spawn_binary(&up, dir.path(), &[]);
        let mut res = client()
            .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
            .send_json(&chat_body("m", true))
            .await
            .unwrap();
        let mut body = res.next().await.unwrap().unwrap().to_vec();
        signal(&child, sig);
        // The listener closes at once, while the stream is still going.
        assert!(
            eventually(Duration::from_secs(1), || async { refused(port) }).await,
            "SIG{sig}: new connections refused during the drain"
        );
        while let Some(chunk) = res.next().await {
            body.extend_from_slice(&chunk.unwrap());
        }
        let frames = sse_data(std::str::from_utf8(&body).unwrap());
        assert_eq!(frames.len(), 6 + 3, "SIG{sig}: every frame: {frames:?}");
        assert_eq!(frames.last().unwrap(), "[DONE]", "SIG{sig}");
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "SIG{sig}: {status:?}");
    }
}

#[actix_rt::test]
async fn ops_a_stream_longer_than_the_grace_period_is_cut_and_the_process_still_exits_0() {
    use futures_util::StreamExt;
    let up = FakeUpstream::start(FakeConfig {
        chunks: 40,
        chunk_delay: Duration::from_millis(250),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = crate::process::spawn_binary(
        &up,
        dir.path(),
        &[("LLM_ROUTER_SHUTDOWN_GRACE_SECONDS", "1")],
    );
    let mut res = client()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .send_json(&chat_body("m", true))
        .await
        .unwrap();
    let mut body = res.next().await.unwrap().unwrap().to_vec();
    let t0 = std::time::Instant::now();
    signal(&child, "TERM");
    while let Some(Ok(chunk)) = res.next().await {
        body.extend_from_slice(&chunk);
    }
    let status = child.wait().unwrap();
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "exited after the 1 s grace: {took:?}"
    );
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("[DONE]"),
        "a 10 s stream cannot finish in 1 s"
    );
}

#[actix_rt::test]
async fn ops_health_answers_503_draining_once_the_drain_began() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models-config.json");
    std::fs::write(
        &path,
        models_config(&[("m", vec![provider("a", &up)])]).to_string(),
    )
    .unwrap();
    let mut vars = std::collections::HashMap::new();
    vars.insert(
        "LLM_ROUTER_MODELS_CONFIG".to_string(),
        path.display().to_string(),
    );
    vars.insert("LLM_ROUTER_SERVER_WORKERS_COUNT".into(), "1".into());
    vars.insert(
        "LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS".into(),
        "0".into(),
    );
    let settings = llm_router::Settings::from_vars(&vars).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let drain = llm_router::Drain::default();
    let d = drain.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = llm_router::run_with(listener, settings, d).await.unwrap();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        })
    });
    let handle = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let health = || async {
        let mut r = client()
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<Value>().limit(1 << 20).await.unwrap(),
        )
    };
    let (code, body) = health().await;
    assert_eq!((code, &body["status"]), (200, &json!("ok")));
    drain.begin();
    let (code, body) = health().await;
    assert_eq!(code, 503);
    assert_eq!(body["status"], "draining");
    assert_eq!(body["models"][0]["name"], "m", "the details stay");
    handle.stop(true).await;
}

#[actix_rt::test]
async fn ops_openapi_describes_every_route_of_the_contract_and_only_served_ones_and_docs_render_it()
{
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), &[]);
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_USE_PROMETHEUS", "1"),
        ],
    );
    // Public, even with auth on.
    let a = send(&r, "GET", "/openapi.json", None, &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let doc = a.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // SPEC §3, §5, §6 and §10, with P = /api.
    let contract = [
        ("get", "/"),
        ("get", "/api/ping"),
        ("get", "/api/version"),
        ("get", "/health"),
        ("get", "/api/tags"),
        ("get", "/models"),
        ("get", "/v1/models"),
        ("get", "/api/models"),
        ("get", "/api/v0/models"),
        ("post", "/v1/chat/completions"),
        ("post", "/chat/completions"),
        ("post", "/api/chat/completions"),
        ("post", "/api/v1/chat/completions"),
        ("post", "/v1/completions"),
        ("post", "/api/v1/completions"),
        ("post", "/v1/responses"),
        ("post", "/responses"),
        ("post", "/v1/embeddings"),
        ("post", "/embeddings"),
        ("post", "/api/v1/embeddings"),
        ("post", "/api/chat"),
        ("post", "/api/generate"),
        ("post", "/api/embed"),
        ("post", "/api/embeddings"),
        ("post", "/api/show"),
        ("post", "/api/v0/chat/completions"),
        ("post", "/v1/messages"),
        ("post", "/api/v1/messages"),
        ("post", "/api/conversation_with_model"),
        ("post", "/api/extended_conversation_with_model"),
        ("post", "/api/generative_answer"),
        ("post", "/api/generate_article_from_text"),
        ("post", "/api/create_full_article_from_texts"),
        ("post", "/api/translate"),
        ("post", "/api/simplify_text"),
        ("post", "/api/generate_questions"),
        ("post", "/api/fast_text_mask"),
        ("get", "/metrics"),
        ("get", "/api/metrics"),
        ("get", "/router/stats"),
        ("get", "/router/health"),
        ("get", "/router/rate-limits"),
        ("get", "/auth/status"),
        ("get", "/auth/metrics"),
        ("post", "/auth/reload-keys"),
        ("get", "/v1/models/{id}"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ];
    for (m, p) in contract {
        assert!(
            paths.get(p).and_then(|v| v.get(m)).is_some(),
            "{m} {p} described"
        );
    }
    // Security follows the running config: chat needs a key, the listing does not.
    assert_eq!(paths["/v1/models"]["get"]["security"], json!([]));
    assert_eq!(paths["/v1/models/{id}"]["get"]["security"], json!([]));
    assert_eq!(
        paths["/v1/chat/completions"]["post"]["security"],
        json!([{"bearer": []}, {"apiKey": []}])
    );
    // Every described operation is served (no route 404, no 405) at that method.
    let admin = bearer(ADMIN);
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let real = path.replace("{id}", "m");
            if real == "/auth/reload-keys" {
                continue; // Served, but it would swap the keys under this test.
            }
            let body = (method == "post").then(|| json!({}));
            let a = send(
                &r,
                &method.to_uppercase(),
                &real,
                body.as_ref(),
                &[("authorization", &admin)],
            )
            .await;
            assert!(
                a.status != 405 && !a.text.contains("no route for"),
                "{method} {path}: {} {}",
                a.status,
                a.text
            );
        }
    }
    // The page: self-contained, no external assets, and it loads the description.
    let page = send(&r, "GET", "/docs", None, &[]).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text.contains("openapi.json"));
    for external in ["http://", "https://", "src=", "<link"] {
        assert!(
            !page.text.contains(external),
            "no external asset ({external})"
        );
    }
}
