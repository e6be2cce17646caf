//! The canonical chat model every conversion goes through: a client dialect's request is read
//! into [`Request`], written out in the provider's wire format; the provider's answer is read into
//! a [`Response`] (or a sequence of stream [`Event`]s) and written out in the client's dialect.
//!
//! Adding a dialect means one reader and one writer against these types, nothing else. Fields a
//! side has no counterpart for are dropped deliberately (README, "Conversion table").
//! Same-dialect traffic never comes here: it takes the passthrough fast path.

use bytes::{BufMut, BytesMut};
use serde_json::Value;

/// Who said a message. System prompts are not messages: they live in [`Request::system`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// The result of a tool call, fed back to the model.
    Tool,
}

/// One piece of a message's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// A call the assistant made. `arguments` is the JSON text of the arguments object.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// The answer to the tool call `id`.
    ToolResult {
        id: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Image {
    /// Inline bytes, base64, with their media type (`image/png`, …).
    Base64 { media_type: String, data: String },
    /// A remote URL; only OpenAI-wire providers and Anthropic accept these.
    Url(String),
}

impl Image {
    /// Reads an OpenAI `image_url.url`: a `data:` URL becomes inline bytes.
    pub fn from_url(url: &str) -> Image {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                let media_type = meta.trim_end_matches(";base64").to_string();
                return Image::Base64 {
                    media_type: if media_type.is_empty() {
                        "image/png".into()
                    } else {
                        media_type
                    },
                    data: data.to_string(),
                };
            }
        }
        Image::Url(url.to_string())
    }

    /// As an OpenAI `image_url.url` (inline bytes become a `data:` URL).
    pub fn to_url(&self) -> String {
        match self {
            Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            Image::Url(u) => u.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            parts: vec![Part::Text(text.into())],
        }
    }

    /// All text parts joined (tool calls and images left out).
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            if let Part::Text(t) = p {
                out.push_str(t);
            }
        }
        out
    }
}

/// A function the model may call. `parameters` is a JSON Schema object.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Must call some tool.
    Required,
    /// Must call this tool.
    Named(String),
}

/// Generation options every dialect has a name for (the last two only some provider types).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    /// Typical sampling (Ollama `typical_p`, llama.cpp); set by the built-in endpoints.
    pub typical_p: Option<f64>,
    /// HF-style repetition penalty (vLLM `repetition_penalty`, Ollama / llama.cpp / LM Studio
    /// `repeat_penalty`); set by the built-in endpoints.
    pub repetition_penalty: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The public model name the client asked for.
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub options: Options,
    pub stream: bool,
    /// The client wants token usage reported in the stream (OpenAI `stream_options.include_usage`).
    pub stream_usage: bool,
    /// The request came as a bare prompt (legacy completions / Ollama generate); answers go back
    /// in that shape.
    pub prompt_style: bool,
}

impl Request {
    pub fn new(model: impl Into<String>) -> Request {
        Request {
            model: model.into(),
            system: None,
            messages: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            options: Options::default(),
            stream: false,
            stream_usage: false,
            prompt_style: false,
        }
    }

    /// Adds to the system prompt (several system messages are joined by a blank line).
    pub fn push_system(&mut self, text: &str) {
        match &mut self.system {
            Some(s) => {
                s.push_str("\n\n");
                s.push_str(text);
            }
            None => self.system = Some(text.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Natural end (`stop`, `end_turn`).
    Stop,
    /// The token limit was hit (`length`, `max_tokens`).
    Length,
    /// The model called tools (`tool_calls`, `tool_use`).
    ToolUse,
    /// A stop sequence matched (`stop` in OpenAI, `stop_sequence` in Anthropic).
    StopSequence,
    /// Refused by the provider's content filter.
    ContentFilter,
}

impl StopReason {
    pub fn openai(self) -> &'static str {
        match self {
            StopReason::Stop | StopReason::StopSequence => "stop",
            StopReason::Length => "length",
            StopReason::ToolUse => "tool_calls",
            StopReason::ContentFilter => "content_filter",
        }
    }

    pub fn from_openai(s: &str) -> StopReason {
        match s {
            "length" => StopReason::Length,
            "tool_calls" | "function_call" => StopReason::ToolUse,
            "content_filter" => StopReason::ContentFilter,
            _ => StopReason::Stop,
        }
    }

    pub fn anthropic(self) -> &'static str {
        match self {
            StopReason::Stop | StopReason::ContentFilter => "end_turn",
            StopReason::Length => "max_tokens",
            StopReason::ToolUse => "tool_use",
            StopReason::StopSequence => "stop_sequence",
        }
    }

    pub fn from_anthropic(s: &str) -> StopReason {
        match s {
            "max_tokens" => StopReason::Length,
            "tool_use" => StopReason::ToolUse,
            "stop_sequence" => StopReason::StopSequence,
            "refusal" => StopReason::ContentFilter,
            _ => StopReason::Stop,
        }
    }

    /// Ollama `done_reason` (Ollama reports tool calls as a normal `stop`).
    pub fn ollama(self) -> &'static str {
        match self {
            StopReason::Length => "length",
            _ => "stop",
        }
    }

    pub fn from_ollama(s: &str) -> StopReason {
        match s {
            "length" => StopReason::Length,
            _ => StopReason::Stop,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}

/// A complete (non-stream) answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub id: Option<String>,
    pub model: Option<String>,
    pub text: String,
    /// `(id, name, arguments JSON text)`.
    pub tool_calls: Vec<(String, String, String)>,
    pub stop: StopReason,
    pub usage: Option<Usage>,
}

/// One step of a stream, between a provider decoder and a client encoder.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Start {
        id: Option<String>,
        model: Option<String>,
    },
    Text(String),
    /// A tool call begins; `index` counts tool calls within the answer from 0.
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    /// A fragment of the JSON arguments of tool call `index`.
    ToolArgs {
        index: usize,
        fragment: String,
    },
    Stop(StopReason),
    /// Token counts; may come in several pieces (input first, output at the end): later values
    /// replace earlier non-zero ones.
    Usage(Usage),
    /// The provider ended the answer properly.
    Done,
    /// The provider reported an error inside the stream.
    Error(String),
}

/// Reads a provider's stream bytes into events. Chunks may split frames anywhere.
pub trait Decoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>);
    /// The provider sent its terminal frame.
    fn finished(&self) -> bool;
    /// The provider's body ended without its terminal frame: when what arrived is nonetheless a
    /// complete answer (e.g. an OpenAI stream whose final chunk came but not `data: [DONE]`),
    /// pushes the closing events and returns true.
    fn eof(&mut self, _out: &mut Vec<Event>) -> bool {
        false
    }
}

/// Writes events as a client's stream bytes.
pub trait Encoder {
    fn encode(&mut self, event: &Event, out: &mut BytesMut);
    /// A heartbeat the client's parser ignores, if the dialect has one.
    fn heartbeat(&self) -> Option<&'static [u8]> {
        None
    }
}

/// Splits a byte stream into lines (`\n`, a trailing `\r` removed), keeping partial lines.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    pub fn feed(&mut self, chunk: &[u8], mut line: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            if self.buf.is_empty() {
                line(trim_cr(head));
            } else {
                self.buf.extend_from_slice(head);
                let whole = std::mem::take(&mut self.buf);
                line(trim_cr(&whole));
            }
            rest = &tail[1..];
        }
        self.buf.extend_from_slice(rest);
    }
}

fn trim_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Server-sent events: `(event name, data)` per frame, `data:` lines joined.
#[derive(Default)]
pub struct Sse {
    lines: Lines,
    event: String,
    data: Vec<u8>,
    has_data: bool,
}

impl Sse {
    pub fn feed(&mut self, chunk: &[u8], mut frame: impl FnMut(&str, &[u8])) {
        let Sse {
            lines,
            event,
            data,
            has_data,
        } = self;
        lines.feed(chunk, |line| {
            if line.is_empty() {
                if *has_data {
                    frame(event, data);
                }
                event.clear();
                data.clear();
                *has_data = false;
            } else if let Some(v) = line.strip_prefix(b"data:") {
                if *has_data {
                    data.push(b'\n');
                }
                data.extend_from_slice(v.strip_prefix(b" ").unwrap_or(v));
                *has_data = true;
            } else if let Some(v) = line.strip_prefix(b"event:") {
                *event = String::from_utf8_lossy(v.strip_prefix(b" ").unwrap_or(v)).into_owned();
            }
            // Comments (`:`), `id:` and `retry:` carry nothing we convert.
        });
    }
}

/// Appends `s` as a JSON string literal (quoted, escaped).
pub fn push_json_str(out: &mut BytesMut, s: &str) {
    // Writing to a Vec-backed buffer cannot fail.
    let mut w = std::mem::take(out).writer();
    let _ = serde_json::to_writer(&mut w, s);
    *out = w.into_inner();
}

/// Writes one SSE frame, with an `event:` line when named.
pub fn sse_frame(out: &mut BytesMut, event: Option<&str>, data: &Value) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Collects a whole answer from events (used to turn a stream into a non-stream answer and in tests).
#[derive(Default)]
pub struct Collector {
    pub response: Option<Response>,
}

impl Collector {
    pub fn push(&mut self, e: &Event) {
        let r = self.response.get_or_insert_with(|| Response {
            id: None,
            model: None,
            text: String::new(),
            tool_calls: Vec::new(),
            stop: StopReason::Stop,
            usage: None,
        });
        match e {
            Event::Start { id, model } => {
                r.id = r.id.take().or(id.clone());
                r.model = r.model.take().or(model.clone());
            }
            Event::Text(t) => r.text.push_str(t),
            Event::ToolStart { id, name, .. } => {
                r.tool_calls.push((id.clone(), name.clone(), String::new()))
            }
            Event::ToolArgs { index, fragment } => {
                if let Some(c) = r.tool_calls.get_mut(*index) {
                    c.2.push_str(fragment);
                }
            }
            Event::Stop(s) => r.stop = *s,
            Event::Usage(u) => r.usage = Some(merge_usage(r.usage, *u)),
            Event::Done | Event::Error(_) => {}
        }
    }
}

/// Later non-zero counts replace earlier ones (providers report input and output separately).
pub fn merge_usage(old: Option<Usage>, new: Usage) -> Usage {
    let old = old.unwrap_or_default();
    Usage {
        input: if new.input > 0 { new.input } else { old.input },
        output: if new.output > 0 {
            new.output
        } else {
            old.output
        },
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 UTC timestamp with nanoseconds, as Ollama writes `created_at`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

pub fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            rem / 3_600,
            rem % 3_600 / 60,
            rem % 60
        );
    }
    // Digits written in place: this runs for every line of a converted Ollama stream, where
    // `format!` with seven padded fields cost ~3,000 instructions a call (callgrind).
    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    let put = |dst: &mut [u8], mut v: u64| {
        for d in dst.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut out[0..4], year as u64);
    put(&mut out[5..7], month as u64);
    put(&mut out[8..10], day as u64);
    put(&mut out[11..13], rem / 3_600);
    put(&mut out[14..16], rem % 3_600 / 60);
    put(&mut out[17..19], rem % 60);
    put(&mut out[20..29], u64::from(nanos.min(999_999_999)));
    // All ASCII digits and separators.
    std::str::from_utf8(&out).map_or_else(|_| String::new(), str::to_owned)
}

/// A fresh id with a dialect's prefix (`chatcmpl-`, `msg_`, `resp_`, …).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_survive_any_split() {
        let text = b"event: a\ndata: {\"x\":1}\n\n: comment\n\ndata: one\ndata: two\r\n\r\ndata: [DONE]\n\n";
        for split in 0..text.len() {
            let mut sse = Sse::default();
            let mut got: Vec<(String, String)> = Vec::new();
            for part in [&text[..split], &text[split..]] {
                sse.feed(part, |e, d| {
                    got.push((e.to_string(), String::from_utf8_lossy(d).into_owned()))
                });
            }
            assert_eq!(
                got,
                vec![
                    ("a".into(), "{\"x\":1}".into()),
                    ("".into(), "one\ntwo".into()),
                    ("".into(), "[DONE]".into()),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn json_strings_are_written_as_serde_json_writes_them() {
        let cases = [
            "",
            "plain token",
            "zażółć gęślą jaźń — 東京 🚀",
            "quote \" and backslash \\",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}\u{7f}\u{2028}",
            "</script>",
        ];
        for s in cases {
            let mut out = BytesMut::from(&b"x"[..]);
            push_json_str(&mut out, s);
            let want = format!("x{}", serde_json::to_string(s).unwrap());
            assert_eq!(std::str::from_utf8(&out).unwrap(), want, "{s:?}");
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_398_245, 0), "2026-11-23T01:44:05.000000000Z");
        assert_eq!(
            rfc3339(1_796_174_625, 123_456_789),
            "2026-12-02T01:23:45.123456789Z"
        );
        assert_eq!(
            rfc3339(253_402_300_799, 999_999_999),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            rfc3339(253_402_300_800, 0),
            "10000-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn strings_written_directly_are_valid_json() {
        for text in [
            "plain",
            "quote \" and \\ back",
            "line\nbreak\ttab\u{1}",
            "zażółć 🦀",
            "",
        ] {
            let mut out = BytesMut::from(&b"x"[..]);
            push_json_str(&mut out, text);
            let parsed: String = serde_json::from_slice(&out[1..]).unwrap();
            assert_eq!(parsed, text);
        }
    }

    #[test]
    fn image_urls_round_trip() {
        let i = Image::from_url("data:image/jpeg;base64,AAAA");
        assert_eq!(
            i,
            Image::Base64 {
                media_type: "image/jpeg".into(),
                data: "AAAA".into()
            }
        );
        assert_eq!(i.to_url(), "data:image/jpeg;base64,AAAA");
        assert_eq!(
            Image::from_url("https://x/y.png"),
            Image::Url("https://x/y.png".into())
        );
    }
}
