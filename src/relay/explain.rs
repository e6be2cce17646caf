//! `x-llm-router-decision` (SPEC §7): how the committed request was routed, built once per request
//! when it commits — never per chunk — and put on the response head and the request's trace span.
//!
//! Keys, in order: `auto`, `intent`, `complexity`, `tokens` (model `auto`); `strategy`;
//! `fallback` (each model fallen back to); `model` (the model that serves); `candidates` (its
//! providers); `affinity`, `affinity_reason`, `affinity_key` (cache affinity); `retry` (each failed
//! attempt: provider, cause); `chosen`, `why`.

use std::rc::Rc;

use actix_web::http::header::HeaderValue;
use llm_router_actors::routing::decision::DecisionSummary;
use llm_router_actors::{FailureKind, StrategyKind};

use super::attempt::Committed;
use super::Call;
use crate::errors::Attempt;
use crate::handlers::AppState;

pub use llm_router_actors::routing::decision::HEADER;

/// A failure's short cause (`[a-z0-9_]`).
fn cause(kind: FailureKind) -> String {
    match kind {
        FailureKind::Connect => "connect".into(),
        FailureKind::Timeout(_) => "timeout".into(),
        FailureKind::Status(s) => format!("status_{s}"),
        FailureKind::RateLimited(_) => "status_429".into(),
        FailureKind::Body => "body".into(),
    }
}

/// Why the strategy picked what it picked.
fn strategy_reason(kind: StrategyKind) -> &'static str {
    match kind {
        StrategyKind::Balanced => "least_loaded",
        StrategyKind::Weighted => "weighted_share",
        StrategyKind::DynamicWeighted => "dynamic_weight",
        StrategyKind::FirstAvailable => "first_free",
        StrategyKind::FirstAvailableOptim => "warm_or_first_free",
        StrategyKind::Adaptive => "fastest_of_two",
    }
}

/// The summary of `c`, after `attempts` failed and `fallbacks` were taken; also recorded on the
/// current (request) span.
pub fn decision(
    state: &AppState,
    call: &Call<'_>,
    c: &Committed,
    attempts: &[Attempt],
    fallbacks: &[String],
) -> Option<HeaderValue> {
    let s = &state.settings;
    let pool = &c.lease.snapshot().model;
    let providers = s.models.model(pool).map_or(&[][..], |m| &m.providers[..]);
    let span = tracing::Span::current();
    // The usual request: the strategy's first choice and nothing else to tell. Its summary
    // depends only on the key below, so it is made once per worker thread and reused.
    let plain = call.ctx.auto.is_none()
        && fallbacks.is_empty()
        && attempts.is_empty()
        && c.lease.affinity().is_none();
    let key = plain.then(|| PlainKey {
        config: providers.as_ptr() as usize,
        strategy: s.strategy,
        model: c.lease.model(),
        chosen: &c.lease.provider().id,
    });
    if let Some((value, summary)) = key.as_ref().and_then(PlainKey::cached) {
        if !span.is_disabled() {
            record(&span, value.to_str().unwrap_or_default(), &summary);
        }
        return Some(value);
    }
    let mut d = DecisionSummary::new();
    if let Some(a) = &call.ctx.auto {
        a.explain(&mut d);
    }
    d.strategy(s.strategy.as_str());
    for f in fallbacks {
        d.fallback(f);
    }
    d.push("model", c.lease.model());
    d.push_list("candidates", providers.iter().map(|p| p.id.as_str()));
    let placed = c.lease.affinity();
    if let Some((key, p)) = placed {
        d.affinity(p, key.source);
    }
    for a in attempts {
        d.retry(&a.provider, &cause(a.kind));
    }
    let why = match placed {
        Some(_) => "affinity",
        None if providers.len() == 1 => "only_provider",
        None if !attempts.is_empty() => "failover",
        None => strategy_reason(s.strategy),
    };
    d.chosen(&c.lease.provider().id, why);
    let value = d.header_value();
    record(&span, &value, &d);
    // Takes the string's buffer as it is (validated, not copied).
    let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).ok()?;
    if let Some(key) = key {
        key.keep(&value, d);
    }
    Some(value)
}

/// Puts the summary on the request span (when it is on): the whole value as `decision`, and
/// each pair the span declares as its own field.
fn record(span: &tracing::Span, value: &str, d: &DecisionSummary) {
    if span.is_disabled() {
        return;
    }
    // As text, not `Debug` (no quoting and escaping: the values are header-safe already).
    span.record("decision", tracing::field::display(value));
    for (k, v) in d.pairs() {
        // Only the fields the request span declares are kept (see telemetry).
        span.record(k, tracing::field::display(v));
    }
}

/// What a plain decision (see [`decision`]) depends on. `config` is the address of the pool's
/// providers in the models config it was read from: an installed config is never freed (see
/// `LiveModels`), so after a reload the same model has another address and another entry.
struct PlainKey<'a> {
    config: usize,
    strategy: StrategyKind,
    model: &'a str,
    chosen: &'a str,
}

/// Plain decisions kept per worker thread (cleared when full: reloads add entries).
const PLAIN_KEPT: usize = 256;

type Plain = (
    usize,
    StrategyKind,
    Box<str>,
    Box<str>,
    HeaderValue,
    Rc<DecisionSummary>,
);

thread_local! {
    static PLAIN: std::cell::RefCell<Vec<Plain>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl PlainKey<'_> {
    fn cached(&self) -> Option<(HeaderValue, Rc<DecisionSummary>)> {
        PLAIN.with_borrow(|kept| {
            kept.iter()
                .find(|(config, strategy, model, chosen, ..)| {
                    *config == self.config
                        && *strategy == self.strategy
                        && **model == *self.model
                        && **chosen == *self.chosen
                })
                .map(|hit| (hit.4.clone(), hit.5.clone()))
        })
    }

    fn keep(self, value: &HeaderValue, summary: DecisionSummary) {
        PLAIN.with_borrow_mut(|kept| {
            if kept.len() >= PLAIN_KEPT {
                kept.clear();
            }
            kept.push((
                self.config,
                self.strategy,
                self.model.into(),
                self.chosen.into(),
                value.clone(),
                Rc::new(summary),
            ));
        });
    }
}
