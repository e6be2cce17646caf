//! Token usage of an answer, read from the bytes the client receives (any dialect, streams
//! included), for per-key token limits (`tpm`) and `/router/stats`.
//!
//! [`UsageScan`] looks for the usage fields every dialect reports — OpenAI `prompt_tokens` /
//! `completion_tokens`, Anthropic and Responses `input_tokens` / `output_tokens`, Ollama
//! `prompt_eval_count` / `eval_count` — and keeps the largest value of each side (usage is
//! reported once, or cumulatively as Anthropic's `message_delta` does, so the largest is the
//! final one; a value seen twice at a chunk seam is harmless). A key inside a JSON string is
//! never matched: its quotes are escaped there. An answer without usage (an OpenAI stream whose
//! client did not ask for `stream_options.include_usage`) is estimated: one token per `"delta"`
//! (one chunk per token, as OpenAI-style servers stream) plus a quarter of the request's bytes.
//!
//! [`Counted`] is the response body wrapper that feeds the scan and, when the body is done or
//! dropped, hands the total to its [`Sink`] once. It never changes the bytes or the body's size.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;

/// What the seam window keeps of the previous chunk (longer than a key, colon and number).
const SEAM: usize = 64;

/// Whether a usage key, its colon or its number may continue in the next chunk: not when the
/// chunk ends a line after a JSON value or punctuation (the usual end of an SSE frame or NDJSON
/// line), so the seam window is skipped there.
fn may_continue(chunk: &[u8]) -> bool {
    if chunk.last() != Some(&b'\n') {
        return true;
    }
    !matches!(
        chunk.iter().rev().find(|b| !b.is_ascii_whitespace()),
        Some(b'}' | b']' | b',' | b'{' | b'[')
    )
}

/// Prompt and completion tokens of one answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    /// Estimated (the answer carried no usage).
    pub estimated: bool,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}

#[derive(Clone, Debug)]
pub struct UsageScan {
    input: u64,
    output: u64,
    deltas: u64,
    tail: [u8; SEAM],
    tail_len: usize,
}

impl Default for UsageScan {
    fn default() -> Self {
        UsageScan {
            input: 0,
            output: 0,
            deltas: 0,
            tail: [0; SEAM],
            tail_len: 0,
        }
    }
}

/// Which side a key ending at `at` (the start of `tokens"` / `eval_count"`) belongs to.
fn side(buf: &[u8], at: usize, eval: bool) -> Option<bool> {
    let before = &buf[..at];
    if eval {
        if before.ends_with(b"\"prompt_") {
            Some(true)
        } else if before.ends_with(b"\"") {
            Some(false)
        } else {
            None
        }
    } else if before.ends_with(b"\"prompt_") || before.ends_with(b"\"input_") {
        Some(true)
    } else if before.ends_with(b"\"completion_") || before.ends_with(b"\"output_") {
        Some(false)
    } else {
        None
    }
}

/// The whole number after `"key":` starting at `from`, if there is one.
fn number_after(buf: &[u8], from: usize) -> Option<u64> {
    let mut i = from;
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    while i < buf.len() && ws(buf[i]) {
        i += 1;
    }
    if buf.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while i < buf.len() && ws(buf[i]) {
        i += 1;
    }
    let start = i;
    let mut n: u64 = 0;
    while i < buf.len() && buf[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(u64::from(buf[i] - b'0'));
        i += 1;
    }
    (i > start).then_some(n)
}

impl UsageScan {
    /// One pass over `buf`: every `:` that ends a key (optionally after whitespace) is looked
    /// at, and only keys ending in `delta"`, `tokens"` or `eval_count"` go further — a single
    /// `memchr` pass instead of a substring search per key. `count_from > 0` marks a seam window:
    /// only a `"delta"` key that straddles it is counted (the rest were counted in their chunk).
    fn scan(&mut self, buf: &[u8], count_from: usize) {
        for colon in memchr::memchr_iter(b':', buf) {
            let mut q = colon;
            while q > 0 && matches!(buf[q - 1], b' ' | b'\t' | b'\r' | b'\n') {
                q -= 1;
            }
            if q < 2 || buf[q - 1] != b'"' {
                continue;
            }
            let key = &buf[..q];
            match buf[q - 2] {
                b'a' if key.ends_with(b"\"delta\"") => {
                    let at = q - 7;
                    if count_from == 0 || (at < count_from && colon >= count_from) {
                        self.deltas += 1;
                    }
                }
                b's' if key.ends_with(b"tokens\"") => self.take(buf, q - 7, false, colon),
                b't' if key.ends_with(b"eval_count\"") => self.take(buf, q - 11, true, colon),
                _ => {}
            }
        }
    }

    /// A usage key starting at `at` (its name's last part) with its colon at `colon`.
    fn take(&mut self, buf: &[u8], at: usize, eval: bool, colon: usize) {
        let Some(input) = side(buf, at, eval) else {
            return;
        };
        if let Some(n) = number_after(buf, colon) {
            let slot = if input {
                &mut self.input
            } else {
                &mut self.output
            };
            *slot = (*slot).max(n);
        }
    }

    /// Feeds the next chunk of the answer.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.tail_len > 0 {
            let head = chunk.len().min(SEAM);
            let mut window = [0u8; 2 * SEAM];
            window[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            window[self.tail_len..self.tail_len + head].copy_from_slice(&chunk[..head]);
            let (w, split) = (&window[..self.tail_len + head], self.tail_len);
            self.scan(w, split);
        }
        self.scan(chunk, 0);
        if !may_continue(chunk) {
            // Nothing of a key, its colon or its number can straddle this seam.
            self.tail_len = 0;
        } else if chunk.len() >= SEAM {
            self.tail.copy_from_slice(&chunk[chunk.len() - SEAM..]);
            self.tail_len = SEAM;
        } else {
            // The end of this chunk, topped up from the old tail.
            let keep = (SEAM - chunk.len()).min(self.tail_len);
            self.tail
                .copy_within(self.tail_len - keep..self.tail_len, 0);
            self.tail[keep..keep + chunk.len()].copy_from_slice(chunk);
            self.tail_len = keep + chunk.len();
        }
    }

    /// The usage of the answer; `request_bytes` is used only for an estimate.
    pub fn usage(&self, request_bytes: u64) -> Usage {
        if self.input > 0 || self.output > 0 {
            Usage {
                input: self.input,
                output: self.output,
                estimated: false,
            }
        } else {
            Usage {
                input: request_bytes / 4,
                output: self.deltas,
                estimated: true,
            }
        }
    }
}

/// Where a finished answer's usage goes.
pub struct Sink {
    pub caller: Option<crate::access::Caller>,
    pub stats: Option<Arc<crate::stats::ProviderStats>>,
    pub request_bytes: u64,
}

impl Sink {
    fn deliver(self, usage: Usage) {
        if let Some(c) = &self.caller {
            c.record_tokens(usage.total());
        }
        if let Some(s) = &self.stats {
            s.tokens(usage);
        }
    }
}

/// A response body that counts the usage it carries (bytes and size unchanged); without a sink
/// (a response no provider answered) it only passes the body on.
pub struct Counted<B> {
    inner: B,
    scan: UsageScan,
    sink: Option<Sink>,
    /// Bytes still expected of a sized body: it is delivered at its last byte, as the server
    /// may stop polling there.
    left: Option<u64>,
}

impl<B> Counted<B> {
    pub fn new(inner: B, sink: Option<Sink>) -> Counted<B>
    where
        B: MessageBody,
    {
        let left = match inner.size() {
            BodySize::Sized(n) => Some(n),
            _ => None,
        };
        Counted {
            inner,
            scan: UsageScan::default(),
            sink,
            left,
        }
    }

    fn deliver(&mut self) {
        if let Some(sink) = self.sink.take() {
            let usage = self.scan.usage(sink.request_bytes);
            sink.deliver(usage);
        }
    }
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        self.deliver();
    }
}

impl<B: MessageBody + Unpin> MessageBody for Counted<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) if this.sink.is_some() => {
                this.scan.feed(chunk);
                if let Some(left) = this.left.as_mut() {
                    *left = left.saturating_sub(chunk.len() as u64);
                    if *left == 0 {
                        this.deliver();
                    }
                }
            }
            Poll::Ready(None) => this.deliver(),
            _ => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_of(chunks: &[&str], request_bytes: u64) -> Usage {
        let mut s = UsageScan::default();
        for c in chunks {
            s.feed(c.as_bytes());
        }
        s.usage(request_bytes)
    }

    fn real(input: u64, output: u64) -> Usage {
        Usage {
            input,
            output,
            estimated: false,
        }
    }

    #[test]
    fn usage_is_read_in_every_dialect() {
        let cases: &[(&str, &[&str], Usage)] = &[
            (
                "openai whole",
                &[r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#],
                real(12, 5),
            ),
            (
                "openai stream with usage, spaces",
                &[
                    "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n",
                    "data: {\"choices\":[],\"usage\": {\"prompt_tokens\" : 7, \"completion_tokens\": 3}}\n\ndata: [DONE]\n\n",
                ],
                real(7, 3),
            ),
            (
                "anthropic stream: cumulative output",
                &[
                    "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1,\"cache_read_input_tokens\":400}}}\n\n",
                    "event: message_delta\ndata: {\"delta\":{},\"usage\":{\"output_tokens\":15}}\n\n",
                ],
                real(9, 15),
            ),
            (
                "ollama last line",
                &[
                    "{\"message\":{\"content\":\"x\"},\"done\":false}\n",
                    "{\"done\":true,\"prompt_eval_count\":21,\"eval_count\":8}\n",
                ],
                real(21, 8),
            ),
            (
                "a key inside generated text is not usage",
                &[r#"{"choices":[{"message":{"content":"say \"prompt_tokens\": 999"}}],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#],
                real(2, 1),
            ),
            (
                "no usage: estimated from deltas and the request",
                &[
                    "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
                    "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n",
                    "data: {\"choices\":[{\"delta\":{}}]}\n\ndata: [DONE]\n\n",
                ],
                Usage {
                    input: 25,
                    output: 3,
                    estimated: true,
                },
            ),
        ];
        for (name, chunks, want) in cases {
            assert_eq!(usage_of(chunks, 100), *want, "{name}");
        }
    }

    #[test]
    fn usage_split_at_any_byte_reads_the_same() {
        let whole = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n\
                     data: {\"choices\":[{\"delta\":{\"content\":\"yo\"}}]}\n\n\
                     data: {\"usage\":{\"prompt_tokens\":1234,\"completion_tokens\":56789}}\n\n";
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(usage_of(&[a, b], 0), real(1234, 56789), "cut at {cut}");
        }
        let nousage = "data: {\"delta\":1}\n\ndata: {\"delta\":2}\n\n";
        for cut in 0..nousage.len() {
            let (a, b) = nousage.split_at(cut);
            assert_eq!(usage_of(&[a, b], 0).output, 2, "cut at {cut}");
        }
        // Frames that end a line are not carried over, but a key, colon or number that does go
        // on after a newline still is.
        let pretty = [
            "{\"usage\": {\"prompt_tokens\"\n",
            "  : 31,\n",
            "\"completion_tokens\":\n",
            "4}}\n",
        ];
        assert_eq!(usage_of(&pretty, 0), real(31, 4));
        // Three pieces, every pair of cuts.
        for a in 0..nousage.len() {
            for b in a..nousage.len() {
                let parts = [&nousage[..a], &nousage[a..b], &nousage[b..]];
                assert_eq!(usage_of(&parts, 0).output, 2, "cuts at {a}, {b}");
            }
        }
        // Byte by byte: every seam at once.
        let bytes: Vec<String> = whole.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(usage_of(&refs, 0), real(1234, 56789));
    }
}
