//! Conformance: every client dialect × every provider type, stream and not, through the real
//! router, compared frame by frame with reviewed golden files in `tests/golden/` (generated ids,
//! timestamps and durations replaced by placeholders). `UPDATE_GOLDEN=1` rewrites the files —
//! review the diff before committing it.

use std::path::PathBuf;

use fake_llm::golden::normalise;
use serde_json::{json, Value};

use crate::common::*;

/// (client name, path, request body builder)
const CLIENTS: &[&str] = &[
    "openai",
    "completions",
    "responses",
    "anthropic",
    "ollama",
    "generate",
];
const PROVIDERS: &[&str] = &["vllm", "ollama", "anthropic"];

fn request(client: &str, model: &str, stream: bool, tools: bool) -> (&'static str, Value) {
    let tool_openai = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let (path, mut body) = match client {
        "openai" => (
            "/v1/chat/completions",
            json!({"model": model, "messages": [
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]}),
        ),
        "completions" => (
            "/v1/completions",
            json!({"model": model, "prompt": "hello there"}),
        ),
        "responses" => (
            "/v1/responses",
            json!({"model": model, "instructions": "be brief",
                                                "input": "hello there"}),
        ),
        "anthropic" => (
            "/v1/messages",
            json!({"model": model, "max_tokens": 64, "system": "be brief",
                                               "messages": [{"role": "user", "content": "hello there"}]}),
        ),
        "ollama" => (
            "/api/chat",
            json!({"model": model, "messages": [
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]}),
        ),
        "generate" => (
            "/api/generate",
            json!({"model": model, "prompt": "hello there", "system": "be brief"}),
        ),
        other => panic!("{other}"),
    };
    body["stream"] = json!(stream);
    if tools {
        body["tools"] = match client {
            "anthropic" => json!([{"name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]),
            "responses" => json!([{"type": "function", "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]),
            _ => tool_openai,
        };
    }
    (path, body)
}

/// The response as reviewed text: status, content type, then one normalised line per frame.
fn render(status: u16, content_type: &str, body: &[u8]) -> String {
    let mut out = format!("{status} {content_type}\n");
    let text = std::str::from_utf8(body).unwrap();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let (prefix, payload) = match line.strip_prefix("data: ") {
            Some(d) => ("data: ", d),
            None => ("", line),
        };
        match serde_json::from_str::<Value>(payload) {
            Ok(mut v) => {
                normalise(&mut v);
                out.push_str(prefix);
                out.push_str(&v.to_string());
            }
            Err(_) => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn golden(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(got, want, "golden file tests/golden/{name} differs");
}

async fn matrix(tools: bool) {
    let fake = FakeConfig {
        chunks: 3,
        tool_arguments: tools.then(|| json!({"city": "Paris"})),
        ..Default::default()
    };
    let ups: Vec<FakeUpstream> = PROVIDERS
        .iter()
        .map(|_| FakeUpstream::start(fake.clone()))
        .collect();
    let models: Vec<(&str, Vec<Value>)> = PROVIDERS
        .iter()
        .zip(&ups)
        .map(|(t, up)| {
            let mut p = provider(&format!("{t}-1"), up);
            p["api_type"] = json!(t);
            p["api_token"] = json!("sk-test");
            p["model_path"] = json!(format!("{t}/upstream-model"));
            (*t, vec![p])
        })
        .collect();
    let r = Router::start(&models_config(&models), &[]);
    // One keep-alive client: all requests reach one router worker, so one upstream pool.
    let c = client();
    for client in CLIENTS {
        if tools && matches!(*client, "completions" | "generate") {
            continue;
        }
        for t in PROVIDERS {
            for stream in [false, true] {
                let (path, body) = request(client, t, stream, tools);
                let mut res = c.post(r.url(path)).send_json(&body).await.unwrap();
                let status = res.status().as_u16();
                let ct = res
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let bytes = res.body().limit(1 << 20).await.unwrap();
                let name = format!(
                    "{client}-to-{t}{}{}.txt",
                    if stream { "-stream" } else { "" },
                    if tools { "-tools" } else { "" }
                );
                golden(&name, &render(status, &ct, &bytes));
            }
        }
    }
    // Every answer, converted or not, was read to its end: each provider saw one connection.
    for (t, up) in PROVIDERS.iter().zip(&ups) {
        let mut ports: Vec<u16> = up.requests().iter().map(|q| q.peer_port).collect();
        ports.dedup();
        assert_eq!(ports.len(), 1, "{t}: requests came over {ports:?}");
    }
}

#[actix_rt::test]
async fn every_client_dialect_against_every_provider_type_matches_its_golden_frames() {
    matrix(false).await;
}

#[actix_rt::test]
async fn tool_calls_in_every_dialect_pair_match_their_golden_frames() {
    matrix(true).await;
}
