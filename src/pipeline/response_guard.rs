//! Response guardrails (SPEC §6): with `LLM_ROUTER_FORCE_GUARDRAIL_RESPONSE` on, the answer the
//! client is about to get is checked by each guardrail of
//! `LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_RESPONSE` in order, the same calls as on the request
//! side ([`super::guardrails::check`]).
//!
//! - A whole answer is checked before it is sent: unsafe → 422 naming the guardrail, a guardrail
//!   that fails → 503 naming it (fail closed), in the client's dialect.
//! - A stream passes through a [`ResponseGate`]: its frames are held; each time
//!   `LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS` characters of new text have come, and at the
//!   end, the text accumulated so far is checked, and the frames it covers are released once every
//!   guardrail said safe. Frames that add no text (a role frame, a stop frame) go as soon as
//!   everything before them has passed. An unsafe verdict or a failed check ends the stream with
//!   the dialect's in-band error frame and closes the provider's connection; what was held is
//!   dropped. The provider is read on while a check runs.
//!
//! Invariants: nothing reaches the client before the text it carries has passed every
//! guardrail; frames are released whole, so a refusal frame always starts on a frame boundary; a
//! frame the gate cannot read (not JSON) is a failed check, never forwarded. Embeddings answers
//! carry no text and are not checked. The gate runs after the restore stage, so the guardrails
//! judge exactly what the client would see.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::guardrails::check;
use super::services::Service;
use super::Shared;
use crate::errors::RouterError;
use crate::relay::plan::ErrorFrame;
use crate::relay::stages::{Gate, GateFactory, RequestContext};
use crate::relay::{ClientApi, Ingress};

/// The default `LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS`.
pub const DEFAULT_WINDOW: usize = 500;
/// Most output a gate holds before the body stops reading the provider until a check is done.
const MAX_HELD: usize = 1 << 20;

/// Starts the response gate of every streamed generation, and checks whole answers.
pub struct ResponseGuardFactory {
    pub guards: Arc<[Arc<Service>]>,
    pub shared: Arc<Shared>,
    /// Characters of new text between two checks of a stream.
    pub window: usize,
}

impl GateFactory for ResponseGuardFactory {
    fn start(
        &self,
        api: ClientApi,
        ctx: &RequestContext,
        client: &awc::Client,
    ) -> Option<Box<dyn Gate>> {
        let ClientApi::Generate(ingress) = api else {
            return None;
        };
        Some(Box::new(ResponseGate {
            guards: self.guards.clone(),
            shared: self.shared.clone(),
            client: client.clone(),
            endpoint: ctx.endpoint.as_str().into(),
            error_frame: ingress.error_frame(),
            ndjson: matches!(ingress, Ingress::OllamaChat | Ingress::OllamaGenerate),
            window: self.window.max(1),
            held: BytesMut::new(),
            base: 0,
            scanned: 0,
            safe: 0,
            text: String::new(),
            chars: 0,
            passed_chars: 0,
            passed_len: 0,
            check: None,
            closed: false,
            unreadable: None,
        }))
    }

    fn check_whole<'a>(
        &'a self,
        api: ClientApi,
        ctx: &'a RequestContext,
        client: &'a awc::Client,
        body: &'a [u8],
    ) -> Option<LocalBoxFuture<'a, Result<(), RouterError>>> {
        let ClientApi::Generate(_) = api else {
            return None;
        };
        Some(Box::pin(async move {
            let text = whole_text(body).map_err(unreadable)?;
            if text.is_empty() {
                return Ok(());
            }
            check(
                &self.guards,
                client,
                &ctx.endpoint,
                &text,
                "response",
                &self.shared,
            )
            .await
        }))
    }
}

/// The client's error for an answer the gate cannot read (so cannot check): never forwarded.
fn unreadable(why: String) -> RouterError {
    RouterError::Internal(format!(
        "the answer could not be read for the response guardrails ({why}); it was withheld"
    ))
}

/// The generated text of a whole answer: one JSON document, or (a stream answered whole)
/// frames.
fn whole_text(body: &[u8]) -> Result<String, String> {
    let mut text = String::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => frame_text(&v, &mut text),
        Err(_) => {
            for frame in body.split(|&b| b == b'\n') {
                lines_text(frame, &mut text)?;
            }
        }
    }
    Ok(text)
}

/// Appends the generated text of one line of a stream (SSE or NDJSON): `data:` payloads and
/// NDJSON lines are JSON; comments, `event:`/`id:`/`retry:` lines and `[DONE]` carry no text.
fn lines_text(frame: &[u8], out: &mut String) -> Result<(), String> {
    for line in frame.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty()
            || line.starts_with(b":")
            || line.starts_with(b"event:")
            || line.starts_with(b"id:")
            || line.starts_with(b"retry:")
        {
            continue;
        }
        let payload = match line.strip_prefix(b"data:") {
            Some(p) => p.trim_ascii_start(),
            None => line,
        };
        if payload == b"[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| format!("a stream frame is not JSON: {e}"))?;
        frame_text(&v, out);
    }
    Ok(())
}

/// Appends the text a model generated in `v` — a stream frame or a whole answer of any client
/// dialect: OpenAI chat and completions (`choices[].delta.content`, `.message.content`, `.text`,
/// tool-call arguments), Responses (`delta` strings, `output[].content[].text`), Anthropic
/// (`delta.text` / `.partial_json`, `content[].text` / `.input`), Ollama (`message.content`,
/// `response`, tool-call arguments). The dialects' shapes do not overlap, so one reader serves
/// them all; summary fields that repeat the text (`response.output_text.done`'s `text`, a
/// Responses `response` object) are not read.
fn frame_text(v: &Value, out: &mut String) {
    let push = |out: &mut String, v: Option<&Value>| match v {
        Some(Value::String(s)) => out.push_str(s),
        Some(o @ Value::Object(_)) => out.push_str(&o.to_string()),
        _ => {}
    };
    let tool_calls = |out: &mut String, calls: Option<&Value>| {
        for c in calls.and_then(Value::as_array).into_iter().flatten() {
            push(out, c.pointer("/function/arguments"));
        }
    };
    let content = |out: &mut String, c: Option<&Value>| match c {
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Array(parts)) => {
            for p in parts {
                push(out, p.get("text"));
                push(out, p.get("input"));
            }
        }
        _ => {}
    };
    for choice in v
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(d) = choice.get("delta") {
            content(out, d.get("content"));
            tool_calls(out, d.get("tool_calls"));
        }
        if let Some(m) = choice.get("message") {
            content(out, m.get("content"));
            tool_calls(out, m.get("tool_calls"));
        }
        push(out, choice.get("text").filter(|t| t.is_string()));
    }
    match v.get("delta") {
        Some(Value::String(s)) => out.push_str(s),
        Some(d @ Value::Object(_)) => {
            push(out, d.get("text"));
            push(out, d.get("partial_json").filter(|t| t.is_string()));
        }
        _ => {}
    }
    content(out, v.get("content"));
    if let Some(m) = v.get("message") {
        content(out, m.get("content"));
        tool_calls(out, m.get("tool_calls"));
    }
    push(out, v.get("response").filter(|r| r.is_string()));
    for item in v
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        content(out, item.get("content"));
        push(out, item.get("arguments").filter(|a| a.is_string()));
    }
}

/// The end of the first whole frame of `b`: its newline (NDJSON), or the blank line after it
/// (SSE, `\n` or `\r\n` line ends).
fn frame_end(b: &[u8], ndjson: bool) -> Option<usize> {
    for i in memchr::memchr_iter(b'\n', b) {
        if ndjson {
            return Some(i + 1);
        }
        match &b[i + 1..] {
            [b'\n', ..] => return Some(i + 2),
            [b'\r', b'\n', ..] => return Some(i + 3),
            _ => {}
        }
    }
    None
}

/// A check in flight: what it covers.
struct Check {
    future: LocalBoxFuture<'static, Result<(), RouterError>>,
    /// Absolute end of the frames whose text it checks.
    bytes: usize,
    chars: usize,
    len: usize,
}

/// Holds a stream's frames until the response guardrails passed their text (module docs).
/// Offsets are absolute (bytes since the stream began); `held` starts at `base`.
pub struct ResponseGate {
    guards: Arc<[Arc<Service>]>,
    shared: Arc<Shared>,
    client: awc::Client,
    endpoint: Arc<str>,
    error_frame: ErrorFrame,
    /// Frames end at a newline (Ollama NDJSON) rather than at a blank line (SSE).
    ndjson: bool,
    window: usize,
    held: BytesMut,
    base: usize,
    /// End of the whole frames read so far.
    scanned: usize,
    /// End of what may be released.
    safe: usize,
    /// The text of every frame read so far, and its length in characters.
    text: String,
    chars: usize,
    /// How much of `text` has passed every guardrail (characters, bytes).
    passed_chars: usize,
    passed_len: usize,
    check: Option<Check>,
    closed: bool,
    unreadable: Option<String>,
}

impl ResponseGate {
    /// Reads the whole frames held past `scanned` (at the end, the rest too).
    fn scan(&mut self) {
        loop {
            let from = self.scanned - self.base;
            let rest = &self.held[from..];
            let end = match frame_end(rest, self.ndjson) {
                Some(end) => end,
                None if self.closed && !rest.is_empty() => rest.len(),
                None => break,
            };
            let before = self.text.len();
            if let Err(why) = lines_text(&rest[..end], &mut self.text) {
                self.unreadable.get_or_insert(why);
                return;
            }
            self.chars += self.text[before..].chars().count();
            self.scanned += end;
        }
    }

    fn start_check(&mut self) {
        let (guards, shared, client) = (
            self.guards.clone(),
            self.shared.clone(),
            self.client.clone(),
        );
        let (endpoint, text) = (self.endpoint.clone(), self.text.clone());
        self.check = Some(Check {
            future: Box::pin(async move {
                check(&guards, &client, &endpoint, &text, "response", &shared).await
            }),
            bytes: self.scanned,
            chars: self.chars,
            len: self.text.len(),
        });
    }
}

impl Gate for ResponseGate {
    fn hold(&mut self, out: Bytes) {
        self.held.extend_from_slice(&out);
        self.scan();
    }

    fn close(&mut self) {
        self.closed = true;
        self.scan();
    }

    fn wants_input(&self) -> bool {
        self.held.len() < MAX_HELD
    }

    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Bytes>> {
        loop {
            if let Some(why) = self.unreadable.take() {
                return Poll::Ready(Err((self.error_frame)(&unreadable(why).to_string())));
            }
            if let Some(c) = self.check.as_mut() {
                match Pin::new(&mut c.future).poll(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => {
                        self.check = None;
                        return Poll::Ready(Err((self.error_frame)(&e.to_string())));
                    }
                    Poll::Ready(Ok(())) => {
                        self.safe = self.safe.max(c.bytes);
                        self.passed_chars = c.chars;
                        self.passed_len = c.len;
                        self.check = None;
                    }
                }
            }
            if self.passed_len == self.text.len() {
                // Everything read so far has passed: frames without text go at once.
                self.safe = self.scanned;
                break;
            }
            let unchecked = self.chars - self.passed_chars;
            if unchecked >= self.window || self.closed {
                self.start_check();
                continue;
            }
            break;
        }
        if self.safe > self.base {
            let out = self.held.split_to(self.safe - self.base).freeze();
            self.base = self.safe;
            return Poll::Ready(Ok(Some(out)));
        }
        if self.check.is_some() {
            return Poll::Pending;
        }
        Poll::Ready(Ok(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text_of(v: Value) -> String {
        let mut s = String::new();
        frame_text(&v, &mut s);
        s
    }

    #[test]
    fn every_dialect_s_generated_text_is_read_once() {
        let cases = [
            (
                json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "a"}}]}),
                "a",
            ),
            (
                json!({"choices": [{"message": {"role": "assistant", "content": "b",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{\"x\":1}"}}]}}]}),
                "b{\"x\":1}",
            ),
            (
                json!({"object": "text_completion", "choices": [{"text": "c"}]}),
                "c",
            ),
            (
                json!({"type": "response.output_text.delta", "delta": "d"}),
                "d",
            ),
            (
                json!({"type": "response.output_text.done", "text": "repeat"}),
                "",
            ),
            (
                json!({"type": "response.completed", "response": {"output": [
                    {"content": [{"type": "output_text", "text": "repeat"}]}]}}),
                "",
            ),
            (
                json!({"object": "response", "output": [{"type": "message",
                    "content": [{"type": "output_text", "text": "e"}]}]}),
                "e",
            ),
            (
                json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "f"}}),
                "f",
            ),
            (
                json!({"type": "message_start", "message": {"content": [], "model": "m"}}),
                "",
            ),
            (
                json!({"type": "message", "role": "assistant",
                       "content": [{"type": "text", "text": "g"}]}),
                "g",
            ),
            (
                json!({"model": "m", "message": {"role": "assistant", "content": "h"}, "done": false}),
                "h",
            ),
            (json!({"model": "m", "response": "i", "done": false}), "i"),
            (json!({"error": {"message": "boom"}}), ""),
        ];
        for (v, want) in cases {
            assert_eq!(text_of(v.clone()), want, "{v}");
        }
    }

    #[test]
    fn frames_end_at_a_blank_line_or_for_ndjson_a_newline() {
        assert_eq!(frame_end(b"data: a\n\ndata: b", false), Some(9));
        assert_eq!(frame_end(b"event: x\r\ndata: a\r\n\r\n", false), Some(21));
        assert_eq!(frame_end(b"data: a\n", false), None);
        assert_eq!(frame_end(b"{}\n{}", true), Some(3));
    }

    #[test]
    fn stream_lines_are_read_and_non_json_frames_are_refused() {
        let mut s = String::new();
        let frames = b"event: content_block_delta\ndata: {\"delta\":{\"text\":\"x\"}}\n\n: keep-alive\n\ndata: [DONE]\n\n";
        lines_text(frames, &mut s).unwrap();
        assert_eq!(s, "x");
        assert!(lines_text(b"data: {not json\n\n", &mut s).is_err());
        assert_eq!(
            whole_text(b"{\"choices\":[{\"message\":{\"content\":\"y\"}}]}").unwrap(),
            "y"
        );
        assert_eq!(
            whole_text(
                b"data: {\"choices\":[{\"delta\":{\"content\":\"z\"}}]}\n\ndata: [DONE]\n\n"
            )
            .unwrap(),
            "z"
        );
    }
}
