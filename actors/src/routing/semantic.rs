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
mod tests {
    use super::*;

    const RULES: &str = r##"{
        "complexity_thresholds": {"simple": 5, "medium": 20},
        "intents": {
            "code": {"min_tier": "medium",
                     "keywords": ["python", "kod", "programow*", "```:3"],
                     "phrases": ["napisz funkcję:4", "write a function"],
                     "patterns": ["\\bdef \\w+\\(", {"regex": "#include", "weight": 5}]},
            "math": {"min_tier": "complex", "keywords": ["całka", "całkę", "integral", "√"],
                     "patterns": ["\\d+ ?[-+*/^] ?\\d+"]},
            "creative": {"keywords": ["wiersz", "poem", "story:2"]},
            "general": {"keywords": ["what", "co"]}
        }
    }"##;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut v: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.entry(MODELS_VAR.into())
            .or_insert("small|mid|large".into());
        v
    }

    fn router(pairs: &[(&str, &str)]) -> SemanticRouter {
        SemanticRouter::from_parts(&vars(pairs), RULES, "rules.json").expect("valid rules")
    }

    fn errors(pairs: &[(&str, &str)], rules: &str) -> Vec<String> {
        SemanticRouter::from_parts(&vars(pairs), rules, "rules.json").expect_err("invalid")
    }

    #[test]
    fn intent_complexity_and_model_per_prompt() {
        let r = router(&[]);
        // (text, intent, complexity, model)
        let cases = [
            ("Write a poem", "creative", Complexity::Simple, "small"),
            ("hello there", NO_INTENT, Complexity::Simple, "small"),
            // Code raises a simple prompt to the middle tier.
            ("Fix my Python", "code", Complexity::Simple, "mid"),
            // Polish capitals are lowercased (Ł, Ą) and stems match inflections.
            ("PROGRAMOWANIE", "code", Complexity::Simple, "mid"),
            ("Policz CAŁKĘ", "math", Complexity::Simple, "large"),
            ("ile to 2+2", "math", Complexity::Simple, "large"),
            (
                "co to jest wiersz biały i jak go pisać w szkole średniej dziś",
                "creative",
                Complexity::Medium,
                "mid",
            ),
            ("#include <stdio.h>", "code", Complexity::Simple, "mid"),
        ];
        for (text, intent, complexity, model) in cases {
            let d = r.decide(text);
            assert_eq!(
                (d.intent, d.complexity, d.model),
                (intent, complexity, model),
                "{text:?}: {d:?}"
            );
        }
    }

    #[test]
    fn keywords_match_whole_words_and_stems_match_prefixes() {
        let r = router(&[]);
        // "kod" must not fire inside "kodeks", "co" not inside "coś"; "what" needs a boundary.
        assert_eq!(r.decide("kodeks cywilny").intent, NO_INTENT);
        assert_eq!(r.decide("cośtam whatever").intent, NO_INTENT);
        assert_eq!(r.decide("kod, proszę").intent, "code");
        assert_eq!(r.decide("(kod)").intent, "code");
        // Symbols match without boundaries.
        assert_eq!(r.decide("x√2").intent, "math");
        assert_eq!(r.decide("a```b").intent, "code");
        assert_eq!(r.decide("programowaniu").intent, "code");
        assert_eq!(r.decide("reprogramowanie").intent, NO_INTENT);
    }

    #[test]
    fn scores_sum_each_term_once_and_phrases_span_whitespace() {
        let r = router(&[]);
        assert_eq!(r.decide("kod").intent_score, 1.0);
        assert_eq!(r.decide("kod kod KOD").intent_score, 1.0);
        // keyword 1 + phrase 4; the phrase matches across a newline and double spaces.
        assert_eq!(r.decide("Napisz\n  funkcję, kod").intent_score, 5.0);
        // Pattern (3) + keyword (1).
        assert_eq!(r.decide("def foo(x): python").intent_score, 4.0);
        // Weighted pattern object.
        assert_eq!(r.decide("#include").intent_score, 5.0);
    }

    #[test]
    fn the_highest_score_wins_and_ties_go_to_the_first_category() {
        let r = router(&[]);
        // creative 2 (story) vs code 1 (kod).
        assert_eq!(r.decide("story about kod").intent, "creative");
        // code 1 vs creative 1: code is listed first.
        assert_eq!(r.decide("kod wiersz").intent, "code");
        assert_eq!(r.decide("wiersz kod").intent, "code");
    }

    #[test]
    fn complexity_follows_the_token_estimate_and_thresholds() {
        let r = router(&[]);
        // 4 words → 5 tokens (≤ 5, simple); 5 words → 6 (medium); 17 words → 21 (complex).
        let words = |n: usize| vec!["ab"; n].join(" ");
        assert_eq!(r.decide(&words(4)).estimated_tokens, 5);
        assert_eq!(r.decide(&words(4)).complexity, Complexity::Simple);
        assert_eq!(r.decide(&words(5)).complexity, Complexity::Medium);
        assert_eq!(r.decide(&words(17)).complexity, Complexity::Complex);
        assert_eq!(r.decide(&words(17)).model, "large");
        // One long "word" (code without spaces) counts by characters: 40 chars → 10 tokens.
        let d = r.decide(&"x".repeat(40));
        assert_eq!((d.estimated_tokens, d.complexity), (10, Complexity::Medium));
    }

    #[test]
    fn empty_text_goes_to_the_default_model() {
        let r = router(&[(DEFAULT_MODEL_VAR, "fallback")]);
        for text in ["", "  \n\t "] {
            let d = r.decide(text);
            assert_eq!(
                (d.model, d.intent, d.estimated_tokens),
                ("fallback", NO_INTENT, 0)
            );
        }
        // Without the variable: the pool's first model.
        assert_eq!(router(&[]).decide("").model, "small");
    }

    #[test]
    fn pools_of_one_two_and_four_models() {
        // (pool, text, model)
        let cases = [
            (
                "only",
                "ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab",
                "only",
            ),
            ("a|b", "hi", "a"),
            ("a|b", "ab ab ab ab ab ab", "b"),
            ("a|b", "python", "b"),
            ("a|b|c|d", "ab ab ab ab ab ab", "c"),
            ("a|b|c|d", "python", "c"),
            ("a|b|c|d", "całka", "d"),
        ];
        for (pool, text, model) in cases {
            let r = router(&[(MODELS_VAR, pool)]);
            assert_eq!(r.decide(text).model, model, "{pool} {text:?}");
        }
    }

    #[test]
    fn env_overrides_replace_a_category_or_add_one() {
        let r = router(&[
            (
                "LLM_ROUTER_ROUTING_INTENT_CODE",
                "rust|cargo build:5|borrow checker",
            ),
            ("LLM_ROUTER_ROUTING_INTENT_LEGAL", "umowa|kodeks:3"),
            (THRESHOLDS_VAR, "1|2"),
        ]);
        // The file's code terms are gone, the override's count; code keeps its min tier.
        assert_eq!(r.decide("python").intent, NO_INTENT);
        let d = r.decide("rust");
        assert_eq!((d.intent, d.intent_score, d.model), ("code", 1.0, "mid"));
        assert_eq!(r.decide("cargo   build").intent_score, 5.0);
        // A multi-word entry without a weight is a phrase (weight 2).
        assert_eq!(r.decide("the borrow checker").intent_score, 2.0);
        let d = r.decide("kodeks");
        assert_eq!((d.intent, d.intent_score), ("legal", 3.0));
        assert_eq!(r.thresholds(), (1, 2));
    }

    #[test]
    fn term_syntax() {
        let t = |s: &str| parse_term(s, 1.0);
        let term = |text: &str, weight, stem| Term {
            text: text.into(),
            weight,
            stem,
        };
        assert_eq!(t("Kod"), Ok(term("kod", 1.0, false)));
        assert_eq!(t("ŁÓDŹ:2.5"), Ok(term("łódź", 2.5, false)));
        assert_eq!(t("programow*:2"), Ok(term("programow", 2.0, true)));
        assert_eq!(t("std::vector"), Ok(term("std::vector", 1.0, false)));
        assert_eq!(t("  write   code :4"), Ok(term("write code", 4.0, false)));
        assert!(t("x:0").unwrap_err().contains("positive"));
        assert!(t(":3").unwrap_err().contains("no text"));
    }

    #[test]
    fn bad_variables_are_named() {
        let cases = [
            ((MODELS_VAR, " | "), MODELS_VAR),
            ((MODELS_VAR, "a|b|a"), "listed twice"),
            ((THRESHOLDS_VAR, "25"), THRESHOLDS_VAR),
            ((THRESHOLDS_VAR, "25|x"), "\"x\" is not a whole number"),
            ((THRESHOLDS_VAR, "150|25"), "above"),
            ((DEFAULT_MODEL_VAR, " "), DEFAULT_MODEL_VAR),
            (
                ("LLM_ROUTER_ROUTING_INTENT_CODE", "||"),
                "LLM_ROUTER_ROUTING_INTENT_CODE",
            ),
            (
                ("LLM_ROUTER_ROUTING_INTENT_NONE", "x"),
                "LLM_ROUTER_ROUTING_INTENT_NONE",
            ),
            (("LLM_ROUTER_ROUTING_INTENT_CODE", "x:-1"), "positive"),
        ];
        for ((var, value), want) in cases {
            let e = errors(&[(var, value)], RULES);
            assert!(e.iter().any(|e| e.contains(want)), "{var}={value:?}: {e:?}");
        }
    }

    #[test]
    fn bad_rules_are_reported_with_their_path_all_at_once() {
        let rules = r#"{"complexity_thresholds": {"simple": 1, "medium": 2},
            "intents": {"code": {"min_tier": "huge", "keywords": ["two words", "ok"],
                                 "patterns": ["(unclosed"]},
                        "Bad": {}}}"#;
        let e = errors(&[], rules);
        for want in [
            "rules.json: intents.code.min_tier: \"huge\"",
            "rules.json: intents.code.keywords[0]: \"two words\" has several words",
            "rules.json: intents.code.patterns[0]: not a valid regex",
            "rules.json: intents.Bad:",
        ] {
            assert!(e.iter().any(|e| e.starts_with(want)), "{want}: {e:?}");
        }
        assert_eq!(e.len(), 4, "{e:?}");
        let e = errors(
            &[],
            r#"{"intents": {}, "complexity_thresholds": {"simple": 1}}"#,
        );
        assert!(e[0].contains("medium"), "{e:?}");
        let e = errors(
            &[],
            r#"{"intents": {}, "complexity_thresholds": {"simple": 1, "medium": 2}, "extra": 1}"#,
        );
        assert!(e[0].contains("unknown field `extra`"), "{e:?}");
        let e = errors(
            &[],
            r#"{"intents": {"a": {}, "a": {}}, "complexity_thresholds": {"simple": 1, "medium": 2}}"#,
        );
        assert!(e[0].contains("defined twice"), "{e:?}");
        let no_pool = SemanticRouter::from_parts(&HashMap::new(), RULES, "rules.json").unwrap_err();
        assert!(no_pool[0].starts_with(MODELS_VAR), "{no_pool:?}");
        let missing = SemanticRouter::from_vars(&vars(&[]), Path::new("/nonexistent/simple.json"))
            .unwrap_err();
        assert!(
            missing[0].starts_with("/nonexistent/simple.json: cannot read"),
            "{missing:?}"
        );
    }

    /// The shipped rules file parses and routes obvious prompts in both languages.
    #[test]
    fn the_shipped_rules_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../")
            .join(DEFAULT_RULES_PATH);
        let r = SemanticRouter::from_vars(&vars(&[]), &path).expect("shipped rules are valid");
        assert_eq!(r.thresholds(), (25, 150));
        let cases = [
            ("Napisz funkcję w Pythonie, która sortuje listę", "code"),
            ("Write a Rust function that parses JSON", "code"),
            (
                "Mam błąd w kodzie: TypeError: undefined is not a function",
                "code",
            ),
            ("Oblicz pochodną funkcji f(x) = x^2 + 3x", "math"),
            ("Solve the equation 2x + 5 = 13", "math"),
            ("Ile wynosi całka z sin(x)?", "math"),
            ("Napisz wiersz o jesieni", "creative"),
            ("Write a short story about a dragon", "creative"),
            ("Jaka jest stolica Francji?", "general"),
            ("What is the capital of France?", "general"),
            ("Wyjaśnij, dlaczego niebo jest niebieskie", "general"),
        ];
        for (text, intent) in cases {
            assert_eq!(
                r.decide(text).intent,
                intent,
                "{text:?}: {:?}",
                r.decide(text)
            );
        }
        assert_eq!(r.decide("Napisz funkcję w Pythonie").model, "mid");
        assert_eq!(r.decide("Jaka jest stolica Francji?").model, "small");
    }
}
