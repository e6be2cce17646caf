//! The OpenAI wire (OpenAI, vLLM, LM Studio, llama.cpp servers): `/v1/...` paths, Bearer auth,
//! SSE streams ending `data: [DONE]`.

use std::time::Duration;

use serde_json::json;

use super::{bearer, Endpoint, Framing, Profile};
use crate::config::{ApiType, ProviderConfig};

pub struct OpenAiWire;

impl Profile for OpenAiWire {
    fn path(&self, endpoint: Endpoint) -> Option<&'static str> {
        match endpoint {
            Endpoint::Chat => Some("/v1/chat/completions"),
            Endpoint::Completion => Some("/v1/completions"),
            Endpoint::Embeddings => Some("/v1/embeddings"),
            Endpoint::LegacyEmbeddings => None,
        }
    }

    fn credentials(
        &self,
        p: &ProviderConfig,
        add: &mut dyn FnMut(&'static str, &'static str, &str),
    ) {
        bearer(p, add)
    }

    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    fn stream_framing(&self) -> Framing {
        Framing::Sse
    }

    fn probe_path(&self, t: ApiType) -> &'static str {
        match t {
            // Self-hosted servers answer `/health` without credentials or a model list.
            ApiType::Vllm | ApiType::LlamaCpp => "/health",
            ApiType::OpenAi | ApiType::LmStudio | ApiType::Ollama | ApiType::Anthropic => {
                "/v1/models"
            }
        }
    }

    fn keepalive_ping(
        &self,
        model: &str,
        _: Duration,
    ) -> Option<(&'static str, serde_json::Value)> {
        Some((
            "/v1/chat/completions",
            json!({"model": model, "max_tokens": 1, "stream": false,
                   "messages": [{"role": "user", "content": "."}]}),
        ))
    }
}
