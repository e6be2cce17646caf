//! `simple_semantic_routing` (SPEC §7): the model for a `"model": "auto"` request, chosen from the
//! prompt's intent and complexity over an ordered pool of models (first = cheapest, last = most
//! capable).
//!
//! - **Intent**: every category (code, math, creative, general, or any the rules file or
//!   `LLM_ROUTER_ROUTING_INTENT_<CAT>` adds) sums the weights of its terms found in the text; the
//!   highest positive sum wins, ties going to the category listed first. No positive sum → intent
//!   `none`. Each term counts once per text, however often it occurs.
//! - **Terms**: keywords and phrases (default weights 1 and 2) match at word boundaries in the
//!   lowercased text with whitespace runs collapsed to one space; a trailing `*` makes a term a stem
//!   (`programow*` matches `programowanie`, `programowania`, …). A boundary is only required at an
//!   edge that is a letter or digit, so `\`\`\`` or `√` match anywhere. Patterns (regexes, default
//!   weight 3) see the same normalised text and are only for what literals cannot say.
//! - **Complexity**: estimated tokens = max(words × 1.25, characters / 4), both counted in the
//!   normalisation pass. Words × 1.25 is the original gateway's estimate, which the default
//!   thresholds `25|150` were tuned for; characters / 4 (the usual figure for BPE tokenisers on
//!   Latin text) keeps code, URLs and Polish — whose long inflected words cost ~2 tokens each — from
//!   being counted as a few "words". ≤ simple threshold → simple, ≤ medium → medium, else complex.
//! - **Model**: simple → pool\[0\], medium → pool\[n/2\], complex → pool\[n−1\], raised to at least the
//!   winning category's `min_tier` (the same mapping). No text at all → the default model.
//!
//! The router is built once (validated, all problems reported together) and is immutable: `decide`
//! is a pure function of the text. Matching is one Aho-Corasick pass over all keywords and phrases
//! of all categories plus one `RegexSet` pass, so a decision costs microseconds even on long
//! prompts (`cargo bench -p llm-router-actors --bench routing`).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{RegexSet, RegexSetBuilder};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub const MODELS_VAR: &str = "LLM_ROUTER_ROUTING_MODELS";
pub const THRESHOLDS_VAR: &str = "LLM_ROUTER_ROUTING_COMPLEXITY_THRESHOLDS";
pub const DEFAULT_MODEL_VAR: &str = "LLM_ROUTER_ROUTING_DEFAULT_MODEL";
/// Prefix of the per-category overrides, e.g. `LLM_ROUTER_ROUTING_INTENT_CODE`.
pub const INTENT_VAR_PREFIX: &str = "LLM_ROUTER_ROUTING_INTENT_";
/// The rules file shipped with the router (relative to the working directory).
pub const DEFAULT_RULES_PATH: &str = "resources/routing/semantic/simple.json";

const KEYWORD_WEIGHT: f64 = 1.0;
const PHRASE_WEIGHT: f64 = 2.0;
const PATTERN_WEIGHT: f64 = 3.0;
/// The intent reported when no category scored.
pub const NO_INTENT: &str = "none";

/// Prompt size class; its order is the tier order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Complexity {
    Simple,
    Medium,
    Complex,
}

impl Complexity {
    pub fn as_str(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Medium => "medium",
            Complexity::Complex => "complex",
        }
    }

    fn parse(s: &str) -> Option<Complexity> {
        match s {
            "simple" => Some(Complexity::Simple),
            "medium" => Some(Complexity::Medium),
            "complex" => Some(Complexity::Complex),
            _ => None,
        }
    }

    /// Index into a pool of `n ≥ 1` models.
    fn tier(self, n: usize) -> usize {
        match self {
            Complexity::Simple => 0,
            Complexity::Medium => n / 2,
            Complexity::Complex => n - 1,
        }
    }
}

impl fmt::Display for Complexity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome for one prompt; borrows names from the router.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision<'r> {
    pub model: &'r str,
    /// The winning category, or [`NO_INTENT`].
    pub intent: &'r str,
    pub intent_score: f64,
    pub complexity: Complexity,
    pub estimated_tokens: usize,
}

#[derive(Debug)]
struct Category {
    name: String,
    min_tier: Option<Complexity>,
}

/// One distinct literal in the automaton and every category it scores for.
#[derive(Debug)]
struct Literal {
    /// The text before/after a match must not be a letter or digit.
    left_boundary: bool,
    right_boundary: bool,
    hits: Hits,
}

#[derive(Debug)]
pub struct SemanticRouter {
    models: Vec<String>,
    default_model: String,
    thresholds: (usize, usize),
    categories: Vec<Category>,
    matcher: Option<AhoCorasick>,
    literals: Vec<Literal>,
    patterns: Option<RegexSet>,
    pattern_hits: Vec<(usize, f64)>,
}

impl SemanticRouter {
    /// Builds the router from the environment (`vars`: name → value, only the
    /// `LLM_ROUTER_ROUTING_*` names are read) and the rules file. Every problem is returned, each
    /// naming the variable, or the file and JSON path, it comes from.
    pub fn from_vars(
        vars: &HashMap<String, String>,
        rules_path: &Path,
    ) -> Result<SemanticRouter, Vec<String>> {
        let file = rules_path.display().to_string();
        let text = std::fs::read_to_string(rules_path)
            .map_err(|e| vec![format!("{file}: cannot read the routing rules: {e}")])?;
        SemanticRouter::from_parts(vars, &text, &file)
    }

    /// Like [`SemanticRouter::from_vars`] with the rules given as text (`origin` names them in
    /// errors).
    pub fn from_parts(
        vars: &HashMap<String, String>,
        rules_json: &str,
        origin: &str,
    ) -> Result<SemanticRouter, Vec<String>> {
        let rules: RulesFile = serde_json::from_str(rules_json)
            .map_err(|e| vec![format!("{origin}: not a valid routing rules file: {e}")])?;
        let mut errors = Vec::new();
        let mut b = Builder::default();

        let models = match vars.get(MODELS_VAR) {
            Some(v) => {
                let m: Vec<String> = v
                    .split('|')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                if m.is_empty() {
                    errors.push(format!(
                        "{MODELS_VAR}: no model names in {v:?} (expected e.g. small|medium|large)"
                    ));
                }
                m
            }
            None => {
                if rules.models.is_empty() {
                    errors.push(format!(
                        "{MODELS_VAR} is not set and {origin} lists no \"models\": the pool for \
                         model \"auto\" is empty (set e.g. {MODELS_VAR}=small|medium|large)"
                    ));
                }
                rules.models.clone()
            }
        };
        for (i, m) in models.iter().enumerate() {
            if models[..i].contains(m) {
                errors.push(format!("{MODELS_VAR}: model {m:?} is listed twice"));
            }
        }

        let thresholds = match vars.get(THRESHOLDS_VAR) {
            Some(v) => parse_thresholds(v).unwrap_or_else(|e| {
                errors.push(format!("{THRESHOLDS_VAR}={v:?}: {e}"));
                (0, 0)
            }),
            None => {
                let t = rules.complexity_thresholds;
                if t.simple > t.medium {
                    errors.push(format!(
                        "{origin}: complexity_thresholds: simple ({}) is above medium ({})",
                        t.simple, t.medium
                    ));
                }
                (t.simple, t.medium)
            }
        };

        let default_model = match vars.get(DEFAULT_MODEL_VAR).map(|s| s.trim()) {
            Some("") => {
                errors.push(format!("{DEFAULT_MODEL_VAR} is set but empty"));
                String::new()
            }
            Some(m) => m.to_string(),
            None => rules
                .default_model
                .clone()
                .or_else(|| models.first().cloned())
                .unwrap_or_default(),
        };

        // Categories from the file, in file order; an override replaces a category's terms.
        let mut overrides: Vec<(String, &str, &str)> = vars
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(INTENT_VAR_PREFIX)
                    .map(|cat| (cat.to_ascii_lowercase(), k.as_str(), v.as_str()))
            })
            .collect();
        overrides.sort();
        for (name, rule) in &rules.intents.0 {
            let path = format!("{origin}: intents.{name}");
            if name == NO_INTENT || !valid_category(name) {
                errors.push(format!(
                    "{path}: a category name is lowercase letters, digits and _ (and not \"none\")"
                ));
            }
            let min_tier = match rule.min_tier.as_deref() {
                None => None,
                Some(t) => Complexity::parse(t).or_else(|| {
                    errors.push(format!(
                        "{path}.min_tier: {t:?} is not one of simple, medium, complex"
                    ));
                    None
                }),
            };
            let cat = b.category(name, min_tier);
            if let Some((_, var, value)) = overrides.iter().find(|(n, _, _)| n == name) {
                b.override_terms(cat, var, value, &mut errors);
                continue;
            }
            for (i, k) in rule.keywords.iter().enumerate() {
                let at = format!("{path}.keywords[{i}]");
                match parse_term(k, KEYWORD_WEIGHT) {
                    Ok(t) if t.text.contains(' ') => errors.push(format!(
                        "{at}: {k:?} has several words; list it under \"phrases\""
                    )),
                    Ok(t) => b.literal(cat, t),
                    Err(e) => errors.push(format!("{at}: {e}")),
                }
            }
            for (i, p) in rule.phrases.iter().enumerate() {
                match parse_term(p, PHRASE_WEIGHT) {
                    Ok(t) => b.literal(cat, t),
                    Err(e) => errors.push(format!("{path}.phrases[{i}]: {e}")),
                }
            }
            for (i, p) in rule.patterns.iter().enumerate() {
                let (regex, weight) = match p {
                    PatternRule::Bare(r) => (r.as_str(), PATTERN_WEIGHT),
                    PatternRule::Weighted { regex, weight } => {
                        (regex.as_str(), weight.unwrap_or(PATTERN_WEIGHT))
                    }
                };
                if let Err(e) = regex::Regex::new(regex) {
                    errors.push(format!("{path}.patterns[{i}]: not a valid regex: {e}"));
                } else if !(weight.is_finite() && weight > 0.0) {
                    errors.push(format!(
                        "{path}.patterns[{i}]: weight {weight} must be a positive number"
                    ));
                } else {
                    b.patterns.push((regex.to_string(), cat, weight));
                }
            }
        }
        // Overrides for categories the file does not have add new ones (no tier adjustment).
        for (name, var, value) in &overrides {
            if b.categories.iter().any(|c| &c.name == name) {
                continue;
            }
            if name == NO_INTENT || !valid_category(name) {
                errors.push(format!(
                    "{var}: the category after {INTENT_VAR_PREFIX} must be letters, digits and _ \
                     (and not NONE)"
                ));
                continue;
            }
            let cat = b.category(name, None);
            b.override_terms(cat, var, value, &mut errors);
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        b.build(models, default_model, thresholds)
            .map_err(|e| vec![format!("{origin}: {e}")])
    }

    /// The pool, cheapest first (the lead checks each is a configured model).
    pub fn models(&self) -> &[String] {
        &self.models
    }

    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// `(simple, medium)` token thresholds.
    pub fn thresholds(&self) -> (usize, usize) {
        self.thresholds
    }

    /// Chooses the model for `text` (the text the original scores: the last user message).
    pub fn decide(&self, text: &str) -> Decision<'_> {
        let norm = Normalized::new(text);
        if norm.text.is_empty() {
            return Decision {
                model: &self.default_model,
                intent: NO_INTENT,
                intent_score: 0.0,
                complexity: Complexity::Simple,
                estimated_tokens: 0,
            };
        }
        let tokens = norm.estimated_tokens();
        let complexity = if tokens <= self.thresholds.0 {
            Complexity::Simple
        } else if tokens <= self.thresholds.1 {
            Complexity::Medium
        } else {
            Complexity::Complex
        };
        let scores = self.scores(&norm.text);
        let mut best: Option<(usize, f64)> = None;
        for (i, &s) in scores.iter().enumerate() {
            if s > 0.0 && best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        let n = self.models.len();
        let mut tier = complexity.tier(n);
        if let Some(min) = best.and_then(|(i, _)| self.categories[i].min_tier) {
            tier = tier.max(min.tier(n));
        }
        Decision {
            model: &self.models[tier],
            intent: best.map_or(NO_INTENT, |(i, _)| self.categories[i].name.as_str()),
            intent_score: best.map_or(0.0, |(_, s)| s),
            complexity,
            estimated_tokens: tokens,
        }
    }

    fn scores(&self, text: &str) -> Vec<f64> {
        let mut scores = vec![0.0; self.categories.len()];
        if let Some(ac) = &self.matcher {
            let mut seen = vec![false; self.literals.len()];
            for m in ac.find_overlapping_iter(text) {
                let id = m.pattern().as_usize();
                let lit = &self.literals[id];
                if seen[id]
                    || (lit.left_boundary && ends_in_word(&text[..m.start()]))
                    || (lit.right_boundary && starts_with_word(&text[m.end()..]))
                {
                    continue;
                }
                seen[id] = true;
                for &(cat, w) in &lit.hits {
                    scores[cat] += w;
                }
            }
        }
        if let Some(set) = &self.patterns {
            for i in set.matches(text).iter() {
                let (cat, w) = self.pattern_hits[i];
                scores[cat] += w;
            }
        }
        scores
    }
}

fn ends_in_word(s: &str) -> bool {
    s.chars().next_back().is_some_and(char::is_alphanumeric)
}

fn starts_with_word(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_alphanumeric)
}

fn valid_category(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_thresholds(v: &str) -> Result<(usize, usize), String> {
    let parts: Vec<&str> = v.split('|').map(str::trim).collect();
    let [simple, medium] = parts.as_slice() else {
        return Err("expected two token counts simple|medium, e.g. 25|150".into());
    };
    let num = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("{s:?} is not a whole number of tokens"))
    };
    let (simple, medium) = (num(simple)?, num(medium)?);
    if simple > medium {
        return Err(format!(
            "the simple threshold ({simple}) is above the medium one ({medium})"
        ));
    }
    Ok((simple, medium))
}

/// A keyword or phrase after parsing `text[*][:weight]`.
#[derive(Debug, PartialEq)]
struct Term {
    text: String,
    weight: f64,
    stem: bool,
}

/// `text[:weight]`: the part after the last `:` is a weight when it parses as a number, so
/// `std::vector` stays a literal; a trailing `*` marks a stem. The text is lowercased (Unicode, so
/// `Ł` → `ł`) with whitespace runs collapsed, as the prompt is.
fn parse_term(raw: &str, default_weight: f64) -> Result<Term, String> {
    let raw = raw.trim();
    let (text, weight) = match raw.rsplit_once(':') {
        Some((t, w)) => match w.trim().parse::<f64>() {
            Ok(w) if w.is_finite() && w > 0.0 => (t, w),
            Ok(w) => return Err(format!("weight {w} in {raw:?} must be a positive number")),
            Err(_) => (raw, default_weight),
        },
        None => (raw, default_weight),
    };
    let text = text.trim();
    let (text, stem) = match text.strip_suffix('*') {
        Some(t) => (t.trim_end(), true),
        None => (text, false),
    };
    let text = Normalized::new(text).text;
    if text.is_empty() {
        return Err(format!("{raw:?} has no text to match"));
    }
    Ok(Term { text, weight, stem })
}

/// Each category a literal scores for, with its weight.
type Hits = Vec<(usize, f64)>;

#[derive(Default)]
struct Builder {
    categories: Vec<Category>,
    /// literal text → (stem, [(category, weight)]), in first-seen order.
    literals: Vec<(String, bool, Hits)>,
    patterns: Vec<(String, usize, f64)>,
}

impl Builder {
    fn category(&mut self, name: &str, min_tier: Option<Complexity>) -> usize {
        self.categories.push(Category {
            name: name.to_string(),
            min_tier,
        });
        self.categories.len() - 1
    }

    fn literal(&mut self, cat: usize, t: Term) {
        match self
            .literals
            .iter_mut()
            .find(|(text, stem, _)| *text == t.text && *stem == t.stem)
        {
            Some((_, _, hits)) => match hits.iter_mut().find(|(c, _)| *c == cat) {
                // The same term twice in one category counts once, at its larger weight.
                Some((_, w)) => *w = w.max(t.weight),
                None => hits.push((cat, t.weight)),
            },
            None => self.literals.push((t.text, t.stem, vec![(cat, t.weight)])),
        }
    }

    /// `LLM_ROUTER_ROUTING_INTENT_<CAT>=kw|kw:w|two words|two words:w`: replaces the category's
    /// terms and patterns. An entry with whitespace is a phrase (default weight 2), one without a
    /// keyword (default weight 1).
    fn override_terms(&mut self, cat: usize, var: &str, value: &str, errors: &mut Vec<String>) {
        let entries: Vec<&str> = value
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.is_empty() {
            errors.push(format!("{var}: no keywords in {value:?}"));
        }
        for e in entries {
            let words = e.rsplit_once(':').map_or(e, |(t, _)| t);
            let default = if words.split_whitespace().nth(1).is_some() {
                PHRASE_WEIGHT
            } else {
                KEYWORD_WEIGHT
            };
            match parse_term(e, default) {
                Ok(t) => self.literal(cat, t),
                Err(err) => errors.push(format!("{var}: {err}")),
            }
        }
    }

    fn build(
        self,
        models: Vec<String>,
        default_model: String,
        thresholds: (usize, usize),
    ) -> Result<SemanticRouter, String> {
        let literals: Vec<Literal> = self
            .literals
            .iter()
            .map(|(text, stem, hits)| Literal {
                left_boundary: text.chars().next().is_some_and(char::is_alphanumeric),
                right_boundary: !stem
                    && text.chars().next_back().is_some_and(char::is_alphanumeric),
                hits: hits.clone(),
            })
            .collect();
        let matcher = if literals.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(self.literals.iter().map(|(t, _, _)| t.as_str()))
                    .map_err(|e| format!("cannot build the keyword matcher: {e}"))?,
            )
        };
        let patterns = if self.patterns.is_empty() {
            None
        } else {
            Some(
                RegexSetBuilder::new(self.patterns.iter().map(|(r, _, _)| r.as_str()))
                    // Room for the lazy DFA of all patterns at once, so it never falls back to
                    // the (much slower) NFA simulation on long prompts.
                    .dfa_size_limit(16 << 20)
                    .build()
                    .map_err(|e| format!("cannot build the pattern set: {e}"))?,
            )
        };
        Ok(SemanticRouter {
            models,
            default_model,
            thresholds,
            categories: self.categories,
            matcher,
            literals,
            patterns,
            pattern_hits: self.patterns.iter().map(|&(_, c, w)| (c, w)).collect(),
        })
    }
}

/// The prompt as the matchers see it: lowercased, whitespace runs collapsed to one space, trimmed;
/// with the counts the token estimate needs.
struct Normalized {
    text: String,
    words: usize,
    chars: usize,
}

impl Normalized {
    fn new(raw: &str) -> Normalized {
        let mut n = Normalized {
            text: String::with_capacity(raw.len()),
            words: 0,
            chars: 0,
        };
        let mut gap = false;
        let bytes = raw.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            // ASCII bytes take the fast path even in mixed text; only other characters decode.
            let (space, c) = if b.is_ascii() {
                i += 1;
                (b.is_ascii_whitespace(), b.to_ascii_lowercase() as char)
            } else {
                let c = raw[i..].chars().next().expect("i is on a char boundary");
                i += c.len_utf8();
                (c.is_whitespace(), c)
            };
            if space {
                gap = true;
                continue;
            }
            if n.chars == 0 || gap {
                if n.chars > 0 {
                    n.text.push(' ');
                    n.chars += 1;
                }
                n.words += 1;
                gap = false;
            }
            if c.is_ascii() {
                n.text.push(c);
            } else {
                // Unicode lowercasing: Polish capitals (Ą Ć Ę Ł Ń Ó Ś Ź Ż) are outside ASCII.
                n.text.extend(c.to_lowercase());
            }
            n.chars += 1;
        }
        n
    }

    /// max(words × 1.25, characters / 4), both rounded down and up respectively.
    fn estimated_tokens(&self) -> usize {
        (self.words * 5 / 4).max(self.chars.div_ceil(4))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default, rename = "_comment")]
    _comment: Option<serde_json::Value>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    default_model: Option<String>,
    complexity_thresholds: Thresholds,
    intents: Ordered<IntentRules>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct Thresholds {
    simple: usize,
    medium: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentRules {
    #[serde(default, rename = "_comment")]
    _comment: Option<serde_json::Value>,
    #[serde(default)]
    min_tier: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    patterns: Vec<PatternRule>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PatternRule {
    Bare(String),
    Weighted {
        regex: String,
        #[serde(default)]
        weight: Option<f64>,
    },
}

/// A JSON object read in document order (categories tie in file order), duplicates refused.
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of category name → rules")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut out: Vec<(String, T)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    if out.iter().any(|(n, _)| *n == k) {
                        return Err(serde::de::Error::custom(format!(
                            "category {k:?} is defined twice"
                        )));
                    }
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
#[path = "semantic_tests.rs"]
mod tests;
