//! OpenAI Chat Completions streams, both directions: [`ChatDecoder`] reads a provider's chunks
//! (and legacy Completions chunks) into canonical events, [`ChatEncoder`] writes canonical events
//! as a client's chunks.

use bytes::BytesMut;
use serde_json::{json, Value};

use super::super::as_text;
use super::super::canonical::{
    merge_usage, new_id, push_json_str, sse_frame, unix_now, Decoder, Encoder, Event, Request, Sse,
    StopReason, Usage,
};
use super::{read_usage, sse_error, usage_json};

/// The common chunk — a text delta, a role, a finish reason — read without building a `Value`.
/// Anything else (tool calls, usage, errors) takes the general path.
#[derive(serde::Deserialize)]
struct TextChunk<'a> {
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    choices: Vec<TextChoice<'a>>,
    #[serde(default)]
    usage: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct TextChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<TextDelta<'a>>,
    /// A legacy Completions chunk's text (`/v1/completions` streams).
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct TextDelta<'a> {
    #[serde(borrow, default)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

/// Reads an OpenAI-wire SSE stream: Chat Completions chunks, and legacy Completions chunks
/// (`choices[0].text`), which a passed-through `/v1/completions` stream replays from.
#[derive(Default)]
pub struct ChatDecoder {
    sse: Sse,
    started: bool,
    done: bool,
    /// A `finish_reason` arrived: the answer is complete even if `[DONE]` never does.
    stopped: bool,
    /// OpenAI tool-call index → canonical index (in order of appearance).
    tools: Vec<u64>,
}

impl Decoder for ChatDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        let ChatDecoder {
            sse,
            started,
            done,
            stopped,
            tools,
        } = self;
        sse.feed(chunk, |_, data| {
            if data == b"[DONE]" {
                *done = true;
                out.push(Event::Done);
                return;
            }
            if let Ok(c) = serde_json::from_slice::<TextChunk>(data) {
                let simple = c.usage.is_none()
                    && c.error.is_none()
                    && c.choices.len() == 1
                    && c.choices[0]
                        .delta
                        .as_ref()
                        .is_none_or(|d| d.tool_calls.is_none());
                if simple {
                    if !*started {
                        *started = true;
                        out.push(Event::Start {
                            id: c.id.map(|s| s.into_owned()),
                            model: c.model.map(|s| s.into_owned()),
                        });
                    }
                    let choice = &c.choices[0];
                    let text = choice.delta.as_ref().and_then(|d| d.content.as_deref());
                    if let Some(t) = text.or(choice.text.as_deref()) {
                        if !t.is_empty() {
                            out.push(Event::Text(t.to_string()));
                        }
                    }
                    if let Some(f) = choice.finish_reason.as_deref() {
                        *stopped = true;
                        out.push(Event::Stop(StopReason::from_openai(f)));
                    }
                    return;
                }
            }
            let Ok(v) = serde_json::from_slice::<Value>(data) else {
                out.push(Event::Error(
                    "the provider sent a malformed stream frame".into(),
                ));
                return;
            };
            if let Some(e) = v.get("error") {
                out.push(Event::Error(
                    e.get("message").map_or_else(|| e.to_string(), as_text),
                ));
                return;
            }
            if !*started {
                *started = true;
                out.push(Event::Start {
                    id: v.get("id").and_then(Value::as_str).map(String::from),
                    model: v.get("model").and_then(Value::as_str).map(String::from),
                });
            }
            if let Some(choice) = v.pointer("/choices/0") {
                let delta = choice.get("delta").unwrap_or(&Value::Null);
                let text = delta.get("content").or_else(|| choice.get("text"));
                if let Some(t) = text.and_then(Value::as_str) {
                    if !t.is_empty() {
                        out.push(Event::Text(t.to_string()));
                    }
                }
                if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                    for c in calls {
                        let oi = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let index = match tools.iter().position(|&t| t == oi) {
                            Some(i) => i,
                            None => {
                                tools.push(oi);
                                let index = tools.len() - 1;
                                out.push(Event::ToolStart {
                                    index,
                                    id: c
                                        .get("id")
                                        .and_then(Value::as_str)
                                        .map_or_else(|| format!("call_{index}"), String::from),
                                    name: c
                                        .pointer("/function/name")
                                        .map(as_text)
                                        .unwrap_or_default(),
                                });
                                index
                            }
                        };
                        if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str) {
                            if !a.is_empty() {
                                out.push(Event::ToolArgs {
                                    index,
                                    fragment: a.to_string(),
                                });
                            }
                        }
                    }
                }
                if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                    *stopped = true;
                    out.push(Event::Stop(StopReason::from_openai(f)));
                }
            }
            if let Some(u) = read_usage(&v) {
                out.push(Event::Usage(u));
            }
        });
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn eof(&mut self, out: &mut Vec<Event>) -> bool {
        if self.stopped && !self.done {
            self.done = true;
            out.push(Event::Done);
        }
        self.done
    }
}

/// Writes Chat Completions chunks (or legacy `text_completion` chunks for a prompt-style client).
pub struct ChatEncoder {
    id: String,
    model: String,
    created: u64,
    completion: bool,
    include_usage: bool,
    started: bool,
    stop: Option<StopReason>,
    usage: Option<Usage>,
}

impl ChatEncoder {
    pub fn new(req: &Request) -> ChatEncoder {
        ChatEncoder {
            id: new_id(if req.prompt_style {
                "cmpl-"
            } else {
                "chatcmpl-"
            }),
            model: req.model.clone(),
            created: unix_now(),
            completion: req.prompt_style,
            include_usage: req.stream_usage,
            started: false,
            stop: None,
            usage: None,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<StopReason>, out: &mut BytesMut) {
        let finish = finish.map(|f| f.openai());
        let v = if self.completion {
            json!({"id": self.id, "object": "text_completion", "created": self.created,
                   "model": self.model,
                   "choices": [{"text": delta.get("content").cloned().unwrap_or(json!("")),
                                "index": 0, "logprobs": null, "finish_reason": finish}]})
        } else {
            json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                   "model": self.model,
                   "choices": [{"index": 0, "delta": delta, "logprobs": null,
                                "finish_reason": finish}]})
        };
        sse_frame(out, None, &v);
    }

    /// A text delta, written directly (the per-token hot path).
    fn text_chunk(&self, text: &str, out: &mut BytesMut) {
        out.extend_from_slice(b"data: {\"id\":");
        push_json_str(out, &self.id);
        if self.completion {
            out.extend_from_slice(b",\"object\":\"text_completion\",\"created\":");
        } else {
            out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        }
        out.extend_from_slice(self.created.to_string().as_bytes());
        out.extend_from_slice(b",\"model\":");
        push_json_str(out, &self.model);
        if self.completion {
            out.extend_from_slice(b",\"choices\":[{\"text\":");
            push_json_str(out, text);
            out.extend_from_slice(b",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        } else {
            out.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
            push_json_str(out, text);
            out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        }
    }

    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.started = true;
            if !self.completion {
                self.chunk(json!({"role": "assistant", "content": ""}), None, out);
            }
        }
    }
}

impl Encoder for ChatEncoder {
    fn encode(&mut self, event: &Event, out: &mut BytesMut) {
        match event {
            Event::Start { .. } => self.start(out),
            Event::Text(t) => {
                self.start(out);
                self.text_chunk(t, out);
            }
            Event::ToolStart { index, id, name } => {
                self.start(out);
                self.chunk(
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                                           "function": {"name": name, "arguments": ""}}]}),
                    None,
                    out,
                );
            }
            Event::ToolArgs { index, fragment } => {
                self.chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                    None,
                    out,
                );
            }
            Event::Stop(s) => self.stop = Some(*s),
            Event::Usage(u) => self.usage = Some(merge_usage(self.usage, *u)),
            Event::Done => {
                self.start(out);
                self.chunk(json!({}), Some(self.stop.unwrap_or(StopReason::Stop)), out);
                if self.include_usage {
                    let v = json!({"id": self.id,
                        "object": if self.completion { "text_completion" } else { "chat.completion.chunk" },
                        "created": self.created, "model": self.model, "choices": [],
                        "usage": usage_json(self.usage.unwrap_or_default())});
                    sse_frame(out, None, &v);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            Event::Error(msg) => out.extend_from_slice(&sse_error(msg)),
        }
    }

    fn heartbeat(&self) -> Option<&'static [u8]> {
        Some(b": keep-alive\n\n")
    }
}
