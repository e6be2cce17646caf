//! Shared state in a real `redis-server` (ephemeral port): atomic leases with TTL, several router
//! processes behaving as one, a killed replica's leases expiring, and Redis going away mid-run.

use std::process::Child;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use llm_router_actors::store::{Admit, Store, StoreOptions};
use serde_json::Value;

use crate::common::*;
use crate::process::{spawn_binary, spawn_with_config};

fn store_opts(redis: &RedisServer, prefix: &str, ttl_ms: u64) -> StoreOptions {
    StoreOptions {
        host: "127.0.0.1".into(),
        port: redis.port,
        db: 0,
        password: Default::default(),
        prefix: prefix.into(),
        lease_ttl: Duration::from_millis(ttl_ms),
        timeout: Duration::from_millis(500),
    }
}

#[actix_rt::test]
async fn leases_are_atomic_across_store_handles_and_expire_unless_renewed() {
    let mut redis = RedisServer::start();
    let opts = store_opts(&redis, "t:", 300);
    let (a, b) = (
        Store::connect(&opts).await.unwrap(),
        Store::connect(&opts).await.unwrap(),
    );
    for cap in [1u32, 3] {
        let provider = format!("p{cap}");
        let tries = (0..50).map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let provider = provider.clone();
            async move {
                s.acquire(&provider, &format!("tok{i}"), cap, &[])
                    .await
                    .unwrap()
            }
        });
        let won: Vec<bool> = join_all(tries).await;
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            cap as usize,
            "cap {cap}"
        );
        assert_eq!(b.holders(&provider).await.unwrap(), u64::from(cap));
        // Releasing one lets exactly one more in.
        let first = won.iter().position(|w| *w).unwrap();
        a.release(&provider, &format!("tok{first}")).await.unwrap();
        assert!(b.acquire(&provider, "late", cap, &[]).await.unwrap());
        assert!(!b.acquire(&provider, "later", cap, &[]).await.unwrap());
    }
    // A plain renewal never resurrects a released lease (it may race the release).
    assert!(a.acquire("raced", "r1", 1, &[]).await.unwrap());
    a.release("raced", "r1").await.unwrap();
    a.renew(&[("raced".into(), "r1".into())], false)
        .await
        .unwrap();
    assert_eq!(a.holders("raced").await.unwrap(), 0);
    // A release still on its way is applied by the next acquire of the same replica.
    assert!(a.acquire("relay", "old", 1, &[]).await.unwrap());
    assert!(!b.acquire("relay", "other", 1, &[]).await.unwrap());
    assert!(a.acquire("relay", "new", 1, &["old".into()]).await.unwrap());
    // Not renewed: gone after the TTL (a crashed replica). Renewed: kept.
    assert!(a.acquire("crashed", "x", 1, &[]).await.unwrap());
    assert!(a.acquire("alive", "y", 1, &[]).await.unwrap());
    // Renewed at every poll (every ~20 ms, well inside the 300 ms TTL) until the other expires.
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.renew(&[("alive".into(), "y".into())], false)
                .await
                .unwrap();
            b.acquire("crashed", "z", 1, &[]).await.unwrap()
        })
        .await,
        "expired lease reclaimed"
    );
    assert!(
        !b.acquire("alive", "z", 1, &[]).await.unwrap(),
        "renewed lease kept"
    );
    // Shared counters.
    a.count_use("m", "p1").await.unwrap();
    b.count_use("m", "p1").await.unwrap();
    assert_eq!(a.usage("m").await.unwrap()["p1"], 2);
    // Redis away: calls fail fast; back (empty): renewal re-establishes a held lease.
    redis.stop();
    let t = Instant::now();
    assert!(a.acquire("p1", "w", 1, &[]).await.is_err());
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    redis.restart();
    assert!(
        eventually(Duration::from_secs(5), || async { a.ping().await.is_ok() }).await,
        "the connection comes back by itself"
    );
    // The first command on a connection that died may still report the broken pipe while the
    // manager reconnects: the router treats that as "down" and retries on its next tick.
    let lease = [("alive".to_string(), "y".to_string())];
    assert!(
        eventually(Duration::from_secs(3), || async {
            a.renew(&lease, true).await.is_ok()
        })
        .await
    );
    assert_eq!(a.holders("alive").await.unwrap(), 1);
    assert!(eventually(Duration::from_secs(3), || async { b.ping().await.is_ok() }).await);
    assert!(
        !b.acquire("alive", "z", 1, &[]).await.unwrap(),
        "re-established, so still held"
    );
}

async fn shared_up(port: u16) -> bool {
    let Ok(mut res) = client()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
    else {
        return false;
    };
    let v: Value = res.json().limit(1 << 20).await.unwrap_or_default();
    v["shared_state"]["state"] == "up"
}

fn replica(up: &FakeUpstream, redis: &RedisServer, ttl: &str) -> (Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = redis.port.to_string();
    let (child, p) = spawn_binary(
        up,
        dir.path(),
        &[
            ("LLM_ROUTER_BALANCE_STRATEGY", "first_available"),
            ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
            ("LLM_ROUTER_REDIS_PORT", &port),
            ("LLM_ROUTER_REDIS_LEASE_TTL_SECONDS", ttl),
            ("LLM_ROUTER_LOG_LEVEL", "ERROR"),
            ("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0"),
        ],
    );
    (child, p, dir)
}

async fn chat_on(port: u16, stream: bool) -> u16 {
    let mut res = client()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .send_json(&chat_body("m", stream))
        .await
        .unwrap();
    let _ = res.body().limit(1 << 20).await;
    res.status().as_u16()
}

#[actix_rt::test]
async fn two_router_processes_sharing_redis_never_double_book_a_first_available_provider() {
    let redis = RedisServer::start();
    let up = FakeUpstream::start(FakeConfig {
        latency: Duration::from_millis(120),
        ..Default::default()
    });
    let (mut a, pa, _da) = replica(&up, &redis, "10");
    let (mut b, pb, _db) = replica(&up, &redis, "10");
    for p in [pa, pb] {
        assert!(
            eventually(Duration::from_secs(5), || shared_up(p)).await,
            "replica on {p} reaches Redis"
        );
    }
    let started = Instant::now();
    let mut max_active = 0;
    let reqs = join_all((0..6).map(|i| chat_on(if i % 2 == 0 { pa } else { pb }, false)));
    let mut reqs = Box::pin(reqs);
    let statuses = loop {
        max_active = max_active.max(up.active());
        let tick = Box::pin(actix_rt::time::sleep(Duration::from_millis(3)));
        match futures_util::future::select(reqs, tick).await {
            futures_util::future::Either::Left((s, _)) => break s,
            futures_util::future::Either::Right((_, r)) => reqs = r,
        }
    };
    assert_eq!(statuses, vec![200; 6]);
    assert_eq!(max_active, 1, "one request at a time across both replicas");
    assert!(started.elapsed() >= Duration::from_millis(6 * 120));
    let _ = a.kill();
    let _ = b.kill();
    let _ = (a.wait(), b.wait());
}

#[actix_rt::test]
async fn the_shared_rpm_window_admits_exactly_rpm_starts_across_store_handles() {
    let redis = RedisServer::start();
    let opts = store_opts(&redis, "w:", 1000);
    let (a, b) = (
        Store::connect(&opts).await.unwrap(),
        Store::connect(&opts).await.unwrap(),
    );
    let window = Duration::from_millis(800);
    let tries = (0..40).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            s.admit("p", &format!("t{i}"), None, Some((5, window)), &[])
                .await
                .unwrap()
        }
    });
    let got = join_all(tries).await;
    let taken = got.iter().filter(|g| **g == Admit::Taken).count();
    assert_eq!(taken, 5, "{got:?}");
    for g in &got {
        if let Admit::RateLimited(wait) = g {
            assert!(*wait > Duration::ZERO && *wait <= window, "{wait:?}");
        }
    }
    // A capped provider that is full takes no start from the window.
    assert!(a.acquire("q", "held", 1, &[]).await.unwrap());
    let full = b.admit("q", "x", Some(1), Some((1, window)), &[]).await;
    assert_eq!(full.unwrap(), Admit::Held);
    a.release("q", "held").await.unwrap();
    let next = b.admit("q", "y", Some(1), Some((1, window)), &[]).await;
    assert_eq!(next.unwrap(), Admit::Taken, "the window still had room");
    // The window frees as the starts age out.
    assert!(
        eventually(Duration::from_secs(3), || {
            let a = a.clone();
            async move {
                a.admit("p", "late", None, Some((5, window)), &[])
                    .await
                    .unwrap()
                    == Admit::Taken
            }
        })
        .await
    );
}

#[actix_rt::test]
async fn two_router_processes_sharing_redis_keep_to_one_providers_rpm() {
    let redis = RedisServer::start();
    let up = FakeUpstream::start(FakeConfig::default());
    let mut a = provider("a", &up);
    a["rpm"] = serde_json::json!(3);
    let config = models_config(&[("m", vec![a])]);
    let port = redis.port.to_string();
    let env = [
        ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
        ("LLM_ROUTER_REDIS_PORT", port.as_str()),
        ("LLM_ROUTER_LOG_LEVEL", "ERROR"),
        ("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0"),
    ];
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut ra, pa) = spawn_with_config(&config, da.path(), &env);
    let (mut rb, pb) = spawn_with_config(&config, db.path(), &env);
    for p in [pa, pb] {
        assert!(
            eventually(Duration::from_secs(5), || shared_up(p)).await,
            "replica on {p} reaches Redis"
        );
    }
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for i in 0..8 {
        let port = if i % 2 == 0 { pa } else { pb };
        let mut res = client()
            .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
            .send_json(&chat_body("m", i % 3 == 0))
            .await
            .unwrap();
        let _ = res.body().limit(1 << 20).await;
        statuses.push(res.status().as_u16());
        if let Some(v) = res.headers().get("retry-after") {
            retry_after.push(v.to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
    assert_eq!(
        up.request_count(),
        3,
        "three starts in the minute, both replicas together"
    );
    assert_eq!(retry_after.len(), 5);
    assert!(
        retry_after.iter().all(|s| (50..=60).contains(s)),
        "{retry_after:?}"
    );
    let _ = (ra.kill(), rb.kill());
    let _ = (ra.wait(), rb.wait());
}

#[actix_rt::test]
async fn a_killed_replicas_lease_expires_and_the_provider_is_served_again() {
    let redis = RedisServer::start();
    let up = FakeUpstream::start(FakeConfig {
        chunks: 100,
        chunk_delay: Duration::from_millis(100),
        ..Default::default()
    });
    let (mut a, pa, _da) = replica(&up, &redis, "1");
    let (mut b, pb, _db) = replica(&up, &redis, "1");
    for p in [pa, pb] {
        assert!(eventually(Duration::from_secs(5), || shared_up(p)).await);
    }
    // Replica A takes the provider with a long stream, then dies without releasing it.
    let mut res = client()
        .post(format!("http://127.0.0.1:{pa}/v1/chat/completions"))
        .send_json(&chat_body("m", true))
        .await
        .unwrap();
    use futures_util::StreamExt;
    assert!(res.next().await.unwrap().is_ok());
    let store = Store::connect(&store_opts(&redis, "llm-router:", 1000))
        .await
        .unwrap();
    assert_eq!(store.holders("a").await.unwrap(), 1);
    a.kill().unwrap();
    let _ = a.wait();
    let killed = Instant::now();
    drop(res);
    let status = chat_on(pb, false).await;
    let waited = killed.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(300),
        "B waited for A's lease: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "…but only until its TTL ran out: {waited:?}"
    );
    let _ = b.kill();
    let _ = b.wait();
}

#[actix_rt::test]
async fn redis_stopping_and_coming_back_mid_run_fails_no_request() {
    let mut redis = RedisServer::start();
    let port = redis.port.to_string();
    let (up, r) = single(
        FakeConfig::default(),
        &[
            ("LLM_ROUTER_BALANCE_STRATEGY", "first_available"),
            ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
            ("LLM_ROUTER_REDIS_PORT", &port),
            ("LLM_ROUTER_USE_PROMETHEUS", "1"),
        ],
    );
    let state = || async {
        r.health().await["shared_state"]["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(eventually(Duration::from_secs(5), || async { state().await == "up" }).await);
    for i in 0..30 {
        if i == 10 {
            redis.stop();
        }
        if i == 20 {
            assert_eq!(state().await, "down", "/health shows Redis is away");
            let mut m = client().get(r.url("/metrics")).send().await.unwrap();
            let text = String::from_utf8(m.body().await.unwrap().to_vec()).unwrap();
            assert!(
                text.contains("llm_router_shared_state_up 0"),
                "metric shows it too"
            );
            redis.restart();
        }
        let res = r.chat("m", false).await;
        assert_eq!(res.status(), 200, "request {i}");
    }
    assert!(
        eventually(Duration::from_secs(5), || async { state().await == "up" }).await,
        "resynchronised when Redis came back"
    );
    assert_eq!(r.chat("m", false).await.status(), 200);
    assert_eq!(up.request_count(), 31);
}

#[actix_rt::test]
async fn a_client_disconnect_releases_the_shared_lease_at_once() {
    let redis = RedisServer::start();
    let port = redis.port.to_string();
    let (_up, r) = single(
        FakeConfig {
            chunks: 100,
            chunk_delay: Duration::from_millis(50),
            ..Default::default()
        },
        &[
            ("LLM_ROUTER_BALANCE_STRATEGY", "first_available"),
            ("LLM_ROUTER_REDIS_HOST", "127.0.0.1"),
            ("LLM_ROUTER_REDIS_PORT", &port),
            ("LLM_ROUTER_REDIS_PREFIX", "d:"),
        ],
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            r.health().await["shared_state"]["state"] == "up"
        })
        .await
    );
    let store = Store::connect(&store_opts(&redis, "d:", 1000))
        .await
        .unwrap();
    {
        let mut res = r.chat("m", true).await;
        use futures_util::StreamExt;
        assert!(res.next().await.unwrap().is_ok());
        assert_eq!(store.holders("a").await.unwrap(), 1);
    }
    assert!(
        eventually(Duration::from_millis(500), || async {
            store.holders("a").await.unwrap() == 0
        })
        .await,
        "released in Redis as soon as the client left, not at the TTL"
    );
}

fn redis_env(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        (
            "LLM_ROUTER_BALANCE_STRATEGY",
            "first_available_optim".to_string(),
        ),
        ("LLM_ROUTER_REDIS_HOST", "127.0.0.1".to_string()),
        ("LLM_ROUTER_REDIS_PORT", redis.port.to_string()),
        (
            "LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS",
            "0.1".to_string(),
        ),
    ]
}

#[actix_rt::test]
async fn replicas_see_each_others_host_occupancy_and_share_keep_alive_pings() {
    let redis = RedisServer::start();
    let monitor = redis.monitor();
    let (h, g) = (
        FakeUpstream::start(FakeConfig {
            chunks: 120,
            chunk_delay: Duration::from_millis(50),
            ..Default::default()
        }),
        FakeUpstream::start(FakeConfig::default()),
    );
    let mut h_m2 = provider("h-m2", &h);
    h_m2["keep_alive"] = serde_json::json!("3s");
    let config = models_config(&[
        ("m1", vec![provider("h-m1", &h), provider("g-m1", &g)]),
        ("m2", vec![h_m2]),
    ]);
    let env = redis_env(&redis);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (a, b) = (Router::start(&config, &env), Router::start(&config, &env));
    for r in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(5), || async {
                r.health().await["shared_state"]["state"] == "up"
            })
            .await
        );
    }
    // Replica A keeps host H busy with m2 (a 6 s stream).
    let mut stream = client()
        .post(a.url("/v1/chat/completions"))
        .send_json(&chat_body("m2", true))
        .await
        .unwrap();
    use futures_util::StreamExt;
    assert!(stream.next().await.unwrap().is_ok());
    // Replica B learns it at a sync: seen in Redis as A publishing its m2 on H, then B (another
    // connection) reading H's occupancy twice after that — twice, so the first read's answer has
    // been applied. (A request to B cannot be the probe: an m1 served on H would change H's model.)
    let host_key = format!("host:{}", h.url());
    let is_host = |c: &MonitorLine| c.words.get(1).is_some_and(|k| k.ends_with(&host_key));
    let b_has_read_twice = || {
        let cmds = monitor.commands();
        let Some(i) = cmds.iter().position(|c| {
            c.command() == "HSET"
                && is_host(c)
                && c.words.get(2).is_some_and(|f| f.ends_with("|m2"))
        }) else {
            return false;
        };
        let publisher = cmds[i].client.clone();
        cmds[i..]
            .iter()
            .filter(|c| c.command() == "HGETALL" && is_host(c) && c.client != publisher)
            .count()
            >= 2
    };
    assert!(
        eventually(Duration::from_secs(20), || async { b_has_read_twice() }).await,
        "A publishes its occupancy of H and B reads it"
    );
    let res = b.chat("m1", false).await;
    assert_eq!(res.headers().get("x-llm-router-provider").unwrap(), "g-m1");
    assert_eq!(
        h.active(),
        1,
        "H was still busy with A's stream when B chose"
    );
    let _ = stream.body().limit(1 << 20).await;
    // Both replicas watch m2's keep-alive (3 s) on H; pings are claimed in Redis, so one replica
    // sends each, ≥ 2.4 s (80 % of the window) after m2 was last served. A duplicate from the other
    // replica would follow within one of its ticks (0.1 s) or syncs (0.5 s).
    let pings = || -> Vec<Instant> {
        h.requests()
            .iter()
            .filter(|q| q.body["max_tokens"] == 1)
            .map(|q| q.received)
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(30), || async { pings().len() >= 3 }).await,
        "m2 is kept warm: {} pings",
        pings().len()
    );
    let pings = pings();
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(1200),
            "one keep-warm ping for both replicas, not two: {gap:?} apart"
        );
    }
}
