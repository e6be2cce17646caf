//! Measured model profiles and benchmark scores (SPEC §7, `LLM_ROUTER_PROFILES`).
//!
//! With profiling on, a task spawned at start-up (off the request path) sends a short probe
//! prompt per category ([`CATEGORIES`]: reasoning, coding, creative, general, Polish) to every
//! provider of every model (embedding providers excluded), at most
//! `LLM_ROUTER_PROFILES_CONCURRENCY` at once ([`probe`]), and records time to first token,
//! tokens per second and success. The table is persisted as JSON in
//! `<LLM_ROUTER_STATE_DIR>/profiles.json` after every run and read back at start: a provider
//! already measured in every category is not probed again; `POST /admin/reprofile` measures
//! everything anew. [`rank`] is the pure ranking `model: "auto"` can call
//! ([`Profiles::rank`] feeds it the benchmarks and the measured speeds).

pub mod probe;
pub mod rank;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use llm_router_actors::config::LiveModels;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use probe::Measurement;
pub use rank::{Benchmarks, Candidate, Complexity, Scored, CATEGORIES};

/// `(name, default, meaning)`, for parsing and `--help`.
pub const VARS: &[(&str, &str, &str)] = &[
    (
        "LLM_ROUTER_PROFILES",
        "false",
        "measure every model's providers with probe prompts per category at start-up (kept in LLM_ROUTER_STATE_DIR, reused after a restart)",
    ),
    (
        "LLM_ROUTER_PROFILES_CONCURRENCY",
        "2",
        "profile probes in flight at once",
    ),
    (
        "LLM_ROUTER_PROFILES_MAX_TOKENS",
        "64",
        "tokens asked of each profile probe",
    ),
    (
        "LLM_ROUTER_PROFILES_TIMEOUT_SECONDS",
        "60",
        "bound on one profile probe",
    ),
    (
        "LLM_ROUTER_BENCHMARKS_FILE",
        "resources/routing/benchmarks.json",
        "per-model category quality scores (GET /admin/benchmarks, auto ranking)",
    ),
];

/// One probe prompt per category.
pub const PROBES: [(&str, &str); 5] = [
    (
        "reasoning",
        "A train leaves at 9:40 and arrives at 11:15. How many minutes does the journey take? Give the number and one sentence of reasoning.",
    ),
    (
        "coding",
        "Write a Python function is_palindrome(s) that ignores case and spaces.",
    ),
    (
        "creative",
        "Write a four-line poem about a lighthouse in winter.",
    ),
    (
        "general",
        "In two sentences, explain what a gateway for language models does.",
    ),
    (
        "polish",
        "Wyjaśnij w dwóch zdaniach, czym jest fotosynteza.",
    ),
];

#[derive(Clone, Debug)]
pub struct ProfileSettings {
    pub enabled: bool,
    pub state_dir: PathBuf,
    pub concurrency: usize,
    pub max_tokens: u64,
    pub timeout: Duration,
    pub benchmarks: Benchmarks,
}

impl ProfileSettings {
    /// Reads the variables and the benchmarks file (a missing file is an error only with
    /// profiling on or the variable set; a malformed one always is).
    pub fn from_vars(get: &dyn Fn(&str) -> String, errs: &mut Vec<String>) -> ProfileSettings {
        let mut number = |var: &str, min: u64| -> u64 {
            let raw = get(var);
            match raw.trim().parse::<u64>() {
                Ok(n) if n >= min => n,
                _ => {
                    errs.push(format!(
                        "{var}: expected a whole number ≥ {min}, got \"{raw}\""
                    ));
                    min
                }
            }
        };
        let concurrency = number("LLM_ROUTER_PROFILES_CONCURRENCY", 1) as usize;
        let max_tokens = number("LLM_ROUTER_PROFILES_MAX_TOKENS", 1);
        let timeout = Duration::from_secs(number("LLM_ROUTER_PROFILES_TIMEOUT_SECONDS", 1));
        let enabled = crate::settings::parse_bool(&get("LLM_ROUTER_PROFILES"));
        let file = get("LLM_ROUTER_BENCHMARKS_FILE");
        let default_file = VARS
            .iter()
            .find(|v| v.0 == "LLM_ROUTER_BENCHMARKS_FILE")
            .map(|v| v.1)
            .unwrap_or_default();
        let benchmarks = match std::fs::read_to_string(&file) {
            Ok(text) => match serde_json::from_str::<Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(Benchmarks::parse)
            {
                Ok(b) => b,
                Err(e) => {
                    errs.push(format!("{file} (LLM_ROUTER_BENCHMARKS_FILE): {e}"));
                    Benchmarks::default()
                }
            },
            Err(e) if enabled || file != default_file => {
                errs.push(format!(
                    "{file} (LLM_ROUTER_BENCHMARKS_FILE): cannot read: {e}"
                ));
                Benchmarks::default()
            }
            Err(_) => Benchmarks::default(),
        };
        ProfileSettings {
            enabled,
            state_dir: PathBuf::from(get("LLM_ROUTER_STATE_DIR")),
            concurrency,
            max_tokens,
            timeout,
            benchmarks,
        }
    }
}

/// A provider's measurements, by category.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProviderProfile {
    pub categories: BTreeMap<String, Measurement>,
}

/// Everything measured: model → provider id → profile. The persisted file's shape.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Table {
    pub version: u32,
    /// Completed runs, over the file's life.
    pub runs: u64,
    /// Unix seconds of the last completed run.
    pub updated_at: u64,
    pub models: BTreeMap<String, BTreeMap<String, ProviderProfile>>,
}

/// A model's measurements summarised: medians over its successful probes, success rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub ttft_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub success: f64,
    pub probes: usize,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Table {
    /// The summary of `model` over all its providers; `None` when never probed.
    pub fn summary(&self, model: &str) -> Option<Summary> {
        let ms: Vec<&Measurement> = self
            .models
            .get(model)?
            .values()
            .flat_map(|p| p.categories.values())
            .collect();
        if ms.is_empty() {
            return None;
        }
        let ok: Vec<&&Measurement> = ms.iter().filter(|m| m.ok).collect();
        Some(Summary {
            ttft_ms: median(ok.iter().filter_map(|m| m.ttft_ms).collect()),
            tokens_per_s: median(ok.iter().filter_map(|m| m.tokens_per_s).collect()),
            success: ok.len() as f64 / ms.len() as f64,
            probes: ms.len(),
        })
    }

    fn complete(&self, model: &str, provider: &str) -> bool {
        self.models
            .get(model)
            .and_then(|m| m.get(provider))
            .is_some_and(|p| CATEGORIES.iter().all(|c| p.categories.contains_key(*c)))
    }
}

/// The profiles: settings, benchmarks, the measured table and the probe runner.
pub struct Profiles {
    pub settings: ProfileSettings,
    table: Mutex<Table>,
    running: AtomicBool,
    /// [`Profiles::best`]'s answers, valid for one table (its `runs`) and one models config.
    best: Mutex<BestCache>,
}

/// Answers of [`Profiles::best`] keyed by a hash of (candidates, category, complexity), for the
/// table run and models config in `stamp`; cleared when either changes or it grows past
/// [`BEST_CACHE_MAX`].
#[derive(Default)]
struct BestCache {
    stamp: (u64, usize),
    answers: std::collections::HashMap<u64, Option<Scored>>,
}

const BEST_CACHE_MAX: usize = 256;

impl Profiles {
    /// Reads `profiles.json` from the state directory, if there (an unreadable one is logged and
    /// started afresh: it is a cache of measurements, not configuration).
    pub fn load(settings: ProfileSettings) -> Profiles {
        let path = settings.state_dir.join("profiles.json");
        let table = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<Table>(&text).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "profiles file unreadable; measuring afresh");
                Table::default()
            }),
            Err(_) => Table::default(),
        };
        Profiles {
            settings,
            table: Mutex::new(table),
            running: AtomicBool::new(false),
            best: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn table(&self) -> Table {
        self.lock().clone()
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// At start-up, with profiling on: probes what the state file does not already hold.
    pub fn start(self: &Arc<Self>, models: LiveModels) {
        if self.settings.enabled {
            self.spawn(models, false);
        }
    }

    /// Starts a run measuring everything anew; false when one is already running.
    pub fn reprofile(self: &Arc<Self>, models: LiveModels) -> bool {
        self.spawn(models, true)
    }

    fn spawn(self: &Arc<Self>, models: LiveModels, all: bool) -> bool {
        if self.running.swap(true, Ordering::SeqCst) {
            return false;
        }
        let me = self.clone();
        actix_rt::spawn(async move {
            me.run(models, all).await;
            me.running.store(false, Ordering::SeqCst);
        });
        true
    }

    async fn run(&self, models: LiveModels, all: bool) {
        let client = crate::relay::client::build_client();
        let s = &self.settings;
        let cfg = models.current();
        let mut jobs = Vec::new();
        {
            let t = self.lock();
            for m in cfg.models.iter() {
                for p in m.providers.iter().filter(|p| !p.is_embedding) {
                    if !all && t.complete(&m.name, &p.id) {
                        continue;
                    }
                    for (cat, prompt) in PROBES {
                        jobs.push((m.name.clone(), p.clone(), cat, prompt));
                    }
                }
            }
        }
        if jobs.is_empty() {
            tracing::info!(
                "profiles: every provider already measured (state file); nothing to probe"
            );
            return;
        }
        tracing::info!(
            probes = jobs.len(),
            concurrency = s.concurrency,
            "profiling models"
        );
        let client = &client;
        let results: Vec<(String, String, &str, Measurement)> = futures_util::stream::iter(jobs)
            .map(|(model, p, cat, prompt)| async move {
                let m = probe::probe(client, &p, &model, prompt, s.max_tokens, s.timeout).await;
                (model, p.id.clone(), cat, m)
            })
            .buffer_unordered(s.concurrency)
            .collect()
            .await;
        let snapshot = {
            let mut t = self.lock();
            if all {
                t.models.clear();
            }
            for (model, provider, cat, m) in results {
                t.models
                    .entry(model)
                    .or_default()
                    .entry(provider)
                    .or_default()
                    .categories
                    .insert(cat.to_string(), m);
            }
            t.version = 1;
            t.runs += 1;
            t.updated_at = crate::dialects::canonical::unix_now();
            t.clone()
        };
        let dir = s.state_dir.clone();
        match actix_web::web::block(move || persist(&dir, &snapshot)).await {
            Ok(Ok(())) => tracing::info!("profiles saved"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot save the profiles"),
            Err(e) => tracing::warn!(error = %e, "cannot save the profiles"),
        }
    }

    /// `GET /admin/profiles`: the table with a per-model summary.
    pub fn to_json(&self) -> Value {
        let t = self.table();
        let summary: serde_json::Map<String, Value> = t
            .models
            .keys()
            .filter_map(|m| t.summary(m).map(|s| (m.clone(), json!(s))))
            .collect();
        json!({
            "enabled": self.settings.enabled,
            "running": self.is_running(),
            "runs": t.runs,
            "updated_at": t.updated_at,
            "state_file": self.settings.state_dir.join("profiles.json").display().to_string(),
            "summary": summary,
            "models": t.models,
        })
    }

    /// Ranks `candidates` (public model names) for a prompt of `category` and `complexity`:
    /// benchmark scores (matched by public name and each provider's `model_path`) × complexity
    /// fit × measured speed. See [`rank`] for the formula.
    pub fn rank(
        &self,
        models: &llm_router_actors::ModelsConfig,
        candidates: &[&str],
        category: &str,
        complexity: Complexity,
    ) -> Vec<Scored> {
        let t = self.lock();
        Self::rank_in(
            &t,
            &self.settings.benchmarks,
            models,
            candidates,
            category,
            complexity,
        )
    }

    /// The first of [`Profiles::rank`]'s order — what `model: "auto"` takes. The ranking only
    /// changes when a profiling run ends or the models config is replaced, so the answer is
    /// kept until then (one hash and two short locks per request instead of the summaries,
    /// benchmark matching and sort).
    pub fn best(
        &self,
        models: &'static llm_router_actors::ModelsConfig,
        candidates: &[&str],
        category: &str,
        complexity: Complexity,
    ) -> Option<Scored> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (candidates, category, complexity.as_str()).hash(&mut h);
        let key = h.finish();
        let t = self.lock();
        let stamp = (t.runs, models as *const _ as usize);
        let mut cache = self.best.lock().unwrap_or_else(|p| p.into_inner());
        if cache.stamp != stamp || cache.answers.len() >= BEST_CACHE_MAX {
            cache.stamp = stamp;
            cache.answers.clear();
        }
        cache
            .answers
            .entry(key)
            .or_insert_with(|| {
                Self::rank_in(
                    &t,
                    &self.settings.benchmarks,
                    models,
                    candidates,
                    category,
                    complexity,
                )
                .into_iter()
                .next()
            })
            .clone()
    }

    fn rank_in(
        t: &Table,
        benchmarks: &Benchmarks,
        models: &llm_router_actors::ModelsConfig,
        candidates: &[&str],
        category: &str,
        complexity: Complexity,
    ) -> Vec<Scored> {
        let cs: Vec<Candidate> = candidates
            .iter()
            .map(|name| {
                let mut names = vec![*name];
                if let Some(m) = models.model(name) {
                    names.extend(m.providers.iter().map(|p| p.model_path.as_str()));
                }
                let speed = t
                    .summary(name)
                    .map(|s| (s.tokens_per_s.unwrap_or(0.0), s.success));
                Candidate::new(benchmarks, name, &names, category, speed)
            })
            .collect();
        rank::rank(&cs, complexity)
    }
}

/// Writes `profiles.json` atomically (a temporary file renamed over the old one).
fn persist(dir: &std::path::Path, t: &Table) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("profiles.json");
    let tmp = dir.join("profiles.json.tmp");
    let text = serde_json::to_vec_pretty(t).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ok: bool, ttft: f64, tps: f64) -> Measurement {
        Measurement {
            ok,
            ttft_ms: ok.then_some(ttft),
            tokens_per_s: ok.then_some(tps),
            tokens: 10,
            error: None,
            measured_at: 0,
        }
    }

    #[test]
    fn a_summary_takes_medians_of_the_successes_and_the_success_rate() {
        let mut t = Table::default();
        let p = t.models.entry("m".into()).or_default();
        let a = p.entry("a".into()).or_default();
        a.categories.insert("general".into(), m(true, 10.0, 100.0));
        a.categories.insert("coding".into(), m(true, 30.0, 50.0));
        let b = p.entry("b".into()).or_default();
        b.categories.insert("general".into(), m(true, 20.0, 80.0));
        b.categories.insert("coding".into(), m(false, 0.0, 0.0));
        let s = t.summary("m").unwrap();
        assert_eq!(s.ttft_ms, Some(20.0));
        assert_eq!(s.tokens_per_s, Some(80.0));
        assert_eq!((s.success, s.probes), (0.75, 4));
        assert!(t.summary("other").is_none());
        assert!(!t.complete("m", "a"), "three categories missing");
    }

    #[test]
    fn the_best_answer_is_kept_until_a_run_ends_or_the_models_change() {
        let settings = ProfileSettings::from_vars(
            &|k| {
                VARS.iter()
                    .find(|v| v.0 == k)
                    .map(|v| v.1.to_string())
                    .unwrap_or_default()
            },
            &mut Vec::new(),
        );
        let p = Profiles::load(ProfileSettings {
            state_dir: PathBuf::from("/nonexistent"),
            ..settings
        });
        let doc = |names: &[&str]| {
            let group: serde_json::Map<String, Value> = names
                .iter()
                .map(|n| {
                    let provider = json!({"id": n, "api_host": "http://127.0.0.1:9",
                                          "api_type": "vllm", "model_path": n});
                    (n.to_string(), json!({"providers": [provider]}))
                })
                .collect();
            let text = json!({"g": group, "active_models": {"g": names}}).to_string();
            &*Box::leak(Box::new(
                llm_router_actors::ModelsConfig::from_json_str(&text).unwrap(),
            ))
        };
        let models = doc(&["x", "y"]);
        let set = |x: f64, y: f64, runs: u64| {
            let mut t = p.lock();
            for (name, tps) in [("x", x), ("y", y)] {
                let prof = t.models.entry(name.into()).or_default();
                let cats = &mut prof.entry(name.into()).or_default().categories;
                cats.insert("general".into(), m(true, 10.0, tps));
            }
            t.runs = runs;
        };
        let best = |models| {
            p.best(models, &["x", "y"], "general", Complexity::Medium)
                .map(|s| s.model)
        };
        set(10.0, 90.0, 1);
        assert_eq!(best(models).as_deref(), Some("y"));
        // The table changes without a new run: still the kept answer.
        set(90.0, 10.0, 1);
        assert_eq!(best(models).as_deref(), Some("y"), "kept for the run");
        // A run ends: ranked afresh.
        set(90.0, 10.0, 2);
        assert_eq!(best(models).as_deref(), Some("x"));
        // The same table, another models config: ranked afresh as well.
        set(10.0, 90.0, 2);
        assert_eq!(best(models).as_deref(), Some("x"));
        assert_eq!(best(doc(&["x", "y"])).as_deref(), Some("y"));
    }
}
