//! `fake-llm --fast`: the fake's OpenAI chat answer served from bytes rendered once, by a bare
//! HTTP/1.1 loop, for benchmarks whose load side must not be the bottleneck.
//!
//! The actix server in `lib.rs` parses every request into a JSON value and builds its answer
//! anew, which on the shared load core of `scripts/bench.sh` costs more than the router it is
//! meant to measure. This one reads the request head (`httparse`) and its `content-length`
//! body, looks only at the body's `stream` and `stream_options.include_usage` (a typed parse that
//! skips everything else), waits the configured latency and writes one of three prepared answers:
//! the same `chat.completion` body, or the same `chat.completion.chunk` frames (with or without
//! the usage frame) as `Reply::whole` / `Reply::frames` produce, framed as the actix server frames
//! them (`content-length` for JSON, chunked `text/event-stream` for SSE, one chunk per frame).
//!
//! Every POST path gets the chat answer, for the model `fake-model`, with `chunks` tokens whatever
//! `max_tokens` says; `GET /v1/models` lists `fake-model`, any other GET answers 200 with an
//! empty body (`/health`). `Connection: close` is honoured; a malformed head gets 400 and the
//! connection is closed.

use std::io;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::{Kind, Reply};
use crate::FakeConfig;

/// The most a request head may take; a longer head is refused.
const MAX_HEAD: usize = 16 * 1024;
/// The most a request body may take.
const MAX_BODY: usize = 8 << 20;

/// The prepared answers, head and body each in one buffer. (`next_request` refuses a head or
/// body over its bound, so a connection's buffer stays within `MAX_HEAD + MAX_BODY`.)
struct Answers {
    json: Vec<u8>,
    sse: Vec<u8>,
    sse_usage: Vec<u8>,
    models: Vec<u8>,
    empty: Vec<u8>,
    bad_request: Vec<u8>,
    latency: Duration,
}

impl Answers {
    fn new(cfg: &FakeConfig) -> Answers {
        let request = json!({"model": "fake-model",
                             "messages": [{"role": "user", "content": "hello"}]});
        let reply = Reply::new(Kind::Chat, &request, cfg.chunks, None, 0);
        let name = &cfg.name;
        let sized = |content_type: &str, body: &[u8]| {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: {content_type}\r\n\
                 x-fake-upstream: {name}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body);
            out
        };
        let chunked = |include_usage: bool| {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\
                 content-type: {}\r\nx-fake-upstream: {name}\r\n\r\n",
                Kind::Chat.content_type(true)
            )
            .into_bytes();
            for frame in reply.frames(include_usage) {
                out.extend_from_slice(format!("{:x}\r\n", frame.len()).as_bytes());
                out.extend_from_slice(&frame);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        };
        let whole = serde_json::to_vec(&reply.whole()).expect("a JSON value serialises");
        let models = json!({"object": "list", "data": [
            {"id": "fake-model", "object": "model", "created": reply.created, "owned_by": "fake"}]});
        Answers {
            json: sized(Kind::Chat.content_type(false), &whole),
            sse: chunked(false),
            sse_usage: chunked(true),
            models: sized("application/json", models.to_string().as_bytes()),
            empty: sized("text/plain", b""),
            bad_request:
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_vec(),
            latency: cfg.latency,
        }
    }
}

/// What the answer depends on, read from the request body.
#[derive(Deserialize, Default)]
struct Wants {
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Serves `listener` on the current thread until the process ends.
pub fn serve(listener: TcpListener, cfg: &FakeConfig) -> io::Result<()> {
    let answers = Rc::new(Answers::new(cfg));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            tokio::task::spawn_local(connection(socket, answers.clone()));
        }
    })
}

/// One keep-alive connection: request after request until the client closes or asks to.
async fn connection(mut socket: TcpStream, answers: Rc<Answers>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut start = 0; // where the next request begins in `buf`
    loop {
        match next_request(&buf[start..]) {
            Parsed::Partial => {
                if start > 0 {
                    buf.drain(..start);
                    start = 0;
                }
                buf.reserve(8 * 1024);
                match socket.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            Parsed::Bad => {
                let _ = socket.write_all(&answers.bad_request).await;
                return;
            }
            Parsed::Request { len, answer, close } => {
                let bytes = match answer {
                    Answer::Json => &answers.json,
                    Answer::Sse => &answers.sse,
                    Answer::SseUsage => &answers.sse_usage,
                    Answer::Models => &answers.models,
                    Answer::Empty => &answers.empty,
                };
                if !answers.latency.is_zero() && !matches!(answer, Answer::Models | Answer::Empty) {
                    tokio::time::sleep(answers.latency).await;
                }
                if socket.write_all(bytes).await.is_err() || close {
                    return;
                }
                start += len;
                if start == buf.len() {
                    buf.clear();
                    start = 0;
                }
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Answer {
    Json,
    Sse,
    SseUsage,
    Models,
    Empty,
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Partial,
    Bad,
    /// A whole request of `len` bytes (head and body).
    Request {
        len: usize,
        answer: Answer,
        close: bool,
    },
}

/// The first request in `buf`, if it is all there.
fn next_request(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Bad,
    };
    let mut body_len = 0usize;
    let mut close = req.version == Some(0);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) if n <= MAX_BODY => body_len = n,
                _ => return Parsed::Bad,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad; // clients of this benchmark send sized bodies
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    if buf.len() < head_len + body_len {
        return Parsed::Partial;
    }
    let answer = if req.method == Some("GET") {
        if req.path == Some("/v1/models") {
            Answer::Models
        } else {
            Answer::Empty
        }
    } else {
        match serde_json::from_slice::<Wants>(&buf[head_len..head_len + body_len]) {
            Ok(w) if w.stream && w.stream_options.as_ref().is_some_and(|o| o.include_usage) => {
                Answer::SseUsage
            }
            Ok(w) if w.stream => Answer::Sse,
            Ok(_) => Answer::Json,
            Err(_) => return Parsed::Bad,
        }
    };
    Parsed::Request {
        len: head_len + body_len,
        answer,
        close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> String {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn requests_are_told_apart_by_their_stream_flags() {
        let cases = [
            (r#"{"model":"m","messages":[]}"#, Answer::Json),
            (r#"{"model":"m","stream":false}"#, Answer::Json),
            (
                r#"{"stream":true,"messages":[{"role":"user","content":"x"}]}"#,
                Answer::Sse,
            ),
            (
                r#"{"stream":true,"stream_options":{"include_usage":false}}"#,
                Answer::Sse,
            ),
            (
                r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
                Answer::SseUsage,
            ),
        ];
        for (body, want) in cases {
            let wire = post(body);
            assert_eq!(
                next_request(wire.as_bytes()),
                Parsed::Request {
                    len: wire.len(),
                    answer: want,
                    close: false
                },
                "{body}"
            );
        }
    }

    #[test]
    fn partial_bad_and_pipelined_requests() {
        let wire = post(r#"{"stream":true}"#);
        for cut in 0..wire.len() {
            assert_eq!(
                next_request(&wire.as_bytes()[..cut]),
                Parsed::Partial,
                "cut at {cut}"
            );
        }
        let two = format!("{wire}{}", post("{}"));
        assert_eq!(
            next_request(two.as_bytes()),
            Parsed::Request {
                len: wire.len(),
                answer: Answer::Sse,
                close: false
            }
        );
        assert_eq!(next_request(post("{not json").as_bytes()), Parsed::Bad);
        assert_eq!(next_request(b"\x01\x02 nonsense\r\n\r\n"), Parsed::Bad);
        let closing = "GET /health HTTP/1.1\r\nconnection: close\r\n\r\n";
        assert_eq!(
            next_request(closing.as_bytes()),
            Parsed::Request {
                len: closing.len(),
                answer: Answer::Empty,
                close: true
            }
        );
    }

    #[test]
    fn one_keep_alive_connection_gets_each_answer_in_turn() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = FakeConfig {
            chunks: 2,
            name: "quick".into(),
            ..Default::default()
        };
        std::thread::spawn(move || serve(listener, &cfg));
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Reads one whole answer: a sized one by its content-length, a chunked one to `0\r\n\r\n`.
        let mut pending = Vec::new();
        let mut answer = |s: &mut std::net::TcpStream| -> String {
            loop {
                let text = String::from_utf8_lossy(&pending).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let sized = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map(|n| n.parse::<usize>().unwrap());
                    let end = match sized {
                        Some(n) if rest.len() >= n => Some(head.len() + 4 + n),
                        None => rest.find("0\r\n\r\n").map(|i| head.len() + 4 + i + 5),
                        _ => None,
                    };
                    if let Some(end) = end {
                        let one = text[..end].to_string();
                        pending.drain(..end);
                        return one;
                    }
                }
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).expect("the fast fake answers");
                assert!(n > 0, "connection closed before a whole answer");
                pending.extend_from_slice(&chunk[..n]);
            }
        };
        s.write_all(post(r#"{"model":"m","messages":[]}"#).as_bytes())
            .unwrap();
        let json = answer(&mut s);
        assert!(json.starts_with("HTTP/1.1 200 OK\r\n") && json.contains("x-fake-upstream: quick"));
        assert!(json.contains(r#""content":"t0 t1 ""#), "{json}");
        // Two pipelined requests on the same connection, answered in order.
        let two = format!(
            "{}{}",
            post(r#"{"stream":true}"#),
            "GET /v1/models HTTP/1.1\r\n\r\n"
        );
        s.write_all(two.as_bytes()).unwrap();
        let sse = answer(&mut s);
        assert!(
            sse.contains("text/event-stream") && sse.contains("data: [DONE]"),
            "{sse}"
        );
        assert_eq!(sse.matches("chat.completion.chunk").count(), 4, "{sse}"); // role, 2 tokens, finish
        assert!(answer(&mut s).contains(r#""id":"fake-model""#));
        s.write_all(post("{broken").as_bytes()).unwrap();
        assert!(answer(&mut s).starts_with("HTTP/1.1 400 "));
        let mut rest = Vec::new();
        assert_eq!(
            s.read_to_end(&mut rest).unwrap(),
            0,
            "closed after a bad request"
        );
    }

    #[test]
    fn the_prepared_answers_carry_the_fakes_frames() {
        let cfg = FakeConfig {
            chunks: 3,
            name: "f".into(),
            ..Default::default()
        };
        let a = Answers::new(&cfg);
        let json = String::from_utf8(a.json.clone()).unwrap();
        let (head, body) = json.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "t0 t1 t2 ");
        assert_eq!(v["object"], "chat.completion");
        let sse = String::from_utf8(a.sse.clone()).unwrap();
        assert!(
            sse.contains("transfer-encoding: chunked")
                && sse.ends_with("data: [DONE]\n\n\r\n0\r\n\r\n"),
            "{sse}"
        );
        assert!(!sse.contains("\"usage\""));
        assert!(String::from_utf8(a.sse_usage.clone())
            .unwrap()
            .contains("\"usage\""));
    }
}
