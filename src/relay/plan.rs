//! What to send to which provider, decided once per attempt from the client's API and the
//! provider's wire, and carried with the committed response ([`Route`]), so the answer is handled
//! the way the request was built — never decided a second time.
//!
//! Same format on both sides → the client's body is forwarded with only `model` rewritten (and
//! router fields and, for providers without tool support, tool fields dropped) and the answer
//! passed through untouched. Otherwise the request is read once into the canonical model (or the
//! embeddings request model), written in the provider's format, and the answer converted back.

use std::cell::OnceCell;
use std::rc::Rc;

use bytes::Bytes;
use llm_router_actors::wire::{Endpoint, Wire};
use llm_router_actors::{ApiType, ProviderConfig};

use crate::dialects::canonical::{Decoder, Encoder, Request, Response};
use crate::dialects::embeddings::{self, EmbedRequest, Shape};
use crate::dialects::raw::{Put, RawObject};
use crate::dialects::{anthropic, ollama, openai, responses, Target};
use crate::errors::{Dialect, RouterError};

/// A text-generation endpoint of a client dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    OpenAiChat,
    OpenAiCompletions,
    Responses,
    Anthropic,
    OllamaChat,
    OllamaGenerate,
}

/// The client's API: a generation endpoint or an embeddings shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientApi {
    Generate(Ingress),
    Embed(Shape),
}

/// Fields removed for providers configured with `tool_calling: false` (every dialect's names).
const TOOL_FIELDS: &[&str] = &[
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "parallel_tool_calls",
];
/// Router-level request fields that are never sent upstream. The Python gateway read system
/// prompts from `prompt_str_force` / `prompt_str_postfix` / `map_prompt` on any route (SPEC §9):
/// here no route honours them, and passthrough strips them so no upstream does either.
const ROUTER_FIELDS: &[&str] = &[
    "anonymize",
    "prompt_str_force",
    "prompt_str_postfix",
    "map_prompt",
];

/// In-band stream error frame, in a client dialect.
pub type ErrorFrame = fn(&str) -> Bytes;

impl Ingress {
    pub fn dialect(self) -> Dialect {
        match self {
            Ingress::OpenAiChat | Ingress::OpenAiCompletions | Ingress::Responses => {
                Dialect::OpenAi
            }
            Ingress::Anthropic => Dialect::Anthropic,
            Ingress::OllamaChat | Ingress::OllamaGenerate => Dialect::Ollama,
        }
    }

    /// Ollama streams unless told otherwise; the others don't (SPEC §3).
    fn default_stream(self) -> bool {
        matches!(self, Ingress::OllamaChat | Ingress::OllamaGenerate)
    }

    /// The wire and endpoint this client format is natively (when there is one).
    fn native(self) -> Option<(Wire, Endpoint)> {
        match self {
            Ingress::OpenAiChat => Some((Wire::OpenAi, Endpoint::Chat)),
            Ingress::OpenAiCompletions => Some((Wire::OpenAi, Endpoint::Completion)),
            Ingress::Anthropic => Some((Wire::Anthropic, Endpoint::Chat)),
            Ingress::OllamaChat => Some((Wire::Ollama, Endpoint::Chat)),
            Ingress::OllamaGenerate => Some((Wire::Ollama, Endpoint::Completion)),
            Ingress::Responses => None,
        }
    }

    /// Reads the request into the canonical model (only when a conversion is needed).
    fn read(self, body: &[u8]) -> Result<Request, RouterError> {
        Ok(match self {
            Ingress::OpenAiChat => openai::read_chat(body)?,
            Ingress::OpenAiCompletions => openai::read_completion(body)?,
            Ingress::Responses => responses::read_request(body)?,
            Ingress::Anthropic => anthropic::read_request(body)?,
            Ingress::OllamaChat => ollama::read_chat(body)?,
            Ingress::OllamaGenerate => ollama::read_generate(body)?,
        })
    }

    /// Reads a client body into the canonical model (a stream continuation of a passthrough).
    pub fn read_request(self, body: &[u8]) -> Result<Request, RouterError> {
        self.read(body)
    }

    /// What the fast path checks before routing (the rest is the provider's to judge).
    fn validate(self, raw: &RawObject<'_>) -> Result<(), RouterError> {
        match self {
            Ingress::OpenAiChat => Ok(raw.require_array("messages")?),
            Ingress::Anthropic => {
                raw.require_array("messages")?;
                if raw.get("max_tokens").is_none() {
                    return Err(RouterError::bad_request(
                        "missing required field \"max_tokens\"",
                        Some("max_tokens"),
                    ));
                }
                Ok(())
            }
            Ingress::OpenAiCompletions => match raw.get("prompt") {
                None | Some("null") => Err(RouterError::bad_request(
                    "missing required field \"prompt\"",
                    Some("prompt"),
                )),
                Some(_) => Ok(()),
            },
            Ingress::Responses | Ingress::OllamaChat | Ingress::OllamaGenerate => Ok(()),
        }
    }

    pub fn error_frame(self) -> ErrorFrame {
        match self.dialect() {
            Dialect::OpenAi => openai::sse_error,
            Dialect::Anthropic => anthropic::error_event,
            Dialect::Ollama => ollama::error_line,
        }
    }

    pub fn encoder(self, req: &Request) -> Box<dyn Encoder> {
        match self {
            Ingress::OpenAiChat | Ingress::OpenAiCompletions => {
                Box::new(openai::ChatEncoder::new(req))
            }
            Ingress::Responses => Box::new(responses::StreamEncoder::new(req)),
            Ingress::Anthropic => Box::new(anthropic::StreamEncoder::new(req)),
            Ingress::OllamaChat | Ingress::OllamaGenerate => {
                Box::new(ollama::StreamEncoder::new(req))
            }
        }
    }

    pub fn stream_content_type(self) -> &'static str {
        match self.dialect() {
            Dialect::Ollama => "application/x-ndjson",
            Dialect::OpenAi | Dialect::Anthropic => "text/event-stream",
        }
    }

    /// A complete answer of `model` in the client's dialect.
    pub fn write_response(self, r: &Response, model: &str, took_ns: u64) -> serde_json::Value {
        match self {
            Ingress::OpenAiChat => openai::write_chat_response(r, model),
            Ingress::OpenAiCompletions => openai::write_completion_response(r, model),
            Ingress::Responses => responses::write_response(r, model),
            Ingress::Anthropic => anthropic::write_response(r, model),
            Ingress::OllamaChat => ollama::write_response(r, model, false, took_ns),
            Ingress::OllamaGenerate => ollama::write_response(r, model, true, took_ns),
        }
    }
}

impl ClientApi {
    pub fn dialect(self) -> Dialect {
        match self {
            ClientApi::Generate(i) => i.dialect(),
            ClientApi::Embed(Shape::OpenAi) => Dialect::OpenAi,
            ClientApi::Embed(Shape::OllamaEmbed | Shape::OllamaLegacy) => Dialect::Ollama,
        }
    }

    fn native(self) -> Option<(Wire, Endpoint)> {
        match self {
            ClientApi::Generate(i) => i.native(),
            ClientApi::Embed(Shape::OpenAi) => Some((Wire::OpenAi, Endpoint::Embeddings)),
            ClientApi::Embed(Shape::OllamaEmbed) => Some((Wire::Ollama, Endpoint::Embeddings)),
            ClientApi::Embed(Shape::OllamaLegacy) => {
                Some((Wire::Ollama, Endpoint::LegacyEmbeddings))
            }
        }
    }

    /// The in-band error frame of a passed-through stream (the client speaks the wire's format).
    pub fn error_frame(self) -> ErrorFrame {
        match self {
            ClientApi::Generate(i) => i.error_frame(),
            // Embeddings answers are single JSON documents: a late failure aborts the connection.
            ClientApi::Embed(_) => openai::sse_error,
        }
    }
}

/// The provider decoder of a wire's stream.
pub fn decoder(wire: Wire) -> Box<dyn Decoder> {
    match wire {
        Wire::OpenAi => Box::<openai::ChatDecoder>::default(),
        Wire::Ollama => Box::<ollama::StreamDecoder>::default(),
        Wire::Anthropic => Box::<anthropic::StreamDecoder>::default(),
    }
}

/// A complete provider answer in the canonical model.
pub fn read_answer(wire: Wire, body: &[u8]) -> Result<Response, String> {
    match wire {
        Wire::OpenAi => openai::read_chat_response(body),
        Wire::Ollama => ollama::read_response(body),
        Wire::Anthropic => anthropic::read_response(body),
    }
}

/// What a request writer needs to know about provider `p`, serving public model `model`.
pub fn target_of<'a>(p: &'a ProviderConfig, model: &'a str) -> Target<'a> {
    // Sampling options beyond OpenAI's own API, under the names each server type takes them.
    let (repetition_penalty, typical_p) = match p.api_type {
        ApiType::Vllm => (Some("repetition_penalty"), false),
        ApiType::LlamaCpp => (Some("repeat_penalty"), true),
        ApiType::LmStudio => (Some("repeat_penalty"), false),
        ApiType::OpenAi | ApiType::Ollama | ApiType::Anthropic => (None, false),
    };
    Target {
        model: p.upstream_model(model),
        tools: p.tool_calling,
        top_k: p.api_type != ApiType::OpenAi,
        keep_alive: p.keep_alive,
        repetition_penalty,
        typical_p,
    }
}

/// How the answer of an attempt is handled.
pub enum Route {
    /// Same format: the provider's bytes go to the client untouched.
    Pass,
    /// A converted generation request; the answer is converted back to the client's dialect.
    Chat(Ingress, Rc<Request>),
    /// A converted embeddings request.
    Embed(Rc<EmbedRequest>),
}

/// One provider's request: where to send it, what, and how its answer is handled.
pub struct Outgoing {
    pub path: &'static str,
    pub body: Bytes,
    pub route: Route,
}

/// A parsed client request, ready to be written for any provider of its model.
pub struct Plan<'b> {
    pub api: ClientApi,
    pub model: String,
    pub stream: bool,
    body: &'b [u8],
    raw: RawObject<'b>,
    parsed: Parsed,
}

enum Parsed {
    /// Read into the canonical model at most once, and only if some provider needs a conversion.
    Generate(Ingress, OnceCell<Rc<Request>>),
    /// Embeddings requests are validated whole up front (small, and every conversion needs them).
    Embed(Rc<EmbedRequest>),
    /// A request the router built itself (the built-in endpoints): always written per provider.
    Built(Rc<Request>),
}

impl<'b> Plan<'b> {
    /// Ollama's unload request (`keep_alive` 0 with no prompt or messages): it loads nothing,
    /// so VRAM management has no room to make for it.
    pub fn is_unload(&self) -> bool {
        let zero = self
            .raw
            .get("keep_alive")
            .is_some_and(|v| matches!(v.trim(), "0" | "\"0\"" | "\"0s\"" | "\"0m\""));
        let empty = |key: &str| {
            self.raw
                .get(key)
                .is_none_or(|v| matches!(v.trim(), "null" | "\"\"" | "[]"))
        };
        zero && empty("prompt") && empty("messages")
    }

    pub fn new(api: ClientApi, body: &'b [u8]) -> Result<Plan<'b>, RouterError> {
        let raw = RawObject::parse(body)?;
        let (model, stream, parsed) = match api {
            ClientApi::Generate(ingress) => {
                let model = raw.required_str("model")?;
                let stream = raw
                    .field::<bool>("stream", "true or false")?
                    .unwrap_or(ingress.default_stream());
                ingress.validate(&raw)?;
                (model, stream, Parsed::Generate(ingress, OnceCell::new()))
            }
            ClientApi::Embed(shape) => {
                let parsed = embeddings::read_request(body, shape)?;
                (parsed.model.clone(), false, Parsed::Embed(Rc::new(parsed)))
            }
        };
        Ok(Plan {
            api,
            model,
            stream,
            body,
            raw,
            parsed,
        })
    }

    /// A request the router built (the built-in endpoints), answered as an OpenAI chat client
    /// would be answered: whole JSON, or SSE chunks when `req.stream`.
    pub fn built(req: Request) -> Plan<'static> {
        Plan {
            api: ClientApi::Generate(Ingress::OpenAiChat),
            model: req.model.clone(),
            stream: req.stream,
            body: b"",
            raw: RawObject::parse(b"{}").expect("an empty object parses"),
            parsed: Parsed::Built(Rc::new(req)),
        }
    }

    /// A cheap estimate of the prompt's tokens (about four bytes of text per token), for the
    /// context-window pre-check against the providers' `input_size`.
    pub fn estimated_tokens(&self) -> u64 {
        let bytes = match &self.parsed {
            Parsed::Built(r) => {
                r.system.as_ref().map_or(0, String::len)
                    + r.messages
                        .iter()
                        .map(|m| m.joined_text().len())
                        .sum::<usize>()
            }
            Parsed::Generate(..) | Parsed::Embed(_) => self.body.len(),
        };
        bytes as u64 / 4
    }

    /// The request for provider `p`: passthrough when `p` speaks the client's format, else a
    /// conversion. An error is the request's fault for this provider (a 400, no failover).
    pub fn outgoing(&self, p: &ProviderConfig, model: &str) -> Result<Outgoing, RouterError> {
        let wire = Wire::of(p.api_type);
        let target = target_of(p, model);
        let native = match self.parsed {
            Parsed::Built(_) => None,
            Parsed::Generate(..) | Parsed::Embed(_) => self.api.native(),
        };
        if let Some((native, endpoint)) = native.filter(|(w, _)| *w == wire) {
            let path = native
                .profile()
                .path(endpoint)
                .expect("native endpoints exist");
            let no_tools = !p.tool_calling && matches!(self.api, ClientApi::Generate(_));
            let drop = |k: &str| ROUTER_FIELDS.contains(&k) || no_tools && TOOL_FIELDS.contains(&k);
            return Ok(Outgoing {
                path,
                body: self
                    .raw
                    .to_bytes(&[("model", Put::Str(target.model))], drop),
                route: Route::Pass,
            });
        }
        let (ingress, req) = match &self.parsed {
            Parsed::Generate(ingress, canonical) => {
                let req = match canonical.get() {
                    Some(r) => r.clone(),
                    None => {
                        let mut r = ingress.read(self.body)?;
                        r.stream = self.stream;
                        canonical.get_or_init(|| Rc::new(r)).clone()
                    }
                };
                (*ingress, req)
            }
            Parsed::Built(req) => (Ingress::OpenAiChat, req.clone()),
            Parsed::Embed(req) => {
                let req = req.clone();
                let body = match wire {
                    Wire::OpenAi => embeddings::write_openai_request(&req, &target),
                    Wire::Ollama => embeddings::write_ollama_request(&req, &target)?,
                    Wire::Anthropic => {
                        return Err(RouterError::bad_request(
                            format!(
                                "model \"{}\" is served by an Anthropic provider, which has no embeddings API",
                                req.model
                            ),
                            Some("model"),
                        ))
                    }
                };
                let path = wire.profile().path(Endpoint::Embeddings);
                return Ok(Outgoing {
                    path: path.expect("embeddings wires have the endpoint"),
                    body,
                    route: Route::Embed(req),
                });
            }
        };
        let body = match wire {
            Wire::OpenAi => openai::write_chat(&req, &target),
            Wire::Ollama => ollama::write_chat(&req, &target),
            Wire::Anthropic => anthropic::write_request(&req, &target),
        };
        let path = wire.profile().path(Endpoint::Chat);
        Ok(Outgoing {
            path: path.expect("every wire chats"),
            body,
            route: Route::Chat(ingress, req),
        })
    }
}
