//! The selection core with a shared store, driven directly: Redis acquires, token releases, the
//! 50 ms backoff, falling back to local state, and what a sync publishes and reads. The Redis
//! round trips themselves are the caller's; here their results are passed in.

use std::collections::HashMap;
use std::time::Duration;

use super::selection::Acquired;
use super::selection_tests::{models, p, H, MS, S};
use super::sync::SyncReply;
use super::ChooseError;
use crate::config::{ApiType, ProviderConfig};
use crate::provider::{FailureKind, Outcome};
use crate::strategies::StrategyKind;

#[test]
fn shared_capacity_is_taken_in_redis_and_given_back_with_the_lease() {
    let mut h = H::shared(StrategyKind::FirstAvailable, vec![p("a")]);
    let w1 = h.queued(5 * S, Duration::ZERO);
    assert_eq!(
        h.effects(),
        [format!("acquire w{w1} a r:1 cap 1 released []")]
    );
    assert_eq!(h.in_flight(), [0], "reserved locally, not yet published");
    let w2 = h.queued(5 * S, MS);
    assert!(
        h.effects().is_empty(),
        "the reserved slot is not asked for twice"
    );
    h.acquired(Acquired::Taken, 2 * MS);
    assert_eq!(
        h.effects(),
        ["count m a".to_string(), format!("grant w{w1} a token r:1")]
    );
    assert_eq!(h.core.held_tokens(), [("a".to_string(), "r:1".to_string())]);
    let g = h.granted.remove(&w1).unwrap();
    h.release(g, Outcome::Success, 3 * MS);
    assert_eq!(
        h.effects(),
        [
            "release-token a r:1".to_string(),
            "report a Success".to_string(),
            format!("acquire w{w2} a r:2 cap 1 released [\"r:1\"]"),
        ],
        "the next acquire removes the token whose release may still be in flight"
    );
    assert!(h.core.held_tokens().is_empty());
    h.core.token_released("a", "r:1");
    h.acquired(Acquired::Taken, 4 * MS);
    h.effects();
    let g = h.granted.remove(&w2).unwrap();
    h.release(g, Outcome::Success, 5 * MS);
    let w3 = h.queued(5 * S, 6 * MS);
    assert_eq!(
        h.effects()[2..],
        [format!("acquire w{w3} a r:3 cap 1 released [\"r:2\"]")],
        "r:1 confirmed: no longer sent"
    );
}

#[test]
fn a_provider_held_by_other_replicas_is_skipped_for_the_backoff() {
    let mut h = H::shared(StrategyKind::FirstAvailable, vec![p("a"), p("b")]);
    let w = h.queued(5 * S, Duration::ZERO);
    assert_eq!(
        h.effects(),
        [format!("acquire w{w} a r:1 cap 1 released []")]
    );
    h.acquired(Acquired::HeldElsewhere, MS);
    assert_eq!(
        h.effects(),
        [format!("acquire w{w} b r:2 cap 1 released []")],
        "looks again at once: the next provider"
    );
    h.acquired(Acquired::HeldElsewhere, 2 * MS);
    assert!(h.effects().is_empty(), "both held elsewhere: queued");
    assert_eq!(h.core.status(&|_| true)[0].queued, 1);
    h.serve_queues(50 * MS);
    assert!(h.effects().is_empty(), "a is backed off until 51 ms");
    h.serve_queues(51 * MS);
    assert_eq!(
        h.effects(),
        [format!("acquire w{w} a r:3 cap 1 released []")]
    );
}

#[test]
fn redis_failing_mid_acquire_grants_on_local_state() {
    let mut h = H::shared(StrategyKind::FirstAvailable, vec![p("a"), p("b")]);
    let w = h.queued(5 * S, Duration::ZERO);
    h.effects();
    h.acquired(Acquired::StoreDown, MS);
    assert_eq!(
        h.effects(),
        [format!("grant w{w} a")],
        "no token, no usage count"
    );
    assert!(!h.core.is_live());
    let b = h.grant(2 * MS);
    assert_eq!(b.snapshot.config.id, "b", "later choices are local");
    assert!(b.token.is_none() && h.effects().is_empty());
}

#[test]
fn a_token_is_released_in_redis_even_while_it_is_marked_down() {
    let mut h = H::shared(StrategyKind::FirstAvailable, vec![p("a")]);
    let w = h.queued(5 * S, Duration::ZERO);
    h.effects();
    h.acquired(Acquired::Taken, MS);
    h.effects();
    h.core.set_up(false);
    let g = h.granted.remove(&w).unwrap();
    h.release(g, Outcome::Success, 2 * MS);
    assert_eq!(h.effects(), ["release-token a r:1", "report a Success"]);
}

#[test]
fn uncapped_providers_with_redis_are_granted_at_once_and_counted() {
    let mut h = H::shared(StrategyKind::Balanced, vec![p("a")]);
    let g = h.grant(Duration::ZERO);
    assert!(g.token.is_none());
    assert_eq!(h.effects(), ["count m a"]);
}

#[test]
fn an_rpm_provider_is_admitted_through_the_shared_window() {
    let rpm = |id: &str| ProviderConfig {
        rpm: Some(2),
        ..p(id)
    };
    let mut h = H::shared(StrategyKind::Balanced, vec![rpm("a"), rpm("b")]);
    let w1 = h.queued(5 * S, Duration::ZERO);
    assert_eq!(
        h.effects(),
        [format!("acquire w{w1} a r:1 cap - released [] rpm 2/60s")],
        "an uncapped provider with rpm asks the shared window"
    );
    h.acquired(Acquired::Taken, MS);
    assert_eq!(
        h.effects(),
        ["count m a".to_string(), format!("grant w{w1} a")]
    );
    assert!(
        h.core.held_tokens().is_empty(),
        "an rpm start holds no lease to give back"
    );
    // Other replicas used a's minute: b is asked instead, then both are limited.
    let w2 = h.queued(5 * S, 2 * MS);
    let ask = h.effects();
    assert_eq!(ask.len(), 1, "{ask:?}");
    h.acquired(Acquired::RateLimited(30 * S), 3 * MS);
    let placed = h.effects();
    let other = if ask[0].contains(" a ") { "b" } else { "a" };
    assert_eq!(
        placed,
        [format!(
            "acquire w{w2} {other} r:3 cap - released [] rpm 2/60s"
        )],
        "the limited provider is skipped"
    );
    h.acquired(Acquired::RateLimited(20 * S), 4 * MS);
    let refused = h.effects();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with(&format!("refuse w{w2} RateLimited")),
        "{refused:?}"
    );
    assert!(
        refused[0].contains("retry_after: 20s"),
        "the sooner of the two waits: {refused:?}"
    );
}

#[test]
fn sync_publishes_what_changed_once_and_reads_other_replicas() {
    let t = |s: &str| s.to_string();
    let config = models(vec![
        ("m", vec![p("a"), p("b")]),
        (
            "n",
            vec![ProviderConfig::new("n1", "http://a:8000/v1", ApiType::Vllm)],
        ),
    ]);
    let mut h = H::with(StrategyKind::Balanced, config, Some("r"));
    h.core.set_connected();
    let now_ms = 1_000_000;
    let _n = h.choose_in("n", &[], S, 2 * S);
    h.actor(1, 1, 5 * S)
        .apply(&h.report(Outcome::Failure(FailureKind::Connect), S));
    let req = h.core.sync_request(h.t0 + 2 * S, now_ms);
    assert!(!req.was_up);
    assert_eq!(req.replica, "r");
    assert_eq!(req.providers, ["a", "b", "n1"]);
    assert_eq!(req.models, ["m", "n"]);
    assert_eq!(
        req.publish,
        [(t("b"), now_ms + 4000, 4 * S)],
        "b's circuit: 4 s left"
    );
    assert_eq!(
        req.hosts,
        ["http://a:8000", "http://b:8000"],
        "n1 shares a's host"
    );
    assert_eq!(
        req.occupancy,
        [
            (t("http://a:8000"), vec![(t("n"), 1)]),
            (t("http://b:8000"), vec![])
        ]
    );
    assert_eq!(req.lasts, [(t("http://a:8000"), t("n"), now_ms)]);
    let again = h.core.sync_request(h.t0 + 3 * S, now_ms + 1000);
    assert!(
        again.publish.is_empty() && again.lasts.is_empty(),
        "published once"
    );

    let reply = SyncReply {
        circuits: vec![Some(now_ms + 500), None, None],
        usage: vec![
            [(t("a"), 7), (t("b"), 3)].into_iter().collect(),
            HashMap::new(),
        ],
        busy: vec![vec![(t("other"), t("m"), 1), (t("r"), t("n"), 1)], vec![]],
        last: vec![Some((now_ms - 200, t("m"))), None],
    };
    h.core.apply_sync(reply, h.t0 + 3 * S, now_ms);
    assert!(h.core.is_live());
    assert_eq!(
        h.refused(&["b"], S, 3 * S),
        ChooseError::NoHealthyProvider {
            model: t("m"),
            unhealthy: vec![t("a")]
        },
        "a is open elsewhere for 500 ms"
    );
    let views = h.core.keep_alive();
    assert!(views.is_empty(), "no keep_alive providers");
    let _ = h.effects();
}

#[test]
fn usage_and_hosts_seen_in_redis_steer_the_strategies() {
    let t = |s: &str| s.to_string();
    let now_ms = 1_000_000;
    // Balanced breaks ties on requests started by all replicas.
    let mut h = H::shared(StrategyKind::Balanced, vec![p("a"), p("b")]);
    let reply = SyncReply {
        usage: vec![[(t("a"), 7), (t("b"), 3)].into_iter().collect()],
        ..Default::default()
    };
    h.core.apply_sync(reply, h.t0, now_ms);
    assert_eq!(h.grant(MS).snapshot.config.id, "b");
    // first_available_optim: warm where another replica last served the model, and away from
    // a host another replica keeps busy with another model.
    let config = models(vec![
        ("m", vec![p("a"), p("b"), p("c")]),
        ("n", vec![p("x")]),
    ]);
    let mut h = H::with(StrategyKind::FirstAvailableOptim, config, Some("r"));
    h.core.set_connected();
    let reply = SyncReply {
        busy: vec![vec![(t("other"), t("n"), 1)], vec![], vec![], vec![]],
        last: vec![None, None, Some((now_ms - 100, t("m"))), None],
        ..Default::default()
    };
    h.core.apply_sync(reply, h.t0, now_ms);
    h.core.set_up(false); // choose locally: the verdicts stay
    assert_eq!(h.grant(MS).snapshot.config.id, "c", "warm host");
    assert_eq!(
        h.grant(2 * MS).snapshot.config.id,
        "b",
        "a's host is busy with n"
    );
}
