//! `langchain_rag` (SPEC §7): documents ingested through the route are chunked, embedded by the
//! configured embedding model through the router, persisted, and the top chunks for the last
//! user text are appended to what the provider receives — or the request is refused.

use std::path::Path;

use serde_json::{json, Value};

use crate::common::*;

const LEAD: &str = "If the context below will help answer the above question, use it.\nContext separated with double enter:";

/// A chat model "m" (provider "a") and an embedding model "emb" (provider "e", on its own fake
/// so its requests and faults are apart), with the plugin on over collection "docs".
fn start(chat: &FakeUpstream, emb: &FakeUpstream, dir: &Path, extra: &[(&str, &str)]) -> Router {
    let mut e = provider("e", emb);
    e["is_embedding"] = json!(true);
    let cfg = models_config(&[("m", vec![provider("a", chat)]), ("emb", vec![e])]);
    let dir = dir.display().to_string();
    let mut env: Vec<(&str, &str)> = vec![
        ("LLM_ROUTER_UTILS_PLUGINS_PIPELINE", "langchain_rag"),
        ("LLM_ROUTER_LANGCHAIN_RAG_COLLECTION", "docs"),
        ("LLM_ROUTER_LANGCHAIN_RAG_EMBEDDER", "emb"),
        ("LLM_ROUTER_LANGCHAIN_RAG_PERSIST_DIR", &dir),
        ("LLM_ROUTER_LANGCHAIN_RAG_TOP_K", "2"),
    ];
    env.extend_from_slice(extra);
    Router::start(&cfg, &env)
}

async fn send(r: &Router, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = client();
    let req = match method {
        "GET" => c.get(r.url(path)),
        "DELETE" => c.delete(r.url(path)),
        _ => c.post(r.url(path)),
    };
    let mut res = match body {
        Some(b) => req.send_json(&b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let status = res.status().as_u16();
    let bytes = res.body().limit(1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Adds documents to the collection `docs`.
async fn ingest(r: &Router, body: Value) -> (u16, Value) {
    send(r, "POST", "/api/rag/collections/docs/documents", Some(body)).await
}

fn docs() -> Value {
    json!({"documents": [
        {"id": "vistula", "text": "The Vistula river flows north through Krakow and Warsaw into the Baltic sea.", "metadata": {"src": "geo"}},
        {"id": "pierogi", "text": "Pierogi are dumplings filled with potato and cheese, served with onions."},
        {"id": "tatra", "text": "The Tatra mountains form the border between Poland and Slovakia."}
    ]})
}

/// The last user text the chat provider received.
fn last_user_text(up: &FakeUpstream) -> String {
    let r = up.requests();
    let body = &r.last().expect("the provider got the request").body;
    let m = body["messages"].as_array().unwrap();
    m.last().unwrap()["content"].as_str().unwrap().to_string()
}

#[actix_rt::test]
async fn ingested_documents_are_appended_to_the_last_user_text_and_survive_a_restart() {
    let (chat, emb) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let dir = tempfile::tempdir().unwrap();
    let q = "Where does the Vistula river flow?";
    {
        let r = start(&chat, &emb, dir.path(), &[]);
        let (s, v) = ingest(&r, docs()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["documents"].as_u64(), v["chunks"].as_u64()),
            (Some(3), Some(3)),
            "{v}"
        );
        assert_eq!(v["embedder"], "emb");
        // The chunks were embedded by the embedding model's provider, through the router.
        let e = emb.requests();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "/v1/embeddings");
        assert_eq!(e[0].body["input"].as_array().unwrap().len(), 3);

        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": q}]});
        let (s, v) = send(&r, "POST", "/v1/chat/completions", Some(body)).await;
        assert_eq!(s, 200, "{v}");
        let got = last_user_text(&chat);
        let (head, ctx) = got.split_once("\n\n").unwrap();
        assert_eq!(head, q);
        let chunks = ctx
            .strip_prefix(LEAD)
            .unwrap()
            .strip_prefix("\n\n")
            .unwrap();
        let chunks: Vec<&str> = chunks.split("\n\n").collect();
        assert_eq!(chunks.len(), 2, "top k = 2: {chunks:?}");
        assert!(
            chunks[0].starts_with("The Vistula river flows"),
            "the nearest chunk first: {chunks:?}"
        );
        // The question itself was embedded once more (the query).
        assert_eq!(emb.requests().len(), 2);
        // Earlier turns are untouched.
        let sent = chat.requests().last().unwrap().body.clone();
        assert_eq!(sent["messages"][0]["content"], "hi");
        assert!(dir.path().join("docs.jsonl").exists());
    }
    // A new router over the same directory answers from the stored index.
    let r = start(&chat, &emb, dir.path(), &[]);
    let (s, v) = send(&r, "GET", "/api/rag/collections/docs", None).await;
    assert_eq!((s, v["chunks"].as_u64()), (200, Some(3)), "{v}");
    let (s, _) = send(
        &r,
        "POST",
        "/api/chat",
        Some(json!({"model": "m", "stream": false,
        "messages": [{"role": "user", "content": "Tell me about the Tatra mountains"}]})),
    )
    .await;
    assert_eq!(s, 200);
    let got = last_user_text(&chat);
    assert!(
        got.contains(&format!("{LEAD}\n\nThe Tatra mountains form the border")),
        "{got}"
    );
    // Built-in conversation routes: `user_last_statement` gets the context.
    let (s, v) = send(
        &r,
        "POST",
        "/api/conversation_with_model",
        Some(json!({"model_name": "m",
        "user_last_statement": "pierogi with cheese?"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        last_user_text(&chat).contains("\n\nPierogi are dumplings"),
        "{}",
        last_user_text(&chat)
    );
}

#[actix_rt::test]
async fn reingesting_a_document_replaces_it_and_delete_removes_the_collection() {
    let (chat, emb) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let dir = tempfile::tempdir().unwrap();
    let r = start(
        &chat,
        &emb,
        dir.path(),
        &[
            ("LLM_ROUTER_LANGCHAIN_RAG_CHUNK_SIZE", "40"),
            ("LLM_ROUTER_LANGCHAIN_RAG_CHUNK_OVERLAP", "10"),
        ],
    );
    let (s, v) = ingest(&r, docs()).await;
    assert_eq!(s, 200, "{v}");
    let long = v["chunks"].as_u64().unwrap();
    assert!(long > 3, "40-character chunks: {v}");
    let (s, v) = ingest(
        &r,
        json!({"documents": [
        {"id": "vistula", "text": "Short now."}]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["documents"], 3);
    assert!(v["chunks"].as_u64().unwrap() < long);
    let (s, v) = send(&r, "GET", "/api/rag/collections", None).await;
    assert_eq!(
        (s, v["collections"][0]["name"].as_str()),
        (200, Some("docs")),
        "{v}"
    );
    let (s, v) = send(&r, "DELETE", "/api/rag/collections/docs", None).await;
    assert_eq!((s, v["deleted"].as_str()), (200, Some("docs")), "{v}");
    assert!(!dir.path().join("docs.jsonl").exists());
    // Now the query collection is unknown: the request is refused, not answered without context.
    let before = chat.requests().len();
    let (s, v) = send(
        &r,
        "POST",
        "/v1/chat/completions",
        Some(chat_body("m", false)),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("collection \"docs\" not found"), "{msg}");
    assert_eq!(
        chat.requests().len(),
        before,
        "nothing reached the provider"
    );
    let (s, _) = send(&r, "DELETE", "/api/rag/collections/docs", None).await;
    assert_eq!(s, 404);
    let (s, _) = send(&r, "GET", "/api/rag/collections/nope", None).await;
    assert_eq!(s, 404);
}

#[actix_rt::test]
async fn an_embedding_model_that_is_down_gives_502_naming_it_and_bad_bodies_400_naming_the_field() {
    let (chat, emb) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let dir = tempfile::tempdir().unwrap();
    let r = start(&chat, &emb, dir.path(), &[]);
    let (s, _) = ingest(&r, docs()).await;
    assert_eq!(s, 200);
    emb.set_fault(Fault::Status {
        code: 500,
        message: "boom".into(),
        retry_after: None,
    });
    let before = chat.requests().len();
    for (path, body) in [
        ("/v1/chat/completions", chat_body("m", false)),
        ("/v1/chat/completions", chat_body("m", true)),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}),
        ),
    ] {
        let (s, v) = send(&r, "POST", path, Some(body)).await;
        assert_eq!(s, 502, "{path}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("embedding model \"emb\""), "{path}: {v}");
        // The provider is named: tried and failed, or its circuit open after the failures.
        assert!(
            msg.contains("tried e (") || msg.contains("circuit open: e"),
            "{path}: {v}"
        );
    }
    assert_eq!(
        chat.requests().len(),
        before,
        "never answered without context"
    );
    let (s, v) = ingest(&r, docs()).await;
    assert_eq!(s, 502, "{v}");
    emb.set_fault(Fault::None);

    for (body, field) in [
        (json!({}), "documents"),
        (json!({"documents": [{"id": "x"}]}), "documents[0].text"),
        (
            json!({"documents": [{"id": "x", "text": "t", "metadata": []}]}),
            "documents[0].metadata",
        ),
    ] {
        let (s, v) = ingest(&r, body).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error"]["param"], field, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    let (s, v) = send(
        &r,
        "POST",
        "/api/rag/collections/.bad/documents",
        Some(docs()),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // No user text to retrieve for: 400 naming the field.
    let (s, v) = send(
        &r,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "m",
        "messages": [{"role": "system", "content": "s"}]})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("messages")),
        "{v}"
    );
}

#[actix_rt::test]
async fn without_the_plugin_the_routes_answer_404_and_bad_settings_stop_the_start() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let (s, v) = ingest(&r, docs()).await;
    assert_eq!(s, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("langchain_rag plugin is off"),
        "{v}"
    );
    let up = FakeUpstream::start(FakeConfig::default());
    let cfg = models_config(&[("m", vec![provider("a", &up)])]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let vars: std::collections::HashMap<String, String> = [
        ("LLM_ROUTER_MODELS_CONFIG", path.display().to_string()),
        (
            "LLM_ROUTER_UTILS_PLUGINS_PIPELINE",
            "langchain_rag,nonsense".to_string(),
        ),
        ("LLM_ROUTER_LANGCHAIN_RAG_EMBEDDER", "m".to_string()),
        ("LLM_ROUTER_LANGCHAIN_RAG_CHUNK_OVERLAP", "500".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let errs = llm_router::Settings::from_vars(&vars)
        .err()
        .unwrap()
        .join("\n");
    for want in [
        "unknown utils plugin \"nonsense\"",
        "LLM_ROUTER_LANGCHAIN_RAG_COLLECTION",
        "model \"m\" has no provider with \"is_embedding\": true",
        "CHUNK_OVERLAP: 500 must be less than",
    ] {
        assert!(errs.contains(want), "{want}: {errs}");
    }
}

#[actix_rt::test]
async fn with_auth_on_ingest_needs_a_developer_or_admin_key() {
    let (chat, emb) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        json!([{"key_plain": "sk-test-dev-00000000000", "key_id": "dev", "policy_name": "developer"},
               {"key_plain": "sk-test-chat-0000000000", "key_id": "chat", "policy_name": "chat"}])
        .to_string(),
    )
    .unwrap();
    let keys = keys.display().to_string();
    let r = start(
        &chat,
        &emb,
        &dir.path().join("rag"),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
        ],
    );
    let ingest = |key: Option<&'static str>| {
        let mut req = client().post(r.url("/api/rag/collections/docs/documents"));
        if let Some(k) = key {
            req = req.insert_header(("Authorization", format!("Bearer {k}")));
        }
        async move { req.send_json(&docs()).await.unwrap().status().as_u16() }
    };
    assert_eq!(ingest(None).await, 401);
    assert_eq!(ingest(Some("sk-test-chat-0000000000")).await, 403);
    assert_eq!(ingest(Some("sk-test-dev-00000000000")).await, 200);
    // A chat key's request gets the context like any other.
    let mut res = client()
        .post(r.url("/v1/chat/completions"))
        .insert_header(("Authorization", "Bearer sk-test-chat-0000000000"))
        .send_json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "Tatra mountains?"}]}),
        )
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let _ = res.body().await;
    assert!(last_user_text(&chat).contains(LEAD));
}
