//! The answers of each provider wire format the fake speaks, as frames: OpenAI chat and legacy
//! completions (SSE, `data: [DONE]`), Ollama `/api/chat` and `/api/generate` (NDJSON, last line
//! `"done": true`), Anthropic Messages (SSE `event:`/`data:` from `message_start` to
//! `message_stop`), plus each format's error body.
//!
//! The reply is deterministic: token `i` is `"t{i} "`, there are `chunks` of them (fewer when the
//! request's own limit is lower, then the stop reason is the format's "length"), and a tool call is
//! made when the request offers tools, the fake is configured with arguments, and the last turn
//! is the user's (not a tool result).

use bytes::Bytes;
use serde_json::{json, Value};

/// Which endpoint family answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completions,
    OllamaChat,
    OllamaGenerate,
    Anthropic,
}

impl Kind {
    /// Whether the request asks for a stream (Ollama streams unless told otherwise).
    pub fn stream(self, request: &Value) -> bool {
        let explicit = request.get("stream").and_then(Value::as_bool);
        match self {
            Kind::OllamaChat | Kind::OllamaGenerate => explicit.unwrap_or(true),
            _ => explicit.unwrap_or(false),
        }
    }

    pub fn content_type(self, stream: bool) -> &'static str {
        match (self, stream) {
            (_, false) => "application/json",
            (Kind::OllamaChat | Kind::OllamaGenerate, true) => "application/x-ndjson",
            (_, true) => "text/event-stream",
        }
    }

    /// An error body in this format's own shape.
    pub fn error_body(self, status: u16, message: &str) -> Value {
        match self {
            Kind::Chat | Kind::Completions => {
                let kind = match status {
                    429 => "rate_limit_exceeded",
                    401 => "invalid_request_error",
                    s if s >= 500 => "server_error",
                    _ => "invalid_request_error",
                };
                json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            }
            Kind::OllamaChat | Kind::OllamaGenerate => json!({"error": message}),
            Kind::Anthropic => {
                json!({"type": "error", "error": {"type": anthropic_error_type(status),
                                                                 "message": message}})
            }
        }
    }
}

pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Words in every text of the request: the fake's "prompt tokens".
fn count_words(v: &Value) -> usize {
    match v {
        Value::String(s) => s.split_whitespace().count(),
        Value::Array(a) => a.iter().map(count_words).sum(),
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "content" | "text" | "prompt" | "system"))
            .map(|(_, v)| count_words(v))
            .sum(),
        _ => 0,
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `created_at` as Ollama writes it (RFC 3339, UTC).
fn created_at() -> String {
    let secs = now_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000001Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The answer to one request, before it is framed.
pub struct Reply {
    pub kind: Kind,
    pub id: String,
    pub model: String,
    pub created: u64,
    pub tokens: Vec<String>,
    /// The token limit cut the reply short.
    pub truncated: bool,
    pub prompt_tokens: usize,
    /// `(id, name, arguments object)` when the fake calls a tool.
    pub tool_call: Option<(String, String, Value)>,
}

impl Reply {
    pub fn new(
        kind: Kind,
        request: &Value,
        chunks: usize,
        tool_args: Option<&Value>,
        n: u64,
    ) -> Reply {
        let limit = match kind {
            Kind::OllamaChat | Kind::OllamaGenerate => request
                .pointer("/options/num_predict")
                .and_then(Value::as_i64)
                .filter(|n| *n >= 0)
                .map(|n| n as u64),
            _ => request
                .get("max_completion_tokens")
                .or_else(|| request.get("max_tokens"))
                .and_then(Value::as_u64),
        };
        let count = limit.map_or(chunks, |m| (m as usize).min(chunks));
        let tool_call = tool_args.and_then(|args| {
            let name = offered_tool(kind, request)?;
            Some((format!("call_fake{n:04}"), name, args.clone()))
        });
        let id = match kind {
            Kind::Chat => format!("chatcmpl-fake{n:08x}"),
            Kind::Completions => format!("cmpl-fake{n:08x}"),
            Kind::Anthropic => format!("msg_fake{n:08x}"),
            Kind::OllamaChat | Kind::OllamaGenerate => String::new(),
        };
        Reply {
            kind,
            id,
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            created: now_secs(),
            tokens: if tool_call.is_some() {
                Vec::new()
            } else {
                (0..count).map(|i| format!("t{i} ")).collect()
            },
            truncated: tool_call.is_none() && count < chunks,
            prompt_tokens: count_words(request.get("messages").unwrap_or(&Value::Null))
                + count_words(request.get("prompt").unwrap_or(&Value::Null))
                + count_words(request.get("system").unwrap_or(&Value::Null)),
            tool_call,
        }
    }

    fn text(&self) -> String {
        self.tokens.concat()
    }

    /// Answers with the words of the request's last user text instead of `t0 t1 …` (for tests
    /// that must see what the provider was sent come back to the client).
    pub fn echo(&mut self, request: &Value) {
        let text = last_user_text(request);
        self.tokens = text.split_inclusive(' ').map(String::from).collect();
        self.truncated = false;
    }

    fn out_tokens(&self) -> usize {
        self.tokens.len() + usize::from(self.tool_call.is_some()) * 5
    }

    fn args_text(&self) -> String {
        self.tool_call
            .as_ref()
            .map(|(_, _, a)| a.to_string())
            .unwrap_or_default()
    }

    /// Argument JSON split in two fragments, as providers stream it.
    fn args_fragments(&self) -> [String; 2] {
        let s = self.args_text();
        let mid = s
            .char_indices()
            .nth(s.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        [s[..mid].to_string(), s[mid..].to_string()]
    }

    /// The whole (non-stream) answer.
    pub fn whole(&self) -> Value {
        match self.kind {
            Kind::Chat => {
                let mut message = json!({"role": "assistant", "content": self.text()});
                let mut finish = if self.truncated { "length" } else { "stop" };
                if let Some((id, name, _)) = &self.tool_call {
                    message = json!({"role": "assistant", "content": null, "tool_calls": [
                        {"id": id, "type": "function", "function": {"name": name, "arguments": self.args_text()}}]});
                    finish = "tool_calls";
                }
                json!({"id": self.id, "object": "chat.completion", "created": self.created,
                       "model": self.model,
                       "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                       "usage": self.openai_usage()})
            }
            Kind::Completions => json!({"id": self.id, "object": "text_completion",
                "created": self.created, "model": self.model,
                "choices": [{"text": self.text(), "index": 0, "logprobs": null,
                             "finish_reason": if self.truncated { "length" } else { "stop" }}],
                "usage": self.openai_usage()}),
            Kind::OllamaChat => {
                let mut message = json!({"role": "assistant", "content": self.text()});
                if let Some((_, name, args)) = &self.tool_call {
                    message["tool_calls"] =
                        json!([{"function": {"name": name, "arguments": args}}]);
                }
                self.ollama_final(Some(message), None)
            }
            Kind::OllamaGenerate => self.ollama_final(None, Some(self.text())),
            Kind::Anthropic => {
                let mut content = Vec::new();
                if !self.tokens.is_empty() || self.tool_call.is_none() {
                    content.push(json!({"type": "text", "text": self.text()}));
                }
                if let Some((id, name, args)) = &self.tool_call {
                    content.push(
                        json!({"type": "tool_use", "id": toolu(id), "name": name, "input": args}),
                    );
                }
                json!({"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                       "content": content, "stop_reason": self.anthropic_stop(), "stop_sequence": null,
                       "usage": {"input_tokens": self.prompt_tokens, "output_tokens": self.out_tokens()}})
            }
        }
    }

    fn openai_usage(&self) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": self.out_tokens(),
               "total_tokens": self.prompt_tokens + self.out_tokens()})
    }

    fn anthropic_stop(&self) -> &'static str {
        if self.tool_call.is_some() {
            "tool_use"
        } else if self.truncated {
            "max_tokens"
        } else {
            "end_turn"
        }
    }

    fn ollama_final(&self, message: Option<Value>, response: Option<String>) -> Value {
        let mut v = json!({"model": self.model, "created_at": created_at()});
        if let Some(m) = message {
            v["message"] = m;
        }
        if let Some(r) = response {
            v["response"] = json!(r);
        }
        v["done_reason"] = json!(if self.truncated { "length" } else { "stop" });
        v["done"] = json!(true);
        if self.kind == Kind::OllamaGenerate {
            v["context"] = json!([1, 2, 3]);
        }
        v["total_duration"] = json!(1_000_000u64);
        v["load_duration"] = json!(1_000u64);
        v["prompt_eval_count"] = json!(self.prompt_tokens);
        v["prompt_eval_duration"] = json!(10_000u64);
        v["eval_count"] = json!(self.out_tokens());
        v["eval_duration"] = json!(900_000u64);
        v
    }

    /// The stream, one element per frame as the provider would flush it.
    pub fn frames(&self, include_usage: bool) -> Vec<Bytes> {
        match self.kind {
            Kind::Chat => self.chat_frames(include_usage),
            Kind::Completions => self.completion_frames(include_usage),
            Kind::OllamaChat | Kind::OllamaGenerate => self.ollama_lines(),
            Kind::Anthropic => self.anthropic_events(),
        }
    }

    fn sse(v: &Value) -> Bytes {
        Bytes::from(format!("data: {v}\n\n"))
    }

    fn chat_frames(&self, include_usage: bool) -> Vec<Bytes> {
        let chunk = |delta: Value, finish: Option<&str>| {
            Reply::sse(
                &json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}),
            )
        };
        let mut out = Vec::new();
        let finish = match &self.tool_call {
            Some((id, name, _)) => {
                out.push(chunk(json!({"role": "assistant", "content": null}), None));
                out.push(chunk(json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                                                      "function": {"name": name, "arguments": ""}}]}), None));
                for f in self.args_fragments() {
                    out.push(chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}),
                        None,
                    ));
                }
                "tool_calls"
            }
            None => {
                out.push(chunk(json!({"role": "assistant", "content": ""}), None));
                out.extend(
                    self.tokens
                        .iter()
                        .map(|t| chunk(json!({"content": t}), None)),
                );
                if self.truncated {
                    "length"
                } else {
                    "stop"
                }
            }
        };
        out.push(chunk(json!({}), Some(finish)));
        if include_usage {
            out.push(Reply::sse(&json!({"id": self.id, "object": "chat.completion.chunk",
                "created": self.created, "model": self.model, "choices": [], "usage": self.openai_usage()})));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    fn completion_frames(&self, include_usage: bool) -> Vec<Bytes> {
        let chunk = |text: &str, finish: Option<&str>| {
            Reply::sse(
                &json!({"id": self.id, "object": "text_completion", "created": self.created,
                "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
                "model": self.model}),
            )
        };
        let mut out: Vec<Bytes> = self.tokens.iter().map(|t| chunk(t, None)).collect();
        out.push(chunk(
            "",
            Some(if self.truncated { "length" } else { "stop" }),
        ));
        if include_usage {
            out.push(Reply::sse(&json!({"id": self.id, "object": "text_completion",
                "created": self.created, "choices": [], "model": self.model, "usage": self.openai_usage()})));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    fn ollama_lines(&self) -> Vec<Bytes> {
        let line = |v: Value| Bytes::from(format!("{v}\n"));
        let chat = self.kind == Kind::OllamaChat;
        let mut out: Vec<Bytes> = self
            .tokens
            .iter()
            .map(|t| {
                if chat {
                    line(json!({"model": self.model, "created_at": created_at(),
                                "message": {"role": "assistant", "content": t}, "done": false}))
                } else {
                    line(json!({"model": self.model, "created_at": created_at(), "response": t, "done": false}))
                }
            })
            .collect();
        if let (true, Some((_, name, args))) = (chat, &self.tool_call) {
            out.push(line(
                json!({"model": self.model, "created_at": created_at(),
                "message": {"role": "assistant", "content": "",
                            "tool_calls": [{"function": {"name": name, "arguments": args}}]},
                "done": false}),
            ));
        }
        let last = if chat {
            self.ollama_final(Some(json!({"role": "assistant", "content": ""})), None)
        } else {
            self.ollama_final(None, Some(String::new()))
        };
        out.push(line(last));
        out
    }

    fn anthropic_events(&self) -> Vec<Bytes> {
        let ev = |name: &str, v: Value| Bytes::from(format!("event: {name}\ndata: {v}\n\n"));
        let mut out = vec![ev(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1}}}),
        )];
        let mut index = 0;
        if !self.tokens.is_empty() || self.tool_call.is_none() {
            out.push(ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ));
            out.push(ev("ping", json!({"type": "ping"})));
            for t in &self.tokens {
                out.push(ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": t}}),
                ));
            }
            out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            index = 1;
        }
        if let Some((id, name, _)) = &self.tool_call {
            out.push(ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": toolu(id), "name": name, "input": {}}}),
            ));
            out.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": ""}}),
            ));
            for f in self.args_fragments() {
                out.push(ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": f}}),
                ));
            }
            out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
        out.push(ev(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": self.anthropic_stop(), "stop_sequence": null},
            "usage": {"output_tokens": self.out_tokens()}}),
        ));
        out.push(ev("message_stop", json!({"type": "message_stop"})));
        out
    }
}

fn toolu(id: &str) -> String {
    format!("toolu_{}", id.trim_start_matches("call_"))
}

/// The name of the first tool the request offers, if the fake should call one now: tools are
/// offered, tool choice is not "none", and the last turn is not a tool result.
fn offered_tool(kind: Kind, request: &Value) -> Option<String> {
    let tools = request.get("tools")?.as_array()?;
    let first = tools.first()?;
    let name = first
        .pointer("/function/name")
        .or_else(|| first.get("name"))
        .and_then(Value::as_str)?
        .to_string();
    let choice = request.get("tool_choice");
    let none = choice.and_then(Value::as_str) == Some("none")
        || choice.and_then(|c| c.get("type")).and_then(Value::as_str) == Some("none");
    if none {
        return None;
    }
    let last = request.get("messages")?.as_array()?.last()?;
    let answered = match kind {
        Kind::Anthropic => last
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|blocks| {
                blocks
                    .iter()
                    .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            }),
        _ => last.get("role").and_then(Value::as_str) == Some("tool"),
    };
    (!answered).then_some(name)
}

/// Dimensions of [`embedding`].
pub const EMBEDDING_DIMS: usize = 64;

/// A deterministic embedding of `text`: a hashed bag of words (each lower-cased word adds ±1 to
/// one of [`EMBEDDING_DIMS`] dimensions, chosen by its FNV-1a hash), scaled to unit length and
/// rounded so it survives a round trip through f32. Texts sharing words are near in cosine
/// distance, so retrieval tests can reason about which chunk is closest.
pub fn embedding(text: &str) -> Vec<f64> {
    let mut v = vec![0.0f64; EMBEDDING_DIMS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let sign = if (h >> 32) & 1 == 0 { 1.0 } else { -1.0 };
        v[(h % EMBEDDING_DIMS as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x = (*x / norm * 1024.0).round() / 1024.0;
        }
    }
    v
}

/// The last user turn's text: OpenAI / Ollama `messages` (string or text parts), Anthropic
/// content blocks, or a completion / generate `prompt`.
fn text_of(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The assistant text a request asks the model to continue, as each API spells a prefill:
/// Anthropic, a trailing assistant turn; OpenAI wire (vLLM, llama.cpp), a trailing assistant
/// message with `continue_final_message: true`. `None` for an ordinary request.
pub fn prefill_of(kind: Kind, request: &Value) -> Option<String> {
    let asks = match kind {
        Kind::Anthropic => true,
        Kind::Chat => {
            request
                .get("continue_final_message")
                .and_then(Value::as_bool)
                == Some(true)
        }
        _ => false,
    };
    let last = request.get("messages")?.as_array()?.last()?;
    (asks && last.get("role").and_then(Value::as_str) == Some("assistant"))
        .then(|| text_of(last.get("content").unwrap_or(&Value::Null)))
}

impl Reply {
    /// Answers only what follows `prefix` in the deterministic answer (a prefilled turn is
    /// continued, not repeated); a prefix the answer does not start with leaves it whole.
    pub fn continue_from(&mut self, prefix: &str) {
        let full = self.text();
        if let Some(rest) = full.strip_prefix(prefix) {
            self.tokens = rest.split_inclusive(' ').map(String::from).collect();
        }
    }
}

fn last_user_text(request: &Value) -> String {
    if let Some(msgs) = request.get("messages").and_then(Value::as_array) {
        if let Some(m) = msgs
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        {
            return text_of(m.get("content").unwrap_or(&Value::Null));
        }
    }
    request.get("prompt").map(text_of).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefilled_turn_is_continued_where_it_ends() {
        let anthropic = json!({"model": "m", "max_tokens": 9, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "t0 t1"}]}]});
        let prefix = prefill_of(Kind::Anthropic, &anthropic).unwrap();
        let mut r = Reply::new(Kind::Anthropic, &anthropic, 4, None, 0);
        r.continue_from(&prefix);
        assert_eq!(r.text(), " t2 t3 ");
        // OpenAI wire: only with continue_final_message.
        let mut chat = json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "t0 t1 t2 "}]});
        assert_eq!(prefill_of(Kind::Chat, &chat), None);
        chat["continue_final_message"] = json!(true);
        let mut r = Reply::new(Kind::Chat, &chat, 4, None, 0);
        r.continue_from(&prefill_of(Kind::Chat, &chat).unwrap());
        assert_eq!(r.text(), "t3 ");
        // A prefix the answer does not start with: answered whole.
        let mut r = Reply::new(Kind::Chat, &chat, 4, None, 0);
        r.continue_from("something else");
        assert_eq!(r.text(), "t0 t1 t2 t3 ");
    }

    #[test]
    fn embeddings_are_deterministic_distinct_and_exact_in_f32() {
        let a = embedding("alpha");
        assert_eq!(a, embedding("alpha"));
        assert_ne!(a, embedding("beta"));
        assert!(a.iter().all(|x| (*x as f32) as f64 == *x && x.abs() <= 1.0));
        let cos = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let q = embedding("Where does the Vistula river flow?");
        let near = embedding("The Vistula river flows into the Baltic sea.");
        let far = embedding("Pierogi are dumplings filled with cheese.");
        assert!(
            cos(&q, &near) > cos(&q, &far) + 0.2,
            "shared words make texts near"
        );
    }

    #[test]
    fn tools_are_called_until_the_tool_answered() {
        let args = json!({"city": "Paris"});
        let ask = json!({"messages": [{"role": "user", "content": "w?"}],
                         "tools": [{"type": "function", "function": {"name": "get_weather"}}]});
        let r = Reply::new(Kind::Chat, &ask, 4, Some(&args), 1);
        assert_eq!(r.tool_call.as_ref().unwrap().1, "get_weather");
        let mut answered = ask.clone();
        answered["messages"]
            .as_array_mut()
            .unwrap()
            .push(json!({"role": "tool", "content": "18C"}));
        assert!(Reply::new(Kind::Chat, &answered, 4, Some(&args), 1)
            .tool_call
            .is_none());
        assert!(Reply::new(Kind::Chat, &ask, 4, None, 1).tool_call.is_none());
    }
}
