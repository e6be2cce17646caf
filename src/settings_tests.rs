//! Unit tests of `settings.rs`.
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
        ("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST", "tak"),
        ("LLM_ROUTER_MODELS_CONFIG", "/nonexistent/models.json"),
    ]))
    .unwrap_err();
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs[0].starts_with("LLM_ROUTER_SERVER_PORT: expected a whole number"));
    assert!(errs
        .iter()
        .any(|e| e.contains("unknown balance strategy \"random\"; valid: balanced")));
    assert!(errs.iter().any(|e| e
        .starts_with("LLM_ROUTER_FORCE_GUARDRAIL_REQUEST: on, but LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_REQUEST names no guardrail")));
    assert!(errs
        .iter()
        .any(|e| e.starts_with("/nonexistent/models.json: cannot read")));
}

#[test]
fn bad_values_are_start_up_errors_naming_the_variable_and_the_value() {
    let table: &[(&str, &str, &str)] = &[
        ("LLM_ROUTER_SERVER_PORT", "70000", "from 0 to 65535"),
        ("LLM_ROUTER_SERVER_PORT", "8080.5", "whole number"),
        ("LLM_ROUTER_SERVER_PORT", "-1", "whole number"),
        ("LLM_ROUTER_SERVER_PORT", "", "whole number"),
        ("LLM_ROUTER_REDIS_PORT", "6379.5", "whole number"),
        ("LLM_ROUTER_REDIS_PORT", "70000", "from 1 to 65535"),
        ("LLM_ROUTER_REDIS_PORT", "0", "from 1 to 65535"),
        ("LLM_ROUTER_REDIS_DB", "-2", "whole number"),
        ("LLM_ROUTER_REDIS_DB", "1.5", "whole number"),
        ("LLM_ROUTER_REDIS_DB", "99999999999", "too large"),
        ("LLM_ROUTER_SERVER_WORKERS_COUNT", "0", "from 1 to 4096"),
        ("LLM_ROUTER_SERVER_WORKERS_COUNT", "2.5", "whole number"),
        (
            "LLM_ROUTER_SERVER_WORKERS_COUNT",
            "100000",
            "from 1 to 4096",
        ),
        ("LLM_ROUTER_MAX_REQUEST_BODY_SIZE", "0", "≥ 1"),
        ("LLM_ROUTER_MAX_REQUEST_BODY_SIZE", "1e6", "whole number"),
        ("LLM_ROUTER_MAX_REQUEST_BODY_SIZE", "10.5", "whole number"),
        ("LLM_ROUTER_EXTERNAL_TIMEOUT", "0", "seconds ≥ 0.001"),
        ("LLM_ROUTER_EXTERNAL_TIMEOUT", "-5", "seconds"),
        ("LLM_ROUTER_EXTERNAL_TIMEOUT", "NaN", "seconds"),
        ("LLM_ROUTER_EXTERNAL_TIMEOUT", "inf", "seconds"),
        ("LLM_ROUTER_EXTERNAL_TIMEOUT", "1e400", "seconds"),
        ("LLM_ROUTER_EXTERNAL_TIMEOUT", "99999999999", "one year"),
        ("LLM_ROUTER_TIMEOUT", "-0.5", "seconds"),
        ("LLM_ROUTER_TIMEOUT", "30s", "seconds"),
        ("LLM_ROUTER_TIMEOUT", "1.2.3", "seconds"),
        (
            "LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS",
            "-1",
            "seconds",
        ),
        (
            "LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS",
            ".",
            "seconds",
        ),
        (
            "LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS",
            "0",
            "seconds ≥ 0.05",
        ),
        (
            "LLM_ROUTER_REDIS_LEASE_TTL_SECONDS",
            "0.01",
            "seconds ≥ 0.1",
        ),
        ("LLM_ROUTER_REDIS_LEASE_TTL_SECONDS", "ten", "seconds"),
    ];
    for &(name, raw, says) in table {
        let errs = Settings::from_vars(&vars(&[(name, raw)]))
            .err()
            .unwrap_or_else(|| panic!("{name}={raw:?} was accepted"));
        assert_eq!(errs.len(), 1, "{name}={raw:?}: {errs:#?}");
        let e = &errs[0];
        assert!(e.starts_with(&format!("{name}: ")), "{name}={raw:?}: {e}");
        assert!(e.contains(&format!("\"{raw}\"")), "names the value: {e}");
        assert!(e.contains(says), "{name}={raw:?}: {e} (wanted {says:?})");
    }
}

#[test]
fn good_values_keep_their_type_and_precision() {
    let s = Settings::from_vars(&vars(&[
        ("LLM_ROUTER_SERVER_PORT", " 65535 "),
        ("LLM_ROUTER_SERVER_WORKERS_COUNT", "3"),
        ("LLM_ROUTER_MAX_REQUEST_BODY_SIZE", "1"),
        ("LLM_ROUTER_EXTERNAL_TIMEOUT", "0.25"),
        ("LLM_ROUTER_TIMEOUT", "2"),
        ("LLM_ROUTER_PROVIDER_MONITOR_INTERVAL_SECONDS", "0"),
        ("LLM_ROUTER_KEEPALIVE_MODEL_MONITOR_INTERVAL_SECONDS", "0.1"),
        ("LLM_ROUTER_SERVICES_MONITOR_INTERVAL_SECONDS", "7"),
        ("LLM_ROUTER_REDIS_HOST", "redis.internal"),
        ("LLM_ROUTER_REDIS_PORT", "6380"),
        ("LLM_ROUTER_REDIS_DB", "15"),
        ("LLM_ROUTER_REDIS_PASSWORD", "p@ss:w/rd"),
        ("LLM_ROUTER_REDIS_LEASE_TTL_SECONDS", "2.5"),
    ]))
    .unwrap();
    assert_eq!((s.port, s.workers, s.max_body), (65535, 3, 1));
    assert_eq!(s.external_timeout, Duration::from_millis(250));
    assert_eq!(s.request_timeout, Some(Duration::from_secs(2)));
    assert_eq!(s.provider_monitor_interval, Duration::ZERO);
    assert_eq!(s.keepalive_interval, Duration::from_millis(100));
    assert_eq!(s.services_monitor_interval, Duration::from_secs(7));
    let r = s.redis.as_ref().expect("a host turns Redis on");
    assert_eq!(
        (r.host.as_str(), r.port, r.db),
        ("redis.internal", 6380, 15)
    );
    assert_eq!(r.password.expose(), "p@ss:w/rd");
    assert_eq!(r.lease_ttl, Duration::from_millis(2500));
    // The password is a `Secret`: no printed form of the settings carries it.
    let printed = format!("{s:?}");
    assert!(!printed.contains("p@ss"), "{printed}");
    assert!(printed.contains("redis.internal"));
}

#[test]
fn defaults_of_the_typed_intervals() {
    let s = Settings::from_vars(&vars(&[])).unwrap();
    assert_eq!(s.services_monitor_interval, Duration::from_secs(5));
    assert_eq!(s.provider_monitor_interval, Duration::from_secs(5));
    assert_eq!(s.keepalive_interval, Duration::from_secs(1));
    let s = Settings::from_vars(&vars(&[("LLM_ROUTER_REDIS_HOST", "h")])).unwrap();
    let r = s.redis.unwrap();
    assert_eq!((r.port, r.db, r.password.is_empty()), (6379, 0, true));
    assert_eq!(r.lease_ttl, Duration::from_secs(10));
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

#[test]
fn the_fastapi_routers_variables_apply_only_without_a_models_file() {
    let missing = "/nonexistent/models-config.json";
    let s = Settings::from_vars(&vars(&[
        ("LLM_ROUTER_MODELS_CONFIG", missing),
        ("OPENAI_API_KEY", "sk-1"),
        ("AUTH_KEY", "client-key-1"),
    ]))
    .unwrap();
    assert!(s.fastapi.is_some());
    assert!(s.models.models.is_empty());
    let any = s.models.wildcard.as_ref().unwrap();
    let ids: Vec<&str> = any.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["openai", "ollama"]);
    assert!(s.access.enabled, "ENABLE_AUTH defaults to on");
    assert_eq!(s.access.keys.as_ref().unwrap().table.len(), 1);
    // LLM_ROUTER_AUTH_ENABLED, when set, decides.
    let s = Settings::from_vars(&vars(&[
        ("LLM_ROUTER_MODELS_CONFIG", missing),
        ("OPENAI_API_KEY", "sk-1"),
        ("LLM_ROUTER_AUTH_ENABLED", "false"),
    ]))
    .unwrap();
    assert!(!s.access.enabled);
    // A models file wins: the variables are not read.
    let s = Settings::from_vars(&vars(&[("OPENAI_API_KEY", "sk-1")])).unwrap();
    assert!(s.fastapi.is_none() && s.models.wildcard.is_none());
    // A bad ROUTER_SERVICES is reported alone (not as a missing models file too).
    let errs = Settings::from_vars(&vars(&[
        ("LLM_ROUTER_MODELS_CONFIG", missing),
        ("ROUTER_SERVICES", "[{\"name\": \"x\"}]"),
    ]))
    .unwrap_err();
    assert_eq!(
        errs,
        [
            "ROUTER_SERVICES[0]: missing \"backend_type\"",
            "ROUTER_SERVICES[0]: missing \"base_url\""
        ]
    );
    // Neither a file nor the variables: the missing file is the error, as before.
    let errs = Settings::from_vars(&vars(&[("LLM_ROUTER_MODELS_CONFIG", missing)])).unwrap_err();
    assert!(errs[0].contains("cannot read"), "{errs:?}");
}
