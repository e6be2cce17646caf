//! OpenAI chat completions through the router: passthrough, rewriting, streaming.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::*;

#[actix_rt::test]
async fn non_stream_is_forwarded_with_model_rewritten_and_token_as_bearer() {
    let up = FakeUpstream::start(FakeConfig {
        require_bearer: Some("sk-upstream".into()),
        ..Default::default()
    });
    let mut p = provider("gemma-a", &up);
    p["model_path"] = json!("google/gemma-3-12b-it");
    p["api_token"] = json!("sk-upstream");
    let r = Router::start(&models_config(&[("gemma", vec![p])]), &[]);
    let body = json!({"model": "gemma", "messages": [{"role": "user", "content": "hi"}],
                      "temperature": 0.25, "max_tokens": 3, "vendor_extension": {"x": [1, 2]}});
    for path in [
        "/v1/chat/completions",
        "/chat/completions",
        "/api/chat/completions",
        "/api/v1/chat/completions",
    ] {
        let mut res = client()
            .post(r.url(path))
            .insert_header(("authorization", "Bearer client-key-must-not-leak"))
            .send_json(&body)
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            res.headers().get("x-llm-router-provider").unwrap(),
            "gemma-a"
        );
        assert_eq!(res.headers().get("x-llm-router-model").unwrap(), "gemma");
        assert!(res.headers().contains_key("x-request-id"));
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "t0 t1 t2 ");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(
            v["model"], "google/gemma-3-12b-it",
            "provider's body passes through untouched"
        );
    }
    let seen = up.requests();
    assert_eq!(seen.len(), 4);
    for req in &seen {
        assert_eq!(req.path, "/v1/chat/completions");
        assert_eq!(req.header("authorization"), Some("Bearer sk-upstream"));
        assert_eq!(req.body["model"], "google/gemma-3-12b-it");
        assert_eq!(req.body["temperature"], 0.25);
        assert_eq!(req.body["vendor_extension"], json!({"x": [1, 2]}));
        assert_eq!(req.body["messages"], body["messages"]);
    }
}

#[actix_rt::test]
async fn tools_are_stripped_only_for_providers_without_tool_calling() {
    let up = FakeUpstream::start(FakeConfig::default());
    let mut p = provider("a", &up);
    p["tool_calling"] = json!(false);
    let r = Router::start(&models_config(&[("m", vec![p])]), &[]);
    let mut body = chat_body("m", false);
    body["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    body["tool_choice"] = json!("auto");
    let res = client()
        .post(r.url("/v1/chat/completions"))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sent = &up.requests()[0].body;
    assert!(
        sent.get("tools").is_none() && sent.get("tool_choice").is_none(),
        "{sent}"
    );
    assert_eq!(sent["messages"], body["messages"]);
}

#[actix_rt::test]
async fn stream_passes_frames_through_as_they_arrive() {
    let (_up, r) = single(
        FakeConfig {
            chunks: 5,
            chunk_delay: Duration::from_millis(150),
            ..Default::default()
        },
        &[],
    );
    let sent = Instant::now();
    let mut res = r.chat("m", true).await;
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert!(h
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(h.get("cache-control").unwrap(), "no-cache");
    assert_eq!(h.get("x-accel-buffering").unwrap(), "no");
    assert_eq!(h.get("x-llm-router-provider").unwrap(), "a");
    let mut body = Vec::new();
    let mut first_at = None;
    while let Some(chunk) = res.next().await {
        let chunk = chunk.unwrap();
        if first_at.is_none() && !chunk.is_empty() {
            first_at = Some(sent.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    let total = sent.elapsed();
    let first_at = first_at.unwrap();
    // 6 delays of 150 ms follow the first frame: if the router buffered, the first byte would
    // arrive with the last.
    assert!(
        first_at + Duration::from_millis(600) < total,
        "first frame at {first_at:?}, end at {total:?}"
    );
    let frames = sse_data(std::str::from_utf8(&body).unwrap());
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "t0 t1 t2 t3 t4 ");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
}

#[actix_rt::test]
async fn stream_bytes_are_identical_to_the_providers() {
    // Same provider, same request: direct and through the router differ only in ids and timestamps.
    let (up, r) = single(
        FakeConfig {
            chunks: 3,
            ..Default::default()
        },
        &[],
    );
    let strip = |s: &str| -> Vec<Value> {
        sse_data(s)
            .iter()
            .map(|f| match serde_json::from_str::<Value>(f) {
                Ok(mut v) => {
                    v["id"] = json!(null);
                    v["created"] = json!(null);
                    v
                }
                Err(_) => json!(f),
            })
            .collect()
    };
    let mut direct = client()
        .post(format!("{}/v1/chat/completions", up.url()))
        .send_json(&chat_body("m", true))
        .await
        .unwrap();
    let direct = direct.body().await.unwrap();
    let mut routed = r.chat("m", true).await;
    let routed = routed.body().await.unwrap();
    let (d, rt) = (
        std::str::from_utf8(&direct).unwrap(),
        std::str::from_utf8(&routed).unwrap(),
    );
    assert_eq!(d.len(), rt.len(), "same byte length");
    assert_eq!(strip(d), strip(rt));
}

#[actix_rt::test]
async fn request_id_is_kept_and_sent_upstream() {
    let (up, r) = single(FakeConfig::default(), &[]);
    let res = client()
        .post(r.url("/v1/chat/completions"))
        .insert_header(("x-request-id", "req-12345"))
        .send_json(&chat_body("m", false))
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "req-12345");
    assert_eq!(up.requests()[0].header("x-request-id"), Some("req-12345"));
    let res = client().get(r.url("/api/ping")).send().await.unwrap();
    let generated = res.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(
        generated.len(),
        36,
        "a UUID when the client sends none: {generated}"
    );
}

#[actix_rt::test]
async fn balanced_spreads_requests_over_providers() {
    let a = FakeUpstream::start(FakeConfig {
        name: "a".into(),
        ..Default::default()
    });
    let b = FakeUpstream::start(FakeConfig {
        name: "b".into(),
        ..Default::default()
    });
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &a), provider("b", &b)])]),
        &[],
    );
    for _ in 0..20 {
        let res = r.chat("m", false).await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!((a.request_count(), b.request_count()), (10, 10));
}
