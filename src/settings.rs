//! Environment variables (SPEC §1) and the files they name → one validated [`Settings`].
//!
//! Every problem is collected and reported together (exit code 2 in `main`): the process never
//! starts half-configured. Names and defaults are part of the product contract; `--help` prints
//! the same table this module parses.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use llm_router_actors::config::{LiveModels, Secret};
use llm_router_actors::{ModelsConfig, StrategyKind};

#[path = "settings_vars.rs"]
mod vars;
pub use vars::VARS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct LogSettings {
    /// A `tracing` filter directive, e.g. `info`.
    pub level: String,
    pub format: LogFormat,
    pub to_file: Option<PathBuf>,
}

/// Shared state in Redis. The parts are kept apart so the password, a [`Secret`], never sits
/// inside a printable URL.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub host: String,
    /// 1–65535.
    pub port: u16,
    pub db: u32,
    /// Empty = no `AUTH`.
    pub password: Secret,
    pub lease_ttl: Duration,
    pub prefix: String,
}

/// A loaded, validated configuration. Constructing one is the only way to start the router.
impl RedisSettings {
    /// The server, for the Redis clients (the password stays a [`Secret`]).
    pub fn addr(&self) -> llm_router_actors::store::RedisAddr {
        llm_router_actors::store::RedisAddr {
            host: self.host.clone(),
            port: self.port,
            db: i64::from(self.db),
            password: self.password.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub host: String,
    /// 0 = an ephemeral port chosen by the OS.
    pub port: u16,
    /// ≥ 1.
    pub workers: usize,
    /// Where `models` came from (the hot reload re-reads it).
    pub models_config_path: PathBuf,
    /// The running models config: a hot reload swaps it for every reader (it derefs to the
    /// current [`ModelsConfig`]).
    pub models: LiveModels,
    /// How often the models config file is checked for changes (`LLM_ROUTER_CONFIG_WATCH_SECONDS`;
    /// zero = never).
    pub config_watch: Duration,
    /// Model discovery period (`LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS`; 0 = at start only).
    pub discovery_interval: Duration,
    /// `LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT`.
    pub vram_management: bool,
    /// Root of the prompt tree, for the built-in endpoints (SPEC §5).
    pub prompts_dir: PathBuf,
    /// `pl` or `en`: the built-in endpoints' language when a request names none (SPEC §5).
    pub default_language: String,
    /// Normalised: starts with `/`, no trailing `/` (empty when set to `/`).
    pub prefix: String,
    /// The web console (`LLM_ROUTER_WEB_CONSOLE`, `LLM_ROUTER_STATE_DIR`; SPEC §12).
    pub console: crate::console::ConsoleSettings,
    pub external_timeout: Duration,
    pub request_timeout: Option<Duration>,
    /// Bytes, ≥ 1.
    pub max_body: usize,
    /// Most upstream attempts per request (`LLM_ROUTER_MAX_ATTEMPTS`, ≥ 1).
    pub max_attempts: usize,
    /// Longest `Retry-After` a request waits out (`LLM_ROUTER_MAX_RETRY_AFTER_SECONDS`).
    pub max_retry_after: Duration,
    /// Continue a stream that failed after its first byte (`LLM_ROUTER_STREAM_RESUME`).
    pub stream_resume: bool,
    /// Send to `http://` providers through awc as well (`LLM_ROUTER_UPSTREAM_AWC`); by default
    /// they get the relay's own HTTP/1.1 client (`relay/h1.rs`).
    pub upstream_awc: bool,
    /// The router-wide hedge delay (`LLM_ROUTER_HEDGE_AFTER_MS`); a model's `hedge_after_ms` wins.
    pub hedge_after: Option<HedgeAfter>,
    /// Largest fraction of requests hedged (`LLM_ROUTER_HEDGE_MAX_FRACTION`, 0–1).
    pub hedge_max_fraction: f64,
    pub strategy: StrategyKind,
    pub redis: Option<RedisSettings>,
    pub prometheus: bool,
    pub log: LogSettings,
    /// Zero = no active provider probes.
    pub provider_monitor_interval: Duration,
    /// Zero = no keep-alive scheduler.
    pub keepalive_interval: Duration,
    /// Probe period of the guard/masker services (`LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS`).
    pub services_monitor_interval: Duration,
    /// Idle gap after which an SSE heartbeat comment is sent on a stream.
    pub heartbeat: Duration,
    /// How long in-flight requests may take to finish on shutdown
    /// (`LLM_ROUTER_SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// Allowed browser origins (`LLM_ROUTER_CORS_ORIGINS`).
    pub cors: crate::cors::Cors,
    /// The built-in endpoints: loaded prompts, optional routes.
    pub builtin: crate::builtin::BuiltinSettings,
    /// When and how requests are masked (SPEC §6).
    pub masking: crate::pipeline::masking::MaskingSettings,
    /// Guardrails and the plugin services (SPEC §6).
    pub pipeline: crate::pipeline::PipelineSettings,
    pub access: crate::access::AccessSettings,
    /// Set when the configuration came from the FastAPI failover router's variables (no
    /// models-config file): the mapping, logged at start-up.
    pub fastapi: Option<crate::settings_fastapi::FastApi>,
    /// Smart routing: utils plugins, model `auto`, the external model name, cache affinity.
    pub smart: crate::smart::SmartSettings,
    /// The `langchain_rag` plugin's settings, when the utils pipeline names it.
    pub rag: Option<crate::rag::RagSettings>,
    /// Model profiling and benchmark scores (`LLM_ROUTER_PROFILES`, `LLM_ROUTER_STATE_DIR`).
    pub profiles: crate::profiles::ProfileSettings,
}

pub use llm_router_actors::config::HedgeAfter;

/// True for `1,true,t,yes,y,tak` in any case (the Python gateway's rule).
pub fn parse_bool(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "t" | "yes" | "y" | "tak"
    )
}

/// Reads the process environment through the `config` crate.
pub fn env_vars() -> HashMap<String, String> {
    let source = config::Environment::with_prefix("LLM_ROUTER")
        .prefix_separator("_")
        .separator("__");
    let cfg = config::Config::builder().add_source(source).build();
    let mut out = HashMap::new();
    // `collect` keeps going when one variable is oddly shaped (e.g. nested by `__`): that one is skipped.
    if let Ok(map) = cfg.and_then(|c| c.try_deserialize::<HashMap<String, config::Value>>()) {
        for (k, v) in map {
            if let Ok(v) = v.into_string() {
                out.insert(format!("LLM_ROUTER_{}", k.to_ascii_uppercase()), v);
            }
        }
    }
    out
}

impl Settings {
    /// Builds settings from the process environment, reading the files it names.
    pub fn from_env() -> Result<Settings, Vec<String>> {
        let mut vars = env_vars();
        vars.extend(crate::settings_fastapi::env_vars());
        for (alias, _) in crate::smart::ALIASES {
            if let Ok(v) = std::env::var(alias) {
                vars.insert(alias.to_string(), v);
            }
        }
        Settings::from_vars(&vars)
    }

    /// Builds settings from explicit variables (tests); files named are read from disk.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Settings, Vec<String>> {
        let mut aliased = vars.clone();
        crate::smart::apply_aliases(&mut aliased, |k| vars.get(k).cloned());
        let vars = &aliased;
        let mut errs = Vec::new();
        let get = |name: &str| -> String {
            vars.get(name).cloned().unwrap_or_else(|| {
                VARS.iter()
                    .chain(crate::rag::VARS)
                    .chain(crate::profiles::VARS)
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, d, _)| d.to_string())
                    .unwrap_or_default()
            })
        };
        // Each value is parsed into its type here; a bad one is reported (named, with the raw
        // value) and replaced by a placeholder that is never used, since errors abort below.
        let port = report(
            &mut errs,
            "LLM_ROUTER_SERVER_PORT",
            whole_number(&get("LLM_ROUTER_SERVER_PORT"), 0u16, Some(u16::MAX)),
        );
        let max_body = report(
            &mut errs,
            "LLM_ROUTER_MAX_REQUEST_BODY_SIZE",
            whole_number(&get("LLM_ROUTER_MAX_REQUEST_BODY_SIZE"), 1usize, None),
        );
        let redis_port = report(
            &mut errs,
            "LLM_ROUTER_REDIS_PORT",
            whole_number(&get("LLM_ROUTER_REDIS_PORT"), 1u16, Some(u16::MAX)),
        );
        let redis_db = report(
            &mut errs,
            "LLM_ROUTER_REDIS_DB",
            whole_number(&get("LLM_ROUTER_REDIS_DB"), 0u32, None),
        );
        let max_attempts = report(
            &mut errs,
            "LLM_ROUTER_MAX_ATTEMPTS",
            whole_number(&get("LLM_ROUTER_MAX_ATTEMPTS"), 1usize, Some(100)),
        );
        let workers = match vars.get("LLM_ROUTER_SERVER_WORKERS_COUNT") {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(raw) => report(
                &mut errs,
                "LLM_ROUTER_SERVER_WORKERS_COUNT",
                whole_number(raw, 1usize, Some(4096)),
            ),
        };
        let mut secs = |name: &str, min: Duration| -> Duration {
            let r = seconds(&get(name), min);
            report(&mut errs, name, r)
        };
        let external = secs("LLM_ROUTER_EXTERNAL_TIMEOUT", Duration::from_millis(1));
        // 0 = no whole-request deadline.
        let timeout = secs("LLM_ROUTER_TIMEOUT", Duration::ZERO);
        let shutdown_grace = secs("LLM_ROUTER_SHUTDOWN_GRACE_SECONDS", Duration::ZERO);
        // 0 turns the monitor off.
        let monitor = secs(
            "LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS",
            Duration::ZERO,
        );
        let keepalive = secs(
            "LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS",
            Duration::ZERO,
        );
        let services_monitor = secs(
            "LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS",
            Duration::from_millis(50),
        );
        let lease_ttl = secs(
            "LLM_ROUTER_REDIS_LEASE_TTL_SECONDS",
            Duration::from_millis(100),
        );
        let max_retry_after = secs("LLM_ROUTER_MAX_RETRY_AFTER_SECONDS", Duration::ZERO);
        // 0 turns the watch off.
        let config_watch = secs("LLM_ROUTER_CONFIG_WATCH_SECONDS", Duration::ZERO);
        let discovery_interval = secs("LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS", Duration::ZERO);
        let hedge_after =
            HedgeAfter::parse(&get("LLM_ROUTER_HEDGE_AFTER_MS")).unwrap_or_else(|e| {
                errs.push(format!("LLM_ROUTER_HEDGE_AFTER_MS: {e}"));
                None
            });
        let fraction = get("LLM_ROUTER_HEDGE_MAX_FRACTION");
        let hedge_max_fraction = match fraction.trim().parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => f,
            _ => {
                errs.push(format!(
                    "LLM_ROUTER_HEDGE_MAX_FRACTION: expected a number from 0 to 1, got {fraction:?}"
                ));
                0.0
            }
        };
        let strategy = match StrategyKind::parse(&get("LLM_ROUTER_BALANCE_STRATEGY")) {
            Ok(k) => k,
            Err(e) => {
                errs.push(format!("LLM_ROUTER_BALANCE_STRATEGY: {e}"));
                StrategyKind::Balanced
            }
        };
        let default_language = get("LLM_ROUTER_DEFAULT_EP_LANGUAGE")
            .trim()
            .to_ascii_lowercase();
        if default_language != "pl" && default_language != "en" {
            errs.push(format!(
                "LLM_ROUTER_DEFAULT_EP_LANGUAGE: expected pl or en, got \"{default_language}\""
            ));
        }
        let level_raw = get("LLM_ROUTER_LOG_LEVEL");
        let mut level = match level_raw.trim().to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "info" => "info",
            "warn" | "warning" => "warn",
            "error" | "critical" => "error",
            _ => {
                errs.push(format!(
                    "LLM_ROUTER_LOG_LEVEL: expected TRACE, DEBUG, INFO, WARN or ERROR, got \"{level_raw}\""
                ));
                "info"
            }
        };
        if parse_bool(&get("LLM_ROUTER_IN_DEBUG")) {
            level = "debug";
        }
        let format = match get("LLM_ROUTER_LOG_FORMAT")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "text" | "plain" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                errs.push(format!(
                    "LLM_ROUTER_LOG_FORMAT: expected text or json, got \"{other}\""
                ));
                LogFormat::Text
            }
        };
        let to_file = parse_bool(&get("LLM_ROUTER_LOG_TO_FILE"))
            .then(|| PathBuf::from(get("LLM_ROUTER_LOG_FILENAME")));

        let masking = crate::pipeline::masking::MaskingSettings::from_vars(&get, &mut errs);
        let pipeline = crate::pipeline::PipelineSettings::from_vars(
            &get,
            &|raw| seconds(raw, Duration::ZERO),
            &mut errs,
        );

        let mut prefix = get("LLM_ROUTER_EP_PREFIX")
            .trim()
            .trim_end_matches('/')
            .to_string();
        if !prefix.is_empty() && !prefix.starts_with('/') {
            prefix.insert(0, '/');
        }

        let redis_host = get("LLM_ROUTER_REDIS_HOST").trim().to_string();
        let redis = (!redis_host.is_empty()).then(|| RedisSettings {
            host: redis_host,
            port: redis_port,
            db: redis_db,
            password: Secret::new(get("LLM_ROUTER_REDIS_PASSWORD")),
            lease_ttl,
            prefix: get("LLM_ROUTER_REDIS_PREFIX"),
        });

        let models_config_path = PathBuf::from(get("LLM_ROUTER_MODELS_CONFIG"));
        let file = models_config_path.display().to_string();
        // No models file, but the FastAPI failover router's variables: its configuration.
        let fastapi_mode = !models_config_path.exists() && crate::settings_fastapi::requested(vars);
        let fastapi = fastapi_mode
            .then(|| crate::settings_fastapi::parse(vars))
            .and_then(|r| r.map_err(|e| errs.extend(e)).ok());
        let models = match std::fs::read_to_string(&models_config_path) {
            // (its problems, if any, are reported above)
            _ if fastapi_mode => fastapi
                .as_ref()
                .map(|f| f.models_config())
                .unwrap_or_default(),
            Ok(text) => match ModelsConfig::from_json_str(&text) {
                Ok(m) => m,
                Err(e) => {
                    errs.extend(e.render(&file).lines().map(String::from));
                    ModelsConfig::default()
                }
            },
            Err(e) => {
                errs.push(format!(
                    "{file}: cannot read (LLM_ROUTER_MODELS_CONFIG): {e}"
                ));
                ModelsConfig::default()
            }
        };

        let smart = crate::smart::SmartSettings::from_vars(vars, &models, &mut errs);
        let rag = smart
            .utils
            .contains(&crate::smart::UtilsPlugin::LangchainRag)
            .then(|| crate::rag::RagSettings::from_vars(&get, &models, &mut errs));
        let profiles = crate::profiles::ProfileSettings::from_vars(&get, &mut errs);
        let builtin = crate::builtin::BuiltinSettings::from_vars(vars);
        if let Err(e) = &builtin {
            errs.extend(e.iter().cloned());
        }

        let cors = crate::cors::Cors::parse(&get("LLM_ROUTER_CORS_ORIGINS")).unwrap_or_else(|e| {
            errs.push(format!("LLM_ROUTER_CORS_ORIGINS: {e}"));
            Default::default()
        });
        let mut access = crate::access::AccessSettings::from_vars(vars).unwrap_or_else(|e| {
            errs.extend(e);
            Default::default()
        });
        // The FastAPI router's keys, unless the LLM_ROUTER_AUTH_* variables configure access.
        if let Some(f) = fastapi
            .as_ref()
            .filter(|_| !vars.contains_key("LLM_ROUTER_AUTH_ENABLED"))
        {
            access.enabled = f.auth_enabled;
            access.store = crate::access::StoreKind::Memory;
            match f.keys_file() {
                Ok(k) => access.keys = Some(k),
                Err(e) => errs.extend(e),
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Settings {
            host: get("LLM_ROUTER_SERVER_HOST").trim().to_string(),
            port,
            workers,
            models_config_path,
            models: LiveModels::new(models),
            config_watch,
            discovery_interval,
            vram_management: parse_bool(&get("LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT")),
            prompts_dir: PathBuf::from(get("LLM_ROUTER_PROMPTS_DIR")),
            default_language,
            prefix,
            console: crate::console::ConsoleSettings {
                enabled: parse_bool(&get("LLM_ROUTER_WEB_CONSOLE")),
                state_dir: PathBuf::from(get("LLM_ROUTER_STATE_DIR")),
            },
            external_timeout: external,
            request_timeout: (!timeout.is_zero()).then_some(timeout),
            max_body,
            max_attempts,
            max_retry_after,
            stream_resume: parse_bool(&get("LLM_ROUTER_STREAM_RESUME")),
            upstream_awc: parse_bool(&get("LLM_ROUTER_UPSTREAM_AWC")),
            hedge_after,
            hedge_max_fraction,
            strategy,
            redis,
            prometheus: parse_bool(&get("LLM_ROUTER_USE_PROMETHEUS")),
            log: LogSettings {
                level: level.to_string(),
                format,
                to_file,
            },
            provider_monitor_interval: monitor,
            keepalive_interval: keepalive,
            services_monitor_interval: services_monitor,
            heartbeat: Duration::from_secs(10),
            shutdown_grace,
            cors,
            masking,
            pipeline,
            builtin: builtin?,
            access,
            fastapi,
            smart,
            rag,
            profiles,
        })
    }
}

/// Records a bad value's error under its variable's name; the placeholder returned is never
/// used, since any error stops start-up.
fn report<T: Default>(errs: &mut Vec<String>, name: &str, r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| {
        errs.push(format!("{name}: {e}"));
        T::default()
    })
}

/// A whole number of type `T`, at least `min` and at most `max` (else `T`'s own maximum); digits
/// only, so `6379.5` or `-1` is an error and `70000` for a port overflows into one: never
/// truncated or clamped.
fn whole_number<T>(raw: &str, min: T, max: Option<T>) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let t = raw.trim();
    let expected = || match max {
        Some(max) => format!("expected a whole number from {min} to {max}, got \"{raw}\""),
        None => format!("expected a whole number ≥ {min}, got \"{raw}\""),
    };
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let v: T = t
        .parse()
        .map_err(|_| format!("{} (too large for this setting)", expected()))?;
    if v < min || max.is_some_and(|m| v > m) {
        return Err(expected());
    }
    Ok(v)
}

/// Seconds as a decimal (`5`, `0.5`), at least `min`; negative, non-finite and too-large values
/// are errors. The second count has no sign or exponent.
fn seconds(raw: &str, min: Duration) -> Result<Duration, String> {
    let t = raw.trim();
    let expected = || {
        format!(
            "expected seconds ≥ {} (a decimal number such as 5 or 0.5), got \"{raw}\"",
            min.as_secs_f64()
        )
    };
    let well_formed = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().filter(|&b| b == b'.').count() <= 1
        && t.bytes().any(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(expected());
    }
    let v: f64 = t.parse().map_err(|_| expected())?;
    // A year is far beyond any sensible timeout or period, and keeps `Instant` arithmetic safe.
    const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;
    if v > MAX_SECS {
        return Err(format!(
            "expected seconds ≤ {MAX_SECS} (one year), got \"{raw}\""
        ));
    }
    let d = Duration::from_secs_f64(v);
    if d < min {
        return Err(expected());
    }
    Ok(d)
}

/// The `--help` text: every variable with its default.
pub fn help_text() -> String {
    let mut s = format!(
        "llm-router {}: an LLM gateway (OpenAI, Ollama, Anthropic dialects).\n\n\
         Usage: llm-router [--help | --version]\n\
         \x20      llm-router keys create|list|revoke|rotate ...  (API keys; see llm-router keys --help)\n\
         \x20      llm-router batch translate|classify ...       (datasets; see llm-router batch --help)\n\n\
         Configured only through environment variables (booleans are true for 1,true,t,yes,y,tak):\n\n",
        env!("CARGO_PKG_VERSION")
    );
    let width = VARS
        .iter()
        .chain(crate::builtin::VARS)
        .chain(crate::rag::VARS)
        .chain(crate::profiles::VARS)
        .chain(crate::access::VARS)
        .chain(crate::settings_fastapi::VARS)
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(0);
    for (name, default, meaning) in VARS
        .iter()
        .chain(crate::builtin::VARS)
        .chain(crate::rag::VARS)
        .chain(crate::profiles::VARS)
        .chain(crate::settings_fastapi::VARS)
        .chain(crate::smart::VARS)
        .chain(llm_router_actors::routing::VARS)
    {
        let default = if default.is_empty() { "\"\"" } else { default };
        s.push_str(&format!(
            "  {name:width$}  {meaning} [default: {default}]\n"
        ));
    }
    s
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
