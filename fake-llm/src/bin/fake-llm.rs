//! `fake-llm`: the fake provider as a standalone server, for benchmarks.

#![forbid(unsafe_code)]

use std::time::Duration;

use fake_llm::{FakeConfig, PrefixCacheModel};

const USAGE: &str = "fake-llm [--host 127.0.0.1] [--port 9000] [--workers 1] [--latency-ms 0] \
[--chunks 16] [--chunk-delay-ms 0] [--name fake] [--prefix-cache-us-per-token 0] \
[--prefix-cache-tokens 1000000] [--fast]
  --fast                         answer from prepared bytes on one thread (benchmarks: see fast.rs)
  --prefix-cache-us-per-token N  model a prefix cache: N µs of prefill per uncached prompt token
  --prefix-cache-tokens N        its capacity in tokens (with the flag above)";

fn main() -> std::io::Result<()> {
    let mut cfg = FakeConfig {
        chunks: 16,
        ..Default::default()
    };
    let (mut host, mut port, mut workers) = ("127.0.0.1".to_string(), 9000u16, 1usize);
    let (mut per_token_us, mut cache_tokens) = (0u64, 1_000_000usize);
    let mut fast = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return Ok(());
        }
        if flag == "--fast" {
            fast = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value\n{USAGE}"));
        let num = |v: &str| -> u64 {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = num(&value) as u16,
            "--workers" => workers = num(&value) as usize,
            "--latency-ms" => cfg.latency = Duration::from_millis(num(&value)),
            "--chunks" => cfg.chunks = num(&value) as usize,
            "--chunk-delay-ms" => cfg.chunk_delay = Duration::from_millis(num(&value)),
            "--name" => cfg.name = value,
            "--prefix-cache-us-per-token" => per_token_us = num(&value),
            "--prefix-cache-tokens" => cache_tokens = num(&value) as usize,
            _ => panic!("unknown flag {flag}\n{USAGE}"),
        }
    }
    if per_token_us > 0 {
        cfg.prefix_cache = Some(PrefixCacheModel {
            per_uncached_token: Duration::from_micros(per_token_us),
            capacity_tokens: cache_tokens,
        });
    }
    let listener = std::net::TcpListener::bind((host.as_str(), port))?;
    if fast {
        if workers != 1 || per_token_us > 0 || !cfg.chunk_delay.is_zero() {
            panic!("--fast serves on one thread, without a prefix cache or chunk delay\n{USAGE}");
        }
        return fake_llm::fast::serve(listener, &cfg);
    }
    actix_rt::System::new().block_on(async move { fake_llm::serve(listener, cfg, workers)?.await })
}
