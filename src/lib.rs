//! llm-router: an LLM gateway on actix. See ARCHITECTURE.md for the map.
//!
//! The testable entry point is [`run`]: give it a bound listener and validated [`Settings`], get a
//! running server. `main.rs` only reads the environment, reports configuration errors, and calls it.

#![forbid(unsafe_code)]

pub mod access;
pub mod batch;
pub mod builtin;
pub mod console;
pub mod cors;
pub mod dialects;
pub mod discovery;
pub mod errors;
pub mod handlers;
pub mod keys_cli;
pub mod pipeline;
pub mod profiles;
pub mod rag;
pub mod relay;
pub mod settings;
pub mod settings_fastapi;
pub mod smart;
pub mod stats;
pub mod telemetry;
pub mod usage;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Whether the server is draining (shutting down): set on SIGTERM/SIGINT before the listener
/// closes; `/health` answers 503 `draining` from then on. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    /// Marks the server as draining (the signal handler does this; tests may too).
    pub fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Starts the engine and the HTTP server on `listener`. Must be called inside an actix `System`;
/// the returned server runs until stopped, or until SIGTERM/SIGINT, which drain it
/// ([`drain_on_signal`]).
pub async fn run(
    listener: TcpListener,
    settings: Settings,
) -> std::io::Result<actix_web::dev::Server> {
    run_with(listener, settings, Drain::default()).await
}

/// [`run`] with the caller's [`Drain`] flag.
pub async fn run_with(
    listener: TcpListener,
    settings: Settings,
    drain: Drain,
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
    let (registry, chooser) = ModelRegistry::launch(
        &settings.models,
        RegistryOptions {
            strategy: Some(settings.strategy),
            shared,
            affinity: settings.smart.affinity,
            ..Default::default()
        },
    );
    let monitor = if settings.provider_monitor_interval.is_zero() {
        None
    } else {
        let providers = registry
            .send(GetProviders)
            .await
            .map_err(std::io::Error::other)?;
        Some(ProviderMonitor::new(providers, settings.provider_monitor_interval).start())
    };
    // Always on (when its tick is): a reload may add providers with `keep_alive`; a tick with
    // none to watch is one registry message.
    if !settings.keepalive_interval.is_zero() {
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
    let rag = settings
        .rag
        .clone()
        .map(rag::Rag::open)
        .transpose()?
        .map(Arc::new);
    let profiles = Arc::new(profiles::Profiles::load(settings.profiles.clone()));
    let (stages, masking) = pipeline::build(
        &settings,
        settings.prometheus.then_some(&prom_registry),
        rag.clone(),
        Some(profiles.clone()),
    )?;
    // Always made: `/router/stats` reads its windows; Prometheus only when enabled.
    let metrics = Some(
        Metrics::new(
            prom_registry.clone(),
            snapshots,
            settings.strategy.as_str(),
            shared_health.clone(),
            settings.prometheus,
        )
        .map_err(std::io::Error::other)?,
    );

    let reloader = web::Data::new(handlers::reload::Reloader::new(
        &settings,
        registry.clone(),
        monitor,
        access.clone(),
        metrics.clone(),
        settings.prometheus.then_some(&prom_registry),
    )?);
    let console = Arc::new(console::Console::new(&settings.console));
    reloader.keep_history(console.history.clone());
    if !settings.config_watch.is_zero() {
        actix_rt::spawn(reloader.clone().into_inner().watch(settings.config_watch));
    }
    // Model discovery: the first round before the server listens, so listed models are served
    // from the first request; then every interval and after each file reload.
    let mut discovery =
        discovery::Discovery::new(reloader.clone().into_inner(), settings.discovery_interval);
    if discovery.wanted() {
        discovery.refresh().await;
    }
    actix_rt::spawn(discovery.run());
    #[cfg(unix)]
    match reloader.clone().into_inner().on_sighup() {
        Ok(on_hup) => drop(actix_rt::spawn(on_hup)),
        Err(e) => tracing::warn!("cannot listen for SIGHUP ({e}); reload with POST /router/reload"),
    }
    if let Some(f) = &settings.fastapi {
        f.log();
    }
    let key_header = settings.fastapi.as_ref().and_then(|f| f.key_header.clone());
    profiles.start(settings.models.clone());
    let settings = Arc::new(settings);
    let vram = settings
        .vram_management
        .then(|| llm_router_actors::vram::VramManager::new(registry.clone()));
    let state = web::Data::new(AppState {
        settings: settings.clone(),
        vram,
        registry,
        chooser,
        metrics,
        started_at: SystemTime::now(),
        shared: shared_health,
        stages,
        masking,
        access,
        drain: drain.clone(),
        console,
        rag: rag.clone(),
        profiles: profiles.clone(),
    });
    if let Some(r) = &rag {
        r.attach(&state.clone().into_inner());
    }
    let prefix = settings.prefix.clone();
    let prometheus = settings.prometheus;
    // CORS settings come from the environment (not reloaded): without origins the middleware
    // is left out of the chain entirely.
    let cors_on = !settings.cors.is_off();
    let max_body = settings.max_body;
    tracing::info!(
        addr = %listener.local_addr()?,
        models = settings.models.all().count(),
        strategy = %settings.strategy,
        workers = settings.workers,
        "llm-router listening"
    );
    let request_span_on =
        tracing::span_enabled!(target: "llm_router::telemetry", tracing::Level::INFO);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(reloader.clone())
            // awc::Client is !Send: one per worker, built here in the worker's factory.
            .app_data(web::Data::new(relay::client::build_client()))
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(from_fn(access::guard))
            .wrap(Condition::new(
                key_header.is_some(),
                from_fn(settings_fastapi::key_header),
            ))
            // Outside the guard: preflights need no key, refusals carry the CORS headers.
            .wrap(Condition::new(cors_on, from_fn(cors::cors)))
            .wrap(Condition::new(prometheus, prom.clone()))
            // The request span is at INFO: at a quieter level it is disabled and the middleware
            // would only wrap every request and body for nothing (its error events are off).
            .wrap(Condition::new(
                request_span_on,
                TracingLogger::<RouterRootSpan>::new(),
            ))
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
    // Signals are handled by `drain_on_signal`: actix would stop at once on SIGINT.
    .disable_signals()
    .listen(listener)?
    .run();
    actix_rt::spawn(drain_on_signal(
        server.handle(),
        drain,
        settings.shutdown_grace,
    ));
    Ok(server)
}

/// On the first SIGTERM or SIGINT: marks the server draining, closes the listener (new
/// connections are refused), lets requests and streams in flight finish for up to `grace`
/// (actix closes idle keep-alive connections and each busy one after its response), then the
/// server future ends and the process exits 0. A second signal stops at once.
async fn drain_on_signal(handle: actix_web::dev::ServerHandle, drain: Drain, grace: Duration) {
    use actix_rt::signal::unix::{signal, SignalKind};
    use futures_util::future::{select, Either};
    use futures_util::FutureExt;
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT; shutdown will not drain");
        return;
    };
    let name = match select(term.recv().boxed_local(), int.recv().boxed_local()).await {
        Either::Left(_) => "SIGTERM",
        Either::Right(_) => "SIGINT",
    };
    drain.begin();
    tracing::info!(
        signal = name,
        grace_seconds = grace.as_secs(),
        "draining: no new connections; requests in flight may finish"
    );
    let stop = handle.stop(true).boxed_local();
    let again = select(term.recv().boxed_local(), int.recv().boxed_local());
    match select(stop, again).await {
        Either::Left(_) => tracing::info!("drained; stopping"),
        Either::Right(_) => {
            tracing::warn!("second signal: stopping without waiting for requests in flight");
            handle.stop(false).await;
        }
    };
}
