//! Stream continuation (SPEC §11): a stream cut, stalled or failed after its first byte is
//! continued on another provider and spliced into the client's stream — prefilled where the
//! provider type can continue a prefix, regenerated with the delivered text skipped otherwise —
//! for passthrough streams of every dialect and for converted ones.

use serde_json::{json, Value};

use crate::common::*;
use crate::resilience::{config, scrape, tiered, with_fallbacks};

pub(crate) fn typed(id: &str, up: &FakeUpstream, api_type: &str, priority: u32) -> Value {
    let mut p = tiered(id, up, priority);
    p["api_type"] = json!(api_type);
    p["api_token"] = json!("sk-test");
    p
}

pub(crate) fn cut_after(frames: usize, chunks: usize) -> FakeUpstream {
    FakeUpstream::start(FakeConfig {
        chunks,
        fault: Fault::CutMidStream {
            after_chunks: frames,
        },
        ..Default::default()
    })
}

pub(crate) fn answer(chunks: usize) -> String {
    (0..chunks).map(|i| format!("t{i} ")).collect()
}

pub(crate) async fn post_text(r: &Router, path: &str, body: &Value) -> (u16, String) {
    let mut res = client().post(r.url(path)).send_json(body).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.body().limit(1 << 20).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// An OpenAI chat stream's text, role frames, ids and `[DONE]`s, as a client reads them.
pub(crate) struct OpenAiStream {
    pub text: String,
    pub roles: usize,
    pub ids: std::collections::BTreeSet<String>,
    pub done: usize,
    pub errors: usize,
    pub finishes: usize,
}

pub(crate) fn read_openai(body: &str) -> OpenAiStream {
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
    released(&r, &["cut", "spare"]).await;
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

/// Waits until none of `providers` holds a slot.
async fn released(r: &Router, providers: &[&str]) {
    for p in providers {
        assert!(
            eventually(std::time::Duration::from_secs(5), || async {
                r.in_flight(p).await == 0
            })
            .await,
            "{p} still holds a slot"
        );
    }
}

/// The text and the `done: true` lines of an Ollama NDJSON stream (`/api/chat` or
/// `/api/generate`), and whether any line is an error.
fn read_ndjson(body: &str) -> (String, usize, bool) {
    let lines: Vec<Value> = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let text = lines
        .iter()
        .filter_map(|l| {
            l.pointer("/message/content")
                .or_else(|| l.get("response"))
                .and_then(Value::as_str)
        })
        .collect();
    let done = lines.iter().filter(|l| l["done"] == json!(true)).count();
    (text, done, lines.iter().any(|l| l.get("error").is_some()))
}

#[actix_rt::test]
async fn an_ollama_passthrough_stream_cut_mid_way_is_regenerated_and_spliced_once() {
    let cut = cut_after(3, 6);
    let spare = FakeUpstream::start(FakeConfig {
        chunks: 6,
        ..Default::default()
    });
    let r = Router::start(
        &models_config(&[(
            "m",
            vec![
                typed("cut", &cut, "ollama", 0),
                typed("spare", &spare, "ollama", 1),
            ],
        )]),
        &[("LLM_ROUTER_USE_PROMETHEUS", "1")],
    );
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]});
    let generate = json!({"model": "m", "prompt": "hello there"});
    for (path, body, resumed) in [("/api/chat", chat, 1), ("/api/generate", generate, 2)] {
        let (status, text) = post_text(&r, path, &body).await;
        assert_eq!(status, 200, "{path}");
        let (got, done, error) = read_ndjson(&text);
        assert_eq!(got, answer(6), "{path}: {text}");
        assert_eq!((done, error), (1, false), "{path}: {text}");
        // Ollama is not asked to continue a prefix: the spare regenerated the answer (the same
        // conversation, through /api/chat) and the three words the client had were skipped.
        let sent = &spare.requests()[resumed - 1];
        assert_eq!(sent.path, "/api/chat", "{path}");
        let messages = sent.body["messages"].as_array().unwrap();
        let last = messages.last().unwrap();
        assert_eq!(
            (&last["role"], &last["content"]),
            (&json!("user"), &json!("hello there"))
        );
        let line = format!("llm_router_stream_resumes_total{{outcome=\"resumed\"}} {resumed}");
        assert!(scrape(&r).await.contains(&line), "{path}: {line}");
    }
    released(&r, &["cut", "spare"]).await;
}

#[actix_rt::test]
async fn a_legacy_completions_passthrough_stream_cut_mid_way_is_continued_by_prefill() {
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
        &[],
    );
    let body = json!({"model": "m", "prompt": "Once upon a time", "stream": true,
                      "max_tokens": 50});
    let (status, text) = post_text(&r, "/v1/completions", &body).await;
    assert_eq!(status, 200);
    let mut got = String::new();
    let (mut done, mut ids, mut finishes) = (0, std::collections::BTreeSet::new(), 0);
    for d in sse_data(&text) {
        if d == "[DONE]" {
            done += 1;
            continue;
        }
        let v: Value = serde_json::from_str(&d).unwrap_or_else(|e| panic!("{e}: {d:?}"));
        assert!(v.get("error").is_none(), "{text}");
        assert_eq!(
            v["object"], "text_completion",
            "every chunk a Completions chunk: {d}"
        );
        ids.insert(v["id"].as_str().unwrap().to_string());
        got.push_str(v["choices"][0]["text"].as_str().unwrap_or_default());
        finishes += usize::from(v["choices"][0]["finish_reason"].is_string());
    }
    assert_eq!(got, answer(6), "{text}");
    assert_eq!((done, ids.len(), finishes), (1, 1, 1), "{text}");
    // The spare was asked to continue the text so far (vLLM's continue_final_message).
    let sent = &spare.requests()[0].body;
    assert_eq!(sent["continue_final_message"], json!(true), "{sent}");
    let last = sent["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (&last["role"], &last["content"]),
        (&json!("assistant"), &json!("t0 t1 t2 "))
    );
}
