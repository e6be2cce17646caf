//! `llm-bench`: a keep-alive HTTP load generator for chat completions. Prints one JSON line with
//! throughput, latency percentiles and time to first body byte.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

const USAGE: &str =
    "llm-bench --url URL [--concurrency 64] [--duration 10] [--warmup 1] [--stream] \
[--model fake-model] [--max-tokens N] [--dialect openai|ollama|anthropic]
(prints one JSON line; with LLM_BENCH_SPREAD=1 also p1..p99 of latency on stderr)";

#[derive(Default)]
struct Samples {
    total: Vec<Duration>,
    ttfb: Vec<Duration>,
    errors: u64,
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    (v[i].as_secs_f64() * 1e6).round() / 1e3
}

fn main() {
    let mut url = String::new();
    let (mut conc, mut dur, mut warm, mut stream) = (64usize, 10.0f64, 1.0f64, false);
    let mut model = "fake-model".to_string();
    let mut max_tokens: Option<u64> = None;
    let mut dialect = "openai".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            "--stream" => stream = true,
            _ => {
                let v = args
                    .next()
                    .unwrap_or_else(|| panic!("{flag} needs a value\n{USAGE}"));
                match flag.as_str() {
                    "--url" => url = v,
                    "--concurrency" => conc = v.parse().expect("concurrency"),
                    "--duration" => dur = v.parse().expect("duration"),
                    "--warmup" => warm = v.parse().expect("warmup"),
                    "--model" => model = v,
                    "--max-tokens" => max_tokens = Some(v.parse().expect("max tokens")),
                    "--dialect" => dialect = v,
                    _ => panic!("unknown flag {flag}\n{USAGE}"),
                }
            }
        }
    }
    assert!(!url.is_empty(), "--url is required\n{USAGE}");
    let mut body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello"}],
                                       "stream": stream});
    // The request body and the stream's proper last frame, per client dialect.
    let end_marker: &'static [u8] = match dialect.as_str() {
        "openai" => {
            if let Some(m) = max_tokens {
                body["max_tokens"] = m.into();
            }
            b"data: [DONE]"
        }
        "anthropic" => {
            body["max_tokens"] = max_tokens.unwrap_or(1024).into();
            b"message_stop"
        }
        "ollama" => {
            if let Some(m) = max_tokens {
                body["options"] = serde_json::json!({ "num_predict": m });
            }
            b"\"done\":true"
        }
        other => panic!("unknown dialect {other}\n{USAGE}"),
    };
    let body = bytes::Bytes::from(body.to_string());
    let samples = actix_rt::System::new().block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = awc::Client::builder()
            .connector(awc::Connector::new().limit(0))
            .timeout(Duration::from_secs(30))
            .finish();
        let samples = Rc::new(RefCell::new(Samples::default()));
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(warm);
        let end = measure_from + Duration::from_secs_f64(dur);
        let tasks: Vec<_> = (0..conc)
            .map(|_| {
                let (client, url, body, samples) =
                    (client.clone(), url.clone(), body.clone(), samples.clone());
                actix_rt::spawn(async move {
                    while Instant::now() < end {
                        let t0 = Instant::now();
                        let res = client
                            .post(&url)
                            .insert_header(("content-type", "application/json"))
                            .send_body(body.clone())
                            .await;
                        let mut ttfb = None;
                        let mut ok = false;
                        if let Ok(mut res) = res {
                            ok = res.status().is_success();
                            let mut tail = Vec::new();
                            while let Some(chunk) = res.next().await {
                                match chunk {
                                    Ok(c) => {
                                        ttfb.get_or_insert_with(|| t0.elapsed());
                                        if stream {
                                            tail.extend_from_slice(&c);
                                            if tail.len() > 512 {
                                                tail.drain(..tail.len() - 512);
                                            }
                                        }
                                    }
                                    Err(_) => ok = false,
                                }
                            }
                            if stream && !tail.windows(end_marker.len()).any(|w| w == end_marker) {
                                ok = false;
                            }
                        }
                        if t0 < measure_from {
                            continue;
                        }
                        let mut s = samples.borrow_mut();
                        if ok {
                            s.total.push(t0.elapsed());
                            s.ttfb.push(ttfb.unwrap_or_default());
                        } else {
                            s.errors += 1;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        Rc::try_unwrap(samples)
            .ok()
            .map(RefCell::into_inner)
            .unwrap_or_default()
    });
    let Samples {
        mut total,
        mut ttfb,
        errors,
    } = samples;
    let n = total.len();
    if std::env::var_os("LLM_BENCH_SPREAD").is_some() {
        let spread: Vec<String> = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
            .iter()
            .map(|p| format!("p{}={:.2}", p * 100.0, pct(&mut total, *p)))
            .collect();
        eprintln!("{}", spread.join(" "));
    }
    println!(
        "{}",
        serde_json::json!({
            "requests": n, "errors": errors, "rps": ((n as f64 / dur) * 10.0).round() / 10.0,
            "p50_ms": pct(&mut total, 0.50), "p90_ms": pct(&mut total, 0.90), "p99_ms": pct(&mut total, 0.99), "p999_ms": pct(&mut total, 0.999), "max_ms": pct(&mut total, 1.0),
            "ttfb_p50_ms": pct(&mut ttfb, 0.50), "ttfb_p99_ms": pct(&mut ttfb, 0.99),
            "concurrency": conc, "stream": stream,
        })
    );
}
