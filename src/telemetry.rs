//! Logs, request ids and metrics.
//!
//! - Logging: `tracing` with text or JSON lines, optionally also to a file.
//! - Request ids: the client's `x-request-id` is kept (if sane), else a UUID v4 is made; it is put
//!   on the response, on the root span (every log line of the request), and sent upstream.
//! - Metrics: actix-web-prom for HTTP (`http_requests_total`, `http_request_duration_seconds`,
//!   endpoint labels are route patterns) plus the router's provider metrics, one registry.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use llm_router_actors::{Lease, Outcome, ProviderSnapshot};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use crate::settings::{LogFormat, LogSettings};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Starts logging. Returns a guard that must live as long as the process (flushes the file writer).
pub fn init_logging(s: &LogSettings) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::{
        fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer,
    };
    // Our own crates at the configured level; noisy dependencies one notch quieter.
    let filter = EnvFilter::new(format!(
        "warn,llm_router={0},llm_router_actors={0},tracing_actix_web=warn",
        s.level
    ));
    let (file_writer, guard) = match &s.to_file {
        Some(path) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let dir = dir.map_or_else(|| std::path::PathBuf::from("."), |d| d.to_path_buf());
            let name = path
                .file_name()
                .map_or_else(|| "llm-router.log".into(), |n| n.to_os_string());
            let appender = tracing_appender::rolling::never(dir, name);
            let (w, g) = tracing_appender::non_blocking(appender);
            (Some(w), Some(g))
        }
        None => (None, None),
    };
    let json = s.format == LogFormat::Json;
    // Colours only for a terminal (never into a pipe, a container log or a file) and not when
    // NO_COLOR is set (no-color.org); they also cost a formatted escape per span field.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let stdout = if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        fmt::layer().with_ansi(ansi).boxed()
    };
    let file = file_writer.map(|w| {
        if json {
            fmt::layer().json().with_writer(w).boxed()
        } else {
            fmt::layer().with_ansi(false).with_writer(w).boxed()
        }
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stdout)
        .with(file)
        .try_init();
    guard
}

/// The request id of this request, set by [`request_id`].
#[derive(Clone)]
pub struct RequestId(pub Arc<str>);

fn sane_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic())).then_some(s)
}

/// Middleware: assigns the request id and echoes it on the response.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id: Arc<str> = match req.headers().get(&X_REQUEST_ID).and_then(sane_id) {
        Some(s) => s.into(),
        None => {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            (&*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf)).into()
        }
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.call(req).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    Ok(res)
}

/// Root span carrying our request id (tracing-actix-web would otherwise mint its own).
pub struct RouterRootSpan;

impl RootSpanBuilder for RouterRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| "-".into());
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route = %request.match_pattern().unwrap_or_default(),
            status = tracing::field::Empty,
            // Filled by `relay::explain` when the request is routed.
            decision = tracing::field::Empty,
            strategy = tracing::field::Empty,
            chosen = tracing::field::Empty,
            why = tracing::field::Empty,
            retry = tracing::field::Empty,
            fallback = tracing::field::Empty,
            auto = tracing::field::Empty,
            intent = tracing::field::Empty,
            complexity = tracing::field::Empty,
            affinity = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(res) = outcome {
            span.record("status", res.status().as_u16());
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Router metrics (SPEC §8) and the recent statistics of `/router/stats`. Always made; the
/// Prometheus side is updated only when `/metrics` is exposed (`exposed`). Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<MetricsInner>);

pub struct MetricsInner {
    pub registry: Registry,
    calls: IntCounterVec,
    latency: HistogramVec,
    ttft: HistogramVec,
    errors: IntCounterVec,
    in_flight: IntGaugeVec,
    healthy: IntGaugeVec,
    strategy_selected: IntCounterVec,
    pub retries: IntCounter,
    /// `llm_router_fallbacks_total{model_name, reason}`: requests sent on to a fallback model.
    pub fallbacks: IntCounterVec,
    /// `llm_router_stream_resumes_total{outcome}`: stream continuations (SPEC §11).
    pub stream_resumes: IntCounterVec,
    /// `llm_router_hedges_total{outcome}`: TTFT hedges sent (SPEC §11).
    pub hedges: IntCounterVec,
    latency_ewma: GaugeVec,
    /// The providers whose gauges a scrape reads; replaced by a reload ([`Metrics::set_providers`]).
    snapshots: std::sync::Mutex<Vec<Arc<ProviderSnapshot>>>,
    strategy: &'static str,
    shared_up: prometheus::IntGauge,
    shared: Option<Arc<llm_router_actors::registry::SharedHealth>>,
    /// `LLM_ROUTER_USE_PROMETHEUS`: without it only [`Self::stats`] is fed.
    exposed: bool,
    /// Per-provider windows of the last five minutes (`/router/stats`).
    pub stats: Arc<crate::stats::Stats>,
    /// Names the catch-all model `*` has served with success, each its own `model_name` label
    /// (at most [`MAX_ALIAS_LABELS`]); see [`MetricsInner::model_label`].
    aliases: std::sync::RwLock<std::collections::HashSet<Box<str>>>,
}

/// How many names served by the catch-all model get their own metric label. Any name a client
/// sends reaches `*`, so without a bound the series would grow with every typo or scan.
pub const MAX_ALIAS_LABELS: usize = 64;

impl MetricsInner {
    /// The `model_name` label of a lease: its configured model, or for a name the catch-all
    /// model serves, that name once it is known (a call of it succeeded — `admit` — while fewer
    /// than [`MAX_ALIAS_LABELS`] names were known), else `*`.
    fn model_label<'a>(&self, lease: &'a Lease, admit: bool) -> &'a str {
        let Some(alias) = lease.alias() else {
            return lease.model();
        };
        {
            let known = self.aliases.read().unwrap_or_else(|e| e.into_inner());
            if known.contains(alias) {
                return alias;
            }
            if !admit || known.len() >= MAX_ALIAS_LABELS {
                return llm_router_actors::config::WILDCARD;
            }
        }
        let mut known = self.aliases.write().unwrap_or_else(|e| e.into_inner());
        if known.len() < MAX_ALIAS_LABELS {
            known.insert(alias.into());
            return alias;
        }
        llm_router_actors::config::WILDCARD
    }
}

impl std::ops::Deref for Metrics {
    type Target = MetricsInner;
    fn deref(&self) -> &MetricsInner {
        &self.0
    }
}

/// Buckets for LLM calls: milliseconds to many minutes.
pub const LONG_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

impl Metrics {
    pub fn new(
        registry: Registry,
        snapshots: Vec<Arc<ProviderSnapshot>>,
        strategy: &'static str,
        shared: Option<Arc<llm_router_actors::registry::SharedHealth>>,
        exposed: bool,
    ) -> prometheus::Result<Metrics> {
        let shared_up = prometheus::IntGauge::new(
            "llm_router_shared_state_up",
            "1 while the shared store (Redis) is reachable, 0 while serving on local state",
        )?;
        if shared.is_some() {
            registry.register(Box::new(shared_up.clone()))?;
        }
        let pl = ["provider_id", "model_name", "provider_type"];
        let calls = IntCounterVec::new(
            Opts::new(
                "llm_router_provider_calls_total",
                "Upstream calls by provider",
            ),
            &pl,
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "llm_router_provider_latency_seconds",
                "Whole upstream call time",
            )
            .buckets(LONG_BUCKETS.to_vec()),
            &pl,
        )?;
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                "llm_router_provider_ttft_seconds",
                "Time from sending to the first response byte",
            )
            .buckets(LONG_BUCKETS.to_vec()),
            &pl,
        )?;
        let errors = IntCounterVec::new(
            Opts::new("llm_router_provider_errors_total", "Failed upstream calls"),
            &["provider_id", "model_name", "provider_type", "error_code"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "llm_router_provider_in_flight",
                "Requests in flight per provider",
            ),
            &["provider_id"],
        )?;
        let healthy = IntGaugeVec::new(
            Opts::new(
                "llm_router_provider_healthy",
                "1 when the provider's circuit is closed",
            ),
            &["provider_id"],
        )?;
        let strategy_selected = IntCounterVec::new(
            Opts::new(
                "llm_router_lb_strategy_selected_total",
                "Provider choices by strategy",
            ),
            &["strategy", "model_name"],
        )?;
        let retries = IntCounter::new("llm_router_retry_total", "Failovers to another provider")?;
        let fallbacks = IntCounterVec::new(
            Opts::new(
                "llm_router_fallbacks_total",
                "Requests sent on to a fallback model, by the model left and why",
            ),
            &["model_name", "reason"],
        )?;
        let stream_resumes = IntCounterVec::new(
            Opts::new(
                "llm_router_stream_resumes_total",
                "Streams continued on another provider after a failure, by outcome",
            ),
            &["outcome"],
        )?;
        let hedges = IntCounterVec::new(
            Opts::new(
                "llm_router_hedges_total",
                "Requests also sent to a second provider for a slow first token, by outcome",
            ),
            &["outcome"],
        )?;
        let latency_ewma = GaugeVec::new(
            Opts::new(
                "llm_router_provider_latency_ewma_seconds",
                "Peak-EWMA latency per provider",
            ),
            &["provider_id"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(ttft.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(healthy.clone()))?;
        registry.register(Box::new(strategy_selected.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(fallbacks.clone()))?;
        registry.register(Box::new(stream_resumes.clone()))?;
        registry.register(Box::new(hedges.clone()))?;
        registry.register(Box::new(latency_ewma.clone()))?;
        Ok(Metrics(Arc::new(MetricsInner {
            registry,
            calls,
            latency,
            ttft,
            errors,
            in_flight,
            healthy,
            strategy_selected,
            retries,
            fallbacks,
            stream_resumes,
            hedges,
            latency_ewma,
            snapshots: std::sync::Mutex::new(snapshots),
            strategy,
            shared_up,
            shared,
            exposed,
            stats: Arc::default(),
            aliases: Default::default(),
        })))
    }

    /// Records one finished upstream call.
    pub fn observe_call(&self, lease: &Lease) {
        self.stats.observe(lease);
        if !self.exposed {
            return;
        }
        let p = lease.provider();
        let model = self.model_label(lease, lease.outcome() == Outcome::Success);
        let labels = [p.id.as_str(), model, p.api_type.as_str()];
        self.calls.with_label_values(&labels).inc();
        match lease.outcome() {
            Outcome::Success => {
                self.latency
                    .with_label_values(&labels)
                    .observe(lease.started().elapsed().as_secs_f64());
                if let Some(t) = lease.ttft() {
                    self.ttft
                        .with_label_values(&labels)
                        .observe(t.as_secs_f64());
                }
            }
            Outcome::Failure(kind) => {
                let code = kind.code();
                self.errors
                    .with_label_values(&[labels[0], labels[1], labels[2], code.as_str()])
                    .inc();
            }
            Outcome::ClientError(status) => {
                let code = status.to_string();
                self.errors
                    .with_label_values(&[labels[0], labels[1], labels[2], code.as_str()])
                    .inc();
            }
            Outcome::Cancelled => {}
        }
    }

    pub fn observe_choice(&self, lease: &Lease) {
        if !self.exposed {
            return;
        }
        self.strategy_selected
            .with_label_values(&[self.strategy, self.model_label(lease, false)])
            .inc();
    }

    /// Whether `/metrics` is served.
    pub fn exposed(&self) -> bool {
        self.exposed
    }

    /// After a reload: the gauges follow the new provider list, and the series of providers that
    /// are gone are removed (not left at their last value).
    pub fn set_providers(&self, list: Vec<Arc<ProviderSnapshot>>) {
        let mut cur = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        for old in cur.iter() {
            if !list.iter().any(|s| s.id() == old.id()) {
                let _ = self.in_flight.remove_label_values(&[old.id()]);
                let _ = self.healthy.remove_label_values(&[old.id()]);
                let _ = self.latency_ewma.remove_label_values(&[old.id()]);
            }
        }
        *cur = list;
    }

    /// Prometheus text exposition; gauges are read from the provider snapshots at scrape time.
    pub fn render(&self) -> String {
        let now = std::time::Instant::now();
        if let Some(h) = &self.shared {
            self.shared_up.set(h.is_up() as i64);
        }
        let snapshots = self
            .snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for s in &snapshots {
            self.in_flight
                .with_label_values(&[s.id()])
                .set(s.in_flight() as i64);
            let up = s.health(now) != llm_router_actors::HealthView::Open;
            self.healthy.with_label_values(&[s.id()]).set(up as i64);
            if let Some(l) = s.latency() {
                self.latency_ewma
                    .with_label_values(&[s.id()])
                    .set(l.as_secs_f64());
            }
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The privacy pipeline's counters (SPEC §6, §8), registered when Prometheus is on and counted
/// either way (so callers never branch on it):
///
/// - `masker_incidents_total{plugin, outcome}`: `plugin="pipeline", outcome="masked"` for each
///   request in which something was masked; `plugin="pii_masker"` with the failure as `outcome`
///   (`down`, `timeout`, `unreachable`, `status`, `bad_answer`) for each request it blocked.
/// - `guardrail_incidents_total{plugin, direction, outcome}`: `outcome="unsafe"` for each
///   refusal, or the failure kind as above for each request a failing guardrail blocked;
///   `direction` is `request` or `response`.
#[derive(Clone)]
pub struct PipelineMetrics {
    masker: IntCounterVec,
    guardrail: IntCounterVec,
}

impl PipelineMetrics {
    pub fn new(registry: Option<&Registry>) -> prometheus::Result<PipelineMetrics> {
        let masker = IntCounterVec::new(
            Opts::new(
                "masker_incidents_total",
                "Requests masked, and requests a failing masker blocked",
            ),
            &["plugin", "outcome"],
        )?;
        let guardrail = IntCounterVec::new(
            Opts::new(
                "guardrail_incidents_total",
                "Guardrail refusals, and requests or answers a failing guardrail blocked",
            ),
            &["plugin", "direction", "outcome"],
        )?;
        if let Some(r) = registry {
            r.register(Box::new(masker.clone()))?;
            r.register(Box::new(guardrail.clone()))?;
        }
        Ok(PipelineMetrics { masker, guardrail })
    }

    pub fn masker_incident(&self, plugin: &str, outcome: &str) {
        self.masker.with_label_values(&[plugin, outcome]).inc();
    }

    pub fn guardrail_incident(&self, plugin: &str, direction: &str, outcome: &str) {
        self.guardrail
            .with_label_values(&[plugin, direction, outcome])
            .inc();
    }
}
