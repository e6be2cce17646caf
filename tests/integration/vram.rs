//! VRAM management (SPEC §7, `LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT=1`) against a fake Ollama host
//! with 8 GiB of model memory: a request for a model that does not fit unloads the idle one
//! (`keep_alive: 0`), never the pinned one, waits for a busy one instead of unloading it, and
//! gets a 503 naming the provider when nothing can make room.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::*;

const GIB: u64 = 1 << 30;

fn host(chunk_delay: Duration) -> FakeUpstream {
    host_with(10, chunk_delay)
}

fn host_with(chunks: usize, chunk_delay: Duration) -> FakeUpstream {
    FakeUpstream::start(FakeConfig {
        name: "ollama".into(),
        models: ["small", "idle", "big", "huge"].map(String::from).to_vec(),
        vram_capacity: Some(8 * GIB),
        model_sizes: vec![
            ("small".into(), 3 * GIB),
            ("idle".into(), 3 * GIB),
            ("big".into(), 4 * GIB),
            ("huge".into(), 6 * GIB),
        ],
        chunks,
        chunk_delay,
        ..Default::default()
    })
}

fn router(up: &FakeUpstream, managed: bool) -> Router {
    router_with(up, managed, &[])
}

fn router_with(up: &FakeUpstream, managed: bool, env: &[(&str, &str)]) -> Router {
    let p = |id: &str, extra: Value| {
        let mut v = json!({"id": id, "api_host": up.url(), "api_type": "ollama"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let config = models_config(&[
        (
            "small",
            vec![p("h-small", json!({"pinned": true, "vram_mb": 8192}))],
        ),
        ("idle", vec![p("h-idle", json!({}))]),
        ("big", vec![p("h-big", json!({}))]),
        ("huge", vec![p("h-huge", json!({}))]),
    ]);
    let flag = if managed { "1" } else { "0" };
    let mut vars = vec![
        ("LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT", flag),
        ("LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS", "0"),
    ];
    vars.extend_from_slice(env);
    Router::start(&config, &vars)
}

async fn ok(r: &Router, model: &str) -> u16 {
    let mut res = r.chat(model, false).await;
    let _ = res.body().limit(1 << 20).await;
    res.status().as_u16()
}

/// The `keep_alive: 0` requests the fake received, with when.
fn unloads(up: &FakeUpstream) -> Vec<(String, Instant)> {
    up.requests()
        .into_iter()
        .filter(|q| q.path == "/api/generate" && q.body["keep_alive"] == 0)
        .map(|q| {
            (
                q.body["model"].as_str().unwrap_or("").to_string(),
                q.received,
            )
        })
        .collect()
}

#[actix_rt::test]
async fn a_model_that_does_not_fit_unloads_the_idle_one_and_the_pinned_one_stays() {
    let up = host(Duration::ZERO);
    let r = router(&up, true);
    assert_eq!(ok(&r, "small").await, 200);
    assert_eq!(ok(&r, "idle").await, 200);
    assert_eq!(up.loaded_models(), vec!["small", "idle"]);
    // 6 of 8 GiB used; big needs 4: idle goes, small is pinned.
    assert_eq!(ok(&r, "big").await, 200);
    let names: Vec<String> = unloads(&up).into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        names,
        vec!["idle"],
        "the fake saw keep_alive 0 for idle only"
    );
    assert_eq!(up.unloaded_models(), vec!["idle"]);
    assert_eq!(up.loaded_models(), vec!["small", "big"]);
    // A model that fits in what is free is sent without unloading anything.
    assert_eq!(ok(&r, "small").await, 200);
    assert_eq!(unloads(&up).len(), 1);
}

#[actix_rt::test]
async fn without_management_the_load_fails_as_ollama_fails() {
    let up = host(Duration::ZERO);
    let r = router(&up, false);
    assert_eq!(ok(&r, "small").await, 200);
    assert_eq!(ok(&r, "idle").await, 200);
    let mut res = r.chat("big", false).await;
    assert_eq!(res.status(), 502);
    let body = res.json::<Value>().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("h-big"),
        "{body}"
    );
    assert!(unloads(&up).is_empty());
}

#[actix_rt::test]
async fn a_busy_model_is_waited_for_not_unloaded() {
    let up = host_with(30, Duration::from_millis(40));
    let r = router(&up, true);
    assert_eq!(ok(&r, "small").await, 200);
    // A stream on idle holds it busy.
    let mut stream = r.chat("idle", true).await;
    assert_eq!(stream.status(), 200);
    let _ = stream.next().await.unwrap().unwrap();
    let ps_reads = |up: &FakeUpstream| up.requests().iter().filter(|q| q.path == "/api/ps").count();
    let before = ps_reads(&up);
    let url = r.url("/v1/chat/completions");
    let waiting = actix_rt::spawn(async move {
        let mut res = client()
            .post(url)
            .send_json(&chat_body("big", false))
            .await
            .unwrap();
        let _ = res.body().limit(1 << 20).await;
        res.status().as_u16()
    });
    // Once the big request is planning (it reads /api/ps), a model already loaded is still
    // served meanwhile: the waiting request does not hold the host.
    assert!(eventually(Duration::from_secs(5), || async { ps_reads(&up) > before }).await);
    assert_eq!(ok(&r, "small").await, 200);
    assert!(!waiting.is_finished());
    // While the stream runs, idle is not unloaded; the big request waits (no answer yet).
    let mut text = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.extend_from_slice(&chunk.unwrap());
        // Checked while tokens are still to come (the last ones may race the release).
        if !String::from_utf8_lossy(&text).contains("t27 ") {
            assert!(unloads(&up).is_empty(), "unloaded while busy");
            assert!(!waiting.is_finished(), "answered before idle was free");
        }
    }
    assert!(String::from_utf8_lossy(&text).contains("[DONE]"));
    let status = waiting.await.unwrap();
    assert_eq!(status, 200);
    let u = unloads(&up);
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0].0, "idle");
    assert_eq!(up.loaded_models(), vec!["small", "big"]);
}

#[actix_rt::test]
async fn nothing_to_free_is_a_503_naming_the_provider() {
    let up = host(Duration::ZERO);
    let r = router(&up, true);
    assert_eq!(ok(&r, "small").await, 200);
    // huge needs 6 GiB; with small pinned (3 GiB) at most 5 can ever be free.
    let mut res = r.chat("huge", false).await;
    assert_eq!(res.status(), 503);
    let body = res.json::<Value>().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("provider \"h-huge\""), "{msg}");
    assert!(
        msg.contains("needs 6144 MiB; the host has 8192 MiB and its pinned models hold 3072 MiB (pinned: small)"),
        "{msg}"
    );
    assert!(!msg.contains("127.0.0.1"), "no address: {msg}");
    assert!(unloads(&up).is_empty());
    assert_eq!(up.loaded_models(), vec!["small"]);
    // Ollama dialect: its own error shape.
    let mut res = client()
        .post(r.url("/api/chat"))
        .send_json(&json!({"model": "huge", "messages": [{"role": "user", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body = res.json::<Value>().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("h-huge"), "{body}");
}

#[actix_rt::test]
async fn a_model_busy_past_the_deadline_is_a_503_and_stays_loaded() {
    // A 4 s stream keeps idle busy; the big request may wait 0.5 s (its deadline).
    let up = host_with(100, Duration::from_millis(40));
    let r = router_with(&up, true, &[("LLM_ROUTER_EXTERNAL_TIMEOUT", "0.5")]);
    assert_eq!(ok(&r, "small").await, 200);
    let mut stream = r.chat("idle", true).await;
    assert_eq!(stream.status(), 200);
    let _ = stream.next().await.unwrap().unwrap();
    let mut res = r.chat("big", false).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body = res.json::<Value>().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("provider \"h-big\""), "{msg}");
    assert!(
        msg.contains("stayed busy until the request's deadline: idle"),
        "{msg}"
    );
    assert!(unloads(&up).is_empty());
    assert_eq!(up.loaded_models(), vec!["small", "idle"]);
    drop(stream);
}

#[actix_rt::test]
async fn a_host_without_room_is_skipped_for_another_provider_of_the_model() {
    let a = host(Duration::ZERO);
    let b = host(Duration::ZERO);
    let p = |id: &str, up: &FakeUpstream, extra: Value| {
        let mut v = json!({"id": id, "api_host": up.url(), "api_type": "ollama", "vram_mb": 8192});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let config = models_config(&[
        ("small", vec![p("a-small", &a, json!({"pinned": true}))]),
        (
            "huge",
            vec![
                p("a-huge", &a, json!({"priority": 0})),
                p("b-huge", &b, json!({"priority": 1})),
            ],
        ),
    ]);
    let r = Router::start(&config, &[("LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT", "1")]);
    assert_eq!(ok(&r, "small").await, 200);
    // Host a can never fit huge next to its pinned small: the lower tier's host b serves it.
    let mut res = r.chat("huge", false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("x-llm-router-provider").unwrap(),
        "b-huge"
    );
    let _ = res.body().await;
    assert!(unloads(&a).is_empty());
    assert_eq!(a.loaded_models(), vec!["small"]);
    assert_eq!(b.loaded_models(), vec!["huge"]);
}

#[actix_rt::test]
async fn a_clients_unload_request_is_passed_on_without_making_room() {
    let up = host(Duration::ZERO);
    let r = router(&up, true);
    assert_eq!(ok(&r, "small").await, 200);
    assert_eq!(ok(&r, "idle").await, 200);
    // `big` is not loaded and would not fit, but unloading it loads nothing.
    let mut res = client()
        .post(r.url("/api/generate"))
        .send_json(&json!({"model": "big", "keep_alive": 0}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.json::<Value>().await.unwrap();
    assert_eq!(body["done_reason"], "unload", "{body}");
    assert_eq!(
        unloads(&up).into_iter().map(|(m, _)| m).collect::<Vec<_>>(),
        vec!["big"]
    );
    assert_eq!(up.loaded_models(), vec!["small", "idle"]);
}
