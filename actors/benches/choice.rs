//! Cost of one provider choice per strategy, with 2, 8 and 64 providers: a `ChooseProvider` round
//! trip through the registry actor and the lease's release, in-process and (for the
//! capacity-limited strategies) with leases in a real `redis-server` when one is installed.
//! Run: `cargo bench -p llm-router-actors --bench choice`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_router_actors::config::ModelsConfig;
use llm_router_actors::registry::{SharedHealth, SharedOptions};
use llm_router_actors::store::StoreOptions;
use llm_router_actors::{ChooseProvider, ModelRegistry, RegistryOptions, StrategyKind};

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

fn main() {
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
                            url: format!("redis://127.0.0.1:{port}/0"),
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
}
