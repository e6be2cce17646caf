//! Wire profiles: everything that differs between provider types on the wire, one file each —
//! `openai.rs` (OpenAI, vLLM, LM Studio, llama.cpp), `ollama.rs`, `anthropic.rs`.
//!
//! A profile owns the URL paths of each endpoint, the authentication headers, the `Accept` and
//! stream content type, how a stream is framed and how its proper end is recognised
//! ([`framing`]), the health-probe path and the keep-warm ping. The request path (the root
//! crate's relay) and the monitors both use it, so adding a provider type is one profile file plus
//! one arm in [`Wire::profile`] (and, when it speaks a new format, a dialect file in the root
//! crate). What a profile does not own: the JSON bodies of requests and answers, which are the
//! dialects' (pure conversion code in the root crate).

pub mod anthropic;
pub mod framing;
pub mod ollama;
pub mod openai;

use std::time::Duration;

use crate::config::{ApiType, ProviderConfig};
pub use framing::{EndTracker, Framing};

/// A provider's wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wire {
    OpenAi,
    Ollama,
    Anthropic,
}

/// What the router asks a provider for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Chat (OpenAI chat completions, Ollama `/api/chat`, Anthropic messages).
    Chat,
    /// Single-prompt text completion (OpenAI `/v1/completions`, Ollama `/api/generate`).
    Completion,
    /// Embeddings (OpenAI `/v1/embeddings`, Ollama `/api/embed`).
    Embeddings,
    /// Ollama's legacy single-prompt embeddings (`/api/embeddings`).
    LegacyEmbeddings,
}

/// One provider type's wire knowledge (see the module docs).
pub trait Profile: Sync {
    /// The path of `endpoint`, when this wire has it.
    fn path(&self, endpoint: Endpoint) -> Option<&'static str>;
    /// The provider's credentials as its type expects them, as header lines: `add(name, prefix,
    /// value)` for each (the value is the secret; a prefix such as `Bearer ` goes before it).
    fn credentials(
        &self,
        p: &ProviderConfig,
        add: &mut dyn FnMut(&'static str, &'static str, &str),
    );
    /// [`Profile::credentials`] set on an awc request.
    fn authorise(&self, req: awc::ClientRequest, p: &ProviderConfig) -> awc::ClientRequest {
        let mut req = Some(req);
        self.credentials(p, &mut |name, prefix, value| {
            if let Some(r) = req.take() {
                req = Some(if prefix.is_empty() {
                    r.insert_header((name, value))
                } else {
                    r.insert_header((name, format!("{prefix}{value}")))
                });
            }
        });
        req.expect("the request is put back after each header")
    }
    /// Content type of this wire's streams (also sent as `Accept` on stream requests).
    fn stream_content_type(&self) -> &'static str;
    /// How a stream answer of this wire is framed.
    fn stream_framing(&self) -> Framing;
    /// The path of the health probe (`GET`, success = 2xx).
    fn probe_path(&self, t: ApiType) -> &'static str;
    /// A minimal request that keeps `model` loaded for `keep` (`None`: this wire has no use for it).
    fn keepalive_ping(
        &self,
        model: &str,
        keep: Duration,
    ) -> Option<(&'static str, serde_json::Value)>;
}

impl Wire {
    pub fn of(t: ApiType) -> Wire {
        match t {
            ApiType::OpenAi | ApiType::Vllm | ApiType::LmStudio | ApiType::LlamaCpp => Wire::OpenAi,
            ApiType::Ollama => Wire::Ollama,
            ApiType::Anthropic => Wire::Anthropic,
        }
    }

    pub fn profile(self) -> &'static dyn Profile {
        match self {
            Wire::OpenAi => &openai::OpenAiWire,
            Wire::Ollama => &ollama::OllamaWire,
            Wire::Anthropic => &anthropic::AnthropicWire,
        }
    }

    /// `Accept` for an answer of this wire.
    pub fn accept(self, stream: bool) -> &'static str {
        if stream {
            self.profile().stream_content_type()
        } else {
            "application/json"
        }
    }

    /// How an answer with this content type and length is framed.
    pub fn framing_of(self, content_type: Option<&str>, len: Option<u64>) -> Framing {
        let ct = content_type.unwrap_or("");
        let streamed =
            ct.starts_with("text/event-stream") || ct.starts_with("application/x-ndjson");
        if !streamed {
            return Framing::Whole { len };
        }
        match (
            self.profile().stream_framing(),
            ct.starts_with("application/x-ndjson"),
        ) {
            // A provider's actual content type wins over what its type usually sends.
            (_, true) => Framing::Ndjson,
            (Framing::Ndjson, false) => Framing::Sse,
            (f, false) => f,
        }
    }
}

/// `api_host` + `path`. OpenAI-style `/v1/...` paths tolerate hosts configured with a trailing
/// `/v1` (hosted APIs are often written that way); other paths are appended as they are.
pub fn url(p: &ProviderConfig, path: &str) -> String {
    let host = &p.api_host;
    // An OpenAI-style base URL already names the API version: `…/v1`, or a versioned prefix
    // such as DeepInfra's `https://api.deepinfra.com/v1/openai`.
    static V1: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"/v1/"));
    let after_scheme = host.find("://").map_or(0, |i| i + 3);
    let versioned = host.ends_with("/v1") || V1.find(&host.as_bytes()[after_scheme..]).is_some();
    let path = match (versioned, path.strip_prefix("/v1")) {
        (true, Some(rest)) => rest,
        _ => path,
    };
    let mut url = String::with_capacity(host.len() + path.len());
    url.push_str(host);
    url.push_str(path);
    url
}

/// Adds a Bearer token when the provider has one (the OpenAI-wire and Ollama way).
pub(crate) fn bearer(p: &ProviderConfig, add: &mut dyn FnMut(&'static str, &'static str, &str)) {
    if !p.api_token.is_empty() {
        add("authorization", "Bearer ", p.api_token.expose());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_type_has_a_wire_and_a_probe() {
        let cases = [
            (ApiType::OpenAi, Wire::OpenAi, "/v1/models"),
            (ApiType::Vllm, Wire::OpenAi, "/health"),
            (ApiType::LmStudio, Wire::OpenAi, "/v1/models"),
            (ApiType::LlamaCpp, Wire::OpenAi, "/health"),
            (ApiType::Ollama, Wire::Ollama, "/"),
            (ApiType::Anthropic, Wire::Anthropic, "/v1/models"),
        ];
        for (t, wire, probe) in cases {
            assert_eq!(Wire::of(t), wire, "{t:?}");
            assert_eq!(wire.profile().probe_path(t), probe, "{t:?}");
        }
    }

    #[test]
    fn paths_per_wire() {
        use Endpoint::*;
        let cases = [
            (Wire::OpenAi, Chat, Some("/v1/chat/completions")),
            (Wire::OpenAi, Completion, Some("/v1/completions")),
            (Wire::OpenAi, Embeddings, Some("/v1/embeddings")),
            (Wire::OpenAi, LegacyEmbeddings, None),
            (Wire::Ollama, Chat, Some("/api/chat")),
            (Wire::Ollama, Completion, Some("/api/generate")),
            (Wire::Ollama, Embeddings, Some("/api/embed")),
            (Wire::Ollama, LegacyEmbeddings, Some("/api/embeddings")),
            (Wire::Anthropic, Chat, Some("/v1/messages")),
            (Wire::Anthropic, Completion, None),
            (Wire::Anthropic, Embeddings, None),
        ];
        for (wire, e, want) in cases {
            assert_eq!(wire.profile().path(e), want, "{wire:?} {e:?}");
        }
    }

    #[test]
    fn urls_do_not_double_v1() {
        let mut p = ProviderConfig::new("a", "https://api.example.com/v1", ApiType::OpenAi);
        assert_eq!(
            url(&p, "/v1/chat/completions"),
            "https://api.example.com/v1/chat/completions"
        );
        p.api_host = "http://h:8000".into();
        assert_eq!(
            url(&p, "/v1/chat/completions"),
            "http://h:8000/v1/chat/completions"
        );
        assert_eq!(url(&p, "/api/chat"), "http://h:8000/api/chat");
        p.api_host = "https://api.deepinfra.com/v1/openai".into();
        assert_eq!(
            url(&p, "/v1/chat/completions"),
            "https://api.deepinfra.com/v1/openai/chat/completions"
        );
        assert_eq!(
            url(&p, "/v1/models"),
            "https://api.deepinfra.com/v1/openai/models"
        );
    }

    #[test]
    fn framing_follows_the_content_type() {
        let f = |w: Wire, ct| w.framing_of(Some(ct), Some(3));
        assert_eq!(
            f(Wire::OpenAi, "text/event-stream; charset=utf-8"),
            Framing::Sse
        );
        assert_eq!(
            f(Wire::Anthropic, "text/event-stream"),
            Framing::AnthropicSse
        );
        assert_eq!(f(Wire::Ollama, "application/x-ndjson"), Framing::Ndjson);
        assert_eq!(
            f(Wire::OpenAi, "application/json"),
            Framing::Whole { len: Some(3) }
        );
        assert_eq!(
            Wire::Ollama.framing_of(None, None),
            Framing::Whole { len: None }
        );
    }
}
