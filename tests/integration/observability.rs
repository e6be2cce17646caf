//! Prometheus metrics.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[actix_rt::test]
async fn metrics_expose_http_and_provider_series_on_both_paths() {
    let up = FakeUpstream::start(FakeConfig::default());
    let bad = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 500,
            message: "boom".into(),
            retry_after: None,
        },
        ..Default::default()
    });
    let mut p = provider("gemma-a", &up);
    p["api_token"] = json!("sk-metrics-secret");
    let cfg = models_config(&[("gemma", vec![provider("gemma-bad", &bad), p])]);
    let r = Router::start(&cfg, &[("LLM_ROUTER_USE_PROMETHEUS", "1")]);
    for _ in 0..2 {
        let res = r.chat("gemma", false).await;
        assert_eq!(res.status(), 200);
    }
    client()
        .get(r.url("/no/such/path/123"))
        .send()
        .await
        .unwrap();
    // Leases are released just after their responses are written.
    assert!(
        eventually(Duration::from_secs(5), || async {
            r.in_flight("gemma-a").await == 0
        })
        .await
    );
    for path in ["/metrics", "/api/metrics"] {
        let mut res = client().get(r.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let body = res.body().limit(1 << 22).await.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains(r#"http_requests_total{endpoint="/v1/chat/completions",http_status="200",method="POST"} 2"#),
            "{text}"
        );
        assert!(text.contains("http_request_duration_seconds_bucket{"));
        assert!(
            text.contains(r#"endpoint="UNMATCHED""#),
            "raw unknown paths are masked"
        );
        assert!(!text.contains("/no/such/path/123"));
        assert!(text.contains(
            r#"llm_router_provider_calls_total{model_name="gemma",provider_id="gemma-a",provider_type="vllm"} 2"#
        ));
        assert!(text.contains(
            r#"llm_router_provider_errors_total{error_code="500",model_name="gemma",provider_id="gemma-bad",provider_type="vllm"}"#
        ));
        assert!(text.contains(r#"llm_router_provider_in_flight{provider_id="gemma-a"} 0"#));
        assert!(text.contains(r#"llm_router_provider_healthy{provider_id="gemma-a"} 1"#));
        assert!(text.contains("llm_router_provider_latency_seconds_bucket{"));
        assert!(text.contains("llm_router_provider_ttft_seconds_bucket{"));
        assert!(text.contains("llm_router_retry_total"));
        assert!(text.contains(
            r#"llm_router_lb_strategy_selected_total{model_name="gemma",strategy="balanced"}"#
        ));
        assert!(
            !text.contains("sk-metrics-secret") && !text.contains(&up.addr().port().to_string())
        );
    }
}

#[actix_rt::test]
async fn metrics_are_off_unless_enabled() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let res = client().get(r.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[actix_rt::test]
async fn names_served_by_the_catch_all_model_get_bounded_metric_labels() {
    let up = FakeUpstream::start(FakeConfig {
        fault: Fault::Status {
            code: 404,
            message: "model not found".into(),
            retry_after: None,
        },
        fault_times: Some(1),
        ..Default::default()
    });
    let cfg = models_config(&[("*", vec![provider("any", &up)])]);
    let r = Router::start(&cfg, &[("LLM_ROUTER_USE_PROMETHEUS", "1")]);
    // A name the provider does not know never gets a label of its own.
    assert_eq!(r.chat("typo-model", false).await.status(), 502);
    let extra = 6;
    for i in 0..MAX_LABELS + extra {
        let res = r.chat(&format!("m-{i}"), i % 2 == 0).await;
        assert_eq!(res.status(), 200, "m-{i}");
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            r.in_flight("any").await == 0
        })
        .await
    );
    let mut res = client().get(r.url("/metrics")).send().await.unwrap();
    let body = res.body().limit(1 << 22).await.unwrap();
    let text = std::str::from_utf8(&body).unwrap();
    let calls: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("llm_router_provider_calls_total{"))
        .collect();
    assert_eq!(calls.len(), MAX_LABELS + 1, "{calls:#?}");
    for i in 0..MAX_LABELS {
        let line = format!(
            r#"llm_router_provider_calls_total{{model_name="m-{i}",provider_id="any",provider_type="vllm"}} 1"#
        );
        assert!(calls.contains(&line.as_str()), "{line}");
    }
    let rest = format!(
        r#"llm_router_provider_calls_total{{model_name="*",provider_id="any",provider_type="vllm"}} {}"#,
        extra + 1
    );
    assert!(calls.contains(&rest.as_str()), "{calls:#?}");
    assert!(!text.contains("typo-model") && !text.contains(&format!("m-{}", MAX_LABELS)));
    assert!(text.contains(
        r#"llm_router_provider_errors_total{error_code="404",model_name="*",provider_id="any",provider_type="vllm"} 1"#
    ));
}

/// `telemetry::MAX_ALIAS_LABELS`, as a client sees it.
const MAX_LABELS: usize = 64;
