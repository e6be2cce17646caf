//! The selection core driven directly: instants are `t0 + offset`, effects are read back as
//! short descriptions, nothing sleeps and no actor runs.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::selection::{Acquire, Acquired, Decision, Effect, Grant, Selection, WaiterId};
use super::sync::SyncReply;
use super::ChooseError;
use crate::config::{ApiType, ModelConfig, ModelsConfig, ProviderConfig};
use crate::health::Breaker;
use crate::provider::{FailureKind, Outcome, ProviderActor, ReportOutcome};
use crate::strategies::StrategyKind;

pub(super) const MS: Duration = Duration::from_millis(1);
pub(super) const S: Duration = Duration::from_secs(1);

pub(super) fn p(id: &str) -> ProviderConfig {
    ProviderConfig::new(id, &format!("http://{id}:8000"), ApiType::Vllm)
}

pub(super) fn capped(id: &str, cap: u32) -> ProviderConfig {
    ProviderConfig {
        max_concurrency: Some(cap),
        ..p(id)
    }
}

pub(super) fn models(models: Vec<(&str, Vec<ProviderConfig>)>) -> ModelsConfig {
    ModelsConfig {
        models: models
            .into_iter()
            .map(|(name, providers)| ModelConfig {
                name: name.into(),
                group: "g".into(),
                providers,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The core, a clock origin, and what its effects handed out.
pub(super) struct H {
    pub(super) core: Selection,
    pub(super) t0: Instant,
    pub(super) fx: Vec<Effect>,
    pub(super) gone: HashSet<WaiterId>,
    pub(super) granted: HashMap<WaiterId, Grant>,
    pub(super) acquires: Vec<Acquire>,
}

impl H {
    pub(super) fn new(kind: StrategyKind, providers: Vec<ProviderConfig>) -> H {
        H::with(kind, models(vec![("m", providers)]), None)
    }

    pub(super) fn with(kind: StrategyKind, config: ModelsConfig, replica: Option<&str>) -> H {
        H {
            core: Selection::new(&config, kind, replica.map(str::to_string)),
            t0: Instant::now(),
            fx: Vec::new(),
            gone: HashSet::new(),
            granted: HashMap::new(),
            acquires: Vec::new(),
        }
    }

    /// A core whose Redis is connected and up.
    pub(super) fn shared(kind: StrategyKind, providers: Vec<ProviderConfig>) -> H {
        let mut h = H::with(kind, models(vec![("m", providers)]), Some("r"));
        h.core.set_connected();
        h.core.apply_sync(SyncReply::default(), h.t0, 1_000_000);
        assert!(h.core.is_live());
        h
    }

    pub(super) fn choose_in(
        &mut self,
        model: &str,
        exclude: &[&str],
        wait: Duration,
        at: Duration,
    ) -> Decision {
        let exclude = exclude.iter().map(|s| s.to_string()).collect();
        let now = self.t0 + at;
        self.core
            .choose(model, exclude, None, now + wait, now, &mut self.fx)
    }

    pub(super) fn choose(&mut self, exclude: &[&str], wait: Duration, at: Duration) -> Decision {
        self.choose_in("m", exclude, wait, at)
    }

    /// Chooses and expects an immediate grant.
    pub(super) fn grant(&mut self, at: Duration) -> Grant {
        match self.choose(&[], Duration::ZERO, at) {
            Decision::Granted(g) => g,
            other => panic!("expected a grant at {at:?}, got {other:?}"),
        }
    }

    pub(super) fn queued(&mut self, wait: Duration, at: Duration) -> WaiterId {
        match self.choose(&[], wait, at) {
            Decision::Queued(id) => id,
            other => panic!("expected a queued request at {at:?}, got {other:?}"),
        }
    }

    pub(super) fn refused(
        &mut self,
        exclude: &[&str],
        wait: Duration,
        at: Duration,
    ) -> ChooseError {
        match self.choose(exclude, wait, at) {
            Decision::Refused(e) => e,
            other => panic!("expected a refusal at {at:?}, got {other:?}"),
        }
    }

    pub(super) fn release(&mut self, g: Grant, outcome: Outcome, at: Duration) {
        let now = self.t0 + at;
        let gone = &self.gone;
        self.core.release(
            g.release(outcome, now),
            now,
            &|id| !gone.contains(&id),
            &mut self.fx,
        );
    }

    pub(super) fn acquired(&mut self, result: Acquired, at: Duration) {
        let a = self.acquires.remove(0);
        let now = self.t0 + at;
        let gone = &self.gone;
        self.core
            .acquired(a, result, now, &|id| !gone.contains(&id), &mut self.fx);
    }

    pub(super) fn serve_queues(&mut self, at: Duration) {
        let gone = &self.gone;
        self.core
            .serve_queues(self.t0 + at, &|id| !gone.contains(&id), &mut self.fx);
    }

    pub(super) fn id(&self, model: usize, provider: usize) -> String {
        let (_, _, s) = self
            .core
            .snapshots()
            .find(|(m, p, _)| (*m, *p) == (model, provider))
            .unwrap();
        s.config.id.clone()
    }

    /// The effects pushed since the last call, described; grants and acquires are kept.
    pub(super) fn effects(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::mem::take(&mut self.fx) {
            out.push(match e {
                Effect::Grant { waiter, grant } => {
                    let mut d = format!("grant w{waiter} {}", grant.snapshot.config.id);
                    if let Some(t) = &grant.token {
                        d += &format!(" token {t}");
                    }
                    if grant.probe {
                        d += " probe";
                    }
                    self.granted.insert(waiter, grant);
                    d
                }
                Effect::Refuse { waiter, error } => format!("refuse w{waiter} {error:?}"),
                Effect::Forget { waiter } => format!("forget w{waiter}"),
                Effect::Acquire(a) => {
                    let mut d = format!(
                        "acquire w{} {} {} cap {} released {:?}",
                        a.waiter(),
                        a.provider,
                        a.token,
                        a.cap.map_or_else(|| "-".to_string(), |c| c.to_string()),
                        a.released
                    );
                    if let Some((n, w)) = a.rpm {
                        d += &format!(" rpm {n}/{}s", w.as_secs());
                    }
                    self.acquires.push(a);
                    d
                }
                Effect::CountUse { model, provider } => format!("count {model} {provider}"),
                Effect::ReleaseToken {
                    provider, token, ..
                } => format!("release-token {provider} {token}"),
                Effect::Report {
                    model,
                    provider,
                    report,
                } => format!(
                    "report {} {:?}{}",
                    self.id(model, provider),
                    report.outcome,
                    if report.probe { " probe" } else { "" }
                ),
            });
        }
        out
    }

    pub(super) fn in_flight(&self) -> Vec<u32> {
        self.core
            .snapshots()
            .map(|(_, _, s)| s.in_flight())
            .collect()
    }

    /// The provider actor of `(model, provider)` (not started: its `apply` is called directly).
    pub(super) fn actor(
        &self,
        provider: usize,
        threshold: u32,
        cooldown: Duration,
    ) -> ProviderActor {
        let (_, _, s) = self.core.snapshots().nth(provider).unwrap();
        ProviderActor::new(s.clone(), Breaker::new(threshold, cooldown, 60 * S))
    }

    pub(super) fn report(&self, outcome: Outcome, at: Duration) -> ReportOutcome {
        ReportOutcome {
            outcome,
            latency: 10 * MS,
            ttft: None,
            probe: false,
            retry_after: None,
            at: self.t0 + at,
        }
    }
}

#[test]
fn balanced_spreads_leases_and_each_release_frees_one_slot() {
    let mut h = H::new(StrategyKind::Balanced, vec![p("a"), p("b"), p("c")]);
    let mut held: Vec<Grant> = (0..6).map(|i| h.grant(i * MS)).collect();
    let ids: Vec<_> = held.iter().map(|g| g.snapshot.config.id.clone()).collect();
    assert_eq!(ids, ["a", "b", "c", "a", "b", "c"]);
    assert_eq!(h.in_flight(), [2, 2, 2]);
    assert!(h.effects().is_empty(), "no Redis: no usage counted");
    for g in held.drain(2..) {
        h.release(g, Outcome::Success, S);
    }
    assert_eq!(h.in_flight(), [1, 1, 0]);
    assert_eq!(
        h.effects(),
        [
            "report c Success",
            "report a Success",
            "report b Success",
            "report c Success"
        ],
        "one outcome per release, forwarded to its provider"
    );
    for g in held {
        h.release(g, Outcome::Cancelled, S);
    }
    assert_eq!(h.in_flight(), [0, 0, 0]);
}

#[test]
fn refusals_name_what_is_wrong() {
    type Setup = fn(&mut H);
    let none: Setup = |_| {};
    fn open_a(h: &mut H) {
        let mut a = h.actor(0, 1, 60 * S);
        a.apply(&h.report(Outcome::Failure(FailureKind::Connect), Duration::ZERO));
    }
    let retry_after_30s: Setup = |h| {
        for i in 0..2 {
            let mut r = h.report(Outcome::Failure(FailureKind::Status(429)), Duration::ZERO);
            r.retry_after = Some(30 * S + i * 10 * S);
            h.actor(i as usize, 9, 5 * S).apply(&r);
        }
    };
    let open_a_limit_b: Setup = |h| {
        open_a(h);
        let mut r = h.report(Outcome::Failure(FailureKind::Status(429)), Duration::ZERO);
        r.retry_after = Some(30 * S);
        h.actor(1, 9, 5 * S).apply(&r);
    };
    let a_open_elsewhere: Setup = |h| {
        h.core.set_connected();
        let reply = SyncReply {
            circuits: vec![Some(1_000_000 + 30_000), None],
            ..Default::default()
        };
        h.core.apply_sync(reply, h.t0, 1_000_000);
    };
    let model = |m: &str| m.to_string();
    let cases: Vec<(&str, Setup, &[&str], Duration, ChooseError)> = vec![
        (
            "every provider tried",
            none,
            &["a", "b"],
            S,
            ChooseError::Exhausted { model: model("m") },
        ),
        (
            "the untried one's circuit is open",
            open_a,
            &["b"],
            S,
            ChooseError::NoHealthyProvider {
                model: model("m"),
                unhealthy: vec![model("a")],
            },
        ),
        (
            "both asked to wait: the sooner end counts",
            retry_after_30s,
            &[],
            S,
            ChooseError::RateLimited {
                model: model("m"),
                retry_after: 20 * S,
            },
        ),
        (
            "one open, one rate-limited: rate-limited",
            open_a_limit_b,
            &[],
            S,
            ChooseError::RateLimited {
                model: model("m"),
                retry_after: 20 * S,
            },
        ),
        (
            "another replica saw the circuit open",
            a_open_elsewhere,
            &["b"],
            S,
            ChooseError::NoHealthyProvider {
                model: model("m"),
                unhealthy: vec![model("a")],
            },
        ),
    ];
    for (name, setup, exclude, wait, want) in cases {
        let mut h = H::new(StrategyKind::Balanced, vec![p("a"), p("b")]);
        setup(&mut h);
        // Offsets from the setup instant: 10 s later.
        assert_eq!(h.refused(exclude, wait, 10 * S), want, "{name}");
    }
    let mut h = H::new(StrategyKind::Balanced, vec![p("a")]);
    assert_eq!(
        h.choose_in("nope", &[], S, Duration::ZERO).expect_refused(),
        ChooseError::UnknownModel {
            model: model("nope"),
            available: vec![model("m")]
        }
    );
}

trait ExpectRefused {
    fn expect_refused(self) -> ChooseError;
}

impl ExpectRefused for Decision {
    fn expect_refused(self) -> ChooseError {
        match self {
            Decision::Refused(e) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn rpm_limits_starts_per_rolling_minute() {
    let mut h = H::new(
        StrategyKind::Balanced,
        vec![ProviderConfig {
            rpm: Some(2),
            ..p("a")
        }],
    );
    let first = h.grant(Duration::ZERO);
    h.release(first, Outcome::Success, MS);
    let _second = h.grant(10 * S);
    assert_eq!(
        h.refused(&[], S, 20 * S),
        ChooseError::RateLimited {
            model: "m".into(),
            retry_after: 40 * S
        },
        "full until the first start leaves the window"
    );
    let _third = h.grant(60 * S);
}

#[test]
fn an_open_circuit_admits_one_probe_after_its_cool_down() {
    let mut h = H::new(StrategyKind::Balanced, vec![p("a")]);
    let mut actor = h.actor(0, 2, 150 * MS);
    for at in [0, 1] {
        let g = h.grant(at * MS);
        h.release(g, Outcome::Failure(FailureKind::Connect), at * MS);
        actor.apply(&h.report(Outcome::Failure(FailureKind::Connect), at * MS));
    }
    let unhealthy = ChooseError::NoHealthyProvider {
        model: "m".into(),
        unhealthy: vec!["a".into()],
    };
    assert_eq!(
        h.refused(&[], Duration::ZERO, 100 * MS),
        unhealthy,
        "cooling down"
    );
    let probe = h.grant(151 * MS);
    assert!(probe.probe, "cool-down over: the next lease is the probe");
    assert_eq!(
        h.refused(&[], Duration::ZERO, 152 * MS),
        unhealthy,
        "one probe at a time"
    );
    // A probe that ends without a verdict frees the probe slot: the next request probes.
    h.release(probe, Outcome::Cancelled, 160 * MS);
    assert_eq!(h.effects().last().unwrap(), "report a Cancelled probe");
    let probe = h.grant(161 * MS);
    assert!(probe.probe);
    h.release(probe, Outcome::Success, 170 * MS);
    let mut r = h.report(Outcome::Success, 170 * MS);
    r.probe = true;
    actor.apply(&r);
    let (a, b) = (h.grant(171 * MS), h.grant(172 * MS));
    assert!(!a.probe && !b.probe, "closed again: no limit of one");
}

#[test]
fn lower_priority_tiers_serve_only_when_higher_ones_cannot() {
    let backup = ProviderConfig {
        priority: 1,
        ..p("backup")
    };
    let mut h = H::new(StrategyKind::Balanced, vec![backup, capped("main", 1)]);
    let l1 = h.grant(Duration::ZERO);
    let l2 = h.grant(MS);
    assert_eq!(
        (
            l1.snapshot.config.id.as_str(),
            l2.snapshot.config.id.as_str()
        ),
        ("main", "backup"),
        "main is full"
    );
    h.release(l1, Outcome::Success, 2 * MS);
    let mut actor = h.actor(1, 1, 5 * S);
    actor.apply(&h.report(
        Outcome::Failure(FailureKind::Timeout(Duration::from_secs(1))),
        2 * MS,
    ));
    assert_eq!(
        h.grant(3 * MS).snapshot.config.id,
        "backup",
        "main is unhealthy"
    );
}

#[test]
fn a_full_pool_queues_in_arrival_order_until_each_deadline() {
    let mut h = H::new(StrategyKind::Balanced, vec![capped("a", 1)]);
    let held = h.grant(Duration::ZERO);
    assert_eq!(
        h.refused(&[], Duration::ZERO, MS),
        ChooseError::AllBusy { model: "m".into() },
        "no time to wait"
    );
    let w1 = h.queued(5 * S, MS);
    let w2 = h.queued(S, 2 * MS);
    let w3 = h.queued(5 * S, 3 * MS);
    let w4 = h.queued(5 * S, 4 * MS);
    let w5 = h.queued(5 * S, 5 * MS);
    assert_eq!(h.core.status(&|_| true)[0].queued, 5);
    h.gone.insert(w4);
    assert_eq!(
        h.core.status(&|id| id != w4)[0].queued,
        4,
        "gone waiters are not counted"
    );
    h.release(held, Outcome::Success, 2 * S);
    assert_eq!(
        h.effects(),
        [
            "report a Success".to_string(),
            format!("grant w{w1} a"),
            format!("forget w{w2}"),
        ],
        "w1 first; w2's deadline passed (dropped while looking for the next one that waits)"
    );
    let g = h.granted.remove(&w1).unwrap();
    h.release(g, Outcome::Success, 3 * S);
    assert_eq!(
        h.effects(),
        [
            "report a Success".to_string(),
            format!("grant w{w3} a"),
            format!("forget w{w4}"),
        ],
        "w4 went away"
    );
    let g = h.granted.remove(&w3).unwrap();
    h.release(g, Outcome::Success, 4 * S);
    assert_eq!(
        h.effects(),
        ["report a Success".to_string(), format!("grant w{w5} a")]
    );
    assert_eq!(h.core.status(&|_| true)[0].queued, 0);
}

#[test]
fn a_queued_request_is_refused_when_its_providers_turn_unhealthy() {
    let mut h = H::new(StrategyKind::Balanced, vec![capped("a", 1)]);
    let held = h.grant(Duration::ZERO);
    let w = h.queued(5 * S, MS);
    h.actor(0, 1, 5 * S)
        .apply(&h.report(Outcome::Failure(FailureKind::Connect), 2 * MS));
    h.release(held, Outcome::Failure(FailureKind::Connect), 2 * MS);
    assert_eq!(
        h.effects(),
        [
            "report a Failure(Connect)".to_string(),
            format!("refuse w{w} NoHealthyProvider {{ model: \"m\", unhealthy: [\"a\"] }}"),
        ]
    );
}

#[test]
fn keep_alive_views_follow_what_each_host_serves() {
    let ka = |id: &str, host: &str| ProviderConfig {
        keep_alive: Some(60 * S),
        ..ProviderConfig::new(id, host, ApiType::Ollama)
    };
    let config = models(vec![
        ("m", vec![ka("m1", "http://gpu:11434")]),
        ("n", vec![ka("n1", "http://gpu:11434")]),
    ]);
    let mut h = H::with(StrategyKind::Balanced, config, None);
    let g = match h.choose_in("m", &[], S, 5 * S) {
        Decision::Granted(g) => g,
        other => panic!("{other:?}"),
    };
    let view = |h: &H| -> Vec<(String, Option<Instant>, bool)> {
        h.core
            .keep_alive()
            .into_iter()
            .map(|v| (v.provider.config.id.clone(), v.last_served, v.busy_other))
            .collect()
    };
    let at = h.t0 + 5 * S;
    assert_eq!(
        view(&h),
        [("m1".into(), Some(at), false), ("n1".into(), None, true)]
    );
    h.release(g, Outcome::Success, 6 * S);
    assert_eq!(
        view(&h),
        [("m1".into(), Some(at), false), ("n1".into(), None, false)],
        "released: the host is free, still warm for m"
    );
}

#[test]
fn the_core_can_move_between_threads() {
    fn is_send<T: Send>() {}
    is_send::<Selection>();
    is_send::<Effect>();
}
