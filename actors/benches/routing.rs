//! Cost of the smart-routing decisions on the request path: one `simple_semantic_routing` decision
//! (shipped rules, Polish and English prompts of ~60 B, ~600 B and ~4 KB) and one cache-affinity
//! placement (key derivation + ring walk over 4 and 64 providers).
//! Run: `cargo bench -p llm-router-actors --bench routing`.
//!
//! Criterion reports wall time, which on a shared machine includes time waiting for a core; the
//! bench first prints the on-CPU time per decision (Linux `/proc/thread-self/schedstat`), which
//! is what a decision costs the router.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llm_router_actors::routing::affinity::{SessionInputs, SessionKey};
use llm_router_actors::routing::semantic::DEFAULT_RULES_PATH;
use llm_router_actors::routing::{AffinityConfig, CacheAffinity, SemanticRouter};
use llm_router_actors::strategies::Candidate;

const SHORT_EN: &str = "Write a Python function that reverses a linked list.";
const SHORT_PL: &str = "Napisz wiersz o jesieni w Krakowie.";
const MEDIUM_PL: &str = "Mam problem z aplikacją. Kiedy uruchamiam skrypt, dostaję błąd \
    TypeError: undefined is not a function w linii 42. Próbowałem już przeinstalować zależności \
    przez npm, ale to nic nie dało. Czy możesz wyjaśnić, co może być przyczyną, i zaproponować \
    poprawkę? Załączam fragment kodu: function render(items) { return items.map(i => i.name); } \
    oraz konfigurację webpacka. Dodatkowo chciałbym wiedzieć, jak napisać test jednostkowy, który \
    wychwyci taki błąd w przyszłości, najlepiej w Jest. Dzięki!";

fn long_text() -> String {
    // ~4 KB of mixed prose, the size of a long pasted context.
    let para = "Zadanie: oblicz całkę oznaczoną funkcji f(x) = x^2 + 3x od 0 do 2, a potem \
        wyjaśnij krok po kroku, jak działa metoda podstawiania. The second part asks for a short \
        story about a mathematician who discovers a new prime number pattern. ";
    para.repeat(4096 / para.len() + 1)
}

fn router() -> SemanticRouter {
    let vars: HashMap<String, String> = [(
        "LLM_ROUTER_ROUTING_MODELS".to_string(),
        "small|medium|large".to_string(),
    )]
    .into();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(DEFAULT_RULES_PATH);
    SemanticRouter::from_vars(&vars, &rules).expect("shipped rules")
}

/// On-CPU nanoseconds of this thread so far, where Linux tells.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn cpu_per_call(name: &str, mut f: impl FnMut()) {
    for _ in 0..100 {
        f();
    }
    let (Some(start), wall) = (thread_cpu_ns(), Instant::now()) else {
        return;
    };
    // Long enough that the scheduler's accounting granularity does not matter.
    let mut iters = 0u32;
    while wall.elapsed().as_millis() < 500 {
        for _ in 0..100 {
            f();
        }
        iters += 100;
    }
    let cpu = thread_cpu_ns().unwrap_or(start) - start;
    println!(
        "{name:<42} {:>9.2} µs on CPU per call ({:.2} µs wall)",
        cpu as f64 / 1e3 / f64::from(iters),
        wall.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
    );
}

fn semantic(c: &mut Criterion) {
    let r = router();
    let long = long_text();
    let prompts = [
        ("short_en", SHORT_EN),
        ("short_pl", SHORT_PL),
        ("medium_pl", MEDIUM_PL),
        ("long_4k", long.as_str()),
    ];
    for (name, text) in prompts {
        cpu_per_call(
            &format!("semantic_decide/{name} ({} B)", text.len()),
            || {
                black_box(r.decide(black_box(text)));
            },
        );
    }
    let mut g = c.benchmark_group("semantic_decide");
    for (name, text) in prompts {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(r.decide(black_box(text)))));
    }
    g.finish();
}

fn affinity(c: &mut Criterion) {
    let system = "You are Claude Code, a coding assistant. ".repeat(200);
    let mut g = c.benchmark_group("affinity_place");
    for n in [4usize, 64] {
        let ids: Vec<String> = (0..n).map(|i| format!("vllm-{i}")).collect();
        let a = CacheAffinity::new(&ids, &AffinityConfig::default());
        let candidates: Vec<Candidate> = (0..n)
            .map(|i| Candidate {
                in_flight: (i % 5) as u32,
                ..Candidate::new(i)
            })
            .collect();
        let now = Instant::now();
        g.bench_function(format!("conversation_key_{n}_providers"), |b| {
            b.iter(|| {
                let key = SessionKey::derive(&SessionInputs {
                    system: Some(black_box(&system)),
                    first_user: Some("fix the failing test"),
                    ..Default::default()
                })
                .unwrap();
                black_box(a.place(key, &candidates, now))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, semantic, affinity);
criterion_main!(benches);
