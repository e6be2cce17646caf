//! Cost of the `model: "auto"` choice on the request path: the semantic rules alone, and with
//! profiles on, the rules plus the ranking of the pool (`smart::stage::choose`: benchmarks
//! lookup, measured-speed summaries, score, sort) over pools of 3 and 8 models, every model
//! profiled on two providers in all five categories. No criterion: a plain timed loop on one
//! thread, reporting on-CPU time per choice (Linux `/proc/thread-self/schedstat`) beside wall
//! time. Run: `cargo bench --bench auto` (release profile).

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use llm_router::profiles::probe::Measurement;
use llm_router::profiles::{ProfileSettings, Profiles, ProviderProfile, Table, CATEGORIES};
use llm_router::smart::stage::choose;
use llm_router_actors::config::ModelsConfig;
use llm_router_actors::routing::semantic::DEFAULT_RULES_PATH;
use llm_router_actors::routing::SemanticRouter;
use serde_json::json;

const PROMPTS: [(&str, &str); 3] = [
    ("greeting", "hello, how are you today?"),
    (
        "code",
        "Write a Python function that parses JSON and fix the bug in my code",
    ),
    (
        "polish",
        "Napisz krótki wiersz o jesieni w Krakowie i wyjaśnij, jakich środków stylistycznych użyłeś.",
    ),
];

/// Names matched by the shipped benchmarks file, so the lookup is the real one.
const MODELS: [&str; 8] = [
    "llama-3.2-3b-instruct",
    "qwen2.5-7b-instruct",
    "gemma-3-12b-it",
    "qwen2.5-coder-32b-instruct",
    "mistral-small-24b-instruct",
    "qwen2.5-32b-instruct",
    "llama-3.3-70b-instruct",
    "unknown-model",
];

fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn per_call(name: &str, mut f: impl FnMut()) {
    for _ in 0..1000 {
        f();
    }
    let (cpu0, wall) = (thread_cpu_ns(), Instant::now());
    let mut iters = 0u32;
    while wall.elapsed().as_millis() < 400 {
        for _ in 0..100 {
            f();
        }
        iters += 100;
    }
    let wall_us = wall.elapsed().as_secs_f64() * 1e6 / f64::from(iters);
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => format!("{:>8.2}", (b - a) as f64 / 1e3 / f64::from(iters)),
        _ => format!("{:>8}", "n/a"),
    };
    println!("{name:<34} {cpu} µs CPU {wall_us:>8.2} µs wall");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let state = tempfile::tempdir().unwrap();
    let bench_file = root.join("resources/routing/benchmarks.json");
    for n in [3usize, 8] {
        let pool = &MODELS[..n];
        let cfg: serde_json::Map<String, serde_json::Value> = pool
            .iter()
            .map(|m| {
                let providers: Vec<_> = (0..2)
                    .map(|i| {
                        json!({"id": format!("{m}-{i}"), "api_host": "http://127.0.0.1:9",
                                    "api_type": "vllm", "model_path": m})
                    })
                    .collect();
                (m.to_string(), json!({"providers": providers}))
            })
            .collect();
        let doc = json!({"bench": cfg, "active_models": {"bench": pool}});
        let models: &'static ModelsConfig = Box::leak(Box::new(
            ModelsConfig::from_json_str(&doc.to_string()).unwrap(),
        ));
        let mut table = Table::default();
        for (i, m) in pool.iter().enumerate() {
            let mut by_provider = BTreeMap::new();
            for p in 0..2 {
                let categories = CATEGORIES
                    .iter()
                    .map(|c| {
                        let m = Measurement {
                            ok: true,
                            ttft_ms: Some(80.0 + i as f64),
                            tokens_per_s: Some(20.0 + 7.0 * i as f64 + p as f64),
                            tokens: 32,
                            error: None,
                            measured_at: 0,
                        };
                        (c.to_string(), m)
                    })
                    .collect();
                by_provider.insert(format!("{m}-{p}"), ProviderProfile { categories });
            }
            table.models.insert(m.to_string(), by_provider);
        }
        std::fs::write(
            state.path().join("profiles.json"),
            serde_json::to_string(&table).unwrap(),
        )
        .unwrap();
        let vars: HashMap<&str, String> = [
            ("LLM_ROUTER_PROFILES", "1".to_string()),
            ("LLM_ROUTER_STATE_DIR", state.path().display().to_string()),
            (
                "LLM_ROUTER_BENCHMARKS_FILE",
                bench_file.display().to_string(),
            ),
        ]
        .into();
        let mut errs = Vec::new();
        // Unset variables take their documented defaults, as the settings reader gives them.
        let get = |k: &str| {
            vars.get(k).cloned().unwrap_or_else(|| {
                llm_router::profiles::VARS
                    .iter()
                    .find(|v| v.0 == k)
                    .map(|v| v.1.to_string())
                    .unwrap_or_default()
            })
        };
        let profiles = Profiles::load(ProfileSettings::from_vars(&get, &mut errs));
        assert!(errs.is_empty(), "{errs:?}");
        let router_vars: HashMap<String, String> =
            [("LLM_ROUTER_ROUTING_MODELS".to_string(), pool.join("|"))].into();
        let router =
            SemanticRouter::from_vars(&router_vars, &root.join(DEFAULT_RULES_PATH)).unwrap();
        for (label, text) in PROMPTS {
            let rules = choose(&router, None, "auto", text);
            let ranked = choose(&router, Some((&profiles, models)), "auto", text);
            assert!(ranked.ranked.is_some(), "{label}: ranked");
            println!(
                "pool {n}, {label}: rules → {}, ranked → {} ({:?})",
                rules.model, ranked.model, ranked.ranked
            );
            per_call(&format!("  rules only ({label})"), || {
                black_box(choose(&router, None, "auto", black_box(text)));
            });
            per_call(&format!("  rules + ranking ({label})"), || {
                black_box(choose(
                    &router,
                    Some((&profiles, models)),
                    "auto",
                    black_box(text),
                ));
            });
        }
    }
}
