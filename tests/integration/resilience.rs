//! Faults as a user's traffic meets them (SPEC §11): each test sets up one fault and asserts
//! what the client receives.

use serde_json::{json, Value};

use crate::common::*;

fn tiered(id: &str, up: &FakeUpstream, priority: u32) -> Value {
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

fn with_fallbacks(providers: Vec<Value>, key: &str, to: &[&str]) -> Value {
    json!({"providers": providers, "providers_sleep": [], key: to})
}

fn config(models: Vec<(&str, Value)>) -> Value {
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

// ---- Stream continuation (SPEC §11) ----

fn typed(id: &str, up: &FakeUpstream, api_type: &str, priority: u32) -> Value {
    let mut p = tiered(id, up, priority);
    p["api_type"] = json!(api_type);
    p["api_token"] = json!("sk-test");
    p
}

fn cut_after(frames: usize, chunks: usize) -> FakeUpstream {
    FakeUpstream::start(FakeConfig {
        chunks,
        fault: Fault::CutMidStream {
            after_chunks: frames,
        },
        ..Default::default()
    })
}

fn answer(chunks: usize) -> String {
    (0..chunks).map(|i| format!("t{i} ")).collect()
}

async fn post_text(r: &Router, path: &str, body: &Value) -> (u16, String) {
    let mut res = client().post(r.url(path)).send_json(body).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.body().limit(1 << 20).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// An OpenAI chat stream's text, role frames, ids and `[DONE]`s, as a client reads them.
struct OpenAiStream {
    text: String,
    roles: usize,
    ids: std::collections::BTreeSet<String>,
    done: usize,
    errors: usize,
    finishes: usize,
}

fn read_openai(body: &str) -> OpenAiStream {
    let mut s = OpenAiStream {
        text: String::new(),
        roles: 0,
        ids: Default::default(),
        done: 0,
        errors: 0,
        finishes: 0,
    };
    for d in sse_data(body) {
        if d == "[DONE]" {
            s.done += 1;
            continue;
        }
        let v: Value = serde_json::from_str(&d).unwrap_or_else(|e| panic!("{e}: {d:?}"));
        if v.get("error").is_some() {
            s.errors += 1;
            continue;
        }
        if let Some(id) = v["id"].as_str() {
            s.ids.insert(id.to_string());
        }
        let delta = &v["choices"][0]["delta"];
        if delta.get("role").is_some() {
            s.roles += 1;
        }
        if let Some(t) = delta["content"].as_str() {
            s.text.push_str(t);
        }
        if v["choices"][0]["finish_reason"].is_string() {
            s.finishes += 1;
        }
    }
    s
}

#[actix_rt::test]
async fn a_stream_cut_mid_way_is_continued_by_prefill_and_spliced_once() {
    // Role frame + t0 + t1, then the connection breaks.
    let cut = cut_after(3, 6);
    let spare = FakeUpstream::start(FakeConfig {
        chunks: 6,
        ..Default::default()
    });
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![
                typed("cut", &cut, "vllm", 0),
                typed("spare", &spare, "vllm", 1),
            ],
        )]),
        &[("LLM_ROUTER_USE_PROMETHEUS", "1")],
    );
    let mut body = chat_body("m", true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, text) = post_text(&r, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    let s = read_openai(&text);
    assert_eq!(s.text, answer(6), "{text}");
    assert_eq!(
        (s.roles, s.done, s.errors, s.finishes),
        (1, 1, 0, 1),
        "{text}"
    );
    assert_eq!(s.ids.len(), 1, "one id: {text}");
    let usage = sse_data(&text)
        .iter()
        .filter(|d| d.contains("\"usage\"") && !d.contains("\"usage\":null"))
        .count();
    assert_eq!(usage, 1, "one usage: {text}");
    // The spare was asked to continue the text so far (vLLM's continue_final_message).
    let log = spare.requests();
    assert_eq!(log.len(), 1);
    let sent = &log[0].body;
    assert_eq!(sent["continue_final_message"], json!(true), "{sent}");
    assert_eq!(sent["add_generation_prompt"], json!(false), "{sent}");
    let last = sent["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "assistant");
    assert_eq!(last["content"], "t0 t1 ");
    assert!(
        scrape(&r)
            .await
            .contains("llm_router_stream_resumes_total{outcome=\"resumed\"} 1"),
        "the continuation is counted"
    );
    // Both slots are released.
    for p in ["cut", "spare"] {
        assert!(
            eventually(std::time::Duration::from_secs(5), || async {
                r.in_flight(p).await == 0
            })
            .await,
            "{p}"
        );
    }
}

#[actix_rt::test]
async fn an_anthropic_stream_cut_mid_way_is_continued_with_a_trailing_assistant_turn() {
    let cut = cut_after(5, 6);
    let spare = FakeUpstream::start(FakeConfig {
        chunks: 6,
        ..Default::default()
    });
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![
                typed("cut", &cut, "anthropic", 0),
                typed("spare", &spare, "anthropic", 1),
            ],
        )]),
        &[],
    );
    let body = json!({"model": "m", "max_tokens": 100, "stream": true,
                      "messages": [{"role": "user", "content": "hello there"}]});
    let (status, text) = post_text(&r, "/v1/messages", &body).await;
    assert_eq!(status, 200);
    let events: Vec<Value> = sse_data(&text)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let of = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(of("message_start"), 1, "{text}");
    assert_eq!(of("message_stop"), 1, "{text}");
    assert_eq!(of("content_block_start"), 1, "{text}");
    assert_eq!(of("error"), 0, "{text}");
    let got: String = events
        .iter()
        .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(got, answer(6), "{text}");
    let sent = &spare.requests()[0].body;
    let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "assistant", "{sent}");
    // What the client had ("t0 t1 ", after message_start, content_block_start and a ping),
    // without the trailing whitespace Anthropic refuses in a prefill (and which the fake
    // refuses too); the continuation's leading space is not repeated to the client (above).
    let prefill = last["content"]
        .as_str()
        .or_else(|| last.pointer("/content/0/text").and_then(Value::as_str));
    assert_eq!(prefill, Some("t0 t1"), "{sent}");
}

#[actix_rt::test]
async fn without_prefill_the_answer_is_regenerated_and_the_delivered_part_skipped() {
    for spare_type in ["openai", "vllm"] {
        let cut = cut_after(3, 5);
        // vLLM here refuses the prefill (400): the same provider regenerates.
        let spare = FakeUpstream::start(FakeConfig {
            chunks: 5,
            reject_prefill: true,
            ..Default::default()
        });
        let r = Router::start(
            &models_config(&[(
                "m",
                vec![
                    typed("cut", &cut, "vllm", 0),
                    typed("spare", &spare, spare_type, 1),
                ],
            )]),
            &[],
        );
        let (status, text) = post_text(&r, "/v1/chat/completions", &chat_body("m", true)).await;
        assert_eq!(status, 200);
        let s = read_openai(&text);
        assert_eq!(s.text, answer(5), "{spare_type}: {text}");
        assert_eq!(
            (s.roles, s.done, s.errors),
            (1, 1, 0),
            "{spare_type}: {text}"
        );
        let log = spare.requests();
        let regenerated = log.last().unwrap();
        assert!(
            regenerated.body.get("continue_final_message").is_none(),
            "{spare_type}"
        );
        assert_eq!(log.len(), if spare_type == "vllm" { 2 } else { 1 });
    }
}

#[actix_rt::test]
async fn a_regenerated_answer_that_differs_ends_with_the_in_band_error() {
    let cut = cut_after(3, 5);
    // Echoes the prompt instead of t0 t1 …: not the answer already delivered.
    let other = FakeUpstream::start(FakeConfig {
        echo: true,
        ..Default::default()
    });
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![
                typed("cut", &cut, "vllm", 0),
                typed("other", &other, "openai", 1),
            ],
        )]),
        &[],
    );
    let (status, text) = post_text(&r, "/v1/chat/completions", &chat_body("m", true)).await;
    assert_eq!(status, 200);
    let s = read_openai(&text);
    assert_eq!(s.text, "t0 t1 ", "{text}");
    assert_eq!(s.errors, 1, "{text}");
}

#[actix_rt::test]
async fn a_stalled_stream_is_continued_after_the_idle_bound() {
    let stall = FakeUpstream::start(FakeConfig {
        chunks: 5,
        fault: Fault::StallAfter { after_chunks: 3 },
        ..Default::default()
    });
    let spare = FakeUpstream::start(FakeConfig {
        chunks: 5,
        ..Default::default()
    });
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![
                typed("stall", &stall, "vllm", 0),
                typed("spare", &spare, "vllm", 1),
            ],
        )]),
        &[("LLM_ROUTER_EXTERNAL_TIMEOUT", "0.5")],
    );
    let (status, text) = post_text(&r, "/v1/chat/completions", &chat_body("m", true)).await;
    assert_eq!(status, 200);
    let s = read_openai(&text);
    assert_eq!(s.text, answer(5), "{text}");
    assert_eq!((s.roles, s.done, s.errors), (1, 1, 0), "{text}");
    // The stalled upstream call was given up (its connection closed).
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            stall.active() == 0
        })
        .await
    );
}

#[actix_rt::test]
async fn a_converted_stream_is_continued_in_the_clients_dialect() {
    let cut = cut_after(3, 5);
    let spare = FakeUpstream::start(FakeConfig {
        chunks: 5,
        ..Default::default()
    });
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![
                typed("cut", &cut, "vllm", 0),
                typed("spare", &spare, "vllm", 1),
            ],
        )]),
        &[],
    );
    // An Ollama client of OpenAI-wire providers: NDJSON lines, one `done: true`.
    let (status, text) = post_text(&r, "/api/chat", &chat_body("m", true)).await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: String = lines
        .iter()
        .filter_map(|l| l.pointer("/message/content").and_then(Value::as_str))
        .collect();
    assert_eq!(got, answer(5), "{text}");
    assert_eq!(lines.iter().filter(|l| l["done"] == json!(true)).count(), 1);
    assert!(!text.contains("\"error\""), "{text}");
}

#[actix_rt::test]
async fn no_continuation_after_a_tool_call_began_or_when_resume_is_off() {
    let tool_body = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
    for (body, env) in [
        (tool_body, vec![]),
        (
            chat_body("m", true),
            vec![("LLM_ROUTER_STREAM_RESUME", "false")],
        ),
    ] {
        let cut = FakeUpstream::start(FakeConfig {
            fault: Fault::CutMidStream { after_chunks: 2 },
            tool_arguments: Some(json!({"city": "Paris"})),
            ..Default::default()
        });
        let spare = FakeUpstream::start(FakeConfig::default());
        let r = Router::start(
            &models_config(&[(
                "m",
                vec![
                    typed("cut", &cut, "vllm", 0),
                    typed("spare", &spare, "vllm", 1),
                ],
            )]),
            &env,
        );
        let (status, text) = post_text(&r, "/v1/chat/completions", &body).await;
        assert_eq!(status, 200);
        let s = read_openai(&text);
        assert_eq!(s.errors, 1, "{env:?}: {text}");
        assert_eq!(s.done, 0, "{env:?}: {text}");
        assert_eq!(spare.request_count(), 0, "{env:?}");
    }
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

/// The router's Prometheus exposition.
async fn scrape(r: &Router) -> String {
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
/// fault per provider, and another provider rescued it — within its bound, and no slot leaks.
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
    let r = Router::start(
        &models_config(&[("m", providers)]),
        &[("LLM_ROUTER_EXTERNAL_TIMEOUT", "0.5")],
    );
    let want = answer(chunks);
    let bound = std::time::Duration::from_secs(5);
    let one = |i: usize| {
        let (r, want) = (&r, want.clone());
        async move {
            let stream = !i.is_multiple_of(3);
            let ollama = i.is_multiple_of(4);
            let path = if ollama {
                "/api/chat"
            } else {
                "/v1/chat/completions"
            };
            let started = std::time::Instant::now();
            let (status, body) = post_text(r, path, &chat_body("m", stream)).await;
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
    let total = 240;
    for wave in 0..total / 24 {
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
    // Every faulty provider was met (so the rescues above were real), and no slot leaked.
    for (id, up) in &ups {
        assert!(up.request_count() > 0, "{id} was never asked");
        assert!(
            eventually(std::time::Duration::from_secs(5), || async {
                r.in_flight(id).await == 0
            })
            .await,
            "{id} holds a slot"
        );
    }
}

#[actix_rt::test]
async fn a_stream_with_no_other_provider_is_continued_by_the_fallback_model() {
    let cut = cut_after(3, 5);
    let big = FakeUpstream::start(FakeConfig {
        chunks: 5,
        ..Default::default()
    });
    let r = Router::start(
        &config(vec![
            (
                "m",
                with_fallbacks(vec![typed("cut", &cut, "vllm", 0)], "fallbacks", &["big"]),
            ),
            (
                "big",
                json!({"providers": [typed("big-1", &big, "vllm", 0)], "providers_sleep": []}),
            ),
        ]),
        &[],
    );
    let (status, text) = post_text(&r, "/v1/chat/completions", &chat_body("m", true)).await;
    assert_eq!(status, 200);
    let s = read_openai(&text);
    assert_eq!(s.text, answer(5), "{text}");
    assert_eq!(
        (s.roles, s.done, s.errors, s.ids.len()),
        (1, 1, 0, 1),
        "{text}"
    );
    assert_eq!(big.request_count(), 1);
}
