//! One generation answer: the configured fault, latency and pace applied to the reply in the
//! wire format of the route asked (`wire.rs`), whole or as a stream of frames.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;

use crate::wire::{self, Kind, Reply};
use crate::{anthropic_refusal, error, now_secs, FakeConfig, Fault, Guard, Shared};

pub(crate) async fn respond(
    kind: Kind,
    shared: &Shared,
    req: &HttpRequest,
    body: &[u8],
    cfg: &FakeConfig,
    guard: &mut Guard,
) -> HttpResponse {
    if let (Some(tok), false) = (&cfg.require_bearer, kind == Kind::Anthropic) {
        let ok = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {tok}"));
        if !ok {
            guard.finished = true;
            return error(kind, 401, "Incorrect API key provided");
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        guard.finished = true;
        return error(
            kind,
            400,
            "We could not parse the JSON body of your request.",
        );
    };
    if kind == Kind::Anthropic {
        if let Some((status, message)) = anthropic_refusal(req, &request, cfg) {
            guard.finished = true;
            return error(kind, status, &message);
        }
    }
    let prefill = wire::prefill_of(kind, &request);
    if let Some(p) = &prefill {
        if cfg.reject_prefill {
            guard.finished = true;
            return error(
                kind,
                400,
                "assistant prefill is not supported by this model",
            );
        }
        if kind == Kind::Anthropic && p.trim_end() != p {
            guard.finished = true;
            let m = "messages: final assistant content cannot end with trailing whitespace";
            return error(kind, 400, m);
        }
    }
    if !cfg.latency.is_zero() {
        actix_rt::time::sleep(cfg.latency).await;
    }
    match &cfg.fault {
        Fault::Status {
            code,
            message,
            retry_after,
        } => {
            guard.finished = true;
            let mut res = error(kind, *code, message);
            if let Some(s) = retry_after {
                res.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(*s),
                );
            }
            return res;
        }
        Fault::Hang => {
            actix_rt::time::sleep(Duration::from_secs(3600)).await;
            return HttpResponse::InternalServerError().finish();
        }
        _ => {}
    }
    let cached = shared.prefill(cfg.prefix_cache, &request);
    if let Some((_, delay)) = cached.filter(|(_, d)| !d.is_zero()) {
        actix_rt::time::sleep(delay).await;
    }
    let n = shared.next_id.fetch_add(1, SeqCst);
    let stream = kind.stream(&request);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let build = || {
        let mut reply = Reply::new(kind, &request, cfg.chunks, cfg.tool_arguments.as_ref(), n);
        if cfg.echo {
            reply.echo(&request);
        }
        if let Some(p) = &prefill {
            reply.continue_from(p);
        }
        let frames = if stream {
            let mut frames = reply.frames(include_usage);
            let done = |f: &Bytes| f.starts_with(b"data: [DONE]");
            if matches!(cfg.fault, Fault::NoDoneFrame) && frames.last().is_some_and(done) {
                frames.pop();
            }
            frames
        } else {
            vec![Bytes::from(reply.whole().to_string())]
        };
        (reply.created, frames)
    };
    // Tool calls carry the id in a second place; tests (recording) always build afresh.
    let fresh = shared.record || cfg.tool_arguments.is_some() || cfg.echo || prefill.is_some();
    let frames: Vec<Bytes> = if fresh {
        build().1
    } else {
        let key = (kind, cfg.chunks, body);
        let mut template = shared.template.lock().unwrap();
        match template.as_ref().and_then(|t| t.frames(key, now_secs(), n)) {
            Some(frames) => frames,
            None => {
                let (created, frames) = build();
                *template = Template::new(key, created, &frames, n);
                frames
            }
        }
    };
    let (first_delay, cut) = match cfg.fault {
        Fault::SlowFirstToken(d) => (d, None),
        Fault::CutMidStream { after_chunks } => (Duration::ZERO, Some(after_chunks)),
        _ => (Duration::ZERO, None),
    };
    let stall = match cfg.fault {
        Fault::StallAfter { after_chunks } => Some(after_chunks),
        _ => None,
    };
    // A non-stream body cut short: send a prefix of the JSON, then abort.
    let frames = match (stream, cut) {
        (false, Some(_)) => {
            let full = frames[0].clone();
            vec![full.slice(..full.len() / 2)]
        }
        _ => frames,
    };
    let body = FrameStream {
        frames,
        next: 0,
        delay: cfg.chunk_delay,
        end_delay: if stream {
            cfg.end_delay
        } else {
            Duration::ZERO
        },
        first_delay,
        timer: None,
        cut: if stream { cut } else { cut.map(|_| 1) },
        stall,
        guard: None,
    };
    // From here the body's guard tracks the request; the handler's own is done.
    guard.finished = true;
    let mut res = HttpResponse::Ok();
    if let Some((lookup, _)) = cached {
        res.insert_header(("x-fake-cached-tokens", lookup.cached_tokens))
            .insert_header(("x-fake-uncached-tokens", lookup.uncached_tokens));
    }
    if stream {
        res.content_type(kind.content_type(true))
            .insert_header(("cache-control", "no-cache"));
    } else {
        res.content_type("application/json");
        if cut.is_none() && stall.is_none() && first_delay.is_zero() {
            // The common case, like a real server: a sized JSON body.
            return res.body(body.frames[0].clone());
        }
    }
    res.streaming(FrameStream {
        guard: Some(Guard::new(&guard.shared)),
        ..body
    })
}

/// An answer's frames with the place of the id's counter digits in each (the id is
/// `<prefix>fake{n:08x}`), so the same request in the same second (a benchmark's) is answered by
/// copying them with the new counter instead of building and serialising the reply again: the
/// same bytes `Reply` gives (a test checks it), for a fraction of the standalone server's CPU.
pub(crate) struct Template {
    kind: Kind,
    chunks: usize,
    request: Vec<u8>,
    created: u64,
    frames: Vec<(Bytes, Option<usize>)>,
}

impl Template {
    /// `None` when an id is ambiguous in a frame (or the counter does not fit 8 digits).
    pub(crate) fn new(
        (kind, chunks, request): (Kind, usize, &[u8]),
        created: u64,
        frames: &[Bytes],
        n: u64,
    ) -> Option<Template> {
        if n > u64::from(u32::MAX) {
            return None;
        }
        let needle = format!("fake{n:08x}\"");
        let frames = frames
            .iter()
            .map(|f| {
                let mut at = f
                    .windows(needle.len())
                    .enumerate()
                    .filter(|(_, w)| *w == needle.as_bytes())
                    .map(|(i, _)| i + "fake".len());
                match (at.next(), at.next()) {
                    (first, None) => Some((f.clone(), first)),
                    _ => None,
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Template {
            kind,
            chunks,
            request: request.to_vec(),
            created,
            frames,
        })
    }

    /// The frames for counter `n`, if this template answers that request at `now` (seconds).
    pub(crate) fn frames(
        &self,
        (kind, chunks, request): (Kind, usize, &[u8]),
        now: u64,
        n: u64,
    ) -> Option<Vec<Bytes>> {
        if kind != self.kind
            || chunks != self.chunks
            || now != self.created
            || request != self.request
            || n > u64::from(u32::MAX)
        {
            return None;
        }
        let digits = format!("{n:08x}");
        Some(
            self.frames
                .iter()
                .map(|(f, at)| match at {
                    None => f.clone(),
                    Some(i) => {
                        let mut v = f.to_vec();
                        v[*i..*i + 8].copy_from_slice(digits.as_bytes());
                        Bytes::from(v)
                    }
                })
                .collect(),
        )
    }
}

struct FrameStream {
    frames: Vec<Bytes>,
    next: usize,
    delay: Duration,
    end_delay: Duration,
    first_delay: Duration,
    timer: Option<Pin<Box<actix_rt::time::Sleep>>>,
    cut: Option<usize>,
    /// After this many frames nothing more comes (the body stays open).
    stall: Option<usize>,
    guard: Option<Guard>,
}

impl Stream for FrameStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.cut == Some(this.next) {
            // Let the frames sent so far reach the wire first, as they would from a real server
            // that dies mid-stream; then an error from the body makes actix abort the connection
            // without the terminating chunk.
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(Duration::from_millis(50))));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.timer = None;
            this.cut = None;
            return Poll::Ready(Some(Err(std::io::Error::other("fake: cut mid-stream"))));
        }
        if this.stall == Some(this.next) {
            // Never woken: the body stays open until the client gives up.
            return Poll::Pending;
        }
        if this.next >= this.frames.len() {
            if !this.end_delay.is_zero() {
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(this.end_delay)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.timer = None;
                this.end_delay = Duration::ZERO;
            }
            if let Some(g) = this.guard.as_mut() {
                g.finished = true;
            }
            this.guard = None;
            return Poll::Ready(None);
        }
        let wait = if this.next == 0 {
            this.first_delay
        } else {
            this.delay
        };
        if !wait.is_zero() {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(wait)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.timer = None;
        }
        let frame = this.frames[this.next].clone();
        this.next += 1;
        Poll::Ready(Some(Ok(frame)))
    }
}
