//! Info routes, listings, 404/405.

use serde_json::{json, Value};

use crate::common::*;

fn two_models() -> (FakeUpstream, Value) {
    let up = FakeUpstream::start(FakeConfig::default());
    let mut p = provider("gemma-a", &up);
    p["api_token"] = json!("sk-very-secret");
    let cfg = models_config(&[("gemma", vec![p]), ("qwen", vec![provider("qwen-a", &up)])]);
    (up, cfg)
}

#[actix_rt::test]
async fn root_ping_version() {
    let (_up, cfg) = two_models();
    let r = Router::start(&cfg, &[]);
    let c = client();
    let mut res = c.get(r.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(res.body().await.unwrap(), "Ollama is running");

    let mut res = c.get(r.url("/api/ping")).send().await.unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": true, "body": "pong"})
    );
    let mut res = c.get(r.url("/api/version")).send().await.unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"version": env!("CARGO_PKG_VERSION")})
    );
}

#[actix_rt::test]
async fn model_listings_in_openai_shape_on_every_path() {
    let (_up, cfg) = two_models();
    let r = Router::start(&cfg, &[]);
    for path in ["/models", "/v1/models", "/api/models"] {
        let mut res = client().get(r.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["object"], "list");
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gemma", "qwen"], "{path}");
        for m in v["data"].as_array().unwrap() {
            assert_eq!(m["object"], "model");
            assert!(m["created"].as_u64().unwrap() > 1_700_000_000);
            assert_eq!(m["owned_by"], "test_models");
        }
    }
}

#[actix_rt::test]
async fn tags_have_the_ollama_shape_and_leak_no_host_or_token() {
    let (up, cfg) = two_models();
    let r = Router::start(&cfg, &[("LLM_ROUTER_EP_PREFIX", "/ollama")]);
    let mut res = client().get(r.url("/ollama/tags")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.body().await.unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(
        !text.contains(&up.addr().port().to_string()),
        "no provider address: {text}"
    );
    assert!(!text.contains("sk-very-secret"));
    let v: Value = serde_json::from_str(text).unwrap();
    let m = &v["models"][0];
    assert_eq!(m["name"], "gemma");
    assert_eq!(m["model"], "gemma");
    assert_eq!(m["digest"].as_str().unwrap().len(), 64);
    assert!(m["modified_at"].as_str().unwrap().ends_with('Z'));
    assert!(m["size"].is_u64());
    assert!(m["details"].is_object());
    // The prefix moved: the default one is gone.
    let res = client().get(r.url("/api/tags")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[actix_rt::test]
async fn wrong_method_is_405_and_unknown_route_404_in_openai_shape() {
    let (_up, cfg) = two_models();
    let r = Router::start(&cfg, &[]);
    let c = client();
    let mut res = c.get(r.url("/v1/chat/completions")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], 405);
    assert_eq!(
        v["error"]["message"],
        "method GET not allowed for /v1/chat/completions"
    );
    let res = c.post(r.url("/api/ping")).send().await.unwrap();
    assert_eq!(res.status(), 405);

    let mut res = c.get(r.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["message"], "no route for GET /v2/nothing");
    assert_eq!(v["error"]["type"], "not_found_error");
}

#[actix_rt::test]
async fn health_reports_every_provider() {
    let (_up, cfg) = two_models();
    let r = Router::start(&cfg, &[]);
    let h = r.health().await;
    assert_eq!(h.get("status").unwrap(), "ok");
    let models = h.get("models").unwrap().as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["name"], "gemma");
    assert_eq!(models[0]["strategy"], "balanced");
    let p = &models[0]["providers"][0];
    assert_eq!(p["id"], "gemma-a");
    assert_eq!(p["api_type"], "vllm");
    assert_eq!(p["state"], "healthy");
    assert_eq!(p["in_flight"], 0);
    assert!(!h.to_string().contains("sk-very-secret"));
}
