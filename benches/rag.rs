//! Retrieval cost of the RAG index: exact cosine top-10 over a collection of N chunks of D
//! dimensions (`Collection::top_k`, what every request with `langchain_rag` on pays besides the
//! query's embedding call). No criterion: a plain timed loop, run with
//! `cargo bench --bench rag` (release profile); prints the median of 21 runs per size.

use std::hint::black_box;
use std::time::Instant;

use llm_router::rag::index::{Chunk, Collection};
use serde_json::Value;

/// A deterministic pseudo-random vector (xorshift), values in [-1, 1).
fn vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn main() {
    println!("{:>8} {:>6} {:>12}", "chunks", "dims", "top-10 (ms)");
    for dims in [384, 1024] {
        for n in [1_000usize, 10_000, 50_000] {
            let chunks = (0..n)
                .map(|i| {
                    Chunk::new(
                        &format!("d{}", i / 8),
                        i % 8,
                        String::new(),
                        Value::Null,
                        vector(i as u64 + 1, dims),
                    )
                })
                .collect();
            let c = Collection::default().upsert("bench", dims, chunks);
            let q = vector(u64::MAX / 3, dims);
            let mut times: Vec<f64> = (0..21)
                .map(|_| {
                    let t = Instant::now();
                    black_box(c.top_k(black_box(&q), 10));
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!("{n:>8} {dims:>6} {:>12.3}", times[times.len() / 2]);
        }
    }
}
