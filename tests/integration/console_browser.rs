//! The web console in a real browser (SPEC §12): headless Chromium (Debian's `chromium`) driven by
//! Playwright for Python (`tests/browser/console_test.py`) against the real router and fake
//! providers: log in, watch a provider go down, stream a chat answer and stop it (the provider
//! sees the cancel), anonymize a Polish text and restore it, edit the config and restore it.
//! Screenshots of each page land in `target/console-screenshots/`.
//!
//! The script asks this side to act on the fakes with `@@ <command>` lines on its stdout and
//! reads the answer from its stdin. `scripts/test.sh` installs chromium and the pinned Python
//! packages and names the interpreter in `LLM_ROUTER_TEST_PYTHON`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

const ADMIN: &str = "sk-console-browser-admin-0123456789";

fn python() -> String {
    std::env::var("LLM_ROUTER_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".into())
}

#[actix_rt::test]
async fn console_works_in_a_real_browser() {
    let py = python();
    let check = Command::new(&py)
        .args(["-c", "import playwright.sync_api"])
        .output();
    let chromium = std::path::Path::new("/usr/bin/chromium").exists();
    match check {
        Ok(o) if o.status.success() && chromium => {}
        other => panic!(
            "the browser test needs /usr/bin/chromium (Debian package chromium) and Playwright for \
             Python: run scripts/test.sh (it installs both and sets LLM_ROUTER_TEST_PYTHON) \
             ({other:?}, chromium present: {chromium})"
        ),
    }
    let echo = || FakeConfig {
        echo: true,
        ..Default::default()
    };
    let demo_a = FakeUpstream::start(echo());
    let demo_b = FakeUpstream::start(echo());
    let slow = FakeUpstream::start(FakeConfig {
        chunks: 10_000,
        chunk_delay: Duration::from_millis(20),
        ..Default::default()
    });
    let mut pa = provider("demo-a", &demo_a);
    pa["api_token"] = json!("sk-demo-upstream-token");
    let config = models_config(&[
        ("demo", vec![pa, provider("demo-b", &demo_b)]),
        ("slow", vec![provider("slow-1", &slow)]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        json!([{"key_plain": ADMIN, "key_id": "browser-admin", "policy_name": "admin"}])
            .to_string(),
    )
    .unwrap();
    let state = dir.path().join("state");
    let r = Router::start(
        &config,
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            (
                "LLM_ROUTER_AUTH_MEMORY_SEED_FILE",
                &keys.display().to_string(),
            ),
            ("LLM_ROUTER_STATE_DIR", &state.display().to_string()),
            ("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0.3"),
        ],
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/console_test.py");
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/console-screenshots");
    let url = r.url("");
    // The router runs on this test's threads: drive the script off the runtime.
    let outcome = actix_rt::task::spawn_blocking(move || {
        let mut fakes = [
            ("demo-a", Some(demo_a)),
            ("demo-b", Some(demo_b)),
            ("slow-1", Some(slow)),
        ];
        let mut child = Command::new(python())
            .args([script, &url, ADMIN, shots])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python runs");
        let mut to_script = child.stdin.take().unwrap();
        let from_script = BufReader::new(child.stdout.take().unwrap());
        let mut log = String::new();
        for line in from_script.lines() {
            let line = line.unwrap();
            eprintln!("{line}");
            log.push_str(&line);
            log.push('\n');
            let Some(cmd) = line.strip_prefix("@@ ") else {
                continue;
            };
            let (verb, id) = cmd.split_once(' ').unwrap_or((cmd, ""));
            let fake = fakes.iter_mut().find(|(n, _)| *n == id);
            let answer = match (verb, fake) {
                ("down", Some((_, f))) => {
                    f.take().expect("running").stop();
                    "ok".to_string()
                }
                ("cancelled", Some((_, Some(f)))) => f.cancelled().to_string(),
                _ => panic!("unknown request from the script: {cmd}"),
            };
            writeln!(to_script, "{answer}").unwrap();
            to_script.flush().unwrap();
        }
        let status = child.wait().unwrap();
        (status, log)
    })
    .await
    .unwrap();
    let (status, log) = outcome;
    assert!(status.success(), "browser checks failed:\n{log}");
    assert!(log.contains("browser checks passed"), "{log}");
    for page in ["status", "chat", "anonymizer", "config"] {
        let png = std::path::Path::new(shots).join(format!("{page}.png"));
        assert!(
            png.metadata().is_ok_and(|m| m.len() > 1000),
            "{png:?} saved"
        );
    }
    drop(r);
}
