//! `llm-router batch translate|classify`: the real binary as a child process against a real
//! router (in this test process, or started by the binary itself with `--in-process`) in front of
//! a fake provider. Checked by what the provider received and what the output files hold: jsonl,
//! csv and xlsx (read back with calamine), resume from a checkpoint with a torn last line and
//! after a real kill, bad rows with line numbers and exit codes, a router that is down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use llm_router::builtin::prompts::{Language, PromptLibrary, PromptName};
use serde_json::{json, Value};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_llm-router");
const PROMPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts");

/// The fake's answer (4 tokens), as the built-in routes return it.
const ANSWER: &str = "t0 t1 t2 t3";

/// `llm-router batch …args` with no `LLM_ROUTER_*` variable from the test's environment.
fn batch(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("batch").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LLM_ROUTER_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(mut cmd: impl std::borrow::BorrowMut<Command>) -> (Option<i32>, String) {
    let Output { status, stderr, .. } = cmd.borrow_mut().output().unwrap();
    (status.code(), String::from_utf8_lossy(&stderr).into_owned())
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Rows by id (asserting no id twice).
fn by_id(rows: Vec<Value>) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for r in rows {
        let id = r["id"].to_string();
        assert!(m.insert(id.clone(), r).is_none(), "id {id} written twice");
    }
    m
}

/// The last user text of every chat request the provider received.
fn user_texts(up: &FakeUpstream) -> Vec<String> {
    up.requests()
        .iter()
        .filter(|q| q.path.ends_with("/chat/completions"))
        .map(|q| {
            q.body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .rev()
                .find(|m| m["role"] == "user")
                .unwrap()["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn system_prompts(up: &FakeUpstream) -> BTreeSet<String> {
    up.requests()
        .iter()
        .filter(|q| q.path.ends_with("/chat/completions"))
        .map(|q| {
            q.body["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn jsonl_texts(texts: &[&str]) -> String {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"text": t, "n": i, "lang": "en"}).to_string() + "\n")
        .collect()
}

#[test]
fn batch_translate_jsonl_one_call_per_row_fields_kept() {
    let (up, r) = single(FakeConfig::default(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        "Good morning",
        "Thank you",
        "See you tomorrow",
        "Zażółć gęślą jaźń",
    ];
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&texts));
    let out = dir.path().join("out.jsonl");
    let (code, err) = run(batch(&[
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--router",
        &r.url(""),
        "--language",
        "en",
        "--concurrency",
        "3",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("4 of 4 rows written"), "{err}");
    let rows = by_id(read_jsonl(&out));
    assert_eq!(rows.len(), 4);
    for (i, t) in texts.iter().enumerate() {
        // Default ids are line numbers; the input's other fields stay.
        let row = &rows[&(i + 1).to_string()];
        assert_eq!(
            *row,
            json!({"id": i + 1, "input": t, "result": ANSWER, "n": i, "lang": "en"}),
        );
    }
    assert_eq!(
        sorted(user_texts(&up)),
        sorted(texts.iter().map(|t| t.to_string()).collect())
    );
    let lib = PromptLibrary::load(Path::new(PROMPTS)).unwrap();
    assert_eq!(
        system_prompts(&up),
        BTreeSet::from([lib.get(Language::En, PromptName::TranslateToPl).to_string()])
    );
}

/// Echoing provider: a row's answer is its own text, so the text steers the label.
fn echo() -> (FakeUpstream, Router) {
    single(
        FakeConfig {
            echo: true,
            ..FakeConfig::default()
        },
        &[],
    )
}

const CLASSIFY_INPUT: &str = r#"[
  {"uid": "a1", "body": "positive", "score": 5},
  {"uid": "a2", "body": "NEGATIVE", "tags": ["x"]},
  {"uid": "a3", "body": "Neutral.", "note": "comma, \"quote\""},
  {"uid": "a4", "body": "positive"}
]"#;

fn classify_args<'a>(
    input: &'a Path,
    out: &'a Path,
    url: &'a str,
    format: &'a str,
) -> Vec<&'a str> {
    vec![
        "classify",
        "--input",
        s(input),
        "--output",
        s(out),
        "--field",
        "body",
        "--id-field",
        "uid",
        "--model",
        "m",
        "--router",
        url,
        "--labels",
        "positive,negative,neutral",
        "--format",
        format,
        "--language",
        "en",
    ]
}

#[test]
fn batch_classify_jsonl_csv_xlsx() {
    let (up, r) = echo();
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.json", CLASSIFY_INPUT);
    let url = r.url("");
    let want = [
        ("a1", "positive", "positive"),
        ("a2", "NEGATIVE", "negative"),
        ("a3", "Neutral.", "neutral"),
        ("a4", "positive", "positive"),
    ];

    let out = dir.path().join("labels.jsonl");
    let (code, err) = run(batch(&classify_args(&input, &out, &url, "jsonl")));
    assert_eq!(code, Some(0), "{err}");
    let rows = by_id(read_jsonl(&out));
    for (id, text, label) in want {
        let row = &rows[&format!("\"{id}\"")];
        assert_eq!(row["input"], text);
        assert_eq!(row["result"], label, "{row}");
        assert!(
            row.get("uid").is_none() && row.get("body").is_none(),
            "{row}"
        );
    }
    assert_eq!(rows["\"a1\""]["score"], 5);
    assert_eq!(rows["\"a2\""]["tags"], json!(["x"]));
    // The instruction lists the labels; the text alone is the user turn; temperature 0.
    let system = system_prompts(&up);
    assert_eq!(system.len(), 1);
    let system = system.into_iter().next().unwrap();
    assert!(
        system.contains("- positive\n- negative\n- neutral\n"),
        "{system}"
    );
    assert_eq!(
        sorted(user_texts(&up)),
        sorted(want.iter().map(|w| w.1.to_string()).collect())
    );
    assert!(up
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/chat/completions"))
        .all(|q| q.body["temperature"] == 0.0));

    let out = dir.path().join("labels.csv");
    let (code, err) = run(batch(&classify_args(&input, &out, &url, "csv")));
    assert_eq!(code, Some(0), "{err}");
    let mut rd = csv::Reader::from_path(&out).unwrap();
    assert_eq!(
        rd.headers().unwrap().iter().collect::<Vec<_>>(),
        ["id", "input", "result", "note", "score", "tags"]
    );
    let records: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(
        records,
        vec![
            vec!["a1", "positive", "positive", "", "5", ""],
            vec!["a2", "NEGATIVE", "negative", "", "", "[\"x\"]"],
            vec!["a3", "Neutral.", "neutral", "comma, \"quote\"", "", ""],
            vec!["a4", "positive", "positive", "", "", ""],
        ],
        "input order"
    );

    let out = dir.path().join("labels.xlsx");
    let (code, err) = run(batch(&classify_args(&input, &out, &url, "xlsx")));
    assert_eq!(code, Some(0), "{err}");
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let mut book: Xlsx<_> = open_workbook(&out).unwrap();
    let range = book.worksheet_range("results").unwrap();
    let cells: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
    let t = |x: &str| Data::String(x.into());
    assert_eq!(
        cells,
        vec![
            vec![
                t("id"),
                t("input"),
                t("result"),
                t("note"),
                t("score"),
                t("tags")
            ],
            vec![
                t("a1"),
                t("positive"),
                t("positive"),
                Data::Empty,
                Data::Float(5.0),
                Data::Empty
            ],
            vec![
                t("a2"),
                t("NEGATIVE"),
                t("negative"),
                Data::Empty,
                Data::Empty,
                t("[\"x\"]")
            ],
            vec![
                t("a3"),
                t("Neutral."),
                t("neutral"),
                t("comma, \"quote\""),
                Data::Empty,
                Data::Empty
            ],
            vec![
                t("a4"),
                t("positive"),
                t("positive"),
                Data::Empty,
                Data::Empty,
                Data::Empty
            ],
        ]
    );
}

#[test]
fn batch_resumes_from_a_checkpoint_with_a_torn_last_line() {
    let (up, r) = single(FakeConfig::default(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let texts = ["one", "two", "three", "four", "five"];
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&texts));
    // Rows 1 and 4 done by an earlier run; row 2 was being written when it was killed.
    let out = write(
        dir.path(),
        "out.jsonl",
        "{\"id\":1,\"input\":\"one\",\"result\":\"earlier\"}\n\
         {\"id\":4,\"input\":\"four\",\"result\":\"earlier\"}\n\
         {\"id\":2,\"input\":\"two\",\"res",
    );
    let args = [
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--router",
        &r.url(""),
    ];
    let (code, err) = run(batch(&args));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("dropped the unfinished line 3"), "{err}");
    assert_eq!(sorted(user_texts(&up)), ["five", "three", "two"]);
    let rows = by_id(read_jsonl(&out));
    let results: BTreeMap<&str, &str> = rows
        .iter()
        .map(|(k, v)| (k.as_str(), v["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        BTreeMap::from([
            ("1", "earlier"),
            ("2", ANSWER),
            ("3", ANSWER),
            ("4", "earlier"),
            ("5", ANSWER)
        ])
    );
    // Once complete, the same command sends nothing.
    let (code, err) = run(batch(&args));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(user_texts(&up).len(), 3);
    assert_eq!(read_jsonl(&out).len(), 5);
}

#[test]
fn batch_csv_resume_renders_earlier_and_new_rows_in_input_order() {
    let (up, r) = echo();
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.json", CLASSIFY_INPUT);
    let out = dir.path().join("labels.csv");
    write(
        dir.path(),
        "labels.csv.partial.jsonl",
        "{\"id\":\"a3\",\"input\":\"Neutral.\",\"result\":\"neutral\"}\n{\"id\":\"a1\",\"inp",
    );
    let url = r.url("");
    let (code, err) = run(batch(&classify_args(&input, &out, &url, "csv")));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        sorted(user_texts(&up)),
        ["NEGATIVE", "positive", "positive"]
    );
    let ids: Vec<String> = csv::Reader::from_path(&out)
        .unwrap()
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(ids, ["a1", "a2", "a3", "a4"]);
}

/// Polls until `f` holds (or fails the test after `within`).
fn wait_for(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn complete_lines(p: &Path) -> usize {
    std::fs::read(p)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn batch_killed_mid_run_continues_and_writes_every_row_once() {
    let (up, r) = single(
        FakeConfig {
            latency: Duration::from_millis(200),
            ..FakeConfig::default()
        },
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<String> = (0..24).map(|i| format!("text {i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&refs));
    let out = dir.path().join("out.jsonl");
    let url = r.url("");
    let args = [
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--router",
        &url,
        "--concurrency",
        "2",
    ];
    let mut child = batch(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "3 written rows", || {
        complete_lines(&out) >= 3
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let before = complete_lines(&out);
    assert!(before < 24, "killed before the end ({before} rows)");
    let (code, err) = run(batch(&args));
    assert_eq!(code, Some(0), "{err}");
    let rows = by_id(read_jsonl(&out));
    assert_eq!(
        rows.keys().cloned().collect::<BTreeSet<_>>(),
        (1..=24).map(|i| i.to_string()).collect::<BTreeSet<_>>()
    );
    // Only the rows in flight at the kill were sent twice.
    let sent = user_texts(&up).len();
    assert!((24..=26).contains(&sent), "{sent} calls");
}

#[test]
fn batch_bad_rows_are_reported_with_line_numbers_and_exit_3() {
    let (_up, r) = echo();
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        "{\"text\": \"positive\"}\n\
         {not json\n\
         {\"text\": 42}\n\
         \n\
         {\"other\": \"x\"}\n\
         {\"text\": \"I cannot decide\"}\n\
         {\"text\": \"   \"}\n\
         {\"text\": \"Negative\"}\n",
    );
    let out = dir.path().join("out.jsonl");
    let errors = dir.path().join("errors.jsonl");
    let labels = write(
        dir.path(),
        "labels.txt",
        "# sentiment\npositive\n\nnegative\n",
    );
    let (code, err) = run(batch(&[
        "classify",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--errors",
        s(&errors),
        "--model",
        "m",
        "--router",
        &r.url(""),
        "--labels-file",
        s(&labels),
    ]));
    assert_eq!(code, Some(3), "{err}");
    for needle in [
        "line 2: not valid JSON at column 2",
        "line 3 (id 3): field \"text\" is a number, not a string",
        "line 5 (id 5): no field \"text\"",
        "line 6 (id 6): the model's answer \"I cannot decide\" is none of the labels",
        "line 7 (id 7): the router answered 400",
        "2 of 7 rows written",
        "5 failed",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
    let rows = by_id(read_jsonl(&out));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows["1"]["result"], "positive");
    assert_eq!(rows["8"]["result"], "negative");
    let listed: Vec<u64> = read_jsonl(&errors)
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sorted(listed.iter().map(|l| format!("{l}")).collect()),
        ["2", "3", "5", "6", "7"]
    );
}

#[test]
fn batch_bad_arguments_exit_2_naming_them() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&["a"]));
    let out = dir.path().join("out.jsonl");
    let url = r.url("");
    let base = [
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--router",
        &url,
    ];
    for (extra, needle) in [
        (
            vec!["--model", "m", "--concurrency", "0"],
            "--concurrency \"0\"",
        ),
        (vec![], "--model is required"),
        (
            vec!["--model", "nope"],
            "--model \"nope\": the router has no such model; it has: m",
        ),
        (
            vec!["--model", "m", "--labels", "a"],
            "--labels is for batch classify",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(extra);
        let (code, err) = run(batch(&args));
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    let (code, err) = run(batch(&[
        "translate",
        "--input",
        "/nonexistent.jsonl",
        "--output",
        s(&out),
        "--model",
        "m",
    ]));
    assert_eq!(code, Some(2));
    assert!(err.contains("--input /nonexistent.jsonl"), "{err}");
    assert!(!out.exists(), "nothing written");
    let (code, err) = run(batch(&[
        "translate",
        "--input",
        s(&input),
        "--output",
        "/nonexistent/o.jsonl",
        "--model",
        "m",
    ]));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--output /nonexistent/o.jsonl: the directory /nonexistent does not exist"),
        "{err}"
    );
    let (code, err) = run(batch(&[
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&input),
        "--model",
        "m",
    ]));
    assert_eq!(code, Some(2));
    assert!(err.contains("--output is the --input file"), "{err}");
    let help = batch(&["--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8(help.stdout).unwrap();
    for opt in [
        "--input",
        "--field",
        "--id-field",
        "--output",
        "--format",
        "--errors",
        "--router",
        "--prefix",
        "--in-process",
        "--api-key",
        "--model",
        "--concurrency",
        "--timeout",
        "--language",
        "--labels",
        "--labels-file",
        "Exit codes",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
}

#[test]
fn batch_router_down_is_a_clear_error_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&["a", "b"]));
    let earlier = "{\"id\":1,\"input\":\"a\",\"result\":\"x\"}\n";
    let out = write(dir.path(), "out.jsonl", earlier);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, err) = run(batch(&[
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--router",
        &url,
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot reach the router at {url}")),
        "{err}"
    );
    assert!(
        err.contains("run the same command again to continue"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), earlier);
}

#[test]
fn batch_router_going_away_mid_run_stops_then_resumes() {
    let slow = FakeConfig {
        latency: Duration::from_millis(150),
        ..FakeConfig::default()
    };
    let (up, r) = single(slow, &[]);
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&refs));
    let out = dir.path().join("out.jsonl");
    let stderr = dir.path().join("stderr.txt");
    let url = r.url("");
    let args = [
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--router",
        &url,
        "--concurrency",
        "1",
    ];
    let mut child = batch(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "2 written rows", || {
        complete_lines(&out) >= 2
    });
    drop(r);
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("stopped: cannot reach the router"), "{err}");
    let kept = complete_lines(&out);
    assert!((2..20).contains(&kept), "{kept}");
    // The router back on the same address: the rest, and nothing twice.
    let r2 = Router::start(&models_config(&[("m", vec![provider("a", &up)])]), &[]);
    let url2 = r2.url("");
    let mut args2 = args.to_vec();
    let at = args2.iter().position(|a| *a == url.as_str()).unwrap();
    args2[at] = &url2;
    let (code, err) = run(batch(&args2));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(by_id(read_jsonl(&out)).len(), 20);
}

#[test]
fn batch_in_process_router_from_the_environment() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "models.json",
        &models_config(&[("m", vec![provider("a", &up)])]).to_string(),
    );
    let input = write(
        dir.path(),
        "in.json",
        "[{\"text\": \"Dzień dobry\"}, {\"text\": \"Do widzenia\"}]",
    );
    let out = dir.path().join("out.jsonl");
    let (code, err) = run(batch(&[
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--in-process",
    ])
    .env("LLM_ROUTER_MODELS_CONFIG", &cfg)
    .env("LLM_ROUTER_PROMPTS_DIR", PROMPTS)
    .env("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0")
    .env("LLM_ROUTER_SERVER_WORKERS_COUNT", "1"));
    assert_eq!(code, Some(0), "{err}");
    let rows = by_id(read_jsonl(&out));
    assert_eq!(rows["0"]["result"], ANSWER);
    assert_eq!(rows["1"]["input"], "Do widzenia");
    assert_eq!(sorted(user_texts(&up)), ["Do widzenia", "Dzień dobry"]);
    // A bad environment is a usage error naming the problem.
    let (code, err) = run(batch(&[
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--in-process",
    ])
    .env("LLM_ROUTER_MODELS_CONFIG", dir.path().join("missing.json")));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--in-process") && err.contains("missing.json"),
        "{err}"
    );
}

#[test]
fn batch_api_key_is_sent_as_bearer_and_a_refused_key_stops_the_run() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let key = "sk-test-batch-0123456789abcdef";
    let keys = write(
        dir.path(),
        "keys.json",
        &json!([{"key_plain": key, "key_id": "batch", "policy_name": "builtin"}]).to_string(),
    );
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", s(&keys)),
        ],
    );
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&["a", "b"]));
    let out = dir.path().join("out.jsonl");
    let url = r.url("");
    let args = [
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--router",
        &url,
    ];
    let (code, err) = run(batch(&args));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("stopped: the router answered 401"), "{err}");
    assert_eq!(up.request_count(), 0);
    // The key from the environment (kept out of the process list).
    let (code, err) = run(batch(&args).env("LLM_ROUTER_BATCH_API_KEY", key));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(read_jsonl(&out).len(), 2);
}

#[test]
fn batch_waits_out_a_rate_limit_with_retry_after() {
    let (up, r) = single(
        FakeConfig {
            fault: Fault::Status {
                code: 429,
                message: "slow down".into(),
                retry_after: Some(1),
            },
            // Refused once, then answered: no race with clearing the fault.
            fault_times: Some(1),
            ..FakeConfig::default()
        },
        // The router passes a 429 on at once, so it is the batch tool that waits it out.
        &[("LLM_ROUTER_MAX_RETRY_AFTER_SECONDS", "0")],
    );
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.jsonl", &jsonl_texts(&["a"]));
    let out = dir.path().join("out.jsonl");
    let stderr = dir.path().join("stderr.txt");
    let url = r.url("");
    let mut child = batch(&[
        "translate",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--model",
        "m",
        "--router",
        &url,
    ])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&stderr).unwrap())
    .spawn()
    .unwrap();
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(read_jsonl(&out)[0]["result"], ANSWER);
    assert_eq!(up.request_count(), 2, "refused once, then answered");
}
