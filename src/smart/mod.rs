//! Smart routing on the request path (SPEC §7): the `simple_semantic_routing` utils plugin
//! (`model: "auto"`, [`stage`]), one model name for UIs (`LLM_ROUTER_EXTERNAL_MODEL_NAME`), and the
//! request side of cache affinity (the session key of a request, [`session`]). The decision cores
//! are pure and live in `llm_router_actors::routing`; the registry applies affinity
//! (`actors/src/registry/affinity.rs`); the relay explains every choice (`relay/explain.rs`).
//!
//! Everything here is built once at start-up from the variables (every problem reported with
//! its variable) and is immutable afterwards.

pub mod session;
pub mod stage;
pub mod text;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use llm_router_actors::config::{ModelsConfig, Secret};
use llm_router_actors::routing::semantic::DEFAULT_RULES_PATH;
use llm_router_actors::routing::{AffinityConfig, SemanticRouter};

/// The model name that asks `simple_semantic_routing` to choose.
pub const AUTO: &str = "auto";
pub const UTILS_VAR: &str = "LLM_ROUTER_UTILS_PLUGINS_PIPELINE";
pub const EXTERNAL_VAR: &str = "LLM_ROUTER_EXTERNAL_MODEL_NAME";
pub const RULES_VAR: &str = "LLM_ROUTER_ROUTING_RULES_FILE";

/// The smart-routing proxy's own variables, accepted as aliases (`alias`, `ours`): each is used
/// only when ours is not set.
pub const ALIASES: &[(&str, &str)] = &[
    ("ROUTER_EXTERNAL_MODEL_NAME", EXTERNAL_VAR),
    ("ROUTER_ADMIN_API_KEY", "LLM_ROUTER_ADMIN_API_KEY"),
    ("ROUTER_GENERATION_TIMEOUT", "LLM_ROUTER_EXTERNAL_TIMEOUT"),
];

/// `(name, default, meaning)` for `--help`.
pub const VARS: &[(&str, &str, &str)] = &[
    (
        EXTERNAL_VAR,
        "",
        "one public model name (e.g. hubrouter/main) listed by /v1/models and P/tags and routed as model \"auto\" (needs simple_semantic_routing)",
    ),
    (
        RULES_VAR,
        DEFAULT_RULES_PATH,
        "simple_semantic_routing rules file",
    ),
    (
        "LLM_ROUTER_ADMIN_API_KEY",
        "",
        "a key that must be sent (Bearer or x-api-key) to the admin routes (/admin, /router, /auth)",
    ),
    (
        "ROUTER_EXTERNAL_MODEL_NAME",
        "",
        "alias of LLM_ROUTER_EXTERNAL_MODEL_NAME (used when that is unset)",
    ),
    (
        "ROUTER_ADMIN_API_KEY",
        "",
        "alias of LLM_ROUTER_ADMIN_API_KEY (used when that is unset)",
    ),
    (
        "ROUTER_GENERATION_TIMEOUT",
        "",
        "alias of LLM_ROUTER_EXTERNAL_TIMEOUT, seconds of one upstream call (used when that is unset)",
    ),
];

/// A utils plugin (`LLM_ROUTER_UTILS_PLUGINS_PIPELINE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UtilsPlugin {
    SimpleSemanticRouting,
    /// Its settings and index live in [`crate::rag`].
    LangchainRag,
}

impl UtilsPlugin {
    fn parse(name: &str) -> Result<UtilsPlugin, String> {
        match name {
            "simple_semantic_routing" => Ok(UtilsPlugin::SimpleSemanticRouting),
            "langchain_rag" => Ok(UtilsPlugin::LangchainRag),
            other => Err(format!(
                "{UTILS_VAR}: unknown utils plugin \"{other}\"; valid: simple_semantic_routing, \
                 langchain_rag"
            )),
        }
    }
}

/// Validated smart-routing settings.
#[derive(Clone, Debug, Default)]
pub struct SmartSettings {
    /// The utils plugins, in pipeline order.
    pub utils: Vec<UtilsPlugin>,
    /// `simple_semantic_routing`, when it is in the pipeline.
    pub semantic: Option<Arc<SemanticRouter>>,
    /// The one name for UIs, routed as `auto`.
    pub external_model: Option<String>,
    /// Cache affinity, when on.
    pub affinity: Option<AffinityConfig>,
    /// The key of the admin routes (`LLM_ROUTER_ADMIN_API_KEY`).
    pub admin_key: Option<Secret>,
}

impl SmartSettings {
    /// Reads the variables; `models` is the loaded config (the auto pool must be served by it).
    pub fn from_vars(
        vars: &HashMap<String, String>,
        models: &ModelsConfig,
        errs: &mut Vec<String>,
    ) -> SmartSettings {
        let mut s = SmartSettings::default();
        for name in vars
            .get(UTILS_VAR)
            .map(String::as_str)
            .unwrap_or("")
            .split([',', '|', ' '])
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            match UtilsPlugin::parse(name) {
                Ok(p) if !s.utils.contains(&p) => s.utils.push(p),
                Ok(_) => {}
                Err(e) => errs.push(e),
            }
        }
        if s.utils.contains(&UtilsPlugin::SimpleSemanticRouting) {
            let rules = vars
                .get(RULES_VAR)
                .filter(|v| !v.trim().is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_RULES_PATH), PathBuf::from);
            match SemanticRouter::from_vars(vars, &rules) {
                Ok(r) => {
                    let served = models.model_names();
                    for m in r.models().iter().chain([&r.default_model().to_string()]) {
                        if !served.contains(&m.as_str()) && models.model(WILDCARD).is_none() {
                            errs.push(format!(
                                "simple_semantic_routing: model \"{m}\" of the auto pool is not \
                                 in the models config (served: {})",
                                served.join(", ")
                            ));
                        }
                    }
                    s.semantic = Some(Arc::new(r));
                }
                Err(e) => errs.extend(e),
            }
        }
        let external = vars.get(EXTERNAL_VAR).map(|v| v.trim()).unwrap_or("");
        if !external.is_empty() {
            if s.semantic.is_none() {
                errs.push(format!(
                    "{EXTERNAL_VAR}={external:?}: the name is routed as model \"auto\", which \
                     needs simple_semantic_routing in {UTILS_VAR}"
                ));
            }
            if models.model_names().contains(&external) {
                errs.push(format!(
                    "{EXTERNAL_VAR}={external:?}: a configured model already has this name"
                ));
            }
            s.external_model = Some(external.to_string());
        }
        s.admin_key = vars
            .get("LLM_ROUTER_ADMIN_API_KEY")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| Secret::new(v.to_string()));
        match AffinityConfig::from_vars(vars) {
            Ok(a) => s.affinity = a,
            Err(e) => errs.extend(e),
        }
        s
    }

    /// Whether a request for `model` is for the semantic router to place.
    pub fn is_auto(&self, model: &str) -> bool {
        self.semantic.is_some() && (model == AUTO || self.external_model.as_deref() == Some(model))
    }
}

const WILDCARD: &str = llm_router_actors::config::WILDCARD;

/// Copies the aliases in `ALIASES` from the process environment into `vars` where ours is unset.
pub fn apply_aliases(vars: &mut HashMap<String, String>, env: impl Fn(&str) -> Option<String>) {
    for (alias, ours) in ALIASES {
        if vars.contains_key(*ours) {
            continue;
        }
        if let Some(v) = env(alias).filter(|v| !v.trim().is_empty()) {
            vars.insert(ours.to_string(), v);
        }
    }
}
