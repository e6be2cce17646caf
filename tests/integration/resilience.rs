//! Faults as a user's traffic meets them (SPEC §11): each test sets up one fault and asserts
//! what the client receives.

use serde_json::{json, Value};

use crate::common::*;
use crate::resume::{answer, read_openai, typed};

pub(crate) fn tiered(id: &str, up: &FakeUpstream, priority: u32) -> Value {
    let mut p = provider(id, up);
    p["priority"] = json!(priority);
    p
}

fn served_by(res: &awc::ClientResponse) -> String {
    res.headers()
        .get("x-llm-router-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[actix_rt::test]
async fn a_provider_that_never_answers_times_out_and_the_next_one_serves() {
    let hang = FakeUpstream::start(FakeConfig {
        fault: Fault::Hang,
        ..Default::default()
    });
    let ok = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[("m", vec![tiered("hang", &hang, 0), tiered("ok", &ok, 1)])]),
        &[("LLM_ROUTER_EXTERNAL_TIMEOUT", "1")],
    );
    for stream in [false, true] {
        let mut res = r.chat("m", stream).await;
        assert_eq!(res.status(), 200, "stream {stream}");
        assert_eq!(served_by(&res), "ok");
        let body = res.body().await.unwrap();
        assert!(
            String::from_utf8_lossy(&body).contains("t0 "),
            "stream {stream}"
        );
    }
    assert_eq!(ok.request_count(), 2);
}

#[actix_rt::test]
async fn max_attempts_bounds_failover() {
    let ups: Vec<FakeUpstream> = (0..3)
        .map(|_| {
            FakeUpstream::start(FakeConfig {
                fault: Fault::Status {
                    code: 500,
                    message: "boom".into(),
                    retry_after: None,
                },
                ..Default::default()
            })
        })
        .collect();
    let providers = ups
        .iter()
        .enumerate()
        .map(|(i, u)| provider(&format!("p{i}"), u))
        .collect();
    let r = Router::start(
        &models_config(&[("m", providers)]),
        &[("LLM_ROUTER_MAX_ATTEMPTS", "2")],
    );
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert_eq!(msg.matches("HTTP 500").count(), 2, "{msg}");
    let calls: usize = ups.iter().map(FakeUpstream::request_count).sum();
    assert_eq!(calls, 2, "only two providers were asked");
}

#[actix_rt::test]
async fn a_short_retry_after_on_every_provider_is_waited_out() {
    let limited = || {
        FakeUpstream::start(FakeConfig {
            fault: Fault::Status {
                code: 429,
                message: "slow down".into(),
                retry_after: Some(1),
            },
            ..Default::default()
        })
    };
    let (a, b) = (limited(), limited());
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &a), provider("b", &b)])]),
        &[],
    );
    // Both providers answer one request with 429 + Retry-After: 1 (the last one asked is
    // retried once after its second, and says it again) …
    assert_eq!(r.chat("m", false).await.status(), 429);
    assert_eq!(a.request_count() + b.request_count(), 3);
    a.set_fault(Fault::None);
    b.set_fault(Fault::None);
    // … so for the next second the router knows both are waiting: the next request waits for
    // the first to come free instead of failing at once.
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 200, "{:?}", res.body().await);
    assert_eq!(a.request_count() + b.request_count(), 4);
}

/// A preferred provider answering 500 (or 429 with a short Retry-After) once: retried on the same
/// provider, since nothing else is on its tier, so the answer stays on the preferred tier.
#[actix_rt::test]
async fn a_transient_failure_on_the_preferred_tier_is_retried_there_before_changing_tier() {
    for (fault, least_wait) in [
        (
            Fault::Status {
                code: 500,
                message: "hiccup".into(),
                retry_after: None,
            },
            std::time::Duration::from_millis(50),
        ),
        (
            Fault::Status {
                code: 429,
                message: "slow down".into(),
                retry_after: Some(1),
            },
            std::time::Duration::from_secs(1),
        ),
    ] {
        let preferred = FakeUpstream::start(FakeConfig {
            fault: fault.clone(),
            fault_times: Some(1),
            ..Default::default()
        });
        let lower = FakeUpstream::start(FakeConfig::default());
        let r = Router::start(
            &models_config(&[(
                "m",
                vec![
                    tiered("preferred", &preferred, 0),
                    tiered("lower", &lower, 1),
                ],
            )]),
            &[],
        );
        let mut res = r.chat("m", false).await;
        assert_eq!(res.status(), 200, "{fault:?}");
        assert_eq!(served_by(&res), "preferred", "{fault:?}");
        let _ = res.body().await;
        let log = preferred.requests();
        assert_eq!(log.len(), 2, "{fault:?}: failed once, then answered");
        assert!(
            log[1].received - log[0].received >= least_wait,
            "{fault:?}: the retry came after a pause"
        );
        assert_eq!(lower.request_count(), 0, "{fault:?}");
    }
}

/// With another provider on the same tier, a transient failure goes there at once (no pause, no
/// retry of the failed one); a second transient failure of the same provider is not retried
/// again (one retry per provider per request).
#[actix_rt::test]
async fn a_transient_failure_goes_to_the_same_tier_at_once_and_is_retried_at_most_once() {
    let flaky = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 503,
            message: "busy".into(),
            retry_after: None,
        },
        fault_times: Some(1),
        ..Default::default()
    });
    let twin = FakeUpstream::start(FakeConfig::default());
    let lower = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![
                tiered("flaky", &flaky, 0),
                tiered("twin", &twin, 0),
                tiered("lower", &lower, 1),
            ],
        )]),
        // Config order: flaky is asked first.
        &[("LLM_ROUTER_BALANCE_STRATEGY", "first_available")],
    );
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(served_by(&res), "twin");
    let _ = res.body().await;
    assert_eq!(
        flaky.request_count(),
        1,
        "not retried: its twin could serve"
    );
    let (failed, served) = (&flaky.requests()[0], &twin.requests()[0]);
    assert!(
        served.received - failed.received < std::time::Duration::from_millis(50),
        "no backoff before the same-tier provider"
    );
    assert_eq!(lower.request_count(), 0);

    // Always failing, alone on its tier: asked twice (one retry), then the lower tier serves.
    let down = failing(502, "bad gateway");
    let lower = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![tiered("down", &down, 0), tiered("lower", &lower, 1)],
        )]),
        &[],
    );
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(served_by(&res), "lower");
    let _ = res.body().await;
    assert_eq!(down.request_count(), 2);
    assert_eq!(lower.request_count(), 1);
}

#[actix_rt::test]
async fn a_non_stream_answer_cut_half_way_fails_over() {
    let cut = FakeUpstream::start(FakeConfig {
        fault: Fault::CutMidStream { after_chunks: 1 },
        ..Default::default()
    });
    let ok = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[("m", vec![tiered("cut", &cut, 0), tiered("ok", &ok, 1)])]),
        &[],
    );
    for path in ["/v1/chat/completions", "/api/chat"] {
        let mut res = client()
            .post(r.url(path))
            .send_json(&chat_body("m", false))
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(served_by(&res), "ok", "{path}");
        let v: Value = res.json().await.unwrap();
        let text = v
            .pointer("/choices/0/message/content")
            .or_else(|| v.pointer("/message/content"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert_eq!(text, "t0 t1 t2 t3 ", "{path}: {v}");
    }
    assert_eq!(cut.request_count(), 2);
}

#[actix_rt::test]
async fn a_stream_that_ends_after_its_final_chunk_without_done_is_complete() {
    let (_up, r) = single(
        FakeConfig {
            fault: Fault::NoDoneFrame,
            ..Default::default()
        },
        &[],
    );
    // Passed through: the client gets the answer and the `[DONE]` the provider left out.
    let mut res = r.chat("m", true).await;
    assert_eq!(res.status(), 200);
    let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    assert!(!body.contains("\"error\""), "{body}");
    // Converted (an Ollama client): the last line is `"done": true`, no error line.
    let mut res = client()
        .post(r.url("/api/chat"))
        .send_json(&chat_body("m", true))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    let last: Value = serde_json::from_str(body.trim_end().lines().last().unwrap()).unwrap();
    assert_eq!(last["done"], json!(true), "{body}");
    assert!(!body.contains("\"error\""), "{body}");
}

fn failing(code: u16, message: &str) -> FakeUpstream {
    FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code,
            message: message.into(),
            retry_after: None,
        },
        ..Default::default()
    })
}

pub(crate) fn with_fallbacks(providers: Vec<Value>, key: &str, to: &[&str]) -> Value {
    json!({"providers": providers, "providers_sleep": [], key: to})
}

pub(crate) fn config(models: Vec<(&str, Value)>) -> Value {
    let names: Vec<&str> = models.iter().map(|(n, _)| *n).collect();
    let group: serde_json::Map<String, Value> = models
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    json!({"g": group, "active_models": {"g": names}})
}

fn answered_as(res: &awc::ClientResponse) -> String {
    res.headers()
        .get("x-llm-router-model")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[actix_rt::test]
async fn every_provider_failing_sends_the_request_to_the_fallback_model() {
    let broken = failing(500, "down");
    let spare = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &config(vec![
            (
                "m",
                with_fallbacks(vec![provider("broken", &broken)], "fallbacks", &["spare"]),
            ),
            (
                "spare",
                with_fallbacks(vec![provider("s", &spare)], "fallbacks", &[]),
            ),
        ]),
        &[],
    );
    let mut res = r.chat("m", false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        (served_by(&res), answered_as(&res)),
        ("s".into(), "spare".into())
    );
    let _ = res.body().await;
    // Converted for an Ollama client, the answering model is named in the body too.
    let mut res = client()
        .post(r.url("/api/chat"))
        .send_json(&chat_body("m", false))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["model"], json!("spare"), "{v}");
    assert_eq!(spare.request_count(), 2);
}

#[actix_rt::test]
async fn context_too_long_goes_to_the_context_window_fallback_or_is_returned() {
    let small = failing(
        400,
        "This model's maximum context length is 4096 tokens. However, your messages resulted in 9000 tokens.",
    );
    let big = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &config(vec![
            (
                "m",
                with_fallbacks(
                    vec![provider("small", &small)],
                    "context_window_fallbacks",
                    &["big"],
                ),
            ),
            (
                "plain",
                with_fallbacks(vec![provider("small2", &small)], "fallbacks", &["big"]),
            ),
            (
                "big",
                with_fallbacks(vec![provider("b", &big)], "fallbacks", &[]),
            ),
        ]),
        &[],
    );
    let res = r.chat("m", false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(answered_as(&res), "big");
    // Without a context-window fallback the provider's 400 is the answer (no other fallback).
    let mut res = r.chat("plain", false).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length"),
        "{v}"
    );
    assert_eq!(big.request_count(), 1);
}

#[actix_rt::test]
async fn a_prompt_longer_than_every_input_size_skips_the_doomed_round_trip() {
    let small = FakeUpstream::start(FakeConfig::default());
    let big = FakeUpstream::start(FakeConfig::default());
    let mut p = provider("small", &small);
    p["input_size"] = json!(40);
    let r = Router::start(
        &config(vec![
            (
                "m",
                with_fallbacks(vec![p], "context_window_fallbacks", &["big"]),
            ),
            (
                "big",
                with_fallbacks(vec![provider("b", &big)], "fallbacks", &[]),
            ),
        ]),
        &[],
    );
    let long = "a long question ".repeat(20);
    let mut res = client()
        .post(r.url("/v1/chat/completions"))
        .send_json(&json!({"model": "m", "messages": [{"role": "user", "content": long}]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(answered_as(&res), "big");
    let _ = res.body().await;
    assert_eq!(small.request_count(), 0, "the small model was never asked");
    // A short prompt still goes to the model asked for.
    let res = r.chat("m", false).await;
    assert_eq!(answered_as(&res), "m");
    assert_eq!(small.request_count(), 1);
}

#[actix_rt::test]
async fn a_content_policy_refusal_uses_its_fallback_and_is_otherwise_returned_unchanged() {
    let strict = failing(
        400,
        "Your request was rejected as a result of our content policy (content_policy_violation).",
    );
    let lenient = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &config(vec![
            (
                "m",
                with_fallbacks(
                    vec![provider("strict", &strict)],
                    "content_policy_fallbacks",
                    &["other"],
                ),
            ),
            (
                "n",
                with_fallbacks(vec![provider("strict2", &strict)], "fallbacks", &["other"]),
            ),
            (
                "other",
                with_fallbacks(vec![provider("o", &lenient)], "fallbacks", &[]),
            ),
        ]),
        &[],
    );
    let res = r.chat("m", false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(answered_as(&res), "other");
    let res = r.chat("n", false).await;
    assert_eq!(
        res.status(),
        400,
        "returned unchanged, not retried elsewhere"
    );
    assert_eq!(strict.request_count(), 2);
    assert_eq!(lenient.request_count(), 1);
}

// ---- TTFT hedging (SPEC §11) ----

#[actix_rt::test]
async fn a_slow_first_token_is_hedged_and_the_loser_cancelled_and_released() {
    let slow = FakeUpstream::start(FakeConfig {
        fault: Fault::SlowFirstToken(std::time::Duration::from_secs(3)),
        ..Default::default()
    });
    let fast = FakeUpstream::start(FakeConfig::default());
    let mut model = json!({"providers": [tiered("slow", &slow, 0), tiered("fast", &fast, 1)],
                           "providers_sleep": []});
    model["hedge_after_ms"] = json!(100);
    let r = Router::start(
        &config(vec![("m", model)]),
        &[("LLM_ROUTER_USE_PROMETHEUS", "1")],
    );
    let started = std::time::Instant::now();
    let mut res = r.chat("m", true).await;
    assert_eq!(res.status(), 200);
    assert_eq!(served_by(&res), "fast");
    let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    let took = started.elapsed();
    assert_eq!(read_openai(&body).text, answer(4), "{body}");
    assert!(took >= std::time::Duration::from_millis(100), "{took:?}");
    assert!(took < std::time::Duration::from_millis(1500), "{took:?}");
    assert_eq!(slow.request_count(), 1);
    // The slow provider's request was cancelled and its slot released long before its 3 s.
    assert!(
        eventually(std::time::Duration::from_secs(1), || async {
            r.in_flight("slow").await == 0 && slow.cancelled() == 1
        })
        .await
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(
        scrape(&r)
            .await
            .contains("llm_router_hedges_total{outcome=\"hedge_won\"} 1"),
        "the hedge is counted"
    );
}

/// `hedge_after_ms: "auto"`: nothing is hedged before the provider has a measurement; once its
/// p95 TTFT is known (tens of ms here), a first token that takes a second is hedged at about that.
#[actix_rt::test]
async fn auto_hedging_waits_for_a_measurement_then_hedges_at_the_measured_ttft() {
    let ms = std::time::Duration::from_millis;
    let cfg = |latency| FakeConfig {
        latency,
        ..Default::default()
    };
    let a = FakeUpstream::start(cfg(ms(300)));
    let b = FakeUpstream::start(FakeConfig::default());
    let mut model = json!({"providers": [tiered("a", &a, 0), tiered("b", &b, 1)],
                           "providers_sleep": []});
    model["hedge_after_ms"] = json!("auto");
    let r = Router::start(
        &config(vec![("m", model)]),
        &[
            ("LLM_ROUTER_USE_PROMETHEUS", "1"),
            ("LLM_ROUTER_HEDGE_MAX_FRACTION", "1"),
        ],
    );
    let timed = |r: &Router| {
        let r = r.url("/v1/chat/completions");
        async move {
            let started = std::time::Instant::now();
            let mut res = client()
                .post(r)
                .send_json(&chat_body("m", true))
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
            assert_eq!(read_openai(&body).text, answer(4), "{body}");
            (served_by(&res), started.elapsed())
        }
    };
    // Unmeasured: a's slow first token is waited for.
    let (by, took) = timed(&r).await;
    assert_eq!(by, "a");
    assert!(took >= ms(300), "{took:?}");
    // Fast for a while: 30 answers measure it.
    a.set_config(cfg(ms(10)));
    for _ in 0..30 {
        timed(&r).await;
    }
    // Now a first token a second away is hedged at a's measured TTFT, long before the second.
    a.set_config(cfg(ms(1000)));
    let (by, took) = timed(&r).await;
    assert_eq!(by, "b");
    assert!(took < ms(500), "{took:?}");
    assert!(
        scrape(&r)
            .await
            .contains("llm_router_hedges_total{outcome=\"hedge_won\"}"),
        "the hedge is counted"
    );
}

/// The router's Prometheus exposition.
pub(crate) async fn scrape(r: &Router) -> String {
    let mut res = client().get(r.url("/metrics")).send().await.unwrap();
    String::from_utf8(res.body().limit(1 << 22).await.unwrap().to_vec()).unwrap()
}

#[actix_rt::test]
async fn a_first_byte_before_the_hedge_delay_is_not_hedged_and_bad_values_are_refused() {
    let up = FakeUpstream::start(FakeConfig::default());
    let other = FakeUpstream::start(FakeConfig::default());
    let r = Router::start(
        &models_config(&[("m", vec![tiered("a", &up, 0), tiered("b", &other, 1)])]),
        &[("LLM_ROUTER_HEDGE_AFTER_MS", "500")],
    );
    for _ in 0..3 {
        let mut res = r.chat("m", true).await;
        assert_eq!(res.status(), 200);
        let _ = res.body().await;
    }
    assert_eq!((up.request_count(), other.request_count()), (3, 0));
    // Start-up validation names the bad value.
    let vars = std::collections::HashMap::from([(
        "LLM_ROUTER_HEDGE_AFTER_MS".to_string(),
        "soon".to_string(),
    )]);
    let errs = llm_router::settings::Settings::from_vars(&vars).unwrap_err();
    assert!(
        errs.iter().any(|e| e.contains("LLM_ROUTER_HEDGE_AFTER_MS")),
        "{errs:?}"
    );
}

// ---- Fault mix under load ----

/// Several providers with different faults under concurrent mixed traffic (streams and not,
/// passthrough and converted): every request gets the complete answer — each met at most one
/// fault per provider, and another provider rescued it — within its bound, no slot leaks, and the
/// router's memory stays flat. The router is its own process (the binary), so its RSS is its own.
#[actix_rt::test]
async fn a_fault_mix_under_concurrent_load_is_rescued_without_leaking_slots() {
    let chunks = 5;
    let fake = |fault: Fault, delay: u64| {
        FakeUpstream::start(FakeConfig {
            chunks,
            fault,
            chunk_delay: std::time::Duration::from_millis(delay),
            ..Default::default()
        })
    };
    let ups = [
        (
            "errors",
            fake(
                Fault::Status {
                    code: 503,
                    message: "overloaded".into(),
                    retry_after: None,
                },
                0,
            ),
        ),
        ("cuts", fake(Fault::CutMidStream { after_chunks: 3 }, 1)),
        ("stalls", fake(Fault::StallAfter { after_chunks: 2 }, 1)),
        ("ok", fake(Fault::None, 2)),
        ("ok2", fake(Fault::None, 1)),
    ];
    let providers = ups
        .iter()
        .map(|(id, up)| typed(id, up, "vllm", 0))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = crate::process::spawn_with_config(
        &models_config(&[("m", providers)]),
        dir.path(),
        &[
            ("LLM_ROUTER_EXTERNAL_TIMEOUT", "0.5"),
            ("LLM_ROUTER_SERVER_WORKERS_COUNT", "2"),
            ("LLM_ROUTER_LOG_LEVEL", "ERROR"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let want = answer(chunks);
    let bound = std::time::Duration::from_secs(5);
    let one = |i: usize| {
        let (base, want) = (&base, want.clone());
        async move {
            let stream = !i.is_multiple_of(3);
            let ollama = i.is_multiple_of(4);
            let path = if ollama {
                "/api/chat"
            } else {
                "/v1/chat/completions"
            };
            let started = std::time::Instant::now();
            let mut res = client()
                .post(format!("{base}{path}"))
                .send_json(&chat_body("m", stream))
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.body().limit(1 << 20).await.unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            let took = started.elapsed();
            let text = match (ollama, stream) {
                (false, true) => {
                    let s = read_openai(&body);
                    (s.errors == 0 && s.done == 1 && s.roles == 1).then_some(s.text)
                }
                (true, true) => {
                    let lines: Vec<Value> = body
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                    let done = lines.iter().filter(|l| l["done"] == json!(true)).count();
                    let text: String = lines
                        .iter()
                        .filter_map(|l| l.pointer("/message/content").and_then(Value::as_str))
                        .collect();
                    (done == 1 && !body.contains("\"error\"")).then_some(text)
                }
                (_, false) => serde_json::from_str::<Value>(&body).ok().and_then(|v| {
                    v.pointer("/choices/0/message/content")
                        .or_else(|| v.pointer("/message/content"))
                        .and_then(Value::as_str)
                        .map(String::from)
                }),
            };
            let ok = status == 200 && text.as_deref() == Some(want.as_str()) && took < bound;
            (
                ok,
                format!("#{i} {path} stream={stream}: {status} in {took:?}: {body}"),
            )
        }
    };
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let (total, warm_waves) = (1200, 5);
    let mut rss = Vec::new();
    for wave in 0..total / 24 {
        if wave == warm_waves {
            rss.push(rss_kib(child.id()));
        }
        let results = futures_util::future::join_all((0..24).map(|k| one(wave * 24 + k))).await;
        failures.extend(
            results
                .into_iter()
                .filter(|(ok, _)| !ok)
                .map(|(_, why)| why),
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {total} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    rss.push(rss_kib(child.id()));
    // Every faulty provider was met (so the rescues above were real), and no slot leaked.
    for (id, up) in &ups {
        assert!(up.request_count() > 0, "{id} was never asked");
        assert!(
            eventually(std::time::Duration::from_secs(5), || async {
                in_flight(&base, id).await == Some(0)
            })
            .await,
            "{id} holds a slot"
        );
    }
    // Memory: what the warm router holds after 120 requests is what it holds after 1200 (a leak
    // of a body, a stream's buffers or a lease per request would add megabytes).
    let (warm, end) = (rss[0], rss[1]);
    eprintln!(
        "router RSS: {warm} KiB after {} requests, {end} KiB after {total}",
        warm_waves * 24
    );
    assert!(
        end <= warm + FLAT_RSS_KIB,
        "RSS grew from {warm} KiB (after {} requests) to {end} KiB (after {total})",
        warm_waves * 24
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Growth of a warm router's RSS over a run that still counts as flat.
const FLAT_RSS_KIB: u64 = 2048;

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Provider `id`'s requests in flight, from the router's `/health`.
async fn in_flight(base: &str, id: &str) -> Option<u64> {
    let mut res = client().get(format!("{base}/health")).send().await.ok()?;
    let h: Value = res.json().limit(1 << 20).await.ok()?;
    h["models"]
        .as_array()?
        .iter()
        .flat_map(|m| m["providers"].as_array().into_iter().flatten())
        .find(|p| p["id"] == id)?["in_flight"]
        .as_u64()
}
