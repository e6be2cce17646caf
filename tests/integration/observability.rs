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
