//! The access layer's settings (SPEC §10): its `LLM_ROUTER_AUTH_*` / `LLM_ROUTER_CORS_*`
//! variables, parsed into [`AccessSettings`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use llm_router_actors::access::keys::KeysFile;
use llm_router_actors::access::store::load_file;

use crate::settings::parse_bool;

/// `(name, default, meaning)` of this module's variables, for `--help`.
pub const VARS: &[(&str, &str, &str)] = &[
    (
        "LLM_ROUTER_AUTH_ENABLED",
        "false",
        "require a client API key on every route that is not public",
    ),
    (
        "LLM_ROUTER_AUTH_KEY_STORE",
        "memory",
        "memory (the keys file) or redis (keys stored hashed, under LLM_ROUTER_REDIS_*)",
    ),
    (
        "LLM_ROUTER_AUTH_MEMORY_SEED_FILE",
        "~/.llm-router/configs/auth/memory-keys.json",
        "keys file of the memory store",
    ),
    (
        "LLM_ROUTER_AUTH_PUBLIC_ENDPOINTS",
        "/,/health,/metrics,/models,/v1/models,P/ping,P/version,P/metrics",
        "exact paths served without a key (comma list; P = the prefix)",
    ),
    (
        "LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED",
        "false",
        "enforce per-key limits (shared in Redis when LLM_ROUTER_REDIS_HOST is set)",
    ),
    (
        "LLM_ROUTER_AUTH_DEFAULT_RATE_LIMIT",
        "60",
        "requests per minute of a key that names no rpm",
    ),
    (
        "LLM_ROUTER_AUTH_KEY_PREFIX",
        "sk-litm",
        "prefix of keys made by `llm-router keys create`",
    ),
    (
        "LLM_ROUTER_AUTH_KEY_LENGTH",
        "48",
        "base62 characters after the prefix of a new key",
    ),
    (
        "LLM_ROUTER_AUTH_ROTATION_GRACE_PERIOD",
        "3600",
        "seconds a rotated key keeps working",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis,
}

/// The access variables, validated; with auth on and the memory store, the keys file loaded.
#[derive(Clone, Debug)]
pub struct AccessSettings {
    pub enabled: bool,
    pub store: StoreKind,
    pub keys_file: PathBuf,
    /// The loaded keys file (memory store, auth on).
    pub keys: Option<KeysFile>,
    /// The raw comma list (`P` expanded when the prefix is known).
    pub public_endpoints: String,
    pub rate_limit: bool,
    pub default_rpm: u32,
    pub key_prefix: String,
    pub key_length: usize,
    pub rotation_grace: Duration,
}

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings::parse(&HashMap::new()).expect("the defaults are valid")
    }
}

/// `~/…` → `$HOME/…`.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

impl AccessSettings {
    /// Parses the variables and, with auth on and the memory store, loads the keys file.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<AccessSettings, Vec<String>> {
        let mut s = AccessSettings::parse(vars)?;
        if s.enabled && s.store == StoreKind::Memory {
            s.keys = Some(load_file(&s.keys_file)?);
        }
        Ok(s)
    }

    /// Parses the variables only (the CLI, which may create the keys file).
    pub fn parse(vars: &HashMap<String, String>) -> Result<AccessSettings, Vec<String>> {
        let get = |name: &str| -> String {
            vars.get(name).cloned().unwrap_or_else(|| {
                VARS.iter()
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, d, _)| d.to_string())
                    .unwrap_or_default()
            })
        };
        let mut errs = Vec::new();
        let mut whole = |name: &str, min: u64| -> u64 {
            let raw = get(name);
            match raw.trim().parse::<u64>() {
                Ok(v) if v >= min => v,
                _ => {
                    errs.push(format!(
                        "{name}: expected a whole number ≥ {min}, got \"{raw}\""
                    ));
                    min
                }
            }
        };
        let default_rpm = whole("LLM_ROUTER_AUTH_DEFAULT_RATE_LIMIT", 1);
        let key_length = whole("LLM_ROUTER_AUTH_KEY_LENGTH", 16);
        let grace = whole("LLM_ROUTER_AUTH_ROTATION_GRACE_PERIOD", 0);
        let store = match get("LLM_ROUTER_AUTH_KEY_STORE")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "memory" | "" => StoreKind::Memory,
            "redis" => StoreKind::Redis,
            other => {
                errs.push(format!(
                    "LLM_ROUTER_AUTH_KEY_STORE: expected memory or redis, got \"{other}\""
                ));
                StoreKind::Memory
            }
        };
        let enabled = parse_bool(&get("LLM_ROUTER_AUTH_ENABLED"));
        if enabled
            && store == StoreKind::Redis
            && vars
                .get("LLM_ROUTER_REDIS_HOST")
                .is_none_or(|h| h.trim().is_empty())
        {
            errs.push(
                "LLM_ROUTER_AUTH_KEY_STORE: redis needs LLM_ROUTER_REDIS_HOST (and _PORT, _DB, \
                 _PASSWORD)"
                    .into(),
            );
        }
        let key_prefix = get("LLM_ROUTER_AUTH_KEY_PREFIX").trim().to_string();
        if key_prefix.is_empty() || !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
            errs.push(format!(
                "LLM_ROUTER_AUTH_KEY_PREFIX: expected visible ASCII characters, got \"{key_prefix}\""
            ));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(AccessSettings {
            enabled,
            store,
            keys_file: expand_home(get("LLM_ROUTER_AUTH_MEMORY_SEED_FILE").trim()),
            keys: None,
            public_endpoints: get("LLM_ROUTER_AUTH_PUBLIC_ENDPOINTS"),
            rate_limit: parse_bool(&get("LLM_ROUTER_AUTH_RATE_LIMIT_ENABLED")),
            default_rpm: default_rpm.min(u64::from(u32::MAX)) as u32,
            key_prefix,
            key_length: key_length as usize,
            rotation_grace: Duration::from_secs(grace),
        })
    }
}
