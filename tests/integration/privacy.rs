//! The privacy pipeline (SPEC §6): what the provider receives when masking is on, and what the
//! client gets back when it asked for the originals.

use std::time::{Duration, Instant};

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

use crate::plugins::{Mode, Plugins};

const NASK: &str = "/api/guardrails/nask_guard";
const SOJKA: &str = "/api/guardrails/sojka_guard";
const PII: &str = "/api/maskers/pii";

fn chat(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}]})
}

/// A router guarded by nask_guard then sojka_guard, both on `svc`.
fn guarded(svc: &Plugins, extra: &[(&str, &str)]) -> (FakeUpstream, Router) {
    let url = svc.url();
    let mut env = vec![
        ("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "1"),
        (
            "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
            "nask_guard,sojka_guard",
        ),
        ("LLM_ROUTER_GUARDRAIL_NASK_GUARD_HOST", url.as_str()),
        ("LLM_ROUTER_GUARDRAIL_SOJKA_GUARD_HOST", url.as_str()),
    ];
    env.extend_from_slice(extra);
    single(echo(), &env)
}

#[actix_rt::test]
async fn privacy_guardrails_pass_safe_requests_and_refuse_unsafe_ones_with_422() {
    let svc = Plugins::start(Mode::Faithful);
    let (up, r) = guarded(&svc, &[("LLM_ROUTER_USE_PROMETHEUS", "1")]);
    let (status, answer) = post(&r, "/v1/chat/completions", &chat("how do I bake bread")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(up.request_count(), 1);
    // Both guards saw the request's text, in order.
    assert_eq!(
        svc.calls(NASK),
        vec![json!({"text": "how do I bake bread"})]
    );
    assert_eq!(svc.calls(SOJKA).len(), 1);

    for (path, body) in [
        ("/v1/chat/completions", chat("how do I build a bomb")),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 9, "stream": true,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "a bomb"}]}]}),
        ),
        (
            "/api/generate",
            json!({"model": "m", "prompt": "bomb", "stream": true}),
        ),
    ] {
        let (status, answer) = post(&r, path, &body).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert!(
            answer.contains("rejected by guardrail nask_guard (crime)"),
            "{path}: {answer}"
        );
    }
    assert_eq!(
        up.request_count(),
        1,
        "no refused request reached the provider"
    );
    assert_eq!(
        svc.calls(SOJKA).len(),
        1,
        "the first unsafe verdict stops the pipeline"
    );
    let (_, metrics) = get(&r, "/metrics").await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("guardrail_incidents_total{") && l.contains("outcome=\"unsafe\""))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        line.contains("plugin=\"nask_guard\"")
            && line.contains("direction=\"request\"")
            && line.ends_with(" 3"),
        "{line}"
    );
}

async fn get(r: &Router, path: &str) -> (u16, String) {
    let mut res = client().get(r.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.body().limit(1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[actix_rt::test]
async fn privacy_a_failing_guardrail_blocks_every_request_with_503_naming_it() {
    for (mode, why) in [
        (Mode::Status500, "nask_guard answered HTTP 500"),
        (Mode::Hang, "nask_guard did not answer within 0.5s"),
        (
            Mode::BadJson,
            "nask_guard gave an unusable answer (not JSON",
        ),
        (
            Mode::WrongShape,
            "nask_guard gave an unusable answer (no boolean",
        ),
    ] {
        let svc = Plugins::start(mode);
        let (up, r) = guarded(&svc, &[("LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS", "0.5")]);
        for stream in [false, true] {
            let mut body = chat("hello");
            body["stream"] = json!(stream);
            let (status, answer) = post(&r, "/v1/chat/completions", &body).await;
            assert_eq!(status, 503, "{mode:?}: {answer}");
            assert!(answer.contains(why), "{mode:?}: {answer}");
            assert!(answer.contains("not sent to any provider"), "{answer}");
        }
        assert_eq!(
            up.request_count(),
            0,
            "{mode:?}: nothing reached the provider"
        );
    }
}

#[actix_rt::test]
async fn privacy_a_guardrail_with_no_service_listening_blocks() {
    let svc = Plugins::start(Mode::Faithful);
    let url = svc.url();
    drop(svc);
    let (up, r) = single(
        echo(),
        &[
            ("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "1"),
            (
                "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
                "sojka_guard",
            ),
            ("LLM_ROUTER_GUARDRAIL_SOJKA_GUARD_HOST", &url),
        ],
    );
    let (status, answer) = post(&r, "/v1/chat/completions", &chat("hello")).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer.contains("sojka_guard"), "{answer}");
    assert_eq!(up.request_count(), 0);
}

#[actix_rt::test]
async fn privacy_a_service_the_monitor_found_down_fails_requests_at_once() {
    // The endpoint would hang for 5 s; once the probe has failed, requests do not wait for it.
    let svc = Plugins::start(Mode::Hang);
    svc.set_ping_up(false);
    let (up, r) = guarded(
        &svc,
        &[
            ("LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS", "0.1"),
            ("LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS", "10"),
        ],
    );
    // A second probe means the first one's verdict is in.
    assert!(eventually(Duration::from_secs(10), || async { svc.pings() >= 4 }).await);
    let down = eventually(Duration::from_secs(10), || async {
        let started = Instant::now();
        let (status, answer) = post(&r, "/v1/chat/completions", &chat("hello")).await;
        assert_eq!(status, 503, "{answer}");
        answer.contains("nask_guard is down") && started.elapsed() < Duration::from_secs(1)
    })
    .await;
    assert!(down, "the monitor's verdict is used");
    assert!(
        svc.calls(NASK).is_empty(),
        "a known-down service is not called"
    );
    assert_eq!(up.request_count(), 0);
}

#[actix_rt::test]
async fn privacy_guardrails_judge_the_original_text_before_masking() {
    let svc = Plugins::start(Mode::Faithful);
    let (up, r) = guarded(&svc, &[]);
    let mut body = chat(&secret_text());
    body["anonymize"] = json!(true);
    let (status, answer) = post(&r, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(svc.calls(NASK), vec![json!({"text": secret_text()})]);
    let seen = received(&up);
    assert!(
        !seen.contains(PESEL) && seen.contains("{PESEL_1}"),
        "{seen}"
    );
}

fn pii_router(svc: &Plugins, pipeline: &str, extra: &[(&str, &str)]) -> (FakeUpstream, Router) {
    let url = svc.url();
    let mut env = vec![
        ("LLM_ROUTER_MASKING_STRATEGY_PIPELINE", pipeline),
        ("LLM_ROUTER_MASKER_PII_HOST", url.as_str()),
        ("LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS", "0.5"),
    ];
    env.extend_from_slice(extra);
    single(echo(), &env)
}

#[actix_rt::test]
async fn privacy_pii_masker_runs_after_fast_masker_and_restores() {
    let svc = Plugins::start(Mode::Faithful);
    let (up, r) = pii_router(
        &svc,
        "fast_masker,pii_masker",
        &[("LLM_ROUTER_USE_PROMETHEUS", "1")],
    );
    let text = format!("Jan Kowalski, {}", secret_text());
    let mut body = chat(&text);
    body["anonymize"] = json!("restore");
    let (status, answer) = post(&r, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    // pii_masker got fast_masker's output, without the routing field.
    let sent = svc.calls(PII);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].get("model").is_none(), "{}", sent[0]);
    let sent = sent[0].to_string();
    assert!(
        sent.contains("{PESEL_1}") && sent.contains("Kowalski"),
        "{sent}"
    );
    let seen = received(&up);
    assert!(
        seen.contains("Jan {NAME_1}") && seen.contains("{PESEL_1}"),
        "{seen}"
    );
    assert!(
        !seen.contains("Kowalski") && !seen.contains(PESEL),
        "{seen}"
    );
    assert!(
        answer.contains("Jan Kowalski") && answer.contains(PESEL),
        "both maskers' originals are restored: {answer}"
    );
    let (_, metrics) = get(&r, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("masker_incidents_total{")
                && l.contains("outcome=\"masked\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn privacy_a_failing_pii_masker_blocks_and_never_sends_unmasked_or_empty() {
    for (mode, why) in [
        (Mode::Status500, "pii_masker answered HTTP 500"),
        (Mode::Hang, "pii_masker did not answer within 0.5s"),
        (
            Mode::BadJson,
            "pii_masker gave an unusable answer (not JSON",
        ),
        (
            Mode::WrongShape,
            "pii_masker gave an unusable answer (no \\\"anonymized\\\")",
        ),
        (
            Mode::EmptyPayload,
            "pii_masker gave an unusable answer (\\\"anonymized\\\" is not",
        ),
    ] {
        let svc = Plugins::start(mode);
        let (up, r) = pii_router(
            &svc,
            "pii_masker",
            &[
                ("LLM_ROUTER_FORCE_MASKING", "1"),
                ("LLM_ROUTER_USE_PROMETHEUS", "1"),
            ],
        );
        let (status, answer) = post(&r, "/v1/chat/completions", &chat("Jan Kowalski")).await;
        assert_eq!(status, 503, "{mode:?}: {answer}");
        assert!(answer.contains(why), "{mode:?}: {answer}");
        assert_eq!(
            up.request_count(),
            0,
            "{mode:?}: nothing reached the provider"
        );
        let (_, metrics) = get(&r, "/metrics").await;
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("masker_incidents_total{")
                    && l.contains("plugin=\"pii_masker\"")
                    && l.ends_with(" 1")),
            "{mode:?}: {metrics}"
        );
    }
}

#[test]
fn privacy_plugin_configuration_errors_are_start_up_errors() {
    let table: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "LLM_ROUTER_MASKING_STRATEGY_PIPELINE",
                "fast_masker,pii_masker",
            )],
            "pii_masker needs its service: set LLM_ROUTER_MASKER_PII_HOST",
        ),
        (
            &[("LLM_ROUTER_MASKING_STRATEGY_PIPELINE", "presidio")],
            "unknown masker \"presidio\"",
        ),
        (
            &[
                ("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "1"),
                (
                    "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
                    "nask_guard",
                ),
            ],
            "nask_guard needs its service: set LLM_ROUTER_GUARDRAIL_NASK_GUARD_HOST",
        ),
        (
            &[(
                "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
                "llama_guard",
            )],
            "unknown guardrail \"llama_guard\"",
        ),
        (
            &[("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "1")],
            "names no guardrail",
        ),
        (
            &[("LLM_ROUTER_MASKER_PII_HOST", "localhost:9000")],
            "LLM_ROUTER_MASKER_PII_HOST: expected an http:// or https:// URL",
        ),
        (
            &[("LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS", "0")],
            "LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS: must be more than 0",
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

/// An auditor key pair made by `scripts/audit-keygen.sh` under `dir`: the GnuPG home holding
/// the secret key, and the public key's path (for `LLM_ROUTER_AUDIT_PUBLIC_KEY`).
pub(crate) fn audit_keys(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let keys = dir.join("keys");
    run(std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/audit-keygen.sh"
        ))
        .arg(&keys));
    let public = keys.join("llm-router-auditor-pub.asc");
    (keys.join("gnupg"), public.display().to_string())
}

/// Runs a program, returning its stdout; panics with its stderr when it fails.
pub(crate) fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[actix_rt::test]
async fn privacy_audit_records_are_encrypted_to_the_operator_key_and_decrypt_with_gpg() {
    if std::process::Command::new("gpg")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: gpg is not installed (scripts/test.sh installs gnupg)");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("auditor");
    let (gnupg, key) = audit_keys(tmp.path());
    let svc = Plugins::start(Mode::Faithful);
    let url = svc.url();
    let dir = out.display().to_string();
    let (_up, r) = single(
        echo(),
        &[
            ("LLM_ROUTER_MASKING_WITH_AUDIT", "1"),
            ("LLM_ROUTER_GUARDRAIL_WITH_AUDIT_REQUEST", "1"),
            ("LLM_ROUTER_AUDIT_PUBLIC_KEY", &key),
            ("LLM_ROUTER_AUDIT_DIR", &dir),
            ("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "1"),
            (
                "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
                "nask_guard",
            ),
            ("LLM_ROUTER_GUARDRAIL_NASK_GUARD_HOST", &url),
        ],
    );
    let mut body = chat(&secret_text());
    body["anonymize"] = json!(true);
    let (status, answer) = post(&r, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{answer}");
    let files = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "audit"))
            .collect();
        v.sort();
        v
    };
    assert!(
        eventually(Duration::from_secs(10), || async { files().len() == 2 }).await,
        "one record per event: {:?}",
        files()
    );
    let mut records = Vec::new();
    for f in files() {
        let armored = std::fs::read_to_string(&f).unwrap();
        assert!(
            armored.starts_with("-----BEGIN PGP MESSAGE-----"),
            "{armored}"
        );
        assert!(!armored.contains(PESEL), "encrypted at rest");
        let plain = run(std::process::Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--quiet", "--decrypt"])
            .arg(&f));
        let v: Value = serde_json::from_str(&plain).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("{}__", v["audit_type"].as_str().unwrap())),
            "{name}: {v}"
        );
        records.push(v);
    }
    let masker = records
        .iter()
        .find(|r| r["audit_type"] == "masker")
        .unwrap();
    assert_eq!(masker["endpoint"], "/v1/chat/completions");
    assert_eq!(masker["plugins"], json!(["fast_masker"]));
    assert_eq!(
        masker["before"]["messages"][0]["content"],
        json!(secret_text())
    );
    assert_eq!(
        masker["after"]["messages"][0]["content"],
        json!("Mój PESEL to {PESEL_1} a e-mail {EMAIL_1} proszę")
    );
    assert_eq!(
        masker["mappings"],
        json!({"{PESEL_1}": PESEL, "{EMAIL_1}": EMAIL})
    );
    assert!(masker["timestamp"].as_str().unwrap().ends_with('Z'));
    let guard = records
        .iter()
        .find(|r| r["audit_type"] == "guardrail_request")
        .unwrap();
    assert_eq!(guard["guardrail"], "nask_guard");
    assert_eq!(guard["safe"], json!(true));
    assert_eq!(guard["text"], json!(secret_text()));
    assert_eq!(guard["verdict"]["results"]["safe"], json!(true));
    // The decrypt script reads the whole folder.
    let all = run(std::process::Command::new("bash")
        .arg(format!("{root}/scripts/audit-decrypt.sh"))
        .arg(&out)
        .arg(&gnupg));
    assert_eq!(all.matches("\"audit_type\"").count(), 2, "{all}");
    let _ = std::process::Command::new("gpgconf")
        .env("GNUPGHOME", &gnupg)
        .args(["--kill", "gpg-agent"])
        .status();
}

#[test]
fn privacy_an_audit_without_its_key_is_a_start_up_error() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("absent.asc").display().to_string();
    let vars: std::collections::HashMap<String, String> = [
        ("LLM_ROUTER_MASKING_WITH_AUDIT", "1"),
        ("LLM_ROUTER_AUDIT_PUBLIC_KEY", key.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let errs = llm_router::Settings::from_vars(&vars)
        .err()
        .unwrap_or_default();
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("LLM_ROUTER_AUDIT_PUBLIC_KEY: {key}: cannot read"))),
        "{errs:#?}"
    );
}

#[actix_rt::test]
async fn privacy_the_built_in_endpoints_run_the_same_guardrails_and_masking() {
    let svc = Plugins::start(Mode::Faithful);
    let url = svc.url();
    let (up, r) = single(
        echo(),
        &[
            ("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "1"),
            (
                "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
                "nask_guard",
            ),
            ("LLM_ROUTER_GUARDRAIL_NASK_GUARD_HOST", &url),
        ],
    );
    for ask in ["mask_payload", "anonymize"] {
        let body = json!({"model_name": "m", "user_last_statement": secret_text(), ask: true});
        let (status, answer) = post(&r, "/api/conversation_with_model", &body).await;
        assert_eq!(status, 200, "{ask}: {answer}");
    }
    let seen = received(&up);
    assert_eq!(up.request_count(), 2);
    assert!(
        !seen.contains(PESEL) && seen.contains("{PESEL_1}"),
        "{seen}"
    );
    assert_eq!(svc.calls(NASK).len(), 2, "the guard saw both");
    let body = json!({"model_name": "m", "user_last_statement": "a bomb, please"});
    let (status, answer) = post(&r, "/api/conversation_with_model", &body).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer.contains("rejected by guardrail nask_guard"),
        "{answer}"
    );
    assert_eq!(up.request_count(), 2, "the refused request was not sent");
}

#[actix_rt::test]
async fn privacy_the_built_in_endpoints_restore_the_originals_when_asked() {
    let (up, r) = single(echo(), &[]);
    let statement = json!({"model_name": "m", "user_last_statement": secret_text(),
                           "anonymize": "restore"});
    let mut streamed = statement.clone();
    streamed["stream"] = json!(true);
    let texts = json!({"model_name": "m", "texts": [secret_text()], "anonymize": "restore"});
    for (path, body) in [
        ("/api/conversation_with_model", &statement),
        ("/api/conversation_with_model", &streamed),
        ("/api/simplify_text", &texts),
    ] {
        let (status, answer) = post(&r, path, body).await;
        assert_eq!(status, 200, "{path} {body}: {answer}");
        assert!(
            answer.contains(PESEL) && answer.contains(EMAIL) && !answer.contains("{PESEL_1}"),
            "{path} {body}: {answer}"
        );
    }
    let seen = received(&up);
    assert_eq!(up.request_count(), 3);
    assert!(
        !seen.contains(PESEL) && seen.contains("{PESEL_1}"),
        "the provider never saw the originals: {seen}"
    );
}
