//! The Anthropic Messages dialect, both directions: client requests/answers on `/v1/messages`, and
//! the wire format of `anthropic`-type providers (`x-api-key` + `anthropic-version` headers).
//!
//! Tool results travel in Anthropic as `tool_result` blocks of a user turn; canonically they are a
//! `Tool` message, so a user turn is split into its tool results followed by its own text/images.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Map, Value};

use super::canonical::{
    merge_usage, new_id, push_json_str, sse_frame, Decoder, Encoder, Event, Image, Message, Part,
    Request, Response, Role, Sse, StopReason, ToolChoice, Usage,
};
use super::openai::push_tool_result;
use super::{as_text, bad, parse_object, read_tool, Fields, Invalid, Target};

/// `max_tokens` is required by Anthropic; used when the client's dialect has no value.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

// ---------------------------------------------------------------------------------------------
// Requests.

pub fn read_request(body: &[u8]) -> Result<Request, Invalid> {
    let m = parse_object(body)?;
    let mut req = Request::new(m.req_str("model")?);
    req.options.max_tokens = Some(m.opt_u64("max_tokens")?.ok_or_else(|| {
        Invalid::new("missing required field \"max_tokens\"", Some("max_tokens"))
    })?);
    match m.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => req.push_system(s),
        Some(Value::Array(blocks)) => {
            let text: String = blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n");
            req.push_system(&text);
        }
        Some(_) => return Err(bad("system", "must be a string or a list of text blocks")),
    }
    let messages = m
        .opt_array("messages")?
        .ok_or_else(|| Invalid::new("missing required field \"messages\"", Some("messages")))?;
    for (i, msg) in messages.iter().enumerate() {
        read_message(&mut req, msg, &format!("messages[{i}]"))?;
    }
    if let Some(tools) = m.opt_array("tools")? {
        for (i, t) in tools.iter().enumerate() {
            // Server tools (web search, …) have a `type` and no schema: nothing to convert them to.
            if t.get("input_schema").is_none() && t.get("type").is_some() {
                continue;
            }
            req.tools
                .push(read_tool(t, "input_schema", &format!("tools[{i}]"))?);
        }
    }
    req.tool_choice =
        m.get("tool_choice")
            .and_then(|c| match c.get("type").and_then(Value::as_str)? {
                "auto" => Some(ToolChoice::Auto),
                "any" => Some(ToolChoice::Required),
                "none" => Some(ToolChoice::None),
                "tool" => Some(ToolChoice::Named(c.get("name").map(as_text)?)),
                _ => None,
            });
    req.stream = m.opt_bool("stream")?.unwrap_or(false);
    req.stream_usage = true;
    let o = &mut req.options;
    o.temperature = m.opt_f64("temperature")?;
    o.top_p = m.opt_f64("top_p")?;
    o.top_k = m.opt_u64("top_k")?;
    o.stop = m.strings("stop_sequences")?;
    Ok(req)
}

fn read_message(req: &mut Request, msg: &Value, path: &str) -> Result<(), Invalid> {
    let role = match msg.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(bad(
                &format!("{path}.role"),
                &format!("has unknown value \"{other}\" (expected user or assistant)"),
            ))
        }
        None => return Err(bad(&format!("{path}.role"), "must be a string")),
    };
    let mut parts = Vec::new();
    match msg.get("content") {
        Some(Value::String(s)) => parts.push(Part::Text(s.clone())),
        Some(Value::Array(blocks)) => {
            for (k, b) in blocks.iter().enumerate() {
                let bpath = format!("{path}.content[{k}]");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        parts.push(Part::Text(b.get("text").map(as_text).unwrap_or_default()))
                    }
                    Some("image") => {
                        let src = b.get("source").unwrap_or(&Value::Null);
                        let image = match src.get("type").and_then(Value::as_str) {
                            Some("base64") => Image::Base64 {
                                media_type: src.get("media_type").map(as_text).unwrap_or_default(),
                                data: src.get("data").map(as_text).unwrap_or_default(),
                            },
                            Some("url") => {
                                Image::Url(src.get("url").map(as_text).unwrap_or_default())
                            }
                            _ => {
                                return Err(bad(
                                    &format!("{bpath}.source.type"),
                                    "must be \"base64\" or \"url\"",
                                ))
                            }
                        };
                        parts.push(Part::Image(image));
                    }
                    Some("tool_use") => parts.push(Part::ToolCall {
                        id: b.get("id").map(as_text).unwrap_or_default(),
                        name: b.get("name").map(as_text).unwrap_or_default(),
                        arguments: b
                            .get("input")
                            .map_or_else(|| "{}".into(), |i| i.to_string()),
                    }),
                    Some("tool_result") => {
                        let content = match b.get("content") {
                            Some(Value::Array(items)) => items
                                .iter()
                                .filter_map(|i| i.get("text").and_then(Value::as_str))
                                .collect::<Vec<_>>()
                                .join("\n"),
                            Some(v) => as_text(v),
                            None => String::new(),
                        };
                        parts.push(Part::ToolResult {
                            id: b.get("tool_use_id").map(as_text).unwrap_or_default(),
                            content,
                            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                        });
                    }
                    // thinking, redacted_thinking, document, …: no counterpart elsewhere.
                    _ => {}
                }
            }
        }
        _ => {
            return Err(bad(
                &format!("{path}.content"),
                "must be a string or a list of content blocks",
            ))
        }
    }
    // Tool results first (as their own turn), then whatever else the user said.
    let (results, rest): (Vec<Part>, Vec<Part>) = parts
        .into_iter()
        .partition(|p| matches!(p, Part::ToolResult { .. }));
    for r in results {
        if let Part::ToolResult {
            id,
            content,
            is_error,
        } = r
        {
            push_tool_result(req, id, content, is_error);
        }
    }
    if !rest.is_empty() || role == Role::Assistant {
        req.messages.push(Message { role, parts: rest });
    }
    Ok(())
}

/// The Messages body for an `anthropic`-type provider.
pub fn write_request(req: &Request, target: &Target<'_>) -> Bytes {
    let mut messages: Vec<Value> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let (role, blocks) = blocks_of(m);
        if blocks.is_empty() {
            continue;
        }
        // Consecutive turns of one role are merged: the API expects user/assistant alternation.
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(arr) = last["content"].as_array_mut() {
                    arr.extend(blocks);
                }
            }
            _ => messages.push(json!({"role": role, "content": blocks})),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));
    body.insert(
        "max_tokens".into(),
        json!(req.options.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    if let Some(s) = &req.system {
        body.insert("system".into(), json!(s));
    }
    body.insert("messages".into(), Value::Array(messages));
    let o = &req.options;
    if let Some(v) = o.temperature {
        body.insert("temperature".into(), json!(v));
    }
    // Current Claude models refuse `temperature` and `top_p` together (400 "cannot both be
    // specified"); Anthropic's advice is to set one: temperature wins.
    if let (Some(v), None) = (o.top_p, o.temperature) {
        body.insert("top_p".into(), json!(v));
    }
    if let Some(v) = o.top_k {
        body.insert("top_k".into(), json!(v));
    }
    if !o.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(o.stop));
    }
    if target.tools && !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut v = json!({"name": t.name, "input_schema": t.parameters});
                if let Some(d) = &t.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        if let Some(c) = &req.tool_choice {
            body.insert(
                "tool_choice".into(),
                match c {
                    ToolChoice::Auto => json!({"type": "auto"}),
                    ToolChoice::None => json!({"type": "none"}),
                    ToolChoice::Required => json!({"type": "any"}),
                    ToolChoice::Named(n) => json!({"type": "tool", "name": n}),
                },
            );
        }
    }
    if req.stream {
        body.insert("stream".into(), json!(true));
    }
    Bytes::from(Value::Object(body).to_string())
}

fn blocks_of(m: &Message) -> (&'static str, Vec<Value>) {
    let role = match m.role {
        Role::Assistant => "assistant",
        Role::User | Role::Tool => "user",
    };
    let blocks = m
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if t.is_empty() => None,
            Part::Text(t) => Some(json!({"type": "text", "text": t})),
            Part::Image(Image::Base64 { media_type, data }) => Some(json!({"type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data}})),
            Part::Image(Image::Url(u)) => {
                Some(json!({"type": "image", "source": {"type": "url", "url": u}}))
            }
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some(json!({"type": "tool_use", "id": id, "name": name,
                             "input": parse_arguments(arguments)})),
            Part::ToolResult {
                id,
                content,
                is_error,
            } => {
                let mut b = json!({"type": "tool_result", "tool_use_id": id, "content": content});
                if *is_error {
                    b["is_error"] = json!(true);
                }
                Some(b)
            }
        })
        .collect();
    (role, blocks)
}

/// Tool arguments as a JSON object (Anthropic and Ollama want objects, OpenAI sends text).
pub(crate) fn parse_arguments(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ if text.trim().is_empty() => json!({}),
        // Not an object: keep it rather than lose it.
        Ok(other) => json!({ "value": other }),
        Err(_) => json!({ "arguments": text }),
    }
}

// ---------------------------------------------------------------------------------------------
// Answers.

pub fn read_response(body: &[u8]) -> Result<Response, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for b in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => tool_calls.push((
                b.get("id").map(as_text).unwrap_or_default(),
                b.get("name").map(as_text).unwrap_or_default(),
                b.get("input")
                    .map_or_else(|| "{}".into(), |i| i.to_string()),
            )),
            _ => {}
        }
    }
    Ok(Response {
        id: v.get("id").and_then(Value::as_str).map(String::from),
        model: v.get("model").and_then(Value::as_str).map(String::from),
        text,
        tool_calls,
        stop: v
            .get("stop_reason")
            .and_then(Value::as_str)
            .map_or(StopReason::Stop, StopReason::from_anthropic),
        usage: v.get("usage").map(read_usage),
    })
}

fn read_usage(u: &Value) -> Usage {
    Usage {
        input: u.get("input_tokens").and_then(Value::as_u64).unwrap_or(0),
        output: u.get("output_tokens").and_then(Value::as_u64).unwrap_or(0),
    }
}

pub fn write_response(r: &Response, model: &str) -> Value {
    let mut content = Vec::new();
    if !r.text.is_empty() || r.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": r.text}));
    }
    for (id, name, args) in &r.tool_calls {
        content.push(json!({"type": "tool_use", "id": tool_id(id), "name": name,
                            "input": parse_arguments(args)}));
    }
    let u = r.usage.unwrap_or_default();
    json!({
        "id": msg_id(r.id.as_deref()),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": r.stop.anthropic(),
        "stop_sequence": null,
        "usage": {"input_tokens": u.input, "output_tokens": u.output},
    })
}

fn msg_id(id: Option<&str>) -> String {
    match id {
        Some(id) if id.starts_with("msg_") => id.to_string(),
        _ => new_id("msg_"),
    }
}

/// Anthropic tool ids start `toolu_`; SDKs don't check, but keep ids recognisable.
fn tool_id(id: &str) -> String {
    if id.is_empty() {
        new_id("toolu_")
    } else {
        id.to_string()
    }
}

/// The in-band error event of an Anthropic stream.
pub fn error_event(message: &str) -> Bytes {
    let mut out = BytesMut::new();
    sse_frame(
        &mut out,
        Some("error"),
        &json!({"type": "error", "error": {"type": "api_error", "message": message}}),
    );
    out.freeze()
}

// ---------------------------------------------------------------------------------------------
// Streams.

#[derive(serde::Deserialize)]
struct TextDeltaFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    delta: Option<TextDelta<'a>>,
}

#[derive(serde::Deserialize)]
struct TextDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
}

/// Reads an Anthropic event stream.
#[derive(Default)]
pub struct StreamDecoder {
    sse: Sse,
    done: bool,
    /// Content block index → canonical tool index, for `tool_use` blocks.
    tool_blocks: Vec<(u64, usize)>,
    tools: usize,
}

impl Decoder for StreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        let StreamDecoder {
            sse,
            done,
            tool_blocks,
            tools,
        } = self;
        sse.feed(chunk, |_, data| {
            // The common frame — a text delta — read without building a `Value`.
            if let Ok(f) = serde_json::from_slice::<TextDeltaFrame>(data) {
                if f.kind == "content_block_delta" {
                    if let Some(d) = f.delta.filter(|d| d.kind.as_deref() == Some("text_delta")) {
                        out.push(Event::Text(
                            d.text.map(|t| t.into_owned()).unwrap_or_default(),
                        ));
                        return;
                    }
                }
            }
            let Ok(v) = serde_json::from_slice::<Value>(data) else {
                out.push(Event::Error(
                    "the provider sent a malformed stream frame".into(),
                ));
                return;
            };
            match v.get("type").and_then(Value::as_str).unwrap_or("") {
                "message_start" => {
                    let m = v.get("message").unwrap_or(&Value::Null);
                    out.push(Event::Start {
                        id: m.get("id").and_then(Value::as_str).map(String::from),
                        model: m.get("model").and_then(Value::as_str).map(String::from),
                    });
                    if let Some(u) = m.get("usage") {
                        out.push(Event::Usage(read_usage(u)));
                    }
                }
                "content_block_start" => {
                    let b = v.get("content_block").unwrap_or(&Value::Null);
                    if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                        let block = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                        tool_blocks.push((block, *tools));
                        out.push(Event::ToolStart {
                            index: *tools,
                            id: b.get("id").map(as_text).unwrap_or_default(),
                            name: b.get("name").map(as_text).unwrap_or_default(),
                        });
                        *tools += 1;
                    } else if let Some(t) = b.get("text").and_then(Value::as_str) {
                        if !t.is_empty() {
                            out.push(Event::Text(t.to_string()));
                        }
                    }
                }
                "content_block_delta" => {
                    let d = v.get("delta").unwrap_or(&Value::Null);
                    match d.get("type").and_then(Value::as_str) {
                        Some("text_delta") => {
                            out.push(Event::Text(d.get("text").map(as_text).unwrap_or_default()))
                        }
                        Some("input_json_delta") => {
                            let block = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                            let fragment = d.get("partial_json").map(as_text).unwrap_or_default();
                            let tool = tool_blocks.iter().find(|(b, _)| *b == block);
                            // Anthropic opens with an empty fragment; it carries nothing.
                            if let (Some(&(_, index)), false) = (tool, fragment.is_empty()) {
                                out.push(Event::ToolArgs { index, fragment });
                            }
                        }
                        // thinking_delta, signature_delta, citations: not carried across.
                        _ => {}
                    }
                }
                "message_delta" => {
                    if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                        out.push(Event::Stop(StopReason::from_anthropic(s)));
                    }
                    if let Some(u) = v.get("usage") {
                        out.push(Event::Usage(read_usage(u)));
                    }
                }
                "message_stop" => {
                    *done = true;
                    out.push(Event::Done);
                }
                "error" => out.push(Event::Error(
                    v.pointer("/error/message")
                        .map_or_else(|| v.to_string(), as_text),
                )),
                // ping, content_block_stop
                _ => {}
            }
        });
    }

    fn finished(&self) -> bool {
        self.done
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    Text(usize),
    Tool(usize),
}

/// Writes the Anthropic event sequence: `message_start`, blocks, `message_delta`, `message_stop`.
pub struct StreamEncoder {
    model: String,
    started: bool,
    block: Block,
    next_block: usize,
    /// Canonical tool index → content block index.
    tool_blocks: Vec<usize>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

impl StreamEncoder {
    pub fn new(req: &Request) -> StreamEncoder {
        StreamEncoder {
            model: req.model.clone(),
            started: false,
            block: Block::None,
            next_block: 0,
            tool_blocks: Vec::new(),
            stop: None,
            usage: None,
        }
    }

    fn start(&mut self, id: Option<&str>, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let input = self.usage.map_or(0, |u| u.input);
        sse_frame(
            out,
            Some("message_start"),
            &json!({"type": "message_start", "message": {
                "id": msg_id(id), "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": 0}}}),
        );
        sse_frame(out, Some("ping"), &json!({"type": "ping"}));
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        let index = match self.block {
            Block::None => return,
            Block::Text(i) | Block::Tool(i) => i,
        };
        sse_frame(
            out,
            Some("content_block_stop"),
            &json!({"type": "content_block_stop", "index": index}),
        );
        self.block = Block::None;
    }

    fn open_block(&mut self, block: Value, out: &mut BytesMut) -> usize {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        sse_frame(
            out,
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }
}

impl Encoder for StreamEncoder {
    fn encode(&mut self, event: &Event, out: &mut BytesMut) {
        match event {
            Event::Start { id, .. } => self.start(id.as_deref(), out),
            Event::Text(t) => {
                self.start(None, out);
                let index = match self.block {
                    Block::Text(i) => i,
                    _ => {
                        let i = self.open_block(json!({"type": "text", "text": ""}), out);
                        self.block = Block::Text(i);
                        i
                    }
                };
                // The per-token hot path, written directly.
                out.extend_from_slice(
                    b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
                );
                out.extend_from_slice(index.to_string().as_bytes());
                out.extend_from_slice(b",\"delta\":{\"type\":\"text_delta\",\"text\":");
                push_json_str(out, t);
                out.extend_from_slice(b"}}\n\n");
            }
            Event::ToolStart { index, id, name } => {
                self.start(None, out);
                let b = self.open_block(
                    json!({"type": "tool_use", "id": tool_id(id), "name": name, "input": {}}),
                    out,
                );
                self.block = Block::Tool(b);
                if self.tool_blocks.len() <= *index {
                    self.tool_blocks.resize(*index + 1, b);
                }
                self.tool_blocks[*index] = b;
            }
            Event::ToolArgs { index, fragment } => {
                if let Some(&b) = self.tool_blocks.get(*index) {
                    sse_frame(
                        out,
                        Some("content_block_delta"),
                        &json!({"type": "content_block_delta", "index": b,
                                "delta": {"type": "input_json_delta", "partial_json": fragment}}),
                    );
                }
            }
            Event::Stop(s) => self.stop = Some(*s),
            Event::Usage(u) => self.usage = Some(merge_usage(self.usage, *u)),
            Event::Done => {
                self.start(None, out);
                self.close_block(out);
                let u = self.usage.unwrap_or_default();
                // Input tokens again at the end: converted providers report them only here.
                sse_frame(
                    out,
                    Some("message_delta"),
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": self.stop.unwrap_or(StopReason::Stop).anthropic(),
                                      "stop_sequence": null},
                            "usage": {"input_tokens": u.input, "output_tokens": u.output}}),
                );
                sse_frame(out, Some("message_stop"), &json!({"type": "message_stop"}));
            }
            Event::Error(msg) => out.extend_from_slice(&error_event(msg)),
        }
    }

    fn heartbeat(&self) -> Option<&'static [u8]> {
        Some(b": keep-alive\n\n")
    }
}
