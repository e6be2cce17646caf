//! Smart routing over real sockets (SPEC §7): `model: "auto"` in every dialect and the built-in
//! routes, the external model name, the decision header for failovers and fallbacks, and cache
//! affinity — session turns on one provider, bounded load, and the table shared through Redis.

use std::collections::HashMap;
use std::time::Duration;

use llm_router_actors::routing::affinity::SessionInputs;
use llm_router_actors::routing::SessionKey;
use llm_router_actors::store::{Store, StoreOptions};
use serde_json::{json, Value};

use crate::common::*;

const AUTO_ENV: &[(&str, &str)] = &[
    (
        "LLM_ROUTER_UTILS_PLUGINS_PIPELINE",
        "simple_semantic_routing",
    ),
    ("LLM_ROUTER_ROUTING_MODELS", "small|large"),
];
const CODE: &str = "Write a Python function that parses JSON and fix the bug in my code";

fn named(name: &str) -> FakeConfig {
    FakeConfig {
        name: name.into(),
        ..Default::default()
    }
}

/// Models `small` (fake "s") and `large` (fake "l").
fn small_large(env: &[(&str, &str)]) -> (FakeUpstream, FakeUpstream, Router) {
    let s = FakeUpstream::start(named("s"));
    let l = FakeUpstream::start(named("l"));
    let cfg = models_config(&[
        ("small", vec![provider("s", &s)]),
        ("large", vec![provider("l", &l)]),
    ]);
    let r = Router::start(&cfg, env);
    (s, l, r)
}

fn header(res: &awc::ClientResponse, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// POSTs `body` to `path` with `headers`: (status, head of interest, body text).
async fn post(
    r: &Router,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, HashMap<&'static str, String>, String) {
    let mut req = client().post(r.url(path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut res = req.send_json(body).await.unwrap();
    let mut head = HashMap::new();
    for k in [
        "x-llm-router-model",
        "x-llm-router-provider",
        "x-llm-router-decision",
    ] {
        head.insert(k, header(&res, k));
    }
    let text = res.body().limit(1 << 22).await.unwrap();
    (
        res.status().as_u16(),
        head,
        String::from_utf8(text.to_vec()).unwrap(),
    )
}

/// The decision header as `key → values` (a key may repeat).
fn decision(v: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for pair in v.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(k.into()).or_default().push(v.into());
    }
    out
}

fn one(d: &HashMap<String, Vec<String>>, key: &str) -> String {
    d.get(key)
        .and_then(|v| v.first().cloned())
        .unwrap_or_default()
}

#[actix_rt::test]
async fn auto_is_routed_by_intent_in_every_dialect_streams_included() {
    let (s, l, r) = small_large(AUTO_ENV);
    // (path, body, where the answer's model name is)
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "auto", "messages": [{"role": "user", "content": CODE}]}),
            "/model",
        ),
        (
            "/api/chat",
            json!({"model": "auto", "stream": false, "messages": [{"role": "user", "content": CODE}]}),
            "/model",
        ),
        (
            "/v1/messages",
            json!({"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": CODE}]}),
            "/model",
        ),
    ];
    for (path, body, pointer) in cases {
        let (status, head, text) = post(&r, path, &body, &[]).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert_eq!(head["x-llm-router-model"], "large", "{path}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.pointer(pointer), Some(&json!("large")), "{path}: {v}");
        let d = decision(&head["x-llm-router-decision"]);
        assert_eq!(
            (one(&d, "auto"), one(&d, "intent"), one(&d, "chosen")),
            ("large".into(), "code".into(), "l".into()),
            "{path}: {d:?}"
        );
    }
    // A greeting is simple, with no intent: the cheapest model; streamed, the head says so too.
    let body =
        json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (status, head, text) = post(&r, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(head["x-llm-router-model"], "small");
    assert!(text.contains("[DONE]"), "{text}");
    let d = decision(&head["x-llm-router-decision"]);
    assert_eq!(
        (one(&d, "complexity"), one(&d, "intent")),
        ("simple".into(), "none".into())
    );
    // Streams in the other dialects carry the choice in their head too.
    for (path, body) in [
        (
            "/v1/messages",
            json!({"model": "auto", "max_tokens": 16, "stream": true,
                   "messages": [{"role": "user", "content": CODE}]}),
        ),
        (
            "/api/chat",
            json!({"model": "auto", "messages": [{"role": "user", "content": CODE}]}),
        ),
    ] {
        let (status, head, text) = post(&r, path, &body, &[]).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert_eq!(head["x-llm-router-model"], "large", "{path}");
        let d = decision(&head["x-llm-router-decision"]);
        assert_eq!(one(&d, "auto"), "large", "{path}: {d:?}");
        assert!(
            text.contains("large"),
            "{path}: the stream names the chosen model: {text}"
        );
    }
    // Every request reached the provider with the chosen model's name, never "auto".
    assert_eq!((s.request_count(), l.request_count()), (1, 5));
    for q in l.requests() {
        assert_ne!(q.body["model"], "auto", "{}", q.body);
    }
}

#[actix_rt::test]
async fn auto_through_a_built_in_route() {
    let (s, l, r) = small_large(AUTO_ENV);
    let body = json!({"model_name": "auto", "user_last_statement": CODE});
    let (status, head, text) = post(&r, "/api/conversation_with_model", &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(head["x-llm-router-model"], "large");
    assert_eq!(
        one(&decision(&head["x-llm-router-decision"]), "auto"),
        "large"
    );
    let body = json!({"model_name": "auto", "user_last_statement": "Cześć", "stream": true});
    let (status, head, text) = post(&r, "/api/conversation_with_model", &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(head["x-llm-router-model"], "small");
    assert_eq!((s.request_count(), l.request_count()), (1, 1));
}

#[actix_rt::test]
async fn without_the_plugin_auto_is_an_unknown_model_and_bad_plugins_stop_start_up() {
    let (_s, _l, r) = small_large(&[]);
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, text) = post(&r, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("auto"), "{text}");

    let up = FakeUpstream::start(FakeConfig::default());
    let cfg = models_config(&[("small", vec![provider("s", &up)])]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let vars = |extra: &[(&str, &str)]| {
        let mut v: HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.insert(
            "LLM_ROUTER_MODELS_CONFIG".into(),
            path.display().to_string(),
        );
        v
    };
    // (variables, what the error names)
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "LLM_ROUTER_UTILS_PLUGINS_PIPELINE",
                "simple_semantic_routing,magic",
            )],
            "unknown utils plugin \"magic\"",
        ),
        (
            &[
                (
                    "LLM_ROUTER_UTILS_PLUGINS_PIPELINE",
                    "simple_semantic_routing",
                ),
                ("LLM_ROUTER_ROUTING_MODELS", "small|huge"),
            ],
            "model \"huge\" of the auto pool",
        ),
        (
            &[("LLM_ROUTER_EXTERNAL_MODEL_NAME", "hubrouter/main")],
            "needs simple_semantic_routing",
        ),
        (
            &[("LLM_ROUTER_CACHE_AFFINITY", "maybe")],
            "LLM_ROUTER_CACHE_AFFINITY=",
        ),
    ];
    for (extra, want) in cases {
        let errs = llm_router::Settings::from_vars(&vars(extra)).unwrap_err();
        assert!(errs.iter().any(|e| e.contains(want)), "{want}: {errs:?}");
    }
    // The smart-routing proxy's variables are aliases of ours.
    let s = llm_router::Settings::from_vars(&vars(&[
        (
            "LLM_ROUTER_UTILS_PLUGINS_PIPELINE",
            "simple_semantic_routing",
        ),
        ("LLM_ROUTER_ROUTING_MODELS", "small"),
        ("ROUTER_EXTERNAL_MODEL_NAME", "hubrouter/main"),
        ("ROUTER_GENERATION_TIMEOUT", "7"),
    ]))
    .unwrap();
    assert_eq!(s.smart.external_model.as_deref(), Some("hubrouter/main"));
    assert_eq!(s.external_timeout, Duration::from_secs(7));
}

#[actix_rt::test]
async fn the_external_model_name_is_listed_and_routed_as_auto() {
    let mut env = AUTO_ENV.to_vec();
    env.push(("LLM_ROUTER_EXTERNAL_MODEL_NAME", "hubrouter/main"));
    env.push(("LLM_ROUTER_ADMIN_API_KEY", "adm-secret"));
    let (_s, _l, r) = small_large(&env);
    let mut res = client().get(r.url("/v1/models")).send().await.unwrap();
    let v: Value = res.json().await.unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hubrouter/main", "small", "large"]);
    let mut res = client().get(r.url("/api/tags")).send().await.unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["models"][0]["name"], "hubrouter/main", "{v}");

    let body = json!({"model": "hubrouter/main", "messages": [{"role": "user", "content": CODE}]});
    let (status, head, _) = post(&r, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(
        (status, head["x-llm-router-model"].as_str()),
        (200, "large")
    );
    let body = json!({"model": "hubrouter/main", "stream": false,
                      "messages": [{"role": "user", "content": "hej"}]});
    let (status, head, _) = post(&r, "/api/chat", &body, &[]).await;
    assert_eq!(
        (status, head["x-llm-router-model"].as_str()),
        (200, "small")
    );

    // The admin key guards the admin routes (access control is off here).
    let res = client().get(r.url("/router/stats")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = client()
        .get(r.url("/router/stats"))
        .insert_header(("authorization", "Bearer adm-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Other routes are not affected.
    let res = client().get(r.url("/v1/models")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[actix_rt::test]
async fn the_decision_header_explains_a_failover_and_a_fallback() {
    let broken = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 500,
            message: "boom".into(),
            retry_after: None,
        },
        ..Default::default()
    });
    let ok = FakeUpstream::start(FakeConfig::default());
    let other = FakeUpstream::start(FakeConfig::default());
    let mut cfg = models_config(&[
        ("m", vec![provider("bad", &broken), provider("good", &ok)]),
        ("solo", vec![provider("bad-solo", &broken)]),
        ("spare", vec![provider("spare-a", &other)]),
    ]);
    cfg["test_models"]["solo"]["fallbacks"] = json!(["spare"]);
    let r = Router::start(&cfg, &[("LLM_ROUTER_BALANCE_STRATEGY", "first_available")]);

    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let (status, head, _) = post(&r, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(status, 200);
    let d = decision(&head["x-llm-router-decision"]);
    assert_eq!(one(&d, "strategy"), "first_available");
    assert_eq!(one(&d, "candidates"), "bad,good");
    assert_eq!(d["retry"], ["bad,status_500"]);
    assert_eq!(
        (one(&d, "chosen"), one(&d, "why")),
        ("good".into(), "failover".into())
    );

    let body = json!({"model": "solo", "messages": [{"role": "user", "content": "hi"}]});
    let (status, head, text) = post(&r, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(head["x-llm-router-model"], "spare");
    let d = decision(&head["x-llm-router-decision"]);
    assert_eq!(one(&d, "fallback"), "spare", "{d:?}");
    assert_eq!(one(&d, "model"), "spare");
    assert!(
        d["retry"].iter().all(|r| r == "bad-solo,status_500"),
        "{d:?}"
    );
    assert_eq!(one(&d, "chosen"), "spare-a");
    // An ordinary request says which strategy chose and why.
    let (_, head, _) = post(
        &r,
        "/v1/chat/completions",
        &json!({"model": "spare",
        "messages": [{"role": "user", "content": "x"}]}),
        &[],
    )
    .await;
    let d = decision(&head["x-llm-router-decision"]);
    assert_eq!(
        (one(&d, "why"), d.contains_key("retry")),
        ("only_provider".into(), false)
    );
}

fn three(env: &[(&str, &str)]) -> (Vec<FakeUpstream>, Router) {
    let ups: Vec<FakeUpstream> = (0..3)
        .map(|i| FakeUpstream::start(named(&format!("f{i}"))))
        .collect();
    let providers = ups
        .iter()
        .enumerate()
        .map(|(i, u)| provider(&format!("p{i}"), u))
        .collect();
    let r = Router::start(&models_config(&[("m", providers)]), env);
    (ups, r)
}

/// A conversation's turn `n` (the opening repeats, the history grows).
fn turn(n: usize) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a helpful assistant."}),
        json!({"role": "user", "content": "Let us plan a trip to Kraków."}),
    ];
    for i in 1..n {
        messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        messages.push(json!({"role": "user", "content": format!("follow-up {i}")}));
    }
    json!({"model": "m", "messages": messages})
}

#[actix_rt::test]
async fn a_sessions_turns_stay_on_one_provider_with_affinity_and_spread_without() {
    let (_ups, plain) = three(&[]);
    let (_ups2, sticky) = three(&[("LLM_ROUTER_CACHE_AFFINITY", "1")]);
    let mut seen_plain = Vec::new();
    let mut seen_sticky = Vec::new();
    let mut keyed = Vec::new();
    for n in 1..=6 {
        let (_, head, _) = post(&plain, "/v1/chat/completions", &turn(n), &[]).await;
        seen_plain.push(head["x-llm-router-provider"].clone());
        let (status, head, _) = post(&sticky, "/v1/chat/completions", &turn(n), &[]).await;
        assert_eq!(status, 200);
        seen_sticky.push(head["x-llm-router-provider"].clone());
        let d = decision(&head["x-llm-router-decision"]);
        assert_eq!(
            (one(&d, "affinity"), one(&d, "affinity_key"), one(&d, "why")),
            ("hit".into(), "conversation".into(), "affinity".into()),
            "{d:?}"
        );
        // A session id wins over the conversation, in every dialect.
        let body = json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": format!("q{n}")}]});
        let (_, head, _) = post(&sticky, "/v1/messages", &body, &[("x-session-id", "s-42")]).await;
        keyed.push(head["x-llm-router-provider"].clone());
        assert_eq!(
            one(&decision(&head["x-llm-router-decision"]), "affinity_key"),
            "x-session-id"
        );
    }
    assert!(
        seen_sticky.iter().all(|p| *p == seen_sticky[0]),
        "{seen_sticky:?}"
    );
    assert!(keyed.iter().all(|p| *p == keyed[0]), "{keyed:?}");
    let mut distinct = seen_plain.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "balanced spreads idle turns: {seen_plain:?}"
    );
}

#[actix_rt::test]
async fn a_loaded_provider_sheds_new_requests_of_its_session() {
    // Slow answers keep requests in flight; c = 1.25 over 2 providers: the owner takes a
    // session's requests while its in-flight count is below ceil(1.25 × (m + 1) / 2).
    let slow = |name: &str| FakeConfig {
        name: name.into(),
        latency: Duration::from_millis(1500),
        ..Default::default()
    };
    let ups = [
        FakeUpstream::start(slow("f0")),
        FakeUpstream::start(slow("f1")),
    ];
    let cfg = models_config(&[("m", vec![provider("p0", &ups[0]), provider("p1", &ups[1])])]);
    let r = Router::start(&cfg, &[("LLM_ROUTER_CACHE_AFFINITY", "1")]);
    let send = |r: &Router| {
        let url = r.url("/v1/chat/completions");
        async move {
            let mut res = client()
                .post(url)
                .insert_header(("x-session-id", "busy"))
                .send_json(&chat_body("m", false))
                .await
                .unwrap();
            let _ = res.body().await;
            (
                header(&res, "x-llm-router-provider"),
                header(&res, "x-llm-router-decision"),
            )
        }
    };
    let first = actix_rt::spawn(send(&r));
    assert!(
        eventually(Duration::from_secs(5), || async {
            ups[0].active() + ups[1].active() == 1
        })
        .await
    );
    let owner = if ups[0].active() == 1 { 0 } else { 1 };
    let second = actix_rt::spawn(send(&r));
    assert!(
        eventually(Duration::from_secs(5), || async {
            ups[owner].active() == 2
        })
        .await
    );
    // Its last provider is over the bound: the session moves (a miss, reported as such).
    let (third_provider, third) = send(&r).await;
    let d = decision(&third);
    assert_eq!(third_provider, format!("p{}", 1 - owner), "{d:?}");
    assert_eq!(
        (one(&d, "affinity"), one(&d, "affinity_reason")),
        ("miss".into(), "moved".into())
    );
    for h in [first, second] {
        let (p, d) = h.await.unwrap();
        assert_eq!(p, format!("p{owner}"), "{d}");
    }
}

#[actix_rt::test]
async fn router_replicas_share_session_placements_through_redis() {
    let redis = RedisServer::start();
    let port = redis.port.to_string();
    let env = [
        ("LLM_ROUTER_CACHE_AFFINITY", "1"),
        ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
        ("LLM_ROUTER_REDIS_PORT", port.as_str()),
    ];
    let ups: Vec<FakeUpstream> = (0..3)
        .map(|i| FakeUpstream::start(named(&format!("f{i}"))))
        .collect();
    let providers: Vec<Value> = ups
        .iter()
        .enumerate()
        .map(|(i, u)| provider(&format!("p{i}"), u))
        .collect();
    let cfg = models_config(&[("m", providers)]);
    let a = Router::start(&cfg, &env);
    let b = Router::start(&cfg, &env);
    for r in [&a, &b] {
        let up = || async { r.health().await["shared_state"]["state"] == "up" };
        assert!(eventually(Duration::from_secs(5), up).await);
    }
    let store = Store::connect(&StoreOptions {
        host: "127.0.0.1".into(),
        port: redis.port,
        db: 0,
        password: Default::default(),
        prefix: "llm-router:".into(),
        lease_ttl: Duration::from_secs(5),
        timeout: Duration::from_millis(500),
    })
    .await
    .unwrap();
    let key = SessionKey::derive(&SessionInputs {
        session_id: Some("shared-1"),
        ..Default::default()
    })
    .unwrap();
    let redis_key = llm_router_actors::registry::session_key("m", key);
    // Replica A places the session and shares where.
    let sid = [("x-session-id", "shared-1")];
    let (_, head, _) = post(&a, "/v1/chat/completions", &chat_body("m", false), &sid).await;
    let placed = head["x-llm-router-provider"].clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let (store, k, placed) = (store.clone(), redis_key.clone(), placed.clone());
            async move { store.get_session(&k).await.unwrap() == Some(placed) }
        })
        .await,
        "the placement reached Redis"
    );
    // Another replica moved the session (say after a spill): both replicas follow it.
    let moved = if placed == "p0" { "p1" } else { "p0" };
    store
        .put_session(&redis_key, moved, Duration::from_secs(60))
        .await
        .unwrap();
    for r in [&b, &a] {
        let (_, head, _) = post(r, "/v1/chat/completions", &chat_body("m", false), &sid).await;
        let d = decision(&head["x-llm-router-decision"]);
        assert_eq!(head["x-llm-router-provider"], moved, "{d:?}");
        assert_eq!(
            (one(&d, "affinity"), one(&d, "affinity_reason")),
            ("hit".into(), "last".into())
        );
    }
}

#[actix_rt::test]
async fn with_profiles_auto_ranks_the_pool_by_category_score_and_measured_speed() {
    // Equal sizes, so the complexity fit is equal: the category's score and the speed decide.
    let dir = tempfile::tempdir().unwrap();
    let scores = |general: u32, coding: u32| {
        json!({"params_b": 8, "scores": {"reasoning": 50, "coding": coding, "creative": 50,
                                         "general": general, "polish": 50}})
    };
    let bench = dir.path().join("benchmarks.json");
    std::fs::write(
        &bench,
        json!({"version": 1, "default_score": 50, "models": {
            "slow": scores(70, 40), "quick": scores(70, 40), "coder": scores(40, 95)}})
        .to_string(),
    )
    .unwrap();
    let fake = |name: &str, chunk_ms: u64| {
        FakeUpstream::start(FakeConfig {
            name: name.into(),
            chunks: 8,
            chunk_delay: Duration::from_millis(chunk_ms),
            ..Default::default()
        })
    };
    let (slow, quick, coder) = (fake("slow", 25), fake("quick", 1), fake("coder", 1));
    let cfg = models_config(&[
        ("slow", vec![provider("slow", &slow)]),
        ("quick", vec![provider("quick", &quick)]),
        ("coder", vec![provider("coder", &coder)]),
    ]);
    let (state, bench) = (
        dir.path().display().to_string(),
        bench.display().to_string(),
    );
    let r = Router::start(
        &cfg,
        &[
            (
                "LLM_ROUTER_UTILS_PLUGINS_PIPELINE",
                "simple_semantic_routing",
            ),
            // Alone, the semantic router gives a greeting the first and code the last.
            ("LLM_ROUTER_ROUTING_MODELS", "coder|slow|quick"),
            ("LLM_ROUTER_PROFILES", "1"),
            ("LLM_ROUTER_STATE_DIR", &state),
            ("LLM_ROUTER_BENCHMARKS_FILE", &bench),
        ],
    );
    let profiles = crate::profiles::settled(&r, 1).await;
    assert_eq!(profiles["running"], false, "{profiles}");
    let ask =
        |text: &str| json!({"model": "auto", "messages": [{"role": "user", "content": text}]});
    // (prompt, ranked category, the model it wins)
    let cases = [
        ("hello, how are you today?", "general", "quick"),
        (CODE, "coding", "coder"),
    ];
    for (text, category, model) in cases {
        let (status, head, body) = post(&r, "/v1/chat/completions", &ask(text), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(head["x-llm-router-model"], model, "{text}");
        let d = decision(&head["x-llm-router-decision"]);
        assert_eq!(
            (one(&d, "auto"), one(&d, "ranked")),
            (model.to_string(), category.to_string()),
            "{d:?}"
        );
        let score: f64 = one(&d, "score").parse().unwrap();
        assert!(score > 0.0 && score <= 1.0, "{d:?}");
    }
    // The built-in routes rank the same way.
    let body = json!({"model_name": "auto", "user_last_statement": "hello, how are you today?"});
    let (status, head, text) = post(&r, "/api/conversation_with_model", &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(head["x-llm-router-model"], "quick");
    // The slow model was only probed, never chosen.
    assert!(
        slow.requests()
            .iter()
            .all(|q| q.body["max_tokens"].is_number()
                && q.body["messages"][0]["content"] != "hello, how are you today?"),
        "{:?}",
        slow.requests()
    );
}
