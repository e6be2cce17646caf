//! VRAM management for Ollama hosts (`LLM_ROUTER_OLLAMA_VRAM_MANAGEMENT=1`, SPEC §7).
//!
//! Before a request is sent to an Ollama provider, [`VramManager::make_room`] checks the host:
//! `GET /api/ps` says what is loaded (`size_vram` each); the host's capacity is the largest
//! `vram_mb` of the providers on that `api_host` (a host without one is not managed: Ollama
//! reports no total memory). The model's size is what `/api/ps` showed when it was last loaded,
//! else its `size` in `GET /api/tags`. [`plan`] decides; this side does the I/O: unload the
//! victims (`POST /api/generate {"model", "keep_alive": 0}`, Ollama's documented unload),
//! watch `/api/ps` until they are gone, and look again — or wait for busy models to go idle —
//! until the request's deadline. A model that can never fit (pinned models hold the rest) or
//! a deadline reached first is a [`NoRoom`] (the relay answers 503 naming the provider).
//!
//! One planner per host at a time (a tokio mutex per `api_host`, let go while waiting for busy
//! models), and a load this router let
//! through counts as busy until `/api/ps` lists it (up to [`RESERVE_FOR`]), so two requests
//! cannot both take the same free memory. "Busy" is this router's in-flight count
//! ([`ProviderSnapshot::in_flight`] of every provider serving that model on the host); requests
//! sent by other clients or replicas are not seen. A model `/api/ps` listed within [`FRESH`] is
//! sent at once (no lock, no round trip): the per-request cost on a warm host is one map lookup.
//! If the host cannot be asked (`/api/ps` fails), the request goes ahead unmanaged: VRAM
//! management never makes a request fail that Ollama might have served. A reading that runs
//! out of time after a round that waited for busy models is the deadline reached (the 503
//! naming them), not a host that cannot be asked.

pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Addr;
use serde_json::{json, Value};

use crate::config::{ApiType, ProviderConfig};
use crate::monitors::request;
use crate::provider::ProviderSnapshot;
use crate::registry::{GetProviders, ModelRegistry};
pub use plan::{plan, same_model, Resident, Verdict};

/// How long a load this router let through counts as resident before `/api/ps` lists it.
pub const RESERVE_FOR: Duration = Duration::from_secs(30);
/// A model `/api/ps` listed this recently is taken as loaded without asking again (the fast
/// path: no lock, no round trip).
pub const FRESH: Duration = Duration::from_secs(1);
/// How often `/api/ps` is read while waiting for an unload or for busy models.
const POLL: Duration = Duration::from_millis(50);
const MIB: u64 = 1 << 20;

/// Why the model could not be given room on its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoRoom {
    /// The provider the request was for (names the host without its address).
    pub provider: String,
    pub model: String,
    pub detail: String,
}

impl std::fmt::Display for NoRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the Ollama host of provider \"{}\" has no room for model \"{}\": {}",
            self.provider, self.model, self.detail
        )
    }
}

#[derive(Default)]
struct HostMemo {
    /// Bytes each model took when last seen loaded (or its listed size).
    sizes: HashMap<String, u64>,
    /// Loads let through and not yet listed by `/api/ps`: model → (bytes, until).
    reserved: HashMap<String, (u64, Instant)>,
}

/// Shared by every worker; cheap to clone.
#[derive(Clone)]
pub struct VramManager {
    registry: Addr<ModelRegistry>,
    hosts: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<HostMemo>>>>>,
    /// When `/api/ps` last listed each (host, model).
    seen: Arc<Mutex<HashMap<(String, String), Instant>>>,
}

/// One `/api/ps` entry.
struct Loaded {
    name: String,
    bytes: u64,
    expires_at: String,
}

impl VramManager {
    pub fn new(registry: Addr<ModelRegistry>) -> VramManager {
        VramManager {
            registry,
            hosts: Arc::default(),
            seen: Arc::default(),
        }
    }

    /// Whether `/api/ps` listed `model` on `host` within [`FRESH`].
    fn fresh(&self, host: &str, model: &str, now: Instant) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().any(|((h, m), at)| {
            h == host && same_model(m, model) && now.saturating_duration_since(*at) < FRESH
        })
    }

    /// Records one `/api/ps` reading of `host` (models not listed are forgotten).
    fn saw(&self, host: &str, loaded: &[Loaded], now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|(h, _), _| h != host);
        for l in loaded {
            seen.insert((host.to_string(), l.name.clone()), now);
        }
    }

    fn host(&self, api_host: &str) -> Arc<tokio::sync::Mutex<HostMemo>> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.entry(api_host.to_string()).or_default().clone()
    }

    /// Makes room for `model` on `p`'s host before a request is sent (see the module docs).
    pub async fn make_room(
        &self,
        client: &awc::Client,
        p: &ProviderConfig,
        model: &str,
        deadline: Instant,
    ) -> Result<(), NoRoom> {
        if p.api_type != ApiType::Ollama {
            return Ok(());
        }
        let no_room = |detail: String| NoRoom {
            provider: p.id.clone(),
            model: model.to_string(),
            detail,
        };
        if self.fresh(&p.api_host, model, Instant::now()) {
            return Ok(());
        }
        let host = self.host(&p.api_host);
        let busy_message = |need: u64, busy: &[String]| {
            format!(
                "it needs {} MiB and the models holding the rest stayed busy until the \
                 request's deadline: {}",
                need.div_ceil(MIB),
                busy.join(", ")
            )
        };
        // What the last round waited for: a reading that misses the deadline after that is
        // the deadline reached, not a host that cannot be asked.
        let mut waited: Option<(u64, Vec<String>)> = None;
        loop {
            // Held while planning and unloading, not while waiting for busy models: requests
            // for models already loaded are not held up by one that waits.
            let mut memo = tokio::time::timeout_at(deadline.into(), host.lock())
                .await
                .map_err(|_| no_room("timed out waiting for another load on this host".into()))?;
            let Ok(providers) = self.registry.send(GetProviders).await else {
                return Ok(());
            };
            let on_host: Vec<Arc<ProviderSnapshot>> = providers
                .into_iter()
                .map(|(s, _)| s)
                .filter(|s| s.config.api_host == p.api_host)
                .collect();
            let Some(capacity) = on_host.iter().filter_map(|s| s.config.host.vram_mb).max() else {
                return Ok(());
            };
            let capacity = capacity * MIB;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Some(loaded) = ps(client, p, remaining.min(Duration::from_secs(2))).await else {
                if let Some((need, busy)) = waited.filter(|_| Instant::now() >= deadline) {
                    return Err(no_room(busy_message(need, &busy)));
                }
                tracing::warn!(provider = %p.id, "VRAM management: /api/ps unanswered; sending unmanaged");
                return Ok(());
            };
            let now = Instant::now();
            self.saw(&p.api_host, &loaded, now);
            for l in &loaded {
                memo.sizes.insert(l.name.clone(), l.bytes);
            }
            memo.reserved.retain(|m, (_, until)| {
                *until > now && !loaded.iter().any(|l| same_model(&l.name, m))
            });
            let need = match known_size(&memo.sizes, model) {
                Some(n) => n,
                None => match tags_size(client, p, model, remaining).await {
                    Some(n) => {
                        memo.sizes.insert(model.to_string(), n);
                        n
                    }
                    None => return Ok(()),
                },
            };
            let model_of = |s: &ProviderSnapshot| s.config.upstream_model(&s.model).to_string();
            let mut resident: Vec<Resident> = loaded
                .iter()
                .map(|l| Resident {
                    name: l.name.clone(),
                    bytes: l.bytes,
                    expires_at: l.expires_at.clone(),
                    pinned: on_host
                        .iter()
                        .any(|s| s.config.host.pinned && same_model(&model_of(s), &l.name)),
                    busy: on_host
                        .iter()
                        .any(|s| s.in_flight() > 0 && same_model(&model_of(s), &l.name)),
                })
                .collect();
            resident.extend(memo.reserved.iter().map(|(m, (bytes, _))| Resident {
                name: m.clone(),
                bytes: *bytes,
                expires_at: String::new(),
                pinned: false,
                busy: true,
            }));
            let verdict = plan(capacity, &resident, model, need);
            let in_mib = |b: u64| b.div_ceil(MIB);
            match verdict {
                Verdict::Fits => {
                    if !loaded.iter().any(|l| same_model(&l.name, model)) {
                        memo.reserved
                            .insert(model.to_string(), (need, now + RESERVE_FOR));
                    }
                    return Ok(());
                }
                Verdict::Never { pinned } => {
                    let held: u64 = resident.iter().filter(|r| r.pinned).map(|r| r.bytes).sum();
                    return Err(no_room(format!(
                        "it needs {} MiB; the host has {} MiB{}",
                        in_mib(need),
                        in_mib(capacity),
                        if pinned.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " and its pinned models hold {} MiB (pinned: {})",
                                in_mib(held),
                                pinned.join(", ")
                            )
                        }
                    )));
                }
                Verdict::Unload(victims) => {
                    for v in &victims {
                        tracing::info!(provider = %p.id, model = %model, unload = %v,
                            "VRAM management: unloading an idle model to make room");
                        self.seen
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .retain(|(h, m), _| !(h == &p.api_host && m == v));
                        unload(client, p, v, remaining).await;
                    }
                    // Until they are gone (or the deadline), then plan again.
                    loop {
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        if remaining.is_zero() {
                            return Err(no_room(format!(
                                "unloading {} did not finish before the request's deadline",
                                victims.join(", ")
                            )));
                        }
                        match ps(client, p, remaining.min(Duration::from_secs(2))).await {
                            Some(now)
                                if victims.iter().any(|v| now.iter().any(|l| l.name == *v)) =>
                            {
                                tokio::time::sleep(POLL.min(remaining)).await;
                            }
                            _ => break,
                        }
                    }
                }
                Verdict::Wait { busy } => {
                    if Instant::now() + POLL >= deadline {
                        return Err(no_room(busy_message(need, &busy)));
                    }
                    waited = Some((need, busy));
                    drop(memo);
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }
}

fn known_size(sizes: &HashMap<String, u64>, model: &str) -> Option<u64> {
    sizes
        .iter()
        .find(|(m, _)| same_model(m, model))
        .map(|(_, n)| *n)
}

/// `GET /api/ps`: the loaded models, or `None` when the host does not answer properly.
async fn ps(client: &awc::Client, p: &ProviderConfig, timeout: Duration) -> Option<Vec<Loaded>> {
    let v = get_json(client, p, "/api/ps", timeout).await?;
    let models = v.get("models")?.as_array()?;
    Some(
        models
            .iter()
            .filter_map(|m| {
                let name = m.get("name").or_else(|| m.get("model"))?.as_str()?;
                Some(Loaded {
                    name: name.to_string(),
                    bytes: m
                        .get("size_vram")
                        .or_else(|| m.get("size"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    expires_at: m
                        .get("expires_at")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
            })
            .collect(),
    )
}

/// The model's `size` in `GET /api/tags`.
async fn tags_size(
    client: &awc::Client,
    p: &ProviderConfig,
    model: &str,
    timeout: Duration,
) -> Option<u64> {
    let v = get_json(client, p, "/api/tags", timeout.min(Duration::from_secs(2))).await?;
    v.get("models")?.as_array()?.iter().find_map(|m| {
        let name = m.get("name").or_else(|| m.get("model"))?.as_str()?;
        same_model(name, model)
            .then(|| m.get("size").and_then(Value::as_u64))
            .flatten()
    })
}

async fn get_json(
    client: &awc::Client,
    p: &ProviderConfig,
    path: &str,
    timeout: Duration,
) -> Option<Value> {
    let mut res = request(client, awc::http::Method::GET, p, path)
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    let body = res.body().limit(4 << 20).await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// Ollama's unload: a generate request with no prompt and `keep_alive: 0`.
async fn unload(client: &awc::Client, p: &ProviderConfig, model: &str, timeout: Duration) {
    let req = request(client, awc::http::Method::POST, p, "/api/generate")
        .timeout(timeout.min(Duration::from_secs(10)));
    match req
        .send_json(&json!({"model": model, "keep_alive": 0}))
        .await
    {
        Ok(res) if res.status().is_success() => {}
        Ok(res) => {
            tracing::warn!(provider = %p.id, unload = %model, status = res.status().as_u16(),
            "VRAM management: the unload was refused")
        }
        Err(_) => tracing::warn!(provider = %p.id, unload = %model,
            "VRAM management: the unload request failed"),
    }
}
