//! The committed answer on its way to the client, handled the way its request was built
//! ([`Route`]): passed through untouched, or converted — frame by frame for streams, whole
//! otherwise.

use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use llm_router_actors::wire::{EndTracker, Wire};
use llm_router_actors::{FailureKind, Outcome};

use super::attempt::Committed;
use super::body::{defer_release, BodyLimits, Mode, RelayBody};
use super::finish::{failed, finish, report};
use super::plan::{decoder, read_answer, ClientApi, Ingress, Route};
use super::resume::ResumeCtx;
use super::Call;
use crate::dialects::canonical::{Collector, Event, Request, Response};
use crate::dialects::embeddings::{self, EmbedRequest};
use crate::errors::RouterError;
use crate::handlers::AppState;
use std::rc::Rc;

/// Largest provider answer buffered for a non-stream conversion.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

pub async fn respond(
    mut c: Committed,
    state: &AppState,
    client: &awc::Client,
    call: &Call<'_>,
) -> Result<HttpResponse, RouterError> {
    match std::mem::replace(&mut c.route, Route::Pass) {
        Route::Pass => passthrough(c, state, client, call, call.plan.api).await,
        // Boxed: a conversion's state is larger than a passthrough's; inline it would grow every
        // request's future.
        Route::Chat(ingress, req) => {
            Box::pin(convert_chat(c, state, client, call, ingress, req)).await
        }
        Route::Embed(req) => convert_embed(c, state, call, &req).await,
    }
}

/// What a streamed generation needs to be continued elsewhere (SPEC §11), when resume is on.
fn resume_ctx(
    state: &AppState,
    client: &awc::Client,
    call: &Call<'_>,
    ingress: Ingress,
    canonical: Option<Rc<Request>>,
) -> Option<Rc<ResumeCtx>> {
    if !state.settings.stream_resume {
        return None;
    }
    let cell = std::cell::OnceCell::new();
    if let Some(r) = canonical {
        let _ = cell.set(r);
    }
    Some(Rc::new(ResumeCtx {
        client: client.clone(),
        chooser: state.chooser.clone(),
        settings: state.settings.clone(),
        metrics: state.metrics.clone(),
        ingress,
        request_id: call.request_id.to_string(),
        deadline: call.deadline,
        body: call.raw.clone(),
        canonical: cell,
    }))
}

/// Which provider answered and as which model (also read back by the access layer's usage count).
pub static PROVIDER_HEADER: HeaderName = HeaderName::from_static("x-llm-router-provider");
pub static MODEL_HEADER: HeaderName = HeaderName::from_static("x-llm-router-model");
static DECISION_HEADER: HeaderName = HeaderName::from_static(super::explain::HEADER);
static ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Header values of provider and model names, kept per worker thread (cleared when full):
/// a clone shares the bytes, where making one copies and checks them each time.
fn name_value(name: &str) -> Option<HeaderValue> {
    thread_local! {
        static KEPT: std::cell::RefCell<Vec<(Box<str>, HeaderValue)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    KEPT.with_borrow_mut(|kept| {
        if let Some((_, v)) = kept.iter().find(|(n, _)| **n == *name) {
            return Some(v.clone());
        }
        let v = HeaderValue::from_str(name).ok()?;
        if kept.len() >= 256 {
            kept.clear();
        }
        kept.push((name.into(), v.clone()));
        Some(v)
    })
}

/// The provider that answered and the model it answered as (a fallback's name when one served).
fn routed_headers(res: &mut actix_web::HttpResponseBuilder, c: &mut Committed, stream: bool) {
    if let Some(v) = name_value(&c.lease.provider().id) {
        res.insert_header((PROVIDER_HEADER.clone(), v));
    }
    if let Some(v) = name_value(c.lease.model()) {
        res.insert_header((MODEL_HEADER.clone(), v));
    }
    if let Some(d) = c.decision.take() {
        res.insert_header((DECISION_HEADER.clone(), d));
    }
    if stream {
        res.insert_header((header::CACHE_CONTROL, "no-cache"));
        res.insert_header((ACCEL_BUFFERING.clone(), HeaderValue::from_static("no")));
        // Never let a compression layer hold frames back.
        res.insert_header((header::CONTENT_ENCODING, "identity"));
    }
}

fn limits(c: &Committed, state: &AppState, call: &Call<'_>) -> BodyLimits {
    BodyLimits {
        idle: c.lease.provider().timeout.unwrap_or(call.external_timeout),
        deadline: call.deadline,
        heartbeat: state.settings.heartbeat,
    }
}

/// Sends the provider's response on unchanged: a stream holding the lease until its body is done,
/// a non-stream answer (read whole before the commit) at once.
async fn passthrough(
    mut c: Committed,
    state: &AppState,
    client: &awc::Client,
    call: &Call<'_>,
    api: ClientApi,
) -> Result<HttpResponse, RouterError> {
    let ct = c.content_type.as_ref().and_then(|v| v.to_str().ok());
    let framing = c.wire.framing_of(ct, c.content_length);
    let status = StatusCode::from_u16(c.status.as_u16()).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    routed_headers(&mut res, &mut c, framing.is_stream());
    match c.content_type.take() {
        Some(ct) => res.insert_header((header::CONTENT_TYPE, ct)),
        None => res.insert_header((header::CONTENT_TYPE, "application/json")),
    };
    if !framing.is_stream() {
        // The whole answer is here (attempt::read_rest): nothing left to watch or to stream.
        let body = match staged(state, call, c.first) {
            Ok(body) => body,
            Err(e) => {
                finish(
                    c.lease,
                    Outcome::Failure(FailureKind::Body),
                    state.metrics.as_ref(),
                );
                return Err(e);
            }
        };
        let mut lease = c.lease;
        lease.set_outcome(Outcome::Success);
        report(&lease, state.metrics.as_ref());
        defer_release(lease);
        state
            .stages
            .check_whole(api, call.ctx, client, &body)
            .await?;
        return Ok(res.body(body));
    }
    let limits = limits(&c, state, call);
    let mode = Mode::Pass {
        end: EndTracker::new(framing),
        error_frame: api.error_frame(),
    };
    let stages = state.stages.start_frames(api, call.ctx);
    let gate = state.stages.start_gate(api, call.ctx, client);
    let mut body = RelayBody::new(
        c.lease,
        c.first,
        c.rest,
        mode,
        stages,
        limits,
        state.metrics.clone(),
    )
    .gated(gate);
    // Passthrough streams of every generation dialect can be continued (see body.rs).
    if let ClientApi::Generate(ingress) = api {
        if let Some(ctx) = resume_ctx(state, client, call, ingress, None) {
            body = body.resumable(ctx);
        }
    }
    Ok(res.streaming(body))
}

/// A whole answer the router wrote, through the response's frame stages.
fn staged(state: &AppState, call: &Call<'_>, body: Bytes) -> Result<Bytes, RouterError> {
    let mut stages = state.stages.start_frames(call.plan.api, call.ctx);
    if stages.is_empty() {
        return Ok(body);
    }
    let fail = |why: String| RouterError::Internal(format!("response stage failed: {why}"));
    let mut out = body;
    for stage in &mut stages {
        out = stage.frame(out).map_err(fail)?;
    }
    let mut whole = BytesMut::from(&out[..]);
    for stage in &mut stages {
        whole.extend_from_slice(&stage.end().map_err(fail)?);
    }
    Ok(whole.freeze())
}

/// Reads the rest of a provider's answer (idle-bounded); a failure finishes the lease.
async fn read_whole(
    mut c: Committed,
    state: &AppState,
    call: &Call<'_>,
) -> Result<(Committed, Bytes), RouterError> {
    let idle = limits(&c, state, call).idle;
    let mut buf = BytesMut::from(&c.first[..]);
    let failure = loop {
        let next = match call.deadline {
            Some(d) => idle.min(d.saturating_duration_since(Instant::now())),
            None => idle,
        };
        match tokio::time::timeout(next, c.rest.next()).await {
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > MAX_ANSWER {
                    break (
                        FailureKind::Body,
                        "the answer is too large to convert".to_string(),
                    );
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok((c, buf.freeze())),
            Ok(Some(Err(e))) => break (FailureKind::Body, format!("connection broke ({e})")),
            Err(_) => {
                break (
                    FailureKind::Timeout(idle),
                    format!("no data for {:.1}s", next.as_secs_f64()),
                )
            }
        }
    };
    let (kind, why) = failure;
    Err(failed(c.lease, kind, &why, state.metrics.as_ref()))
}

/// A complete answer replayed as stream events (a provider that answered a stream request whole).
fn events_of(r: &Response) -> Vec<Event> {
    let mut ev = vec![Event::Start {
        id: r.id.clone(),
        model: r.model.clone(),
    }];
    if !r.text.is_empty() {
        ev.push(Event::Text(r.text.clone()));
    }
    for (index, (id, name, args)) in r.tool_calls.iter().enumerate() {
        ev.push(Event::ToolStart {
            index,
            id: id.clone(),
            name: name.clone(),
        });
        ev.push(Event::ToolArgs {
            index,
            fragment: args.clone(),
        });
    }
    ev.push(Event::Stop(r.stop));
    if let Some(u) = r.usage {
        ev.push(Event::Usage(u));
    }
    ev.push(Event::Done);
    ev
}

/// Converts a generation answer into the client's dialect (stream frame by frame, or whole).
async fn convert_chat(
    mut c: Committed,
    state: &AppState,
    client: &awc::Client,
    call: &Call<'_>,
    ingress: Ingress,
    original: Rc<Request>,
) -> Result<HttpResponse, RouterError> {
    let req = &*original;
    let ct = c.content_type.as_ref().and_then(|v| v.to_str().ok());
    let wire = c.wire;
    let upstream_streams = wire.framing_of(ct, c.content_length).is_stream();
    let mut res = HttpResponse::Ok();
    routed_headers(&mut res, &mut c, req.stream);
    // A fallback model answered: the client sees its name.
    let answering = c.lease.model().to_string();
    let renamed;
    let req = if answering == req.model {
        req
    } else {
        renamed = Request {
            model: answering.clone(),
            ..req.clone()
        };
        &renamed
    };
    if req.stream && upstream_streams {
        res.insert_header((header::CONTENT_TYPE, ingress.stream_content_type()));
        let limits = limits(&c, state, call);
        let mode = Mode::Convert {
            decoder: decoder(wire),
            encoder: ingress.encoder(req),
        };
        let stages = state.stages.start_frames(call.plan.api, call.ctx);
        let gate = state.stages.start_gate(call.plan.api, call.ctx, client);
        let mut body = RelayBody::new(
            c.lease,
            c.first,
            c.rest,
            mode,
            stages,
            limits,
            state.metrics.clone(),
        )
        .gated(gate);
        if let Some(ctx) = resume_ctx(state, client, call, ingress, Some(original.clone())) {
            body = body.resumable(ctx);
        }
        return Ok(res.streaming(body));
    }
    let (c, bytes) = read_whole(c, state, call).await?;
    let answer = if upstream_streams {
        // A provider that streamed although asked not to: collect its events.
        collect(wire, &bytes)
    } else {
        read_answer(wire, &bytes)
    };
    let answer = match answer {
        Ok(a) => a,
        Err(why) => {
            let why = format!("unreadable answer: {why}");
            let metrics = state.metrics.as_ref();
            return Err(failed(c.lease, FailureKind::Body, &why, metrics));
        }
    };
    finish(c.lease, Outcome::Success, state.metrics.as_ref());
    if req.stream {
        // The client asked for a stream but the provider answered whole: replay it as one.
        let mut enc = ingress.encoder(req);
        let mut out = BytesMut::new();
        for e in events_of(&answer) {
            enc.encode(&e, &mut out);
        }
        res.insert_header((header::CONTENT_TYPE, ingress.stream_content_type()));
        let body = staged(state, call, out.freeze())?;
        // Answered whole: checked whole, so a refusal is an ordinary error response.
        let api = call.plan.api;
        state
            .stages
            .check_whole(api, call.ctx, client, &body)
            .await?;
        return Ok(res.body(body));
    }
    let took = duration_ns(call.started.elapsed());
    let v = ingress.write_response(&answer, &answering, took);
    res.insert_header((header::CONTENT_TYPE, "application/json"));
    let body = staged(state, call, Bytes::from(v.to_string()))?;
    let api = call.plan.api;
    state
        .stages
        .check_whole(api, call.ctx, client, &body)
        .await?;
    Ok(res.body(body))
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn collect(wire: Wire, bytes: &[u8]) -> Result<Response, String> {
    let mut d = decoder(wire);
    let mut events = Vec::new();
    d.feed(bytes, &mut events);
    let mut col = Collector::default();
    events.iter().for_each(|e| col.push(e));
    match (d.finished(), col.response) {
        (true, Some(r)) => Ok(r),
        _ => Err("the stream ended before its final frame".to_string()),
    }
}

/// Converts an embeddings answer into the client's shape.
async fn convert_embed(
    c: Committed,
    state: &AppState,
    call: &Call<'_>,
    req: &EmbedRequest,
) -> Result<HttpResponse, RouterError> {
    let (mut c, bytes) = read_whole(c, state, call).await?;
    let mut res = HttpResponse::Ok();
    routed_headers(&mut res, &mut c, false);
    let answer = match embeddings::read_response(&bytes) {
        Ok(a) => a,
        Err(why) => {
            let why = format!("unreadable embeddings answer: {why}");
            let metrics = state.metrics.as_ref();
            return Err(failed(c.lease, FailureKind::Body, &why, metrics));
        }
    };
    finish(c.lease, Outcome::Success, state.metrics.as_ref());
    let v = embeddings::write_response(req, &answer);
    res.insert_header((header::CONTENT_TYPE, "application/json"));
    Ok(res.body(staged(state, call, Bytes::from(v.to_string()))?))
}
