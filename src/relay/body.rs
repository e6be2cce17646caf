//! The response body that carries a provider's bytes to the client while holding its [`Lease`].
//!
//! Same-dialect bytes are forwarded as they arrive, untouched (no re-framing); a converted stream
//! is decoded frame by frame and re-encoded in the client's dialect as each frame arrives
//! ([`Mode::Convert`]); either way the output then passes the response's frame stages
//! ([`super::stages`]). The body owns the lease, so when actix-web drops it — stream finished, or
//! client gone — the slot is released exactly once. It also enforces what awc does not: an idle
//! limit between chunks, the request's overall deadline, an SSE heartbeat comment on idle streams
//! (so a vanished client is noticed), and an in-band error frame when the provider fails after
//! the stream began.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use llm_router_actors::wire::{EndTracker, Framing};
use llm_router_actors::{FailureKind, Lease, Outcome};
use tokio::time::{sleep, Sleep};

use super::client::UpstreamPayload;
use super::finish::report;
use super::plan::ErrorFrame;
use super::stages::FrameStage;
use crate::dialects::canonical::{Decoder, Encoder, Event};
use crate::telemetry::Metrics;

/// What the body does with the provider's bytes.
pub enum Mode {
    Pass {
        end: EndTracker,
        error_frame: ErrorFrame,
    },
    Convert {
        decoder: Box<dyn Decoder>,
        encoder: Box<dyn Encoder>,
    },
}

pub struct BodyLimits {
    /// Longest silence allowed between two upstream chunks.
    pub idle: Duration,
    /// The request's overall deadline (`LLM_ROUTER_TIMEOUT`), if any.
    pub deadline: Option<Instant>,
    /// Idle gap after which an SSE comment is sent to the client.
    pub heartbeat: Duration,
}

type Item = Result<Bytes, std::io::Error>;

pub struct RelayBody {
    first: Option<Bytes>,
    rest: UpstreamPayload,
    lease: Option<Lease>,
    metrics: Option<Metrics>,
    mode: Mode,
    stages: Vec<Box<dyn FrameStage>>,
    events: Vec<Event>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    heartbeat: Duration,
    heartbeat_timer: Pin<Box<Sleep>>,
    deadline: Option<Pin<Box<Sleep>>>,
    done: bool,
    /// A converted stream saw its last frame before the provider's body ended: what is left
    /// (normally just the chunked terminator) is read before the body ends, so awc can reuse the
    /// connection instead of closing it.
    drain: bool,
}

impl RelayBody {
    pub fn new(
        lease: Lease,
        first: Bytes,
        rest: UpstreamPayload,
        mode: Mode,
        stages: Vec<Box<dyn FrameStage>>,
        limits: BodyLimits,
        metrics: Option<Metrics>,
    ) -> RelayBody {
        RelayBody {
            first: Some(first),
            rest,
            lease: Some(lease),
            metrics,
            mode,
            stages,
            events: Vec::new(),
            idle: limits.idle,
            idle_timer: Box::pin(sleep(limits.idle)),
            heartbeat: limits.heartbeat,
            heartbeat_timer: Box::pin(sleep(limits.heartbeat)),
            deadline: limits
                .deadline
                .map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            done: false,
            drain: false,
        }
    }

    fn framing(&self) -> Option<Framing> {
        match &self.mode {
            Mode::Pass { end, .. } => Some(end.framing()),
            Mode::Convert { .. } => None,
        }
    }

    /// Whether a heartbeat can be sent now, and which.
    fn heartbeat_bytes(&self) -> Option<&'static [u8]> {
        match &self.mode {
            Mode::Pass { end, .. }
                if matches!(end.framing(), Framing::Sse | Framing::AnthropicSse)
                    && end.at_boundary() =>
            {
                Some(b": keep-alive\n\n")
            }
            Mode::Pass { .. } => None,
            Mode::Convert { encoder, .. } => encoder.heartbeat(),
        }
    }

    /// Passes a chunk on (or converts it); `None` when a converted chunk produced no output yet.
    fn forward(&mut self, chunk: Bytes) -> Option<Item> {
        let out = match &mut self.mode {
            Mode::Convert { decoder, encoder } => {
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
                if out.is_empty() {
                    return None;
                }
                out.freeze()
            }
            Mode::Pass { end, .. } => {
                // A sized body may be dropped without a final poll: record success at its last byte.
                if end.feed(&chunk) {
                    self.succeed();
                }
                chunk
            }
        };
        self.through_stages(out)
    }

    /// Runs output through the frame stages; a stage failure ends the response (fail closed).
    fn through_stages(&mut self, mut out: Bytes) -> Option<Item> {
        for i in 0..self.stages.len() {
            match self.stages[i].frame(out) {
                Ok(next) => out = next,
                Err(why) => return self.fail(FailureKind::Body, why),
            }
        }
        (!out.is_empty()).then_some(Ok(out))
    }

    /// The provider's body ended: what the client still needs for a complete answer (a `[DONE]`
    /// the provider left out, a converted stream's closing frames, what frame stages hold back),
    /// or why the answer is incomplete.
    fn at_eof(&mut self) -> Result<BytesMut, String> {
        let mut out = BytesMut::new();
        match &mut self.mode {
            Mode::Pass { end, .. } => {
                if let Some(why) = end.incomplete() {
                    return Err(format!("connection broke ({why})"));
                }
                if end.missing_done() {
                    out.extend_from_slice(b"data: [DONE]\n\n");
                }
            }
            Mode::Convert { decoder, encoder } => {
                if !decoder.finished() {
                    if !decoder.eof(&mut self.events) {
                        let why = "the stream ended before its final frame";
                        return Err(format!("connection broke ({why})"));
                    }
                    for e in self.events.drain(..) {
                        encoder.encode(&e, &mut out);
                    }
                }
            }
        }
        if !self.stages.is_empty() {
            let mut staged = out.freeze();
            for stage in &mut self.stages {
                staged = stage.frame(staged)?;
            }
            out = BytesMut::from(&staged[..]);
            for stage in &mut self.stages {
                out.extend_from_slice(&stage.end()?);
            }
        }
        Ok(out)
    }

    fn succeed(&mut self) {
        if let Some(lease) = self.lease.as_mut() {
            lease.set_outcome(Outcome::Success);
        }
    }

    /// Ends the stream after a provider failure: in-band for streams, an abort otherwise.
    fn fail(&mut self, kind: FailureKind, message: String) -> Option<Item> {
        self.fail_with(BytesMut::new(), kind, message)
    }

    /// As [`Self::fail`], after `out` (converted frames not yet sent).
    fn fail_with(&mut self, mut out: BytesMut, kind: FailureKind, message: String) -> Option<Item> {
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
        match &mut self.mode {
            Mode::Convert { encoder, .. } => {
                encoder.encode(&Event::Error(message), &mut out);
                Some(Ok(out.freeze()))
            }
            Mode::Pass { end, .. } if !end.framing().is_stream() => {
                Some(Err(std::io::Error::other(message)))
            }
            Mode::Pass { end, error_frame } => {
                if !end.at_boundary() {
                    out.extend_from_slice(if end.framing() == Framing::Ndjson {
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

/// How many leftover chunks [`RelayBody::end`] reads at once, and how long the background drain
/// may wait for the rest, before the connection is given up (closed) instead.
const DRAIN_CHUNKS: usize = 8;
const DRAIN_WAIT: Duration = Duration::from_secs(1);

impl RelayBody {
    /// Ends the client's body. After a converted stream's last frame, the provider's body is read
    /// to its end first — at once if it is already here (the usual case: the terminator came with
    /// the last frame), else by a task of its own for up to [`DRAIN_WAIT`] — so the upstream
    /// connection goes back to awc's pool. Without this every converted request opened (and left
    /// in TIME_WAIT) a new connection to the provider.
    fn end(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
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

impl Stream for RelayBody {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
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
                    return Poll::Ready(match this.at_eof() {
                        Err(why) => this.fail(FailureKind::Body, why),
                        Ok(out) => {
                            this.done = true;
                            this.succeed();
                            (!out.is_empty()).then(|| Ok(out.freeze()))
                        }
                    });
                }
                Poll::Pending => break,
            }
        }
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(this.fail(
                    FailureKind::Timeout(this.idle),
                    "the request reached the router's time limit (LLM_ROUTER_TIMEOUT)".into(),
                ));
            }
        }
        if this.idle_timer.as_mut().poll(cx).is_ready() {
            let secs = this.idle.as_secs_f64();
            return Poll::Ready(this.fail(
                FailureKind::Timeout(this.idle),
                format!("no data for {secs:.1}s"),
            ));
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
/// registry's thread, which, sharing the core, would take the CPU ahead of that write. Deferred,
/// the release runs after the worker's current poll, i.e. after the response has gone out.
/// Off an arbiter (unit tests) the lease is dropped at once.
pub(super) fn defer_release(lease: Lease) {
    match actix_rt::Arbiter::try_current() {
        Some(arbiter) => {
            arbiter.spawn(async move { drop(lease) });
        }
        None => drop(lease),
    }
}

impl Drop for RelayBody {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            report(&lease, self.metrics.as_ref());
            if lease.outcome() == Outcome::Cancelled {
                tracing::debug!(provider = %lease.provider().id, "client went away; upstream request cancelled");
            }
            // Dropping `rest` here — unless `end` drained it — closes the upstream connection
            // (client gone), which cancels the provider's work.
            defer_release(lease);
        }
    }
}
