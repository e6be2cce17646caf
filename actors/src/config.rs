//! `models-config.json`: raw JSON → validated domain types.
//!
//! The file format is the Python gateway's (SPEC §2): groups of models, each with `providers`, and an
//! `active_models` map naming which models exist. Validation collects *every* problem with its JSON
//! path (`google_models."gemma".providers[1]: missing "api_host"`) so an operator fixes a config in one
//! pass. Unknown keys are ignored (logged at debug) so configs written for the Python gateway load.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};

/// Provider wire families. `openai`, `vllm`, `lmstudio` and `llama.cpp` all speak the OpenAI wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiType {
    OpenAi,
    Vllm,
    LmStudio,
    Ollama,
    Anthropic,
    LlamaCpp,
}

impl ApiType {
    pub const ALL: [ApiType; 6] = [
        ApiType::OpenAi,
        ApiType::Vllm,
        ApiType::LmStudio,
        ApiType::Ollama,
        ApiType::Anthropic,
        ApiType::LlamaCpp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiType::OpenAi => "openai",
            ApiType::Vllm => "vllm",
            ApiType::LmStudio => "lmstudio",
            ApiType::Ollama => "ollama",
            ApiType::Anthropic => "anthropic",
            ApiType::LlamaCpp => "llama.cpp",
        }
    }

    pub fn parse(s: &str) -> Option<ApiType> {
        ApiType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// True for provider types that speak the OpenAI HTTP API (`/v1/chat/completions`).
    pub fn is_openai_wire(self) -> bool {
        matches!(
            self,
            ApiType::OpenAi | ApiType::Vllm | ApiType::LmStudio | ApiType::LlamaCpp
        )
    }
}

impl fmt::Display for ApiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider credential. Its `Debug`/`Display` never print the value (invariant: secrets never reach logs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    pub id: String,
    /// Base URL without a trailing slash, e.g. `http://10.0.0.11:7000`.
    pub api_host: String,
    pub api_type: ApiType,
    pub api_token: Secret,
    /// Sent upstream as `model` when non-empty; otherwise the public model name is sent.
    pub model_path: String,
    pub input_size: Option<u64>,
    pub weight: f64,
    pub keep_alive: Option<Duration>,
    pub tool_calling: bool,
    pub is_embedding: bool,
    /// Lower is preferred; higher tiers serve only when every lower tier is unhealthy or full.
    pub priority: u32,
    pub max_concurrency: Option<u32>,
    pub rpm: Option<u32>,
    /// The window `rpm` counts over (60 s unless a mapped configuration says otherwise: the
    /// FastAPI failover router's `rate_limit_window`).
    pub rpm_window: Duration,
    pub timeout: Option<Duration>,
    pub ttft_timeout: Option<Duration>,
    /// Model discovery and VRAM management keys (`discover`, `discover_as`, `pinned`, `vram_mb`).
    pub host: HostOptions,
}

impl ProviderConfig {
    /// A provider with defaults for everything but the identity, handy in tests.
    pub fn new(id: &str, api_host: &str, api_type: ApiType) -> ProviderConfig {
        ProviderConfig {
            id: id.to_string(),
            api_host: api_host.trim_end_matches('/').to_string(),
            api_type,
            api_token: Secret::default(),
            model_path: String::new(),
            input_size: None,
            weight: 1.0,
            keep_alive: None,
            tool_calling: true,
            is_embedding: false,
            priority: 0,
            max_concurrency: None,
            rpm: None,
            rpm_window: Duration::from_secs(60),
            timeout: None,
            ttft_timeout: None,
            host: HostOptions::default(),
        }
    }

    /// The model name to send upstream for a request addressed to `public_name`.
    pub fn upstream_model<'a>(&'a self, public_name: &'a str) -> &'a str {
        if self.model_path.is_empty() {
            public_name
        } else {
            &self.model_path
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelConfig {
    pub name: String,
    pub group: String,
    pub providers: Vec<ProviderConfig>,
    /// Parsed and validated like `providers`, kept for later use (the Python gateway's sleeping pool).
    pub providers_sleep: Vec<ProviderConfig>,
    /// Models tried in order when every provider of this one failed before the first byte.
    pub fallbacks: Vec<String>,
    /// Models used when a provider reports the context is too long, or the prompt's estimated
    /// tokens exceed every provider's `input_size`.
    pub context_window_fallbacks: Vec<String>,
    /// Models used on a content-policy refusal (without one, the refusal is returned unchanged).
    pub content_policy_fallbacks: Vec<String>,
    /// `hedge_after_ms`: when a request without a first byte is also sent to a second provider.
    pub hedge_after: Option<HedgeAfter>,
}

/// When a request with no first byte yet is also sent to a second provider (SPEC §11).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HedgeAfter {
    Fixed(Duration),
    /// The provider's measured time to first token (no hedge until it has one).
    Auto,
}

impl HedgeAfter {
    /// `""` = off, `auto`, or whole milliseconds > 0 (the environment's spelling).
    pub fn parse(s: &str) -> Result<Option<HedgeAfter>, String> {
        match s.trim() {
            "" => Ok(None),
            a if a.eq_ignore_ascii_case("auto") => Ok(Some(HedgeAfter::Auto)),
            n => match n.parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Some(HedgeAfter::Fixed(Duration::from_millis(ms)))),
                _ => Err(format!(
                    "expected whole milliseconds > 0 or \"auto\", got {n:?}"
                )),
            },
        }
    }

    /// The model key's value: null, a whole number of milliseconds > 0, or `"auto"`.
    fn from_json(v: &Value) -> Result<Option<HedgeAfter>, String> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) if s.eq_ignore_ascii_case("auto") => Ok(Some(HedgeAfter::Auto)),
            Value::Number(n) => match n.as_u64() {
                Some(ms) if ms > 0 => Ok(Some(HedgeAfter::Fixed(Duration::from_millis(ms)))),
                _ => Err(format!(
                    "must be whole milliseconds > 0 or \"auto\", got {n}"
                )),
            },
            other => Err(format!(
                "must be whole milliseconds > 0 or \"auto\", got {other}"
            )),
        }
    }
}

/// The per-model fallback keys (SPEC §2), each a list of active model names.
pub const FALLBACK_KEYS: [&str; 3] = [
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
];

/// How deep a chain of fallbacks (of fallbacks …) may go.
pub const MAX_FALLBACK_DEPTH: usize = 3;

impl ModelConfig {
    /// The fallback list under one of [`FALLBACK_KEYS`].
    pub fn fallback_list(&self, key: &str) -> &[String] {
        match key {
            "fallbacks" => &self.fallbacks,
            "context_window_fallbacks" => &self.context_window_fallbacks,
            "content_policy_fallbacks" => &self.content_policy_fallbacks,
            _ => &[],
        }
    }
}

/// The name of the catch-all model: an active model called `*` serves every model name that no
/// other active model has, passing the requested name upstream (unless `model_path` is set).
pub const WILDCARD: &str = "*";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelsConfig {
    /// Active models in `active_models` order (the catch-all excluded: listings never show it).
    pub models: Vec<ModelConfig>,
    /// The active model named [`WILDCARD`], if any.
    pub wildcard: Option<ModelConfig>,
}

impl ModelsConfig {
    /// The model serving `name`: the one of that name, else the catch-all.
    pub fn model(&self, name: &str) -> Option<&ModelConfig> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .or(self.wildcard.as_ref())
    }

    /// Every model with providers, the catch-all last.
    pub fn all(&self) -> impl Iterator<Item = &ModelConfig> {
        self.models.iter().chain(self.wildcard.as_ref())
    }

    pub fn model_names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }

    /// Parses and validates a whole config; every problem is reported with its JSON path.
    pub fn from_json_str(text: &str) -> Result<ModelsConfig, ConfigErrors> {
        let root: Value = serde_json::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                format!("(line {}, column {})", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            )])
        })?;
        let mut v = Validator::default();
        let mut models = v.root(&root);
        v.fallbacks(&models);
        let wildcard = models
            .iter()
            .position(|m| m.name == WILDCARD)
            .map(|i| models.remove(i));
        if v.errors.is_empty() {
            Ok(ModelsConfig { models, wildcard })
        } else {
            Err(ConfigErrors(v.errors))
        }
    }
}

/// The running models config, shared by every reader and swapped whole by a hot reload.
///
/// It derefs to the current [`ModelsConfig`], so readers written for a fixed config
/// (`settings.models.model(name)`) see reloads without change. To hand out plain references
/// without a guard, each installed config lives for the rest of the process: a reload that
/// changes the file keeps one more config in memory (a few KB each; reloads are operator
/// actions, and an unchanged file is never installed).
#[derive(Clone)]
pub struct LiveModels(Arc<ArcSwap<&'static ModelsConfig>>);

impl LiveModels {
    pub fn new(config: ModelsConfig) -> LiveModels {
        LiveModels(Arc::new(ArcSwap::from_pointee(Box::leak(Box::new(config)))))
    }

    /// The config now in force.
    pub fn current(&self) -> &'static ModelsConfig {
        **self.0.load()
    }

    /// Installs `config` for every reader at once.
    pub fn store(&self, config: ModelsConfig) {
        self.0.store(Arc::new(Box::leak(Box::new(config))));
    }
}

impl Default for LiveModels {
    fn default() -> LiveModels {
        LiveModels::new(ModelsConfig::default())
    }
}

impl std::ops::Deref for LiveModels {
    type Target = ModelsConfig;
    fn deref(&self) -> &ModelsConfig {
        self.current()
    }
}

impl fmt::Debug for LiveModels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.current().fmt(f)
    }
}

/// One validation problem: where (JSON path) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// One line per problem, each prefixed with the file name.
    pub fn render(&self, file: &str) -> String {
        self.0
            .iter()
            .map(|e| format!("{file}: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Parses `"35m"`, `"30s"`, `"1h"`, `"250ms"`, or bare seconds (`"90"`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = if split == 0 {
        return None;
    } else {
        s.split_at(split)
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn parse_duration_or_secs(s: &str) -> Option<Duration> {
    if let Ok(n) = s.trim().parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    parse_duration(s)
}

#[path = "config_validate.rs"]
mod validate;
use validate::{quote, Validator};

#[path = "config_host.rs"]
mod host;
pub use host::{DiscoverAs, HostOptions};

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

#[cfg(test)]
mod hedge_tests {
    use super::*;

    #[test]
    fn hedge_after_ms_is_milliseconds_or_auto_and_anything_else_is_named() {
        let config = |v: &str| {
            format!(
                r#"{{"g": {{"m": {{"providers": [{{"id": "a", "api_host": "http://h:1", "api_type": "vllm"}}],
                     "hedge_after_ms": {v}}}}}, "active_models": {{"g": ["m"]}}}}"#
            )
        };
        let hedge =
            |v: &str| ModelsConfig::from_json_str(&config(v)).map(|c| c.models[0].hedge_after);
        assert_eq!(
            hedge("250").unwrap(),
            Some(HedgeAfter::Fixed(Duration::from_millis(250)))
        );
        assert_eq!(hedge("\"auto\"").unwrap(), Some(HedgeAfter::Auto));
        assert_eq!(hedge("null").unwrap(), None);
        for bad in ["0", "-5", "1.5", "\"soon\"", "true"] {
            let e = format!("{:?}", hedge(bad).unwrap_err());
            assert!(e.contains("hedge_after_ms"), "{bad}: {e}");
        }
        assert_eq!(HedgeAfter::parse("").unwrap(), None);
        assert_eq!(HedgeAfter::parse("AUTO").unwrap(), Some(HedgeAfter::Auto));
        assert!(HedgeAfter::parse("0").is_err());
    }
}
