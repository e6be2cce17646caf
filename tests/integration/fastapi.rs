//! The FastAPI failover router's environment-only configuration: no models-config file, only its
//! variables, against fake upstreams.

use serde_json::{json, Value};

use crate::common::*;

/// A router configured only by `vars` (the models-config path names no file).
fn start(vars: &[(&str, &str)]) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir
        .path()
        .join("no-models-config.json")
        .display()
        .to_string();
    let mut env = vec![("LLM_ROUTER_MODELS_CONFIG", missing.as_str())];
    env.extend_from_slice(vars);
    let r = Router::start(&json!({}), &env);
    (dir, r)
}

fn services(first: &FakeUpstream, second: &FakeUpstream, first_limit: Option<u32>) -> String {
    let mut a = json!({"name": "first", "backend_type": "custom", "base_url": format!("{}/v1", first.url()),
                       "api_key": "upstream-token-1", "priority": 1});
    if let Some(n) = first_limit {
        a["rate_limit_requests"] = json!(n);
        a["rate_limit_window"] = json!(60);
    }
    let b = json!({"name": "second", "backend_type": "openai", "base_url": format!("{}/v1/", second.url()),
                   "api_key": "upstream-token-2", "priority": 2});
    json!([b, a]).to_string()
}

async fn chat(r: &Router, model: &str, header: Option<(&str, &str)>) -> (u16, Value) {
    let mut req = client().post(r.url("/v1/chat/completions"));
    if let Some(h) = header {
        req = req.insert_header(h);
    }
    let mut res = req.send_json(&chat_body(model, false)).await.unwrap();
    let v = res
        .json::<Value>()
        .limit(1 << 20)
        .await
        .unwrap_or(Value::Null);
    (res.status().as_u16(), v)
}

#[actix_rt::test]
async fn fastapi_env_serves_any_model_by_priority_with_its_keys_and_fails_over() {
    let up1 = FakeUpstream::start(FakeConfig {
        require_bearer: Some("upstream-token-1".into()),
        ..Default::default()
    });
    let up2 = FakeUpstream::start(FakeConfig {
        require_bearer: Some("upstream-token-2".into()),
        ..Default::default()
    });
    let svc = services(&up1, &up2, None);
    let (_dir, r) = start(&[
        ("ROUTER_SERVICES", &svc),
        ("AUTH_KEY_01", "client-key-0001"),
        ("AUTH_KEY_02", "client-key-0002"),
        ("AUTH_HEADER_NAME", "X-Router-Key"),
    ]);
    // ENABLE_AUTH defaults to on, as in the original.
    let (status, _) = chat(&r, "gpt-4o-mini", None).await;
    assert_eq!(status, 401);
    let (status, _) = chat(
        &r,
        "gpt-4o-mini",
        Some(("authorization", "Bearer not-a-key")),
    )
    .await;
    assert_eq!(status, 401);

    // Any model name; the priority-1 service answers, with the name asked for.
    let (status, body) = chat(
        &r,
        "gpt-4o-mini",
        Some(("authorization", "Bearer client-key-0001")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "gpt-4o-mini");
    let sent = up1.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["model"], "gpt-4o-mini");
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer upstream-token-1"),
        "the service's own token, never the client's key"
    );
    // The key in AUTH_HEADER_NAME, with or without "Bearer ".
    for value in ["client-key-0002", "Bearer client-key-0002"] {
        let (status, body) = chat(&r, "llama-3.3-70b", Some(("x-router-key", value))).await;
        assert_eq!(status, 200, "{value}: {body}");
    }
    assert_eq!(up1.request_count(), 3);
    assert_eq!(up2.request_count(), 0);

    // The priority-1 service fails: priority 2 answers.
    up1.set_fault(Fault::Status {
        code: 503,
        message: "overloaded".into(),
        retry_after: None,
    });
    let (status, body) = chat(
        &r,
        "gpt-4o-mini",
        Some(("authorization", "Bearer client-key-0001")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = up2.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["model"], "gpt-4o-mini");
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer upstream-token-2")
    );
    // The catch-all shows in /health, under the services' names.
    let h = r.health().await;
    let ids: Vec<&str> = h["models"][0]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (h["models"][0]["name"].as_str(), ids),
        (Some("*"), vec!["first", "second"])
    );
}

#[actix_rt::test]
async fn fastapi_rate_limit_window_sends_the_overflow_to_the_next_service() {
    let (up1, up2) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let svc = services(&up1, &up2, Some(2));
    let (_dir, r) = start(&[("ROUTER_SERVICES", &svc), ("ENABLE_AUTH", "false")]);
    for _ in 0..5 {
        let (status, body) = chat(&r, "any-model", None).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        (up1.request_count(), up2.request_count()),
        (2, 3),
        "2 requests per 60 s window on the first service, the rest on the second"
    );
}

#[actix_rt::test]
async fn fastapi_shortcut_variables_point_at_the_given_base_url() {
    let up = FakeUpstream::start(FakeConfig {
        require_bearer: Some("sk-test".into()),
        ..Default::default()
    });
    let base = format!("{}/v1", up.url());
    let (_dir, r) = start(&[
        ("OPENAI_API_KEY", "sk-test"),
        ("OPENAI_BASE_URL", &base),
        ("ENABLE_AUTH", "0"),
    ]);
    let (status, body) = chat(&r, "gpt-4.1", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.requests()[0].body["model"], "gpt-4.1");
}

#[actix_rt::test]
async fn fastapi_auth_key_in_a_plain_authorization_header_as_the_original_accepts() {
    let up = FakeUpstream::start(FakeConfig::default());
    let base = format!("{}/v1", up.url());
    let (_dir, r) = start(&[
        ("OLLAMA_BASE_URL", &base),
        ("AUTH_KEY", "solo-key-1234"),
        ("AUTH_KEY_01", "ignored-key-99"),
    ]);
    for (header, want) in [
        (("authorization", "solo-key-1234"), 200),
        (("authorization", "Bearer solo-key-1234"), 200),
        (("x-api-key", "solo-key-1234"), 200),
        (("authorization", "ignored-key-99"), 401),
    ] {
        let (status, body) = chat(&r, "llama3.1:8b", Some(header)).await;
        assert_eq!(status, want, "{header:?}: {body}");
    }
    assert_eq!(up.requests()[0].body["model"], "llama3.1:8b");
    assert!(
        up.requests()
            .iter()
            .all(|q| q.header("authorization").is_none() && q.header("x-api-key").is_none()),
        "the ollama service has no token and the client's key is never forwarded"
    );
}
