//! How an answer is framed on the wire, and whether a body that ended was complete.
//!
//! The HTTP client reports a chunked body cut short as a clean end, so completeness is read from
//! the bytes themselves: OpenAI streams end `data: [DONE]`, Anthropic streams with
//! `message_stop`, Ollama NDJSON with a `"done": true` line, and a single JSON document with its
//! `Content-Length` or, unsized, with its top-level value closed. The tracker looks only at the
//! bytes forwarded (a small tail, an OpenAI stream's last 4–8 KiB, the NDJSON line in progress,
//! a nesting counter): it never buffers an answer.

/// How a response body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// OpenAI `text/event-stream`, ending `data: [DONE]`.
    Sse,
    /// Anthropic's event stream, ending with `message_stop`.
    AnthropicSse,
    /// Ollama NDJSON, whose last line has `"done": true`.
    Ndjson,
    /// A single JSON document.
    Whole { len: Option<u64> },
}

impl Framing {
    pub fn is_stream(self) -> bool {
        !matches!(self, Framing::Whole { .. })
    }
}

const DONE_FRAME: &[u8] = b"data: [DONE]";

/// Follows the bytes of one body as they are forwarded.
pub struct EndTracker {
    framing: Framing,
    sent: u64,
    tail: Tail,
    json: JsonEnd,
    /// NDJSON: the line being received, and whether the last full line had `"done": true`.
    line: Vec<u8>,
    last_line_done: bool,
    /// OpenAI SSE: the last bytes forwarded (at least [`RECENT`]), searched for the final
    /// chunk's `finish_reason` only when a stream ends without `data: [DONE]` — scanning every
    /// chunk for it cost more than the rest of the passthrough of a chunk.
    recent: Vec<u8>,
}

/// How far back from the end of an OpenAI stream its final chunk is looked for: the chunk with
/// the finish reason ends a few hundred bytes before the end (only a usage chunk may follow).
const RECENT: usize = 4096;

/// The key of an OpenAI chunk's finish reason; a non-null value follows as a string (the key
/// cannot occur unescaped inside a string value).
const FINISH_KEY: &[u8] = b"\"finish_reason\":";

/// A non-null `finish_reason` inside `hay` (a string value after the key, spaces aside).
fn finish_in(hay: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(FINISH_KEY));
    finder.find_iter(hay).any(|at| {
        let value = &hay[at + FINISH_KEY.len()..];
        value.iter().find(|b| **b != b' ') == Some(&b'"')
    })
}

impl EndTracker {
    pub fn new(framing: Framing) -> EndTracker {
        EndTracker {
            framing,
            sent: 0,
            tail: Tail::default(),
            json: JsonEnd::default(),
            line: Vec::new(),
            last_line_done: false,
            // One allocation per stream rather than a few growths.
            recent: match framing {
                Framing::Sse => Vec::with_capacity(2 * RECENT),
                _ => Vec::new(),
            },
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Takes the next chunk; true when a sized body has now received all its bytes (it may be
    /// dropped without a final poll, so its success is known here).
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        self.sent += chunk.len() as u64;
        if self.framing == Framing::Sse {
            // Amortised: one copy of each chunk's last bytes, a shift of RECENT bytes now and then.
            if self.recent.len() >= 2 * RECENT {
                self.recent.drain(..self.recent.len() - RECENT);
            }
            self.recent
                .extend_from_slice(&chunk[chunk.len().saturating_sub(RECENT)..]);
        }
        self.tail.push(chunk);
        match self.framing {
            Framing::Whole { len: Some(len) } => return self.sent >= len,
            Framing::Whole { len: None } => self.json.feed(chunk),
            Framing::Ndjson => {
                for part in chunk.split_inclusive(|&b| b == b'\n') {
                    match part.strip_suffix(b"\n") {
                        Some(end) => {
                            self.line.extend_from_slice(end);
                            if !self.line.iter().all(u8::is_ascii_whitespace) {
                                self.last_line_done = line_is_done(&self.line);
                            }
                            self.line.clear();
                        }
                        None => self.line.extend_from_slice(part),
                    }
                }
            }
            Framing::Sse | Framing::AnthropicSse => {}
        }
        false
    }

    /// OpenAI SSE: a frame with a non-null `finish_reason` is among the last bytes forwarded.
    fn finish_seen(&self) -> bool {
        self.framing == Framing::Sse && finish_in(&self.recent)
    }

    /// The bytes forwarded so far end between two frames (nothing forwarded counts).
    pub fn at_boundary(&self) -> bool {
        match self.framing {
            Framing::Ndjson => self.line.is_empty(),
            _ => self.tail.at_boundary(),
        }
    }

    /// An OpenAI stream that ended after its final chunk but without `data: [DONE]`: complete,
    /// and the client should get the `[DONE]` the provider left out.
    pub fn missing_done(&self) -> bool {
        !self.tail.ends_with(DONE_FRAME) && self.finish_seen()
    }

    /// Why a body that has ended is incomplete, if it is.
    pub fn incomplete(&self) -> Option<&'static str> {
        match self.framing {
            Framing::Sse if !self.tail.ends_with(DONE_FRAME) && !self.finish_seen() => {
                Some("the stream ended before its final chunk")
            }
            Framing::AnthropicSse if !self.tail.ends_with(b"\"message_stop\"}") => {
                Some("the stream ended before message_stop")
            }
            Framing::Ndjson
                if !(self.last_line_done
                    || (self.line.iter().any(|b| !b.is_ascii_whitespace())
                        && line_is_done(&self.line))) =>
            {
                Some("the stream ended before its \"done\": true line")
            }
            Framing::Whole { len: Some(len) } if self.sent < len => {
                Some("the body ended before its Content-Length")
            }
            Framing::Whole { len: None } if !self.json.complete() => {
                Some("the JSON body ended unfinished")
            }
            _ => None,
        }
    }
}

/// The last few bytes forwarded.
#[derive(Default)]
struct Tail {
    buf: [u8; 32],
    len: usize,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        let cap = self.buf.len();
        let new = &chunk[chunk.len().saturating_sub(cap)..];
        // Keep the newest `cap - new.len()` old bytes, then append: at most two small copies.
        let keep = self.len.min(cap - new.len());
        self.buf.copy_within(self.len - keep..self.len, 0);
        self.buf[keep..keep + new.len()].copy_from_slice(new);
        self.len = keep + new.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn at_boundary(&self) -> bool {
        self.len == 0 || self.bytes().ends_with(b"\n\n")
    }

    /// The last frame, trailing whitespace aside, ends with `end`.
    fn ends_with(&self, end: &[u8]) -> bool {
        let t = self.bytes();
        let ws = t
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        t[..t.len() - ws].ends_with(end)
    }
}

/// Whether an NDJSON line is a final `"done": true` object.
fn line_is_done(line: &[u8]) -> bool {
    let mut rest = line;
    while let Some(pos) = rest.windows(6).position(|w| w == b"\"done\"") {
        let after = &rest[pos + 6..];
        let after = after.strip_prefix(b" ").unwrap_or(after);
        if let Some(v) = after.strip_prefix(b":") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            if v.starts_with(b"true") {
                return true;
            }
        }
        rest = &rest[pos + 6..];
    }
    false
}

/// A byte-level tracker of JSON nesting outside strings.
#[derive(Default)]
struct JsonEnd {
    depth: u32,
    opened: bool,
    in_string: bool,
    escaped: bool,
}

impl JsonEnd {
    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.opened = true;
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn complete(&self) -> bool {
        self.opened && self.depth == 0 && !self.in_string
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_end_tracks_nesting_outside_strings() {
        let cases: &[(&[&[u8]], bool)] = &[
            (&[br#"{"a": "}"}"#], true),
            (&[br#"{"a": "\"}"#, br#""}"#], true),
            (&[br#"{"a": [1, {"b": 2}"#], false),
            (&[br#"{"a": "x\"#], false),
            (&[b"  "], false),
            (
                &[br#"{"choices":[{"message":{"content":"t0 "}}]"#, b"}\n"],
                true,
            ),
        ];
        for (chunks, want) in cases {
            let mut j = JsonEnd::default();
            chunks.iter().for_each(|c| j.feed(c));
            assert_eq!(j.complete(), *want, "{chunks:?}");
        }
    }

    #[test]
    fn tail_sees_boundaries_and_ends_across_chunks() {
        let mut t = EndTracker::new(Framing::Sse);
        assert!(t.at_boundary());
        t.feed(b"data: {\"x\":1}\n");
        assert!(!t.at_boundary());
        t.feed(b"\n");
        assert!(t.at_boundary() && t.incomplete().is_some());
        t.feed(b"data: [DO");
        t.feed(b"NE]\n\n");
        assert!(t.at_boundary() && t.incomplete().is_none());
        let mut a = EndTracker::new(Framing::AnthropicSse);
        a.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        assert_eq!(a.incomplete(), None);
        // The tail always holds the last bytes sent, however they were split.
        let sent: Vec<u8> = (0..200u8).collect();
        for split in [1, 7, 31, 32, 33, 100] {
            let mut t = Tail::default();
            sent.chunks(split).for_each(|c| t.push(c));
            assert_eq!(t.bytes(), &sent[sent.len() - 32..], "split {split}");
        }
    }

    #[test]
    fn ndjson_done_lines_are_recognised() {
        let cases: &[(&[u8], bool)] = &[
            (br#"{"model":"m","done":true,"eval_count":3}"#, true),
            (br#"{"model":"m","done": true}"#, true),
            (
                br#"{"model":"m","message":{"content":"\"done\":true"},"done":false}"#,
                false,
            ),
            (br#"{"model":"m","done":false}"#, false),
        ];
        for (line, want) in cases {
            assert_eq!(
                line_is_done(line),
                *want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let mut t = EndTracker::new(Framing::Ndjson);
        t.feed(b"{\"done\":false}\n{\"do");
        assert!(!t.at_boundary());
        t.feed(b"ne\":true}");
        assert_eq!(
            t.incomplete(),
            None,
            "a last line without its newline counts"
        );
    }

    #[test]
    fn an_openai_stream_with_its_final_chunk_but_no_done_is_complete() {
        let frame = br#"data: {"choices":[{"delta":{},"finish_reason":"stop"}]}"#;
        for split in [1, 5, 13, 20, frame.len()] {
            let mut t = EndTracker::new(Framing::Sse);
            t.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n");
            assert!(
                t.incomplete().is_some(),
                "a null finish_reason is not the end"
            );
            frame.chunks(split).for_each(|c| {
                t.feed(c);
            });
            t.feed(b"\n\n");
            assert_eq!(t.incomplete(), None, "split {split}");
            assert!(t.missing_done());
            t.feed(b"data: [DONE]\n\n");
            assert!(!t.missing_done());
        }
    }

    #[test]
    fn the_final_chunk_is_found_behind_a_usage_chunk_after_a_long_stream() {
        let delta =
            b"data: {\"choices\":[{\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";
        let last = b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n";
        let usage =
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":500}}\n\n";
        let mut t = EndTracker::new(Framing::Sse);
        for _ in 0..500 {
            t.feed(delta);
        }
        assert!(t.incomplete().is_some() && !t.missing_done());
        t.feed(last);
        t.feed(usage);
        assert_eq!(t.incomplete(), None);
        assert!(t.missing_done());
        // A stream of only null finish reasons, however long, is cut.
        let mut t = EndTracker::new(Framing::Sse);
        (0..500).for_each(|_| {
            t.feed(delta);
        });
        assert!(t.incomplete().is_some());
    }

    #[test]
    fn sized_bodies_complete_at_their_length() {
        let mut t = EndTracker::new(Framing::Whole { len: Some(5) });
        assert!(!t.feed(b"{\"a\""));
        assert!(t.incomplete().is_some());
        assert!(t.feed(b"}"));
        assert_eq!(t.incomplete(), None);
    }
}
