//! Validation of `models-config.json`: every problem found, with its JSON path, in one pass
//! ([`Validator`]), before anything is built from the file.

use super::*;

pub(super) fn quote(key: &str) -> String {
    format!("\"{key}\"")
}

#[derive(Default)]
pub(super) struct Validator {
    pub(super) errors: Vec<ConfigError>,
    seen_ids: HashSet<String>,
}

impl Validator {
    pub(super) fn err(&mut self, path: &str, msg: impl Into<String>) {
        self.errors.push(ConfigError::new(path, msg));
    }

    pub(super) fn root(&mut self, root: &Value) -> Vec<ModelConfig> {
        let Some(obj) = root.as_object() else {
            self.err("", "the top level must be a JSON object");
            return Vec::new();
        };
        let Some(active) = obj.get("active_models") else {
            self.err("", "missing \"active_models\"");
            return Vec::new();
        };
        let Some(active) = active.as_object() else {
            self.err(
                "active_models",
                "must be an object of group → [model names]",
            );
            return Vec::new();
        };
        let mut models = Vec::new();
        let mut names = HashSet::new();
        for (group, list) in active {
            let path = format!("active_models.{group}");
            let Some(list) = list.as_array() else {
                self.err(&path, "must be a list of model names");
                continue;
            };
            for (i, name) in list.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let Some(name) = name.as_str() else {
                    self.err(&item_path, "must be a string (a model name)");
                    continue;
                };
                if !names.insert(name.to_string()) {
                    self.err(&item_path, format!("model {} is listed twice", quote(name)));
                    continue;
                }
                let def = obj
                    .get(group)
                    .and_then(|g| g.as_object())
                    .and_then(|g| g.get(name));
                match def {
                    Some(def) => {
                        if let Some(m) = self.model(group, name, def) {
                            models.push(m);
                        }
                    }
                    None => self.err(
                        &item_path,
                        format!(
                            "active model {} is not defined under group {}",
                            quote(name),
                            quote(group)
                        ),
                    ),
                }
            }
        }
        models
    }

    pub(super) fn model(&mut self, group: &str, name: &str, def: &Value) -> Option<ModelConfig> {
        let path = format!("{group}.{}", quote(name));
        let Some(obj) = def.as_object() else {
            self.err(&path, "must be an object with \"providers\"");
            return None;
        };
        for key in obj.keys() {
            if key != "providers"
                && key != "providers_sleep"
                && key != "hedge_after_ms"
                && !FALLBACK_KEYS.contains(&key.as_str())
            {
                tracing::debug!(model = name, key = %key, "ignoring unknown model key");
            }
        }
        let providers = match obj.get("providers") {
            None => {
                self.err(&path, "missing \"providers\"");
                return None;
            }
            Some(list) => self.provider_list(&format!("{path}.providers"), list, true),
        };
        let providers_sleep = match obj.get("providers_sleep") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(list) => self.provider_list(&format!("{path}.providers_sleep"), list, false),
        };
        let mut lists: [Vec<String>; 3] = Default::default();
        for (key, list) in FALLBACK_KEYS.iter().zip(lists.iter_mut()) {
            let kpath = format!("{path}.{key}");
            match obj.get(*key) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_str() {
                            Some(n) => list.push(n.to_string()),
                            None => self
                                .err(&format!("{kpath}[{i}]"), "must be a model name (a string)"),
                        }
                    }
                }
                Some(_) => self.err(&kpath, "must be a list of model names"),
            }
        }
        let hedge_after =
            match HedgeAfter::from_json(obj.get("hedge_after_ms").unwrap_or(&Value::Null)) {
                Ok(h) => h,
                Err(e) => {
                    self.err(&format!("{path}.hedge_after_ms"), e);
                    None
                }
            };
        let providers = providers?;
        let [fallbacks, context_window_fallbacks, content_policy_fallbacks] = lists;
        Some(ModelConfig {
            name: name.to_string(),
            group: group.to_string(),
            providers,
            providers_sleep: providers_sleep?,
            fallbacks,
            context_window_fallbacks,
            content_policy_fallbacks,
            hedge_after,
        })
    }

    /// Every fallback names an active model other than its own; no chain (following every
    /// fallback list) loops or goes deeper than [`MAX_FALLBACK_DEPTH`].
    pub(super) fn fallbacks(&mut self, models: &[ModelConfig]) {
        let index = |name: &str| models.iter().position(|m| m.name == name);
        for m in models {
            for key in FALLBACK_KEYS {
                for (i, f) in m.fallback_list(key).iter().enumerate() {
                    let path = format!("{}.{}.{key}[{i}]", m.group, quote(&m.name));
                    if index(f).is_none() {
                        self.err(&path, format!("{} is not an active model", quote(f)));
                    } else if *f == m.name {
                        self.err(&path, "a model cannot fall back to itself");
                    }
                }
            }
        }
        // Longest chain from each model, depth-first; a model met again on the path is a cycle.
        fn depth(
            models: &[ModelConfig],
            at: usize,
            path: &mut Vec<usize>,
        ) -> Result<usize, Vec<usize>> {
            if path.contains(&at) {
                let mut cycle = path.clone();
                cycle.push(at);
                return Err(cycle);
            }
            path.push(at);
            let mut deepest = 0;
            for key in FALLBACK_KEYS {
                for f in models[at].fallback_list(key) {
                    if let Some(next) = models
                        .iter()
                        .position(|m| m.name == *f)
                        .filter(|n| *n != at)
                    {
                        deepest = deepest.max(1 + depth(models, next, path)?);
                    }
                }
            }
            path.pop();
            Ok(deepest)
        }
        let mut reported_cycle = false;
        for (i, m) in models.iter().enumerate() {
            let path = format!("{}.{}", m.group, quote(&m.name));
            match depth(models, i, &mut Vec::new()) {
                Ok(d) if d > MAX_FALLBACK_DEPTH => self.err(
                    &path,
                    format!("its fallback chain is {d} deep; at most {MAX_FALLBACK_DEPTH} allowed"),
                ),
                Ok(_) => {}
                Err(cycle) if !reported_cycle => {
                    reported_cycle = true;
                    let names: Vec<String> =
                        cycle.iter().map(|&c| quote(&models[c].name)).collect();
                    self.err(
                        &path,
                        format!("fallbacks form a cycle: {}", names.join(" → ")),
                    );
                }
                Err(_) => {}
            }
        }
    }

    pub(super) fn provider_list(
        &mut self,
        path: &str,
        list: &Value,
        required: bool,
    ) -> Option<Vec<ProviderConfig>> {
        let Some(items) = list.as_array() else {
            self.err(path, "must be a list of providers");
            return None;
        };
        if required && items.is_empty() {
            self.err(path, "must list at least one provider");
            return None;
        }
        let before = self.errors.len();
        let out: Vec<ProviderConfig> = items
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.provider(&format!("{path}[{i}]"), p))
            .collect();
        (self.errors.len() == before).then_some(out)
    }

    pub(super) fn provider(&mut self, path: &str, v: &Value) -> Option<ProviderConfig> {
        let Some(o) = v.as_object() else {
            self.err(path, "must be an object");
            return None;
        };
        let before = self.errors.len();
        let id = self.req_str(path, o, "id");
        let api_host = self.req_str(path, o, "api_host");
        let api_type_s = self.req_str(path, o, "api_type");
        let api_type = api_type_s.as_deref().and_then(|s| {
            let t = ApiType::parse(s);
            if t.is_none() {
                let valid: Vec<_> = ApiType::ALL.iter().map(|t| t.as_str()).collect();
                self.err(
                    &format!("{path}.api_type"),
                    format!("unknown api_type {}; valid: {}", quote(s), valid.join(", ")),
                );
            }
            t
        });
        if let Some(host) = &api_host {
            let rest = host
                .strip_prefix("http://")
                .or_else(|| host.strip_prefix("https://"));
            if rest.is_none_or(|r| r.trim_end_matches('/').is_empty()) {
                self.err(
                    &format!("{path}.api_host"),
                    format!("must be an http:// or https:// URL, got {}", quote(host)),
                );
            }
        }
        if let Some(id) = &id {
            if id.is_empty() {
                self.err(&format!("{path}.id"), "must not be empty");
            } else if !self.seen_ids.insert(id.clone()) {
                self.err(
                    &format!("{path}.id"),
                    format!("provider id {} is used more than once", quote(id)),
                );
            }
        }
        let api_token = self.opt_str(path, o, "api_token").unwrap_or_default();
        let model_path = self.opt_str(path, o, "model_path").unwrap_or_default();
        let input_size = self.opt_u64(path, o, "input_size");
        let weight = match o.get("weight") {
            None | Some(Value::Null) => 1.0,
            Some(w) => match w.as_f64() {
                Some(w) if w >= 0.0 && w.is_finite() => w,
                _ => {
                    self.err(&format!("{path}.weight"), "must be a number ≥ 0");
                    1.0
                }
            },
        };
        let keep_alive = match o.get("keep_alive") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => match parse_duration_or_secs(s) {
                Some(d) => Some(d),
                None => {
                    self.err(
                        &format!("{path}.keep_alive"),
                        format!("not a duration like \"35m\", \"30s\", \"1h\": {}", quote(s)),
                    );
                    None
                }
            },
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().map(Duration::from_secs),
            Some(_) => {
                self.err(
                    &format!("{path}.keep_alive"),
                    "must be a duration string like \"35m\" or null",
                );
                None
            }
        };
        // Absent means "pass tools through": stripping them must be asked for explicitly.
        let tool_calling = self.opt_bool(path, o, "tool_calling").unwrap_or(true);
        let is_embedding = self.opt_bool(path, o, "is_embedding").unwrap_or(false);
        let priority = self
            .opt_u64(path, o, "priority")
            .unwrap_or(0)
            .min(u32::MAX as u64) as u32;
        let max_concurrency = self.opt_u64(path, o, "max_concurrency");
        if max_concurrency == Some(0) {
            self.err(&format!("{path}.max_concurrency"), "must be at least 1");
        }
        let rpm = self.opt_u64(path, o, "rpm");
        let timeout = self.opt_secs(path, o, "timeout_s");
        let ttft_timeout = self.opt_secs(path, o, "ttft_timeout_s");
        let host = self.host_options(path, o, api_type);
        for key in o.keys() {
            if !KNOWN_PROVIDER_KEYS.contains(&key.as_str()) {
                tracing::debug!(path, key = %key, "ignoring unknown provider key");
            }
        }
        if self.errors.len() != before {
            return None;
        }
        Some(ProviderConfig {
            id: id?,
            api_host: api_host?.trim_end_matches('/').to_string(),
            api_type: api_type?,
            api_token: Secret::new(api_token),
            model_path,
            input_size,
            weight,
            keep_alive,
            tool_calling,
            is_embedding,
            priority,
            max_concurrency: max_concurrency.map(|n| n.min(u32::MAX as u64) as u32),
            rpm: rpm.map(|n| n.min(u32::MAX as u64) as u32),
            rpm_window: Duration::from_secs(60),
            timeout,
            ttft_timeout,
            host,
        })
    }

    pub(super) fn req_str(
        &mut self,
        path: &str,
        o: &Map<String, Value>,
        key: &str,
    ) -> Option<String> {
        match o.get(key) {
            None | Some(Value::Null) => {
                self.err(path, format!("missing {}", quote(key)));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(&format!("{path}.{key}"), "must be a string");
                None
            }
        }
    }

    pub(super) fn opt_str(
        &mut self,
        path: &str,
        o: &Map<String, Value>,
        key: &str,
    ) -> Option<String> {
        match o.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(&format!("{path}.{key}"), "must be a string");
                None
            }
        }
    }

    pub(super) fn opt_bool(
        &mut self,
        path: &str,
        o: &Map<String, Value>,
        key: &str,
    ) -> Option<bool> {
        match o.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.err(&format!("{path}.{key}"), "must be true or false");
                None
            }
        }
    }

    pub(super) fn opt_u64(&mut self, path: &str, o: &Map<String, Value>, key: &str) -> Option<u64> {
        match o.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.err(&format!("{path}.{key}"), "must be a whole number ≥ 0");
                    None
                }
            },
        }
    }

    pub(super) fn opt_secs(
        &mut self,
        path: &str,
        o: &Map<String, Value>,
        key: &str,
    ) -> Option<Duration> {
        match o.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_f64() {
                Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
                _ => {
                    self.err(&format!("{path}.{key}"), "must be a number of seconds > 0");
                    None
                }
            },
        }
    }
}

const KNOWN_PROVIDER_KEYS: &[&str] = &[
    "id",
    "api_host",
    "api_type",
    "api_token",
    "model_path",
    "input_size",
    "weight",
    "keep_alive",
    "tool_calling",
    "is_embedding",
    "priority",
    "max_concurrency",
    "rpm",
    "timeout_s",
    "ttft_timeout_s",
    "discover",
    "discover_as",
    "pinned",
    "vram_mb",
];
