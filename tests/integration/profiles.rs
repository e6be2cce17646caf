//! Profiles and benchmarks (SPEC §7): probes per category on each provider at start-up,
//! persisted in the state directory and reused after a restart, rerun on request; the admin
//! routes and their access rule.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

async fn get(r: &Router, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = client().get(r.url(path));
    if let Some(k) = key {
        req = req.insert_header(("Authorization", format!("Bearer {k}")));
    }
    let mut res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.body().limit(1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Waits until no run is going and at least `runs` have completed; the profiles document.
pub(crate) async fn settled(r: &Router, runs: u64) -> Value {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = get(r, "/admin/profiles", None).await;
        if v["running"] == false && v["runs"].as_u64() >= Some(runs) {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "profiles did not settle: {v}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn probes(up: &FakeUpstream) -> Vec<Value> {
    up.requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .map(|r| r.body)
        .collect()
}

fn start(good: &FakeUpstream, bad: &FakeUpstream, emb: &FakeUpstream, dir: &Path) -> Router {
    let mut e = provider("e", emb);
    e["is_embedding"] = json!(true);
    let cfg = models_config(&[
        ("m", vec![provider("fast", good), provider("broken", bad)]),
        ("emb", vec![e]),
    ]);
    let dir = dir.display().to_string();
    Router::start(
        &cfg,
        &[("LLM_ROUTER_PROFILES", "1"), ("LLM_ROUTER_STATE_DIR", &dir)],
    )
}

#[actix_rt::test]
async fn every_provider_is_probed_per_category_persisted_reused_after_a_restart_and_rerun() {
    let good = FakeUpstream::start(FakeConfig {
        chunks: 8,
        chunk_delay: Duration::from_millis(2),
        latency: Duration::from_millis(5),
        ..Default::default()
    });
    let bad = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 500,
            message: "down".into(),
            retry_after: None,
        },
        ..Default::default()
    });
    let emb = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    {
        let r = start(&good, &bad, &emb, dir.path());
        let v = settled(&r, 1).await;
        let fast = &v["models"]["m"]["fast"]["categories"];
        for c in ["reasoning", "coding", "creative", "general", "polish"] {
            let m = &fast[c];
            assert_eq!(m["ok"], true, "{c}: {v}");
            assert!(
                m["ttft_ms"].as_f64().unwrap() >= 5.0,
                "{c}: the fake's latency: {m}"
            );
            assert!(m["tokens_per_s"].as_f64().unwrap() > 0.0, "{c}: {m}");
            assert_eq!(
                v["models"]["m"]["broken"]["categories"][c]["ok"], false,
                "{c}"
            );
        }
        assert!(
            v["models"].get("emb").is_none(),
            "embedding providers are not probed: {v}"
        );
        let s = &v["summary"]["m"];
        assert_eq!(
            (s["success"].as_f64(), s["probes"].as_u64()),
            (Some(0.5), Some(10)),
            "{s}"
        );
        // Five streamed probes, one per category; the Polish one in Polish.
        let p = probes(&good);
        assert_eq!(p.len(), 5);
        assert!(p.iter().all(|b| b["stream"] == true));
        assert!(p.iter().any(|b| b["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("fotosynteza")));
        assert!(emb.requests().is_empty());
        assert!(dir.path().join("profiles.json").exists());
    }
    // Restarted over the same state directory: the measurements are reused, nothing probed.
    // (The broken provider is measured in every category too: its failures are its profile.)
    let r = start(&good, &bad, &emb, dir.path());
    let v = settled(&r, 1).await;
    assert_eq!(v["runs"], 1, "{v}");
    assert_eq!(v["models"]["m"]["fast"]["categories"]["coding"]["ok"], true);
    assert_eq!(probes(&good).len(), 5, "no new probes after the restart");
    // Reprofile measures everything again.
    let mut res = client()
        .post(r.url("/admin/reprofile"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let body: Value = res.json().await.unwrap();
    assert!(body["started"].is_boolean(), "{body}");
    settled(&r, 2).await;
    assert_eq!(probes(&good).len(), 10);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("profiles.json")).unwrap()).unwrap();
    assert_eq!(saved["runs"], 2);
}

#[actix_rt::test]
async fn benchmarks_are_served_and_admin_routes_need_an_admin_key() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        json!([{"key_plain": "sk-test-admin-0000000000", "key_id": "admin", "policy_name": "admin"},
               {"key_plain": "sk-test-dev-00000000000", "key_id": "dev", "policy_name": "developer"}])
        .to_string(),
    )
    .unwrap();
    let keys = keys.display().to_string();
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
        ],
    );
    for path in ["/admin/profiles", "/admin/benchmarks"] {
        assert_eq!(get(&r, path, None).await.0, 401, "{path}");
        assert_eq!(
            get(&r, path, Some("sk-test-dev-00000000000")).await.0,
            403,
            "{path}"
        );
    }
    let (s, v) = get(&r, "/admin/benchmarks", Some("sk-test-admin-0000000000")).await;
    assert_eq!(s, 200);
    assert!(
        v["models"]["gemma-3-12b-it"]["scores"]["polish"].is_number(),
        "{v}"
    );
    let (s, v) = get(&r, "/admin/profiles", Some("sk-test-admin-0000000000")).await;
    assert_eq!((s, &v["enabled"]), (200, &json!(false)), "{v}");
    // Profiling off: reprofile says so.
    let mut res = client()
        .post(r.url("/admin/reprofile"))
        .insert_header(("Authorization", "Bearer sk-test-admin-0000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let b: Value = res.json().await.unwrap();
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LLM_ROUTER_PROFILES"),
        "{b}"
    );
    assert!(
        up.requests().is_empty(),
        "nothing probed with profiling off"
    );
}
