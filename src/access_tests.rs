use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_key_comes_from_bearer_or_x_api_key_only() {
    use actix_web::test::TestRequest;
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Headers, Option<&str>)] = &[
        (&[("authorization", "Bearer k1")], Some("k1")),
        (&[("authorization", "bearer   k1 ")], Some("k1")),
        (&[("x-api-key", " k2")], Some("k2")),
        (
            &[("authorization", "Bearer k1"), ("x-api-key", "k2")],
            Some("k1"),
        ),
        (
            &[("authorization", "Basic k1"), ("x-api-key", "k2")],
            Some("k2"),
        ),
        (&[("authorization", "Basic k1")], None),
        (&[("authorization", "Bearer ")], None),
        (&[("x-api-key", "")], None),
        (&[], None),
    ];
    for (headers, want) in cases {
        let mut t = TestRequest::post().uri("/v1/chat/completions?api_key=q");
        for h in *headers {
            t = t.insert_header(*h);
        }
        let req = t.to_srv_request();
        assert_eq!(presented_key(&req), *want, "{headers:?}");
    }
}

#[test]
fn one_model_of_a_public_listing_and_the_api_description_are_public() {
    let public = expand_public("/,/health,/v1/models", "/api");
    let cases = [
        ("/v1/models", true),
        ("/v1/models/m", true),
        ("/v1/models/google/gemma", true),
        ("/v1/models/", false),
        ("/models/m", false),
        ("/v1/modelsx", false),
        ("/openapi.json", true),
        ("/docs", true),
        ("/router/stats", false),
    ];
    for (path, want) in cases {
        assert_eq!(is_public(path, &public), want, "{path}");
    }
}

#[test]
fn access_defaults_match_the_contract() {
    let s = AccessSettings::from_vars(&vars(&[])).unwrap();
    assert!(!s.enabled && !s.rate_limit);
    assert_eq!(s.store, StoreKind::Memory);
    assert_eq!(s.default_rpm, 60);
    assert_eq!((s.key_prefix.as_str(), s.key_length), ("sk-litm", 48));
    assert_eq!(s.rotation_grace, Duration::from_secs(3600));
    assert!(s
        .keys_file
        .ends_with(".llm-router/configs/auth/memory-keys.json"));
    assert_eq!(
        expand_public(&s.public_endpoints, "/api"),
        [
            "/",
            "/health",
            "/metrics",
            "/models",
            "/v1/models",
            "/api/ping",
            "/api/version",
            "/api/metrics"
        ]
    );
}

#[test]
fn bad_access_variables_and_a_bad_keys_file_are_reported() {
    let errs = AccessSettings::from_vars(&vars(&[
        ("LLM_ROUTER_AUTH_ENABLED", "tak"),
        ("LLM_ROUTER_AUTH_KEY_STORE", "vault"),
        ("LLM_ROUTER_AUTH_DEFAULT_RATE_LIMIT", "many"),
    ]))
    .unwrap_err();
    assert_eq!(
        errs,
        [
            "LLM_ROUTER_AUTH_DEFAULT_RATE_LIMIT: expected a whole number ≥ 1, got \"many\"",
            "LLM_ROUTER_AUTH_KEY_STORE: expected memory or redis, got \"vault\""
        ]
    );
    let errs = AccessSettings::from_vars(&vars(&[
        ("LLM_ROUTER_AUTH_ENABLED", "1"),
        ("LLM_ROUTER_AUTH_KEY_STORE", "redis"),
    ]))
    .unwrap_err();
    assert!(errs[0].contains("redis needs LLM_ROUTER_REDIS_HOST"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    std::fs::write(
        &path,
        r#"[{"key_plain": "a"}, {"key_plain": "b", "policy_name": "x"}]"#,
    )
    .unwrap();
    let p = path.display().to_string();
    let errs = AccessSettings::from_vars(&vars(&[
        ("LLM_ROUTER_AUTH_ENABLED", "1"),
        ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &p),
    ]))
    .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(&format!("{p}: [1]: unknown policy \"x\"")),
        "{errs:?}"
    );
    // Auth off: the file is not read at all.
    assert!(AccessSettings::from_vars(&vars(&[("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &p)])).is_ok());
}
