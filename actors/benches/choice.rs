//! Cost of one provider choice per strategy, with 2, 8 and 64 providers: a `ChooseProvider` round
//! trip through the registry actor and the lease's release, in-process and (for the
//! capacity-limited strategies) with leases in a real `redis-server` when one is installed.
//! Then choices per second (choose + release) with 1 and 8 caller threads, (a) through the actor
//! (each caller on its own runtime, like HTTP workers), (c) through the `Chooser` the request path
//! uses (choice and release on the caller's thread under the registry's lock) and (b) calling the
//! pure selection core under a `std::sync::Mutex`.
//! Run: `cargo bench -p llm-router-actors --bench choice` (`-- throughput` for the second part only).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use llm_router_actors::config::{ModelsConfig, Secret};
use llm_router_actors::registry::{Decision, Selection, SharedHealth, SharedOptions};
use llm_router_actors::store::StoreOptions;
use llm_router_actors::{ChooseProvider, ModelRegistry, Outcome, RegistryOptions, StrategyKind};

fn config(n: usize) -> ModelsConfig {
    let providers: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "p{i}", "api_host": "http://10.0.{}.{}:8000", "api_type": "vllm", "weight": {}}}"#,
                i / 250,
                i % 250 + 1,
                1 + i % 3
            )
        })
        .collect();
    let text = format!(
        r#"{{"g": {{"m": {{"providers": [{}]}}}}, "active_models": {{"g": ["m"]}}}}"#,
        providers.join(",")
    );
    ModelsConfig::from_json_str(&text).expect("bench config")
}

fn run(kind: StrategyKind, n: usize, shared: Option<SharedOptions>, iters: usize) -> f64 {
    let sys = actix_rt::System::new();
    sys.block_on(async move {
        let redis = shared.is_some();
        let health = shared.as_ref().map(|s| s.health.clone());
        let reg = ModelRegistry::start(
            &config(n),
            RegistryOptions {
                strategy: Some(kind),
                shared,
                ..Default::default()
            },
        );
        if let Some(h) = health {
            let t = Instant::now();
            while !h.is_up() {
                assert!(t.elapsed() < Duration::from_secs(5), "Redis not reachable");
                actix_rt::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let choose = || ChooseProvider {
            model: "m".into(),
            exclude: Vec::new(),
            deadline: Instant::now() + Duration::from_secs(5),
            session: None,
        };
        for _ in 0..iters / 10 {
            let lease = reg.send(choose()).await.unwrap().resolve().await.unwrap();
            drop(lease);
            if redis {
                // Let the release reach Redis before the next acquire of the same provider.
                actix_rt::task::yield_now().await;
            }
        }
        let t = Instant::now();
        for _ in 0..iters {
            let lease = reg.send(choose()).await.unwrap().resolve().await.unwrap();
            drop(lease);
        }
        t.elapsed().as_secs_f64() * 1e6 / iters as f64
    })
}

fn redis_server() -> Option<(Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(5) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port))
}

/// Runs `callers` threads doing `per_caller` choices each after a common start; choices per second.
fn threaded(
    callers: usize,
    per_caller: usize,
    work: impl Fn(usize) + Send + Sync + 'static,
) -> f64 {
    let work = Arc::new(work);
    let start = Arc::new(Barrier::new(callers + 1));
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let (work, start) = (work.clone(), start.clone());
            std::thread::spawn(move || {
                work(per_caller / 10); // warm-up
                start.wait();
                work(per_caller);
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    for th in threads {
        th.join().unwrap();
    }
    (callers * per_caller) as f64 / t.elapsed().as_secs_f64()
}

/// (a) `ChooseProvider` round trips to a registry on its own thread, or (c, `via_chooser`) the
/// request path's [`Chooser`]: without a shared store each caller chooses and releases on its
/// own thread under the registry's lock (the actor only forwards outcome reports).
fn registry_rate(n: usize, callers: usize, per_caller: usize, via_chooser: bool) -> f64 {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let sys = actix_rt::System::new();
        sys.block_on(async {
            let (reg, chooser) = ModelRegistry::launch(&config(n), RegistryOptions::default());
            tx.send((reg, chooser, actix_rt::System::current()))
                .unwrap();
        });
        sys.run().unwrap();
    });
    let (reg, chooser, system) = rx.recv().unwrap();
    let rate = threaded(callers, per_caller, move |iters| {
        let (reg, chooser) = (reg.clone(), chooser.clone());
        actix_rt::Runtime::new().unwrap().block_on(async move {
            for _ in 0..iters {
                let choose = ChooseProvider {
                    model: "m".into(),
                    exclude: Vec::new(),
                    deadline: Instant::now() + Duration::from_secs(5),
                    session: None,
                };
                let choice = if via_chooser {
                    chooser.choose(choose).await
                } else {
                    reg.send(choose).await
                };
                drop(choice.unwrap().resolve().await.unwrap());
            }
        })
    });
    system.stop();
    server.join().unwrap();
    rate
}

/// (b) The pure core under a mutex: lock, choose, unlock; lock, release, unlock.
fn core_rate(n: usize, callers: usize, per_caller: usize) -> f64 {
    let core = Arc::new(Mutex::new(Selection::new(
        &config(n),
        StrategyKind::Balanced,
        None,
    )));
    threaded(callers, per_caller, move |iters| {
        let mut fx = Vec::new();
        for _ in 0..iters {
            let now = Instant::now();
            let grant = {
                let mut c = core.lock().unwrap();
                match c.choose(
                    "m",
                    Vec::new(),
                    None,
                    now + Duration::from_secs(5),
                    now,
                    &mut fx,
                ) {
                    Decision::Granted(g) => g,
                    other => panic!("{other:?}"),
                }
            };
            let now = Instant::now();
            let release = grant.release(Outcome::Success, now);
            core.lock()
                .unwrap()
                .release(release, now, &|_| true, &mut fx);
            fx.clear();
        }
    })
}

fn throughput() {
    println!("\nchoices per second (choose + release), balanced, 8 providers");
    println!("{:<34} {:>14} {:>14}", "path", "1 caller", "8 callers");
    let actor = (
        registry_rate(8, 1, 50_000, false),
        registry_rate(8, 8, 25_000, false),
    );
    println!(
        "{:<34} {:>14.0} {:>14.0}",
        "actor round trip", actor.0, actor.1
    );
    let chooser = (
        registry_rate(8, 1, 500_000, true),
        registry_rate(8, 8, 125_000, true),
    );
    println!(
        "{:<34} {:>14.0} {:>14.0}",
        "Chooser (worker thread, lock)", chooser.0, chooser.1
    );
    let core = (core_rate(8, 1, 1_000_000), core_rate(8, 8, 250_000));
    println!(
        "{:<34} {:>14.0} {:>14.0}",
        "pure core under std::sync::Mutex", core.0, core.1
    );
}

fn main() {
    if std::env::args().any(|a| a == "throughput") {
        throughput();
        return;
    }
    println!(
        "{:<22} {:>6} {:>14} {:>14}",
        "strategy", "provs", "in-process µs", "redis µs"
    );
    let mut redis = redis_server();
    for kind in StrategyKind::ALL {
        for n in [2usize, 8, 64] {
            let local = run(kind, n, None, 20_000);
            let shared = match (&redis, kind.default_capacity()) {
                (Some((_, port)), Some(_)) => {
                    let opts = SharedOptions {
                        store: StoreOptions {
                            host: "127.0.0.1".into(),
                            port: *port,
                            db: 0,
                            password: Secret::default(),
                            prefix: format!("bench-{}-{n}:", kind.as_str()),
                            lease_ttl: Duration::from_secs(10),
                            timeout: Duration::from_millis(500),
                        },
                        health: Arc::new(SharedHealth::default()),
                    };
                    format!("{:.1}", run(kind, n, Some(opts), 5_000))
                }
                (None, Some(_)) => "no redis".into(),
                _ => "—".into(),
            };
            println!(
                "{:<22} {:>6} {:>14.2} {:>14}",
                kind.as_str(),
                n,
                local,
                shared
            );
        }
    }
    if let Some((c, _)) = redis.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    throughput();
}
