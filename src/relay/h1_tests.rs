//! Tests of the relay's HTTP/1.1 client against scripted providers on real sockets.

use super::*;
use futures_util::StreamExt;
use std::io::{Read, Write};
use std::net::TcpListener;

#[test]
fn targets_of_plain_http_urls() {
    let t = Target::parse("http://127.0.0.1:8000/v1/chat/completions").unwrap();
    assert_eq!(
        (t.authority, t.host, t.port, t.path),
        ("127.0.0.1:8000", "127.0.0.1", 8000, "/v1/chat/completions")
    );
    let t = Target::parse("HTTP://gpu-7/api/chat?x=1").unwrap();
    assert_eq!((t.host, t.port, t.path), ("gpu-7", 80, "/api/chat?x=1"));
    let t = Target::parse("http://[::1]:11434/api/chat").unwrap();
    assert_eq!((t.authority, t.host, t.port), ("[::1]:11434", "::1", 11434));
    assert_eq!(Target::parse("http://host:8000").unwrap().path, "/");
    for other in [
        "https://api.openai.com/v1/chat/completions",
        "http://user:pw@host/v1",
        "http://host:notaport/v1",
        "http:///v1",
        "http://host?q",
        "http://::1/v1",
        "ftp://host/x",
    ] {
        assert_eq!(Target::parse(other), None, "{other}");
    }
}

#[test]
fn chunk_sizes_with_extensions() {
    assert_eq!(chunk_size(b"1a"), Some(26));
    assert_eq!(chunk_size(b"0"), Some(0));
    assert_eq!(chunk_size(b"FF;name=value"), Some(255));
    assert_eq!(chunk_size(b""), None);
    assert_eq!(chunk_size(b"zz"), None);
    assert_eq!(chunk_size(b"1234567890abcdef0"), None);
}

/// What the scripted provider does with the next request it reads.
#[derive(Clone)]
enum Then {
    /// Writes these pieces (a short pause between them) and waits for the next request.
    Answer(Vec<&'static [u8]>),
    /// Writes these pieces, then closes the connection unasked (a keep-alive timeout).
    AnswerAndClose(Vec<&'static [u8]>),
    /// Closes the connection without answering.
    Close,
}

/// A provider that reads requests (head and Content-Length body) on each connection it
/// accepts and acts out `script` in order; reports each accepted connection and each close.
fn provider(script: Vec<Then>) -> (u16, std::sync::mpsc::Receiver<&'static str>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = tx.send("accepted");
            loop {
                let mut req = Vec::new();
                let mut byte = [0u8; 1];
                while !req.ends_with(b"\r\n\r\n") {
                    match s.read(&mut byte) {
                        Ok(1) => req.push(byte[0]),
                        _ => break,
                    }
                }
                if !req.ends_with(b"\r\n\r\n") {
                    break;
                }
                let head = String::from_utf8_lossy(&req).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                s.read_exact(&mut body).unwrap();
                let (pieces, close) = match script.next() {
                    Some(Then::Answer(p)) => (p, false),
                    Some(Then::AnswerAndClose(p)) => (p, true),
                    Some(Then::Close) | None => (Vec::new(), true),
                };
                for p in pieces {
                    s.write_all(p).unwrap();
                    s.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
                if close {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                    let _ = tx.send("closed");
                    break;
                }
            }
        }
    });
    (port, rx)
}

/// An empty POST to `port`; the response (its body not yet read).
async fn post_empty(port: u16) -> Response {
    let url = format!("http://127.0.0.1:{port}/v1/x");
    post(
        &Target::parse(&url).unwrap(),
        |_| {},
        Bytes::new(),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|e| panic!("no response head: {e:?}"))
}

async fn call(port: u16) -> Result<(u16, Vec<Bytes>), SendError> {
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let t = Target::parse(&url).unwrap();
    let r = post(
        &t,
        |h| h.header("content-type", "", "application/json"),
        Bytes::from_static(b"{\"model\":\"m\"}"),
        Duration::from_secs(5),
    )
    .await?;
    let parts: Vec<_> = r.body.map(|c| c.unwrap()).collect().await;
    Ok((r.status, parts))
}

fn joined(parts: &[Bytes]) -> Vec<u8> {
    parts.concat()
}

#[actix_rt::test]
async fn chunked_answers_are_decoded_and_the_connection_reused() {
    let chunked: Vec<&'static [u8]> = vec![
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        b"b\r\ndata: ",
        b"a\r\n\r\n\r\n5;ext=1\r\ndata:\r\n",
        b"4\r\n end\r\n0\r\nx-trailer: 1\r\n\r\n",
    ];
    let sized: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel", b"lo"];
    let (port, events) = provider(vec![Then::Answer(chunked), Then::Answer(sized)]);
    let (status, parts) = call(port).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(joined(&parts), b"data: a\r\n\r\ndata: end");
    assert!(
        parts.len() > 1,
        "frames are passed on as they arrive: {parts:?}"
    );
    let authority = format!("127.0.0.1:{port}");
    assert_eq!(
        idle_count(&authority),
        1,
        "read to its end, the connection is pooled"
    );
    let (_, parts) = call(port).await.unwrap();
    assert_eq!(joined(&parts), b"hello");
    assert_eq!(events.recv().unwrap(), "accepted");
    assert!(
        events.try_recv().is_err(),
        "the second request used the first connection"
    );
}

#[actix_rt::test]
async fn a_connection_the_provider_closed_while_idle_is_not_reused() {
    let ok: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"];
    let (port, events) = provider(vec![Then::AnswerAndClose(ok.clone()), Then::Answer(ok)]);
    assert_eq!(joined(&call(port).await.unwrap().1), b"ok");
    assert_eq!(events.recv().unwrap(), "accepted");
    assert_eq!(events.recv().unwrap(), "closed");
    // The pooled connection is dead: the next request notices and opens a new one.
    assert_eq!(joined(&call(port).await.unwrap().1), b"ok");
    assert_eq!(events.recv().unwrap(), "accepted");
}

#[actix_rt::test]
async fn a_pooled_connection_closed_instead_of_answered_is_a_reset() {
    let ok: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"];
    let (port, _) = provider(vec![
        Then::Answer(ok.clone()),
        Then::Close,
        Then::Answer(ok),
    ]);
    assert_eq!(joined(&call(port).await.unwrap().1), b"ok");
    // Sent on the pooled connection, which the provider then closes unanswered: the relay
    // gets a reset (and fails over), not a hang; the connection is not pooled again.
    assert_eq!(call(port).await.unwrap_err(), SendError::Reset);
    assert_eq!(joined(&call(port).await.unwrap().1), b"ok");
}

#[actix_rt::test]
async fn bodies_until_close_and_connection_close_are_not_pooled() {
    let until_close: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\n\r\nall of it"];
    let (port, _) = provider(vec![Then::AnswerAndClose(until_close)]);
    assert_eq!(joined(&call(port).await.unwrap().1), b"all of it");
    assert_eq!(idle_count(&format!("127.0.0.1:{port}")), 0);
    let close: Vec<&'static [u8]> = vec![
        b"HTTP/1.1 503 Busy\r\nconnection: close\r\nretry-after: 2\r\ncontent-length: 0\r\n\r\n",
    ];
    let (port, _) = provider(vec![Then::Answer(close)]);
    let r = post_empty(port).await;
    assert_eq!(
        (r.status, r.retry_after.unwrap().to_str().unwrap()),
        (503, "2")
    );
    assert_eq!(idle_count(&format!("127.0.0.1:{port}")), 0);
}

#[actix_rt::test]
async fn cut_and_garbled_answers_are_errors() {
    // A body cut short of its Content-Length.
    let cut: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"];
    let (port, _) = provider(vec![Then::AnswerAndClose(cut)]);
    let items: Vec<_> = post_empty(port).await.body.collect().await;
    assert!(matches!(
        items.last(),
        Some(Err(PayloadError::Incomplete(_)))
    ));
    // Broken chunk framing.
    let bad: Vec<&'static [u8]> =
        vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcX\r\n"];
    let (port, _) = provider(vec![Then::Answer(bad)]);
    let items: Vec<_> = post_empty(port).await.body.collect().await;
    assert!(matches!(
        items.last(),
        Some(Err(PayloadError::EncodingCorrupted))
    ));
    // Not HTTP at all.
    let junk: Vec<&'static [u8]> = vec![b"SSH-2.0-OpenSSH\r\n\r\n"];
    let (port, _) = provider(vec![Then::Answer(junk)]);
    assert_eq!(call(port).await.unwrap_err(), SendError::Reset);
    // Closed before any answer.
    let (port, _) = provider(vec![Then::Close]);
    assert_eq!(call(port).await.unwrap_err(), SendError::Reset);
}

#[actix_rt::test]
async fn refused_slow_and_unsafe_requests() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_eq!(call(port).await.unwrap_err(), SendError::Connect);
    // Accepts and never answers: the budget ends it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
    let target = Target::parse(&url).unwrap();
    let r = post(&target, |_| {}, Bytes::new(), Duration::from_millis(100));
    assert_eq!(r.await.err(), Some(SendError::Timeout));
    // A header value that would split the head is refused before anything is sent.
    let r = post(
        &target,
        |h| h.header("authorization", "Bearer ", "tok\r\nx-evil: 1"),
        Bytes::new(),
        Duration::from_secs(5),
    );
    assert_eq!(r.await.err(), Some(SendError::Connect));
}
