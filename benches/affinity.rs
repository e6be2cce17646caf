//! Cache-affinity benchmark (SPEC §7, issue 16 part 6): a multi-turn chat workload over several
//! self-hosted replicas of one model, through several router replicas, with cache affinity on and
//! with the default `balanced` strategy, in the same run.
//!
//! The replicas are fake providers with the prefix-cache cost model (`fake-llm`
//! `prefix_cache.rs`): time to first token grows by `--us-per-token` for every prompt token the
//! replica has not cached, and each replica caches `--cache-tokens` tokens (LRU). Each session has
//! its own long system prompt and grows by a user and an assistant message per turn; a client
//! worker runs its sessions turn after turn, sending each turn to the next router replica (as a
//! load balancer in front of the routers would). Both modes get fresh replicas (cold caches) and
//! the same workload.
//!
//! Reported per mode: median and p90 TTFT (first body byte of the streamed answer), throughput
//! (turns per second of wall time), the replicas' cached share of prompt tokens, and — with
//! affinity — the hit share from `x-llm-router-decision`.
//!
//! Run: `cargo bench --bench affinity` (or `scripts/bench-affinity.sh`, which passes its
//! arguments on: `--sessions 48 --turns 8 --concurrency 16 --replicas 4 --routers 2
//! --us-per-token 100 --cache-tokens 12000`).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fake_llm::{FakeConfig, FakeUpstream, PrefixCacheModel};
use futures_util::StreamExt;
use serde_json::{json, Value};

struct Args {
    sessions: usize,
    turns: usize,
    concurrency: usize,
    replicas: usize,
    routers: usize,
    us_per_token: u64,
    cache_tokens: usize,
}

fn args() -> Args {
    let mut a = Args {
        sessions: 48,
        turns: 8,
        concurrency: 16,
        replicas: 4,
        routers: 2,
        us_per_token: 100,
        cache_tokens: 12_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` passes `--bench`; flags without a value are ignored.
        if !flag.starts_with("--") || flag == "--bench" {
            continue;
        }
        let Some(v) = it.next() else { break };
        let n: u64 = v
            .parse()
            .unwrap_or_else(|_| panic!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--sessions" => a.sessions = n as usize,
            "--turns" => a.turns = n as usize,
            "--concurrency" => a.concurrency = n as usize,
            "--replicas" => a.replicas = n as usize,
            "--routers" => a.routers = n as usize,
            "--us-per-token" => a.us_per_token = n,
            "--cache-tokens" => a.cache_tokens = n as usize,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A router replica on 127.0.0.1 in its own thread and actix System.
struct RouterProc {
    url: String,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

fn start_router(models: &Value, env: &[(&str, &str)]) -> RouterProc {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models-config.json");
    std::fs::write(&path, models.to_string()).unwrap();
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert(
        "LLM_ROUTER_MODELS_CONFIG".into(),
        path.display().to_string(),
    );
    vars.insert("LLM_ROUTER_SERVER_WORKERS_COUNT".into(), "1".into());
    vars.insert(
        "LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS".into(),
        "0".into(),
    );
    vars.insert("LLM_ROUTER_LOG_LEVEL".into(), "error".into());
    for (k, v) in env {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = llm_router::Settings::from_vars(&vars).expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = llm_router::run(listener, settings).await.expect("router");
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        });
    });
    let handle = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    RouterProc {
        url,
        handle,
        _dir: dir,
    }
}

/// The messages of `session`'s turn `t` (1-based): its system prompt, then the history.
fn messages(session: usize, t: usize) -> Value {
    let filler = "You are the assistant of a Polish logistics company. Answer precisely, cite \
        the relevant regulation, keep a formal tone and list the steps in order. ";
    let mut system = format!("Session {session}. ");
    while system.len() < 6000 {
        system.push_str(filler);
    }
    let mut m = vec![json!({"role": "system", "content": system})];
    for i in 1..=t {
        let user = format!(
            "Question {i} of session {session}: how should shipment {i} be declared when it \
             crosses the border, and which documents must travel with it? {}",
            "Details follow. ".repeat(12)
        );
        m.push(json!({"role": "user", "content": user}));
        if i < t {
            let answer = format!(
                "Answer {i}: {}",
                "The declaration needs these steps. ".repeat(10)
            );
            m.push(json!({"role": "assistant", "content": answer}));
        }
    }
    Value::Array(m)
}

#[derive(Default)]
struct Outcome {
    ttft: Vec<Duration>,
    errors: usize,
    hits: usize,
    placed: usize,
    wall: Duration,
    cached: u64,
    uncached: u64,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn run(a: &Args, affinity: bool) -> Outcome {
    let replicas: Vec<FakeUpstream> = (0..a.replicas)
        .map(|i| {
            FakeUpstream::start(FakeConfig {
                name: format!("gpu-{i}"),
                chunks: 8,
                prefix_cache: Some(PrefixCacheModel {
                    per_uncached_token: Duration::from_micros(a.us_per_token),
                    capacity_tokens: a.cache_tokens,
                }),
                ..Default::default()
            })
        })
        .collect();
    let providers: Vec<Value> = replicas
        .iter()
        .enumerate()
        .map(|(i, u)| {
            json!({"id": format!("gpu-{i}"), "api_host": u.url(), "api_type": "vllm",
                   "api_token": "", "model_path": "", "weight": 1.0})
        })
        .collect();
    let models = json!({"fleet": {"llama": {"providers": providers}},
                        "active_models": {"fleet": ["llama"]}});
    let env: &[(&str, &str)] = if affinity {
        &[("LLM_ROUTER_CACHE_AFFINITY", "1")]
    } else {
        &[]
    };
    let routers: Vec<RouterProc> = (0..a.routers).map(|_| start_router(&models, env)).collect();
    let urls: Vec<String> = routers
        .iter()
        .map(|r| format!("{}/v1/chat/completions", r.url))
        .collect();

    let (sessions, turns, conc) = (a.sessions, a.turns, a.concurrency);
    let mut out = actix_rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let started = Instant::now();
        let workers = (0..conc).map(|w| {
            let (client, urls) = (client.clone(), urls.clone());
            async move {
                let mut o = Outcome::default();
                for s in (w..sessions).step_by(conc) {
                    for t in 1..=turns {
                        let url = &urls[(s + t) % urls.len()];
                        let body = json!({"model": "llama", "stream": true, "max_tokens": 8,
                                          "messages": messages(s, t)});
                        let sent = Instant::now();
                        let Ok(mut res) = client.post(url).send_json(&body).await else {
                            o.errors += 1;
                            continue;
                        };
                        if res.status() != 200 {
                            o.errors += 1;
                            continue;
                        }
                        let first = res.next().await;
                        let ttft = sent.elapsed();
                        if let Some(d) = res.headers().get("x-llm-router-decision") {
                            let d = d.to_str().unwrap_or("");
                            if d.contains("affinity=") {
                                o.placed += 1;
                                o.hits += usize::from(d.contains("affinity=hit"));
                            }
                        }
                        while let Some(chunk) = res.next().await {
                            if chunk.is_err() {
                                o.errors += 1;
                                break;
                            }
                        }
                        match first {
                            Some(Ok(_)) => o.ttft.push(ttft),
                            _ => o.errors += 1,
                        }
                    }
                }
                o
            }
        });
        let parts = futures_util::future::join_all(workers).await;
        let mut o = Outcome {
            wall: started.elapsed(),
            ..Default::default()
        };
        for p in parts {
            o.ttft.extend(p.ttft);
            o.errors += p.errors;
            o.hits += p.hits;
            o.placed += p.placed;
        }
        o
    });
    for r in &replicas {
        let (c, u) = r.prefix_cache_tokens();
        out.cached += c;
        out.uncached += u;
    }
    for r in routers {
        futures_executor::block_on(r.handle.stop(false));
    }
    out.ttft.sort();
    out
}

fn main() {
    let a = args();
    println!(
        "cache affinity: {} sessions × {} turns, {} client workers, {} replicas ({} µs/uncached \
         token, {} cached tokens each), {} router replicas",
        a.sessions, a.turns, a.concurrency, a.replicas, a.us_per_token, a.cache_tokens, a.routers
    );
    let mut rows = Vec::new();
    for (name, affinity) in [("balanced", false), ("affinity", true)] {
        let o = run(&a, affinity);
        let n = o.ttft.len();
        let median = quantile(&o.ttft, 0.5);
        let p90 = quantile(&o.ttft, 0.9);
        let tput = n as f64 / o.wall.as_secs_f64();
        let cached = o.cached as f64 / (o.cached + o.uncached).max(1) as f64;
        let hits = if o.placed > 0 {
            format!("{:.0} %", 100.0 * o.hits as f64 / o.placed as f64)
        } else {
            "-".into()
        };
        println!(
            "{name:>9}: median TTFT {:>7.1} ms, p90 {:>7.1} ms, {:>6.1} turns/s, cached \
             prompt tokens {:>5.1} %, affinity hits {hits}, errors {}",
            median.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3,
            tput,
            100.0 * cached,
            o.errors
        );
        rows.push((median, tput));
    }
    let (b, f) = (rows[0], rows[1]);
    println!(
        "affinity vs balanced: median TTFT {:.2}× lower, throughput {:.2}×",
        b.0.as_secs_f64() / f.0.as_secs_f64().max(1e-9),
        f.1 / b.1.max(1e-9)
    );
}
