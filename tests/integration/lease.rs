//! Lease discipline: the provider slot is released exactly once on every path, observed through
//! `/health`'s in-flight count; a provider failing mid-stream ends the stream with an error frame.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::common::*;

async fn settles_to_zero(r: &Router, provider: &str) -> bool {
    eventually(Duration::from_secs(3), || async {
        r.in_flight(provider).await == 0
    })
    .await
}

#[actix_rt::test]
async fn slot_is_held_while_streaming_and_released_on_success() {
    let (_up, r) = single(
        FakeConfig {
            chunks: 4,
            chunk_delay: Duration::from_millis(200),
            ..Default::default()
        },
        &[],
    );
    let mut res = r.chat("m", true).await;
    let first = res.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert_eq!(r.in_flight("a").await, 1, "held while the stream runs");
    while let Some(c) = res.next().await {
        c.unwrap();
    }
    assert!(settles_to_zero(&r, "a").await);
    assert_eq!(r.provider_status("a").await["served"], 1);
}

#[actix_rt::test]
async fn slot_is_released_after_upstream_error_and_timeout() {
    let (up, r) = single(
        FakeConfig {
            fault: Fault::Status {
                code: 503,
                message: "overloaded".into(),
                retry_after: None,
            },
            ..Default::default()
        },
        &[("LLM_ROUTER_EXTERNAL_TIMEOUT", "0.4")],
    );
    let res = r.chat("m", false).await;
    assert_eq!(res.status(), 502);
    assert!(settles_to_zero(&r, "a").await, "after upstream error");
    up.set_fault(Fault::Hang);
    let res = r.chat("m", true).await;
    assert_eq!(res.status(), 504);
    assert!(settles_to_zero(&r, "a").await, "after timeout");
}

#[actix_rt::test]
async fn client_disconnect_mid_stream_releases_the_slot_and_cancels_upstream() {
    let (up, r) = single(
        FakeConfig {
            chunks: 100,
            chunk_delay: Duration::from_millis(100),
            ..Default::default()
        },
        &[],
    );
    let body = serde_json::to_string(&chat_body("m", true)).unwrap();
    let mut sock = TcpStream::connect(r.addr).unwrap();
    write!(
        sock,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.read(&mut buf).unwrap();
    assert!(std::str::from_utf8(&buf[..n])
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    assert_eq!(r.in_flight("a").await, 1);
    drop(sock);
    assert!(
        settles_to_zero(&r, "a").await,
        "slot freed after the client vanished"
    );
    assert!(
        eventually(Duration::from_secs(3), || async { up.active() == 0 }).await,
        "upstream call cancelled"
    );
    assert_eq!(up.cancelled(), 1);
    assert_eq!(
        r.provider_status("a").await["state"],
        "healthy",
        "a disconnect is not the provider's fault"
    );
}

#[actix_rt::test]
async fn provider_dying_mid_stream_ends_with_an_in_band_error_frame() {
    let (_up, r) = single(
        FakeConfig {
            chunks: 10,
            fault: Fault::CutMidStream { after_chunks: 3 },
            ..Default::default()
        },
        &[],
    );
    let mut res = r.chat("m", true).await;
    assert_eq!(res.status(), 200);
    let body = res
        .body()
        .await
        .expect("the router ends its stream cleanly");
    let frames = sse_data(std::str::from_utf8(&body).unwrap());
    assert_eq!(
        frames.len(),
        4,
        "3 frames from the provider, then the error: {frames:?}"
    );
    assert!(
        !frames.iter().any(|f| f == "[DONE]"),
        "never a silent success"
    );
    let err: Value = serde_json::from_str(frames.last().unwrap()).unwrap();
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("provider \"a\" failed mid-response"),
        "{msg}"
    );
    assert!(settles_to_zero(&r, "a").await);
    assert_eq!(
        r.provider_status("a").await["failures"],
        1,
        "counted against the provider"
    );
}

/// A non-stream answer is committed only when it is whole (SPEC §11): a body cut short is the
/// provider's failure before anything reached the client — never a truncated 200.
#[actix_rt::test]
async fn non_stream_body_cut_short_is_a_clean_error_not_a_truncated_success() {
    let (_up, r) = single(
        FakeConfig {
            chunks: 10,
            fault: Fault::CutMidStream { after_chunks: 1 },
            ..Default::default()
        },
        &[],
    );
    // Raw socket: awc itself reports a cut chunked body as a clean end, so it can't be the judge.
    let body = serde_json::to_string(&chat_body("m", false)).unwrap();
    let mut sock = TcpStream::connect(r.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        sock,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = sock.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 502"), "{text}");
    let json = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        v["error"]["message"],
        "model \"m\": every provider failed; tried a (response broke off)"
    );
    assert!(settles_to_zero(&r, "a").await);
    assert_eq!(r.provider_status("a").await["failures"], 1);
}

#[actix_rt::test]
async fn idle_streams_get_heartbeat_comments() {
    let up = FakeUpstream::start(FakeConfig {
        chunks: 2,
        fault: Fault::SlowFirstToken(Duration::from_millis(50)),
        chunk_delay: Duration::from_millis(700),
        ..Default::default()
    });
    let r = Router::start_with(
        &models_config(&[("m", vec![provider("a", &up)])]),
        &[],
        |s| s.heartbeat = Duration::from_millis(200),
    );
    let mut res = r.chat("m", true).await;
    let body = res.body().await.unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    assert!(
        text.contains("\n\n: keep-alive\n\n") || text.starts_with(": keep-alive"),
        "{text}"
    );
    let frames = sse_data(text);
    assert_eq!(
        frames.last().unwrap(),
        "[DONE]",
        "comments do not disturb the frames"
    );
}
