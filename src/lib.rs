//! llm-router: an LLM gateway on actix. See ARCHITECTURE.md for the map.
//!
//! The testable entry point is [`run`]: give it a bound listener and validated [`Settings`], get a
//! running server. `main.rs` only reads the environment, reports configuration errors, and calls it.

#![forbid(unsafe_code)]

pub mod access;
pub mod batch;
pub mod builtin;
pub mod dialects;
pub mod errors;
pub mod handlers;
pub mod keys_cli;
pub mod pipeline;
pub mod relay;
pub mod settings;
pub mod telemetry;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::Actor as _;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use actix_web_prom::{ActixMetricsConfiguration, LabelsConfiguration, PrometheusMetricsBuilder};
use llm_router_actors::monitors::{KeepAliveMonitor, ProviderMonitor};
use llm_router_actors::registry::{SharedHealth, SharedOptions};
use llm_router_actors::store::StoreOptions;
use llm_router_actors::{GetProviders, GetStatus, ModelRegistry, RegistryOptions};
use tracing_actix_web::TracingLogger;

pub use settings::Settings;

use handlers::AppState;
use telemetry::{Metrics, RouterRootSpan};

/// Starts the engine and the HTTP server on `listener`. Must be called inside an actix `System`;
/// the returned server runs until stopped (or SIGINT/SIGTERM, which drain gracefully).
pub async fn run(
    listener: TcpListener,
    settings: Settings,
) -> std::io::Result<actix_web::dev::Server> {
    relay::client::install_crypto();
    let shared_health = settings
        .redis
        .as_ref()
        .map(|_| Arc::new(SharedHealth::default()));
    let shared = settings.redis.as_ref().map(|r| SharedOptions {
        store: StoreOptions {
            host: r.host.clone(),
            port: r.port,
            db: i64::from(r.db),
            password: r.password.clone(),
            prefix: r.prefix.clone(),
            lease_ttl: r.lease_ttl,
            timeout: Duration::from_millis(500),
        },
        health: shared_health.clone().expect("set with redis"),
    });
    let registry = ModelRegistry::start(
        &settings.models,
        RegistryOptions {
            strategy: Some(settings.strategy),
            shared,
            ..Default::default()
        },
    );
    if !settings.provider_monitor_interval.is_zero() {
        let providers = registry
            .send(GetProviders)
            .await
            .map_err(std::io::Error::other)?;
        ProviderMonitor::new(providers, settings.provider_monitor_interval).start();
    }
    if !settings.keepalive_interval.is_zero()
        && settings
            .models
            .models
            .iter()
            .flat_map(|m| &m.providers)
            .any(|p| p.keep_alive.is_some())
    {
        KeepAliveMonitor::new(registry.clone(), settings.keepalive_interval).start();
    }
    let snapshots: Vec<_> = registry
        .send(GetStatus)
        .await
        .map_err(std::io::Error::other)?
        .into_iter()
        .flat_map(|m| m.providers)
        .collect();

    let prom_registry = prometheus::Registry::new();
    let prom = PrometheusMetricsBuilder::new("")
        .registry(prom_registry.clone())
        .buckets(telemetry::LONG_BUCKETS)
        .mask_unmatched_patterns("UNMATCHED")
        .metrics_configuration(
            ActixMetricsConfiguration::default()
                .http_requests_duration_seconds_name("http_request_duration_seconds")
                .labels(LabelsConfiguration::default().status("http_status")),
        )
        .build()
        .map_err(std::io::Error::other)?;
    let access = access::Access::new(
        &settings.access,
        &settings.prefix,
        settings.max_body,
        settings.redis.as_ref(),
        settings.prometheus.then_some(&prom_registry),
    )?;
    access.start();
    let (stages, masking) =
        pipeline::build(&settings, settings.prometheus.then_some(&prom_registry))?;
    let metrics = if settings.prometheus {
        Some(
            Metrics::new(
                prom_registry,
                snapshots,
                settings.strategy.as_str(),
                shared_health.clone(),
            )
            .map_err(std::io::Error::other)?,
        )
    } else {
        None
    };

    let settings = Arc::new(settings);
    let state = web::Data::new(AppState {
        settings: settings.clone(),
        registry,
        metrics,
        started_at: SystemTime::now(),
        shared: shared_health,
        stages,
        masking,
        access,
    });
    let prefix = settings.prefix.clone();
    let prometheus = settings.prometheus;
    let max_body = settings.max_body;
    tracing::info!(
        addr = %listener.local_addr()?,
        models = settings.models.models.len(),
        strategy = %settings.strategy,
        workers = settings.workers,
        "llm-router listening"
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // awc::Client is !Send: one per worker, built here in the worker's factory.
            .app_data(web::Data::new(relay::client::build_client()))
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(from_fn(access::guard))
            .wrap(Condition::new(prometheus, prom.clone()))
            .wrap(TracingLogger::<RouterRootSpan>::new())
            .wrap(from_fn(telemetry::request_id))
            .configure(|cfg| handlers::configure(cfg, &prefix, prometheus))
            .default_service(web::to(handlers::route_not_found))
    })
    .workers(settings.workers)
    .tcp_nodelay(true)
    // Notice a client that closed its side at once, so its upstream call is cancelled.
    .h1_allow_half_closed(false)
    .keep_alive(Duration::from_secs(75))
    .backlog(4096)
    .shutdown_timeout(settings.shutdown_grace.as_secs())
    .listen(listener)?
    .run();
    Ok(server)
}
