//! The benchmark scores (`resources/routing/benchmarks.json`) and the pure ranking `model: "auto"`
//! can use:
//!
//! ```text
//! score = category score × complexity fit × measured speed
//! category score  = the model's benchmark score for the category / 100            (0–1)
//! complexity fit  = 1 − 0.25·(capability − need)   when capability ≥ need (overkill costs a little)
//!                   max(0.05, 1 − 1.5·(need − capability))   when it falls short
//!   capability    = log10(params_b) / 2, clamped to 0–1   (1B → 0, 10B → 0.5, 100B → 1)
//!   need          = simple 0.2 · medium 0.5 · complex 0.8
//! measured speed  = success rate × sqrt(tokens/s ÷ the fastest candidate's tokens/s);
//!                   0.5 when the model has no profile yet
//! ```
//!
//! A model without a benchmark entry scores `default_score` (50) in every category and counts
//! as 7B. Everything here is pure: the caller passes the benchmarks and the measured speeds.

use std::collections::HashMap;

use serde_json::Value;

/// Probe and ranking categories (SPEC §7).
pub const CATEGORIES: [&str; 5] = ["reasoning", "coding", "creative", "general", "polish"];

/// The category for a `simple_semantic_routing` intent (`code`, `math`, `creative`, `general`)
/// or a category name; unknown → `general`.
pub fn category_of(intent: &str) -> &'static str {
    match intent.trim().to_ascii_lowercase().as_str() {
        "code" | "coding" => "coding",
        "math" | "reasoning" => "reasoning",
        "creative" => "creative",
        "polish" | "pl" => "polish",
        _ => "general",
    }
}

/// The prompt complexity `simple_semantic_routing` estimates (one vocabulary for both).
pub use llm_router_actors::routing::Complexity;

/// How capable a model a prompt of `complexity` needs (0–1, see the module docs).
fn need(complexity: Complexity) -> f64 {
    match complexity {
        Complexity::Simple => 0.2,
        Complexity::Medium => 0.5,
        Complexity::Complex => 0.8,
    }
}

/// One model's benchmark entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub name: String,
    /// Lower-case substrings of a public model name or `model_path` that mean this model.
    pub matches: Vec<String>,
    pub params_b: f64,
    /// Category → score 0–100.
    pub scores: HashMap<String, f64>,
}

/// The loaded benchmarks file.
#[derive(Clone, Debug, Default)]
pub struct Benchmarks {
    pub entries: Vec<Entry>,
    pub default_score: f64,
    /// The file as read, for `GET /admin/benchmarks`.
    pub raw: Value,
}

impl Benchmarks {
    /// Parses the file's JSON; problems name the JSON path.
    pub fn parse(v: Value) -> Result<Benchmarks, String> {
        let models = v
            .get("models")
            .and_then(Value::as_object)
            .ok_or("\"models\": expected an object of model name → entry")?;
        let mut entries = Vec::new();
        for (name, e) in models {
            let at = |k: &str| format!("models.\"{name}\".{k}");
            let params_b = e
                .get("params_b")
                .and_then(Value::as_f64)
                .filter(|p| *p > 0.0)
                .ok_or_else(|| format!("{}: expected a number > 0", at("params_b")))?;
            let scores_v = e
                .get("scores")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("{}: expected an object", at("scores")))?;
            let mut scores = HashMap::new();
            for c in CATEGORIES {
                let s = scores_v
                    .get(c)
                    .and_then(Value::as_f64)
                    .filter(|s| (0.0..=100.0).contains(s))
                    .ok_or_else(|| {
                        format!("{}: expected a number 0–100", at(&format!("scores.{c}")))
                    })?;
                scores.insert(c.to_string(), s);
            }
            let mut matches: Vec<String> = e
                .get("match")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            matches.push(name.to_ascii_lowercase());
            entries.push(Entry {
                name: name.clone(),
                matches,
                params_b,
                scores,
            });
        }
        let default_score = v
            .get("default_score")
            .and_then(Value::as_f64)
            .unwrap_or(50.0);
        Ok(Benchmarks {
            entries,
            default_score,
            raw: v,
        })
    }

    /// The entry for a model known by these names (public name, `model_path`s): the one with the
    /// longest pattern contained in any of them.
    pub fn entry<'a>(&'a self, names: &[&str]) -> Option<&'a Entry> {
        let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        self.entries
            .iter()
            .filter_map(|e| {
                e.matches
                    .iter()
                    .filter(|m| names.iter().any(|n| n.contains(m.as_str())))
                    .map(String::len)
                    .max()
                    .map(|len| (len, e))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, e)| e)
    }
}

/// What ranking knows of one candidate model.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub model: String,
    /// The category's benchmark score, 0–100.
    pub category_score: f64,
    pub params_b: f64,
    /// Measured: median tokens/s and success rate 0–1, when profiled.
    pub speed: Option<(f64, f64)>,
}

impl Candidate {
    /// A candidate from the benchmarks (`names`: the model's public name and model paths).
    pub fn new(
        b: &Benchmarks,
        model: &str,
        names: &[&str],
        category: &str,
        speed: Option<(f64, f64)>,
    ) -> Candidate {
        let e = b.entry(names);
        Candidate {
            model: model.to_string(),
            category_score: e
                .and_then(|e| e.scores.get(category).copied())
                .unwrap_or(b.default_score),
            params_b: e.map_or(7.0, |e| e.params_b),
            speed,
        }
    }
}

/// One candidate's score and its three factors.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub model: String,
    pub score: f64,
    pub category: f64,
    pub fit: f64,
    pub speed: f64,
}

/// The complexity fit of a model of `params_b` billion parameters (see the module docs).
pub fn fit(params_b: f64, complexity: Complexity) -> f64 {
    let capability = (params_b.max(1.0).log10() / 2.0).clamp(0.0, 1.0);
    let need = need(complexity);
    if capability >= need {
        1.0 - 0.25 * (capability - need)
    } else {
        (1.0 - 1.5 * (need - capability)).max(0.05)
    }
}

/// The candidates, best first (ties keep the given order).
pub fn rank(candidates: &[Candidate], complexity: Complexity) -> Vec<Scored> {
    let fastest = candidates
        .iter()
        .filter_map(|c| c.speed.map(|s| s.0))
        .fold(0.0f64, f64::max);
    let mut out: Vec<Scored> = candidates
        .iter()
        .map(|c| {
            let category = (c.category_score / 100.0).clamp(0.0, 1.0);
            let fit = fit(c.params_b, complexity);
            let speed = match c.speed {
                Some((tps, ok)) if fastest > 0.0 => {
                    ok.clamp(0.0, 1.0) * (tps.max(0.0) / fastest).sqrt()
                }
                Some((_, ok)) => ok.clamp(0.0, 1.0) * 0.5,
                None => 0.5,
            };
            Scored {
                model: c.model.clone(),
                score: category * fit * speed,
                category,
                fit,
                speed,
            }
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cand(model: &str, score: f64, params_b: f64, speed: Option<(f64, f64)>) -> Candidate {
        Candidate {
            model: model.into(),
            category_score: score,
            params_b,
            speed,
        }
    }

    fn order(r: &[Scored]) -> Vec<&str> {
        r.iter().map(|s| s.model.as_str()).collect()
    }

    #[test]
    fn the_formula_is_the_product_of_its_three_factors() {
        let r = rank(
            &[
                cand("a", 80.0, 10.0, Some((50.0, 1.0))),
                cand("b", 60.0, 10.0, Some((200.0, 0.5))),
            ],
            Complexity::Medium,
        );
        let a = r.iter().find(|s| s.model == "a").unwrap();
        assert!((a.category - 0.8).abs() < 1e-9);
        assert!((a.fit - 1.0).abs() < 1e-9, "10B is exactly medium");
        assert!((a.speed - 0.5).abs() < 1e-9, "sqrt(50/200)");
        assert!((a.score - 0.4).abs() < 1e-9);
        let b = r.iter().find(|s| s.model == "b").unwrap();
        assert!((b.score - 0.6 * 1.0 * 0.5).abs() < 1e-9);
    }

    #[test]
    fn complexity_moves_the_choice_between_small_and_large_models() {
        // A fast small model and a slow large one that is better at the category.
        let c = [
            cand("small", 60.0, 3.0, Some((120.0, 1.0))),
            cand("large", 85.0, 70.0, Some((30.0, 1.0))),
        ];
        let cases = [
            (Complexity::Simple, ["small", "large"]),
            (Complexity::Complex, ["large", "small"]),
        ];
        for (cx, want) in cases {
            assert_eq!(order(&rank(&c, cx)), want, "{cx:?}");
        }
    }

    #[test]
    fn failures_and_missing_profiles_count() {
        let c = [
            cand("flaky", 80.0, 10.0, Some((100.0, 0.2))),
            cand("steady", 70.0, 10.0, Some((100.0, 1.0))),
            cand("unmeasured", 70.0, 10.0, None),
        ];
        assert_eq!(
            order(&rank(&c, Complexity::Medium)),
            ["steady", "unmeasured", "flaky"]
        );
    }

    #[test]
    fn fit_is_one_at_the_need_lower_below_and_a_little_lower_above() {
        assert!((fit(10.0, Complexity::Medium) - 1.0).abs() < 1e-9);
        assert!(fit(1.0, Complexity::Complex) == 0.05);
        assert!(fit(100.0, Complexity::Simple) > 0.75 && fit(100.0, Complexity::Simple) < 1.0);
        assert!(fit(3.0, Complexity::Complex) < fit(30.0, Complexity::Complex));
    }

    #[test]
    fn benchmarks_parse_match_by_the_longest_pattern_and_name_bad_fields() {
        let scores =
            json!({"reasoning": 50, "coding": 60, "creative": 70, "general": 80, "polish": 40});
        let b = Benchmarks::parse(json!({"models": {
            "qwen2.5-7b-instruct": {"params_b": 7.6, "match": ["qwen2.5-7b"], "scores": scores},
            "qwen2.5-coder-7b-instruct": {"params_b": 7.6, "match": ["qwen2.5-coder-7b"], "scores": scores},
        }})).unwrap();
        assert_eq!(
            b.entry(&["Qwen/Qwen2.5-Coder-7B-Instruct"]).unwrap().name,
            "qwen2.5-coder-7b-instruct"
        );
        assert_eq!(
            b.entry(&["mine", "qwen2.5-7b-instruct-awq"]).unwrap().name,
            "qwen2.5-7b-instruct"
        );
        assert!(b.entry(&["llama"]).is_none());
        let c = Candidate::new(&b, "x", &["llama"], "coding", None);
        assert_eq!((c.category_score, c.params_b), (50.0, 7.0));
        let err = Benchmarks::parse(
            json!({"models": {"m": {"params_b": 1, "scores": {"reasoning": 500}}}}),
        )
        .unwrap_err();
        assert!(err.contains("models.\"m\".scores.reasoning"), "{err}");
        assert_eq!(category_of("code"), "coding");
        assert_eq!(category_of("math"), "reasoning");
        assert_eq!(category_of("whatever"), "general");
    }

    #[test]
    fn the_shipped_benchmarks_file_is_valid() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/resources/routing/benchmarks.json"
        ))
        .unwrap();
        let b = Benchmarks::parse(serde_json::from_str(&text).unwrap()).unwrap();
        assert!(b.entries.len() >= 15);
        assert_eq!(
            b.entry(&["google/gemma-3-12b-it"]).unwrap().name,
            "gemma-3-12b-it"
        );
    }
}
