//! Model discovery (SPEC §7): what a `"discover": true` provider's host lists, and the models
//! config that serves it.
//!
//! - [`list`] asks one host for its models: OpenAI-wire hosts `GET /v1/models` (`data[].id`),
//!   Ollama `GET /api/tags` (`models[].name`, with `size`).
//! - [`merge`] is pure: the file's config plus the last good listing of every discovering
//!   provider gives the config to run. Each found model `m` of provider `p` becomes a provider
//!   with id `<p>/<m>` (its host, token, limits and weights copied from `p`, `model_path` = `m`)
//!   of the public model `<p>/<m>` — or `m` with `"discover_as": "name"`, where every host
//!   listing `m` serves it together. A configured model of the same name wins (the found one is
//!   skipped). Discovered models never carry `pinned` nor `keep_alive` (both name the
//!   provider's own model: keeping every model of a host warm would fill its memory).
//!
//! The periodic task that calls both and installs the result through the one reload path lives
//! in the HTTP crate (`src/discovery.rs`): a model set only ever changes through `Reload`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

use crate::config::{ApiType, DiscoverAs, ModelConfig, ModelsConfig, ProviderConfig};
use crate::monitors::{client, request};

/// The group discovered models are listed under.
pub const DISCOVERED_GROUP: &str = "discovered";

/// One model a host listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    /// Bytes on disk (Ollama's `size`), when the listing says.
    pub size: Option<u64>,
}

/// The last good listing of each discovering provider, by provider id.
pub type Listings = BTreeMap<String, Vec<Found>>;

/// The providers of `c` with `"discover": true`.
pub fn discovering(c: &ModelsConfig) -> Vec<&ProviderConfig> {
    c.all()
        .flat_map(|m| m.providers.iter())
        .filter(|p| p.host.discover.is_some())
        .collect()
}

/// A client for listings (no pool cap, explicit timeouts); build it on the thread that uses it.
pub fn listing_client() -> awc::Client {
    client()
}

/// The path a provider of this type lists its models at.
pub fn listing_path(t: ApiType) -> &'static str {
    match t {
        ApiType::Ollama => "/api/tags",
        _ => "/v1/models",
    }
}

/// Asks `p`'s host for its models. The error says what went wrong without the host's address.
pub async fn list(
    client: &awc::Client,
    p: &ProviderConfig,
    timeout: Duration,
) -> Result<Vec<Found>, String> {
    let path = listing_path(p.api_type);
    let req = request(client, awc::http::Method::GET, p, path).timeout(timeout);
    let mut res = req.send().await.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => {
            format!("GET {path}: no answer within {:.1}s", timeout.as_secs_f64())
        }
        _ => format!("GET {path}: connection failed"),
    })?;
    if !res.status().is_success() {
        return Err(format!("GET {path}: HTTP {}", res.status().as_u16()));
    }
    let body = res
        .body()
        .limit(8 << 20)
        .await
        .map_err(|_| format!("GET {path}: the listing broke off"))?;
    parse_listing(p.api_type, &body).map_err(|e| format!("GET {path}: {e}"))
}

/// Reads a listing: Ollama's `{"models": [{"name", "size"}]}` or OpenAI's `{"data": [{"id"}]}`.
pub fn parse_listing(t: ApiType, body: &[u8]) -> Result<Vec<Found>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the listing is not JSON")?;
    let (key, name_keys): (&str, &[&str]) = match t {
        ApiType::Ollama => ("models", &["name", "model"]),
        _ => ("data", &["id"]),
    };
    let items = v
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("the listing has no \"{key}\" list"))?;
    let mut out: Vec<Found> = items
        .iter()
        .filter_map(|m| {
            let name = name_keys
                .iter()
                .find_map(|k| m.get(*k).and_then(Value::as_str))
                .filter(|n| !n.is_empty())?;
            Some(Found {
                name: name.to_string(),
                size: m.get("size").and_then(Value::as_u64),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

/// The public model name and provider id of model `found` on discovering provider `p`.
pub fn names(p: &ProviderConfig, how: DiscoverAs, found: &str) -> (String, String) {
    let id = format!("{}/{found}", p.id);
    match how {
        DiscoverAs::ProviderId => (id.clone(), id),
        DiscoverAs::Name => (found.to_string(), id),
    }
}

/// `base` (the file's config) with every listed model served (see the module docs).
pub fn merge(base: &ModelsConfig, found: &Listings) -> ModelsConfig {
    let configured: HashSet<&str> = base.all().map(|m| m.name.as_str()).collect();
    let mut ids: HashSet<String> = base
        .all()
        .flat_map(|m| m.providers.iter().map(|p| p.id.clone()))
        .collect();
    let mut added: Vec<ModelConfig> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for p in discovering(base) {
        let Some(how) = p.host.discover else { continue };
        for f in found.get(&p.id).into_iter().flatten() {
            let (public, id) = names(p, how, &f.name);
            if configured.contains(public.as_str()) {
                tracing::debug!(provider = %p.id, model = %public,
                    "a configured model of this name exists; the discovered one is not added");
                continue;
            }
            if !ids.insert(id.clone()) {
                continue;
            }
            let mut q = p.clone();
            q.id = id;
            q.model_path = f.name.clone();
            q.host.discover = None;
            q.host.pinned = false;
            q.keep_alive = None;
            let at = *index.entry(public.clone()).or_insert_with(|| {
                added.push(ModelConfig {
                    name: public.clone(),
                    group: DISCOVERED_GROUP.to_string(),
                    ..ModelConfig::default()
                });
                added.len() - 1
            });
            added[at].providers.push(q);
        }
    }
    let mut out = base.clone();
    out.models.extend(added);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ModelsConfig {
        ModelsConfig::from_json_str(
            r#"{"g": {
                 "local": {"providers": [
                   {"id": "gpu1", "api_host": "http://h1:11434", "api_type": "ollama",
                    "discover": true, "pinned": true, "vram_mb": 8000, "model_path": "llama3:8b",
                    "keep_alive": "10m",
                    "priority": 2}]},
                 "replicas": {"providers": [
                   {"id": "gpu2", "api_host": "http://h2:11434", "api_type": "ollama",
                    "discover": true, "discover_as": "name"},
                   {"id": "vl", "api_host": "http://h3:8000", "api_type": "vllm",
                    "discover": true, "discover_as": "name"}]},
                 "qwen": {"providers": [
                   {"id": "q", "api_host": "http://h4:8000", "api_type": "vllm"}]}},
               "active_models": {"g": ["local", "replicas", "qwen"]}}"#,
        )
        .unwrap()
    }

    fn found(names: &[&str]) -> Vec<Found> {
        names
            .iter()
            .map(|n| Found {
                name: n.to_string(),
                size: None,
            })
            .collect()
    }

    fn providers_of<'a>(c: &'a ModelsConfig, model: &str) -> Vec<&'a str> {
        c.models
            .iter()
            .find(|m| m.name == model)
            .map(|m| m.providers.iter().map(|p| p.id.as_str()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn found_models_are_served_under_their_names() {
        let mut l = Listings::new();
        l.insert("gpu1".into(), found(&["llama3:8b", "phi3:mini"]));
        l.insert("gpu2".into(), found(&["mistral:7b", "qwen"]));
        l.insert("vl".into(), found(&["mistral:7b"]));
        let c = merge(&base(), &l);
        assert_eq!(
            c.model_names(),
            vec![
                "local",
                "replicas",
                "qwen",
                "gpu1/llama3:8b",
                "gpu1/phi3:mini",
                "mistral:7b"
            ]
        );
        // `discover_as: name`: both hosts listing it serve it; the configured "qwen" wins.
        assert_eq!(
            providers_of(&c, "mistral:7b"),
            vec!["gpu2/mistral:7b", "vl/mistral:7b"]
        );
        assert_eq!(providers_of(&c, "qwen"), vec!["q"]);
        let p = &c.model("gpu1/phi3:mini").unwrap().providers[0];
        assert_eq!(p.model_path, "phi3:mini");
        assert_eq!(p.api_host, "http://h1:11434");
        assert_eq!(p.priority, 2);
        assert_eq!(p.host.vram_mb, Some(8000));
        assert!(!p.host.pinned && p.host.discover.is_none() && p.keep_alive.is_none());
        assert_eq!(c.model("gpu1/phi3:mini").unwrap().group, DISCOVERED_GROUP);
    }

    #[test]
    fn nothing_listed_is_the_file_config_and_a_gone_model_is_not_served() {
        assert_eq!(merge(&base(), &Listings::new()), base());
        let mut l = Listings::new();
        l.insert("gpu1".into(), found(&["a", "b"]));
        assert!(merge(&base(), &l).model("gpu1/b").is_some());
        l.insert("gpu1".into(), found(&["a"]));
        let c = merge(&base(), &l);
        assert!(c.models.iter().all(|m| m.name != "gpu1/b"));
        // A listing of a provider no longer in the file is ignored.
        l.insert("gone".into(), found(&["x"]));
        assert_eq!(merge(&base(), &l), c);
    }

    #[test]
    fn listings_of_both_wires_are_read() {
        let ollama = br#"{"models": [{"name": "b:latest", "model": "b:latest", "size": 42},
                                      {"model": "a"}, {"name": ""}]}"#;
        assert_eq!(
            parse_listing(ApiType::Ollama, ollama).unwrap(),
            vec![
                Found {
                    name: "a".into(),
                    size: None
                },
                Found {
                    name: "b:latest".into(),
                    size: Some(42)
                }
            ]
        );
        let openai = br#"{"object": "list", "data": [{"id": "m2"}, {"id": "m1"}, {"id": "m1"}]}"#;
        let names: Vec<String> = parse_listing(ApiType::Vllm, openai)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, vec!["m1", "m2"]);
        assert!(parse_listing(ApiType::Ollama, b"[]")
            .unwrap_err()
            .contains("\"models\""));
        assert!(parse_listing(ApiType::OpenAi, b"nope")
            .unwrap_err()
            .contains("not JSON"));
    }
}
