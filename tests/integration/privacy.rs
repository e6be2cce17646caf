//! The privacy pipeline (SPEC §6): what the provider receives when masking is on, and what the
//! client gets back when it asked for the originals.

use serde_json::{json, Value};

use crate::common::*;

const PESEL: &str = "44051401359";
const EMAIL: &str = "jan.kowalski@firma.pl";

fn secret_text() -> String {
    format!("Mój PESEL to {PESEL} a e-mail {EMAIL} proszę")
}

/// Every body the provider received, as text.
fn received(up: &FakeUpstream) -> String {
    up.requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn echo() -> FakeConfig {
    FakeConfig {
        echo: true,
        chunks: 64,
        ..Default::default()
    }
}

async fn post(r: &Router, path: &str, body: &Value) -> (u16, String) {
    let mut res = client().post(r.url(path)).send_json(body).await.unwrap();
    let status = res.status().as_u16();
    let body = res.body().limit(1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[actix_rt::test]
async fn anonymize_masks_every_dialect_before_the_provider_sees_it() {
    let up = FakeUpstream::start(echo());
    let mut anthropic = provider("claude", &up);
    anthropic["api_type"] = json!("anthropic");
    anthropic["api_token"] = json!("sk-ant-test");
    let mut ollama = provider("llama", &up);
    ollama["api_type"] = json!("ollama");
    let r = Router::start(
        &models_config(&[
            ("m", vec![provider("a", &up)]),
            ("c", vec![anthropic]),
            ("o", vec![ollama]),
        ]),
        &[],
    );
    let text = secret_text();
    let msg = json!([{"role": "user", "content": text}]);
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": msg, "anonymize": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": msg, "anonymize": true, "stream": true}),
        ),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 9, "messages": msg, "anonymize": true}),
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": msg, "anonymize": true}),
        ),
        (
            "/api/generate",
            json!({"model": "o", "prompt": text, "anonymize": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "c", "messages": msg, "anonymize": true, "stream": true}),
        ),
        (
            "/v1/responses",
            json!({"model": "m", "input": text, "anonymize": true}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "m", "input": [text], "anonymize": true}),
        ),
    ];
    for (path, body) in &cases {
        let (status, answer) = post(&r, path, body).await;
        assert_eq!(status, 200, "{path} {body}: {answer}");
    }
    let seen = received(&up);
    assert_eq!(up.request_count(), cases.len());
    assert!(!seen.contains(PESEL) && !seen.contains(EMAIL), "{seen}");
    assert!(
        seen.contains("{PESEL_1}") && seen.contains("{EMAIL_1}"),
        "{seen}"
    );
    assert!(
        !seen.contains("anonymize"),
        "the router's own field is not forwarded: {seen}"
    );
}

#[actix_rt::test]
async fn forced_masking_masks_requests_that_did_not_ask() {
    let (up, r) = single(echo(), &[("LLM_ROUTER_FORCE_ANONYMISATION", "tak")]);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": secret_text()}]});
    let (status, answer) = post(&r, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    // Without restore the client sees what the provider answered: placeholders.
    assert!(
        answer.contains("{PESEL_1}") && !answer.contains(PESEL),
        "{answer}"
    );
    assert!(!received(&up).contains(PESEL));
}

#[actix_rt::test]
async fn restore_puts_the_originals_back_in_whole_answers_and_streams() {
    let (up, r) = single(echo(), &[]);
    let text = secret_text();
    let msg = json!([{"role": "user", "content": text}]);
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": msg, "anonymize": "restore"}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": msg, "anonymize": "restore", "stream": true}),
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": msg, "anonymize": "restore"}),
        ),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 99, "messages": msg, "anonymize": "restore", "stream": true}),
        ),
    ] {
        let (status, answer) = post(&r, path, &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert!(
            answer.contains(PESEL) && answer.contains(EMAIL) && !answer.contains("{PESEL_1}"),
            "{path}: {answer}"
        );
    }
    assert!(
        !received(&up).contains(PESEL),
        "the provider never saw the originals"
    );
}

#[actix_rt::test]
async fn fast_text_mask_returns_text_and_mappings() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let (status, answer) = post(&r, "/api/fast_text_mask", &json!({"text": secret_text()})).await;
    assert_eq!(status, 200, "{answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        v.as_object().unwrap().len(),
        2,
        "exactly text and mappings: {v}"
    );
    assert_eq!(
        v["text"],
        json!("Mój PESEL to {PESEL_1} a e-mail {EMAIL_1} proszę")
    );
    assert_eq!(
        v["mappings"],
        json!({"{PESEL_1}": PESEL, "{EMAIL_1}": EMAIL})
    );
    let (status, answer) = post(&r, "/api/fast_text_mask", &json!({"txt": "x"})).await;
    assert_eq!(status, 400);
    assert!(
        answer.contains("missing required field \\\"text\\\""),
        "{answer}"
    );
}

#[actix_rt::test]
async fn a_bad_anonymize_value_is_refused_and_nothing_is_sent() {
    let (up, r) = single(echo(), &[]);
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "anonymize": "yes"});
    let (status, answer) = post(&r, "/v1/chat/completions", &body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("\\\"anonymize\\\" must be"), "{answer}");
    assert_eq!(up.request_count(), 0);
}
