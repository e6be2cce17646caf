//! Registry behaviour through its real mailbox (no HTTP). Selection rules themselves are table
//! tests on the pure core (`registry/selection_tests.rs`); these check the actor's plumbing:
//! leases, releases through the inbox, outcomes reaching the provider actors, the queue's
//! oneshot answers. They wait on observable conditions, never for a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::{ApiType, ModelConfig, ModelsConfig, ProviderConfig};
use crate::provider::{FailureKind, HealthView, Outcome, ProviderSnapshot};
use crate::registry::{
    ChooseError, ChooseProvider, GetStatus, Lease, ModelRegistry, RegistryOptions,
};
use actix::Addr;
use std::sync::Arc;

fn config(providers: Vec<ProviderConfig>) -> ModelsConfig {
    ModelsConfig {
        models: vec![ModelConfig {
            name: "m".into(),
            group: "g".into(),
            providers,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn p(id: &str) -> ProviderConfig {
    ProviderConfig::new(id, "http://127.0.0.1:9", ApiType::Vllm)
}

async fn choose(
    reg: &Addr<ModelRegistry>,
    exclude: &[&str],
    wait: Duration,
) -> Result<Lease, ChooseError> {
    reg.send(ChooseProvider {
        model: "m".into(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        deadline: Instant::now() + wait,
        session: None,
    })
    .await
    .unwrap()
    .resolve()
    .await
}

async fn in_flight(reg: &Addr<ModelRegistry>) -> Vec<u32> {
    // Releases are messages; a round trip through the mailbox orders them before this read.
    let status = reg.send(GetStatus).await.unwrap();
    status[0].providers.iter().map(|s| s.in_flight()).collect()
}

/// Polls `cond` (every millisecond, up to 5 s) until it holds.
async fn wait_for<F: Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn snapshot(reg: &Addr<ModelRegistry>) -> Arc<ProviderSnapshot> {
    reg.send(GetStatus).await.unwrap()[0].providers[0].clone()
}

async fn health_is(reg: &Addr<ModelRegistry>, want: HealthView) -> bool {
    snapshot(reg).await.health(Instant::now()) == want
}

#[actix_rt::test]
async fn balanced_spreads_concurrent_leases_and_drop_releases_each_once() {
    let reg = ModelRegistry::start(
        &config(vec![p("a"), p("b"), p("c")]),
        RegistryOptions::default(),
    );
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(choose(&reg, &[], Duration::ZERO).await.unwrap());
    }
    let ids: Vec<_> = held.iter().map(|l| l.provider().id.clone()).collect();
    assert_eq!(ids, ["a", "b", "c", "a", "b", "c"]);
    assert_eq!(in_flight(&reg).await, [2, 2, 2]);
    held.truncate(2);
    assert_eq!(in_flight(&reg).await, [1, 1, 0]);
    drop(held);
    assert_eq!(in_flight(&reg).await, [0, 0, 0]);
}

#[actix_rt::test]
async fn unknown_model_lists_the_available_ones() {
    let reg = ModelRegistry::start(&config(vec![p("a")]), RegistryOptions::default());
    let err = reg
        .send(ChooseProvider {
            model: "nope".into(),
            exclude: vec![],
            deadline: Instant::now(),
            session: None,
        })
        .await
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChooseError::UnknownModel {
            model: "nope".into(),
            available: vec!["m".into()]
        }
    );
}

#[actix_rt::test]
async fn exclusions_exhaust_the_pool() {
    let reg = ModelRegistry::start(&config(vec![p("a"), p("b")]), RegistryOptions::default());
    let l = choose(&reg, &["a"], Duration::ZERO).await.unwrap();
    assert_eq!(l.provider().id, "b");
    let err = choose(&reg, &["a", "b"], Duration::ZERO).await.unwrap_err();
    assert_eq!(err, ChooseError::Exhausted { model: "m".into() });
}

#[actix_rt::test]
async fn failures_open_the_circuit_and_a_single_probe_closes_it() {
    let opts = RegistryOptions {
        breaker_threshold: Some(2),
        breaker_cooldown: Some(Duration::from_millis(150)),
        ..Default::default()
    };
    let reg = ModelRegistry::start(&config(vec![p("a")]), opts);
    for _ in 0..2 {
        let mut l = choose(&reg, &[], Duration::ZERO).await.unwrap();
        l.set_outcome(Outcome::Failure(FailureKind::Connect));
    }
    // The releases' outcomes reach the provider actor, which opens the circuit.
    wait_for("the circuit to open", || health_is(&reg, HealthView::Open)).await;
    assert_eq!(snapshot(&reg).await.consecutive_failures(), 2);
    let err = choose(&reg, &[], Duration::ZERO).await.unwrap_err();
    assert_eq!(
        err,
        ChooseError::NoHealthyProvider {
            model: "m".into(),
            unhealthy: vec!["a".into()]
        }
    );
    wait_for("the cool-down to end", || {
        health_is(&reg, HealthView::HalfOpen)
    })
    .await;
    let mut probe = choose(&reg, &[], Duration::ZERO)
        .await
        .expect("cool-down over: one probe");
    assert!(
        choose(&reg, &[], Duration::ZERO).await.is_err(),
        "only one probe at a time"
    );
    probe.set_outcome(Outcome::Success);
    drop(probe);
    wait_for("the probe to close the circuit", || {
        health_is(&reg, HealthView::Healthy)
    })
    .await;
    let a = choose(&reg, &[], Duration::ZERO).await.unwrap();
    let b = choose(&reg, &[], Duration::ZERO).await.unwrap();
    assert_eq!(
        (a.provider().id.as_str(), b.provider().id.as_str()),
        ("a", "a"),
        "closed again"
    );
}

#[actix_rt::test]
async fn full_providers_queue_requests_in_order_until_their_deadline() {
    let mut a = p("a");
    a.max_concurrency = Some(1);
    let reg = ModelRegistry::start(&config(vec![a]), RegistryOptions::default());
    let first = choose(&reg, &[], Duration::ZERO).await.unwrap();
    let err = choose(&reg, &[], Duration::from_millis(30))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChooseError::AllBusy { model: "m".into() },
        "gives up at its deadline"
    );
    let reg2 = reg.clone();
    let waiter = actix_rt::spawn(async move { choose(&reg2, &[], Duration::from_secs(5)).await });
    wait_for("the request to queue", || async {
        reg.send(GetStatus).await.unwrap()[0].queued == 1
    })
    .await;
    assert!(!waiter.is_finished());
    drop(first);
    let second = waiter
        .await
        .unwrap()
        .expect("served when the slot was released");
    assert_eq!(second.provider().id, "a");
    assert_eq!(in_flight(&reg).await, [1]);
}

#[actix_rt::test]
async fn lower_priority_tiers_serve_only_when_higher_ones_cannot() {
    let mut main = p("main");
    main.max_concurrency = Some(1);
    let mut backup = p("backup");
    backup.priority = 1;
    let reg = ModelRegistry::start(&config(vec![backup, main]), RegistryOptions::default());
    let l1 = choose(&reg, &[], Duration::ZERO).await.unwrap();
    let l2 = choose(&reg, &[], Duration::ZERO).await.unwrap();
    assert_eq!(l1.provider().id, "main");
    assert_eq!(l2.provider().id, "backup", "main is full");
}

#[actix_rt::test]
async fn a_reloaded_provider_actor_publishes_into_its_new_snapshot_and_old_leases_release() {
    let reg = ModelRegistry::start(&config(vec![p("a"), p("b")]), RegistryOptions::default());
    let mut failed = choose(&reg, &[], Duration::ZERO).await.unwrap();
    assert_eq!(failed.provider().id, "a");
    let held_b = choose(&reg, &[], Duration::ZERO).await.unwrap();
    failed.set_outcome(Outcome::Failure(FailureKind::Connect));
    drop(failed);
    wait_for("a's first failure", || async {
        snapshot(&reg).await.failures() == 1
    })
    .await;
    // a gets a new weight (kept identity, new snapshot); b leaves with its lease out.
    let heavier = ProviderConfig {
        weight: 5.0,
        ..p("a")
    };
    let summary = reg
        .send(crate::registry::Reload {
            config: config(vec![heavier]),
        })
        .await
        .unwrap();
    assert_eq!(
        (summary.diff.changed.clone(), summary.diff.removed.clone()),
        (vec!["a".to_string()], vec!["b".to_string()])
    );
    let now_a = snapshot(&reg).await;
    assert_eq!(now_a.config.weight, 5.0);
    assert_eq!(now_a.failures(), 1, "carried over");
    let mut again = choose(&reg, &[], Duration::ZERO).await.unwrap();
    again.set_outcome(Outcome::Failure(FailureKind::Connect));
    drop(again);
    wait_for("the rebound actor's report", || async {
        snapshot(&reg).await.failures() == 2
    })
    .await;
    drop(held_b);
    assert_eq!(
        in_flight(&reg).await,
        [0],
        "the drained lease touched nothing"
    );
}

/// The request path's `Chooser` (no shared store): choices and releases run on the callers'
/// threads under the registry's lock. Several OS threads, each with its own runtime like HTTP
/// workers, take and release leases at once; a queued request is answered by a release made on
/// another thread; the outcomes reach the provider actors through the registry's batches.
#[test]
fn the_chooser_chooses_and_releases_on_the_callers_threads() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let sys = actix_rt::System::new();
        sys.block_on(async {
            let mut one = p("one");
            one.max_concurrency = Some(1);
            let (reg, chooser) =
                ModelRegistry::launch(&config(vec![one, p("b")]), RegistryOptions::default());
            tx.send((reg, chooser, actix_rt::System::current()))
                .unwrap();
        });
        sys.run().unwrap();
    });
    let (reg, chooser, system) = rx.recv().unwrap();
    assert!(chooser.is_local());
    let pick = |exclude: &[&str], wait: Duration| ChooseProvider {
        model: "m".into(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        deadline: Instant::now() + wait,
        session: None,
    };
    let run = |f: std::pin::Pin<Box<dyn Future<Output = ()>>>| {
        actix_rt::Runtime::new().unwrap().block_on(f)
    };

    // Four threads × 200 leases of "b", each released with a success.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let chooser = chooser.clone();
            std::thread::spawn(move || {
                run(Box::pin(async move {
                    for _ in 0..200 {
                        let mut l = chooser
                            .choose(pick(&["one"], Duration::ZERO))
                            .await
                            .unwrap()
                            .resolve()
                            .await
                            .unwrap();
                        assert_eq!(l.provider().id, "b");
                        l.set_outcome(Outcome::Success);
                    }
                }))
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }

    // "one" holds one request at a time: the second waits and is answered by the first's
    // release, dropped on another thread.
    let held = run_value(|| {
        let chooser = chooser.clone();
        async move {
            chooser
                .choose(pick(&["b"], Duration::ZERO))
                .await
                .unwrap()
                .resolve()
                .await
                .unwrap()
        }
    });
    let queued = run_value(|| {
        let chooser = chooser.clone();
        async move {
            chooser
                .choose(pick(&["b"], Duration::from_secs(5)))
                .await
                .unwrap()
        }
    });
    let waiter = std::thread::spawn(move || {
        actix_rt::Runtime::new()
            .unwrap()
            .block_on(queued.resolve())
            .map(|l| l.provider().id.clone())
    });
    std::thread::spawn(move || drop(held)).join().unwrap();
    assert_eq!(waiter.join().unwrap().as_deref(), Ok("one"));

    // Every release was applied at once (no lease left out) and every outcome reached b's actor.
    let reg2 = reg.clone();
    run(Box::pin(async move {
        assert_eq!(in_flight(&reg2).await, [0, 0]);
        wait_for(
            "800 grants of b and its actor's latency from the reports",
            || async {
                let status = reg2.send(GetStatus).await.unwrap();
                let b = &status[0].providers[1];
                b.served() == 800 && b.latency().is_some()
            },
        )
        .await;
    }));
    system.stop();
    server.join().unwrap();
}

/// Runs `f`'s future on a fresh runtime of this thread and returns its value.
fn run_value<T, F: Future<Output = T>>(f: impl FnOnce() -> F) -> T {
    actix_rt::Runtime::new().unwrap().block_on(f())
}
