//! The real client libraries — the `openai`, `anthropic` and `ollama` Python packages — drive the
//! router (`tests/clients/check_clients.py`). CI installs them (`.ci/run`); when they are missing
//! this test fails with the install command rather than passing quietly.

use std::process::Command;

use crate::common::*;

fn python_clients_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import openai, anthropic, ollama"])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs the client script against `router`; returns its output, panicking on any failed check.
async fn run_clients(r: &Router, text: &str, models: &str, extra: &[&str]) -> String {
    if let Err(e) = python_clients_available() {
        panic!(
            "the Python client libraries are needed: `pip install openai anthropic ollama` ({e})"
        );
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/check_clients.py"
    );
    let url = r.url("");
    let mut args = vec![
        script.to_string(),
        url,
        text.to_string(),
        models.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    // The router runs on this test's threads: wait for the script off the runtime.
    let out = actix_rt::task::spawn_blocking(move || Command::new("python3").args(&args).output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client checks failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[actix_rt::test]
async fn openai_anthropic_and_ollama_clients_against_an_openai_wire_provider() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let out = run_clients(&r, "t0 t1 t2 t3 ", "m", &[]).await;
    assert!(out.contains("all client checks passed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}
