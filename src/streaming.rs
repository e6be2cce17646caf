//! The response body that carries a provider's bytes to the client while holding its [`Lease`].
//!
//! Bytes are forwarded as they arrive, untouched (no re-framing). The body owns the lease, so when
//! actix-web drops it — stream finished, or client gone — the slot is released exactly once.
//! It also enforces what awc does not: an idle limit between chunks, the request's overall
//! deadline, an SSE heartbeat comment on idle streams (so a vanished client is noticed), and an
//! in-band error frame when the provider fails after the stream began.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use llm_router_actors::{FailureKind, Lease, Outcome};
use tokio::time::{sleep, Sleep};

use crate::telemetry::Metrics;
use crate::upstream::UpstreamPayload;

/// How the client's response is framed; decides heartbeats and how a late failure is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `text/event-stream`: heartbeat `: keep-alive` comments, error as a `data:` frame.
    Sse,
    /// A single JSON document: a late failure aborts the connection (no in-band channel).
    Whole { len: Option<u64> },
}

/// Renders an in-band error frame for a stream, in the client's dialect.
pub type ErrorFrame = fn(&str) -> Bytes;

/// OpenAI-dialect stream error frame (the shape the OpenAI SDKs raise on).
pub fn openai_sse_error(message: &str) -> Bytes {
    let body = serde_json::json!({"error": {"message": message, "type": "api_error",
                                            "param": null, "code": 502}});
    Bytes::from(format!("data: {body}\n\n"))
}

pub struct BodyLimits {
    /// Longest silence allowed between two upstream chunks.
    pub idle: Duration,
    /// The request's overall deadline (`LLM_ROUTER_TIMEOUT`), if any.
    pub deadline: Option<Instant>,
    /// Idle gap after which an SSE comment is sent to the client.
    pub heartbeat: Duration,
}

pub struct LeaseBody {
    first: Option<Bytes>,
    rest: UpstreamPayload,
    lease: Option<Lease>,
    metrics: Option<Metrics>,
    framing: Framing,
    error_frame: ErrorFrame,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    heartbeat: Duration,
    heartbeat_timer: Pin<Box<Sleep>>,
    deadline: Option<Pin<Box<Sleep>>>,
    sent: u64,
    /// The last bytes sent (frame boundary and `[DONE]` checks).
    tail: Tail,
    /// Tracks whether an unsized JSON body has closed its top-level value.
    json: JsonEnd,
    done: bool,
}

const DONE_FRAME: &[u8] = b"data: [DONE]";

/// The last few bytes forwarded.
struct Tail {
    buf: [u8; 16],
    len: usize,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        for &b in chunk
            .iter()
            .skip(chunk.len().saturating_sub(self.buf.len()))
        {
            if self.len == self.buf.len() {
                self.buf.copy_within(1.., 0);
                self.len -= 1;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Sent bytes end at an SSE frame boundary (nothing sent yet counts as a boundary).
    fn at_boundary(&self) -> bool {
        self.len == 0 || self.bytes().ends_with(b"\n\n")
    }

    /// The last SSE frame was `data: [DONE]`.
    fn ends_with_done(&self) -> bool {
        let t = self.bytes();
        let trimmed = &t[..t.len()
            - t.iter()
                .rev()
                .take_while(|b| b.is_ascii_whitespace())
                .count()];
        trimmed.ends_with(DONE_FRAME)
    }
}

/// A byte-level tracker of JSON nesting, so a body cut short can be told from a complete one even
/// when the provider sent no Content-Length (the HTTP client reports a cut chunked body as a
/// clean end).
#[derive(Default)]
struct JsonEnd {
    depth: u32,
    opened: bool,
    in_string: bool,
    escaped: bool,
}

impl JsonEnd {
    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.opened = true;
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn complete(&self) -> bool {
        self.opened && self.depth == 0 && !self.in_string
    }
}

impl LeaseBody {
    pub fn new(
        lease: Lease,
        first: Bytes,
        rest: UpstreamPayload,
        framing: Framing,
        error_frame: ErrorFrame,
        limits: BodyLimits,
        metrics: Option<Metrics>,
    ) -> LeaseBody {
        LeaseBody {
            first: Some(first),
            rest,
            lease: Some(lease),
            metrics,
            framing,
            error_frame,
            idle: limits.idle,
            idle_timer: Box::pin(sleep(limits.idle)),
            heartbeat: limits.heartbeat,
            heartbeat_timer: Box::pin(sleep(limits.heartbeat)),
            deadline: limits
                .deadline
                .map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            sent: 0,
            tail: Tail {
                buf: [0; 16],
                len: 0,
            },
            json: JsonEnd::default(),
            done: false,
        }
    }

    fn at_boundary(&self) -> bool {
        self.tail.at_boundary()
    }

    fn forward(&mut self, chunk: Bytes) -> Bytes {
        self.sent += chunk.len() as u64;
        self.tail.push(&chunk);
        match self.framing {
            // A sized body may be dropped without a final poll: record success at the last byte.
            Framing::Whole { len: Some(len) } if self.sent >= len => self.succeed(),
            Framing::Whole { len: None } => self.json.feed(&chunk),
            _ => {}
        }
        chunk
    }

    /// Why a body the provider ended is incomplete, if it is.
    fn incomplete(&self) -> Option<&'static str> {
        match self.framing {
            Framing::Sse if !self.tail.ends_with_done() => Some("the stream ended before [DONE]"),
            Framing::Whole { len: Some(len) } if self.sent < len => {
                Some("the body ended before its Content-Length")
            }
            Framing::Whole { len: None } if !self.json.complete() => {
                Some("the JSON body ended unfinished")
            }
            _ => None,
        }
    }

    fn succeed(&mut self) {
        if let Some(lease) = self.lease.as_mut() {
            lease.set_outcome(Outcome::Success);
        }
    }

    /// Ends the stream after a provider failure: in-band for streams, an abort otherwise.
    fn fail(
        &mut self,
        kind: FailureKind,
        message: String,
    ) -> Option<Result<Bytes, std::io::Error>> {
        self.done = true;
        let provider = match self.lease.as_mut() {
            Some(lease) => {
                lease.set_outcome(Outcome::Failure(kind));
                lease.provider().id.clone()
            }
            None => String::new(),
        };
        let message = format!("provider \"{provider}\" failed mid-response: {message}");
        tracing::warn!(provider = %provider, "{message}");
        match self.framing {
            Framing::Sse => {
                let mut out = BytesMut::new();
                if !self.at_boundary() {
                    out.extend_from_slice(b"\n\n");
                }
                out.extend_from_slice(&(self.error_frame)(&message));
                Some(Ok(out.freeze()))
            }
            Framing::Whole { .. } => Some(Err(std::io::Error::other(message))),
        }
    }
}

impl Stream for LeaseBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(this.forward(first))));
        }
        match Pin::new(&mut this.rest).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let now = tokio::time::Instant::now();
                this.idle_timer.as_mut().reset(now + this.idle);
                this.heartbeat_timer.as_mut().reset(now + this.heartbeat);
                return Poll::Ready(Some(Ok(this.forward(chunk))));
            }
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(this.fail(FailureKind::Body, format!("connection broke ({e})")))
            }
            Poll::Ready(None) => {
                if let Some(why) = this.incomplete() {
                    return Poll::Ready(
                        this.fail(FailureKind::Body, format!("connection broke ({why})")),
                    );
                }
                this.done = true;
                this.succeed();
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(this.fail(
                    FailureKind::Timeout,
                    "the request reached the router's time limit (LLM_ROUTER_TIMEOUT)".into(),
                ));
            }
        }
        if this.idle_timer.as_mut().poll(cx).is_ready() {
            let secs = this.idle.as_secs_f64();
            return Poll::Ready(this.fail(FailureKind::Timeout, format!("no data for {secs:.1}s")));
        }
        if this.framing == Framing::Sse && this.heartbeat_timer.as_mut().poll(cx).is_ready() {
            let next = tokio::time::Instant::now() + this.heartbeat;
            this.heartbeat_timer.as_mut().reset(next);
            // Re-poll the timer so its waker is registered for the next beat.
            let _ = this.heartbeat_timer.as_mut().poll(cx);
            if this.at_boundary() {
                return Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n"))));
            }
        }
        Poll::Pending
    }
}

impl Drop for LeaseBody {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            if let Some(m) = &self.metrics {
                m.observe_call(&lease);
            }
            if lease.outcome() == Outcome::Cancelled {
                tracing::debug!(provider = %lease.provider().id, "client went away; upstream request cancelled");
            }
            // Dropping the lease releases the slot; dropping `rest` closes the upstream connection.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_end_tracks_nesting_outside_strings() {
        let cases: &[(&[&[u8]], bool)] = &[
            (&[br#"{"a": "}"}"#], true),
            (&[br#"{"a": "\"}"#, br#""}"#], true),
            (&[br#"{"a": [1, {"b": 2}"#], false),
            (&[br#"{"a": "x\"#], false),
            (&[b"  "], false),
            (
                &[br#"{"choices":[{"message":{"content":"t0 "}}]"#, b"}\n"],
                true,
            ),
        ];
        for (chunks, want) in cases {
            let mut j = JsonEnd::default();
            chunks.iter().for_each(|c| j.feed(c));
            assert_eq!(j.complete(), *want, "{chunks:?}");
        }
    }

    #[test]
    fn tail_sees_boundaries_and_done_across_chunks() {
        let mut t = Tail {
            buf: [0; 16],
            len: 0,
        };
        assert!(t.at_boundary());
        t.push(b"data: {\"x\":1}\n");
        assert!(!t.at_boundary());
        t.push(b"\n");
        assert!(t.at_boundary() && !t.ends_with_done());
        t.push(b"data: [DO");
        t.push(b"NE]\n\n");
        assert!(t.at_boundary() && t.ends_with_done());
    }
}
