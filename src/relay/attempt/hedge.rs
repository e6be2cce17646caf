//! TTFT hedging (SPEC §11): with no commit by the hedge delay, a second provider is sent the
//! request too; the first to commit wins. The process-wide allowance caps hedges at
//! `LLM_ROUTER_HEDGE_MAX_FRACTION` of requests.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::future::Either;
use llm_router_actors::{ChooseProvider, FailureKind, Lease, Outcome};

use super::super::finish::finish;
use super::super::plan::Outgoing;
use super::super::Call;
use super::{attempt, Committed, NotCommitted};
use crate::errors::Attempt;
use crate::handlers::AppState;
use crate::settings::HedgeAfter;

/// The hedge allowance (SPEC §11, `LLM_ROUTER_HEDGE_MAX_FRACTION`), in thousandths of a hedge:
/// each request that may be hedged earns `fraction`, a hedge spends one whole; it starts with
/// one and holds at most [`HEDGE_BURST`]. Pure (an integer), so the cap is tested without a clock.
#[derive(Debug)]
pub struct HedgeBudget(AtomicU64);

const HEDGE_BURST: u64 = 2;

impl HedgeBudget {
    pub const fn new() -> HedgeBudget {
        HedgeBudget(AtomicU64::new(1000))
    }

    /// A request that may be hedged arrived.
    pub fn earn(&self, fraction: f64) {
        let add = (fraction.clamp(0.0, 1.0) * 1000.0) as u64;
        let _ = self.0.fetch_update(Relaxed, Relaxed, |b| {
            Some((b + add).min(HEDGE_BURST * 1000))
        });
    }

    /// Spends one hedge, if the allowance has one.
    pub fn spend(&self) -> bool {
        self.0
            .fetch_update(Relaxed, Relaxed, |b| b.checked_sub(1000))
            .is_ok()
    }
}

/// One budget per process (a process runs one router).
static HEDGES: HedgeBudget = HedgeBudget::new();

/// How long to wait for provider `lease`'s first byte before hedging, if hedging is on for
/// `model`: the model's `hedge_after_ms`, else `LLM_ROUTER_HEDGE_AFTER_MS`. `auto` is the
/// provider's p95 TTFT over the last five minutes (`/router/stats`' histograms) once it has
/// [`crate::stats::P95_MIN_CALLS`] calls there; before that twice its peak-sensitive TTFT average,
/// and no hedging before it has measured one.
fn hedge_delay(state: &AppState, model: &str, lease: &Lease) -> Option<Duration> {
    let s = &state.settings;
    let cfg = s.models.model(model)?;
    if cfg.providers.len() < 2 {
        // No second provider to hedge with: not even the timer.
        return None;
    }
    let h = cfg.hedge_after.or(s.hedge_after)?;
    match h {
        HedgeAfter::Fixed(d) => Some(d),
        HedgeAfter::Auto => state
            .metrics
            .as_ref()
            .and_then(|m| m.stats.ttft_p95(&lease.provider().id))
            .or_else(|| lease.snapshot().ttft().map(|t| t * 2)),
    }
}

/// Records a hedge's outcome (`first_won`, `hedge_won`, `both_failed`, `capped`, `no_provider`)
/// in `llm_router_hedges_total{outcome}` and the log.
fn count_hedge(metrics: Option<&crate::telemetry::Metrics>, outcome: &'static str) {
    tracing::info!(outcome, "hedge");
    if let Some(m) = metrics.filter(|m| m.exposed()) {
        m.hedges.with_label_values(&[outcome]).inc();
    }
}

/// One attempt, hedged when configured: with no commit by the hedge delay, a second provider
/// (one free at once, none is waited for) is sent the request too; the first to commit wins and
/// the other future is dropped — its upstream request cancelled, its lease released. A hedge
/// that fails is recorded like any failed attempt while the other runs on.
pub(super) async fn hedged(
    client: &awc::Client,
    state: &AppState,
    call: &Call<'_>,
    model: &str,
    lease: Lease,
    out: Outgoing,
    attempts: &mut Vec<Attempt>,
) -> Result<Committed, (Lease, NotCommitted)> {
    let Some(delay) = hedge_delay(state, model, &lease) else {
        return attempt(client, lease, out, call).await;
    };
    // Boxed: the race holds two attempts and a choice at once, and inline it would make every
    // request's future (unhedged ones too) several kilobytes larger, copied at each move.
    Box::pin(race(
        client, state, call, model, lease, out, attempts, delay,
    ))
    .await
}

/// The hedge itself: the first attempt, then after `delay` without a commit, the second.
#[allow(clippy::too_many_arguments)]
async fn race(
    client: &awc::Client,
    state: &AppState,
    call: &Call<'_>,
    model: &str,
    lease: Lease,
    out: Outgoing,
    attempts: &mut Vec<Attempt>,
    delay: Duration,
) -> Result<Committed, (Lease, NotCommitted)> {
    HEDGES.earn(state.settings.hedge_max_fraction);
    let first_id = lease.provider().id.clone();
    let first = attempt(client, lease, out, call);
    futures_util::pin_mut!(first);
    if let Ok(r) = tokio::time::timeout(delay, first.as_mut()).await {
        return r;
    }
    if state.settings.hedge_max_fraction <= 0.0 || !HEDGES.spend() {
        count_hedge(state.metrics.as_ref(), "capped");
        return first.await;
    }
    let now = Instant::now();
    let mut exclude: Vec<String> = attempts.iter().map(|a| a.provider.clone()).collect();
    exclude.push(first_id);
    let choice = state
        .chooser
        .choose(ChooseProvider {
            model: model.to_string(),
            exclude,
            deadline: now,
            // A hedge goes elsewhere on purpose: it is not the session's placement.
            session: None,
        })
        .await;
    let lease2 = match choice {
        Ok(c) => c.resolve().await.ok(),
        Err(_) => None,
    };
    let Some(lease2) = lease2 else {
        count_hedge(state.metrics.as_ref(), "no_provider");
        return first.await;
    };
    let Ok(out2) = call.plan.outgoing(lease2.provider(), lease2.model()) else {
        count_hedge(state.metrics.as_ref(), "no_provider");
        return first.await;
    };
    tracing::info!(provider = %lease2.provider().id, after_ms = delay.as_millis() as u64,
        "no first byte yet; hedging");
    let second = attempt(client, lease2, out2, call);
    futures_util::pin_mut!(second);
    let metrics = state.metrics.as_ref();
    let mut record = |lease: Lease, nc: NotCommitted| {
        let kind = match nc {
            NotCommitted::Failed(kind) => kind,
            _ => FailureKind::Connect,
        };
        let provider = lease.provider().id.clone();
        finish(lease, Outcome::Failure(kind), metrics);
        attempts.push(Attempt { provider, kind });
    };
    match futures_util::future::select(first.as_mut(), second.as_mut()).await {
        Either::Left((Ok(c), _)) => {
            count_hedge(state.metrics.as_ref(), "first_won");
            Ok(c)
        }
        Either::Right((Ok(c), _)) => {
            count_hedge(state.metrics.as_ref(), "hedge_won");
            Ok(c)
        }
        Either::Left((Err((lease, refused @ NotCommitted::Refused(..))), _))
        | Either::Right((Err((lease, refused @ NotCommitted::Refused(..))), _)) => {
            Err((lease, refused))
        }
        Either::Left((Err((lease, nc)), _)) => {
            record(lease, nc);
            let r = second.await;
            count_hedge(
                state.metrics.as_ref(),
                if r.is_ok() {
                    "hedge_won"
                } else {
                    "both_failed"
                },
            );
            r
        }
        Either::Right((Err((lease, nc)), _)) => {
            record(lease, nc);
            let r = first.await;
            count_hedge(
                state.metrics.as_ref(),
                if r.is_ok() {
                    "first_won"
                } else {
                    "both_failed"
                },
            );
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hedge_budget_caps_hedges_at_the_fraction_of_requests() {
        let b = HedgeBudget::new();
        // One hedge up front, then one per twenty requests at 0.05.
        assert!(b.spend());
        assert!(!b.spend());
        let mut hedged = 0;
        for _ in 0..200 {
            b.earn(0.05);
            if b.spend() {
                hedged += 1;
            }
        }
        assert_eq!(hedged, 10);
        // Unused allowance is held up to the burst, not hoarded.
        for _ in 0..1000 {
            b.earn(0.05);
        }
        assert!(b.spend() && b.spend());
        assert!(!b.spend());
    }
}
