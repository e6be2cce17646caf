//! One probe: a short streamed chat request sent straight to one provider (its own wire format,
//! written by the same dialect writers as any request), timed: time to the first text token,
//! tokens per second after it, success. Off the request path: no lease is taken, so a probe
//! does not count in the provider's load or stats.

use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use awc::http::header;
use futures_util::StreamExt;
use llm_router_actors::wire::Wire;
use llm_router_actors::ProviderConfig;
use serde::{Deserialize, Serialize};

use crate::dialects::canonical::{Event, Message, Request, Role};
use crate::relay::plan::{decoder, Plan};

/// What one probe measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub ok: bool,
    /// Milliseconds from sending to the first text token.
    pub ttft_ms: Option<f64>,
    /// Output tokens after the first, per second of generation (the usage count when the
    /// provider reports one, else one per text frame).
    pub tokens_per_s: Option<f64>,
    pub tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Unix seconds.
    pub measured_at: u64,
}

impl Measurement {
    fn failed(error: String) -> Measurement {
        Measurement {
            ok: false,
            ttft_ms: None,
            tokens_per_s: None,
            tokens: 0,
            error: Some(error),
            measured_at: crate::dialects::canonical::unix_now(),
        }
    }
}

/// Sends `prompt` to provider `p` (serving public model `model`) and measures the answer.
pub async fn probe(
    client: &awc::Client,
    p: &ProviderConfig,
    model: &str,
    prompt: &str,
    max_tokens: u64,
    timeout: Duration,
) -> Measurement {
    let mut req = Request::new(model);
    req.messages.push(Message::text(Role::User, prompt));
    req.options.max_tokens = Some(max_tokens);
    req.stream = true;
    req.stream_usage = true;
    let plan = Plan::built(req);
    let out = match plan.outgoing(p, model) {
        Ok(o) => o,
        Err(e) => return Measurement::failed(format!("cannot write the probe: {e}")),
    };
    let wire = Wire::of(p.api_type);
    let sent = Instant::now();
    let deadline = sent + timeout;
    let r = client
        .post(llm_router_actors::wire::url(p, out.path))
        .timeout(timeout)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ACCEPT, wire.accept(true)));
    let r = wire.profile().authorise(r, p);
    let mut resp = match r.send_body(out.body).await {
        Ok(r) => r,
        Err(_) => return Measurement::failed("connection failed or timed out".into()),
    };
    if !resp.status().is_success() {
        return Measurement::failed(format!("answered {}", resp.status().as_u16()));
    }
    let mut body = resp.take_payload();
    let mut dec = decoder(wire);
    let mut events = Vec::new();
    let (mut first, mut last) = (None::<Instant>, sent);
    let (mut frames, mut usage_out) = (0u64, 0u64);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = match tokio::time::timeout(left, body.next()).await {
            Err(_) => return Measurement::failed("timed out".into()),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Measurement::failed("the answer broke off".into()),
            Ok(Some(Ok(c))) => c,
        };
        dec.feed(&chunk, &mut events);
        let now = Instant::now();
        for e in events.drain(..) {
            match e {
                Event::Text(t) if !t.is_empty() => {
                    first.get_or_insert(now);
                    last = now;
                    frames += 1;
                }
                Event::Usage(u) if u.output > 0 => usage_out = u.output,
                Event::Error(m) => {
                    return Measurement::failed(format!(
                        "error in the stream: {}",
                        m.chars().take(200).collect::<String>()
                    ))
                }
                _ => {}
            }
        }
        if dec.finished() {
            break;
        }
    }
    let Some(first) = first else {
        return Measurement::failed("no text in the answer".into());
    };
    let tokens = if usage_out > 0 { usage_out } else { frames };
    // Generation time after the first token, at least a millisecond (a fake answers at once).
    let gen = last.duration_since(first).as_secs_f64().max(0.001);
    Measurement {
        ok: true,
        ttft_ms: Some(first.duration_since(sent).as_secs_f64() * 1000.0),
        tokens_per_s: Some(tokens.saturating_sub(1) as f64 / gen),
        tokens,
        error: None,
        measured_at: crate::dialects::canonical::unix_now(),
    }
}
