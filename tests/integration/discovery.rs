//! Model discovery (SPEC §7): `"discover": true` providers' hosts are listed at start and every
//! `LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS`; found models are served (and listed) as
//! `<provider id>/<model>` or, with `"discover_as": "name"`, under their own names; a model the
//! host no longer lists is withdrawn; a host down at start is picked up once it answers.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::*;

const WAIT: Duration = Duration::from_secs(10);

fn ollama_fake(models: &[&str]) -> FakeConfig {
    FakeConfig {
        name: "ollama-host".into(),
        models: models.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    }
}

fn discovering(id: &str, url: &str, api_type: &str, extra: Value) -> Value {
    let mut p = json!({"id": id, "api_host": url, "api_type": api_type, "discover": true});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    p
}

fn start(providers: Vec<Value>) -> Router {
    Router::start(
        &models_config(&[("local", providers)]),
        &[("LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS", "0.2")],
    )
}

async fn get_json(r: &Router, path: &str) -> Value {
    let mut res = client().get(r.url(path)).send().await.unwrap();
    res.json::<Value>().limit(1 << 20).await.unwrap()
}

async fn openai_ids(r: &Router) -> Vec<String> {
    let v = get_json(r, "/v1/models").await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn tag_names(r: &Router) -> Vec<String> {
    let v = get_json(r, "/api/tags").await;
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

async fn has(r: &Router, id: &str) -> bool {
    openai_ids(r).await.iter().any(|m| m == id)
}

/// An Ollama chat through the router; returns the status and the model the fake was sent.
async fn ollama_chat(r: &Router, up: &FakeUpstream, model: &str) -> (u16, Option<String>) {
    let before = up.request_count();
    let mut res = client()
        .post(r.url("/api/chat"))
        .send_json(&json!({"model": model, "stream": false,
                           "messages": [{"role": "user", "content": "hi"}]}))
        .await
        .unwrap();
    let _ = res.body().limit(1 << 20).await;
    let sent = up
        .requests()
        .into_iter()
        .skip(before)
        .find(|q| q.path == "/api/chat")
        .and_then(|q| q.body["model"].as_str().map(String::from));
    (res.status().as_u16(), sent)
}

#[actix_rt::test]
async fn a_model_pulled_on_the_host_is_served_and_a_removed_one_withdrawn() {
    let up = FakeUpstream::start(ollama_fake(&["llama3:8b"]));
    let r = start(vec![discovering("gpu1", &up.url(), "ollama", json!({}))]);
    // Listed before the first request: the first round runs before the server listens.
    let ids = openai_ids(&r).await;
    assert!(ids.contains(&"local".to_string()), "{ids:?}");
    assert!(ids.contains(&"gpu1/llama3:8b".to_string()), "{ids:?}");
    assert!(tag_names(&r).await.contains(&"gpu1/llama3:8b".to_string()));
    let (status, sent) = ollama_chat(&r, &up, "gpu1/llama3:8b").await;
    assert_eq!(status, 200);
    assert_eq!(
        sent.as_deref(),
        Some("llama3:8b"),
        "the host's own name upstream"
    );

    // `ollama pull phi3:mini` on the host.
    up.set_config(ollama_fake(&["llama3:8b", "phi3:mini"]));
    assert!(eventually(WAIT, || has(&r, "gpu1/phi3:mini")).await);
    assert!(tag_names(&r).await.contains(&"gpu1/phi3:mini".to_string()));
    assert_eq!(ollama_chat(&r, &up, "gpu1/phi3:mini").await.0, 200);

    // `ollama rm llama3:8b`: withdrawn, and then an unknown model.
    up.set_config(ollama_fake(&["phi3:mini"]));
    assert!(eventually(WAIT, || async { !has(&r, "gpu1/llama3:8b").await }).await);
    assert!(!tag_names(&r).await.contains(&"gpu1/llama3:8b".to_string()));
    let mut res = r.chat("gpu1/llama3:8b", false).await;
    assert_eq!(res.status(), 404);
    let body = res.json::<Value>().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpu1/phi3:mini"),
        "{body}"
    );
}

#[actix_rt::test]
async fn a_stream_in_flight_on_a_withdrawn_model_finishes() {
    let up = FakeUpstream::start(FakeConfig {
        chunks: 20,
        chunk_delay: Duration::from_millis(50),
        ..ollama_fake(&["slow:1b"])
    });
    let r = start(vec![discovering("gpu1", &up.url(), "vllm", json!({}))]);
    assert!(has(&r, "gpu1/slow:1b").await);
    let mut res = r.chat("gpu1/slow:1b", true).await;
    assert_eq!(res.status(), 200);
    let first = res.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    up.set_config(FakeConfig {
        chunks: 20,
        chunk_delay: Duration::from_millis(50),
        ..ollama_fake(&[])
    });
    assert!(eventually(WAIT, || async { !has(&r, "gpu1/slow:1b").await }).await);
    let mut rest = first.to_vec();
    while let Some(chunk) = res.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(rest).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("t19 "), "every token arrived: {text}");
}

#[actix_rt::test]
async fn discover_as_name_serves_a_model_of_several_hosts_under_its_own_name() {
    let a = FakeUpstream::start(ollama_fake(&["mistral:7b", "only-a"]));
    let b = FakeUpstream::start(ollama_fake(&["mistral:7b"]));
    let r = start(vec![
        discovering("a", &a.url(), "ollama", json!({"discover_as": "name"})),
        discovering("b", &b.url(), "vllm", json!({"discover_as": "name"})),
    ]);
    let ids = openai_ids(&r).await;
    assert!(ids.contains(&"mistral:7b".to_string()), "{ids:?}");
    assert!(ids.contains(&"only-a".to_string()), "{ids:?}");
    assert!(!ids.iter().any(|m| m.starts_with("a/")), "{ids:?}");
    let h = r.health().await;
    let m = h["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mistral:7b")
        .unwrap_or_else(|| panic!("{h}"));
    let ids: Vec<&str> = m["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a/mistral:7b", "b/mistral:7b"]);
    // Both replicas serve it (balanced over two requests in turn).
    for _ in 0..4 {
        let mut res = r.chat("mistral:7b", false).await;
        assert_eq!(res.status(), 200);
        let _ = res.body().await;
    }
    let to = |up: &FakeUpstream| {
        up.requests()
            .iter()
            .filter(|q| q.path == "/api/chat" || q.path == "/v1/chat/completions")
            .count()
    };
    assert!(to(&a) >= 1 && to(&b) >= 1, "a {} b {}", to(&a), to(&b));
}

#[actix_rt::test]
async fn a_host_down_at_start_is_listed_once_it_answers() {
    let down = FakeUpstream::start(ollama_fake(&[]));
    let port = down.addr().port();
    let url = down.url();
    down.stop();
    let r = start(vec![discovering("late", &url, "ollama", json!({}))]);
    // Started anyway, serving the configured model.
    let ids = openai_ids(&r).await;
    assert_eq!(ids, vec!["local"]);
    let up = FakeUpstream::start_on(ollama_fake(&["qwen2:7b"]), port);
    assert!(eventually(WAIT, || has(&r, "late/qwen2:7b")).await);
    let (status, sent) = ollama_chat(&r, &up, "late/qwen2:7b").await;
    assert_eq!(status, 200);
    assert_eq!(sent.as_deref(), Some("qwen2:7b"));
}

#[test]
fn wrong_types_of_the_new_keys_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models-config.json");
    let config = models_config(&[(
        "local",
        vec![
            json!({"id": "gpu1", "api_host": "http://127.0.0.1:9", "api_type": "ollama",
                    "discover": "yes", "discover_as": 1, "vram_mb": "8G", "pinned": "no"}),
        ],
    )]);
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let vars = [(
        "LLM_ROUTER_MODELS_CONFIG".to_string(),
        path.display().to_string(),
    )]
    .into_iter()
    .collect();
    let errs = llm_router::Settings::from_vars(&vars)
        .err()
        .unwrap()
        .join("\n");
    for want in [
        "providers[0].discover: must be true or false",
        "providers[0].discover_as: must be \"id\"",
        "providers[0].vram_mb: must be a whole number",
        "providers[0].pinned: must be true or false",
    ] {
        assert!(errs.contains(want), "{want}: {errs}");
    }
    let vars = [(
        "LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS".to_string(),
        "soon".to_string(),
    )]
    .into_iter()
    .collect();
    let errs = llm_router::Settings::from_vars(&vars)
        .err()
        .unwrap()
        .join("\n");
    assert!(
        errs.contains("LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS: expected seconds"),
        "{errs}"
    );
}

#[actix_rt::test]
async fn a_file_reload_keeps_discovered_models_and_lists_new_hosts() {
    let a = FakeUpstream::start(ollama_fake(&["a1"]));
    let b = FakeUpstream::start(ollama_fake(&["b1"]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models-config.json");
    let write = |providers: Vec<(&str, Vec<Value>)>| {
        std::fs::write(
            &path,
            serde_json::to_vec(&models_config(&providers)).unwrap(),
        )
        .unwrap()
    };
    write(vec![(
        "local",
        vec![discovering("gpu1", &a.url(), "ollama", json!({}))],
    )]);
    let file = path.display().to_string();
    let r = Router::start(
        &json!({}),
        &[
            ("LLM_ROUTER_MODELS_CONFIG", &file),
            // No round on a timer during the test: the reload itself asks for one.
            ("LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS", "300"),
            ("LLM_ROUTER_CONFIG_WATCH_SECONDS", "0"),
        ],
    );
    assert!(has(&r, "gpu1/a1").await);
    write(vec![
        (
            "local",
            vec![discovering("gpu1", &a.url(), "ollama", json!({}))],
        ),
        (
            "other",
            vec![discovering("gpu2", &b.url(), "ollama", json!({}))],
        ),
    ]);
    let mut res = client().post(r.url("/router/reload")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.body().await;
    // The reload installs the file merged with the listings it holds: nothing withdrawn.
    let ids = openai_ids(&r).await;
    assert!(ids.contains(&"gpu1/a1".to_string()), "{ids:?}");
    assert!(ids.contains(&"other".to_string()), "{ids:?}");
    assert!(eventually(WAIT, || has(&r, "gpu2/b1")).await);
}
