//! The FastAPI failover router's environment-only configuration (SPEC §10), mapped onto this
//! router's: used when no models-config file exists and any of its service variables is set.
//!
//! What it reads, with the original's defaults (its `app/config.py` and `app/auth_service.py`):
//! - `ROUTER_SERVICES`: a JSON list of `{name, backend_type, base_url, api_key, timeout, priority,
//!   rate_limit_requests, rate_limit_window}`; `backend_type` ∈ `openai, cerebras, deepinfra,
//!   ollama, custom`, all spoken to with the OpenAI API at `base_url` (which includes the version
//!   path, e.g. `https://api.openai.com/v1`); lower `priority` is tried first; at most
//!   `rate_limit_requests` requests in any `rate_limit_window` seconds (default 60; no limit
//!   when `rate_limit_requests` is absent or 0); `timeout` defaults to `REQUEST_TIMEOUT` (60).
//! - Without `ROUTER_SERVICES`, the shortcuts, in the original's order: `CEREBRAS_API_KEY`
//!   (`CEREBRAS_BASE_URL`, default `https://api.cerebras.ai/v1`), `DEEPINFRA_TOKEN`
//!   (`DEEPINFRA_BASE_URL`, `https://api.deepinfra.com/v1/openai`), `OPENAI_API_KEY`
//!   (`OPENAI_BASE_URL`, `https://api.openai.com/v1`), and always last Ollama at
//!   `OLLAMA_BASE_URL` (`http://localhost:11434/v1`), without a key.
//! - Keys: `AUTH_KEY`, or else `AUTH_KEY_01`, `AUTH_KEY_02`, … up to the first missing number;
//!   `ENABLE_AUTH` (default true); `AUTH_HEADER_NAME` (default `Authorization`): the header a
//!   key may also come in, with or without `Bearer `.
//!
//! The mapping: every service becomes a provider of the catch-all model `*` (it serves every
//! model name it is asked for, passing the name upstream), `api_type` `openai`, `api_host` the
//! `base_url`, `priority` its rank in the original's order (a stable sort by `priority`, so ties
//! keep list order and exactly one service is tried at a time, as there), `rpm` over a
//! `rate_limit_window` window, `timeout_s` its timeout. Keys become memory-store keys with
//! policy `admin` (the original's keys may call every route), `key_id` the variable's name.
//! Deliberate differences: a malformed `ROUTER_SERVICES` is a start-up error (the original
//! logs a warning and silently uses the shortcuts), and a `LLM_ROUTER_*` variable, when set,
//! wins over its FastAPI counterpart.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use llm_router_actors::access::KeysFile;
use llm_router_actors::config::{
    ApiType, ModelConfig, ModelsConfig, ProviderConfig, Secret, WILDCARD,
};
use serde_json::{json, Value};

use crate::handlers::AppState;

/// Every variable this module reads, besides `AUTH_KEY_01` … `AUTH_KEY_99`.
pub const NAMES: &[&str] = &[
    "ROUTER_SERVICES",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CEREBRAS_API_KEY",
    "CEREBRAS_BASE_URL",
    "DEEPINFRA_TOKEN",
    "DEEPINFRA_BASE_URL",
    "OLLAMA_BASE_URL",
    "REQUEST_TIMEOUT",
    "AUTH_KEY",
    "ENABLE_AUTH",
    "AUTH_HEADER_NAME",
];

/// `(name, default, meaning)` for `--help`.
pub const VARS: &[(&str, &str, &str)] = &[
    (
        "ROUTER_SERVICES",
        "",
        "FastAPI failover router: JSON list of services (used when no models-config file exists)",
    ),
    (
        "CEREBRAS_API_KEY",
        "",
        "FastAPI router shortcut: a Cerebras service",
    ),
    (
        "DEEPINFRA_TOKEN",
        "",
        "FastAPI router shortcut: a DeepInfra service",
    ),
    (
        "OPENAI_API_KEY",
        "",
        "FastAPI router shortcut: an OpenAI service",
    ),
    (
        "OLLAMA_BASE_URL",
        "http://localhost:11434/v1",
        "FastAPI router shortcut: the Ollama service (always added last)",
    ),
    (
        "AUTH_KEY, AUTH_KEY_01..99",
        "",
        "FastAPI router: client keys (policy admin)",
    ),
    ("ENABLE_AUTH", "true", "FastAPI router: require a key"),
    (
        "AUTH_HEADER_NAME",
        "Authorization",
        "FastAPI router: header a key may also come in",
    ),
];

/// Any of these set means "configure me like the FastAPI router" (when no models file exists).
const TRIGGERS: &[&str] = &[
    "ROUTER_SERVICES",
    "OPENAI_API_KEY",
    "CEREBRAS_API_KEY",
    "DEEPINFRA_TOKEN",
    "OLLAMA_BASE_URL",
];

const BACKENDS: &[&str] = &["openai", "cerebras", "deepinfra", "ollama", "custom"];

/// The FastAPI router's variables present in the process environment.
pub fn env_vars() -> HashMap<String, String> {
    let numbered = (1..=99).map(|i| format!("AUTH_KEY_{i:02}"));
    NAMES
        .iter()
        .map(|s| s.to_string())
        .chain(numbered)
        .filter_map(|n| std::env::var(&n).ok().map(|v| (n, v)))
        .collect()
}

/// Whether `vars` ask for the FastAPI router's configuration.
pub fn requested(vars: &HashMap<String, String>) -> bool {
    TRIGGERS
        .iter()
        .any(|n| vars.get(*n).is_some_and(|v| !v.trim().is_empty()))
}

/// One service of the original, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
    pub backend_type: String,
    pub base_url: String,
    pub api_key: Secret,
    pub priority: i64,
    pub timeout: Duration,
    /// `(requests, window)`.
    pub rate_limit: Option<(u32, Duration)>,
}

/// The mapped configuration.
#[derive(Clone, Debug)]
pub struct FastApi {
    /// In the order they are tried.
    pub services: Vec<Service>,
    /// `ROUTER_SERVICES` or the shortcut variables.
    pub source: &'static str,
    pub auth_enabled: bool,
    /// `(variable name, key)`, duplicates removed.
    pub keys: Vec<(String, Secret)>,
    /// `AUTH_HEADER_NAME`, lower case: a header the key may also come in.
    pub key_header: Option<String>,
    /// Numbered keys skipped because an earlier number is missing.
    pub skipped_keys: Vec<String>,
}

/// Pydantic's booleans (the original parses `ENABLE_AUTH` with them).
fn pydantic_bool(name: &str, raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
        "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
        _ => Err(format!("{name}: expected true or false, got \"{raw}\"")),
    }
}

fn url_ok(url: &str) -> bool {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .is_some_and(|r| !r.trim_end_matches('/').is_empty())
}

/// A variable's trimmed value; empty counts as unset.
fn value<'a>(vars: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

pub fn parse(vars: &HashMap<String, String>) -> Result<FastApi, Vec<String>> {
    let get = |n: &str| value(vars, n);
    let mut errs = Vec::new();
    let timeout = match get("REQUEST_TIMEOUT") {
        None => 60,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or_else(|| {
                errs.push(format!(
                    "REQUEST_TIMEOUT: expected a whole number of seconds ≥ 1, got \"{raw}\""
                ));
                60
            }),
    };
    let timeout = Duration::from_secs(timeout);
    let (services, source) = match get("ROUTER_SERVICES") {
        Some(raw) => (router_services(raw, timeout, &mut errs), "ROUTER_SERVICES"),
        None => (shortcuts(vars, timeout), "the shortcut variables"),
    };
    for s in &services {
        if !url_ok(&s.base_url) {
            errs.push(format!(
                "{source}: service \"{}\": base_url must be an http:// or https:// URL, got \"{}\"",
                s.name, s.base_url
            ));
        }
    }
    let auth_enabled = match get("ENABLE_AUTH") {
        None => true,
        Some(raw) => pydantic_bool("ENABLE_AUTH", raw).unwrap_or_else(|e| {
            errs.push(e);
            true
        }),
    };
    let (keys, skipped_keys) = auth_keys(vars);
    let header = get("AUTH_HEADER_NAME")
        .unwrap_or("Authorization")
        .to_ascii_lowercase();
    if HeaderName::from_bytes(header.as_bytes()).is_err() {
        errs.push(format!(
            "AUTH_HEADER_NAME: not a valid HTTP header name: \"{header}\""
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(FastApi {
        services,
        source,
        auth_enabled,
        keys,
        key_header: Some(header),
        skipped_keys,
    })
}

/// `ROUTER_SERVICES`, validated, in the order the original tries them (stable by priority).
fn router_services(raw: &str, timeout: Duration, errs: &mut Vec<String>) -> Vec<Service> {
    let items = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            errs.push("ROUTER_SERVICES: must be a JSON list of services".into());
            return Vec::new();
        }
        Err(e) => {
            errs.push(format!("ROUTER_SERVICES: not valid JSON: {e}"));
            return Vec::new();
        }
    };
    if items.is_empty() {
        errs.push("ROUTER_SERVICES: lists no service".into());
    }
    let mut out = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("ROUTER_SERVICES[{i}]");
        let Some(o) = item.as_object() else {
            errs.push(format!("{at}: must be an object"));
            continue;
        };
        let before = errs.len();
        let mut string = |key: &str, required: bool| -> Option<String> {
            match o.get(key) {
                None | Some(Value::Null) => {
                    if required {
                        errs.push(format!("{at}: missing \"{key}\""));
                    }
                    None
                }
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    errs.push(format!("{at}.{key}: must be a string"));
                    None
                }
            }
        };
        let name = string("name", true);
        let backend_type = string("backend_type", true);
        let base_url = string("base_url", true);
        let api_key = string("api_key", false);
        let mut number = |key: &str| -> Option<i64> {
            match o.get(key) {
                None | Some(Value::Null) => None,
                Some(v) => v.as_i64().or_else(|| {
                    errs.push(format!("{at}.{key}: must be a whole number"));
                    None
                }),
            }
        };
        let priority = number("priority").unwrap_or(0);
        let service_timeout = number("timeout");
        let requests = number("rate_limit_requests");
        let window = number("rate_limit_window").unwrap_or(60);
        if let Some(b) = &backend_type {
            if !BACKENDS.contains(&b.as_str()) {
                errs.push(format!(
                    "{at}.backend_type: unknown \"{b}\"; valid: {}",
                    BACKENDS.join(", ")
                ));
            }
        }
        if service_timeout.is_some_and(|t| t <= 0) {
            errs.push(format!("{at}.timeout: must be at least 1 second"));
        }
        if requests.is_some_and(|r| r > 0) && window <= 0 {
            errs.push(format!("{at}.rate_limit_window: must be at least 1 second"));
        }
        if let Some(n) = &name {
            if names.contains(n) {
                errs.push(format!("{at}.name: \"{n}\" is used by an earlier service"));
            }
            names.push(n.clone());
        }
        if errs.len() != before {
            continue;
        }
        let (Some(name), Some(backend_type), Some(base_url)) = (name, backend_type, base_url)
        else {
            continue;
        };
        out.push(Service {
            name,
            backend_type,
            base_url: base_url.trim().trim_end_matches('/').to_string(),
            api_key: Secret::new(api_key.unwrap_or_default()),
            priority,
            timeout: service_timeout.map_or(timeout, |t| Duration::from_secs(t as u64)),
            // The original: no limit unless a positive request count is given.
            rate_limit: requests.filter(|r| *r > 0).map(|r| {
                (
                    r.min(i64::from(u32::MAX)) as u32,
                    Duration::from_secs(window as u64),
                )
            }),
        });
    }
    out.sort_by_key(|s| s.priority);
    out
}

/// The shortcut variables, in the original's order; Ollama is always there.
fn shortcuts(vars: &HashMap<String, String>, timeout: Duration) -> Vec<Service> {
    let get = |n: &str| value(vars, n);
    let table = [
        (
            "cerebras",
            "CEREBRAS_API_KEY",
            "CEREBRAS_BASE_URL",
            "https://api.cerebras.ai/v1",
        ),
        (
            "deepinfra",
            "DEEPINFRA_TOKEN",
            "DEEPINFRA_BASE_URL",
            "https://api.deepinfra.com/v1/openai",
        ),
        (
            "openai",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "https://api.openai.com/v1",
        ),
    ];
    let service = |name: &str, url: &str, key: &str, priority: usize| Service {
        name: name.into(),
        backend_type: name.into(),
        base_url: url.trim_end_matches('/').to_string(),
        api_key: Secret::new(key),
        priority: priority as i64,
        timeout,
        rate_limit: None,
    };
    let mut out = Vec::new();
    for (name, key_var, url_var, default) in table {
        if let Some(key) = get(key_var) {
            let url = get(url_var).unwrap_or(default);
            out.push(service(name, url, key, out.len()));
        }
    }
    let ollama = get("OLLAMA_BASE_URL").unwrap_or("http://localhost:11434/v1");
    out.push(service("ollama", ollama, "", out.len()));
    out
}

/// `AUTH_KEY`, else `AUTH_KEY_01…` up to the first missing one; returns the keys (distinct)
/// and the numbered variables ignored after a gap.
fn auth_keys(vars: &HashMap<String, String>) -> (Vec<(String, Secret)>, Vec<String>) {
    let mut keys: Vec<(String, Secret)> = Vec::new();
    let mut push = |name: String, v: &str| {
        let v = v.trim();
        if !v.is_empty() && !keys.iter().any(|(_, k)| k.expose() == v) {
            keys.push((name, Secret::new(v)));
        }
    };
    if let Some(k) = vars.get("AUTH_KEY").filter(|k| !k.trim().is_empty()) {
        push("AUTH_KEY".into(), k);
        return (keys, Vec::new());
    }
    let mut skipped = Vec::new();
    let mut gap = false;
    for i in 1..=99 {
        let name = format!("AUTH_KEY_{i:02}");
        match vars.get(&name) {
            None => gap = true,
            Some(_) if gap => skipped.push(name),
            Some(v) => push(name, v),
        }
    }
    (keys, skipped)
}

impl FastApi {
    /// The services as providers of the catch-all model.
    pub fn models_config(&self) -> ModelsConfig {
        let providers = self
            .services
            .iter()
            .enumerate()
            .map(|(rank, s)| {
                let mut p = ProviderConfig::new(&s.name, &s.base_url, ApiType::OpenAi);
                p.api_token = s.api_key.clone();
                p.priority = rank as u32;
                p.timeout = Some(s.timeout);
                if let Some((n, window)) = s.rate_limit {
                    p.rpm = Some(n);
                    p.rpm_window = window;
                }
                p
            })
            .collect();
        ModelsConfig {
            models: Vec::new(),
            wildcard: Some(ModelConfig {
                name: WILDCARD.into(),
                group: "fastapi".into(),
                providers,
                ..Default::default()
            }),
        }
    }

    /// The keys as a memory-store keys file (digests only once parsed).
    pub fn keys_file(&self) -> Result<KeysFile, Vec<String>> {
        let entries: Vec<Value> = self
            .keys
            .iter()
            .map(|(name, k)| json!({"key_plain": k.expose(), "key_id": name, "policy_name": "admin"}))
            .collect();
        KeysFile::parse("AUTH_KEY*", &Value::Array(entries).to_string())
    }

    /// The mapping, one line per decision (no secrets), as logged at start-up.
    pub fn mapping(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "no models-config file: using the FastAPI failover router's configuration from {}; \
             every service serves every model name (catch-all model \"*\"), tried in this order",
            self.source
        )];
        for (rank, s) in self.services.iter().enumerate() {
            let limit = match s.rate_limit {
                Some((n, w)) => format!("rpm {n} per {}s window", w.as_secs()),
                None => "no rate limit".into(),
            };
            lines.push(format!(
                "service \"{}\" ({}, {}, priority {}) → provider \"{}\": api_type openai, \
                 priority {rank}, {limit}, timeout {}s, {}",
                s.name,
                s.backend_type,
                s.base_url,
                s.priority,
                s.name,
                s.timeout.as_secs(),
                if s.api_key.is_empty() {
                    "no token"
                } else {
                    "token set"
                }
            ));
        }
        let names: Vec<&str> = self.keys.iter().map(|(n, _)| n.as_str()).collect();
        let header = match self.key_header.as_deref() {
            None | Some("authorization") | Some("x-api-key") => {
                "\"Authorization\" (with or without \"Bearer \") or \"x-api-key\"".to_string()
            }
            Some(h) => format!(
                "\"Authorization: Bearer\", \"x-api-key\" or \"{h}\" (with or without \"Bearer \")"
            ),
        };
        lines.push(if self.auth_enabled {
            format!(
                "ENABLE_AUTH on: {} key(s) ({}) → policy admin; key in {header}{}",
                names.len(),
                names.join(", "),
                if names.is_empty() {
                    "; no key is set, so every request that needs one is refused"
                } else {
                    ""
                }
            )
        } else {
            "ENABLE_AUTH off: no API keys required".to_string()
        });
        if !self.skipped_keys.is_empty() {
            lines.push(format!(
                "ignored (after the first missing AUTH_KEY_NN, as the original does): {}",
                self.skipped_keys.join(", ")
            ));
        }
        lines
    }

    pub fn log(&self) {
        for line in self.mapping() {
            tracing::info!("{line}");
        }
    }
}

/// Middleware (FastAPI mode): a key sent as `Authorization: <key>` without `Bearer `, or in the
/// `AUTH_HEADER_NAME` header, is handed to the access layer as `x-api-key`. Runs before it.
pub async fn key_header<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let header = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.settings.fastapi.as_ref()?.key_header.clone());
    if let Some(name) = header {
        let h = req.headers();
        let bearer = h
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer "));
        let key = (!bearer && !h.contains_key("x-api-key"))
            .then(|| h.get(name.as_str()))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().strip_prefix("Bearer ").unwrap_or(v.trim()).trim())
            .filter(|v| !v.is_empty())
            .and_then(|v| HeaderValue::from_str(v).ok());
        if let Some(key) = key {
            req.headers_mut()
                .insert(HeaderName::from_static("x-api-key"), key);
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    type Env<'a> = &'a [(&'a str, &'a str)];

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn router_services_become_providers_of_the_catch_all_model_in_priority_order() {
        let services = r#"[
          {"name": "fallback-openai", "backend_type": "openai", "base_url": "https://api.openai.com/v1/",
           "api_key": "sk-o", "priority": 1},
          {"name": "primary-cerebras", "backend_type": "cerebras", "base_url": "https://api.cerebras.ai/v1",
           "api_key": "csk", "timeout": 30, "priority": 0, "rate_limit_requests": 100, "rate_limit_window": 10},
          {"name": "local", "backend_type": "ollama", "base_url": "http://gpu:11434/v1", "priority": 1,
           "rate_limit_requests": 0}
        ]"#;
        let f = parse(&vars(&[("ROUTER_SERVICES", services)])).unwrap();
        let m = f.models_config();
        assert!(m.models.is_empty(), "nothing listed by name");
        let any = m.wildcard.as_ref().unwrap();
        assert_eq!(any.name, "*");
        let got: Vec<_> = any
            .providers
            .iter()
            .map(|p| {
                (
                    p.id.as_str(),
                    p.api_host.as_str(),
                    p.api_type,
                    p.priority,
                    p.rpm,
                    p.rpm_window.as_secs(),
                    p.timeout.map(|t| t.as_secs()),
                    p.api_token.expose(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "primary-cerebras",
                    "https://api.cerebras.ai/v1",
                    ApiType::OpenAi,
                    0,
                    Some(100),
                    10,
                    Some(30),
                    "csk"
                ),
                (
                    "fallback-openai",
                    "https://api.openai.com/v1",
                    ApiType::OpenAi,
                    1,
                    None,
                    60,
                    Some(60),
                    "sk-o"
                ),
                // Same priority as the OpenAI one: list order breaks the tie, one at a time.
                (
                    "local",
                    "http://gpu:11434/v1",
                    ApiType::OpenAi,
                    2,
                    None,
                    60,
                    Some(60),
                    ""
                ),
            ]
        );
        assert_eq!(m.model("gpt-4o-mini").map(|m| m.name.as_str()), Some("*"));
        assert_eq!(f.source, "ROUTER_SERVICES");
    }

    #[test]
    fn shortcuts_follow_the_originals_order_and_ollama_is_always_last() {
        let cases: &[(Env, Env)] = &[
            (
                &[("OPENAI_API_KEY", "sk-1"), ("CEREBRAS_API_KEY", "c-1")],
                &[
                    ("cerebras", "https://api.cerebras.ai/v1"),
                    ("openai", "https://api.openai.com/v1"),
                    ("ollama", "http://localhost:11434/v1"),
                ],
            ),
            (
                &[
                    ("DEEPINFRA_TOKEN", "d"),
                    ("OLLAMA_BASE_URL", "http://gpu:11434/v1"),
                ],
                &[
                    ("deepinfra", "https://api.deepinfra.com/v1/openai"),
                    ("ollama", "http://gpu:11434/v1"),
                ],
            ),
            (
                &[
                    ("OPENAI_API_KEY", "k"),
                    ("OPENAI_BASE_URL", "http://proxy:9/v1"),
                ],
                &[
                    ("openai", "http://proxy:9/v1"),
                    ("ollama", "http://localhost:11434/v1"),
                ],
            ),
        ];
        for (env, want) in cases {
            let v = vars(env);
            assert!(requested(&v), "{env:?}");
            let f = parse(&v).unwrap();
            let got: Vec<(&str, &str)> = f
                .services
                .iter()
                .map(|s| (s.name.as_str(), s.base_url.as_str()))
                .collect();
            assert_eq!(got, *want, "{env:?}");
            let priorities: Vec<u32> = f
                .models_config()
                .wildcard
                .unwrap()
                .providers
                .iter()
                .map(|p| p.priority)
                .collect();
            assert_eq!(priorities, (0..want.len() as u32).collect::<Vec<_>>());
        }
        assert!(!requested(&vars(&[
            ("AUTH_KEY", "k"),
            ("ENABLE_AUTH", "1")
        ])));
    }

    #[test]
    fn keys_auth_switch_and_header() {
        let cases: &[(Env, &[&str], bool, &[&str])] = &[
            // AUTH_KEY wins over the numbered ones.
            (
                &[("AUTH_KEY", "key-aaaa"), ("AUTH_KEY_01", "key-bbbb")],
                &["AUTH_KEY"],
                true,
                &[],
            ),
            // Numbered keys stop at the first gap; a repeated key counts once.
            (
                &[
                    ("AUTH_KEY_01", "key-xxxx"),
                    ("AUTH_KEY_02", "key-yyyy"),
                    ("AUTH_KEY_03", "key-xxxx"),
                    ("AUTH_KEY_05", "key-zzzz"),
                    ("ENABLE_AUTH", "on"),
                ],
                &["AUTH_KEY_01", "AUTH_KEY_02"],
                true,
                &["AUTH_KEY_05"],
            ),
            (&[("ENABLE_AUTH", "false")], &[], false, &[]),
        ];
        for (env, want_keys, enabled, skipped) in cases {
            let mut v = vars(env);
            v.insert("OPENAI_API_KEY".into(), "sk-secret-token".into());
            let f = parse(&v).unwrap();
            let names: Vec<&str> = f.keys.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, *want_keys, "{env:?}");
            assert_eq!(f.auth_enabled, *enabled, "{env:?}");
            assert_eq!(f.skipped_keys, *skipped, "{env:?}");
            let file = f.keys_file().unwrap();
            assert_eq!(file.table.len(), want_keys.len());
            for r in file.table.records() {
                assert_eq!(r.policy.as_str(), "admin");
            }
            let lines = f.mapping().join("\n");
            for (_, k) in &f.keys {
                assert!(!lines.contains(k.expose()), "keys never logged: {lines}");
            }
            assert!(!lines.contains("sk-secret-token"), "{lines}");
        }
        let f = parse(&vars(&[
            ("OPENAI_API_KEY", "sk"),
            ("AUTH_HEADER_NAME", "X-Router-Key"),
        ]))
        .unwrap();
        assert_eq!(f.key_header.as_deref(), Some("x-router-key"));
    }

    #[test]
    fn bad_values_are_named() {
        let errs = parse(&vars(&[
            (
                "ROUTER_SERVICES",
                r#"[{"name": "a", "backend_type": "azure", "base_url": "ftp://x"},
                    {"backend_type": "openai", "base_url": "http://b/v1", "priority": "high"},
                    {"name": "a", "backend_type": "openai", "base_url": "http://c/v1"},
                    7]"#,
            ),
            ("ENABLE_AUTH", "maybe"),
            ("REQUEST_TIMEOUT", "-1"),
        ]))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                "REQUEST_TIMEOUT: expected a whole number of seconds ≥ 1, got \"-1\"",
                "ROUTER_SERVICES[0].backend_type: unknown \"azure\"; valid: openai, cerebras, deepinfra, ollama, custom",
                "ROUTER_SERVICES[1]: missing \"name\"",
                "ROUTER_SERVICES[1].priority: must be a whole number",
                "ROUTER_SERVICES[2].name: \"a\" is used by an earlier service",
                "ROUTER_SERVICES[3]: must be an object",
                "ENABLE_AUTH: expected true or false, got \"maybe\"",
            ]
        );
        assert_eq!(
            parse(&vars(&[("ROUTER_SERVICES", "{")])).unwrap_err()[0]
                .split(':')
                .next(),
            Some("ROUTER_SERVICES")
        );
        let errs = parse(&vars(&[("OLLAMA_BASE_URL", "localhost:11434")])).unwrap_err();
        assert!(errs[0].contains("base_url must be an http://"), "{errs:?}");
    }
}
