//! The Anthropic wire: `/v1/messages`, `x-api-key` + `anthropic-version` (never Bearer), and the
//! `event:`/`data:` stream ending with `message_stop`.

use std::time::Duration;

use super::{Endpoint, Framing, Profile};
use crate::config::{ApiType, ProviderConfig};

/// The API version sent to `anthropic`-type providers.
pub const API_VERSION: &str = "2023-06-01";

pub struct AnthropicWire;

impl Profile for AnthropicWire {
    fn path(&self, endpoint: Endpoint) -> Option<&'static str> {
        match endpoint {
            Endpoint::Chat => Some("/v1/messages"),
            Endpoint::Completion | Endpoint::Embeddings | Endpoint::LegacyEmbeddings => None,
        }
    }

    fn credentials(
        &self,
        p: &ProviderConfig,
        add: &mut dyn FnMut(&'static str, &'static str, &str),
    ) {
        add("anthropic-version", "", API_VERSION);
        if !p.api_token.is_empty() {
            add("x-api-key", "", p.api_token.expose());
        }
    }

    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    fn stream_framing(&self) -> Framing {
        Framing::AnthropicSse
    }

    fn probe_path(&self, _: ApiType) -> &'static str {
        "/v1/models"
    }

    fn keepalive_ping(&self, _: &str, _: Duration) -> Option<(&'static str, serde_json::Value)> {
        // A hosted API keeps nothing loaded for us.
        None
    }
}
