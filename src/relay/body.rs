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
//!
//! With a [`Gate`] (response guardrails) the output after the frame stages is handed to the gate,
//! and only what the gate releases reaches the client; the provider is read on meanwhile (until
//! the gate holds as much as it may). A refusal sends the gate's in-band frame and closes the
//! provider's connection (cancelling its work). Without a gate none of this runs.

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
use super::plan::{decoder, ErrorFrame};
use super::resume::{self, ResumeCtx, Resumed, Skip, MAX_RESUMES};
use super::stages::{FrameStage, Gate};
use crate::dialects::canonical::{Decoder, Encoder, Event};
use crate::telemetry::Metrics;
use llm_router_actors::wire::Wire;
use std::rc::Rc;

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

/// What a stream that may be continued keeps of itself (only when resume is on).
pub struct Resume {
    ctx: Rc<ResumeCtx>,
    resumes: usize,
    /// Providers that failed this stream.
    tried: Vec<String>,
    /// Passthrough: the provider chunks the client got (shared, not copied), decoded only if a
    /// continuation is needed.
    raw: Vec<Bytes>,
    /// Converted: the text the client got.
    text: String,
    /// A tool-call delta went out: no continuation can be spliced after it.
    tool: bool,
}

type Continuation = Pin<Box<dyn Future<Output = Result<Resumed, String>>>>;

pub struct RelayBody {
    first: Option<Bytes>,
    rest: UpstreamPayload,
    lease: Option<Lease>,
    metrics: Option<Metrics>,
    mode: Mode,
    stages: Vec<Box<dyn FrameStage>>,
    /// Holds the output until checked (see the module docs); `None` once everything went out.
    gate: Option<Box<dyn Gate>>,
    /// The gate was told the answer is complete.
    gate_closed: bool,
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
    resume: Option<Box<Resume>>,
    /// A continuation being found (the body waits for it instead of reading `rest`).
    resuming: Option<Continuation>,
    /// After a continuation: its `Start` is not the client's, and what it repeats is skipped.
    spliced: bool,
    skip: Skip,
    /// A passthrough turned converted by a continuation: the encoder's id → the stream's own.
    id_swap: IdSwap,
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
            gate: None,
            gate_closed: false,
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
            resume: None,
            resuming: None,
            spliced: false,
            skip: Skip::default(),
            id_swap: None,
        }
    }

    /// Lets the stream be continued on another provider when it fails after its first byte.
    pub fn resumable(mut self, ctx: Rc<ResumeCtx>) -> RelayBody {
        self.resume = Some(Box::new(Resume {
            ctx,
            resumes: 0,
            tried: Vec::new(),
            raw: Vec::new(),
            text: String::new(),
            tool: false,
        }));
        self
    }

    /// Holds the output back until `gate` has checked it.
    pub fn gated(mut self, gate: Option<Box<dyn Gate>>) -> RelayBody {
        self.gate = gate;
        self
    }

    /// The gate refused the answer (or could not check it): `frame` (its in-band refusal) ends
    /// the response, and the provider's connection is closed, which cancels its work. The
    /// provider did nothing wrong.
    fn refused(&mut self, frame: Bytes) -> Bytes {
        self.gate = None;
        self.resume = None;
        self.resuming = None;
        self.succeed();
        self.done = true;
        self.drain = false;
        self.rest = actix_http::Payload::None;
        frame
    }

    fn framing(&self) -> Option<Framing> {
        match &self.mode {
            Mode::Pass { end, .. } => Some(end.framing()),
            Mode::Convert { .. } => None,
        }
    }

    /// Whether a heartbeat can be sent now, and which.
    fn heartbeat_bytes(&self) -> Option<&'static [u8]> {
        if self.gate.is_some() {
            // The client is wherever the gate released to, not where the provider is.
            return None;
        }
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
                for mut e in self.events.drain(..) {
                    if let Event::Error(m) = &e {
                        failed = Some(format!("the provider reported an error: {m}"));
                        break;
                    }
                    if self.spliced {
                        match &mut e {
                            // The client's stream has started already.
                            Event::Start { .. } => continue,
                            Event::Text(t) => match self.skip.apply(t) {
                                Ok(rest) if rest.is_empty() => continue,
                                Ok(rest) => *t = rest,
                                Err(()) => {
                                    failed = Some("the continuation is not the same answer".into());
                                    break;
                                }
                            },
                            _ => {}
                        }
                    }
                    if let Some(r) = self.resume.as_mut() {
                        match &e {
                            Event::Text(t) => r.text.push_str(t),
                            Event::ToolStart { .. } | Event::ToolArgs { .. } => r.tool = true,
                            _ => {}
                        }
                    }
                    encoder.encode(&e, &mut out);
                    if e == Event::Done {
                        break;
                    }
                }
                if let Some((from, to)) = &self.id_swap {
                    out = swap_id(out, from, to);
                }
                if let Some(msg) = failed {
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
                if let Some(r) = self.resume.as_mut() {
                    r.raw.push(chunk.clone());
                }
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
                Err(why) => {
                    // The router's own stage failed, not the provider: nothing to continue.
                    self.resume = None;
                    return self.fail(FailureKind::Body, why);
                }
            }
        }
        if let Some(gate) = self.gate.as_mut() {
            if !out.is_empty() {
                gate.hold(out);
            }
            return None;
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
            let staged = Self::finish_stages(&mut self.stages, out);
            if staged.is_err() {
                // The router's own stage failed at the end: nothing to continue.
                self.resume = None;
            }
            return staged;
        }
        Ok(out)
    }

    /// The last output through the frame stages, then what they still hold.
    fn finish_stages(
        stages: &mut [Box<dyn FrameStage>],
        out: BytesMut,
    ) -> Result<BytesMut, String> {
        let mut staged = out.freeze();
        for stage in stages.iter_mut() {
            staged = stage.frame(staged)?;
        }
        let mut out = BytesMut::from(&staged[..]);
        for stage in stages.iter_mut() {
            out.extend_from_slice(&stage.end()?);
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

    /// As [`Self::fail`], after `out` (converted frames not yet sent). When the stream can be
    /// continued, a continuation is started instead and `out` alone is returned (`None` when
    /// empty: the caller polls on).
    fn fail_with(&mut self, mut out: BytesMut, kind: FailureKind, message: String) -> Option<Item> {
        let provider = match self.lease.as_mut() {
            Some(lease) => {
                lease.set_outcome(Outcome::Failure(kind));
                lease.provider().id.clone()
            }
            None => String::new(),
        };
        let message = format!("provider \"{provider}\" failed mid-response: {message}");
        tracing::warn!(provider = %provider, "{message}");
        if self.start_continuation() {
            return self.through_stages(out.freeze());
        }
        self.done = true;
        // What the gate holds was never checked: it is dropped, and the client, whom the gate
        // only ever released whole frames to, is at a frame boundary.
        let gated = self.gate.take().is_some();
        if gated {
            out.clear();
        }
        match &mut self.mode {
            Mode::Convert { encoder, .. } => {
                encoder.encode(&Event::Error(message), &mut out);
                Some(Ok(out.freeze()))
            }
            Mode::Pass { end, .. } if !end.framing().is_stream() => {
                Some(Err(std::io::Error::other(message)))
            }
            Mode::Pass { end, error_frame } => {
                if !gated && !end.at_boundary() {
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

impl RelayBody {
    /// Starts continuing the stream elsewhere, when it may be: resume on, fewer than
    /// [`MAX_RESUMES`] so far, the request's deadline not reached, no tool-call delta sent, and
    /// (passthrough) the stream stopped between frames of a dialect the router can re-encode.
    fn start_continuation(&mut self) -> bool {
        let Some(r) = self.resume.as_mut() else {
            return false;
        };
        let Some(lease) = self.lease.as_ref() else {
            return false;
        };
        let timed_out = r.ctx.deadline.is_some_and(|d| Instant::now() >= d);
        if r.resumes >= MAX_RESUMES || timed_out || r.tool {
            resume::count(self.metrics.as_ref(), "impossible");
            return false;
        }
        let wire = Wire::of(lease.provider().api_type);
        if let Mode::Pass { end, .. } = &self.mode {
            // A passthrough becomes a conversion from here: the client's encoder, brought to
            // where the client's stream is by replaying what it got.
            let spliceable = end.framing().is_stream() && end.at_boundary();
            let replayed = if spliceable { replay(r, wire) } else { None };
            let Some((encoder, text, id_swap)) = replayed else {
                resume::count(self.metrics.as_ref(), "impossible");
                return false;
            };
            r.text = text;
            self.id_swap = id_swap;
            self.mode = Mode::Convert {
                decoder: decoder(wire),
                encoder,
            };
        }
        r.resumes += 1;
        r.tried.push(lease.provider().id.clone());
        let model = lease.model().to_string();
        let fut = resume::continuation(r.ctx.clone(), model, r.text.clone(), r.tried.clone());
        self.resuming = Some(Box::pin(fut));
        true
    }

    /// A continuation took over: the failed provider's lease goes, the new one's stream is read
    /// from here on.
    fn take_over(&mut self, next: Resumed) {
        if let Some(old) = self.lease.take() {
            report(&old, self.metrics.as_ref());
            defer_release(old);
        }
        resume::count(self.metrics.as_ref(), "resumed");
        tracing::info!(provider = %next.lease.provider().id, "stream continued");
        self.lease = Some(next.lease);
        self.first = Some(next.first);
        self.rest = next.rest;
        if let Mode::Convert { decoder: d, .. } = &mut self.mode {
            *d = decoder(next.wire);
        }
        self.spliced = true;
        self.skip = next.skip;
        let now = tokio::time::Instant::now();
        self.idle_timer.as_mut().reset(now + self.idle);
        self.heartbeat_timer.as_mut().reset(now + self.heartbeat);
    }
}

/// An encoder id → the stream's own id.
type IdSwap = Option<(String, String)>;

/// Replays a passthrough's delivered bytes into the client's encoder: the encoder, the text
/// delivered, and the id swap that keeps the stream's own id. `None` when the stream cannot be
/// continued (a tool call began, nothing readable, the request cannot be re-read).
fn replay(r: &mut Resume, wire: Wire) -> Option<(Box<dyn Encoder>, String, IdSwap)> {
    let req = r.ctx.request().ok()?;
    let mut events = Vec::new();
    let mut d = decoder(wire);
    for chunk in std::mem::take(&mut r.raw) {
        d.feed(&chunk, &mut events);
    }
    let mut encoder = r.ctx.ingress.encoder(&req);
    let mut scratch = BytesMut::new();
    let mut text = String::new();
    let mut own_id = None;
    for e in &events {
        match e {
            Event::ToolStart { .. } | Event::ToolArgs { .. } | Event::Error(_) | Event::Done => {
                return None
            }
            Event::Start { id, .. } => own_id = id.clone(),
            Event::Text(t) => text.push_str(t),
            Event::Stop(_) | Event::Usage(_) => {}
        }
        encoder.encode(e, &mut scratch);
    }
    let encoder_id = first_id(&scratch);
    let swap = match (encoder_id, own_id) {
        (Some(from), Some(to)) if from != to => Some((from, to)),
        _ => None,
    };
    Some((encoder, text, swap))
}

/// The first `"id":"…"` value in encoder output (the id the encoder writes in every chunk).
fn first_id(out: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(out).ok()?;
    let at = s.find("\"id\":\"")? + 6;
    let end = s[at..].find('"')?;
    Some(s[at..at + end].to_string())
}

/// `out` with every `"id":"<from>"` written `"id":"<to>"`.
fn swap_id(out: BytesMut, from: &str, to: &str) -> BytesMut {
    let (from, to) = (format!("\"id\":\"{from}\""), format!("\"id\":\"{to}\""));
    match std::str::from_utf8(&out) {
        Ok(s) if s.contains(&from) => BytesMut::from(s.replace(&from, &to).as_bytes()),
        _ => out,
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
        // Each `continue` re-checks the state: a failure may have started a continuation (or
        // ended the body) without output.
        loop {
            if let Some(gate) = this.gate.as_mut() {
                if this.done && !this.gate_closed {
                    gate.close();
                    this.gate_closed = true;
                }
                match gate.poll_release(cx) {
                    Poll::Ready(Ok(Some(out))) => return Poll::Ready(Some(Ok(out))),
                    Poll::Ready(Ok(None)) if this.gate_closed => this.gate = None,
                    Poll::Ready(Ok(None)) => {}
                    Poll::Ready(Err(frame)) => return Poll::Ready(Some(Ok(this.refused(frame)))),
                    // A check runs; the provider is read on meanwhile unless the gate is full.
                    Poll::Pending if this.gate_closed || !gate.wants_input() => {
                        return Poll::Pending
                    }
                    Poll::Pending => {}
                }
            }
            if this.done {
                return this.end(cx);
            }
            if let Some(next) = this.resuming.as_mut() {
                match next.as_mut().poll(cx) {
                    Poll::Ready(Ok(resumed)) => {
                        this.resuming = None;
                        this.take_over(resumed);
                    }
                    Poll::Ready(Err(why)) => {
                        this.resuming = None;
                        resume::count(this.metrics.as_ref(), "failed");
                        this.resume = None;
                        let msg = format!("the stream could not be continued: {why}");
                        return Poll::Ready(this.fail(FailureKind::Body, msg));
                    }
                    Poll::Pending => {
                        if let Some(deadline) = this.deadline.as_mut() {
                            if deadline.as_mut().poll(cx).is_ready() {
                                this.resuming = None;
                                this.resume = None;
                                let msg = "the request reached the router's time limit (LLM_ROUTER_TIMEOUT)";
                                return Poll::Ready(
                                    this.fail(FailureKind::Timeout(this.idle), msg.into()),
                                );
                            }
                        }
                        return Poll::Pending;
                    }
                }
            }
            if let Some(first) = this.first.take() {
                if let Some(out) = this.forward(first) {
                    return Poll::Ready(Some(out));
                }
                continue;
            }
            match Pin::new(&mut this.rest).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let now = tokio::time::Instant::now();
                    this.idle_timer.as_mut().reset(now + this.idle);
                    this.heartbeat_timer.as_mut().reset(now + this.heartbeat);
                    match this.forward(chunk) {
                        Some(out) => return Poll::Ready(Some(out)),
                        // Done, continuing, or a converted chunk with no output yet (e.g. a
                        // partial frame): look again.
                        None => continue,
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    match this.fail(FailureKind::Body, format!("connection broke ({e})")) {
                        Some(out) => return Poll::Ready(Some(out)),
                        None => continue,
                    }
                }
                Poll::Ready(None) => match this.at_eof() {
                    Err(why) => match this.fail(FailureKind::Body, why) {
                        Some(out) => return Poll::Ready(Some(out)),
                        None => continue,
                    },
                    Ok(out) => {
                        this.done = true;
                        this.succeed();
                        if let Some(gate) = this.gate.as_mut() {
                            if !out.is_empty() {
                                gate.hold(out.freeze());
                            }
                            continue;
                        }
                        if out.is_empty() {
                            continue;
                        }
                        return Poll::Ready(Some(Ok(out.freeze())));
                    }
                },
                Poll::Pending => {}
            }
            if let Some(deadline) = this.deadline.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    // No continuation past the request's own deadline.
                    this.resume = None;
                    return Poll::Ready(this.fail(
                        FailureKind::Timeout(this.idle),
                        "the request reached the router's time limit (LLM_ROUTER_TIMEOUT)".into(),
                    ));
                }
            }
            if this.idle_timer.as_mut().poll(cx).is_ready() {
                let secs = this.idle.as_secs_f64();
                let msg = format!("no data for {secs:.1}s");
                match this.fail(FailureKind::Timeout(this.idle), msg) {
                    Some(out) => return Poll::Ready(Some(out)),
                    None => continue,
                }
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
            return Poll::Pending;
        }
    }
}

/// Releases the slot from a task of its own on this worker, not inline. actix-web drops the body
/// as soon as it has ended, before it writes the last bytes to the client; releasing wakes the
/// registry's thread, which, sharing the core, would take the CPU ahead of that write. Deferred,
/// the release runs after the worker's current poll, i.e. after the response has gone out.
/// Off an arbiter (unit tests) the lease is dropped at once.
pub(super) fn defer_release(lease: Lease) {
    match actix_rt::Arbiter::try_current() {
        // A local task of this worker (`Arbiter::spawn` would send it through the arbiter's
        // channel first).
        Some(_) => {
            actix_rt::spawn(async move { drop(lease) });
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
