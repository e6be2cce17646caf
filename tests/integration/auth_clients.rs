//! Access control through the real SDKs (SPEC §10): the `openai`, `anthropic` and `ollama` Python
//! packages (`tests/clients/check_auth.py`) against the real router binary with auth on — a valid
//! key served in each SDK's own way of sending it, a missing, a wrong and a model-restricted key
//! raising each SDK's authentication / permission error with the router's message, plain and
//! streaming — then the router's log searched for the keys.

use std::process::Command;

use serde_json::json;

use crate::access::{key_of, write_keys, DEV};
use crate::clients::run_client_script;
use crate::common::*;
use crate::process::spawn_binary;

/// The wrong key `check_auth.py` sends (its `WRONG_KEY`).
const SDK_WRONG_KEY: &str = "sk-test-wrong-from-sdk-5150deadbeef";

#[actix_rt::test]
async fn auth_every_sdk_is_served_with_a_key_and_gets_its_own_401_and_403_errors() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    // A known key, but for another model than the one the script asks for.
    let restricted = key_of("not-m");
    let keys = write_keys(
        dir.path(),
        &[json!({"key_plain": restricted, "key_id": "not-m", "models": ["other"]})],
    );
    let log_path = dir.path().join("router.log");
    let log = log_path.display().to_string();
    let (mut child, port) = spawn_binary(
        &up,
        dir.path(),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_LOG_LEVEL", "DEBUG"),
            ("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0"),
            ("LLM_ROUTER_LOG_TO_FILE", "1"),
            ("LLM_ROUTER_LOG_FILENAME", &log),
        ],
    );
    let url = format!("http://127.0.0.1:{port}");
    let out = run_client_script(
        "check_auth.py",
        vec![url, DEV.into(), restricted.clone(), "m".into()],
    )
    .await;
    assert!(out.contains("all auth checks passed"), "{out}");
    for line in [
        "openai api_key= is sent as Authorization: Bearer",
        "openai missing key: chat stream -> AuthenticationError 401",
        "openai wrong key: chat -> AuthenticationError 401",
        "openai restricted key: chat stream -> PermissionDeniedError 403",
        "anthropic api_key= is sent as authorization",
        "anthropic x-api-key header is sent as x-api-key",
        "anthropic auth_token= is sent as authorization",
        "anthropic missing key: stream -> AuthenticationError 401",
        "anthropic wrong key (x-api-key): create(stream=True) -> AuthenticationError 401",
        "anthropic restricted key: stream -> PermissionDeniedError 403",
        "ollama missing key: chat stream -> ResponseError 401",
        "ollama wrong key: generate stream -> ResponseError 401",
        "ollama restricted key: chat -> ResponseError 403",
    ] {
        assert!(
            out.contains(&format!("ok   {line}\n")),
            "{line} missing:\n{out}"
        );
    }
    // Only what was served reached the provider (one request per "served" check), with no client
    // key in its headers.
    let served = out
        .lines()
        .filter(|l| l.starts_with("ok   ") && l.ends_with(" served"))
        .count();
    assert!(served >= 12, "{out}");
    assert_eq!(
        up.request_count(),
        served,
        "refusals never reach the provider"
    );
    for q in up.requests() {
        for (name, value) in &q.headers {
            assert!(!value.contains("sk-test"), "{name}: {value}");
        }
    }
    // SIGTERM: the log is flushed and the router exits 0.
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("authenticated") && l.contains("dev")),
        "the key_id is logged: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("refused: 403") && l.contains("not-m")),
        "a refusal names the key_id: {text}"
    );
    for secret in [DEV, &DEV[8..], &restricted, &restricted[8..], SDK_WRONG_KEY] {
        assert!(!text.contains(secret), "{secret} in the log");
    }
}
