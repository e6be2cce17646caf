//! The real binary: configuration errors, --help, logs to a file in JSON.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_llm-router");

/// Starts the real binary serving one model "m" on `up`, on a free port, and waits for it.
pub(crate) fn spawn_binary(
    up: &FakeUpstream,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, u16) {
    spawn_with_config(&models_config(&[("m", vec![provider("a", up)])]), dir, env)
}

/// [`spawn_binary`] with a models-config of the caller's.
pub(crate) fn spawn_with_config(
    config: &serde_json::Value,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, u16) {
    let cfg_path = dir.join("models.json");
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(BIN);
    cmd.env("LLM_ROUTER_MODELS_CONFIG", &cfg_path)
        .env("LLM_ROUTER_SERVER_HOST", "127.0.0.1")
        .env("LLM_ROUTER_SERVER_PORT", port.to_string())
        .env("LLM_ROUTER_SERVER_WORKERS_COUNT", "1")
        // A reload's config history goes with the test's files, not into the repository.
        .env("LLM_ROUTER_STATE_DIR", dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "router did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

fn run_with(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("LLM_ROUTER_FORCE_MASKING").output().unwrap()
}

#[test]
fn config_errors_exit_2_naming_file_path_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models-config.json");
    std::fs::write(
        &path,
        r#"{"google_models": {"gemma": {"providers": [
              {"id": "gemma-a", "api_host": "http://10.0.0.11:7000/", "api_type": "vllm"},
              {"id": "gemma-b", "api_type": "vllm"}]}},
            "active_models": {"google_models": ["gemma"]}}"#,
    )
    .unwrap();
    let out = run_with(&[
        ("LLM_ROUTER_MODELS_CONFIG", path.to_str().unwrap()),
        ("LLM_ROUTER_SERVER_PORT", "0"),
        ("LLM_ROUTER_BALANCE_STRATEGY", "fastest"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: google_models.\"gemma\".providers[1]: missing \"api_host\"",
            path.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("LLM_ROUTER_BALANCE_STRATEGY: unknown balance strategy \"fastest\""),
        "{err}"
    );

    let out = run_with(&[("LLM_ROUTER_MODELS_CONFIG", "/no/such/file.json")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.json: cannot read"));
}

#[test]
fn help_lists_variables_and_defaults() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for v in [
        "LLM_ROUTER_SERVER_PORT",
        "LLM_ROUTER_MODELS_CONFIG",
        "LLM_ROUTER_BALANCE_STRATEGY",
        "LLM_ROUTER_TIMEOUT",
    ] {
        assert!(text.contains(v), "{v}");
    }
    assert!(text.contains("resources/configs/models-config.json"));
}

#[actix_rt::test]
async fn binary_serves_and_writes_json_logs_with_the_request_id_to_a_file() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("router.log");
    let log = log_path.to_str().unwrap();
    let (mut child, port) = spawn_binary(
        &up,
        dir.path(),
        &[
            ("LLM_ROUTER_LOG_TO_FILE", "tak"),
            ("LLM_ROUTER_LOG_FILENAME", log),
            ("LLM_ROUTER_LOG_FORMAT", "json"),
        ],
    );
    let url = format!("http://127.0.0.1:{port}");
    // A failing call logs a warning inside the request's span.
    let res = client()
        .post(format!("{url}/v1/chat/completions"))
        .insert_header(("x-request-id", "log-test-42"))
        .send_json(&chat_body("nope", false))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    up.set_fault(Fault::Status {
        code: 500,
        message: "x".into(),
        retry_after: None,
    });
    let res = client()
        .post(format!("{url}/v1/chat/completions"))
        .insert_header(("x-request-id", "log-test-43"))
        .send_json(&chat_body("m", false))
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    // SIGTERM drains and exits.
    let pid = child.id().to_string();
    // The shell builtin, so the test needs no procps.
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("upstream attempt failed"))
        .unwrap_or_else(|| panic!("no warning in {log}\nstderr: {stderr}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
    assert_eq!(v["span"]["request_id"], "log-test-43", "{line}");
    assert_eq!(v["fields"]["provider"], "a");
}

/// SIGTERM, then the exit status and stderr.
fn stop(mut child: std::process::Child) -> String {
    let pid = child.id().to_string();
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).unwrap();
    }
    stderr
}

#[actix_rt::test]
async fn the_request_span_carries_the_decision_on_every_request() {
    // A stream the provider cuts logs a warning after the decision is made, inside the span.
    let up = FakeUpstream::start(FakeConfig {
        chunks: 10,
        fault: Fault::CutMidStream { after_chunks: 3 },
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("router.log");
    let (child, port) = spawn_binary(
        &up,
        dir.path(),
        &[
            ("LLM_ROUTER_LOG_TO_FILE", "1"),
            ("LLM_ROUTER_LOG_FILENAME", log_path.to_str().unwrap()),
            ("LLM_ROUTER_LOG_FORMAT", "json"),
        ],
    );
    // The second request's summary is the one the worker made for the first (same choice).
    for id in ["span-1", "span-2"] {
        let mut res = client()
            .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
            .insert_header(("x-request-id", id))
            .send_json(&chat_body("m", true))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let _ = res.body().await;
    }
    let stderr = stop(child);
    let log = std::fs::read_to_string(&log_path).unwrap();
    for id in ["span-1", "span-2"] {
        let line = log
            .lines()
            .find(|l| l.contains("failed mid-response") && l.contains(id))
            .unwrap_or_else(|| panic!("no warning for {id} in {log}\nstderr: {stderr}"));
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
        let span = &v["span"];
        assert_eq!(
            span["decision"], "strategy=balanced;model=m;candidates=a;chosen=a;why=only_provider",
            "{line}"
        );
        assert_eq!(span["strategy"], "balanced", "{line}");
        assert_eq!(span["chosen"], "a", "{line}");
        assert_eq!(span["why"], "only_provider", "{line}");
    }
}

#[test]
fn text_logs_into_a_pipe_have_no_colour_codes() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("models.json");
    std::fs::write(
        &cfg_path,
        models_config(&[("m", vec![provider("a", &up)])]).to_string(),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .env("LLM_ROUTER_MODELS_CONFIG", &cfg_path)
        .env("LLM_ROUTER_SERVER_HOST", "127.0.0.1")
        .env("LLM_ROUTER_SERVER_PORT", "0")
        .env("LLM_ROUTER_STATE_DIR", dir.path().join("state"))
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the startup line (with its fields) is complete.
    let whole_line = |t: &[u8]| {
        let t = String::from_utf8_lossy(t);
        t.find("llm-router listening")
            .is_some_and(|at| t[at..].contains('\n'))
    };
    while !whole_line(&text) {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "stdout closed: {}", String::from_utf8_lossy(&text));
        text.extend_from_slice(&buf[..n]);
    }
    drop(out);
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("llm-router listening"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a pipe: {text:?}");
}

#[actix_rt::test]
async fn sigterm_lets_a_stream_in_flight_finish() {
    let up = FakeUpstream::start(FakeConfig {
        chunks: 6,
        chunk_delay: Duration::from_millis(150),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn_binary(&up, dir.path(), &[]);
    let mut res = client()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .send_json(&chat_body("m", true))
        .await
        .unwrap();
    use futures_util::StreamExt;
    let mut body = res.next().await.unwrap().unwrap().to_vec();
    let pid = child.id();
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    while let Some(chunk) = res.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    let frames = sse_data(std::str::from_utf8(&body).unwrap());
    assert_eq!(
        frames.last().unwrap(),
        "[DONE]",
        "the stream finished after SIGTERM: {frames:?}"
    );
    assert!(child.wait().unwrap().success());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no new connections"
    );
}
