//! Hot reload (SPEC §10): the route, SIGHUP on the real binary, the file watch, a bad file, and
//! reloads under load with a stream in flight.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::*;

/// A models config file the test rewrites, and a router reading it.
struct Reloading {
    _dir: tempfile::TempDir,
    path: PathBuf,
    router: Router,
}

fn write(path: &Path, config: &Value) {
    // Written whole and renamed, as an operator's tools do: the watch never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn start(config: &Value, env: &[(&str, &str)]) -> Reloading {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models-config.json");
    write(&path, config);
    let p = path.display().to_string();
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push(("LLM_ROUTER_MODELS_CONFIG", &p));
    if !env
        .iter()
        .any(|(k, _)| *k == "LLM_ROUTER_CONFIG_WATCH_SECONDS")
    {
        env.push(("LLM_ROUTER_CONFIG_WATCH_SECONDS", "0"));
    }
    let router = Router::start(&json!({}), &env);
    Reloading {
        _dir: dir,
        path,
        router,
    }
}

async fn post_reload(r: &Router) -> (u16, Value) {
    let mut res = client().post(r.url("/router/reload")).send().await.unwrap();
    let v = res.json::<Value>().limit(1 << 20).await.unwrap();
    (res.status().as_u16(), v)
}

async fn model_ids(r: &Router) -> Vec<String> {
    let mut res = client().get(r.url("/v1/models")).send().await.unwrap();
    let v = res.json::<Value>().limit(1 << 20).await.unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

async fn chat_ok(r: &Router, model: &str, stream: bool) -> Result<(), String> {
    let mut res = client()
        .post(r.url("/v1/chat/completions"))
        .send_json(&chat_body(model, stream))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let body = res
        .body()
        .limit(1 << 22)
        .await
        .map_err(|e| format!("body: {e}"))?;
    let text = String::from_utf8_lossy(&body).to_string();
    if res.status() != 200 {
        return Err(format!("{model}: {} {text}", res.status()));
    }
    if stream && sse_data(&text).last().map(String::as_str) != Some("[DONE]") {
        return Err(format!("{model}: stream did not finish: {text}"));
    }
    Ok(())
}

#[actix_rt::test]
async fn reload_route_adds_removes_and_keeps_providers_with_their_health() {
    let (ua, ub, uc) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let t = start(
        &models_config(&[("m", vec![provider("a", &ua), provider("b", &ub)])]),
        &[],
    );
    let r = &t.router;
    // b fails until its circuit opens (each failure fails over to a: the clients see 200s).
    ub.set_fault(Fault::Status {
        code: 500,
        message: "down".into(),
        retry_after: None,
    });
    for _ in 0..12 {
        chat_ok(r, "m", false).await.unwrap();
        if r.provider_status("b").await["state"] == "open" {
            break;
        }
    }
    let before = r.provider_status("b").await;
    assert_eq!(before["state"], "open", "{before}");
    let failures = before["failures"].as_u64().unwrap();
    assert!(failures >= 3, "{before}");

    // a goes, b gets a new weight (same id and api_host: it keeps its state), c and model n arrive.
    let mut b = provider("b", &ub);
    b["weight"] = json!(2.0);
    write(
        &t.path,
        &models_config(&[
            ("m", vec![b, provider("c", &uc)]),
            ("n", vec![provider("d", &ua)]),
        ]),
    );
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "reloaded");
    assert_eq!(
        (body["models"].as_u64(), body["providers"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(strs(&body["added"]), ["c", "d"]);
    assert_eq!(strs(&body["removed"]), ["a"]);
    assert_eq!(strs(&body["changed"]), ["b"]);
    assert_eq!(model_ids(r).await, ["m", "n"]);
    let after = r.provider_status("b").await;
    // Open, or half-open should the cool-down have passed: never reset to healthy.
    assert_ne!(after["state"], "healthy", "b kept its circuit: {after}");
    assert_eq!(after["failures"].as_u64(), Some(failures));

    // New requests: m is served by c (b is open), n by d on ua.
    let before_c = uc.request_count();
    for _ in 0..3 {
        chat_ok(r, "m", true).await.unwrap();
    }
    assert_eq!(uc.request_count(), before_c + 3);
    chat_ok(r, "n", false).await.unwrap();

    // Removing a model takes it off the listing and the routes.
    write(
        &t.path,
        &models_config(&[("m", vec![provider("b", &ub), provider("c", &uc)])]),
    );
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(strs(&body["models_removed"]), ["n"]);
    assert_eq!(model_ids(r).await, ["m"]);
    let res = r.chat("n", false).await;
    assert_eq!(res.status(), 404);
    // Reloading an unchanged file changes nothing.
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 200);
    assert!(strs(&body["added"]).is_empty() && strs(&body["removed"]).is_empty());
    assert!(strs(&body["changed"]).is_empty());
}

/// The `candidates` and `why` of each of `n` requests' decision headers.
async fn decisions(r: &Router, model: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut res = r.chat(model, false).await;
        assert_eq!(res.status(), 200);
        let _ = res.body().limit(1 << 22).await.unwrap();
        let d = res
            .headers()
            .get("x-llm-router-decision")
            .expect("a decision header")
            .to_str()
            .unwrap()
            .to_string();
        let field = |k: &str| {
            d.split(';')
                .find_map(|p| p.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_default()
                .to_string()
        };
        out.push((field("candidates"), field("why")));
    }
    out
}

#[actix_rt::test]
async fn decision_headers_follow_a_reload() {
    // A plain decision (first choice, nothing else to tell) is made once per worker and reused:
    // the reuse must end with the config it was made from.
    let (ua, ub) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    // First available: a serves every request, before the reload and after it.
    let t = start(
        &models_config(&[("m", vec![provider("a", &ua)])]),
        &[("LLM_ROUTER_BALANCE_STRATEGY", "first_available")],
    );
    let r = &t.router;
    // Enough requests that both workers have made and reused theirs.
    let before = decisions(r, "m", 8).await;
    assert!(
        before
            .iter()
            .all(|d| *d == ("a".to_string(), "only_provider".to_string())),
        "{before:?}"
    );
    write(
        &t.path,
        &models_config(&[("m", vec![provider("a", &ua), provider("b", &ub)])]),
    );
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 200, "{body}");
    let after = decisions(r, "m", 8).await;
    assert!(
        after
            .iter()
            .all(|(c, why)| c == "a,b" && why == "first_free"),
        "{after:?}"
    );
}

#[actix_rt::test]
async fn reload_of_a_bad_file_lists_every_problem_and_keeps_the_running_state() {
    let up = FakeUpstream::start(FakeConfig::default());
    let t = start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[("LLM_ROUTER_USE_PROMETHEUS", "true")],
    );
    let r = &t.router;
    write(
        &t.path,
        &json!({
            "g": {"m": {"providers": [{"id": "a", "api_type": "vllm"}]},
                  "x": {"providers": [{"id": "x1", "api_host": "http://h:1", "api_type": "tgi"}]}},
            "active_models": {"g": ["m", "x", "missing"]}
        }),
    );
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 400, "{body}");
    let problems = strs(&body["error"]["problems"]);
    let file = t.path.display().to_string();
    assert_eq!(
        problems,
        [
            format!("{file}: g.\"m\".providers[0]: missing \"api_host\""),
            format!("{file}: g.\"x\".providers[0].api_type: unknown api_type \"tgi\"; valid: openai, vllm, lmstudio, ollama, anthropic, llama.cpp"),
            format!("{file}: active_models.g[2]: active model \"missing\" is not defined under group \"g\""),
        ]
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("3 problems"));
    // Nothing changed: same models, still served.
    assert_eq!(model_ids(r).await, ["m"]);
    chat_ok(r, "m", true).await.unwrap();
    // Not JSON at all: one problem, with its position.
    std::fs::write(&t.path, "{\"g\": ").unwrap();
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 400);
    assert!(strs(&body["error"]["problems"])[0].contains("not valid JSON"));
    let metrics = client()
        .get(r.url("/metrics"))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("llm_router_config_reload_total{result=\"error\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("llm_router_config_reload_total{result=\"ok\"} 0"));
}

#[actix_rt::test]
async fn reload_follows_a_changed_file_when_watching() {
    let up = FakeUpstream::start(FakeConfig::default());
    let t = start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[("LLM_ROUTER_CONFIG_WATCH_SECONDS", "1")],
    );
    let r = &t.router;
    write(
        &t.path,
        &models_config(&[
            ("m", vec![provider("a", &up)]),
            ("n", vec![provider("b", &up)]),
        ]),
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            model_ids(r).await == ["m", "n"]
        })
        .await,
        "the watch picked up the new model"
    );
    chat_ok(r, "n", false).await.unwrap();
}

#[actix_rt::test]
async fn reload_probes_added_providers_and_stops_probing_removed_ones() {
    let (ua, ub) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let t = start(
        &models_config(&[("m", vec![provider("a", &ua)])]),
        &[("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0.1")],
    );
    let r = &t.router;
    let probes = |u: &FakeUpstream| {
        u.requests()
            .iter()
            .filter(|q| q.method == "GET" && q.path == "/health")
            .count()
    };
    assert!(eventually(Duration::from_secs(5), || async { probes(&ua) >= 2 }).await);
    assert_eq!(probes(&ub), 0);
    write(&t.path, &models_config(&[("m", vec![provider("b", &ub)])]));
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 200, "{body}");
    assert!(eventually(Duration::from_secs(5), || async { probes(&ub) >= 1 }).await);
    // Once b's probes run, a's stop: a's count holds while b gets three more.
    let a_then = probes(&ua);
    let b_then = probes(&ub);
    assert!(
        eventually(Duration::from_secs(5), || async {
            probes(&ub) >= b_then + 3
        })
        .await
    );
    assert_eq!(
        probes(&ua),
        a_then,
        "the removed provider is no longer probed"
    );
}

#[actix_rt::test]
async fn reload_on_sighup_in_the_real_binary() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) =
        crate::process::spawn_binary(&up, dir.path(), &[("LLM_ROUTER_CONFIG_WATCH_SECONDS", "0")]);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let ids = || async {
        let mut res = client().get(url("/v1/models")).send().await.unwrap();
        let v = res.json::<Value>().await.unwrap();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids().await, ["m"]);
    write(
        &dir.path().join("models.json"),
        &models_config(&[
            ("m", vec![provider("a", &up)]),
            ("n", vec![provider("b", &up)]),
        ]),
    );
    Command::new("sh")
        .args(["-c", &format!("kill -HUP {}", child.id())])
        .status()
        .unwrap();
    let seen = eventually(Duration::from_secs(10), || async {
        ids().await == ["m", "n"]
    })
    .await;
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "SIGHUP does not stop the router");
    assert!(seen, "SIGHUP reloaded the models config");
}

#[actix_rt::test]
async fn reload_under_load_fails_no_request_and_lets_a_stream_in_flight_finish() {
    let fast = |name: &str| {
        FakeUpstream::start(FakeConfig {
            name: name.into(),
            chunks: 3,
            ..Default::default()
        })
    };
    let (ua, ua2) = (fast("a"), fast("a2"));
    let slow = FakeUpstream::start(FakeConfig {
        chunks: 12,
        chunk_delay: Duration::from_millis(150),
        ..Default::default()
    });
    let slow2 = fast("s2");
    let with = |m_providers: Vec<Value>, slow_providers: Vec<Value>| {
        models_config(&[("m", m_providers), ("slow", slow_providers)])
    };
    let configs = [
        with(vec![provider("a", &ua)], vec![provider("s", &slow)]),
        with(
            vec![provider("a", &ua), provider("a2", &ua2)],
            vec![provider("s", &slow)],
        ),
        // s leaves while its stream is in flight: it drains, s2 takes new requests.
        with(vec![provider("a2", &ua2)], vec![provider("s2", &slow2)]),
        with(
            vec![provider("a", &ua), provider("a2", &ua2)],
            vec![provider("s2", &slow2)],
        ),
    ];
    let t = start(&configs[0], &[]);
    let r = &t.router;

    // The slow stream: started, and its first bytes read, before any reload.
    let mut res = client()
        .post(r.url("/v1/chat/completions"))
        .send_json(&chat_body("slow", true))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut streamed = res.next().await.unwrap().unwrap().to_vec();
    assert_eq!(slow.active(), 1);
    let in_flight = async {
        while let Some(chunk) = res.next().await {
            streamed.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(streamed).unwrap()
    };

    let load = async {
        let workers = (0..6).map(|w| async move {
            let mut failures = Vec::new();
            let mut done = 0;
            for i in 0..25 {
                if let Err(e) = chat_ok(r, "m", (w + i) % 2 == 0).await {
                    failures.push(e);
                }
                done += 1;
            }
            (done, failures)
        });
        futures_util::future::join_all(workers).await
    };
    let reloads = async {
        let mut statuses = Vec::new();
        for round in 1..=6 {
            write(&t.path, &configs[round % configs.len()]);
            statuses.push(post_reload(r).await.0);
            actix_rt::time::sleep(Duration::from_millis(40)).await;
            if round == 2 {
                // s is gone now: a new "slow" request goes to s2 while s's stream still runs.
                assert_eq!(
                    slow.active(),
                    1,
                    "the stream on the removed provider still runs"
                );
                chat_ok(r, "slow", true).await.unwrap();
                assert!(slow2.request_count() >= 1);
            }
        }
        statuses
    };
    let (stream_text, results, statuses) =
        futures_util::future::join3(in_flight, load, reloads).await;
    assert_eq!(statuses, [200; 6]);
    let failures: Vec<String> = results.iter().flat_map(|(_, f)| f.clone()).collect();
    let done: usize = results.iter().map(|(d, _)| d).sum();
    assert_eq!(done, 150);
    assert!(failures.is_empty(), "failed during reloads: {failures:?}");
    let frames = sse_data(&stream_text);
    assert_eq!(
        frames.last().map(String::as_str),
        Some("[DONE]"),
        "the stream in flight finished: {frames:?}"
    );
    assert_eq!(
        slow.request_count(),
        1,
        "the removed provider took no new request"
    );
    // Every lease came back: nothing left in flight on the providers there now.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let h = r.health().await;
            h["models"].as_array().unwrap().iter().all(|m| {
                m["providers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["in_flight"] == 0)
            })
        })
        .await
    );
}

#[actix_rt::test]
async fn reload_needs_an_admin_key_and_rereads_the_keys_file() {
    let up = FakeUpstream::start(FakeConfig::default());
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("keys.json");
    let entries = |extra: Option<&str>| {
        let mut v = vec![
            json!({"key_plain": "sk-reload-admin-000", "key_id": "admin", "policy_name": "admin"}),
            json!({"key_plain": "sk-reload-dev-00000", "key_id": "dev", "policy_name": "developer"}),
        ];
        if let Some(k) = extra {
            v.push(json!({"key_plain": k, "key_id": "new"}));
        }
        Value::Array(v)
    };
    write(&keys, &entries(None));
    let k = keys.display().to_string();
    let t = start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "true"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &k),
        ],
    );
    let r = &t.router;
    let reload_as = |key: &'static str| async move {
        let res = client()
            .post(r.url("/router/reload"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        res.status().as_u16()
    };
    assert_eq!(reload_as("sk-reload-dev-00000").await, 403);
    let chat_as = |key: &'static str| async move {
        client()
            .post(r.url("/v1/chat/completions"))
            .bearer_auth(key)
            .send_json(&chat_body("m", false))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(chat_as("sk-reload-new-00000").await, 401);
    write(&keys, &entries(Some("sk-reload-new-00000")));
    assert_eq!(reload_as("sk-reload-admin-000").await, 200);
    assert_eq!(
        chat_as("sk-reload-new-00000").await,
        200,
        "the new key works"
    );
    // A bad keys file: refused, listing it; the running keys stay.
    std::fs::write(&keys, r#"[{"key_plain": "x", "policy_name": "root"}]"#).unwrap();
    let mut res = client()
        .post(r.url("/router/reload"))
        .bearer_auth("sk-reload-admin-000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.json::<Value>().await.unwrap();
    let problems = strs(&body["error"]["problems"]);
    assert_eq!(problems.len(), 1, "{body}");
    assert!(
        problems[0].starts_with(&format!("{k}: [0]: unknown policy \"root\"")),
        "{body}"
    );
    assert_eq!(chat_as("sk-reload-new-00000").await, 200);
}

#[actix_rt::test]
async fn reload_moves_the_provider_gauges_to_the_new_providers() {
    let (ua, ub) = (
        FakeUpstream::start(FakeConfig::default()),
        FakeUpstream::start(FakeConfig::default()),
    );
    let t = start(
        &models_config(&[("m", vec![provider("old-one", &ua)])]),
        &[("LLM_ROUTER_USE_PROMETHEUS", "1")],
    );
    let r = &t.router;
    let scrape = || async {
        let mut res = client().get(r.url("/metrics")).send().await.unwrap();
        String::from_utf8(res.body().limit(1 << 22).await.unwrap().to_vec()).unwrap()
    };
    let gauge = |p: &str| format!("llm_router_provider_healthy{{provider_id=\"{p}\"}}");
    let text = scrape().await;
    assert!(text.contains(&gauge("old-one")), "{text}");
    write(
        &t.path,
        &models_config(&[("m", vec![provider("new-one", &ub)])]),
    );
    let (status, body) = post_reload(r).await;
    assert_eq!(status, 200, "{body}");
    let text = scrape().await;
    assert!(
        text.contains(&gauge("new-one")),
        "an added provider has its gauges: {text}"
    );
    assert!(
        !text.contains(&gauge("old-one")),
        "a removed provider's series are gone: {text}"
    );
}
