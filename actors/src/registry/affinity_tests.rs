//! Cache affinity in the selection core: with every strategy a session keeps its provider, the
//! registry's filter still applies (exclusions, capacity), a remembered placement from another
//! replica is honoured, and sessionless requests are the strategy's.

use super::selection::Decision;
use super::selection_tests::{capped, p, H, MS};
use crate::provider::Outcome;
use crate::routing::affinity::{SessionInputs, SessionKey};
use crate::routing::{AffinityConfig, PlacementReason};
use crate::strategies::StrategyKind;

fn session(id: &str) -> SessionKey {
    SessionKey::derive(&SessionInputs {
        session_id: Some(id),
        ..Default::default()
    })
    .unwrap()
}

fn h(kind: StrategyKind, cap: Option<u32>) -> H {
    let providers = ["a", "b", "c", "d"]
        .iter()
        .map(|id| cap.map_or_else(|| p(id), |c| capped(id, c)))
        .collect();
    let mut h = H::new(kind, providers);
    h.core.set_affinity(Some(AffinityConfig::default()));
    h
}

/// Chooses for `key`, excluding `exclude`, expecting a grant: (provider id, placement reason).
fn pick(
    h: &mut H,
    key: Option<SessionKey>,
    exclude: &[&str],
    at: u64,
) -> (String, Option<PlacementReason>, super::selection::Grant) {
    let now = h.t0 + MS * at as u32;
    let exclude = exclude.iter().map(|s| s.to_string()).collect();
    match h.core.choose("m", exclude, key, now, now, &mut h.fx) {
        Decision::Granted(g) => (
            g.snapshot.config.id.clone(),
            g.affinity.map(|(_, p)| p.reason),
            g,
        ),
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn a_session_keeps_its_provider_under_every_strategy() {
    for kind in StrategyKind::ALL {
        let mut h = h(kind, None);
        let k = session("s-1");
        let (first, reason, g) = pick(&mut h, Some(k), &[], 0);
        assert_eq!(reason, Some(PlacementReason::RingOwner), "{kind}");
        h.release(g, Outcome::Success, MS);
        for turn in 1..8u64 {
            // Other traffic in between moves the strategy's own choice around.
            let (_, none, other) = pick(&mut h, None, &[], turn * 10);
            assert_eq!(
                none, None,
                "{kind}: sessionless requests are the strategy's"
            );
            // Released at once: with one request in flight the load bound is strict.
            h.release(other, Outcome::Success, MS * (turn as u32 * 10));
            let (again, reason, g) = pick(&mut h, Some(k), &[], turn * 10 + 1);
            assert_eq!(
                (again.as_str(), reason),
                (first.as_str(), Some(PlacementReason::LastServed)),
                "{kind} turn {turn}"
            );
            h.release(g, Outcome::Success, MS * (turn as u32 * 10 + 2));
        }
    }
}

#[test]
fn the_registry_filter_still_applies_and_replicas_placements_are_honoured() {
    // first_available: capacity 1 each. A busy provider is not a candidate, so the session is
    // placed elsewhere among the free ones (and remembered there).
    let mut h = h(StrategyKind::FirstAvailable, Some(1));
    let k = session("s-2");
    let (owner, _, held) = pick(&mut h, Some(k), &[], 0);
    let (second, reason, g2) = pick(&mut h, Some(k), &[], 1);
    assert_ne!(second, owner);
    assert_eq!(reason, Some(PlacementReason::Moved));
    h.release(held, Outcome::Success, MS * 2);
    h.release(g2, Outcome::Success, MS * 3);
    // Excluded (a failed attempt): never chosen, whatever affinity says.
    let (third, _, g3) = pick(&mut h, Some(k), &[&second], 4);
    assert_ne!(third, second);
    h.release(g3, Outcome::Success, MS * 5);
    // Another replica served the session on "d" last (read from Redis): followed.
    h.core.remember_session("m", k, "d", h.t0 + MS * 6);
    let (id, reason, _) = pick(&mut h, Some(k), &[], 7);
    assert_eq!(
        (id.as_str(), reason),
        ("d", Some(PlacementReason::LastServed))
    );
    // Unknown model or provider names are ignored.
    h.core.remember_session("nope", k, "a", h.t0);
    h.core.remember_session("m", k, "zz", h.t0);
}

#[test]
fn affinity_off_leaves_every_choice_to_the_strategy() {
    let mut h = H::new(StrategyKind::Balanced, vec![p("a"), p("b")]);
    let k = session("s-3");
    let (_, reason, _) = pick(&mut h, Some(k), &[], 0);
    assert_eq!(reason, None);
    assert!(h.core.affinity().is_none());
}
