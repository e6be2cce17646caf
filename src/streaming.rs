//! The response body that carries a provider's bytes to the client while holding its [`Lease`].
//!
//! Same-dialect bytes are forwarded as they arrive, untouched (no re-framing); a converted stream
//! is decoded frame by frame and re-encoded in the client's dialect as each frame arrives
//! ([`Mode::Convert`]). The body owns the lease, so when
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

use crate::dialects::canonical::{Decoder, Encoder, Event};
use crate::telemetry::Metrics;
use crate::upstream::UpstreamPayload;

/// How a passed-through response is framed; decides heartbeats, how its proper end is recognised
/// and how a late failure is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// OpenAI `text/event-stream`, ending `data: [DONE]`: heartbeat comments, in-band error frame.
    Sse,
    /// Anthropic's event stream, ending with `message_stop`.
    AnthropicSse,
    /// Ollama NDJSON, whose last line has `"done": true`; no heartbeat (clients parse every line).
    Ndjson,
    /// A single JSON document: a late failure aborts the connection (no in-band channel).
    Whole { len: Option<u64> },
}

impl Framing {
    /// Framing of a provider response from its content type.
    pub fn of(content_type: Option<&str>, len: Option<u64>, anthropic: bool) -> Framing {
        match content_type.unwrap_or("") {
            ct if ct.starts_with("text/event-stream") && anthropic => Framing::AnthropicSse,
            ct if ct.starts_with("text/event-stream") => Framing::Sse,
            ct if ct.starts_with("application/x-ndjson") => Framing::Ndjson,
            _ => Framing::Whole { len },
        }
    }

    pub fn is_stream(self) -> bool {
        !matches!(self, Framing::Whole { .. })
    }
}

/// What the body does with the provider's bytes.
pub enum Mode {
    Pass {
        framing: Framing,
        error_frame: ErrorFrame,
    },
    Convert {
        decoder: Box<dyn Decoder>,
        encoder: Box<dyn Encoder>,
    },
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
    mode: Mode,
    events: Vec<Event>,
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
    /// NDJSON: the line being received, and whether the last full line had `"done": true`.
    line: Vec<u8>,
    last_line_done: bool,
    done: bool,
    /// A converted stream saw its last frame before the provider's body ended: what is left
    /// (normally just the chunked terminator) is read before the body ends, so awc can reuse the
    /// connection instead of closing it.
    drain: bool,
}

const DONE_FRAME: &[u8] = b"data: [DONE]";

/// The last few bytes forwarded.
struct Tail {
    buf: [u8; 32],
    len: usize,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        let cap = self.buf.len();
        let new = &chunk[chunk.len().saturating_sub(cap)..];
        // Keep the newest `cap - new.len()` old bytes, then append: at most two small copies.
        let keep = self.len.min(cap - new.len());
        self.buf.copy_within(self.len - keep..self.len, 0);
        self.buf[keep..keep + new.len()].copy_from_slice(new);
        self.len = keep + new.len();
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

    /// The last SSE frame was Anthropic's `message_stop`.
    fn ends_with_message_stop(&self) -> bool {
        let t = self.bytes();
        let trimmed = &t[..t.len()
            - t.iter()
                .rev()
                .take_while(|b| b.is_ascii_whitespace())
                .count()];
        trimmed.ends_with(b"\"message_stop\"}")
    }
}

/// Whether an NDJSON line is a final `"done": true` object.
fn line_is_done(line: &[u8]) -> bool {
    let mut rest = line;
    while let Some(pos) = rest.windows(6).position(|w| w == b"\"done\"") {
        let after = &rest[pos + 6..];
        let after = after.strip_prefix(b" ").unwrap_or(after);
        if let Some(v) = after.strip_prefix(b":") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            if v.starts_with(b"true") {
                return true;
            }
        }
        rest = &rest[pos + 6..];
    }
    false
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
        mode: Mode,
        limits: BodyLimits,
        metrics: Option<Metrics>,
    ) -> LeaseBody {
        LeaseBody {
            first: Some(first),
            rest,
            lease: Some(lease),
            metrics,
            mode,
            events: Vec::new(),
            idle: limits.idle,
            idle_timer: Box::pin(sleep(limits.idle)),
            heartbeat: limits.heartbeat,
            heartbeat_timer: Box::pin(sleep(limits.heartbeat)),
            deadline: limits
                .deadline
                .map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            sent: 0,
            tail: Tail {
                buf: [0; 32],
                len: 0,
            },
            json: JsonEnd::default(),
            line: Vec::new(),
            last_line_done: false,
            done: false,
            drain: false,
        }
    }

    fn framing(&self) -> Option<Framing> {
        match &self.mode {
            Mode::Pass { framing, .. } => Some(*framing),
            Mode::Convert { .. } => None,
        }
    }

    /// Whether a heartbeat can be sent now, and which.
    fn heartbeat_bytes(&self) -> Option<&'static [u8]> {
        match &self.mode {
            Mode::Pass {
                framing: Framing::Sse | Framing::AnthropicSse,
                ..
            } if self.at_boundary() => Some(b": keep-alive\n\n"),
            Mode::Pass { .. } => None,
            Mode::Convert { encoder, .. } => encoder.heartbeat(),
        }
    }

    fn at_boundary(&self) -> bool {
        match self.framing() {
            Some(Framing::Ndjson) => self.line.is_empty(),
            _ => self.tail.at_boundary(),
        }
    }

    /// Passes a chunk on (or converts it); `None` when a converted chunk produced no output yet.
    fn forward(&mut self, chunk: Bytes) -> Option<Result<Bytes, std::io::Error>> {
        if let Mode::Convert { decoder, encoder } = &mut self.mode {
            decoder.feed(&chunk, &mut self.events);
            let mut out = BytesMut::new();
            let mut failed = None;
            for e in self.events.drain(..) {
                if let Event::Error(m) = &e {
                    failed = Some(m.clone());
                    break;
                }
                encoder.encode(&e, &mut out);
                if e == Event::Done {
                    break;
                }
            }
            if let Some(m) = failed {
                let msg = format!("the provider reported an error: {m}");
                return self.fail_with(out, FailureKind::Body, msg);
            }
            if decoder.finished() {
                self.succeed();
                self.done = true;
                self.drain = true;
            }
            return (!out.is_empty()).then(|| Ok(out.freeze()));
        }
        self.sent += chunk.len() as u64;
        self.tail.push(&chunk);
        match self.framing() {
            // A sized body may be dropped without a final poll: record success at the last byte.
            Some(Framing::Whole { len: Some(len) }) if self.sent >= len => self.succeed(),
            Some(Framing::Whole { len: None }) => self.json.feed(&chunk),
            Some(Framing::Ndjson) => {
                for part in chunk.split_inclusive(|&b| b == b'\n') {
                    match part.strip_suffix(b"\n") {
                        Some(end) => {
                            self.line.extend_from_slice(end);
                            if !self.line.iter().all(u8::is_ascii_whitespace) {
                                self.last_line_done = line_is_done(&self.line);
                            }
                            self.line.clear();
                        }
                        None => self.line.extend_from_slice(part),
                    }
                }
            }
            _ => {}
        }
        Some(Ok(chunk))
    }

    /// Why a body the provider ended is incomplete, if it is.
    fn incomplete(&self) -> Option<&'static str> {
        let Some(framing) = self.framing() else {
            return match &self.mode {
                Mode::Convert { decoder, .. } if !decoder.finished() => {
                    Some("the stream ended before its final frame")
                }
                _ => None,
            };
        };
        match framing {
            Framing::Sse if !self.tail.ends_with_done() => Some("the stream ended before [DONE]"),
            Framing::AnthropicSse if !self.tail.ends_with_message_stop() => {
                Some("the stream ended before message_stop")
            }
            Framing::Ndjson
                if !(self.last_line_done
                    || (self.line.iter().any(|b| !b.is_ascii_whitespace())
                        && line_is_done(&self.line))) =>
            {
                Some("the stream ended before its \"done\": true line")
            }
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
        self.fail_with(BytesMut::new(), kind, message)
    }

    /// As [`Self::fail`], after `out` (converted frames not yet sent).
    fn fail_with(
        &mut self,
        mut out: BytesMut,
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
        let at_boundary = self.at_boundary();
        match &mut self.mode {
            Mode::Convert { encoder, .. } => {
                encoder.encode(&Event::Error(message), &mut out);
                Some(Ok(out.freeze()))
            }
            Mode::Pass {
                framing: Framing::Whole { .. },
                ..
            } => Some(Err(std::io::Error::other(message))),
            Mode::Pass {
                framing,
                error_frame,
            } => {
                if !at_boundary {
                    out.extend_from_slice(if *framing == Framing::Ndjson {
                        b"\n"
                    } else {
                        b"\n\n"
                    });
                }
                out.extend_from_slice(&error_frame(&message));
                Some(Ok(out.freeze()))
            }
        }
    }
}

/// How many leftover chunks [`LeaseBody::end`] reads at once, and how long the background drain
/// may wait for the rest, before the connection is given up (closed) instead.
const DRAIN_CHUNKS: usize = 8;
const DRAIN_WAIT: Duration = Duration::from_secs(1);

impl LeaseBody {
    /// Ends the client's body. After a converted stream's last frame, the provider's body is read
    /// to its end first — at once if it is already here (the usual case: the terminator came with
    /// the last frame), else by a task of its own for up to [`DRAIN_WAIT`] — so the upstream
    /// connection goes back to awc's pool. Without this every converted request opened (and left
    /// in TIME_WAIT) a new connection to the provider.
    fn end(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        if std::mem::take(&mut self.drain) {
            for _ in 0..DRAIN_CHUNKS {
                match Pin::new(&mut self.rest).poll_next(cx) {
                    Poll::Ready(Some(Ok(_))) => continue,
                    Poll::Pending => {
                        let rest = std::mem::replace(&mut self.rest, actix_http::Payload::None);
                        // Polled by actix-web, i.e. inside the worker's local task set (the
                        // payload is not `Send`); off an arbiter (unit tests) it is just closed.
                        if actix_rt::Arbiter::try_current().is_some() {
                            actix_rt::spawn(drain(rest));
                        }
                        break;
                    }
                    Poll::Ready(_) => break,
                }
            }
        }
        Poll::Ready(None)
    }
}

/// Reads a finished provider response to its end (bounded in time and size), then drops it.
async fn drain(mut rest: UpstreamPayload) {
    use futures_util::StreamExt;
    let _ = tokio::time::timeout(DRAIN_WAIT, async {
        let mut left = DRAIN_CHUNKS;
        while let Some(Ok(_)) = rest.next().await {
            left -= 1;
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

impl Stream for LeaseBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return this.end(cx);
        }
        if let Some(first) = this.first.take() {
            if let Some(out) = this.forward(first) {
                return Poll::Ready(Some(out));
            }
            if this.done {
                return this.end(cx);
            }
        }
        loop {
            match Pin::new(&mut this.rest).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let now = tokio::time::Instant::now();
                    this.idle_timer.as_mut().reset(now + this.idle);
                    this.heartbeat_timer.as_mut().reset(now + this.heartbeat);
                    match this.forward(chunk) {
                        Some(out) => return Poll::Ready(Some(out)),
                        None if this.done => return this.end(cx),
                        // A converted chunk with no output yet (e.g. a partial frame): read on.
                        None => continue,
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(
                        this.fail(FailureKind::Body, format!("connection broke ({e})")),
                    )
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
                Poll::Pending => break,
            }
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
        let stream = this.framing().is_none_or(Framing::is_stream);
        if stream && this.heartbeat_timer.as_mut().poll(cx).is_ready() {
            let next = tokio::time::Instant::now() + this.heartbeat;
            this.heartbeat_timer.as_mut().reset(next);
            // Re-poll the timer so its waker is registered for the next beat.
            let _ = this.heartbeat_timer.as_mut().poll(cx);
            if let Some(beat) = this.heartbeat_bytes() {
                return Poll::Ready(Some(Ok(Bytes::from_static(beat))));
            }
        }
        Poll::Pending
    }
}

/// Releases the slot from a task of its own on this worker, not inline. actix-web drops the body
/// as soon as it has ended, before it writes the last bytes to the client; releasing wakes the
/// registry's thread, which, sharing the core, took the CPU ahead of that write (seen with
/// `perf sched timehist`). Deferred, the release runs after the worker's current poll, i.e. after
/// the response has gone out: ≈ 10 µs less at concurrency 1 (4 of 4 interleaved runs).
/// Off an arbiter (unit tests) the lease is dropped at once.
fn defer_release(lease: Lease) {
    match actix_rt::Arbiter::try_current() {
        Some(arbiter) => {
            arbiter.spawn(async move { drop(lease) });
        }
        None => drop(lease),
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
            // The lease's release runs once the response is out (`defer_release`); dropping `rest`
            // here — unless `end` drained it — closes the upstream connection (client gone).
            defer_release(lease);
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
            buf: [0; 32],
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
        t.push(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        assert!(t.ends_with_message_stop() && !t.ends_with_done());
        // The tail always holds the last bytes sent, however they were split.
        let sent: Vec<u8> = (0..200u8).collect();
        for split in [1, 7, 31, 32, 33, 100] {
            let mut t = Tail {
                buf: [0; 32],
                len: 0,
            };
            sent.chunks(split).for_each(|c| t.push(c));
            assert_eq!(t.bytes(), &sent[sent.len() - 32..], "split {split}");
        }
    }

    #[test]
    fn ndjson_done_lines_are_recognised() {
        let cases: &[(&[u8], bool)] = &[
            (br#"{"model":"m","done":true,"eval_count":3}"#, true),
            (br#"{"model":"m","done": true}"#, true),
            (
                br#"{"model":"m","message":{"content":"\"done\":true"},"done":false}"#,
                false,
            ),
            (br#"{"model":"m","done":false}"#, false),
        ];
        for (line, want) in cases {
            assert_eq!(
                line_is_done(line),
                *want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
