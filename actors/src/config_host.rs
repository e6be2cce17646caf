//! The provider keys of model discovery and VRAM management (SPEC §7, beyond the original):
//! `discover` (list this provider's host's models and serve each), `discover_as` (how a found
//! model is named: `"id"` → `<provider id>/<model>`, the default, or `"name"` → the model's own
//! name), `pinned` (this provider's model is never unloaded from its Ollama host) and `vram_mb`
//! (the Ollama host's memory for models, in MiB: what VRAM management plans against).

use serde_json::{Map, Value};

use super::{quote, ApiType, Validator};

/// How a discovered model is named publicly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiscoverAs {
    /// `<provider id>/<model>`: unique per host, never collides with a configured model.
    #[default]
    ProviderId,
    /// The model's own name: hosts listing the same model serve it together (replicas).
    Name,
}

/// Per-provider discovery and VRAM keys; all off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostOptions {
    /// `Some` when `"discover": true`.
    pub discover: Option<DiscoverAs>,
    /// The model this provider serves stays loaded on its Ollama host.
    pub pinned: bool,
    /// The host's model memory in MiB (Ollama hosts; VRAM management).
    pub vram_mb: Option<u64>,
}

impl Validator {
    pub(super) fn host_options(
        &mut self,
        path: &str,
        o: &Map<String, Value>,
        api_type: Option<ApiType>,
    ) -> HostOptions {
        let discover = self.opt_bool(path, o, "discover").unwrap_or(false);
        let discover_as = match o.get("discover_as") {
            None | Some(Value::Null) => DiscoverAs::ProviderId,
            Some(Value::String(s)) if s == "name" => DiscoverAs::Name,
            Some(Value::String(s)) if s == "id" => DiscoverAs::ProviderId,
            Some(v) => {
                self.err(
                    &format!("{path}.discover_as"),
                    format!("must be \"id\" (<provider id>/<model>) or \"name\", got {v}"),
                );
                DiscoverAs::ProviderId
            }
        };
        if o.contains_key("discover_as") && !discover {
            tracing::debug!(
                path,
                "\"discover_as\" without \"discover\": true has no effect"
            );
        }
        if discover && api_type == Some(ApiType::Anthropic) {
            self.err(
                &format!("{path}.discover"),
                format!(
                    "model discovery lists OpenAI-wire ({}) and ollama hosts, not {}",
                    ["openai", "vllm", "lmstudio", "llama.cpp"].join(", "),
                    quote("anthropic")
                ),
            );
        }
        let pinned = self.opt_bool(path, o, "pinned").unwrap_or(false);
        let vram_mb = self.opt_u64(path, o, "vram_mb");
        if vram_mb == Some(0) {
            self.err(&format!("{path}.vram_mb"), "must be at least 1 (MiB)");
        }
        HostOptions {
            discover: discover.then_some(discover_as),
            pinned,
            vram_mb,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{DiscoverAs, ModelsConfig};

    fn config(keys: &str) -> String {
        format!(
            r#"{{"g": {{"m": {{"providers": [{{"id": "a", "api_host": "http://h:1",
                 "api_type": "ollama", {keys}}}]}}}}, "active_models": {{"g": ["m"]}}}}"#
        )
    }

    fn host(keys: &str) -> Result<super::HostOptions, String> {
        ModelsConfig::from_json_str(&config(keys))
            .map(|c| c.models[0].providers[0].host.clone())
            .map_err(|e| e.render("models-config.json"))
    }

    #[test]
    fn discovery_and_vram_keys_are_read() {
        let h = host(r#""discover": true, "pinned": true, "vram_mb": 8192"#).unwrap();
        assert_eq!(h.discover, Some(DiscoverAs::ProviderId));
        assert!(h.pinned);
        assert_eq!(h.vram_mb, Some(8192));
        let h = host(r#""discover": true, "discover_as": "name""#).unwrap();
        assert_eq!(h.discover, Some(DiscoverAs::Name));
        let h = host(r#""discover": false, "discover_as": "name""#).unwrap();
        assert_eq!(h.discover, None);
        assert_eq!(host(r#""x": 1"#).unwrap(), super::HostOptions::default());
    }

    #[test]
    fn wrong_types_are_named_with_their_path() {
        let cases = [
            (
                r#""discover": "yes""#,
                "g.\"m\".providers[0].discover: must be true or false",
            ),
            (
                r#""discover_as": 3"#,
                "g.\"m\".providers[0].discover_as: must be \"id\"",
            ),
            (
                r#""discover_as": "alias""#,
                "discover_as: must be \"id\" (<provider id>/<model>) or \"name\", got \"alias\"",
            ),
            (
                r#""pinned": 1"#,
                "g.\"m\".providers[0].pinned: must be true or false",
            ),
            (
                r#""vram_mb": "8G""#,
                "g.\"m\".providers[0].vram_mb: must be a whole number",
            ),
            (
                r#""vram_mb": 0"#,
                "g.\"m\".providers[0].vram_mb: must be at least 1",
            ),
        ];
        for (keys, want) in cases {
            let e = host(keys).unwrap_err();
            assert!(e.contains(want), "{keys}: {e}");
        }
    }

    #[test]
    fn anthropic_hosts_cannot_be_discovered() {
        let text = config(r#""discover": true"#).replace("\"ollama\"", "\"anthropic\"");
        let e = ModelsConfig::from_json_str(&text)
            .unwrap_err()
            .render("models-config.json");
        assert!(
            e.contains("providers[0].discover: model discovery lists"),
            "{e}"
        );
    }
}
