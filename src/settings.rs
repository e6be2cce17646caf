//! Environment variables (SPEC §1) and the files they name → one validated [`Settings`].
//!
//! Every problem is collected and reported together (exit code 2 in `main`): the process never
//! starts half-configured. Names and defaults are part of the product contract; `--help` prints
//! the same table this module parses.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use llm_router_actors::{ModelsConfig, StrategyKind};

/// `(name, default, meaning)`; the single source for parsing defaults and `--help`.
pub const VARS: &[(&str, &str, &str)] = &[
    ("LLM_ROUTER_SERVER_HOST", "0.0.0.0", "bind address"),
    ("LLM_ROUTER_SERVER_PORT", "8080", "bind port"),
    (
        "LLM_ROUTER_SERVER_WORKERS_COUNT",
        "<cores>",
        "HTTP worker threads",
    ),
    (
        "LLM_ROUTER_MODELS_CONFIG",
        "resources/configs/models-config.json",
        "model/provider config file",
    ),
    ("LLM_ROUTER_PROMPTS_DIR", "prompts", "prompt tree root"),
    (
        "LLM_ROUTER_DEFAULT_EP_LANGUAGE",
        "pl",
        "language of built-in prompts when a request names none (pl|en)",
    ),
    (
        "LLM_ROUTER_EP_PREFIX",
        "/api",
        "prefix of the prefixed routes",
    ),
    (
        "LLM_ROUTER_EXTERNAL_TIMEOUT",
        "300",
        "seconds: upstream call (time to first byte and each idle gap of a stream)",
    ),
    (
        "LLM_ROUTER_TIMEOUT",
        "0",
        "seconds: whole client request, 0 = none",
    ),
    (
        "LLM_ROUTER_MAX_REQUEST_BODY_SIZE",
        "10485760",
        "bytes; larger request bodies get 413",
    ),
    (
        "LLM_ROUTER_BALANCE_STRATEGY",
        "balanced",
        "provider choice strategy",
    ),
    (
        "LLM_ROUTER_REDIS_HOST",
        "",
        "shared state host; empty = in-process state",
    ),
    ("LLM_ROUTER_REDIS_PORT", "6379", "Redis port"),
    ("LLM_ROUTER_REDIS_DB", "0", "Redis database number"),
    ("LLM_ROUTER_REDIS_PASSWORD", "", "Redis password"),
    (
        "LLM_ROUTER_REDIS_LEASE_TTL_SECONDS",
        "10",
        "shared provider leases expire this long after their replica stops renewing them",
    ),
    (
        "LLM_ROUTER_REDIS_PREFIX",
        "llm-router:",
        "prefix of every shared-state key",
    ),
    (
        "LLM_ROUTER_USE_PROMETHEUS",
        "false",
        "expose /metrics and {prefix}/metrics",
    ),
    (
        "LLM_ROUTER_LOG_LEVEL",
        "INFO",
        "TRACE, DEBUG, INFO, WARN or ERROR",
    ),
    (
        "LLM_ROUTER_LOG_FILENAME",
        "llm-router.log",
        "log file when LLM_ROUTER_LOG_TO_FILE is on",
    ),
    (
        "LLM_ROUTER_LOG_TO_FILE",
        "false",
        "also write logs to LLM_ROUTER_LOG_FILENAME",
    ),
    (
        "LLM_ROUTER_IN_DEBUG",
        "false",
        "debug logging (same as LLM_ROUTER_LOG_LEVEL=DEBUG)",
    ),
    ("LLM_ROUTER_LOG_FORMAT", "text", "text or json (JSON lines)"),
    (
        "LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS",
        "5",
        "active health probe period (0 = off)",
    ),
    (
        "LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS",
        "1",
        "keep-alive scheduler tick (0 = off)",
    ),
    (
        "LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS",
        "5",
        "guard/masker service probe period",
    ),
    (
        "LLM_ROUTER_FORCE_MASKING",
        "false",
        "mask every request (not available in this build: refuses to start)",
    ),
    (
        "LLM_ROUTER_MASKING_STRATEGY_PIPELINE",
        "",
        "masking plugins in order",
    ),
    (
        "LLM_ROUTER_MASKING_WITH_AUDIT",
        "false",
        "audit masking events",
    ),
    (
        "LLM_ROUTER_FORCE_GUARDRAIL_REQUEST",
        "false",
        "check every request (not available in this build: refuses to start)",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
        "",
        "guardrail plugins in order",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_WITH_AUDIT_REQUEST",
        "false",
        "audit guardrail events",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_NASK_GUARD_HOST",
        "",
        "nask_guard service",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_SOJKA_GUARD_HOST",
        "",
        "sojka_guard service",
    ),
    ("LLM_ROUTER_MASKER_PII_HOST", "", "pii_masker service"),
    (
        "LLM_ROUTER_UTILS_PLUGINS_PIPELINE",
        "",
        "utils plugins in order",
    ),
    (
        "LLM_ROUTER_MINIMUM",
        "",
        "accepted for compatibility, no effect",
    ),
    (
        "LLM_ROUTER_SERVER_TYPE",
        "",
        "accepted for compatibility, no effect",
    ),
    (
        "LLM_ROUTER_SERVER_THREADS_COUNT",
        "",
        "accepted for compatibility, no effect",
    ),
    (
        "LLM_ROUTER_SERVER_WORKER_CLASS",
        "",
        "accepted for compatibility, no effect",
    ),
];

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

#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub password: String,
    pub lease_ttl: Duration,
    pub prefix: String,
}

impl RedisSettings {
    /// `redis://[:password@]host:port/db` (the password is percent-encoded).
    pub fn url(&self) -> String {
        let auth = if self.password.is_empty() {
            String::new()
        } else {
            let enc: String = self
                .password
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!(":{enc}@")
        };
        format!("redis://{auth}{}:{}/{}", self.host, self.port, self.db)
    }
}

/// A loaded, validated configuration. Constructing one is the only way to start the router.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub models_config_path: PathBuf,
    pub models: ModelsConfig,
    pub prompts_dir: PathBuf,
    pub default_language: String,
    /// Normalised: starts with `/`, no trailing `/` (empty when set to `/`).
    pub prefix: String,
    pub external_timeout: Duration,
    pub request_timeout: Option<Duration>,
    pub max_body: usize,
    pub strategy: StrategyKind,
    pub redis: Option<RedisSettings>,
    pub prometheus: bool,
    pub log: LogSettings,
    pub provider_monitor_interval: Duration,
    pub keepalive_interval: Duration,
    /// Idle gap after which an SSE heartbeat comment is sent on a stream.
    pub heartbeat: Duration,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
    pub access: crate::access::AccessSettings,
}

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
        Settings::from_vars(&env_vars())
    }

    /// Builds settings from explicit variables (tests); files named are read from disk.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Settings, Vec<String>> {
        let mut errs = Vec::new();
        let get = |name: &str| -> String {
            vars.get(name).cloned().unwrap_or_else(|| {
                VARS.iter()
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, d, _)| d.to_string())
                    .unwrap_or_default()
            })
        };
        let mut num = |name: &str, min: f64| -> f64 {
            let raw = get(name);
            match raw.trim().parse::<f64>() {
                Ok(v) if v >= min && v.is_finite() => v,
                _ => {
                    errs.push(format!("{name}: expected a number ≥ {min}, got \"{raw}\""));
                    min
                }
            }
        };
        let port = num("LLM_ROUTER_SERVER_PORT", 0.0);
        let external = num("LLM_ROUTER_EXTERNAL_TIMEOUT", 0.001);
        let timeout = num("LLM_ROUTER_TIMEOUT", 0.0);
        let max_body = num("LLM_ROUTER_MAX_REQUEST_BODY_SIZE", 1.0);
        // 0 turns the monitor off.
        let monitor = num("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", 0.0);
        let redis_port = num("LLM_ROUTER_REDIS_PORT", 1.0);
        let redis_db = num("LLM_ROUTER_REDIS_DB", 0.0);
        let lease_ttl = num("LLM_ROUTER_REDIS_LEASE_TTL_SECONDS", 0.1);
        let keepalive = num("LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS", 0.0);
        num("LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS", 0.05);
        if port > 65535.0 || port.fract() != 0.0 {
            errs.push(format!("LLM_ROUTER_SERVER_PORT: not a port number: {port}"));
        }
        let workers = match vars.get("LLM_ROUTER_SERVER_WORKERS_COUNT") {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    errs.push(format!(
                        "LLM_ROUTER_SERVER_WORKERS_COUNT: expected a whole number ≥ 1, got \"{raw}\""
                    ));
                    1
                }
            },
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

        // Privacy features this build does not have must never be silently skipped.
        for (name, what) in [
            ("LLM_ROUTER_FORCE_MASKING", "masking"),
            ("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "request guardrails"),
        ] {
            if parse_bool(&get(name)) {
                errs.push(format!(
                    "{name}: {what} is not available in this build; refusing to start rather than \
                     send unprotected requests upstream"
                ));
            }
        }

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
            port: redis_port as u16,
            db: redis_db as i64,
            password: get("LLM_ROUTER_REDIS_PASSWORD"),
            lease_ttl: Duration::from_secs_f64(lease_ttl),
            prefix: get("LLM_ROUTER_REDIS_PREFIX"),
        });

        let models_config_path = PathBuf::from(get("LLM_ROUTER_MODELS_CONFIG"));
        let file = models_config_path.display().to_string();
        let models = match std::fs::read_to_string(&models_config_path) {
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

        let access = crate::access::AccessSettings::from_vars(vars).unwrap_or_else(|e| {
            errs.extend(e);
            Default::default()
        });
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Settings {
            host: get("LLM_ROUTER_SERVER_HOST").trim().to_string(),
            port: port as u16,
            workers,
            models_config_path,
            models,
            prompts_dir: PathBuf::from(get("LLM_ROUTER_PROMPTS_DIR")),
            default_language,
            prefix,
            external_timeout: Duration::from_secs_f64(external),
            request_timeout: (timeout > 0.0).then(|| Duration::from_secs_f64(timeout)),
            max_body: max_body as usize,
            strategy,
            redis,
            prometheus: parse_bool(&get("LLM_ROUTER_USE_PROMETHEUS")),
            log: LogSettings {
                level: level.to_string(),
                format,
                to_file,
            },
            provider_monitor_interval: Duration::from_secs_f64(monitor),
            keepalive_interval: Duration::from_secs_f64(keepalive),
            heartbeat: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            access,
        })
    }
}

/// The `--help` text: every variable with its default.
pub fn help_text() -> String {
    let mut s = format!(
        "llm-router {}: an LLM gateway (OpenAI, Ollama, Anthropic dialects).\n\n\
         Usage: llm-router [--help | --version]\n\n\
         Configured only through environment variables (booleans are true for 1,true,t,yes,y,tak):\n\n",
        env!("CARGO_PKG_VERSION")
    );
    let width = VARS
        .iter()
        .chain(crate::access::VARS)
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(0);
    for (name, default, meaning) in VARS.iter().chain(crate::access::VARS) {
        let default = if default.is_empty() { "\"\"" } else { default };
        s.push_str(&format!(
            "  {name:width$}  {meaning} [default: {default}]\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut v: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.entry("LLM_ROUTER_MODELS_CONFIG".into())
            .or_insert_with(|| {
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/resources/configs/models-config.json"
                )
                .into()
            });
        v
    }

    #[test]
    fn booleans_follow_the_python_rule() {
        for t in ["1", "true", "T", "yes", "Y", "TAK", " tak "] {
            assert!(parse_bool(t), "{t}");
        }
        for f in ["0", "false", "no", "nie", "", "2"] {
            assert!(!parse_bool(f), "{f}");
        }
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 8080));
        assert_eq!(s.prefix, "/api");
        assert_eq!(s.external_timeout, Duration::from_secs(300));
        assert_eq!(s.request_timeout, None);
        assert_eq!(s.max_body, 10_485_760);
        assert_eq!(s.strategy, StrategyKind::Balanced);
        assert!(s.redis.is_none());
        assert!(!s.prometheus);
        assert_eq!(s.log.level, "info");
        assert_eq!(s.default_language, "pl");
        assert!(!s.models.models.is_empty(), "the shipped config loads");
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let errs = Settings::from_vars(&vars(&[
            ("LLM_ROUTER_SERVER_PORT", "eighty"),
            ("LLM_ROUTER_BALANCE_STRATEGY", "random"),
            ("LLM_ROUTER_LOG_LEVEL", "loud"),
            ("LLM_ROUTER_FORCE_MASKING", "tak"),
            ("LLM_ROUTER_MODELS_CONFIG", "/nonexistent/models.json"),
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(errs[0].starts_with("LLM_ROUTER_SERVER_PORT: expected a number"));
        assert!(errs
            .iter()
            .any(|e| e.contains("unknown balance strategy \"random\"; valid: balanced")));
        assert!(errs
            .iter()
            .any(|e| e.starts_with("LLM_ROUTER_FORCE_MASKING: masking is not available")));
        assert!(errs
            .iter()
            .any(|e| e.starts_with("/nonexistent/models.json: cannot read")));
    }

    #[test]
    fn prefix_is_normalised() {
        for (raw, want) in [
            ("/api", "/api"),
            ("api/", "/api"),
            ("/v2/x/", "/v2/x"),
            ("/", ""),
        ] {
            let s = Settings::from_vars(&vars(&[("LLM_ROUTER_EP_PREFIX", raw)])).unwrap();
            assert_eq!(s.prefix, want, "{raw}");
        }
    }

    #[test]
    fn help_lists_every_variable_with_its_default() {
        let h = help_text();
        for (name, _, _) in VARS {
            assert!(h.contains(name), "{name}");
        }
        assert!(h.contains("[default: 8080]"));
    }
}
