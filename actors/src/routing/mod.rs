//! Smart-routing decision cores (SPEC §7): pure, immutable-after-build types the request path
//! consults; no I/O, no clocks (time is a parameter), no actix.
//!
//! - [`semantic`]: `simple_semantic_routing`, the model for `"model": "auto"` from the prompt's
//!   intent and complexity.
//! - [`affinity`]: cache affinity, bounded-load consistent hashing of sessions onto providers.
//! - [`decision`]: the `x-llm-router-decision` summary of how a request was routed.

pub mod affinity;
pub mod decision;
pub mod semantic;

pub use affinity::{AffinityConfig, CacheAffinity, Placement, PlacementReason, SessionKey};
pub use decision::DecisionSummary;
pub use semantic::{Complexity, Decision, SemanticRouter};

/// `(name, default, meaning)` of the variables this module's types read, for `--help`.
pub const VARS: &[(&str, &str, &str)] = &[
    (
        semantic::MODELS_VAR,
        "(rules file \"models\")",
        "model pool for model \"auto\", cheapest first: a|b|c",
    ),
    (
        semantic::THRESHOLDS_VAR,
        "25|150",
        "estimated-token limits of simple|medium prompts (above: complex)",
    ),
    (
        semantic::DEFAULT_MODEL_VAR,
        "(first pool model)",
        "model for an \"auto\" request without text",
    ),
    (
        "LLM_ROUTER_ROUTING_INTENT_<CAT>",
        "(rules file)",
        "replace a category's terms: kw|kw:weight|multi word phrase:weight",
    ),
    (
        affinity::AFFINITY_VAR,
        "0",
        "cache affinity: send a session to the provider holding its prefix cache (1|0)",
    ),
    (
        affinity::LOAD_FACTOR_VAR,
        "1.25",
        "cache affinity load bound c: a provider takes a session while in-flight < ceil(c × average)",
    ),
    (
        affinity::TABLE_SIZE_VAR,
        "10000",
        "cache affinity: sessions remembered per model (last provider that served each)",
    ),
    (
        affinity::TABLE_TTL_VAR,
        "600",
        "cache affinity: seconds a session's last provider is remembered",
    ),
];
