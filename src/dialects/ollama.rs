//! The Ollama native dialect, both directions: client requests/answers on `P/chat` and
//! `P/generate` (NDJSON streams, `stream` defaulting to true), and the wire format of
//! `ollama`-type providers (`/api/chat`).
//!
//! Ollama tool calls carry no ids and their arguments are objects; ids are assigned in order
//! (`call_0`, `call_1`, …) and a `tool` message answers the oldest unanswered call (of the same
//! name when `tool_name` is given), so results still pair with calls in other dialects.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde_json::{json, Map, Value};

use super::anthropic::parse_arguments;
use super::canonical::{
    merge_usage, push_json_str, rfc3339_now, Decoder, Encoder, Event, Image, Lines, Message, Part,
    Request, Response, Role, StopReason, Usage,
};
use super::openai::push_tool_result;
use super::{as_text, bad, parse_object, Fields, Invalid, Target};

// ---------------------------------------------------------------------------------------------
// Requests.

/// Reads an Ollama `/api/chat` request.
pub fn read_chat(body: &[u8]) -> Result<Request, Invalid> {
    let m = parse_object(body)?;
    let mut req = Request::new(m.req_str("model")?);
    let messages = m.opt_array("messages")?.cloned().unwrap_or_default();
    // (id, name) of calls not yet answered.
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut calls = 0usize;
    for (i, msg) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = msg
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{path}.role"), "must be a string"))?;
        let content = msg.get("content").map(as_text).unwrap_or_default();
        match role {
            "system" => req.push_system(&content),
            "user" | "assistant" => {
                let mut parts = Vec::new();
                if !content.is_empty() {
                    parts.push(Part::Text(content));
                }
                for img in msg
                    .get("images")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    parts.push(Part::Image(image_of(&as_text(img))));
                }
                for c in msg
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let f = c.get("function").unwrap_or(&Value::Null);
                    let name = f.get("name").map(as_text).unwrap_or_default();
                    let id = c
                        .get("id")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("call_{calls}"), String::from);
                    calls += 1;
                    pending.push((id.clone(), name.clone()));
                    parts.push(Part::ToolCall {
                        id,
                        name,
                        arguments: f.get("arguments").map_or_else(
                            || "{}".into(),
                            |a| match a {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            },
                        ),
                    });
                }
                let role = if role == "user" {
                    Role::User
                } else {
                    Role::Assistant
                };
                req.messages.push(Message { role, parts });
            }
            "tool" => {
                let name = msg
                    .get("tool_name")
                    .or_else(|| msg.get("name"))
                    .and_then(Value::as_str);
                let pos = match name {
                    Some(n) => pending.iter().position(|(_, pn)| pn == n),
                    None => None,
                }
                .or(if pending.is_empty() { None } else { Some(0) });
                let id = pos
                    .map(|p| pending.remove(p).0)
                    .or_else(|| {
                        msg.get("tool_call_id")
                            .and_then(Value::as_str)
                            .map(String::from)
                    })
                    .unwrap_or_else(|| format!("call_{calls}"));
                push_tool_result(&mut req, id, content, false);
            }
            other => {
                return Err(bad(
                    &format!("{path}.role"),
                    &format!(
                        "has unknown value \"{other}\" (expected system, user, assistant or tool)"
                    ),
                ))
            }
        }
    }
    // Ollama's tools are OpenAI-shaped.
    super::openai::read_tools(&mut req, &m)?;
    read_options(&mut req, &m)?;
    Ok(req)
}

/// Reads an Ollama `/api/generate` request as a one-turn chat.
pub fn read_generate(body: &[u8]) -> Result<Request, Invalid> {
    let m = parse_object(body)?;
    let mut req = Request::new(m.req_str("model")?);
    if let Some(s) = m.opt_str("system")? {
        req.push_system(s);
    }
    let mut parts = vec![Part::Text(m.opt_str("prompt")?.unwrap_or("").to_string())];
    for img in m.opt_array("images")?.into_iter().flatten() {
        parts.push(Part::Image(image_of(&as_text(img))));
    }
    req.messages.push(Message {
        role: Role::User,
        parts,
    });
    read_options(&mut req, &m)?;
    req.prompt_style = true;
    Ok(req)
}

/// Ollama images are bare base64; the media type is sniffed from the first bytes.
fn image_of(data: &str) -> Image {
    let media_type = match data.as_bytes().get(..4) {
        Some(b"/9j/") => "image/jpeg",
        Some(b"R0lG") => "image/gif",
        Some(b"UklG") => "image/webp",
        _ => "image/png",
    };
    Image::Base64 {
        media_type: media_type.into(),
        data: data.to_string(),
    }
}

fn read_options(req: &mut Request, m: &Map<String, Value>) -> Result<(), Invalid> {
    // Ollama streams unless told otherwise.
    req.stream = m.opt_bool("stream")?.unwrap_or(true);
    req.stream_usage = true;
    let Some(opts) = m.get("options").filter(|o| !o.is_null()) else {
        return Ok(());
    };
    let opts = opts
        .as_object()
        .ok_or_else(|| bad("options", "must be an object"))?;
    let field = |k: &str| format!("options.{k}");
    let o = &mut req.options;
    let num = |k: &str| -> Result<Option<f64>, Invalid> {
        match opts.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(&field(k), "must be a number")),
        }
    };
    // num_predict < 0 means "no limit" in Ollama.
    o.max_tokens = num("num_predict")?.filter(|n| *n >= 0.0).map(|n| n as u64);
    o.temperature = num("temperature")?;
    o.top_p = num("top_p")?;
    o.top_k = num("top_k")?.map(|n| n as u64);
    o.seed = num("seed")?.map(|n| n as i64);
    o.stop = match opts.get("stop") {
        Some(Value::Array(a)) => a.iter().map(as_text).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok(())
}

/// The `/api/chat` body for an `ollama`-type provider.
pub fn write_chat(req: &Request, target: &Target<'_>) -> Bytes {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(s) = &req.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    // Tool call id → name, for `tool_name` on results.
    let mut names: Vec<(&str, &str)> = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::User | Role::Assistant => {
                let mut msg = json!({
                    "role": if m.role == Role::User { "user" } else { "assistant" },
                    "content": m.joined_text(),
                });
                let images: Vec<&str> = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Image(Image::Base64 { data, .. }) => Some(data.as_str()),
                        // Ollama cannot fetch URLs: such images are dropped (README).
                        _ => None,
                    })
                    .collect();
                if !images.is_empty() {
                    msg["images"] = json!(images);
                }
                let calls: Vec<Value> = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::ToolCall {
                            id,
                            name,
                            arguments,
                        } => {
                            names.push((id, name));
                            Some(json!({"function": {"name": name,
                                                     "arguments": parse_arguments(arguments)}}))
                        }
                        _ => None,
                    })
                    .collect();
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
            Role::Tool => {
                for p in &m.parts {
                    if let Part::ToolResult { id, content, .. } = p {
                        let mut msg = json!({"role": "tool", "content": content});
                        if let Some((_, name)) = names.iter().find(|(i, _)| i == id) {
                            msg["tool_name"] = json!(name);
                        }
                        messages.push(msg);
                    }
                }
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(req.stream));
    let o = &req.options;
    let mut options = Map::new();
    if let Some(v) = o.max_tokens {
        options.insert("num_predict".into(), json!(v));
    }
    if let Some(v) = o.temperature {
        options.insert("temperature".into(), json!(v));
    }
    if let Some(v) = o.top_p {
        options.insert("top_p".into(), json!(v));
    }
    if let Some(v) = o.top_k {
        options.insert("top_k".into(), json!(v));
    }
    if !o.stop.is_empty() {
        options.insert("stop".into(), json!(o.stop));
    }
    if let Some(v) = o.seed {
        options.insert("seed".into(), json!(v));
    }
    if let Some(v) = o.typical_p {
        options.insert("typical_p".into(), json!(v));
    }
    if let Some(v) = o.repetition_penalty {
        options.insert("repeat_penalty".into(), json!(v));
    }
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    if target.tools && !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    f["description"] = json!(d);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(k) = target.keep_alive {
        body.insert("keep_alive".into(), json!(format!("{}s", k.as_secs())));
    }
    Bytes::from(Value::Object(body).to_string())
}

// ---------------------------------------------------------------------------------------------
// Answers.

/// Reads a complete `/api/chat` answer (`stream: false`).
pub fn read_response(body: &[u8]) -> Result<Response, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let msg = v.get("message").unwrap_or(&Value::Null);
    let tool_calls: Vec<(String, String, String)> = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            (
                format!("call_{i}"),
                c.pointer("/function/name").map(as_text).unwrap_or_default(),
                c.pointer("/function/arguments").map_or_else(
                    || "{}".into(),
                    |a| match a {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                ),
            )
        })
        .collect();
    let mut stop = v
        .get("done_reason")
        .and_then(Value::as_str)
        .map_or(StopReason::Stop, StopReason::from_ollama);
    if !tool_calls.is_empty() && stop == StopReason::Stop {
        stop = StopReason::ToolUse;
    }
    Ok(Response {
        id: None,
        model: v.get("model").and_then(Value::as_str).map(String::from),
        text: msg
            .get("content")
            .or_else(|| v.get("response"))
            .map(as_text)
            .unwrap_or_default(),
        tool_calls,
        stop,
        usage: Some(read_usage(&v)),
    })
}

fn read_usage(v: &Value) -> Usage {
    Usage {
        input: v
            .get("prompt_eval_count")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output: v.get("eval_count").and_then(Value::as_u64).unwrap_or(0),
    }
}

/// Fields of Ollama's final object (`done: true`).
fn final_fields(obj: &mut Map<String, Value>, stop: StopReason, usage: Usage, took_ns: u64) {
    obj.insert("done_reason".into(), json!(stop.ollama()));
    obj.insert("done".into(), json!(true));
    obj.insert("total_duration".into(), json!(took_ns));
    obj.insert("load_duration".into(), json!(0));
    obj.insert("prompt_eval_count".into(), json!(usage.input));
    obj.insert("prompt_eval_duration".into(), json!(0));
    obj.insert("eval_count".into(), json!(usage.output));
    obj.insert("eval_duration".into(), json!(took_ns));
}

fn tool_calls_json(calls: &[(String, String, String)]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|(_, name, args)| json!({"function": {"name": name, "arguments": parse_arguments(args)}}))
            .collect(),
    )
}

/// A complete Ollama answer for the client (`/api/chat` or `/api/generate` shape).
pub fn write_response(r: &Response, model: &str, generate: bool, took_ns: u64) -> Value {
    let mut obj = Map::new();
    obj.insert("model".into(), json!(model));
    obj.insert("created_at".into(), json!(rfc3339_now()));
    if generate {
        obj.insert("response".into(), json!(r.text));
    } else {
        let mut message = json!({"role": "assistant", "content": r.text});
        if !r.tool_calls.is_empty() {
            message["tool_calls"] = tool_calls_json(&r.tool_calls);
        }
        obj.insert("message".into(), message);
    }
    final_fields(&mut obj, r.stop, r.usage.unwrap_or_default(), took_ns);
    Value::Object(obj)
}

/// The in-band error line of an NDJSON stream (the `ollama` client raises on it).
pub fn error_line(message: &str) -> Bytes {
    Bytes::from(format!("{}\n", json!({"error": message})))
}

// ---------------------------------------------------------------------------------------------
// Streams.

#[derive(serde::Deserialize)]
struct TokenLine<'a> {
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<TokenMessage<'a>>,
    #[serde(borrow, default)]
    response: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct TokenMessage<'a> {
    #[serde(borrow, default)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

/// Reads an Ollama NDJSON stream (`/api/chat` or `/api/generate`).
#[derive(Default)]
pub struct StreamDecoder {
    lines: Lines,
    started: bool,
    done: bool,
    tools: usize,
}

impl Decoder for StreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        let StreamDecoder {
            lines,
            started,
            done,
            tools,
        } = self;
        lines.feed(chunk, |line| {
            if line.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            // The common line — a token, not the last — read without building a `Value`.
            if let Ok(l) = serde_json::from_slice::<TokenLine>(line) {
                let plain = !l.done
                    && l.error.is_none()
                    && l.message.as_ref().is_none_or(|m| m.tool_calls.is_none());
                if plain {
                    if !*started {
                        *started = true;
                        out.push(Event::Start {
                            id: None,
                            model: l.model.map(|m| m.into_owned()),
                        });
                    }
                    let text = l.message.and_then(|m| m.content).or(l.response);
                    if let Some(t) = text.filter(|t| !t.is_empty()) {
                        out.push(Event::Text(t.into_owned()));
                    }
                    return;
                }
            }
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                out.push(Event::Error(
                    "the provider sent a malformed stream line".into(),
                ));
                return;
            };
            if let Some(e) = v.get("error") {
                out.push(Event::Error(as_text(e)));
                return;
            }
            if !*started {
                *started = true;
                out.push(Event::Start {
                    id: None,
                    model: v.get("model").and_then(Value::as_str).map(String::from),
                });
            }
            let msg = v.get("message").unwrap_or(&Value::Null);
            let text = msg
                .get("content")
                .or_else(|| v.get("response"))
                .and_then(Value::as_str);
            if let Some(t) = text.filter(|t| !t.is_empty()) {
                out.push(Event::Text(t.to_string()));
            }
            for c in msg
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let index = *tools;
                *tools += 1;
                out.push(Event::ToolStart {
                    index,
                    id: format!("call_{index}"),
                    name: c.pointer("/function/name").map(as_text).unwrap_or_default(),
                });
                let args = c.pointer("/function/arguments").map_or_else(
                    || "{}".into(),
                    |a| match a {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                );
                out.push(Event::ToolArgs {
                    index,
                    fragment: args,
                });
            }
            if v.get("done").and_then(Value::as_bool) == Some(true) {
                let mut stop = v
                    .get("done_reason")
                    .and_then(Value::as_str)
                    .map_or(StopReason::Stop, StopReason::from_ollama);
                if *tools > 0 && stop == StopReason::Stop {
                    stop = StopReason::ToolUse;
                }
                out.push(Event::Stop(stop));
                out.push(Event::Usage(read_usage(&v)));
                *done = true;
                out.push(Event::Done);
            }
        });
    }

    fn finished(&self) -> bool {
        self.done
    }
}

/// Writes Ollama NDJSON (`/api/chat` lines, or `/api/generate` lines for a prompt-style client).
/// Tool calls are sent whole, in one line, once their arguments are complete (as Ollama does).
pub struct StreamEncoder {
    model: String,
    generate: bool,
    started: Instant,
    /// Every tool call of the answer; those from `flushed` on are not sent yet.
    calls: Vec<(String, String, String)>,
    flushed: usize,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

impl StreamEncoder {
    pub fn new(req: &Request) -> StreamEncoder {
        StreamEncoder {
            model: req.model.clone(),
            generate: req.prompt_style,
            started: Instant::now(),
            calls: Vec::new(),
            flushed: 0,
            stop: None,
            usage: None,
        }
    }

    /// One token line, written directly (the per-token hot path).
    fn line(&self, text: &str, out: &mut BytesMut) {
        out.extend_from_slice(b"{\"model\":");
        push_json_str(out, &self.model);
        out.extend_from_slice(b",\"created_at\":\"");
        out.extend_from_slice(rfc3339_now().as_bytes());
        if self.generate {
            out.extend_from_slice(b"\",\"response\":");
            push_json_str(out, text);
        } else {
            out.extend_from_slice(b"\",\"message\":{\"role\":\"assistant\",\"content\":");
            push_json_str(out, text);
            out.extend_from_slice(b"}");
        }
        out.extend_from_slice(b",\"done\":false}\n");
    }

    fn flush_calls(&mut self, out: &mut BytesMut) {
        if self.flushed == self.calls.len() || self.generate {
            return;
        }
        let v = json!({"model": self.model, "created_at": rfc3339_now(),
                       "message": {"role": "assistant", "content": "",
                                   "tool_calls": tool_calls_json(&self.calls[self.flushed..])},
                       "done": false});
        self.flushed = self.calls.len();
        out.extend_from_slice(v.to_string().as_bytes());
        out.extend_from_slice(b"\n");
    }
}

impl Encoder for StreamEncoder {
    fn encode(&mut self, event: &Event, out: &mut BytesMut) {
        match event {
            Event::Start { .. } => {}
            Event::Text(t) => self.line(t, out),
            Event::ToolStart { id, name, .. } => {
                self.calls.push((id.clone(), name.clone(), String::new()))
            }
            Event::ToolArgs { index, fragment } => {
                if let Some(c) = self.calls.get_mut(*index) {
                    c.2.push_str(fragment);
                }
            }
            Event::Stop(s) => self.stop = Some(*s),
            Event::Usage(u) => self.usage = Some(merge_usage(self.usage, *u)),
            Event::Done => {
                self.flush_calls(out);
                let mut obj = Map::new();
                obj.insert("model".into(), json!(self.model));
                obj.insert("created_at".into(), json!(rfc3339_now()));
                if self.generate {
                    obj.insert("response".into(), json!(""));
                } else {
                    obj.insert(
                        "message".into(),
                        json!({"role": "assistant", "content": ""}),
                    );
                }
                let took = self.started.elapsed().as_nanos() as u64;
                final_fields(
                    &mut obj,
                    self.stop.unwrap_or(StopReason::Stop),
                    self.usage.unwrap_or_default(),
                    took,
                );
                out.extend_from_slice(Value::Object(obj).to_string().as_bytes());
                out.extend_from_slice(b"\n");
            }
            Event::Error(msg) => out.extend_from_slice(&error_line(msg)),
        }
    }
}
