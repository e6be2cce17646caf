//! `langchain_rag` (SPEC §7): retrieval-augmented generation over local collections.
//!
//! - [`chunk`] splits documents (characters, with overlap); [`index`] keeps each collection's
//!   chunks and vectors in memory and in one file under `LLM_ROUTER_LANGCHAIN_RAG_PERSIST_DIR`
//!   (exact cosine top-k); [`context`] finds a request's last user text and appends the
//!   retrieved chunks in the original plugin's wording.
//! - Vectors come from the configured embedding model **through the router itself**
//!   ([`crate::relay::run_body`]): its providers, failover and fallbacks, in-process, no loopback
//!   HTTP. The router's state is reached through a `Weak` set once it exists (the stage lives in
//!   that state), so nothing keeps a stopped router alive.
//! - [`RagStage`] is a request stage (first in the pipeline, as utils plugins are): a request is
//!   either sent with its context or refused — unknown or empty collection 404, embedding model
//!   failing 502 naming it — never answered without it.
//! - The HTTP side (ingest, show, delete) is `crate::handlers::rag`.

pub mod chunk;
pub mod context;
pub mod index;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};

use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use crate::dialects::embeddings::Shape;
use crate::errors::RouterError;
use crate::handlers::AppState;
use crate::relay::stages::{RequestContext, RequestStage};
use crate::relay::ClientApi;

/// The plugin's name in `LLM_ROUTER_UTILS_PLUGINS_PIPELINE`.
pub const NAME: &str = "langchain_rag";

/// `(name, default, meaning)`, for parsing and `--help`.
pub const VARS: &[(&str, &str, &str)] = &[
    (
        "LLM_ROUTER_LANGCHAIN_RAG_COLLECTION",
        "",
        "langchain_rag: the collection whose chunks are appended to every request (required with the plugin)",
    ),
    (
        "LLM_ROUTER_LANGCHAIN_RAG_EMBEDDER",
        "",
        "langchain_rag: the embedding model, a configured model whose providers are is_embedding (required with the plugin)",
    ),
    (
        "LLM_ROUTER_LANGCHAIN_RAG_CHUNK_SIZE",
        "400",
        "langchain_rag: characters per chunk",
    ),
    (
        "LLM_ROUTER_LANGCHAIN_RAG_CHUNK_OVERLAP",
        "100",
        "langchain_rag: characters shared by neighbouring chunks (less than the chunk size)",
    ),
    (
        "LLM_ROUTER_LANGCHAIN_RAG_TOP_K",
        "10",
        "langchain_rag: chunks appended to a request",
    ),
    (
        "LLM_ROUTER_LANGCHAIN_RAG_PERSIST_DIR",
        "data/rag",
        "langchain_rag: directory of the collections' index files",
    ),
    (
        "LLM_ROUTER_LANGCHAIN_RAG_DEVICE",
        "",
        "accepted for compatibility, no effect (embeddings come from the embedding model)",
    ),
];

/// Inputs per embeddings call when ingesting.
const EMBED_BATCH: usize = 64;

#[derive(Clone, Debug)]
pub struct RagSettings {
    pub collection: String,
    pub embedder: String,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
    pub top_k: usize,
    pub persist_dir: PathBuf,
}

impl RagSettings {
    /// The plugin's settings (called when `LLM_ROUTER_UTILS_PLUGINS_PIPELINE` names it; the
    /// pipeline itself is parsed by [`crate::smart::SmartSettings`]); problems go to `errs`. `models`: the loaded models config (the embedder must be one of its models).
    pub fn from_vars(
        get: &dyn Fn(&str) -> String,
        models: &llm_router_actors::ModelsConfig,
        errs: &mut Vec<String>,
    ) -> RagSettings {
        let mut number = |var: &str, min: usize| -> usize {
            let raw = get(var);
            match raw.trim().parse::<usize>() {
                Ok(n) if n >= min => n,
                _ => {
                    errs.push(format!(
                        "{var}: expected a whole number ≥ {min}, got \"{raw}\""
                    ));
                    min
                }
            }
        };
        let chunk_size = number("LLM_ROUTER_LANGCHAIN_RAG_CHUNK_SIZE", 1);
        let chunk_overlap = number("LLM_ROUTER_LANGCHAIN_RAG_CHUNK_OVERLAP", 0);
        let top_k = number("LLM_ROUTER_LANGCHAIN_RAG_TOP_K", 1);
        if chunk_overlap >= chunk_size {
            errs.push(format!(
                "LLM_ROUTER_LANGCHAIN_RAG_CHUNK_OVERLAP: {chunk_overlap} must be less than \
                 LLM_ROUTER_LANGCHAIN_RAG_CHUNK_SIZE ({chunk_size})"
            ));
        }
        let collection = get("LLM_ROUTER_LANGCHAIN_RAG_COLLECTION")
            .trim()
            .to_string();
        if !index::valid_name(&collection) {
            errs.push(format!(
                "LLM_ROUTER_LANGCHAIN_RAG_COLLECTION: {NAME} needs a collection name \
                 (1–64 of A-Z a-z 0-9 _ - ., not starting with .), got \"{collection}\""
            ));
        }
        let embedder = get("LLM_ROUTER_LANGCHAIN_RAG_EMBEDDER").trim().to_string();
        match models.model(&embedder) {
            _ if embedder.is_empty() => errs.push(format!(
                "LLM_ROUTER_LANGCHAIN_RAG_EMBEDDER: {NAME} needs an embedding model (a configured model with is_embedding providers)"
            )),
            None => errs.push(format!(
                "LLM_ROUTER_LANGCHAIN_RAG_EMBEDDER: \"{embedder}\" is not an active model of the models config"
            )),
            Some(m) if !m.providers.iter().any(|p| p.is_embedding) => errs.push(format!(
                "LLM_ROUTER_LANGCHAIN_RAG_EMBEDDER: model \"{embedder}\" has no provider with \"is_embedding\": true"
            )),
            Some(_) => {}
        }
        RagSettings {
            collection,
            embedder,
            chunk_size,
            chunk_overlap,
            top_k,
            persist_dir: PathBuf::from(get("LLM_ROUTER_LANGCHAIN_RAG_PERSIST_DIR")),
        }
    }
}

/// The plugin: its settings, the index and the way back to the router for embeddings.
pub struct Rag {
    pub settings: RagSettings,
    pub index: index::Index,
    state: OnceLock<Weak<AppState>>,
}

impl Rag {
    /// Opens the index (every collection file is read now; a bad one is a start-up error).
    pub fn open(settings: RagSettings) -> std::io::Result<Rag> {
        let index = index::Index::open(&settings.persist_dir).map_err(std::io::Error::other)?;
        tracing::info!(
            dir = %settings.persist_dir.display(),
            collections = index.names().len(),
            collection = %settings.collection,
            embedder = %settings.embedder,
            "langchain_rag ready"
        );
        Ok(Rag {
            settings,
            index,
            state: OnceLock::new(),
        })
    }

    /// Connects the plugin to the router it serves (once, right after the state is made).
    pub fn attach(&self, state: &Arc<AppState>) {
        let _ = self.state.set(Arc::downgrade(state));
    }

    /// Embeds `texts` with the embedding model, through the router's own relay. Any failure
    /// (providers down, an answer without the vectors) is [`RouterError::EmbedderFailed`].
    pub async fn embed(
        &self,
        client: &awc::Client,
        request_id: &str,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, RouterError> {
        let model = &self.settings.embedder;
        let failed = |cause: String| RouterError::EmbedderFailed {
            model: model.clone(),
            cause,
        };
        let state = self
            .state
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| failed("the router is not running".into()))?;
        let body = json!({"model": model, "input": texts}).to_string();
        let res = crate::relay::run_body(
            &state,
            client,
            ClientApi::Embed(Shape::OpenAi),
            request_id,
            body.into(),
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        if !res.status().is_success() {
            return Err(failed(format!("answered {}", res.status())));
        }
        let bytes = actix_web::body::to_bytes(res.into_body())
            .await
            .map_err(|e| failed(format!("reading the answer: {e}")))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| failed(format!("the answer is not JSON: {e}")))?;
        let mut rows: Vec<(u64, Vec<f32>)> = Vec::with_capacity(texts.len());
        for (i, d) in v["data"].as_array().into_iter().flatten().enumerate() {
            let index = d["index"].as_u64().unwrap_or(i as u64);
            let vector: Option<Vec<f32>> = d["embedding"]
                .as_array()
                .and_then(|a| a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect());
            let vector = vector
                .ok_or_else(|| failed(format!("data[{i}].embedding is not a list of numbers")))?;
            rows.push((index, vector));
        }
        rows.sort_by_key(|r| r.0);
        if rows.len() != texts.len() {
            return Err(failed(format!(
                "{} vectors for {} inputs",
                rows.len(),
                texts.len()
            )));
        }
        let dims = rows.first().map_or(0, |r| r.1.len());
        if dims == 0 || rows.iter().any(|r| r.1.len() != dims) {
            return Err(failed("vectors of no or differing dimensions".into()));
        }
        Ok(rows.into_iter().map(|r| r.1).collect())
    }

    /// Embeds `texts` in batches of [`EMBED_BATCH`].
    pub async fn embed_all(
        &self,
        client: &awc::Client,
        request_id: &str,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, RouterError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            out.extend(self.embed(client, request_id, batch).await?);
        }
        Ok(out)
    }

    /// The top chunks of `collection` for `query`, best first. Unknown or empty collection →
    /// 404; a vector of another width than the collection's → 502 naming the embedder.
    pub async fn retrieve(
        &self,
        client: &awc::Client,
        request_id: &str,
        collection: &str,
        query: &str,
    ) -> Result<Vec<String>, RouterError> {
        let c = self
            .index
            .get(collection)
            .filter(|c| !c.chunks.is_empty())
            .ok_or_else(|| RouterError::CollectionNotFound {
                name: collection.to_string(),
                known: self.index.names(),
            })?;
        let q = self
            .embed(client, request_id, &[query.to_string()])
            .await?
            .pop()
            .unwrap_or_default();
        if q.len() != c.dims {
            return Err(RouterError::EmbedderFailed {
                model: self.settings.embedder.clone(),
                cause: format!(
                    "gave {} dimensions; collection \"{collection}\" holds {} (delete it and ingest again)",
                    q.len(),
                    c.dims
                ),
            });
        }
        Ok(c.top_k(&q, self.settings.top_k)
            .into_iter()
            .map(|(_, ch)| ch.text.clone())
            .collect())
    }
}

/// The request stage: the configured collection's top chunks for the last user text, appended
/// to it (see the module docs).
pub struct RagStage(pub Arc<Rag>);

impl RequestStage for RagStage {
    fn apply<'a>(
        &'a self,
        api: ClientApi,
        client: &'a awc::Client,
        body: &'a mut BytesMut,
        ctx: &'a mut RequestContext,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            if matches!(api, ClientApi::Embed(_)) {
                return Ok(());
            }
            let mut v: Value = serde_json::from_slice(body).map_err(|e| {
                RouterError::bad_request(format!("the request body is not valid JSON: {e}"), None)
            })?;
            let (text, slot) = match context::locate(api, ctx.builtin, &v) {
                Ok(Some(found)) => found,
                Ok(None) => return Ok(()),
                Err(field) => {
                    return Err(RouterError::bad_request(
                        format!("{NAME}: the request has no user text to retrieve context for (field \"{field}\")"),
                        Some(field),
                    ))
                }
            };
            let rag = &self.0;
            let rid = format!("rag-{}", uuid_like());
            let chunks = rag
                .retrieve(client, &rid, &rag.settings.collection, &text)
                .await?;
            let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
            context::write(&mut v, &slot, context::extend(&text, &refs));
            body.clear();
            body.extend_from_slice(v.to_string().as_bytes());
            tracing::debug!(chunks = chunks.len(), collection = %rag.settings.collection, "langchain_rag: context appended");
            Ok(())
        })
    }
}

/// A short id for the embedding calls' `x-request-id` (logs only).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{:x}", N.fetch_add(1, Ordering::Relaxed))
}
