//! The table of the router's own `LLM_ROUTER_*` variables (SPEC §1): names, defaults and
//! meanings — the contract `Settings` parses and `--help` prints.

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
        "LLM_ROUTER_WEB_CONSOLE",
        "true",
        "serve the web console at /ui (status, chat, anonymizer, config)",
    ),
    (
        "LLM_ROUTER_STATE_DIR",
        "data",
        "the router's own state: the console's config version history, measured profiles (profiles.json)",
    ),
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
        "LLM_ROUTER_MAX_ATTEMPTS",
        "4",
        "most upstream attempts per request (failover included)",
    ),
    (
        "LLM_ROUTER_MAX_RETRY_AFTER_SECONDS",
        "5",
        "longest provider Retry-After a request waits out instead of failing",
    ),
    (
        "LLM_ROUTER_STREAM_RESUME",
        "true",
        "continue a stream that failed after its first byte on another provider",
    ),
    (
        "LLM_ROUTER_UPSTREAM_AWC",
        "false",
        "true: send to http:// providers through awc too (default: the relay's own HTTP/1.1 client; https:// always uses awc)",
    ),
    (
        "LLM_ROUTER_HEDGE_AFTER_MS",
        "",
        "ms without a first byte before a request is also sent to a second provider; auto = the provider's p95 TTFT of the last 5 min (twice its TTFT average until 20 calls); empty = off (a model's hedge_after_ms wins)",
    ),
    (
        "LLM_ROUTER_HEDGE_MAX_FRACTION",
        "0.05",
        "largest fraction of requests that may be hedged",
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
        "LLM_ROUTER_CONFIG_WATCH_SECONDS",
        "5",
        "how often the models config file is checked for changes (hot reload; 0 = off)",
    ),
    (
        "LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS",
        "5",
        "guard/masker service probe period",
    ),
    (
        "LLM_ROUTER_DISCOVERY_INTERVAL_SECONDS",
        "300",
        "how often \"discover\": true providers' hosts are listed (model discovery; 0 = at start only)",
    ),
    (
        "LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT",
        "false",
        "unload idle models of an Ollama host (its vram_mb) before loading one that does not fit",
    ),
    (
        "LLM_ROUTER_FORCE_MASKING",
        "false",
        "mask every request (alias: LLM_ROUTER_FORCE_ANONYMISATION)",
    ),
    (
        "LLM_ROUTER_MASKING_STRATEGY_PIPELINE",
        "",
        "masking plugins in order (fast_masker, pii_masker; empty = fast_masker)",
    ),
    (
        "LLM_ROUTER_MASKING_RESTORE",
        "false",
        "put the masked originals back into what the client receives",
    ),
    (
        "LLM_ROUTER_MASKING_WITH_AUDIT",
        "false",
        "audit masking events (encrypted records under LLM_ROUTER_AUDIT_DIR)",
    ),
    (
        "LLM_ROUTER_FORCE_GUARDRAIL_REQUEST",
        "false",
        "check every request's text with the request guardrail pipeline",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST",
        "",
        "request guardrails in order (nask_guard, sojka_guard)",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_WITH_AUDIT_REQUEST",
        "false",
        "audit request guardrail events (encrypted records under LLM_ROUTER_AUDIT_DIR)",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_WITH_AUDIT_RESPONSE",
        "false",
        "audit response guardrail events (encrypted records under LLM_ROUTER_AUDIT_DIR)",
    ),
    (
        "LLM_ROUTER_AUDIT_PUBLIC_KEY",
        "resources/keys/llm-router-auditor-pub.asc",
        "OpenPGP public key the audit records are encrypted to (needed when an audit is on)",
    ),
    (
        "LLM_ROUTER_AUDIT_DIR",
        "logs/auditor",
        "directory of the audit records, one file per event",
    ),
    (
        "LLM_ROUTER_AUDIT_QUEUE_SIZE",
        "4096",
        "audit records waiting to be written at most; when full, requests are refused (503)",
    ),
    (
        "LLM_ROUTER_FORCE_GUARDRAIL_RESPONSE",
        "false",
        "check every answer with the response guardrail pipeline before the client gets it",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_RESPONSE",
        "",
        "response guardrails in order (nask_guard, sojka_guard)",
    ),
    (
        "LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS",
        "500",
        "streams: characters of new text between two response guardrail checks",
    ),
    (
        "LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS",
        "30",
        "bound on each call to a guardrail or masker service and each probe",
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
        "LLM_ROUTER_CORS_ORIGINS",
        "",
        "allowed browser origins (comma list of scheme://host[:port], or *); empty = no CORS headers",
    ),
    (
        "LLM_ROUTER_SHUTDOWN_GRACE_SECONDS",
        "30",
        "on SIGTERM/SIGINT, how long requests and streams in flight may finish",
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
