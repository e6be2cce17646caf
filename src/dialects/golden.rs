//! Golden tests for every conversion: requests (client dialect → provider wire), complete answers
//! and streams (provider wire → client dialect), each compared frame by frame with a reviewed file
//! under `src/dialects/testdata/`. Volatile values (generated ids, timestamps, durations) are
//! replaced by placeholders before comparing. `UPDATE_GOLDEN=1 cargo test golden` rewrites the
//! files; review the diff before committing it.

use std::path::PathBuf;

use bytes::BytesMut;
use serde_json::Value;

use super::canonical::{Decoder, Encoder, Event, Request};
use super::{anthropic, ollama, openai, responses, Invalid, Target};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/dialects/testdata")
        .join(name)
}

fn input(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn check(name: &str, got: &str) {
    let path = testdata(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got, want, "golden file {name} differs");
}

// Replaces generated ids, timestamps and durations with placeholders (the one normaliser,
// shared with the conformance goldens).
use fake_llm::golden::normalise;

fn pretty(bytes: &[u8]) -> String {
    let mut v: Value = serde_json::from_slice(bytes).expect("JSON");
    normalise(&mut v);
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

/// One line per frame: SSE `event`/`data` frames and NDJSON lines, JSON normalised.
fn frames(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut out = String::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let (prefix, json) = if let Some(d) = line.strip_prefix("data: ") {
            ("data: ", d)
        } else if line.starts_with("event: ") {
            out.push_str(line);
            out.push('\n');
            continue;
        } else {
            ("", line)
        };
        match serde_json::from_str::<Value>(json) {
            Ok(mut v) => {
                normalise(&mut v);
                out.push_str(prefix);
                out.push_str(&v.to_string());
            }
            Err(_) => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// A self-hosted provider with `model_path` set and tools on (vLLM-like).
const TARGET: Target<'static> = Target {
    model: "upstream-model",
    tools: true,
    top_k: true,
    keep_alive: None,
    repetition_penalty: None,
    typical_p: false,
};

type Reader = fn(&[u8]) -> Result<Request, Invalid>;

fn client_reader(dialect: &str) -> Reader {
    match dialect {
        "openai" => openai::read_chat,
        "anthropic" => anthropic::read_request,
        "ollama" => ollama::read_chat,
        "responses" => responses::read_request,
        "completions" => openai::read_completion,
        "generate" => ollama::read_generate,
        other => panic!("{other}"),
    }
}

#[test]
fn requests_convert_to_every_provider_wire() {
    for client in [
        "openai",
        "anthropic",
        "ollama",
        "responses",
        "completions",
        "generate",
    ] {
        let body = input(&format!("request.{client}.json"));
        let req = client_reader(client)(&body).unwrap_or_else(|e| panic!("{client}: {e}"));
        for wire in ["openai", "anthropic", "ollama"] {
            let p = TARGET;
            let out = match wire {
                "openai" => openai::write_chat(&req, &p),
                "anthropic" => anthropic::write_request(&req, &p),
                _ => ollama::write_chat(&req, &p),
            };
            check(&format!("request.{client}-to-{wire}.json"), &pretty(&out));
        }
    }
}

fn encoder(client: &str, req: &Request) -> Box<dyn Encoder> {
    match client {
        "openai" | "completions" => Box::new(openai::ChatEncoder::new(req)),
        "anthropic" => Box::new(anthropic::StreamEncoder::new(req)),
        "ollama" | "generate" => Box::new(ollama::StreamEncoder::new(req)),
        "responses" => Box::new(responses::StreamEncoder::new(req)),
        other => panic!("{other}"),
    }
}

fn decoder(wire: &str) -> Box<dyn Decoder> {
    match wire {
        "openai" => Box::<openai::ChatDecoder>::default(),
        "anthropic" => Box::<anthropic::StreamDecoder>::default(),
        _ => Box::<ollama::StreamDecoder>::default(),
    }
}

fn client_request(client: &str) -> Request {
    let mut r = Request::new("public-model");
    r.stream = true;
    r.stream_usage = true;
    r.prompt_style = matches!(client, "completions" | "generate");
    r
}

/// Converts a provider stream, fed in chunks of `step` bytes.
fn convert_stream(wire: &str, client: &str, stream: &[u8], step: usize) -> (String, bool) {
    let req = client_request(client);
    let mut dec = decoder(wire);
    let mut enc = encoder(client, &req);
    let mut events: Vec<Event> = Vec::new();
    let mut out = BytesMut::new();
    for chunk in stream.chunks(step) {
        dec.feed(chunk, &mut events);
        for e in events.drain(..) {
            enc.encode(&e, &mut out);
        }
    }
    (frames(&out), dec.finished())
}

#[test]
fn streams_convert_frame_by_frame_whatever_the_chunking() {
    for wire in ["openai", "anthropic", "ollama"] {
        for fixture in ["text", "tools"] {
            let name = format!("stream.{wire}.{fixture}.txt");
            let stream = input(&name);
            for client in [
                "openai",
                "anthropic",
                "ollama",
                "responses",
                "completions",
                "generate",
            ] {
                if fixture == "tools" && matches!(client, "completions" | "generate") {
                    continue;
                }
                let (whole, finished) = convert_stream(wire, client, &stream, stream.len());
                assert!(finished, "{name} → {client}: decoder saw no final frame");
                for step in [1, 7] {
                    let (split, _) = convert_stream(wire, client, &stream, step);
                    assert_eq!(split, whole, "{name} → {client} in {step}-byte chunks");
                }
                check(&format!("stream.{wire}.{fixture}-to-{client}.txt"), &whole);
            }
        }
    }
}

#[test]
fn complete_answers_convert_to_every_client_dialect() {
    for (wire, read) in [
        (
            "openai",
            openai::read_chat_response as fn(&[u8]) -> Result<_, String>,
        ),
        ("anthropic", anthropic::read_response),
        ("ollama", ollama::read_response),
    ] {
        let body = input(&format!("answer.{wire}.json"));
        let r = read(&body).unwrap();
        let outs: [(&str, Value); 6] = [
            ("openai", openai::write_chat_response(&r, "public-model")),
            (
                "completions",
                openai::write_completion_response(&r, "public-model"),
            ),
            ("anthropic", anthropic::write_response(&r, "public-model")),
            ("responses", responses::write_response(&r, "public-model")),
            (
                "ollama",
                ollama::write_response(&r, "public-model", false, 5),
            ),
            (
                "generate",
                ollama::write_response(&r, "public-model", true, 5),
            ),
        ];
        for (client, v) in outs {
            check(
                &format!("answer.{wire}-to-{client}.json"),
                &pretty(v.to_string().as_bytes()),
            );
        }
    }
}

#[test]
fn a_stream_cut_before_its_final_frame_is_not_finished() {
    for wire in ["openai", "anthropic", "ollama"] {
        let stream = input(&format!("stream.{wire}.text.txt"));
        let cut = &stream[..stream.len() * 2 / 3];
        let mut d = decoder(wire);
        let mut ev = Vec::new();
        d.feed(cut, &mut ev);
        assert!(!d.finished(), "{wire}: a cut stream must not look finished");
        assert!(!ev.contains(&Event::Done), "{wire}");
    }
}

#[test]
fn provider_error_frames_become_error_events() {
    let cases: [(&str, &[u8]); 3] = [
        ("openai", b"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n"),
        ("anthropic", b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"boom\"}}\n\n"),
        ("ollama", b"{\"error\":\"boom\"}\n"),
    ];
    for (wire, bytes) in cases {
        let mut d = decoder(wire);
        let mut ev = Vec::new();
        d.feed(bytes, &mut ev);
        assert_eq!(ev, vec![Event::Error("boom".into())], "{wire}");
    }
}
