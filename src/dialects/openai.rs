//! The OpenAI dialect: Chat Completions and legacy Completions, both directions.
//!
//! [`ChatRequest`] is the same-dialect fast path: validate what routing depends on, rewrite
//! `model`, strip what a provider can't take; everything else passes untouched. The rest reads and
//! writes the canonical model (`super::canonical`) for conversions to and from other dialects.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::canonical::{
    new_id, unix_now, Image, Message, Part, Request, Response, Role, StopReason, Tool, ToolChoice,
    Usage,
};
use super::{as_text, bad, parse_object, read_tool, Fields, Invalid, Target};

mod stream;
pub use stream::{ChatDecoder, ChatEncoder};

// ---------------------------------------------------------------------------------------------
// Chat Completions requests: client → canonical, canonical → provider.

/// Reads a Chat Completions request (the OpenAI and LM Studio chat routes).
pub fn read_chat(body: &[u8]) -> Result<Request, Invalid> {
    let m = parse_object(body)?;
    let mut req = Request::new(m.req_str("model")?);
    let messages = m
        .opt_array("messages")?
        .ok_or_else(|| Invalid::new("missing required field \"messages\"", Some("messages")))?;
    for (i, msg) in messages.iter().enumerate() {
        read_chat_message(&mut req, msg, &format!("messages[{i}]"))?;
    }
    read_tools(&mut req, &m)?;
    read_options(&mut req, &m)?;
    req.options.max_tokens = m
        .opt_u64("max_completion_tokens")?
        .or(req.options.max_tokens);
    Ok(req)
}

fn read_options(req: &mut Request, m: &Map<String, Value>) -> Result<(), Invalid> {
    req.stream = m.opt_bool("stream")?.unwrap_or(false);
    req.stream_usage = m
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let o = &mut req.options;
    o.max_tokens = m.opt_u64("max_tokens")?;
    o.temperature = m.opt_f64("temperature")?;
    o.top_p = m.opt_f64("top_p")?;
    o.top_k = m.opt_u64("top_k")?;
    o.stop = m.strings("stop")?;
    o.seed = m.opt_i64("seed")?;
    Ok(())
}

fn read_chat_message(req: &mut Request, msg: &Value, path: &str) -> Result<(), Invalid> {
    let obj = msg
        .as_object()
        .ok_or_else(|| bad(path, "must be an object"))?;
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{path}.role"), "must be a string"))?;
    let content = obj.get("content").unwrap_or(&Value::Null);
    let cpath = format!("{path}.content");
    match role {
        "system" | "developer" => {
            let text = read_parts(content, &cpath)?
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("");
            req.push_system(&text);
        }
        "user" => req.messages.push(Message {
            role: Role::User,
            parts: read_parts(content, &cpath)?,
        }),
        "assistant" => {
            let mut parts = read_parts(content, &cpath)?;
            if let Some(calls) = obj.get("tool_calls").and_then(Value::as_array) {
                for (j, c) in calls.iter().enumerate() {
                    let f = c.get("function").unwrap_or(&Value::Null);
                    let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                        bad(
                            &format!("{path}.tool_calls[{j}].function.name"),
                            "must be a string",
                        )
                    })?;
                    parts.push(Part::ToolCall {
                        id: c
                            .get("id")
                            .and_then(Value::as_str)
                            .map_or_else(|| format!("call_{j}"), String::from),
                        name: name.to_string(),
                        arguments: f.get("arguments").map_or_else(|| "{}".into(), as_text),
                    });
                }
            }
            if let Some(f) = obj.get("function_call").filter(|f| f.is_object()) {
                parts.push(Part::ToolCall {
                    id: "call_0".into(),
                    name: f.get("name").map(as_text).unwrap_or_default(),
                    arguments: f.get("arguments").map_or_else(|| "{}".into(), as_text),
                });
            }
            req.messages.push(Message {
                role: Role::Assistant,
                parts,
            });
        }
        "tool" | "function" => {
            let id = obj
                .get("tool_call_id")
                .or_else(|| obj.get("name"))
                .map(as_text)
                .unwrap_or_default();
            let text = match content {
                Value::Array(_) => read_parts(content, &cpath)?
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect::<String>(),
                other => as_text(other),
            };
            push_tool_result(req, id, text, false);
        }
        other => {
            return Err(bad(
                &format!("{path}.role"),
                &format!("has unknown value \"{other}\" (expected system, developer, user, assistant or tool)"),
            ))
        }
    }
    Ok(())
}

/// Consecutive tool results share one canonical `Tool` message (Anthropic needs them together).
pub(crate) fn push_tool_result(req: &mut Request, id: String, content: String, is_error: bool) {
    let part = Part::ToolResult {
        id,
        content,
        is_error,
    };
    match req.messages.last_mut() {
        Some(m) if m.role == Role::Tool => m.parts.push(part),
        _ => req.messages.push(Message {
            role: Role::Tool,
            parts: vec![part],
        }),
    }
}

/// `content` as a string, null, or a list of `text` / `image_url` parts.
fn read_parts(content: &Value, path: &str) -> Result<Vec<Part>, Invalid> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::Text(s.clone())]),
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for (k, it) in items.iter().enumerate() {
                match it.get("type").and_then(Value::as_str) {
                    Some("text") | Some("input_text") => {
                        parts.push(Part::Text(it.get("text").map(as_text).unwrap_or_default()))
                    }
                    Some("image_url") => {
                        let url = it
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                bad(&format!("{path}[{k}].image_url.url"), "must be a string")
                            })?;
                        parts.push(Part::Image(Image::from_url(url)));
                    }
                    // Audio/file parts have no counterpart on most providers: dropped.
                    _ => {}
                }
            }
            Ok(parts)
        }
        _ => Err(bad(path, "must be a string, null or a list of parts")),
    }
}

/// Tools in the OpenAI shape (`tools[].function`, also Ollama's), legacy `functions`, tool choice.
pub(crate) fn read_tools(req: &mut Request, m: &Map<String, Value>) -> Result<(), Invalid> {
    for (i, t) in m.opt_array("tools")?.into_iter().flatten().enumerate() {
        let f = t.get("function").unwrap_or(t);
        req.tools
            .push(read_tool(f, "parameters", &format!("tools[{i}].function"))?);
    }
    if let Some(funcs) = m.opt_array("functions")? {
        for f in funcs {
            if let Some(name) = f.get("name").and_then(Value::as_str) {
                req.tools.push(Tool {
                    name: name.into(),
                    description: f
                        .get("description")
                        .and_then(Value::as_str)
                        .map(String::from),
                    parameters: f.get("parameters").cloned().unwrap_or(json!({})),
                });
            }
        }
    }
    req.tool_choice = match m.get("tool_choice").or_else(|| m.get("function_call")) {
        Some(Value::String(s)) => match s.as_str() {
            "none" => Some(ToolChoice::None),
            "required" | "any" => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        },
        Some(v @ Value::Object(_)) => v
            .pointer("/function/name")
            .or_else(|| v.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Named(n.into())),
        _ => None,
    };
    Ok(())
}

/// Sampling options outside OpenAI's API, under each self-hosted server's own name; OpenAI
/// itself gets none of them (it rejects unknown parameters).
/// Sampling options only some OpenAI-wire servers take, under the names each takes.
fn write_sampling_extras(
    o: &crate::dialects::canonical::Options,
    target: &Target<'_>,
    body: &mut Map<String, Value>,
) {
    if let (Some(v), Some(name)) = (o.repetition_penalty, target.repetition_penalty) {
        body.insert(name.into(), json!(v));
    }
    if let (Some(v), true) = (o.typical_p, target.typical_p) {
        body.insert("typical_p".into(), json!(v));
    }
}

/// The Chat Completions body for an OpenAI-wire provider.
pub fn write_chat(req: &Request, target: &Target<'_>) -> Bytes {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(sys) = &req.system {
        messages.push(json!({"role": "system", "content": sys}));
    }
    for m in &req.messages {
        write_chat_message(m, &mut messages);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));
    body.insert("messages".into(), Value::Array(messages));
    write_common(req, target, &mut body);
    Bytes::from(Value::Object(body).to_string())
}

fn write_common(req: &Request, target: &Target<'_>, body: &mut Map<String, Value>) {
    let o = &req.options;
    if let Some(v) = o.max_tokens {
        body.insert("max_tokens".into(), json!(v));
    }
    if let Some(v) = o.temperature {
        body.insert("temperature".into(), json!(v));
    }
    if let Some(v) = o.top_p {
        body.insert("top_p".into(), json!(v));
    }
    // `top_k` is not in OpenAI's API, but vLLM, LM Studio and llama.cpp take it; OpenAI itself
    // would reject it, so it is only sent to self-hosted types.
    if let Some(v) = o.top_k.filter(|_| target.top_k) {
        body.insert("top_k".into(), json!(v));
    }
    if !o.stop.is_empty() {
        body.insert("stop".into(), json!(o.stop));
    }
    if let Some(v) = o.seed {
        body.insert("seed".into(), json!(v));
    }
    write_sampling_extras(o, target, body);
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
        if let Some(c) = &req.tool_choice {
            body.insert(
                "tool_choice".into(),
                match c {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Required => json!("required"),
                    ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
                },
            );
        }
    }
    body.insert("stream".into(), json!(req.stream));
    if req.stream {
        // Usage is needed to fill in other dialects' final frames.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
}

fn write_chat_message(m: &Message, out: &mut Vec<Value>) {
    match m.role {
        Role::User => {
            let only_text = m.parts.iter().all(|p| matches!(p, Part::Text(_)));
            let content = if only_text {
                json!(m.joined_text())
            } else {
                Value::Array(
                    m.parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(json!({"type": "text", "text": t})),
                            Part::Image(i) => {
                                Some(json!({"type": "image_url", "image_url": {"url": i.to_url()}}))
                            }
                            _ => None,
                        })
                        .collect(),
                )
            };
            // Tool results inside a user turn (Anthropic style) become `tool` messages first.
            write_tool_results(m, out);
            if m.parts
                .iter()
                .any(|p| matches!(p, Part::Text(_) | Part::Image(_)))
            {
                out.push(json!({"role": "user", "content": content}));
            }
        }
        Role::Assistant => {
            let text = m.joined_text();
            let calls: Vec<Value> = m
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                    } => Some(json!({"id": id, "type": "function",
                                     "function": {"name": name, "arguments": arguments}})),
                    _ => None,
                })
                .collect();
            let mut msg = json!({"role": "assistant",
                                 "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        }
        Role::Tool => write_tool_results(m, out),
    }
}

fn write_tool_results(m: &Message, out: &mut Vec<Value>) {
    for p in &m.parts {
        if let Part::ToolResult { id, content, .. } = p {
            out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chat Completions answers: provider → canonical, canonical → client.

/// Reads a `chat.completion` object.
pub fn read_chat_response(body: &[u8]) -> Result<Response, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let choice = v
        .pointer("/choices/0")
        .ok_or("the answer has no choices[0]")?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut tool_calls = Vec::new();
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for (i, c) in calls.iter().enumerate() {
            tool_calls.push((
                c.get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{i}"), String::from),
                c.pointer("/function/name").map(as_text).unwrap_or_default(),
                c.pointer("/function/arguments")
                    .map_or_else(|| "{}".into(), as_text),
            ));
        }
    }
    Ok(Response {
        id: v.get("id").and_then(Value::as_str).map(String::from),
        model: v.get("model").and_then(Value::as_str).map(String::from),
        text: msg.get("content").map(as_text).unwrap_or_default(),
        tool_calls,
        stop: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map_or(StopReason::Stop, StopReason::from_openai),
        usage: read_usage(&v),
    })
}

fn read_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        output: u
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

fn usage_json(u: Usage) -> Value {
    json!({"prompt_tokens": u.input, "completion_tokens": u.output,
           "total_tokens": u.input + u.output})
}

/// A `chat.completion` object for the client.
pub fn write_chat_response(r: &Response, model: &str) -> Value {
    let calls: Vec<Value> = r
        .tool_calls
        .iter()
        .map(|(id, name, args)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
        })
        .collect();
    let mut message = json!({"role": "assistant",
        "content": if r.text.is_empty() && !calls.is_empty() { Value::Null } else { json!(r.text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": chat_id(r.id.as_deref()),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": r.stop.openai()}],
        "usage": usage_json(r.usage.unwrap_or_default()),
    })
}

fn chat_id(id: Option<&str>) -> String {
    match id {
        Some(id) if id.starts_with("chatcmpl") => id.to_string(),
        _ => new_id("chatcmpl-"),
    }
}

/// A legacy `text_completion` object for the client.
pub fn write_completion_response(r: &Response, model: &str) -> Value {
    json!({
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": unix_now(),
        "model": model,
        "choices": [{"text": r.text, "index": 0, "logprobs": null,
                     "finish_reason": r.stop.openai()}],
        "usage": usage_json(r.usage.unwrap_or_default()),
    })
}

/// Reads a legacy Completions request as a one-message chat (for non-OpenAI-wire providers).
pub fn read_completion(body: &[u8]) -> Result<Request, Invalid> {
    let m = parse_object(body)?;
    let mut req = Request::new(m.req_str("model")?);
    let prompt = match m.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => as_text(&a[0]),
        Some(Value::Array(_)) => {
            return Err(bad(
                "prompt",
                "must be a single string for this model's provider (batched prompts pass only to OpenAI-compatible providers)",
            ))
        }
        None | Some(Value::Null) => {
            return Err(Invalid::new(
                "missing required field \"prompt\"",
                Some("prompt"),
            ))
        }
        Some(_) => return Err(bad("prompt", "must be a string")),
    };
    req.messages.push(Message::text(Role::User, prompt));
    read_options(&mut req, &m)?;
    req.prompt_style = true;
    Ok(req)
}

/// The in-band error frame of an OpenAI-dialect stream (the shape the OpenAI SDKs raise on).
pub fn sse_error(message: &str) -> Bytes {
    let body =
        json!({"error": {"message": message, "type": "api_error", "param": null, "code": 502}});
    Bytes::from(format!("data: {body}\n\n"))
}
