//! Bad input and upstream failures: each has its status, a message naming what is wrong, and the
//! OpenAI error shape.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

async fn post_raw(r: &Router, body: &'static str) -> (u16, Value) {
    let mut res = client()
        .post(r.url("/v1/chat/completions"))
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap())
}

#[actix_rt::test]
async fn malformed_and_ill_typed_requests_are_400_naming_the_field() {
    let (up, r) = single(FakeConfig::default(), &[]);
    let cases: &[(&str, &str, Value)] = &[
        (
            "{\"model\": \"m\", ",
            "malformed JSON in request body: EOF while parsing a value at line 1 column 15",
            json!(null),
        ),
        ("[1]", "request body must be a JSON object", json!(null)),
        (
            "",
            "request body is empty; expected a JSON object",
            json!(null),
        ),
        (
            r#"{"messages": []}"#,
            "missing required field \"model\"",
            json!("model"),
        ),
        (
            r#"{"model": 42, "messages": []}"#,
            "\"model\" must be a string",
            json!("model"),
        ),
        (
            r#"{"model": "m"}"#,
            "missing required field \"messages\"",
            json!("messages"),
        ),
        (
            r#"{"model": "m", "messages": [], "stream": "yes"}"#,
            "\"stream\" must be true or false",
            json!("stream"),
        ),
    ];
    for (body, message, param) in cases {
        let (status, v) = post_raw(&r, body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(v["error"]["message"], *message, "{body}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], *param);
        assert_eq!(v["error"]["code"], 400);
    }
    assert_eq!(up.request_count(), 0, "nothing bad reached the provider");
}

#[actix_rt::test]
async fn unknown_model_is_404_listing_the_available_ones() {
    let up = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[
            ("m1", vec![provider("a", &up)]),
            ("m2", vec![provider("b", &up)]),
        ]),
        &[],
    );
    let mut res = r.chat("gpt-9", false).await;
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "model \"gpt-9\" not found; available models: m1, m2"
    );
    assert_eq!(v["error"]["param"], "model");
}

#[actix_rt::test]
async fn oversized_body_is_413_whether_declared_or_streamed() {
    let (up, r) = single(
        FakeConfig::default(),
        &[("LLM_ROUTER_MAX_REQUEST_BODY_SIZE", "1000")],
    );
    let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(2000)}]});
    let mut res = client()
        .post(r.url("/v1/chat/completions"))
        .send_json(&big)
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "request body exceeds the limit of 1000 bytes"
    );
    // Chunked, without Content-Length.
    let chunks = futures_util::stream::iter(
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from_static(&[b' '; 100]))),
    );
    let res = client()
        .post(r.url("/v1/chat/completions"))
        .send_stream(chunks)
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let ok = r.chat("m", false).await;
    assert_eq!(ok.status(), 200, "a body under the limit still passes");
    assert_eq!(up.request_count(), 1);
}

#[actix_rt::test]
async fn unreachable_provider_is_502_naming_its_id_but_not_its_address() {
    // A port that refuses connections: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = models_config(&[(
        "m",
        vec![
            json!({"id": "dead-1", "api_host": format!("http://127.0.0.1:{port}"), "api_type": "vllm",
                    "api_token": "sk-secret-token"}),
        ],
    )]);
    let r = Router::start(&cfg, &[]);
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 502);
    let body = res.body().await.unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        v["error"]["message"],
        "model \"m\": every provider failed; tried dead-1 (connection failed)"
    );
    assert!(
        !text.contains(&port.to_string())
            && !text.contains("127.0.0.1")
            && !text.contains("sk-secret")
    );
}

#[actix_rt::test]
async fn upstream_timeout_is_504_and_cancels_the_upstream_call() {
    let (up, r) = single(
        FakeConfig {
            fault: Fault::Hang,
            ..Default::default()
        },
        &[("LLM_ROUTER_EXTERNAL_TIMEOUT", "0.5")],
    );
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 504);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "model \"m\": every provider failed; tried a (no response within 0.5s)"
    );
    assert!(
        eventually(Duration::from_secs(3), || async { up.active() == 0 }).await,
        "upstream request dropped"
    );
    assert_eq!(up.cancelled(), 1);
}

#[actix_rt::test]
async fn client_request_timeout_is_504() {
    let (_up, r) = single(
        FakeConfig {
            fault: Fault::Hang,
            ..Default::default()
        },
        &[("LLM_ROUTER_TIMEOUT", "0.3")],
    );
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 504);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "request exceeded the router's time limit of 0.3s"
    );
}

#[actix_rt::test]
async fn upstream_4xx_caused_by_the_request_passes_through_with_its_message() {
    let up = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 400,
            message: "This model's maximum context length is 4096 tokens".into(),
            retry_after: None,
        },
        ..Default::default()
    });
    let other = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up), provider("b", &other)])]),
        &[],
    );
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "This model's maximum context length is 4096 tokens"
    );
    assert_eq!(
        other.request_count(),
        0,
        "a client error is not retried elsewhere"
    );
    // ...and never counts against the provider.
    for _ in 0..5 {
        r.chat("m", false).await;
    }
    assert_eq!(r.provider_status("a").await["state"], "healthy");
}

#[actix_rt::test]
async fn a_5xx_fails_over_to_another_provider_before_any_byte_is_sent() {
    let bad = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 500,
            message: "CUDA out of memory".into(),
            retry_after: None,
        },
        ..Default::default()
    });
    let good = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[("m", vec![provider("bad", &bad), provider("good", &good)])]),
        &[],
    );
    for stream in [false, true] {
        let mut res = client()
            .post(r.url("/v1/chat/completions"))
            .send_json(&chat_body("m", stream))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("x-llm-router-provider").unwrap(), "good");
        let body = res.body().await.unwrap();
        assert!(std::str::from_utf8(&body).unwrap().contains("t0 "));
    }
    // Alone, the failing provider yields a 502 naming it and the status it gave.
    let r = Router::start(&models_config(&[("m", vec![provider("bad", &bad)])]), &[]);
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "model \"m\": every provider failed; tried bad (HTTP 500)"
    );
}

#[actix_rt::test]
async fn rate_limited_everywhere_is_429_with_retry_after() {
    let (_up, r) = single(
        FakeConfig {
            fault: Fault::Status {
                code: 429,
                message: "slow down".into(),
                retry_after: Some(7),
            },
            ..Default::default()
        },
        &[],
    );
    let res = r.chat("m", false).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers().get("retry-after").unwrap(), "7");
}

#[actix_rt::test]
async fn repeated_failures_open_the_circuit_and_health_turns_503() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = models_config(&[(
        "m",
        vec![
            json!({"id": "dead", "api_host": format!("http://127.0.0.1:{port}"), "api_type": "openai"}),
        ],
    )]);
    let r = Router::start(&cfg, &[]);
    for _ in 0..3 {
        let res = r.chat("m", false).await;
        assert_eq!(res.status(), 502);
    }
    assert!(
        eventually(Duration::from_secs(2), || async {
            r.provider_status("dead").await["state"] == "open"
        })
        .await
    );
    let mut res = client().get(r.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "unavailable");
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "no healthy provider for model \"m\" (circuit open: dead)"
    );
}
