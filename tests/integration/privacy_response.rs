//! Response guardrails (SPEC §6): answers checked by the configured guardrails before the client
//! gets them — whole answers before they are sent, streams in windows and at their end — for the
//! OpenAI, Ollama and Anthropic dialects, passed through and converted.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use crate::plugins::{Mode, Plugins};

const NASK: &str = "/api/guardrails/nask_guard";
const SAFE: &str = "alpha beta gamma delta epsilon zeta eta theta";
const UNSAFE: &str = "alpha beta gamma delta epsilon bomb zulu yankee xray whiskey victor uniform";

/// The words of [`UNSAFE`] after "bomb": none of them may reach the client.
const AFTER: [&str; 6] = ["zulu", "yankee", "xray", "whiskey", "victor", "uniform"];

/// One upstream serving three models: `m` (OpenAI wire), `o` (Ollama), `c` (Anthropic), answering
/// with the words of the last user text, one frame per word.
fn guarded(svc: &Plugins, fake: FakeConfig, extra: &[(&str, &str)]) -> (FakeUpstream, Router) {
    let up = FakeUpstream::start(fake);
    let mut ollama = provider("llama", &up);
    ollama["api_type"] = json!("ollama");
    let mut anthropic = provider("claude", &up);
    anthropic["api_type"] = json!("anthropic");
    anthropic["api_token"] = json!("sk-ant-test");
    let url = svc.url();
    let mut env = vec![
        ("LLM_ROUTER_FORCE_GUARDRAIL_RESPONSE", "1"),
        (
            "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_RESPONSE",
            "nask_guard",
        ),
        ("LLM_ROUTER_GUARDRAIL_NASK_GUARD_HOST", url.as_str()),
        ("LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS", "12"),
        ("LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS", "2"),
        ("LLM_ROUTER_USE_PROMETHEUS", "1"),
    ];
    env.extend_from_slice(extra);
    let config = models_config(&[
        ("m", vec![provider("a", &up)]),
        ("o", vec![ollama]),
        ("c", vec![anthropic]),
    ]);
    let r = Router::start(&config, &env);
    (up, r)
}

fn echo(chunk_delay: Duration) -> FakeConfig {
    FakeConfig {
        echo: true,
        chunk_delay,
        ..Default::default()
    }
}

/// Every dialect, against a provider of its own wire (passthrough) and of another (converted).
const CASES: [(&str, &str); 6] = [
    ("/v1/chat/completions", "m"),
    ("/v1/chat/completions", "c"),
    ("/api/chat", "o"),
    ("/api/chat", "m"),
    ("/v1/messages", "c"),
    ("/v1/messages", "m"),
];

fn body(path: &str, model: &str, text: &str, stream: bool) -> Value {
    let mut b = json!({"model": model, "stream": stream,
                       "messages": [{"role": "user", "content": text}]});
    if path == "/v1/messages" {
        b["max_tokens"] = json!(99);
    }
    b
}

async fn post(r: &Router, path: &str, body: &Value) -> (u16, String) {
    let mut res = client().post(r.url(path)).send_json(body).await.unwrap();
    let status = res.status().as_u16();
    let body = res.body().limit(1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Every word of `answer` taken from `words` was in a text the guardrail judged safe.
fn all_checked(svc: &Plugins, answer: &str, words: &[&str]) {
    let safe_texts: Vec<String> = svc
        .calls(NASK)
        .iter()
        .filter_map(|c| c["text"].as_str().map(String::from))
        .filter(|t| !t.contains("bomb"))
        .collect();
    for w in words {
        if answer.contains(w) {
            assert!(
                safe_texts.iter().any(|t| t.contains(w)),
                "{w:?} reached the client unchecked: {answer}\nchecked: {safe_texts:?}"
            );
        }
    }
}

#[actix_rt::test]
async fn privacy_response_guardrails_pass_safe_answers_in_every_dialect() {
    let svc = Plugins::start(Mode::Faithful);
    let (_up, r) = guarded(&svc, echo(Duration::ZERO), &[]);
    for (path, model) in CASES {
        for stream in [false, true] {
            let (status, answer) = post(&r, path, &body(path, model, SAFE, stream)).await;
            assert_eq!(status, 200, "{path} {model} stream={stream}: {answer}");
            for w in ["alpha", "theta"] {
                assert!(
                    answer.contains(w),
                    "{path} {model} stream={stream}: {answer}"
                );
            }
            assert!(!answer.contains("error"), "{path} {model}: {answer}");
        }
    }
    let calls = svc.calls(NASK);
    assert!(
        calls.iter().any(|c| c["text"].as_str() == Some(SAFE)),
        "the whole answer text was checked: {calls:?}"
    );
    let words: Vec<&str> = SAFE.split(' ').collect();
    assert!(
        calls.iter().any(|c| {
            let t = c["text"].as_str().unwrap_or_default();
            !t.is_empty() && t.trim_end() != SAFE && SAFE.starts_with(t.trim_end())
        }),
        "streams are checked in windows before their end: {calls:?}"
    );
    assert!(words.len() > 2);
}

#[actix_rt::test]
async fn privacy_response_guardrails_refuse_unsafe_answers_whole_and_in_band() {
    let svc = Plugins::start(Mode::Faithful);
    let (_up, r) = guarded(&svc, echo(Duration::from_millis(2)), &[]);
    let words: Vec<&str> = UNSAFE.split(' ').collect();
    for (path, model) in CASES {
        let (status, answer) = post(&r, path, &body(path, model, UNSAFE, false)).await;
        assert_eq!(status, 422, "{path} {model}: {answer}");
        assert!(
            answer.contains("the response was rejected by guardrail nask_guard (crime)"),
            "{path} {model}: {answer}"
        );
        assert!(!answer.contains("alpha"), "{path} {model}: {answer}");

        let (status, answer) = post(&r, path, &body(path, model, UNSAFE, true)).await;
        assert_eq!(
            status, 200,
            "a stream's head went out: {path} {model}: {answer}"
        );
        assert!(
            answer.contains("the response was rejected by guardrail nask_guard (crime)"),
            "in-band refusal: {path} {model}: {answer}"
        );
        assert!(!answer.contains("bomb"), "{path} {model}: {answer}");
        for w in AFTER {
            assert!(!answer.contains(w), "{w}: {path} {model}: {answer}");
        }
        all_checked(&svc, &answer, &words);
        if path == "/v1/chat/completions" {
            assert!(!answer.contains("[DONE]"), "no success ending: {answer}");
        }
    }
    let (_, metrics) = {
        let mut res = client().get(r.url("/metrics")).send().await.unwrap();
        let b = res.body().limit(1 << 20).await.unwrap();
        (res.status(), String::from_utf8_lossy(&b).into_owned())
    };
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("guardrail_incidents_total{")
                && l.contains("direction=\"response\"")
                && l.contains("outcome=\"unsafe\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(line.ends_with(" 12"), "one per refused answer: {line}");
}

#[actix_rt::test]
async fn privacy_an_unsafe_stream_cancels_the_provider() {
    let svc = Plugins::start(Mode::Faithful);
    let (up, r) = guarded(&svc, echo(Duration::from_millis(20)), &[]);
    let long = format!("{UNSAFE} {}", ["more"; 60].join(" "));
    for (path, model) in [("/v1/chat/completions", "m"), ("/api/chat", "m")] {
        let before = up.cancelled();
        let (status, answer) = post(&r, path, &body(path, model, &long, true)).await;
        assert_eq!(status, 200, "{answer}");
        assert!(
            answer.contains("rejected by guardrail nask_guard"),
            "{answer}"
        );
        assert!(!answer.contains("more"), "{answer}");
        assert!(
            eventually(Duration::from_secs(5), || async { up.cancelled() > before }).await,
            "{path}: the provider's stream was cut, not read to its end"
        );
    }
}

#[actix_rt::test]
async fn privacy_a_failing_response_guardrail_withholds_the_answer() {
    for mode in [Mode::Status500, Mode::BadJson] {
        let svc = Plugins::start(mode);
        let (_up, r) = guarded(&svc, echo(Duration::ZERO), &[]);
        for (path, model) in CASES {
            let (status, answer) = post(&r, path, &body(path, model, SAFE, false)).await;
            assert_eq!(status, 503, "{mode:?} {path} {model}: {answer}");
            assert!(
                answer.contains("nask_guard") && answer.contains("was withheld"),
                "{mode:?} {path} {model}: {answer}"
            );
            assert!(!answer.contains("alpha"), "{answer}");
            let (status, answer) = post(&r, path, &body(path, model, SAFE, true)).await;
            assert_eq!(status, 200, "{answer}");
            assert!(
                answer.contains("nask_guard") && answer.contains("was withheld"),
                "in-band: {mode:?} {path} {model}: {answer}"
            );
            assert!(
                !answer.contains("alpha"),
                "nothing unchecked: {mode:?} {path} {model}: {answer}"
            );
        }
    }
}

#[test]
fn privacy_response_guardrail_configuration_errors_are_start_up_errors() {
    let table: &[(&[(&str, &str)], &str)] = &[
        (
            &[("LLM_ROUTER_FORCE_GUARDRAIL_RESPONSE", "1")],
            "LLM_ROUTER_FORCE_GUARDRAIL_RESPONSE: on, but \
             LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_RESPONSE names no guardrail",
        ),
        (
            &[
                ("LLM_ROUTER_FORCE_GUARDRAIL_RESPONSE", "1"),
                (
                    "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_RESPONSE",
                    "sojka_guard",
                ),
            ],
            "sojka_guard needs its service: set LLM_ROUTER_GUARDRAIL_SOJKA_GUARD_HOST",
        ),
        (
            &[("LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS", "0")],
            "LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS: expected a whole number",
        ),
        (
            &[
                ("LLM_ROUTER_AUDIT_QUEUE_SIZE", "lots"),
                ("LLM_ROUTER_MASKING_WITH_AUDIT", "1"),
            ],
            "LLM_ROUTER_AUDIT_QUEUE_SIZE: expected a whole number of records",
        ),
    ];
    for (env, want) in table {
        let vars: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let errs = llm_router::Settings::from_vars(&vars)
            .err()
            .unwrap_or_default();
        assert!(errs.iter().any(|e| e.contains(want)), "{env:?}: {errs:#?}");
    }
}

#[actix_rt::test]
async fn privacy_response_guardrails_judge_the_restored_answer_and_cover_the_built_in_routes() {
    let svc = Plugins::start(Mode::Faithful);
    let (up, r) = guarded(&svc, echo(Duration::ZERO), &[]);
    // Restore runs first: the guardrail sees what the client gets, the provider never does.
    let pesel = "44051401359";
    let mut b = body(
        "/v1/chat/completions",
        "m",
        &format!("PESEL {pesel} ok"),
        true,
    );
    b["anonymize"] = json!("restore");
    let (status, answer) = post(&r, "/v1/chat/completions", &b).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains(pesel), "{answer}");
    let texts: Vec<String> = svc
        .calls(NASK)
        .iter()
        .filter_map(|c| c["text"].as_str().map(String::from))
        .collect();
    assert!(texts.iter().any(|t| t.contains(pesel)), "{texts:?}");
    assert!(texts.iter().all(|t| !t.contains("{PESEL_1}")), "{texts:?}");
    assert!(!up
        .requests()
        .iter()
        .any(|q| q.body.to_string().contains(pesel)));
    // The built-in routes' answers pass the same guardrails, whole and streamed.
    for stream in [false, true] {
        let b = json!({"model_name": "m", "user_last_statement": UNSAFE, "stream": stream});
        let (status, answer) = post(&r, "/api/conversation_with_model", &b).await;
        assert!(
            answer.contains("the response was rejected by guardrail nask_guard"),
            "stream={stream}: {answer}"
        );
        assert_eq!(status, if stream { 200 } else { 422 }, "{answer}");
        assert!(!answer.contains("bomb"), "{answer}");
    }
}

#[actix_rt::test]
async fn privacy_response_guardrail_verdicts_are_audited_and_decrypt_with_gpg() {
    use crate::privacy::{audit_keys, run};
    if std::process::Command::new("gpg")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("gpg is needed: scripts/test.sh installs gnupg");
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("auditor");
    let (gnupg, key) = audit_keys(tmp.path());
    let dir = out.display().to_string();
    let svc = Plugins::start(Mode::Faithful);
    let (_up, r) = guarded(
        &svc,
        echo(Duration::ZERO),
        &[
            ("LLM_ROUTER_GUARDRAIL_WITH_AUDIT_RESPONSE", "1"),
            ("LLM_ROUTER_AUDIT_PUBLIC_KEY", &key),
            ("LLM_ROUTER_AUDIT_DIR", &dir),
        ],
    );
    let path = "/v1/chat/completions";
    let (status, answer) = post(&r, path, &body(path, "m", SAFE, false)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post(&r, path, &body(path, "m", UNSAFE, true)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(!answer.contains("bomb"), "{answer}");
    let checks = svc.calls(NASK).len();
    let files = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "audit"));
        v.sort();
        v
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            files().len() == checks
        })
        .await,
        "one record per guardrail check ({checks}): {:?}",
        files()
    );
    let records: Vec<Value> = files()
        .iter()
        .map(|f| {
            let armored = std::fs::read_to_string(f).unwrap();
            assert!(!armored.contains("alpha"), "encrypted at rest");
            let plain = run(std::process::Command::new("gpg")
                .env("GNUPGHOME", &gnupg)
                .args(["--batch", "--quiet", "--decrypt"])
                .arg(f));
            serde_json::from_str(&plain).unwrap()
        })
        .collect();
    for rec in &records {
        assert_eq!(rec["audit_type"], "guardrail_response", "{rec}");
        assert_eq!(rec["guardrail"], "nask_guard", "{rec}");
        assert_eq!(rec["endpoint"], path, "{rec}");
    }
    // The whole answer, judged safe, as the client got it.
    assert!(
        records
            .iter()
            .any(|r| r["text"] == SAFE && r["safe"] == json!(true)),
        "{records:#?}"
    );
    // The stream's refused window: the text up to the unsafe word, judged unsafe.
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["safe"] == json!(false))
        .collect();
    assert_eq!(refused.len(), 1, "{records:#?}");
    assert!(
        refused[0]["text"].as_str().unwrap().contains("bomb"),
        "{}",
        refused[0]
    );
    let _ = std::process::Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .status();
}
