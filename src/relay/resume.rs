//! Stream continuation (SPEC §11): a stream that failed after its first byte is continued on
//! another provider — the same model's first, then its `fallbacks` — and spliced into the
//! client's stream by [`super::body::RelayBody`].
//!
//! How the other provider is asked to continue depends on its type: an Anthropic provider gets
//! the text so far as a trailing assistant turn (prefill, trailing whitespace left out as the API
//! demands); a vLLM or llama.cpp server gets it as a final assistant message with
//! `continue_final_message: true` and `add_generation_prompt: false`; every other provider (and
//! one that refuses the prefill with a 4xx) is sent the original request again, and the text
//! already delivered is skipped — only when the new answer starts with exactly that text
//! ([`Skip::strict`]), else the stream ends with the in-band error.
//!
//! Invariants: nothing here runs unless `LLM_ROUTER_STREAM_RESUME` is on and the request streams;
//! at most [`MAX_RESUMES`] continuations per request; never once a tool-call delta began; every
//! lease taken here is finished (outcome recorded, released) on every path.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use awc::http::header;
use bytes::Bytes;
use futures_util::StreamExt;
use llm_router_actors::wire::Wire;
use llm_router_actors::Chooser;
use llm_router_actors::{ApiType, ChooseProvider, FailureKind, Lease, Outcome};

use super::client::UpstreamPayload;
use super::finish::finish;
use super::plan::{target_of, Ingress};
use crate::dialects::canonical::{Message, Request, Role};
use crate::dialects::{anthropic, ollama, openai};
use crate::settings::Settings;
use crate::telemetry::Metrics;

/// Most continuations of one stream.
pub const MAX_RESUMES: usize = 2;

/// What a stream needs to be continued elsewhere; built once per streamed response when resume
/// is on, shared by its continuations.
pub struct ResumeCtx {
    pub client: awc::Client,
    pub chooser: Chooser,
    pub settings: Arc<Settings>,
    pub metrics: Option<Metrics>,
    pub ingress: Ingress,
    pub request_id: String,
    pub deadline: Option<Instant>,
    /// The client's request: its body (read into the canonical model only if a continuation is
    /// needed), or the canonical request the plan already holds.
    pub body: Bytes,
    pub canonical: OnceCell<Rc<Request>>,
}

impl ResumeCtx {
    /// The client's request in the canonical model (read from its body on first use).
    pub fn request(&self) -> Result<Rc<Request>, String> {
        if let Some(r) = self.canonical.get() {
            return Ok(r.clone());
        }
        let mut r = self
            .ingress
            .read_request(&self.body)
            .map_err(|e| format!("the request cannot be re-read: {e}"))?;
        r.stream = true;
        Ok(self.canonical.get_or_init(|| Rc::new(r)).clone())
    }
}

/// Text at the start of a continuation that the client already has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skip {
    pub text: String,
    /// A mismatch ends the stream (a regenerated answer that is not the same answer); otherwise
    /// skipping just stops at the first difference (whitespace a prefill had to leave out).
    pub strict: bool,
}

impl Skip {
    /// Removes what is still to be skipped from the start of `t`; `Err` on a strict mismatch.
    pub fn apply(&mut self, t: &str) -> Result<String, ()> {
        if self.text.is_empty() {
            return Ok(t.to_string());
        }
        let n = common_prefix(&self.text, t);
        if n == t.len() {
            self.text.drain(..n);
            return Ok(String::new());
        }
        if n == self.text.len() {
            self.text.clear();
            return Ok(t[n..].to_string());
        }
        if self.strict {
            return Err(());
        }
        self.text.clear();
        Ok(t[n..].to_string())
    }
}

/// Length in bytes of the common prefix of `a` and `b`, on a char boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

/// A provider that took over the stream: its lease, wire, first chunk, the rest, and what to
/// skip of its text.
pub struct Resumed {
    pub lease: Lease,
    pub wire: Wire,
    pub first: Bytes,
    pub rest: UpstreamPayload,
    pub skip: Skip,
}

/// How a provider type can be asked to continue a turn.
fn prefills(api: ApiType) -> bool {
    matches!(api, ApiType::Anthropic | ApiType::Vllm | ApiType::LlamaCpp)
}

/// The continuation request for provider `p` of `model`: the path, the body, what to skip.
fn continuation_body(
    req: &Request,
    p: &llm_router_actors::ProviderConfig,
    model: &str,
    text: &str,
    prefill: bool,
) -> (&'static str, Bytes, Skip) {
    let wire = Wire::of(p.api_type);
    let target = target_of(p, model);
    let mut r = req.clone();
    r.stream = true;
    let mut skip = Skip {
        text: text.to_string(),
        strict: true,
    };
    if prefill && !text.is_empty() {
        let given = if wire == Wire::Anthropic {
            text.trim_end()
        } else {
            text
        };
        skip = Skip {
            text: text[given.len()..].to_string(),
            strict: false,
        };
        r.messages.push(Message::text(Role::Assistant, given));
    }
    let body = match wire {
        Wire::OpenAi => {
            let body = openai::write_chat(&r, &target);
            if prefill && !text.is_empty() {
                with_continue_flags(&body)
            } else {
                body
            }
        }
        Wire::Ollama => ollama::write_chat(&r, &target),
        Wire::Anthropic => anthropic::write_request(&r, &target),
    };
    let path = wire
        .profile()
        .path(llm_router_actors::wire::Endpoint::Chat)
        .expect("every wire chats");
    (path, body, skip)
}

/// vLLM's (and llama.cpp's) way to continue the final assistant message instead of answering it.
fn with_continue_flags(body: &Bytes) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("continue_final_message".into(), true.into());
            m.insert("add_generation_prompt".into(), false.into());
            Bytes::from(serde_json::Value::Object(m).to_string())
        }
        _ => body.clone(),
    }
}

/// Why a continuation attempt did not take over.
enum NotResumed {
    /// The provider refused this request (4xx): a prefill it does not take.
    Refused,
    Failed(FailureKind),
}

/// Finds a provider to continue the answer `text` of `model`, skipping `tried`; the same model
/// first, then its `fallbacks`.
pub async fn continuation(
    ctx: Rc<ResumeCtx>,
    model: String,
    text: String,
    mut tried: Vec<String>,
) -> Result<Resumed, String> {
    let req = ctx.request()?;
    let s = &ctx.settings;
    let mut models = vec![model.clone()];
    if let Some(cfg) = s.models.model(&model) {
        models.extend(cfg.fallbacks.iter().cloned());
    }
    let mut left = s.max_attempts;
    let mut last = String::from("no other provider could continue it");
    for m in models {
        while left > 0 {
            let now = Instant::now();
            if ctx.deadline.is_some_and(|d| now >= d) {
                return Err("the request reached the router's time limit".into());
            }
            let choice = ctx
                .chooser
                .choose(ChooseProvider {
                    model: m.clone(),
                    exclude: tried.clone(),
                    deadline: ctx
                        .deadline
                        .unwrap_or(now + s.external_timeout)
                        .min(now + Duration::from_secs(5)),
                    session: None,
                })
                .await
                .map_err(|e| format!("registry unavailable: {e}"))?;
            let Ok(mut lease) = choice.resolve().await else {
                break;
            };
            left -= 1;
            let p = lease.provider().clone();
            let mut prefill = prefills(p.api_type) && !text.is_empty();
            loop {
                let (path, body, skip) = continuation_body(&req, &p, &m, &text, prefill);
                match send(&ctx, &mut lease, path, body).await {
                    Ok((wire, first, rest)) => {
                        return Ok(Resumed {
                            lease,
                            wire,
                            first,
                            rest,
                            skip,
                        })
                    }
                    // No prefill here after all: the same provider regenerates the answer.
                    Err(NotResumed::Refused) if prefill => prefill = false,
                    Err(NotResumed::Refused) => {
                        last = format!("provider \"{}\" refused the continuation", p.id);
                        finish(lease, Outcome::Cancelled, ctx.metrics.as_ref());
                        break;
                    }
                    Err(NotResumed::Failed(kind)) => {
                        last = format!("provider \"{}\" failed too ({kind})", p.id);
                        finish(lease, Outcome::Failure(kind), ctx.metrics.as_ref());
                        break;
                    }
                }
            }
            tried.push(p.id.clone());
        }
    }
    Err(last)
}

/// Sends one continuation request and waits for its first body chunk.
async fn send(
    ctx: &ResumeCtx,
    lease: &mut Lease,
    path: &str,
    body: Bytes,
) -> Result<(Wire, Bytes, UpstreamPayload), NotResumed> {
    let p = lease.provider().clone();
    let wire = Wire::of(p.api_type);
    let sent = Instant::now();
    let mut budget = p
        .ttft_timeout
        .or(p.timeout)
        .unwrap_or(ctx.settings.external_timeout);
    if let Some(d) = ctx.deadline {
        budget = budget.min(d.saturating_duration_since(sent));
    }
    let req = ctx
        .client
        .post(llm_router_actors::wire::url(&p, path))
        .timeout(budget)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ACCEPT, wire.accept(true)))
        .insert_header(("x-request-id", ctx.request_id.as_str()));
    let req = wire.profile().authorise(req, &p);
    let mut resp = match req.send_body(body).await {
        Ok(r) => r,
        Err(awc::error::SendRequestError::Timeout) => {
            return Err(NotResumed::Failed(FailureKind::Timeout(sent.elapsed())))
        }
        Err(_) => return Err(NotResumed::Failed(FailureKind::Connect)),
    };
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(match status {
            400..=499 if !matches!(status, 401 | 403 | 404 | 408 | 429) => NotResumed::Refused,
            429 => NotResumed::Failed(FailureKind::RateLimited(None)),
            _ => NotResumed::Failed(FailureKind::Status(status)),
        });
    }
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !wire.framing_of(ct, None).is_stream() {
        return Err(NotResumed::Failed(FailureKind::Body));
    }
    let mut rest = resp.take_payload();
    let remaining = (sent + budget).saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, rest.next()).await {
        Ok(Some(Ok(first))) => {
            lease.first_byte(Instant::now());
            Ok((wire, first, rest))
        }
        Err(_) => Err(NotResumed::Failed(FailureKind::Timeout(sent.elapsed()))),
        Ok(_) => Err(NotResumed::Failed(FailureKind::Body)),
    }
}

/// Records a continuation's outcome (`resumed`, `failed`, `impossible`). The metric
/// `llm_router_stream_resumes_total{outcome}` belongs in `telemetry::Metrics` (not this module's
/// to change); until it is there the outcome is logged.
pub fn count(metrics: Option<&Metrics>, outcome: &'static str) {
    tracing::info!(outcome, "stream continuation");
    if let Some(m) = metrics.filter(|m| m.exposed()) {
        m.stream_resumes.with_label_values(&[outcome]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_the_delivered_text() {
        let strict = |t: &str| Skip {
            text: t.into(),
            strict: true,
        };
        // (what was delivered, pieces of the new answer, what the client gets, mismatch)
        let cases: &[(&str, &[&str], &str, bool)] = &[
            ("t0 t1 ", &["t0 ", "t1 ", "t2 "], "t2 ", false),
            ("t0 t1 ", &["t0 t", "1 t2 ", "t3 "], "t2 t3 ", false),
            ("t0 t1 ", &["t0 t1 t2 "], "t2 ", false),
            ("t0 t1 ", &["t0 ", "x1 "], "", true),
            ("", &["t0 "], "t0 ", false),
        ];
        for (delivered, pieces, want, mismatch) in cases {
            let mut skip = strict(delivered);
            let mut got = String::new();
            let mut failed = false;
            for p in *pieces {
                match skip.apply(p) {
                    Ok(t) => got.push_str(&t),
                    Err(()) => {
                        failed = true;
                        break;
                    }
                }
            }
            assert_eq!((got.as_str(), failed), (*want, *mismatch), "{delivered:?}");
        }
        // Lenient: whitespace a prefill left out is skipped if it comes, passed if not.
        let mut soft = Skip {
            text: " ".into(),
            strict: false,
        };
        assert_eq!(soft.apply(" t2 ").unwrap(), "t2 ");
        let mut soft = Skip {
            text: " ".into(),
            strict: false,
        };
        assert_eq!(soft.apply("t2 ").unwrap(), "t2 ");
    }
}
