//! Client dialects through the real router to an OpenAI-wire provider (the fake): the request is
//! converted on the way in, the answer — every stream frame — on the way out; errors come back in
//! the client's own error shape.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

async fn post(r: &Router, path: &str, body: &Value) -> (u16, String, String) {
    let mut res = client().post(r.url(path)).send_json(body).await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.body().limit(1 << 22).await.unwrap();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

fn ndjson(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `(event name, data)` per SSE frame.
fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|f| !f.trim().is_empty() && !f.starts_with(':'))
        .map(|f| {
            let mut event = String::new();
            let mut data = String::new();
            for l in f.lines() {
                if let Some(e) = l.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = l.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (
                event,
                serde_json::from_str(&data).unwrap_or(Value::String(data)),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn ollama_chat_streams_ndjson_by_default_from_an_openai_provider() {
    let (up, r) = single(FakeConfig::default(), &[]);
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        "options": {"num_predict": 50, "temperature": 0.1}});
    let (status, ct, text) = post(&r, "/api/chat", &body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(ct, "application/x-ndjson");
    let lines = ndjson(&text);
    let content: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "t0 t1 t2 t3 ");
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert!(last["eval_count"].as_u64().unwrap() > 0, "{last}");
    assert!(lines[..lines.len() - 1].iter().all(|l| l["done"] == false));
    let sent = &up.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["stream"], true, "Ollama streams by default");
    assert_eq!(sent.body["max_tokens"], 50);
    assert_eq!(sent.body["temperature"], 0.1);
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}])
    );
}

#[actix_rt::test]
async fn ollama_chat_and_generate_without_streaming_return_one_object() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let chat =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "hi"}]});
    let (status, ct, text) = post(&r, "/api/chat", &chat).await;
    assert_eq!((status, ct.as_str()), (200, "application/json"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["message"],
        json!({"role": "assistant", "content": "t0 t1 t2 t3 "})
    );
    assert_eq!(
        (v["done"].clone(), v["model"].clone()),
        (json!(true), json!("m"))
    );

    let gen = json!({"model": "m", "prompt": "why?", "system": "physicist", "stream": false});
    let (status, _, text) = post(&r, "/api/generate", &gen).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["response"], "t0 t1 t2 t3 ");
    assert_eq!(v["done"], true);
}

#[actix_rt::test]
async fn anthropic_messages_from_an_openai_provider_stream_and_not() {
    let (up, r) = single(FakeConfig::default(), &[]);
    let body = json!({"model": "m", "max_tokens": 64, "system": "be brief",
                      "messages": [{"role": "user", "content": "hello"}]});
    let (status, _, text) = post(&r, "/v1/messages", &body).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "t0 t1 t2 t3 "}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        up.requests()[0].body["messages"][0],
        json!({"role": "system", "content": "be brief"}),
        "Anthropic's top-level system becomes the first message"
    );

    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let (status, ct, text) = post(&r, "/api/v1/messages", &stream).await;
    assert_eq!((status, ct.as_str()), (200, "text/event-stream"), "{text}");
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    let mut want = vec!["message_start", "ping", "content_block_start"];
    want.extend(["content_block_delta"; 4]);
    want.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, want);
    for (name, data) in &events {
        assert_eq!(data["type"], *name, "event name and data type agree");
    }
    assert_eq!(events[8].1["delta"]["stop_reason"], "end_turn");
}

#[actix_rt::test]
async fn responses_api_from_an_openai_provider_stream_and_not() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let body = json!({"model": "m", "instructions": "be brief", "input": "hello"});
    let (status, _, text) = post(&r, "/v1/responses", &body).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], "t0 t1 t2 t3 ");

    let stream = json!({"model": "m", "input": "hello", "stream": true});
    let (status, ct, text) = post(&r, "/responses", &stream).await;
    assert_eq!((status, ct.as_str()), (200, "text/event-stream"), "{text}");
    let events = sse_events(&text);
    assert_eq!(events.first().unwrap().0, "response.created");
    assert_eq!(events.last().unwrap().0, "response.completed");
    let seq: Vec<u64> = events
        .iter()
        .map(|(_, d)| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(seq, (0..events.len() as u64).collect::<Vec<_>>());
    let deltas: String = events
        .iter()
        .filter(|(e, _)| e == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "t0 t1 t2 t3 ");
}

#[actix_rt::test]
async fn errors_come_back_in_the_client_dialects_shape() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    // Anthropic: {"type":"error","error":{type,message}}
    let (status, _, text) = post(
        &r,
        "/v1/messages",
        &json!({"model": "nope", "max_tokens": 5, "messages": []}),
    )
    .await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("available models: m"));
    let (status, _, text) = post(&r, "/v1/messages", &json!({"model": "m", "messages": []})).await;
    assert_eq!(status, 400);
    assert!(text.contains("max_tokens"), "{text}");
    // Ollama: {"error": "..."}
    let (status, _, text) = post(&r, "/api/chat", &json!({"messages": []})).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v, json!({"error": "missing required field \"model\""}));
    let (status, _, text) = post(&r, "/api/generate", &json!({"model": "x", "prompt": "p"})).await;
    assert_eq!(status, 404);
    assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    // Responses: refuses stateful continuation with a reason.
    let (status, _, text) = post(
        &r,
        "/v1/responses",
        &json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("previous_response_id"), "{text}");
}

#[actix_rt::test]
async fn a_provider_rejection_keeps_its_status_and_message_in_the_clients_shape() {
    let (_up, r) = single(
        FakeConfig {
            fault: Fault::Status {
                code: 400,
                message: "context length exceeded".into(),
                retry_after: None,
            },
            ..Default::default()
        },
        &[],
    );
    let (status, _, text) = post(
        &r,
        "/v1/messages",
        &json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["message"], "context length exceeded");
    let (status, _, text) = post(&r, "/api/chat", &json!({"model": "m", "messages": []})).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error": "context length exceeded"})
    );
}

#[actix_rt::test]
async fn a_converted_stream_cut_mid_way_ends_with_an_in_band_error_in_the_clients_dialect() {
    let (_up, r) = single(
        FakeConfig {
            chunks: 10,
            fault: Fault::CutMidStream { after_chunks: 3 },
            ..Default::default()
        },
        &[],
    );
    let (status, _, text) = post(&r, "/api/chat", &json!({"model": "m", "messages": []})).await;
    assert_eq!(status, 200);
    let lines = ndjson(&text);
    assert!(
        !lines.iter().any(|l| l["done"] == true),
        "never a silent success: {text}"
    );
    let last = lines.last().unwrap();
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("provider \"a\" failed mid-response"),
        "{last}"
    );
    assert!(
        lines.len() >= 2,
        "the frames before the cut were delivered: {text}"
    );

    let body = json!({"model": "m", "max_tokens": 9, "stream": true,
                      "messages": [{"role": "user", "content": "x"}]});
    let (_, _, text) = post(&r, "/v1/messages", &body).await;
    let events = sse_events(&text);
    assert!(!events.iter().any(|(e, _)| e == "message_stop"), "{text}");
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["type"], "api_error");
}

#[actix_rt::test]
async fn stream_headers_are_set_on_converted_streams() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let res = client()
        .post(r.url("/api/chat"))
        .send_json(&json!({"model": "m", "messages": []}))
        .await
        .unwrap();
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-cache");
    assert_eq!(res.headers().get("x-accel-buffering").unwrap(), "no");
    assert_eq!(res.headers().get("x-llm-router-provider").unwrap(), "a");
    assert_eq!(res.headers().get("x-llm-router-model").unwrap(), "m");
}

#[actix_rt::test]
async fn converted_streams_reuse_the_upstream_connection() {
    let (up, r) = single(FakeConfig::default(), &[]);
    // One keep-alive client: every request reaches the same router worker, hence the same pool.
    let c = client();
    let requests = [
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/api/generate", json!({"model": "m", "prompt": "hi"})),
        (
            "/api/chat",
            json!({"model": "m", "stream": false,
                             "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 8,
                                "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 8, "stream": true,
                                "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "stream": true,
                                        "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for round in 0..3 {
        for (path, body) in &requests {
            let mut res = c.post(r.url(path)).send_json(body).await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let text = res.body().limit(1 << 20).await.unwrap();
            assert!(!text.is_empty(), "{path} round {round}");
        }
    }
    let sent = up.requests();
    assert_eq!(sent.len(), 18);
    let mut ports: Vec<u16> = sent.iter().map(|q| q.peer_port).collect();
    ports.dedup();
    assert_eq!(
        ports.len(),
        1,
        "every request, converted or not, over one upstream connection: {ports:?}"
    );
}

#[actix_rt::test]
async fn a_converted_stream_ends_at_its_last_frame_and_still_reuses_a_late_ending_connection() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    // A provider whose body ends long after its last frame: the client's stream must end with
    // that frame, i.e. while the provider's response is still open.
    let (slow_end, r) = single(
        FakeConfig {
            end_delay: Duration::from_secs(5),
            ..Default::default()
        },
        &[],
    );
    let mut res = client()
        .post(r.url("/api/chat"))
        .send_json(&body)
        .await
        .unwrap();
    let text = res.body().limit(1 << 20).await.unwrap();
    assert_eq!(
        ndjson(std::str::from_utf8(&text).unwrap()).last().unwrap()["done"],
        true
    );
    assert_eq!(
        slow_end.active(),
        1,
        "the client's stream ended with the provider's last frame, not its late terminator"
    );
    drop(r);

    // The provider sends its last frame, then ends the body 300 ms later (within the router's
    // background drain, which waits up to 1 s): the connection goes back to the pool after it.
    let (up, r) = single(
        FakeConfig {
            end_delay: Duration::from_millis(300),
            ..Default::default()
        },
        &[],
    );
    let c = client();
    for _ in 0..2 {
        let mut res = c.post(r.url("/api/chat")).send_json(&body).await.unwrap();
        let text = res.body().limit(1 << 20).await.unwrap();
        let lines = ndjson(std::str::from_utf8(&text).unwrap());
        assert_eq!(lines.last().unwrap()["done"], true);
        // The provider has ended its body (its terminator is on the wire) …
        assert!(
            eventually(Duration::from_secs(10), || async { up.active() == 0 }).await,
            "the provider's body ended"
        );
        // … and one round trip through the same router worker lets the drain task read it.
        let mut h = c.get(r.url("/health")).send().await.unwrap();
        let _ = h.body().await;
    }
    let ports: Vec<u16> = up.requests().iter().map(|q| q.peer_port).collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(
        ports[0], ports[1],
        "the second request reused the connection"
    );
}
