//! The OpenAI Responses dialect (`/v1/responses`), client side only: providers speak Chat
//! Completions, Ollama or Anthropic, so Responses requests are always converted.
//!
//! The router keeps no conversation state: `previous_response_id` is refused with a 400 that says
//! so, and answers are not stored. Built-in tools (web search, file search, …) have no
//! counterpart on self-hosted providers and are dropped; function tools convert.

use bytes::BytesMut;
use serde_json::{json, Value};

use super::canonical::{
    merge_usage, new_id, push_json_str, sse_frame, unix_now, Encoder, Event, Image, Message, Part,
    Request, Response, Role, StopReason, ToolChoice, Usage,
};
use super::openai::push_tool_result;
use super::{as_text, bad, parse_object, read_tool, Fields, Invalid};

pub fn read_request(body: &[u8]) -> Result<Request, Invalid> {
    let m = parse_object(body)?;
    let mut req = Request::new(m.req_str("model")?);
    if m.opt_str("previous_response_id")?.is_some() {
        return Err(bad(
            "previous_response_id",
            "is not supported: the router stores no responses; send the whole conversation in \"input\"",
        ));
    }
    if let Some(i) = m.opt_str("instructions")? {
        req.push_system(i);
    }
    match m.get("input") {
        Some(Value::String(s)) => req.messages.push(Message::text(Role::User, s.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                read_item(&mut req, item, &format!("input[{i}]"))?;
            }
        }
        None | Some(Value::Null) => {
            return Err(Invalid::new(
                "missing required field \"input\"",
                Some("input"),
            ))
        }
        Some(_) => return Err(bad("input", "must be a string or a list of input items")),
    }
    for (i, t) in m.opt_array("tools")?.into_iter().flatten().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("function") {
            continue;
        }
        req.tools
            .push(read_tool(t, "parameters", &format!("tools[{i}]"))?);
    }
    req.tool_choice = match m.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        },
        Some(v @ Value::Object(_)) => v
            .get("name")
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Named(n.into())),
        _ => None,
    };
    req.stream = m.opt_bool("stream")?.unwrap_or(false);
    req.stream_usage = true;
    req.options.max_tokens = m.opt_u64("max_output_tokens")?;
    req.options.temperature = m.opt_f64("temperature")?;
    req.options.top_p = m.opt_f64("top_p")?;
    Ok(req)
}

fn read_item(req: &mut Request, item: &Value, path: &str) -> Result<(), Invalid> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "message" => {
            let role = item
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{path}.role"), "must be a string"))?;
            let mut parts = Vec::new();
            match item.get("content") {
                Some(Value::String(s)) => parts.push(Part::Text(s.clone())),
                Some(Value::Array(cs)) => {
                    for c in cs {
                        match c.get("type").and_then(Value::as_str) {
                            Some("input_text" | "output_text" | "text") => parts
                                .push(Part::Text(c.get("text").map(as_text).unwrap_or_default())),
                            Some("input_image") => {
                                if let Some(u) = c.get("image_url").and_then(Value::as_str) {
                                    parts.push(Part::Image(Image::from_url(u)));
                                }
                            }
                            Some("refusal") => parts.push(Part::Text(
                                c.get("refusal").map(as_text).unwrap_or_default(),
                            )),
                            _ => {}
                        }
                    }
                }
                _ => {
                    return Err(bad(
                        &format!("{path}.content"),
                        "must be a string or a list of content parts",
                    ))
                }
            }
            match role {
                "system" | "developer" => {
                    let text: String = parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(t.as_str()),
                            _ => None,
                        })
                        .collect();
                    req.push_system(&text);
                }
                "user" => req.messages.push(Message { role: Role::User, parts }),
                "assistant" => push_assistant(req, parts),
                other => {
                    return Err(bad(
                        &format!("{path}.role"),
                        &format!("has unknown value \"{other}\" (expected user, assistant, system or developer)"),
                    ))
                }
            }
        }
        "function_call" => {
            let call = Part::ToolCall {
                id: item
                    .get("call_id")
                    .map(as_text)
                    .ok_or_else(|| bad(&format!("{path}.call_id"), "must be a string"))?,
                name: item.get("name").map(as_text).unwrap_or_default(),
                arguments: item.get("arguments").map_or_else(|| "{}".into(), as_text),
            };
            push_assistant(req, vec![call]);
        }
        "function_call_output" => {
            let id = item
                .get("call_id")
                .map(as_text)
                .ok_or_else(|| bad(&format!("{path}.call_id"), "must be a string"))?;
            let output = match item.get("output") {
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Some(v) => as_text(v),
                None => String::new(),
            };
            push_tool_result(req, id, output, false);
        }
        // reasoning items and built-in tool calls carry nothing a provider here can use.
        _ => {}
    }
    Ok(())
}

/// Consecutive assistant items (text, then function calls) form one assistant turn.
fn push_assistant(req: &mut Request, parts: Vec<Part>) {
    match req.messages.last_mut() {
        Some(m) if m.role == Role::Assistant => m.parts.extend(parts),
        _ => req.messages.push(Message {
            role: Role::Assistant,
            parts,
        }),
    }
}

fn usage_json(u: Usage) -> Value {
    json!({"input_tokens": u.input, "input_tokens_details": {"cached_tokens": 0},
           "output_tokens": u.output, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": u.input + u.output})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([{"type": "output_text", "text": text, "annotations": []}])
    };
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

fn call_item(id: &str, call_id: &str, name: &str, args: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
           "arguments": args, "status": status})
}

/// The `response` object; `output` and `usage` filled in when finished.
fn envelope(
    id: &str,
    model: &str,
    created: u64,
    status: &str,
    output: Vec<Value>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
) -> Value {
    let incomplete =
        (stop == Some(StopReason::Length)).then(|| json!({"reason": "max_output_tokens"}));
    json!({
        "id": id, "object": "response", "created_at": created, "status": status,
        "error": null, "incomplete_details": incomplete, "instructions": null,
        "max_output_tokens": null, "model": model, "output": output,
        "parallel_tool_calls": true, "previous_response_id": null, "reasoning": {"effort": null, "summary": null},
        "store": false, "temperature": null, "text": {"format": {"type": "text"}},
        "tool_choice": "auto", "tools": [], "top_p": null, "truncation": "disabled",
        "usage": usage.map(usage_json), "metadata": {},
    })
}

fn final_status(stop: StopReason) -> &'static str {
    if stop == StopReason::Length {
        "incomplete"
    } else {
        "completed"
    }
}

pub fn write_response(r: &Response, model: &str) -> Value {
    let mut output = Vec::new();
    if !r.text.is_empty() || r.tool_calls.is_empty() {
        output.push(message_item(&new_id("msg_"), &r.text, "completed"));
    }
    for (call_id, name, args) in &r.tool_calls {
        output.push(call_item(&new_id("fc_"), call_id, name, args, "completed"));
    }
    envelope(
        &new_id("resp_"),
        model,
        unix_now(),
        final_status(r.stop),
        output,
        Some(r.stop),
        Some(r.usage.unwrap_or_default()),
    )
}

/// Writes the Responses event sequence: `response.created`, `response.in_progress`, output items
/// with their deltas, `response.completed` (or `response.incomplete` at the token limit).
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    seq: u64,
    started: bool,
    /// Finished output items, for the final `response` object.
    output: Vec<Value>,
    open: Open,
    /// Canonical tool index → (item id, call id, name, arguments so far, output index).
    calls: Vec<(String, String, String, String, usize)>,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

enum Open {
    None,
    /// Item id, output index, text so far.
    Message(String, usize, String),
    /// Canonical tool index.
    Call(usize),
}

impl StreamEncoder {
    pub fn new(req: &Request) -> StreamEncoder {
        StreamEncoder {
            id: new_id("resp_"),
            model: req.model.clone(),
            created: unix_now(),
            seq: 0,
            started: false,
            output: Vec::new(),
            open: Open::None,
            calls: Vec::new(),
            stop: None,
            usage: None,
        }
    }

    fn emit(&mut self, kind: &str, mut data: Value, out: &mut BytesMut) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        sse_frame(out, Some(kind), &data);
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let r = envelope(
            &self.id,
            &self.model,
            self.created,
            "in_progress",
            Vec::new(),
            None,
            None,
        );
        self.emit("response.created", json!({"response": r}), out);
        let r = envelope(
            &self.id,
            &self.model,
            self.created,
            "in_progress",
            Vec::new(),
            None,
            None,
        );
        self.emit("response.in_progress", json!({"response": r}), out);
    }

    fn close(&mut self, out: &mut BytesMut) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message(id, index, text) => {
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index,
                    "content_index": 0, "text": text, "logprobs": []}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": []}}),
                    out,
                );
                let item = message_item(&id, &text, "completed");
                self.emit(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                    out,
                );
                self.output.push(item);
            }
            Open::Call(t) => {
                let (id, call_id, name, args, index) = self.calls[t].clone();
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": id,
                    "output_index": index, "arguments": args}),
                    out,
                );
                let item = call_item(&id, &call_id, &name, &args, "completed");
                self.emit(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                    out,
                );
                self.output.push(item);
            }
        }
    }

    fn next_index(&self) -> usize {
        self.output.len()
    }
}

impl Encoder for StreamEncoder {
    fn encode(&mut self, event: &Event, out: &mut BytesMut) {
        match event {
            Event::Start { .. } => self.start(out),
            Event::Text(t) => {
                self.start(out);
                if !matches!(self.open, Open::Message(..)) {
                    self.close(out);
                    let id = new_id("msg_");
                    let index = self.next_index();
                    self.emit(
                        "response.output_item.added",
                        json!({"output_index": index,
                        "item": message_item(&id, "", "in_progress")}),
                        out,
                    );
                    self.emit(
                        "response.content_part.added",
                        json!({"item_id": id,
                        "output_index": index, "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []}}),
                        out,
                    );
                    self.open = Open::Message(id, index, String::new());
                }
                let (id, index) = match &mut self.open {
                    Open::Message(id, index, text) => {
                        text.push_str(t);
                        (id.clone(), *index)
                    }
                    _ => return,
                };
                // The per-token hot path, written directly.
                out.extend_from_slice(
                    b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":",
                );
                push_json_str(out, &id);
                out.extend_from_slice(b",\"output_index\":");
                out.extend_from_slice(index.to_string().as_bytes());
                out.extend_from_slice(b",\"content_index\":0,\"delta\":");
                push_json_str(out, t);
                out.extend_from_slice(b",\"logprobs\":[],\"sequence_number\":");
                out.extend_from_slice(self.seq.to_string().as_bytes());
                out.extend_from_slice(b"}\n\n");
                self.seq += 1;
            }
            Event::ToolStart {
                index: t,
                id: call_id,
                name,
            } => {
                self.start(out);
                self.close(out);
                let id = new_id("fc_");
                let index = self.next_index();
                self.emit(
                    "response.output_item.added",
                    json!({"output_index": index,
                    "item": call_item(&id, call_id, name, "", "in_progress")}),
                    out,
                );
                if self.calls.len() <= *t {
                    self.calls.resize(*t + 1, Default::default());
                }
                self.calls[*t] = (id, call_id.clone(), name.clone(), String::new(), index);
                self.open = Open::Call(*t);
            }
            Event::ToolArgs { index: t, fragment } => {
                if let Some(c) = self.calls.get_mut(*t) {
                    c.3.push_str(fragment);
                    let (id, index) = (c.0.clone(), c.4);
                    self.emit(
                        "response.function_call_arguments.delta",
                        json!({"item_id": id,
                        "output_index": index, "delta": fragment}),
                        out,
                    );
                }
            }
            Event::Stop(s) => self.stop = Some(*s),
            Event::Usage(u) => self.usage = Some(merge_usage(self.usage, *u)),
            Event::Done => {
                self.start(out);
                self.close(out);
                let stop = self.stop.unwrap_or(StopReason::Stop);
                let status = final_status(stop);
                let r = envelope(
                    &self.id,
                    &self.model,
                    self.created,
                    status,
                    std::mem::take(&mut self.output),
                    Some(stop),
                    Some(self.usage.unwrap_or_default()),
                );
                let kind = if status == "incomplete" {
                    "response.incomplete"
                } else {
                    "response.completed"
                };
                self.emit(kind, json!({"response": r}), out);
            }
            Event::Error(msg) => {
                // `error` is the Responses error event; the nested `error` object also makes the
                // OpenAI SDKs raise instead of ending the stream quietly.
                self.emit(
                    "error",
                    json!({"code": "server_error", "message": msg, "param": null,
                    "error": {"type": "server_error", "code": "server_error", "message": msg}}),
                    out,
                );
            }
        }
    }

    fn heartbeat(&self) -> Option<&'static [u8]> {
        Some(b": keep-alive\n\n")
    }
}

/// The in-band error event of a Responses stream (when no encoder state is at hand).
pub fn error_event(message: &str) -> bytes::Bytes {
    let mut out = BytesMut::new();
    sse_frame(
        &mut out,
        Some("error"),
        &json!({"type": "error", "code": "server_error",
        "message": message, "param": null, "sequence_number": 0,
        "error": {"type": "server_error", "code": "server_error", "message": message}}),
    );
    out.freeze()
}
