//! Hot reload (SPEC §10): `POST /router/reload`, SIGHUP and a changed models-config file all end
//! in [`Reloader::reload`].
//!
//! Order: read the models config and validate it exactly as at start-up; then re-read the keys
//! file (memory store); only when both are good is anything swapped — the registry first (new
//! choices see the new providers at once, leases in flight finish where they are), then the
//! listings, then the health monitor's list. A bad file changes nothing and is reported: a log
//! line, `llm_router_config_reload_total{result="error"}`, and the route's 400 listing every
//! problem. Reloads are serialised; the file watch compares contents, so a reload from the route
//! or SIGHUP is not repeated by the watch.
//!
//! Model discovery (`crate::discovery`) changes the model set through the same path: the
//! reloader keeps the file's config and the last listings, and installs their merge
//! ([`Reloader::discovered`]); a file reload merges the listings it holds too.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use llm_router_actors::config::LiveModels;
use llm_router_actors::discovery::{self, Listings};
use llm_router_actors::monitors::{ProviderMonitor, SetProviders};
use llm_router_actors::registry::Reload;
use llm_router_actors::{GetProviders, ModelRegistry, ModelsConfig};
use prometheus::{IntCounterVec, Opts, Registry};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::json_response;

/// What a successful reload changed (the route's 200 body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub models: usize,
    pub providers: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub models_added: Vec<String>,
    pub models_removed: Vec<String>,
    /// Keys now loaded (memory store), when the keys file is re-read.
    pub keys: Option<usize>,
    /// The config's number in the console's version history, when it changed and one is kept.
    pub version: Option<u64>,
}

/// The file's contents as last read by a reload (or at start-up): `None` = missing.
type Fingerprint = Option<[u8; 32]>;

fn fingerprint(path: &std::path::Path) -> Fingerprint {
    std::fs::read(path)
        .ok()
        .map(|bytes| Sha256::digest(&bytes).into())
}

/// Re-reads and swaps the configuration; shared by the route, SIGHUP and the file watch.
pub struct Reloader {
    path: PathBuf,
    live: LiveModels,
    registry: Addr<ModelRegistry>,
    monitor: Option<Addr<ProviderMonitor>>,
    access: Arc<crate::access::Access>,
    metrics: Option<crate::telemetry::Metrics>,
    /// With the FastAPI router's environment configuration the keys come from the environment,
    /// which a running process cannot re-read: the keys file is left alone.
    reload_keys: bool,
    metric: Option<IntCounterVec>,
    seen: Mutex<Fingerprint>,
    /// The file's config as last validated and the hosts' last good listings; what runs is
    /// their [`discovery::merge`]. Changed only under `busy`.
    base: Mutex<(ModelsConfig, Listings)>,
    busy: tokio::sync::Mutex<()>,
    /// Woken after a file reload, so discovery lists a newly configured host at once.
    pub rediscover: Arc<tokio::sync::Notify>,
    /// The web console's version history: every config a reload applies is recorded in it.
    history: std::sync::OnceLock<Arc<crate::console::history::History>>,
    /// The text of the config running now (the history's first entry, when one is started).
    running_text: Mutex<Option<String>>,
}

impl Reloader {
    /// `prom`: where `llm_router_config_reload_total` is registered (metrics on).
    pub fn new(
        settings: &crate::Settings,
        registry: Addr<ModelRegistry>,
        monitor: Option<Addr<ProviderMonitor>>,
        access: Arc<crate::access::Access>,
        metrics: Option<crate::telemetry::Metrics>,
        prom: Option<&Registry>,
    ) -> std::io::Result<Reloader> {
        let metric = match prom {
            Some(reg) => {
                let c = IntCounterVec::new(
                    Opts::new(
                        "llm_router_config_reload_total",
                        "configuration reloads, by result (ok: swapped; error: kept the running one)",
                    ),
                    &["result"],
                )
                .map_err(std::io::Error::other)?;
                reg.register(Box::new(c.clone()))
                    .map_err(std::io::Error::other)?;
                // Both series exist from the start, so a rate() over them is defined.
                c.with_label_values(&["ok"]);
                c.with_label_values(&["error"]);
                Some(c)
            }
            None => None,
        };
        Ok(Reloader {
            path: settings.models_config_path.clone(),
            live: settings.models.clone(),
            registry,
            monitor,
            access,
            metrics,
            reload_keys: settings.fastapi.is_none(),
            metric,
            seen: Mutex::new(fingerprint(&settings.models_config_path)),
            base: Mutex::new((settings.models.current().clone(), Listings::new())),
            busy: tokio::sync::Mutex::new(()),
            rediscover: Arc::default(),
            history: std::sync::OnceLock::new(),
            running_text: Mutex::new(std::fs::read_to_string(&settings.models_config_path).ok()),
        })
    }

    /// Records every config applied from now on in `history` (the web console's).
    pub fn keep_history(&self, history: Arc<crate::console::history::History>) {
        let _ = self.history.set(history);
    }

    /// Records `text` (applied) in the history, first the config it replaced when the history
    /// is empty. A history that cannot be written is logged; the reload stands.
    fn record(&self, cause: &str, text: &str) -> Option<u64> {
        let h = self.history.get()?;
        let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
        let before = self
            .running_text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(text.to_string());
        let result = (|| {
            if h.is_empty()? {
                if let Some(old) = before.as_deref().and_then(parse) {
                    h.record("running before the first recorded change", &old)?;
                }
            }
            h.record(cause, &parse(text).unwrap_or_default())
        })();
        result
            .map_err(|e| tracing::error!(error = %e, dir = %h.dir().display(), "config history not written"))
            .ok()
    }

    fn count(&self, result: &str) {
        if let Some(m) = &self.metric {
            m.with_label_values(&[result]).inc();
        }
    }

    fn set_seen(&self, f: Fingerprint) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = f;
    }

    /// The file's config as last validated (what discovery lists the hosts of).
    pub fn file_config(&self) -> ModelsConfig {
        self.base
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Installs the file's config merged with new listings (model discovery). `None` when the
    /// model set is unchanged.
    pub async fn discovered(&self, listings: Listings) -> Option<Reloaded> {
        let _one_at_a_time = self.busy.lock().await;
        let config = {
            let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
            base.1 = listings;
            discovery::merge(&base.0, &base.1)
        };
        if config == *self.live.current() {
            return None;
        }
        let r = self.install(config, None, None).await.ok()?;
        self.count("ok");
        tracing::info!(
            models = r.models,
            providers = r.providers,
            models_added = ?r.models_added,
            models_removed = ?r.models_removed,
            "model discovery: model set changed"
        );
        Some(r)
    }

    /// Whether the file differs from what the last reload (or start-up) read.
    pub fn file_changed(&self) -> bool {
        let now = fingerprint(&self.path);
        now != *self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads, validates and swaps; `cause` names the trigger in the log. `Err` lists every
    /// problem (each prefixed with the file it is in); nothing changed then.
    pub async fn reload(&self, cause: &str) -> Result<Reloaded, Vec<String>> {
        let _one_at_a_time = self.busy.lock().await;
        let result = self.reload_now(cause).await;
        match &result {
            Ok(r) => {
                self.count("ok");
                tracing::info!(
                    cause,
                    models = r.models,
                    providers = r.providers,
                    added = ?r.added,
                    removed = ?r.removed,
                    changed = ?r.changed,
                    models_added = ?r.models_added,
                    models_removed = ?r.models_removed,
                    keys = r.keys,
                    "configuration reloaded"
                );
            }
            Err(problems) => {
                self.count("error");
                tracing::error!(
                    cause,
                    problems = %problems.join("; "),
                    "configuration reload refused; the running configuration stays"
                );
            }
        }
        result
    }

    async fn reload_now(&self, cause: &str) -> Result<Reloaded, Vec<String>> {
        let file = self.path.display().to_string();
        let bytes = std::fs::read(&self.path);
        let print: Fingerprint = bytes.as_ref().ok().map(|b| Sha256::digest(b).into());
        // Seen, good or bad: the watch reports a bad file once, not every tick.
        self.set_seen(print);
        let bytes = bytes.map_err(|e| {
            vec![format!(
                "{file}: cannot read (LLM_ROUTER_MODELS_CONFIG): {e}{}",
                if self.reload_keys {
                    ""
                } else {
                    "; this router was configured from the FastAPI failover router's \
                     environment variables, which a running process cannot re-read"
                }
            )]
        })?;
        let text = String::from_utf8(bytes).map_err(|_| vec![format!("{file}: not UTF-8")])?;
        let config = ModelsConfig::from_json_str(&text).map_err(|e| {
            e.render(&file)
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })?;
        let keys = if self.reload_keys && self.access.enabled() {
            Some(self.access.reload_keys()?)
        } else {
            None
        };
        let merged = {
            let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
            base.0 = config;
            discovery::merge(&base.0, &base.1)
        };
        let r = self.install(merged, keys, Some((cause, &text))).await;
        if r.is_ok() {
            self.rediscover.notify_one();
        }
        r
    }

    /// Swaps `config` in: the registry, then the listings, then the monitor's list. `file` is
    /// the cause and text of a file reload, which the console's history records (discovery's
    /// merges are not file versions).
    async fn install(
        &self,
        config: ModelsConfig,
        keys: Option<usize>,
        file: Option<(&str, &str)>,
    ) -> Result<Reloaded, Vec<String>> {
        let summary = self
            .registry
            .send(Reload {
                config: config.clone(),
            })
            .await
            .map_err(|e| vec![format!("the registry is unavailable: {e}")])?;
        let mut version = None;
        if config != *self.live.current() {
            self.live.store(config);
            if let Some((cause, text)) = file {
                version = self.record(cause, text);
            }
        }
        if self.monitor.is_some() || self.metrics.is_some() {
            if let Ok(list) = self.registry.send(GetProviders).await {
                if let Some(m) = &self.metrics {
                    m.set_providers(list.iter().map(|(s, _)| s.clone()).collect());
                }
                if let Some(monitor) = &self.monitor {
                    monitor.do_send(SetProviders(list));
                }
            }
        }
        let d = summary.diff;
        let mut added = d.added;
        added.extend(d.replaced.iter().cloned());
        let mut removed = d.removed;
        removed.extend(d.replaced);
        Ok(Reloaded {
            models: summary.models,
            providers: summary.providers,
            added,
            removed,
            changed: d.changed,
            models_added: d.models_added,
            models_removed: d.models_removed,
            keys,
            version,
        })
    }

    /// Checks the file every `every` and reloads when its contents changed. Runs until the
    /// System stops.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if self.file_changed() {
                let _ = self.reload("file changed").await;
            }
        }
    }

    /// Listens for SIGHUP now (so a signal sent as soon as the server answers is not lost) and
    /// returns the loop that reloads on each one, until the System stops.
    #[cfg(unix)]
    pub fn on_sighup(self: Arc<Self>) -> std::io::Result<impl std::future::Future<Output = ()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        Ok(async move {
            while hup.recv().await.is_some() {
                let _ = self.reload("SIGHUP").await;
            }
        })
    }
}

/// `POST /router/reload`: 200 with what changed, or 400 listing every problem.
pub async fn reload(reloader: web::Data<Reloader>) -> HttpResponse {
    match reloader.reload("POST /router/reload").await {
        Ok(r) => json_response(
            StatusCode::OK,
            &json!({
                "status": "reloaded",
                "models": r.models,
                "providers": r.providers,
                "added": r.added,
                "removed": r.removed,
                "changed": r.changed,
                "models_added": r.models_added,
                "models_removed": r.models_removed,
                "keys": r.keys,
                "version": r.version,
            }),
        ),
        Err(problems) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": {
                "message": format!(
                    "configuration not reloaded ({} problem{}); the running configuration stays",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                ),
                "type": "invalid_request_error",
                "param": null,
                "code": 400,
                "problems": problems,
            }}),
        ),
    }
}
