//! Provider choice through the real router: each strategy's distribution, first_available's
//! exclusivity and bounded wait, Retry-After, and the active monitors.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

fn fake(latency_ms: u64) -> FakeUpstream {
    FakeUpstream::start(FakeConfig {
        latency: Duration::from_millis(latency_ms),
        ..Default::default()
    })
}

fn strategy(name: &str) -> [(&'static str, String); 1] {
    [("LLM_ROUTER_BALANCE_STRATEGY", name.to_string())]
}

fn env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Sends `n` chat requests one after another; returns how many each provider served.
async fn sequential(r: &Router, model: &str, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let res = r.chat(model, false).await;
        assert_eq!(res.status(), 200);
        let p = res
            .headers()
            .get("x-llm-router-provider")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        *counts.entry(p).or_insert(0) += 1;
    }
    counts
}

#[actix_rt::test]
async fn balanced_spreads_evenly_and_weighted_gives_exact_shares() {
    let ups: Vec<FakeUpstream> = (0..3).map(|_| fake(0)).collect();
    let providers: Vec<Value> = ["a", "b", "c"]
        .iter()
        .zip(&ups)
        .map(|(id, up)| provider(id, up))
        .collect();
    let r = Router::start(&models_config(&[("m", providers)]), &[]);
    let counts = sequential(&r, "m", 300).await;
    assert_eq!((counts["a"], counts["b"], counts["c"]), (100, 100, 100));
    drop(r);

    let mut a = provider("a", &ups[0]);
    a["weight"] = json!(3.0);
    let b = provider("b", &ups[1]);
    let r = Router::start(
        &models_config(&[("m", vec![a, b])]),
        &env(&strategy("weighted")),
    );
    let counts = sequential(&r, "m", 400).await;
    assert_eq!(
        (counts["a"], counts["b"]),
        (300, 100),
        "weight 3 is three times weight 1"
    );
}

/// Samples each fake's active-request count while `work` runs; returns the maxima seen.
async fn max_active<F: std::future::Future>(
    ups: &[&FakeUpstream],
    work: F,
) -> (Vec<usize>, F::Output) {
    let mut maxes = vec![0; ups.len()];
    let mut work = Box::pin(work);
    loop {
        for (i, u) in ups.iter().enumerate() {
            maxes[i] = maxes[i].max(u.active());
        }
        let tick = Box::pin(actix_rt::time::sleep(Duration::from_millis(3)));
        match futures_util::future::select(work, tick).await {
            futures_util::future::Either::Left((out, _)) => return (maxes, out),
            futures_util::future::Either::Right((_, w)) => work = w,
        }
    }
}

#[actix_rt::test]
async fn first_available_serves_one_request_per_provider_at_a_time() {
    let (a, b) = (fake(80), fake(80));
    let r = Router::start(
        &models_config(&[("m", vec![provider("a", &a), provider("b", &b)])]),
        &env(&strategy("first_available")),
    );
    let started = Instant::now();
    let (maxes, statuses) = max_active(&[&a, &b], async {
        let reqs = (0..6).map(|_| async { r.chat("m", false).await.status().as_u16() });
        futures_util::future::join_all(reqs).await
    })
    .await;
    assert_eq!(statuses, vec![200; 6], "all served, by queueing");
    assert_eq!(maxes, vec![1, 1], "never two requests on one provider");
    assert!(
        started.elapsed() >= Duration::from_millis(3 * 80),
        "six requests, two at a time"
    );
    assert_eq!(a.request_count() + b.request_count(), 6);
}

#[actix_rt::test]
async fn a_waiting_request_gives_up_at_its_deadline_with_503() {
    // The first request streams for ~4 s (EXTERNAL_TIMEOUT bounds gaps, not a stream's length);
    // the second waits for the provider until its own deadline (1 s) and gives up — while the
    // first still holds the provider, so it neither got the provider nor waited for it.
    let (up, r) = single(
        FakeConfig {
            chunks: 16,
            chunk_delay: Duration::from_millis(250),
            ..Default::default()
        },
        &[
            ("LLM_ROUTER_BALANCE_STRATEGY", "first_available"),
            ("LLM_ROUTER_EXTERNAL_TIMEOUT", "1"),
        ],
    );
    let first_done = std::cell::Cell::new(false);
    let first = async {
        let mut res = r.chat("m", true).await;
        let body = res.body().limit(1 << 20).await.unwrap();
        first_done.set(true);
        (
            res.status().as_u16(),
            String::from_utf8_lossy(&body).contains("[DONE]"),
        )
    };
    let second = async {
        assert!(
            eventually(Duration::from_secs(10), || async { up.active() == 1 }).await,
            "the first request holds the provider"
        );
        let t = Instant::now();
        let mut res = r.chat("m", false).await;
        let body: Value = res.json().await.unwrap();
        (
            res.status().as_u16(),
            res.headers().get("retry-after").cloned(),
            body,
            t.elapsed(),
            first_done.get(),
        )
    };
    let (first, (status, retry, body, waited, holder_done)) =
        futures_util::future::join(first, second).await;
    assert_eq!(first, (200, true), "the holder finished normally");
    assert_eq!(status, 503);
    assert!(retry.is_some());
    assert!(
        body["error"]["message"].as_str().unwrap().contains("busy"),
        "{body}"
    );
    assert!(
        waited >= Duration::from_millis(950),
        "gave up at its deadline, not before: {waited:?}"
    );
    assert!(
        !holder_done,
        "…and not never: it gave up while the holder was still streaming ({waited:?})"
    );
    assert_eq!(
        up.request_count(),
        1,
        "the waiting request never reached the provider"
    );
}

#[actix_rt::test]
async fn a_client_disconnect_frees_a_first_available_provider_at_once() {
    let (up, r) = single(
        FakeConfig {
            chunks: 600,
            chunk_delay: Duration::from_millis(50),
            ..Default::default()
        },
        &[("LLM_ROUTER_BALANCE_STRATEGY", "first_available")],
    );
    {
        let mut res = r.chat("m", true).await;
        use futures_util::StreamExt;
        let first = res.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        assert_eq!(r.in_flight("a").await, 1);
        // Dropped here, mid-stream.
    }
    // The stream had ~30 s to go: freed "at once" means its upstream request was cancelled and
    // the provider serves the next request long before that stream would have ended.
    assert!(
        eventually(Duration::from_secs(10), || async { up.active() == 0 }).await,
        "the abandoned upstream request was ended"
    );
    assert_eq!(up.cancelled(), 1, "cut, not finished");
    let res = actix_rt::time::timeout(Duration::from_secs(10), r.chat("m", false))
        .await
        .expect("the next request did not wait for the abandoned stream");
    assert_eq!(res.status(), 200);
}

#[actix_rt::test]
async fn adaptive_and_dynamic_weighted_move_traffic_away_from_a_slow_provider() {
    for name in ["adaptive", "dynamic_weighted"] {
        // 400 ms against 0: on a loaded machine the quick one's measured latency grows to tens
        // of ms, which must stay small beside the slow one's for the shares to mean anything.
        let (slow, quick) = (fake(400), fake(0));
        let r = Router::start(
            &models_config(&[(
                "m",
                vec![provider("slow", &slow), provider("quick", &quick)],
            )]),
            &env(&strategy(name)),
        );
        // Both get measured first, then the quick one takes nearly everything.
        sequential(&r, "m", 6).await;
        let counts = sequential(&r, "m", 40).await;
        let slow_share = counts.get("slow").copied().unwrap_or(0);
        assert!(
            slow_share <= 4,
            "{name}: slow provider got {slow_share} of 40: {counts:?}"
        );
    }
}

#[actix_rt::test]
async fn a_provider_that_said_retry_after_is_skipped_until_then() {
    let limited = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 429,
            message: "slow down".into(),
            retry_after: Some(30),
        },
        ..Default::default()
    });
    let ok = fake(0);
    let r = Router::start(
        &models_config(&[
            (
                "m",
                vec![provider("limited", &limited), provider("ok", &ok)],
            ),
            ("solo", vec![provider("solo-limited", &limited)]),
        ]),
        &env(&strategy("first_available")),
    );
    for _ in 0..3 {
        let res = r.chat("m", false).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("x-llm-router-provider").unwrap(), "ok");
    }
    assert_eq!(
        limited.request_count(),
        1,
        "asked once, then left alone for 30 s"
    );
    // A model whose only provider said Retry-After: the client gets 429 with it, the provider is
    // not bothered again.
    let mut res = r.chat("solo", false).await;
    assert_eq!(res.status(), 429);
    let _ = res.body().await;
    let mut res = r.chat("solo", false).await;
    assert_eq!(res.status(), 429);
    let secs: u64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((25..=30).contains(&secs), "{secs}");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate limited"),
        "{body}"
    );
    assert_eq!(
        limited.request_count(),
        2,
        "the second request never reached the provider"
    );
}

async fn state_of(r: &Router, id: &str) -> String {
    r.provider_status(id).await["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_rt::test]
async fn the_provider_monitor_sees_a_provider_die_and_come_back_without_traffic() {
    // A port with nothing listening: the provider is down from the start.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let up_ok = fake(0);
    let mut dead = provider("dead", &up_ok);
    dead["api_host"] = json!(format!("http://127.0.0.1:{port}"));
    let r = Router::start(
        &models_config(&[("m", vec![dead, provider("ok", &up_ok)])]),
        &[("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0.1")],
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            state_of(&r, "dead").await == "open"
        })
        .await,
        "three failed probes open the circuit"
    );
    assert_eq!(state_of(&r, "ok").await, "healthy");
    // The healthy provider's third probe may still be in flight when the dead one's circuit opens.
    assert!(
        eventually(Duration::from_secs(3), || async {
            up_ok.requests().len() >= 3
        })
        .await,
        "probed every 0.1 s: {}",
        up_ok.requests().len()
    );
    let probes = up_ok.requests();
    assert!(
        probes
            .iter()
            .all(|q| q.method == "GET" && q.path == "/health"),
        "vLLM probes GET /health"
    );
    // The provider comes back on its port: the next probe closes the circuit.
    let _back = FakeUpstream::start_on(FakeConfig::default(), port);
    assert!(
        eventually(Duration::from_secs(3), || async {
            state_of(&r, "dead").await == "healthy"
        })
        .await,
        "a successful probe closes the circuit"
    );
}

#[actix_rt::test]
async fn the_keep_alive_monitor_pings_before_the_window_lapses() {
    let up = fake(0);
    let mut p = provider("warm", &up);
    p["keep_alive"] = json!("2s");
    p["model_path"] = json!("org/model-7b");
    let r = Router::start(
        &models_config(&[("m", vec![p])]),
        &[("LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS", "0.1")],
    );
    // Nothing served yet: nothing to keep warm.
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.request_count(), 0);
    let served = Instant::now();
    assert_eq!(r.chat("m", false).await.status(), 200);
    assert!(eventually(Duration::from_secs(4), || async { up.request_count() >= 2 }).await);
    let after = served.elapsed();
    assert!(
        after >= Duration::from_millis(1400),
        "not before 80 % of the window: {after:?}"
    );
    let ping = &up.requests()[1];
    assert_eq!(ping.path, "/v1/chat/completions");
    assert_eq!(ping.body["max_tokens"], 1);
    assert_eq!(ping.body["model"], "org/model-7b");
}

#[actix_rt::test]
async fn rpm_caps_a_providers_requests_per_minute() {
    let (up_a, up_b) = (fake(0), fake(0));
    let mut a = provider("a", &up_a);
    a["rpm"] = json!(2);
    let mut solo = provider("s", &up_a);
    solo["rpm"] = json!(2);
    let r = Router::start(
        &models_config(&[("m", vec![a, provider("b", &up_b)]), ("solo", vec![solo])]),
        &env(&strategy("first_available")),
    );
    // First available is "a" until its two requests of the minute are used, then "b".
    let counts = sequential(&r, "m", 4).await;
    assert_eq!((counts["a"], counts["b"]), (2, 2), "{counts:?}");
    // A model whose only provider is at its rpm: 429 with the wait, provider not called.
    assert_eq!(r.chat("solo", false).await.status(), 200);
    assert_eq!(r.chat("solo", false).await.status(), 200);
    let before = up_a.request_count();
    let res = r.chat("solo", false).await;
    assert_eq!(res.status(), 429);
    let secs: u64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&secs), "{secs}");
    assert_eq!(up_a.request_count(), before);
}
