//! The Ollama wire: native `/api/...` paths, NDJSON streams whose last line has `"done": true`,
//! `GET /` as the probe, and `keep_alive` pings with empty messages.

use std::time::Duration;

use serde_json::json;

use super::{bearer, Endpoint, Framing, Profile};
use crate::config::{ApiType, ProviderConfig};

pub struct OllamaWire;

impl Profile for OllamaWire {
    fn path(&self, endpoint: Endpoint) -> Option<&'static str> {
        Some(match endpoint {
            Endpoint::Chat => "/api/chat",
            Endpoint::Completion => "/api/generate",
            Endpoint::Embeddings => "/api/embed",
            Endpoint::LegacyEmbeddings => "/api/embeddings",
        })
    }

    fn credentials(
        &self,
        p: &ProviderConfig,
        add: &mut dyn FnMut(&'static str, &'static str, &str),
    ) {
        // Ollama itself takes no credentials; a proxy in front of it may want a Bearer token.
        bearer(p, add)
    }

    fn stream_content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn stream_framing(&self) -> Framing {
        Framing::Ndjson
    }

    fn probe_path(&self, _: ApiType) -> &'static str {
        "/"
    }

    fn keepalive_ping(
        &self,
        model: &str,
        keep: Duration,
    ) -> Option<(&'static str, serde_json::Value)> {
        // An empty chat loads the model and resets its keep-alive window without generating.
        Some((
            "/api/chat",
            json!({"model": model, "messages": [], "stream": false,
                   "keep_alive": format!("{}s", keep.as_secs())}),
        ))
    }
}
