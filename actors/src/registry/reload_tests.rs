//! The selection core across reloads: leases of earlier generations, kept and removed slots,
//! queues, the catch-all model. Instants are `t0 + offset`; nothing sleeps.

use std::time::Duration;

use super::selection::{Decision, Origin};
use super::selection_tests::{models, p, H, MS, S};
use crate::config::{ModelConfig, ProviderConfig};
use crate::provider::{FailureKind, HealthView, Outcome};
use crate::strategies::StrategyKind;

impl H {
    fn reload(&mut self, config: crate::config::ModelsConfig, at: Duration) -> Vec<Vec<Origin>> {
        let gone = &self.gone;
        self.core.reload(
            &config,
            self.t0 + at,
            &|id| !gone.contains(&id),
            &mut self.fx,
        )
    }

    fn ids(&self) -> Vec<String> {
        self.core
            .snapshots()
            .map(|(_, _, s)| s.config.id.clone())
            .collect()
    }
}

fn capped(id: &str, cap: u32) -> ProviderConfig {
    ProviderConfig {
        max_concurrency: Some(cap),
        ..p(id)
    }
}

#[test]
fn origins_say_which_provider_actors_are_reused_rebound_or_new() {
    let mut h = H::new(StrategyKind::Balanced, vec![p("a"), p("b"), p("c")]);
    let heavier = ProviderConfig {
        weight: 2.0,
        ..p("b")
    };
    let moved = ProviderConfig {
        api_host: "http://elsewhere:8000".into(),
        ..p("c")
    };
    let origins = h.reload(
        models(vec![("m", vec![p("a"), heavier, moved, p("d")])]),
        MS,
    );
    assert_eq!(
        origins,
        [vec![
            Origin::Same(0, 0),
            Origin::Carried(0, 1),
            Origin::Fresh,
            Origin::Fresh
        ]],
        "a unchanged, b re-weighted, c on another host, d new"
    );
    assert_eq!(h.ids(), ["a", "b", "c", "d"]);
}

#[test]
fn leases_out_during_reloads_release_into_the_slot_their_provider_has_now() {
    let mut h = H::new(StrategyKind::Balanced, vec![p("a"), p("b")]);
    let on_a = h.grant(Duration::ZERO);
    let on_b = h.grant(MS);
    assert_eq!(h.in_flight(), [1, 1]);
    // b goes, a moves behind a new provider: its slot index changes.
    h.reload(models(vec![("m", vec![p("z"), p("a")])]), 2 * MS);
    assert_eq!(h.ids(), ["z", "a"]);
    assert_eq!(
        h.in_flight(),
        [0, 1],
        "a's lease is still counted, in its new slot"
    );
    h.release(on_b, Outcome::Success, 3 * MS);
    assert!(
        h.effects().is_empty(),
        "a removed provider's release reports nothing"
    );
    // A second reload while a's lease is still out: the mapping follows.
    h.reload(models(vec![("m", vec![p("a"), p("y"), p("z")])]), 4 * MS);
    assert_eq!(h.in_flight(), [1, 0, 0]);
    h.release(on_a, Outcome::Success, 5 * MS);
    assert_eq!(h.effects(), ["report a Success"]);
    assert_eq!(h.in_flight(), [0, 0, 0]);
}

#[test]
fn a_kept_provider_keeps_its_health_and_a_changed_one_carries_it() {
    let mut h = H::new(StrategyKind::Balanced, vec![p("a"), p("b")]);
    for i in 0..2 {
        let mut a = h.actor(i, 1, 30 * S);
        a.apply(&h.report(Outcome::Failure(FailureKind::Connect), MS));
    }
    let open = |h: &H| -> Vec<HealthView> {
        h.core
            .snapshots()
            .map(|(_, _, s)| s.health(h.t0 + 2 * MS))
            .collect()
    };
    assert_eq!(open(&h), [HealthView::Open, HealthView::Open]);
    let b_faster = ProviderConfig {
        timeout: Some(S),
        ..p("b")
    };
    let b_moved = ProviderConfig {
        api_host: "http://b2:8000".into(),
        ..p("b")
    };
    h.reload(models(vec![("m", vec![p("a"), b_faster])]), 2 * MS);
    assert_eq!(open(&h), [HealthView::Open, HealthView::Open]);
    assert_eq!(
        h.core.snapshots().nth(1).unwrap().2.config.timeout,
        Some(S),
        "the new settings apply"
    );
    h.reload(models(vec![("m", vec![p("a"), b_moved])]), 3 * MS);
    assert_eq!(
        open(&h),
        [HealthView::Open, HealthView::Healthy],
        "another api_host is another endpoint: fresh state"
    );
}

#[test]
fn a_removed_provider_takes_no_new_requests_and_an_added_one_does() {
    let mut h = H::new(StrategyKind::Balanced, vec![p("a"), p("b")]);
    let held = h.grant(Duration::ZERO);
    h.reload(models(vec![("m", vec![p("c")])]), MS);
    for i in 0..3 {
        let g = h.grant((2 + i) * MS);
        assert_eq!(g.snapshot.config.id, "c");
        h.release(g, Outcome::Success, (2 + i) * MS);
    }
    h.release(held, Outcome::Cancelled, 9 * MS);
    assert_eq!(h.in_flight(), [0]);
}

#[test]
fn queues_follow_their_model_and_a_removed_models_waiters_are_refused() {
    let mut h = H::with(
        StrategyKind::Balanced,
        models(vec![
            ("m", vec![capped("a", 1)]),
            ("n", vec![capped("b", 1)]),
        ]),
        None,
    );
    let held_m = h.grant(Duration::ZERO);
    let w_m = h.queued(10 * S, MS);
    let held_n = match h.choose_in("n", &[], Duration::ZERO, MS) {
        Decision::Granted(g) => g,
        other => panic!("{other:?}"),
    };
    let w_n = match h.choose_in("n", &[], 10 * S, MS) {
        Decision::Queued(w) => w,
        other => panic!("{other:?}"),
    };
    // m gains a provider, n goes away.
    h.reload(
        models(vec![("m", vec![capped("a", 1), capped("c", 1)])]),
        2 * MS,
    );
    let fx = h.effects();
    assert_eq!(fx.len(), 2, "{fx:?}");
    assert!(
        fx[0].starts_with(&format!("refuse w{w_n} UnknownModel")),
        "{fx:?}"
    );
    assert_eq!(
        fx[1],
        format!("grant w{w_m} c"),
        "the new capacity serves m's queue"
    );
    h.release(held_m, Outcome::Success, 3 * MS);
    h.release(held_n, Outcome::Success, 3 * MS);
    assert_eq!(h.effects(), ["report a Success"]);
}

#[test]
fn the_catch_all_model_serves_any_name_and_leases_carry_the_name_asked_for() {
    let mut config = models(vec![("m", vec![p("a")])]);
    config.wildcard = Some(ModelConfig {
        name: "*".into(),
        providers: vec![p("any")],
        ..Default::default()
    });
    let mut h = H::with(StrategyKind::Balanced, config, None);
    for (asked, provider, alias) in [
        ("m", "a", None),
        ("gpt-4o-mini", "any", Some("gpt-4o-mini")),
        ("llama3.1:8b", "any", Some("llama3.1:8b")),
    ] {
        let g = match h.choose_in(asked, &[], Duration::ZERO, MS) {
            Decision::Granted(g) => g,
            other => panic!("{asked}: {other:?}"),
        };
        assert_eq!(g.snapshot.config.id, provider, "{asked}");
        assert_eq!(g.alias.as_deref(), alias, "{asked}");
        h.release(g, Outcome::Success, 2 * MS);
    }
    // Without the catch-all, an unknown name is refused.
    h.reload(models(vec![("m", vec![p("a")])]), 3 * MS);
    assert!(matches!(
        h.choose_in("gpt-4o-mini", &[], Duration::ZERO, 4 * MS),
        Decision::Refused(crate::registry::ChooseError::UnknownModel { .. })
    ));
}

#[test]
fn a_redis_acquire_out_when_its_provider_is_removed_gives_the_token_back_and_queues_again() {
    let mut h = H::shared(StrategyKind::FirstAvailable, vec![p("a")]);
    let w = h.queued(5 * S, Duration::ZERO);
    assert_eq!(
        h.effects(),
        [format!("acquire w{w} a r:1 cap 1 released []")]
    );
    h.reload(models(vec![("m", vec![p("b")])]), MS);
    assert!(h.effects().is_empty(), "the waiter's acquire is still out");
    h.acquired(super::selection::Acquired::Taken, 2 * MS);
    assert_eq!(
        h.effects(),
        [
            "release-token a r:1".to_string(),
            format!("acquire w{w} b r:2 cap 1 released []"),
        ],
        "a's slot goes back to Redis, the request asks for b"
    );
    h.acquired(super::selection::Acquired::Taken, 3 * MS);
    assert_eq!(
        h.effects(),
        ["count m b".to_string(), format!("grant w{w} b token r:2")]
    );
    let g = h.granted.remove(&w).unwrap();
    h.release(g, Outcome::Success, 4 * MS);
    assert_eq!(h.effects(), ["release-token b r:2", "report b Success"]);
    assert_eq!(h.in_flight(), [0]);
}

#[test]
fn an_unchanged_model_keeps_its_strategys_rotation() {
    let weighted = |id: &str, w: f64| ProviderConfig { weight: w, ..p(id) };
    let config = || models(vec![("m", vec![weighted("a", 2.0), weighted("b", 1.0)])]);
    let picks = |h: &mut H, from: u32, n: u32| -> Vec<String> {
        (from..from + n)
            .map(|i| {
                let g = h.grant(i * MS);
                let id = g.snapshot.config.id.clone();
                h.release(g, Outcome::Success, i * MS);
                id
            })
            .collect()
    };
    let mut straight = H::with(StrategyKind::Weighted, config(), None);
    let want = picks(&mut straight, 0, 6);
    let mut reloaded = H::with(StrategyKind::Weighted, config(), None);
    let mut got = picks(&mut reloaded, 0, 2);
    reloaded.reload(config(), 2 * MS);
    got.extend(picks(&mut reloaded, 3, 4));
    assert_eq!(
        got, want,
        "a reload of the same providers does not restart the rotation"
    );
}

#[test]
fn a_removed_providers_redis_lease_is_renewed_until_its_request_ends() {
    let mut h = H::shared(StrategyKind::FirstAvailable, vec![p("a")]);
    let w = h.queued(5 * S, Duration::ZERO);
    h.effects();
    h.acquired(super::selection::Acquired::Taken, MS);
    h.effects();
    let g = h.granted.remove(&w).unwrap();
    h.reload(models(vec![("m", vec![p("b")])]), 2 * MS);
    let held = |h: &H| h.core.held_tokens();
    assert_eq!(
        held(&h),
        [("a".to_string(), "r:1".to_string())],
        "still renewed: its stream runs"
    );
    h.release(g, Outcome::Success, 3 * MS);
    assert_eq!(h.effects(), ["release-token a r:1"]);
    assert!(held(&h).is_empty());
}
