//! The real client libraries — the `openai`, `anthropic` and `ollama` Python packages — drive the
//! router (`tests/clients/check_clients.py`). `scripts/test.sh` installs them, pinned, into a
//! virtualenv and names its interpreter in `LLM_ROUTER_TEST_PYTHON` (else `python3` is used); when
//! they are missing this test fails with the install command rather than passing quietly.

use std::process::Command;

use crate::common::*;

/// The interpreter with the client libraries: `LLM_ROUTER_TEST_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("LLM_ROUTER_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".into())
}

fn python_clients_available() -> Result<(), String> {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", "import openai, anthropic, ollama"])
        .output()
        .map_err(|e| format!("{py} not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `tests/clients/<script>` with `args` (off the runtime: the router runs on this test's
/// threads); returns its output, panicking with it when the script fails or the client libraries
/// are missing.
pub(crate) async fn run_client_script(script: &str, args: Vec<String>) -> String {
    if let Err(e) = python_clients_available() {
        panic!(
            "the Python client libraries are needed: run scripts/test.sh (it builds target/py-venv \
             and sets LLM_ROUTER_TEST_PYTHON), or `pip install -r scripts/requirements-test.txt` \
             ({e})"
        );
    }
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let py = python();
    let out = actix_rt::task::spawn_blocking(move || {
        Command::new(python()).arg(path).args(&args).output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{py} runs: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs the client script against `router`; returns its output, panicking on any failed check.
async fn run_clients(r: &Router, text: &str, models: &str, extra: &[&str]) -> String {
    let mut args = vec![r.url(""), text.to_string(), models.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    run_client_script("check_clients.py", args).await
}

/// One fake per provider type, each serving a model named after its type, tool calls enabled.
fn three_provider_types() -> (Vec<FakeUpstream>, Router) {
    let fake = || FakeConfig {
        tool_arguments: Some(serde_json::json!({"city": "Paris"})),
        require_api_key: Some("sk-ant-test".into()),
        ..Default::default()
    };
    let ups: Vec<FakeUpstream> = (0..3).map(|_| FakeUpstream::start(fake())).collect();
    let typed = |id: &str, up: &FakeUpstream, t: &str| {
        let mut p = provider(id, up);
        p["api_type"] = serde_json::json!(t);
        if t == "anthropic" {
            p["api_token"] = serde_json::json!("sk-ant-test");
        }
        p
    };
    let config = models_config(&[
        ("m-openai", vec![typed("vllm-1", &ups[0], "vllm")]),
        ("m-ollama", vec![typed("ollama-1", &ups[1], "ollama")]),
        ("m-anthropic", vec![typed("claude-1", &ups[2], "anthropic")]),
        ("e-openai", vec![typed("vllm-embed", &ups[0], "vllm")]),
        ("e-ollama", vec![typed("ollama-embed", &ups[1], "ollama")]),
    ]);
    let r = Router::start(&config, &[]);
    (ups, r)
}

#[actix_rt::test]
async fn every_client_library_against_every_provider_type_with_tools_and_embeddings() {
    let (ups, r) = three_provider_types();
    let out = run_clients(
        &r,
        "t0 t1 t2 t3 ",
        "m-openai,m-ollama,m-anthropic",
        &["--tools", "--embed", "e-openai,e-ollama"],
    )
    .await;
    assert!(out.contains("all client checks passed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    for model in ["m-openai", "m-ollama", "m-anthropic"] {
        for check in [
            "openai tool call stream",
            "anthropic tool use stream",
            "ollama tool call",
            "openai responses stream",
            "anthropic stream",
            "ollama generate stream",
        ] {
            assert!(
                out.contains(&format!("ok   {check} [{model}]")),
                "{check} [{model}] missing:\n{out}"
            );
        }
    }
    for model in ["e-openai", "e-ollama"] {
        assert!(
            out.contains(&format!("ok   openai embeddings order [{model}]")),
            "{out}"
        );
    }
    // Each provider was spoken to in its own wire format.
    let paths =
        |i: usize| -> Vec<String> { ups[i].requests().iter().map(|q| q.path.clone()).collect() };
    assert!(
        paths(1).iter().all(|p| p.starts_with("/api/")),
        "{:?}",
        paths(1)
    );
    assert!(
        paths(2).iter().all(|p| p == "/v1/messages"),
        "{:?}",
        paths(2)
    );
    assert!(ups[2].requests().iter().all(
        |q| q.header("x-api-key") == Some("sk-ant-test") && q.header("authorization").is_none()
    ));
}
