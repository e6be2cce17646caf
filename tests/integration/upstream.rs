//! Both upstream clients carry the same requests and fail the same ways: the relay's own
//! HTTP/1.1 client (`src/relay/h1.rs`, the default for `http://` providers) and awc
//! (`LLM_ROUTER_UPSTREAM_AWC=true`, and always for `https://`). Every other relay test runs on
//! the default; these run each case on both.

use serde_json::{json, Value};

use crate::common::*;

const CLIENTS: [(&str, &[(&str, &str)]); 2] = [
    ("builtin", &[]),
    ("awc", &[("LLM_ROUTER_UPSTREAM_AWC", "true")]),
];

/// A router over `providers` of model `m`, tried in order (`first_available`), on client `env`.
fn in_order(providers: Vec<Value>, env: &[(&str, &str)]) -> Router {
    let env = [env, &[("LLM_ROUTER_BALANCE_STRATEGY", "first_available")]].concat();
    Router::start(&models_config(&[("m", providers)]), &env)
}

/// A non-stream chat that provider "good" answered in full; returns its decision header.
async fn answered_by_good(r: &Router, name: &str) -> String {
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 200, "{name}");
    assert_eq!(
        res.headers().get("x-llm-router-provider").unwrap(),
        "good",
        "{name}"
    );
    let decision = res.headers().get("x-llm-router-decision").unwrap();
    let decision = decision.to_str().unwrap().to_string();
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], "t0 t1 t2 t3 ",
        "{name}"
    );
    decision
}

#[actix_rt::test]
async fn both_clients_send_the_same_request_and_keep_the_connection() {
    for (name, env) in CLIENTS {
        let up = FakeUpstream::start(FakeConfig {
            require_bearer: Some("sk-up".into()),
            ..Default::default()
        });
        let mut p = provider("a", &up);
        p["api_token"] = json!("sk-up");
        p["model_path"] = json!("org/model-7b");
        let r = Router::start(&models_config(&[("m", vec![p])]), env);
        // One client connection, so one router worker (each worker has its own upstream pool).
        let c = client();
        for stream in [false, true, false, true] {
            let mut res = c
                .post(r.url("/v1/chat/completions"))
                .insert_header(("x-request-id", "rid-42"))
                .send_json(&chat_body("m", stream))
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{name} stream={stream}");
            let body = res.body().await.unwrap();
            let text = std::str::from_utf8(&body).unwrap();
            if stream {
                let frames = sse_data(text);
                assert_eq!(frames.last().map(String::as_str), Some("[DONE]"), "{name}");
                let content: String = frames[..frames.len() - 1]
                    .iter()
                    .map(|f| serde_json::from_str::<Value>(f).unwrap())
                    .filter_map(|v| {
                        v["choices"][0]["delta"]["content"]
                            .as_str()
                            .map(String::from)
                    })
                    .collect();
                assert_eq!(content, "t0 t1 t2 t3 ", "{name}");
            } else {
                let v: Value = serde_json::from_str(text).unwrap();
                assert_eq!(
                    v["choices"][0]["message"]["content"], "t0 t1 t2 t3 ",
                    "{name}"
                );
            }
        }
        let seen = up.requests();
        assert_eq!(seen.len(), 4, "{name}");
        for (req, stream) in seen.iter().zip([false, true, false, true]) {
            assert_eq!(req.path, "/v1/chat/completions", "{name}");
            assert_eq!(req.header("authorization"), Some("Bearer sk-up"), "{name}");
            assert_eq!(
                req.header("content-type"),
                Some("application/json"),
                "{name}"
            );
            let accept = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            assert_eq!(req.header("accept"), Some(accept), "{name}");
            assert_eq!(req.header("x-request-id"), Some("rid-42"), "{name}");
            assert_eq!(req.body["model"], "org/model-7b", "{name}");
        }
        // One request at a time, each answer read to its end: one connection carried them all.
        let ports: Vec<u16> = seen.iter().map(|q| q.peer_port).collect();
        assert!(ports.iter().all(|p| *p == ports[0]), "{name}: {ports:?}");
    }
}

#[actix_rt::test]
async fn both_clients_fail_over_from_a_refused_connection_and_a_503() {
    for (name, env) in CLIENTS {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let busy = FakeUpstream::start(FakeConfig {
            fault: Fault::Status {
                code: 503,
                message: "overloaded".into(),
                retry_after: None,
            },
            ..Default::default()
        });
        let good = FakeUpstream::start(FakeConfig::default());
        let mut refused = provider("refused", &good);
        refused["api_host"] = json!(dead_url);
        let r = in_order(
            vec![refused, provider("busy", &busy), provider("good", &good)],
            env,
        );
        let decision = answered_by_good(&r, name).await;
        assert!(
            decision.contains("refused") && decision.contains("busy"),
            "{name}: both failed attempts are in the decision: {decision}"
        );
        assert_eq!(busy.requests().len(), 1, "{name}");
    }
}

#[actix_rt::test]
async fn both_clients_turn_a_cut_into_the_same_outcomes() {
    for (name, env) in CLIENTS {
        // Mid-stream, after the first byte: an in-band error frame, never a silent success.
        let (_up, r) = single(
            FakeConfig {
                chunks: 10,
                fault: Fault::CutMidStream { after_chunks: 3 },
                ..Default::default()
            },
            env,
        );
        let mut res = r.chat("m", true).await;
        assert_eq!(res.status(), 200, "{name}");
        let body = res.body().await.unwrap();
        let frames = sse_data(std::str::from_utf8(&body).unwrap());
        assert_eq!(
            frames.len(),
            4,
            "{name}: 3 frames, then the error: {frames:?}"
        );
        let err: Value = serde_json::from_str(frames.last().unwrap()).unwrap();
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("provider \"a\" failed mid-response"),
            "{name}: {msg}"
        );
        // A non-stream answer cut short fails over before anything reached the client.
        let cut = FakeUpstream::start(FakeConfig {
            chunks: 10,
            fault: Fault::CutMidStream { after_chunks: 3 },
            ..Default::default()
        });
        let good = FakeUpstream::start(FakeConfig::default());
        let r = in_order(vec![provider("cut", &cut), provider("good", &good)], env);
        answered_by_good(&r, name).await;
        assert_eq!(cut.requests().len(), 1, "{name}");
    }
}
