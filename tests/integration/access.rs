//! Access control over real sockets (SPEC §10): keys on every dialect's routes, every 401 reason
//! and 403, public routes, rate limits (local, and shared by two router processes through a real
//! Redis), the client key never reaching a provider or the log, and the keys CLI.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::*;
use crate::process::spawn_binary;

const BIN: &str = env!("CARGO_BIN_EXE_llm-router");

pub(crate) const DEV: &str = "sk-test-dev-1111111111111111";
const ADMIN: &str = "sk-test-admin-222222222222";

pub(crate) fn key_of(name: &str) -> String {
    format!("sk-test-{name}-0123456789abcdef")
}

/// A keys file in the original gateway's style (plain keys) plus this router's fields.
pub(crate) fn write_keys(dir: &Path, extra: &[Value]) -> String {
    let mut entries = vec![
        json!({"key_plain": DEV, "key_id": "dev", "policy_name": "developer", "is_active": true,
               "expires_at": null, "created_at": 1718000000, "metadata": {}}),
        json!({"key_plain": ADMIN, "key_id": "admin", "policy_name": "admin"}),
    ];
    for p in ["chat", "embedding", "anthropic", "ollama", "builtin"] {
        entries.push(json!({"key_plain": key_of(p), "key_id": p, "policy_name": p}));
    }
    entries.push(json!({"key_plain": key_of("off"), "key_id": "off", "is_active": false}));
    entries.push(json!({"key_plain": key_of("old"), "key_id": "old",
                        "expires_at": "2020-01-01T00:00:00Z"}));
    entries.push(json!({"key_plain": key_of("only-m"), "key_id": "only-m", "models": ["m"]}));
    entries.extend(extra.iter().cloned());
    let path = dir.join("memory-keys.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&entries).unwrap()).unwrap();
    path.display().to_string()
}

fn two_models(up: &FakeUpstream) -> Value {
    models_config(&[
        ("m", vec![provider("a", up)]),
        ("m2", vec![provider("b", up)]),
    ])
}

fn authed(up: &FakeUpstream, keys: &str, env: &[(&str, &str)]) -> Router {
    let mut all = vec![
        ("LLM_ROUTER_AUTH_ENABLED", "1"),
        ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", keys),
    ];
    all.extend_from_slice(env);
    Router::start(&two_models(up), &all)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    OpenAi,
    Anthropic,
    Ollama,
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
    XApiKey(&'a str),
}

struct Answer {
    status: u16,
    headers: awc::http::header::HeaderMap,
    body: Value,
}

async fn call(r: &Router, path: &str, body: Option<&Value>, auth: Auth<'_>) -> Answer {
    let c = client();
    let mut req = match body {
        Some(_) => c.post(r.url(path)),
        None => c.get(r.url(path)),
    };
    req = match auth {
        Auth::None => req,
        Auth::Bearer(k) => req.insert_header(("authorization", format!("Bearer {k}"))),
        Auth::XApiKey(k) => req.insert_header(("x-api-key", k)),
    };
    let mut res = match body {
        Some(b) => req.send_json(b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let bytes = res.body().limit(1 << 22).await.unwrap();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
    }
}

/// The error `(type, message)` of a body in `shape`, asserting the shape itself.
fn error_of(shape: Shape, a: &Answer) -> (Option<String>, String) {
    let b = &a.body;
    match shape {
        Shape::OpenAi => {
            assert_eq!(b["error"]["code"], a.status, "{b}");
            assert!(b["error"].get("param").is_some(), "{b}");
            (
                b["error"]["type"].as_str().map(String::from),
                b["error"]["message"].as_str().unwrap().into(),
            )
        }
        Shape::Anthropic => {
            assert_eq!(b["type"], "error", "{b}");
            (
                b["error"]["type"].as_str().map(String::from),
                b["error"]["message"].as_str().unwrap().into(),
            )
        }
        Shape::Ollama => {
            assert!(b["error"].is_string(), "{b}");
            (None, b["error"].as_str().unwrap().into())
        }
    }
}

fn msgs() -> Value {
    json!([{"role": "user", "content": "hello there"}])
}

/// Every dialect's generating and listing routes, with a body naming model `m`.
fn dialect_routes() -> Vec<(&'static str, Shape, Option<Value>)> {
    vec![
        (
            "/v1/chat/completions",
            Shape::OpenAi,
            Some(chat_body("m", false)),
        ),
        (
            "/api/v1/chat/completions",
            Shape::OpenAi,
            Some(chat_body("m", false)),
        ),
        (
            "/v1/completions",
            Shape::OpenAi,
            Some(json!({"model": "m", "prompt": "hi"})),
        ),
        (
            "/v1/responses",
            Shape::OpenAi,
            Some(json!({"model": "m", "input": "hi"})),
        ),
        (
            "/v1/embeddings",
            Shape::OpenAi,
            Some(json!({"model": "m", "input": "hi"})),
        ),
        (
            "/api/v0/chat/completions",
            Shape::OpenAi,
            Some(chat_body("m", false)),
        ),
        (
            "/v1/messages",
            Shape::Anthropic,
            Some(json!({"model": "m", "max_tokens": 16, "messages": msgs()})),
        ),
        (
            "/api/chat",
            Shape::Ollama,
            Some(json!({"model": "m", "messages": msgs(), "stream": false})),
        ),
        (
            "/api/generate",
            Shape::Ollama,
            Some(json!({"model": "m", "prompt": "hi", "stream": false})),
        ),
        (
            "/api/embed",
            Shape::Ollama,
            Some(json!({"model": "m", "input": "hi"})),
        ),
        ("/api/tags", Shape::Ollama, None),
        ("/api/models", Shape::OpenAi, None),
    ]
}

#[actix_rt::test]
async fn access_every_dialect_refuses_missing_and_unknown_keys_in_its_shape_and_serves_valid_ones()
{
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let r = authed(&up, &write_keys(dir.path(), &[]), &[]);
    for (path, shape, body) in dialect_routes() {
        let a = call(&r, path, body.as_ref(), Auth::None).await;
        assert_eq!(a.status, 401, "{path}: {}", a.body);
        let (kind, msg) = error_of(shape, &a);
        if shape != Shape::Ollama {
            assert_eq!(kind.as_deref(), Some("authentication_error"), "{path}");
        }
        assert!(msg.starts_with("missing API key"), "{path}: {msg}");
        assert_eq!(a.headers.get("www-authenticate").unwrap(), "Bearer");

        let a = call(&r, path, body.as_ref(), Auth::Bearer("sk-not-a-key")).await;
        assert_eq!(a.status, 401, "{path}");
        assert_eq!(error_of(shape, &a).1, "unknown API key", "{path}");

        for auth in [Auth::Bearer(DEV), Auth::XApiKey(DEV)] {
            let a = call(&r, path, body.as_ref(), auth).await;
            assert_eq!(a.status, 200, "{path}: {}", a.body);
        }
    }
    // A query parameter is never a key.
    let a = call(
        &r,
        &format!("/v1/chat/completions?api_key={DEV}"),
        Some(&chat_body("m", false)),
        Auth::None,
    )
    .await;
    assert_eq!(a.status, 401);
    // Another scheme in Authorization is no key either; x-api-key still counts then.
    let a = client()
        .post(r.url("/v1/chat/completions"))
        .insert_header(("authorization", format!("Basic {DEV}")))
        .send_json(&chat_body("m", false))
        .await
        .unwrap();
    assert_eq!(a.status(), 401);
}

#[actix_rt::test]
async fn access_inactive_and_expired_keys_get_401_naming_the_reason() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let r = authed(&up, &write_keys(dir.path(), &[]), &[]);
    let body = json!({"model": "m", "max_tokens": 16, "messages": msgs()});
    let off = call(
        &r,
        "/v1/messages",
        Some(&body),
        Auth::XApiKey(&key_of("off")),
    )
    .await;
    assert_eq!(off.status, 401);
    let (kind, msg) = error_of(Shape::Anthropic, &off);
    assert_eq!(kind.as_deref(), Some("authentication_error"));
    assert_eq!(msg, "API key \"off\" is inactive (revoked)");
    let old = call(
        &r,
        "/api/chat",
        Some(&json!({"model": "m", "messages": msgs()})),
        Auth::Bearer(&key_of("old")),
    )
    .await;
    assert_eq!(old.status, 401);
    assert_eq!(
        error_of(Shape::Ollama, &old).1,
        "API key \"old\" expired at 2020-01-01T00:00:00Z"
    );
    assert_eq!(
        up.request_count(),
        0,
        "nothing refused reached the provider"
    );
}

#[actix_rt::test]
async fn access_policies_allow_their_routes_and_refuse_others_with_403() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let r = authed(&up, &write_keys(dir.path(), &[]), &[]);
    let routes: Vec<(&str, Shape, Option<Value>)> = vec![
        (
            "/v1/chat/completions",
            Shape::OpenAi,
            Some(chat_body("m", false)),
        ),
        (
            "/v1/embeddings",
            Shape::OpenAi,
            Some(json!({"model": "m", "input": "x"})),
        ),
        (
            "/v1/messages",
            Shape::Anthropic,
            Some(json!({"model": "m", "max_tokens": 8, "messages": msgs()})),
        ),
        (
            "/api/chat",
            Shape::Ollama,
            Some(json!({"model": "m", "messages": msgs(), "stream": false})),
        ),
        (
            "/api/embed",
            Shape::Ollama,
            Some(json!({"model": "m", "input": "x"})),
        ),
        (
            "/api/translate",
            Shape::OpenAi,
            Some(json!({"model_name": "m", "texts": ["a"]})),
        ),
        ("/router/stats", Shape::OpenAi, None),
    ];
    // Allowed routes per key, in the order above.
    let table: &[(&str, [u8; 7])] = &[
        (DEV, [1, 1, 1, 1, 1, 1, 0]),
        (ADMIN, [1, 1, 1, 1, 1, 1, 1]),
        (&key_of("chat"), [1, 0, 1, 1, 0, 0, 0]),
        (&key_of("embedding"), [0, 1, 0, 0, 1, 0, 0]),
        (&key_of("anthropic"), [0, 0, 1, 0, 0, 0, 0]),
        (&key_of("ollama"), [0, 0, 0, 1, 1, 0, 0]),
        (&key_of("builtin"), [0, 0, 0, 0, 0, 1, 0]),
    ];
    for (key, row) in table {
        for ((path, shape, body), allowed) in routes.iter().zip(row) {
            let a = call(&r, path, body.as_ref(), Auth::Bearer(key)).await;
            if *allowed == 1 {
                assert!(
                    ![401, 403].contains(&a.status),
                    "{key} {path}: {} {}",
                    a.status,
                    a.body
                );
            } else {
                assert_eq!(a.status, 403, "{key} {path}: {}", a.body);
                let (kind, msg) = error_of(*shape, &a);
                if *shape != Shape::Ollama {
                    assert_eq!(kind.as_deref(), Some("permission_error"));
                }
                assert!(msg.contains("may not call") && msg.contains(path), "{msg}");
            }
        }
    }
}

#[actix_rt::test]
async fn access_a_keys_models_restrict_what_it_may_call_and_the_body_reaches_the_provider_intact() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let r = authed(&up, &write_keys(dir.path(), &[]), &[]);
    let k = key_of("only-m");
    let a = call(
        &r,
        "/v1/chat/completions",
        Some(&chat_body("m", false)),
        Auth::Bearer(&k),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["messages"][0]["content"], "hello there");
    let a = call(
        &r,
        "/v1/chat/completions",
        Some(&chat_body("m2", false)),
        Auth::Bearer(&k),
    )
    .await;
    assert_eq!(a.status, 403);
    let (kind, msg) = error_of(Shape::OpenAi, &a);
    assert_eq!(kind.as_deref(), Some("permission_error"));
    assert_eq!(
        msg,
        "API key \"only-m\" may not use model \"m2\"; it may use: m"
    );
    let a = call(
        &r,
        "/api/generate",
        Some(&json!({"model": "m2", "prompt": "x"})),
        Auth::Bearer(&k),
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(error_of(Shape::Ollama, &a).1.contains("\"m2\""));
    // Built-in routes name the model in `model_name`.
    let a = call(
        &r,
        "/api/translate",
        Some(&json!({"model_name": "m2", "texts": ["a"]})),
        Auth::Bearer(&k),
    )
    .await;
    assert_eq!(a.status, 403);
    // Without a models list, any model.
    let a = call(
        &r,
        "/v1/chat/completions",
        Some(&chat_body("m2", false)),
        Auth::Bearer(DEV),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(up.request_count(), 2);
}

#[actix_rt::test]
async fn access_public_routes_need_no_key_and_the_list_is_configurable() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), &[]);
    let r = authed(&up, &keys, &[("LLM_ROUTER_USE_PROMETHEUS", "1")]);
    for path in [
        "/",
        "/health",
        "/metrics",
        "/models",
        "/v1/models",
        "/api/ping",
        "/api/version",
        "/api/metrics",
    ] {
        let a = call(&r, path, None, Auth::None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        assert!(a.headers.get("x-ratelimit-limit-requests").is_none());
    }
    let a = call(&r, "/api/tags", None, Auth::None).await;
    assert_eq!(a.status, 401);
    drop(r);
    let r = authed(
        &up,
        &keys,
        &[("LLM_ROUTER_AUTH_PUBLIC_ENDPOINTS", "P/tags")],
    );
    assert_eq!(call(&r, "/api/tags", None, Auth::None).await.status, 200);
    assert_eq!(call(&r, "/health", None, Auth::None).await.status, 401);
    assert_eq!(
        call(&r, "/health", None, Auth::Bearer(DEV)).await.status,
        200
    );
}

#[actix_rt::test]
async fn access_rate_limit_gives_429_with_retry_after_and_headers_in_each_dialect() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(
        dir.path(),
        &[json!({"key_plain": key_of("rpm3"), "key_id": "rpm3", "rpm": 3})],
    );
    let r = authed(
        &up,
        &keys,
        &[
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_DEFAULT_RATE_LIMIT", "5"),
        ],
    );
    let k = key_of("rpm3");
    for want in ["2", "1", "0"] {
        let a = call(
            &r,
            "/v1/chat/completions",
            Some(&chat_body("m", false)),
            Auth::Bearer(&k),
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.headers.get("x-ratelimit-limit-requests").unwrap(), "3");
        assert_eq!(
            a.headers.get("x-ratelimit-remaining-requests").unwrap(),
            want
        );
    }
    for (path, shape, body) in [
        ("/v1/chat/completions", Shape::OpenAi, chat_body("m", false)),
        (
            "/v1/messages",
            Shape::Anthropic,
            json!({"model": "m", "max_tokens": 8, "messages": msgs()}),
        ),
        (
            "/api/chat",
            Shape::Ollama,
            json!({"model": "m", "messages": msgs()}),
        ),
    ] {
        let a = call(&r, path, Some(&body), Auth::Bearer(&k)).await;
        assert_eq!(a.status, 429, "{path}");
        assert!(a.body.is_object(), "never a JSON array: {}", a.body);
        let (kind, msg) = error_of(shape, &a);
        if shape != Shape::Ollama {
            assert_eq!(kind.as_deref(), Some("rate_limit_error"));
        }
        assert!(msg.contains("3 requests per minute"), "{msg}");
        let retry: u64 = a
            .headers
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(
            a.headers.get("x-ratelimit-remaining-requests").unwrap(),
            "0"
        );
    }
    assert_eq!(
        up.request_count(),
        3,
        "refused requests never reach the provider"
    );
    // Other keys have their own windows; the default applies to keys without rpm.
    let a = call(
        &r,
        "/v1/chat/completions",
        Some(&chat_body("m", false)),
        Auth::Bearer(DEV),
    )
    .await;
    assert_eq!(a.headers.get("x-ratelimit-limit-requests").unwrap(), "5");
    assert_eq!(
        a.headers.get("x-ratelimit-remaining-requests").unwrap(),
        "4"
    );
}

async fn metric(port: u16, name: &str) -> Option<f64> {
    let mut res = client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?;
    let text = String::from_utf8(res.body().limit(1 << 22).await.ok()?.to_vec()).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[actix_rt::test]
async fn access_two_router_processes_sharing_redis_enforce_one_limit_exactly() {
    let redis = RedisServer::start();
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(
        dir.path(),
        &[json!({"key_plain": key_of("rpm5"), "key_id": "rpm5", "rpm": 5})],
    );
    let rport = redis.port.to_string();
    let env = [
        ("LLM_ROUTER_AUTH_ENABLED", "1"),
        ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", keys.as_str()),
        ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
        ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
        ("LLM_ROUTER_REDIS_PORT", rport.as_str()),
        ("LLM_ROUTER_USE_PROMETHEUS", "1"),
        ("LLM_ROUTER_LOG_LEVEL", "ERROR"),
        ("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0"),
    ];
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, pa) = spawn_binary(&up, da.path(), &env);
    let (mut b, pb) = spawn_binary(&up, db.path(), &env);
    for p in [pa, pb] {
        assert!(
            eventually(Duration::from_secs(5), || async {
                metric(p, "llm_router_rate_limit_shared_up").await == Some(1.0)
            })
            .await,
            "replica on {p} enforces limits in Redis"
        );
    }
    let k = key_of("rpm5");
    let sends = (0..12).map(|i| {
        let port = if i % 2 == 0 { pa } else { pb };
        let k = k.clone();
        async move {
            let mut res = client()
                .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
                .bearer_auth(&k)
                .send_json(&chat_body("m", false))
                .await
                .unwrap();
            let _ = res.body().await;
            res.status().as_u16()
        }
    });
    let statuses = join_all(sends).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(up.request_count(), 5);
    for p in [pa, pb] {
        assert_eq!(
            metric(p, "llm_router_rate_limit_local_decisions_total").await,
            Some(0.0)
        );
    }
    let _ = (a.kill(), b.kill());
    let _ = (a.wait(), b.wait());
}

#[actix_rt::test]
async fn access_redis_lost_falls_back_to_local_windows_and_says_so() {
    let mut redis = RedisServer::start();
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(
        dir.path(),
        &[json!({"key_plain": key_of("rpm2"), "key_id": "rpm2", "rpm": 2})],
    );
    let rport = redis.port.to_string();
    let r = authed(
        &up,
        &keys,
        &[
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
            ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
            ("LLM_ROUTER_REDIS_PORT", &rport),
            ("LLM_ROUTER_USE_PROMETHEUS", "1"),
        ],
    );
    let port = r.addr.port();
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric(port, "llm_router_rate_limit_shared_up").await == Some(1.0)
        })
        .await
    );
    let k = key_of("rpm2");
    let body = chat_body("m", false);
    let chat = || call(&r, "/v1/chat/completions", Some(&body), Auth::Bearer(&k));

    assert_eq!(chat().await.status, 200, "counted in Redis");
    redis.stop();
    // Local windows start empty: two more pass, then the local limit holds.
    let statuses = [
        chat().await.status,
        chat().await.status,
        chat().await.status,
    ];
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        metric(port, "llm_router_rate_limit_shared_up").await,
        Some(0.0)
    );
    assert_eq!(
        metric(port, "llm_router_rate_limit_local_decisions_total").await,
        Some(3.0)
    );
    redis.restart();
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric(port, "llm_router_rate_limit_shared_up").await == Some(1.0)
        })
        .await,
        "back on the shared windows"
    );
    // Redis restarted empty: its window holds nothing yet.
    assert_eq!(chat().await.status, 200);
}

/// Runs `llm-router keys …` with these variables; returns (exit code, stdout, stderr).
fn keys_cmd(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("keys").args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[actix_rt::test]
async fn access_cli_creates_lists_rotates_and_revokes_keys_in_the_keys_file() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth/keys.json");
    let f = file.display().to_string();
    let env = [
        ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", f.as_str()),
        ("LLM_ROUTER_AUTH_ROTATION_GRACE_PERIOD", "600"),
    ];
    let (code, out, err) = keys_cmd(
        &[
            "create",
            "--policy",
            "chat",
            "--id",
            "svc",
            "--expires",
            "30d",
            "--rpm",
            "9",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let key = out.trim().to_string();
    let body = key.strip_prefix("sk-litm-").unwrap();
    assert_eq!(body.len(), 48);
    assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(err.contains("created key \"svc\" (policy chat"), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&key) && !text.contains(body),
        "only the digest is stored"
    );
    assert!(text.contains("\"key_hash\": \"sha256:"));
    let (code, list, _) = keys_cmd(&["list"], &env);
    assert_eq!(code, 0);
    let line = list.lines().find(|l| l.starts_with("svc ")).unwrap();
    assert!(
        line.contains("chat") && line.contains("yes") && line.contains(" 9 "),
        "{line}"
    );
    assert!(!list.contains(&key));
    // The server reads the same file.
    let env_r = [
        ("LLM_ROUTER_AUTH_ENABLED", "1"),
        ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", f.as_str()),
    ];
    {
        let r = Router::start(&two_models(&up), &env_r);
        assert_eq!(
            call(
                &r,
                "/v1/chat/completions",
                Some(&chat_body("m", false)),
                Auth::Bearer(&key)
            )
            .await
            .status,
            200
        );
        assert_eq!(
            call(
                &r,
                "/v1/embeddings",
                Some(&json!({"model": "m", "input": "x"})),
                Auth::Bearer(&key)
            )
            .await
            .status,
            403
        );
    }
    // Rotate: a new key, the old one still good for the grace period.
    let (code, out, err) = keys_cmd(&["rotate", "svc"], &env);
    assert_eq!(code, 0, "{err}");
    let new = out.trim().to_string();
    assert_ne!(new, key);
    assert!(err.contains("the old one works until"), "{err}");
    {
        let r = Router::start(&two_models(&up), &env_r);
        for k in [&key, &new] {
            let a = call(
                &r,
                "/v1/chat/completions",
                Some(&chat_body("m", false)),
                Auth::Bearer(k),
            )
            .await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
    }
    // Revoke: both keys of the id stop working.
    let (code, _, err) = keys_cmd(&["revoke", "svc"], &env);
    assert_eq!(code, 0, "{err}");
    let (_, list, _) = keys_cmd(&["list"], &env);
    assert!(
        list.lines()
            .filter(|l| l.starts_with("svc "))
            .all(|l| l.contains(" no ")),
        "{list}"
    );
    {
        let r = Router::start(&two_models(&up), &env_r);
        for k in [&key, &new] {
            let a = call(
                &r,
                "/v1/chat/completions",
                Some(&chat_body("m", false)),
                Auth::Bearer(k),
            )
            .await;
            assert_eq!(a.status, 401);
            assert_eq!(
                error_of(Shape::OpenAi, &a).1,
                "API key \"svc\" is inactive (revoked)"
            );
        }
    }
    // Mistakes are reported, exit 1 (operation) or 2 (usage).
    assert_eq!(keys_cmd(&["revoke", "nope"], &env).0, 1);
    assert_eq!(keys_cmd(&["create", "--policy", "root"], &env).0, 2);
    let (code, _, err) = keys_cmd(&["create", "--policy", "chat", "--id", "svc"], &env);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
}

#[actix_rt::test]
async fn access_cli_and_server_share_the_redis_key_store_which_holds_only_digests() {
    let redis = RedisServer::start();
    let up = FakeUpstream::start(FakeConfig::default());
    let rport = redis.port.to_string();
    let env = [
        ("LLM_ROUTER_AUTH_KEY_STORE", "redis"),
        ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
        ("LLM_ROUTER_REDIS_PORT", rport.as_str()),
    ];
    let (code, out, err) = keys_cmd(&["create", "--policy", "anthropic", "--id", "team-a"], &env);
    assert_eq!(code, 0, "{err}");
    let key = out.trim().to_string();
    let mut env_r = env.to_vec();
    env_r.push(("LLM_ROUTER_AUTH_ENABLED", "1"));
    let r = Router::start(&two_models(&up), &env_r);
    let body = json!({"model": "m", "max_tokens": 8, "messages": msgs()});
    assert_eq!(
        call(&r, "/v1/messages", Some(&body), Auth::XApiKey(&key))
            .await
            .status,
        200
    );
    assert_eq!(
        call(
            &r,
            "/v1/chat/completions",
            Some(&chat_body("m", false)),
            Auth::XApiKey(&key)
        )
        .await
        .status,
        403
    );
    // Revoked in Redis: the running server sees it at once.
    assert_eq!(keys_cmd(&["revoke", "team-a"], &env).0, 0);
    let a = call(&r, "/v1/messages", Some(&body), Auth::XApiKey(&key)).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        error_of(Shape::Anthropic, &a).1,
        "API key \"team-a\" is inactive (revoked)"
    );
    let dump = redis_hgetall(redis.port, "llm-router:auth:keys");
    assert!(
        dump.contains("sha256:") && dump.contains("team-a"),
        "{dump}"
    );
    assert!(
        !dump.contains(&key) && !dump.contains(&key[8..]),
        "no plain key in Redis"
    );
}

/// `HGETALL key` over a raw socket, the reply as text.
fn redis_hgetall(port: u16, key: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    write!(s, "HGETALL {key}\r\n").unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into()
}

#[actix_rt::test]
async fn access_the_client_key_never_reaches_the_provider_or_the_log() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = write_keys(dir.path(), &[]);
    let log_path = dir.path().join("router.log");
    let log = log_path.display().to_string();
    let (mut child, port) = spawn_binary(
        &up,
        dir.path(),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED", "1"),
            ("LLM_ROUTER_LOG_LEVEL", "DEBUG"),
            ("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0"),
            ("LLM_ROUTER_LOG_TO_FILE", "1"),
            ("LLM_ROUTER_LOG_FILENAME", &log),
        ],
    );
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let c = client();
    let mut res = c
        .post(url("/v1/chat/completions"))
        .bearer_auth(DEV)
        .send_json(&chat_body("m", false))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.body().await;
    let mut res = c
        .post(url("/v1/chat/completions"))
        .bearer_auth(DEV)
        .send_json(&chat_body("m", true))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.body().limit(1 << 20).await;
    let mut res = c
        .post(url("/v1/messages"))
        .insert_header(("x-api-key", DEV))
        .send_json(&json!({"model": "m", "max_tokens": 8, "messages": msgs()}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.body().await;
    // Refusals too: an inactive key, a wrong one.
    for k in [key_of("off"), "sk-wrong-secret-9999".to_string()] {
        let res = c
            .post(url("/v1/chat/completions"))
            .bearer_auth(&k)
            .send_json(&chat_body("m", false))
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let seen = up.requests();
    assert_eq!(seen.len(), 3);
    for q in &seen {
        for (name, value) in &q.headers {
            assert!(
                !value.contains("sk-test") && !value.contains(&DEV[8..]),
                "{name}: {value}"
            );
        }
        assert!(!q.body.to_string().contains(DEV));
    }
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("authenticated") && text.contains("dev"),
        "key_id is logged: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("refused: 401") && l.contains("off")),
        "a refusal names the key_id"
    );
    for secret in [DEV, &DEV[8..], &key_of("off"), "sk-wrong-secret-9999"] {
        assert!(!text.contains(secret), "{secret} in the log");
    }
}
