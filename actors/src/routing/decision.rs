//! The `x-llm-router-decision` summary (SPEC §7): an ordered `key=value;key=value` record of how a
//! request was routed — strategy, candidates, chosen provider and why, fallbacks and retries taken,
//! the auto model with its intent and complexity, the affinity outcome.
//!
//! Invariants: keys are code constants (`[a-z0-9_]`); values are percent-encoded so `;`, `=`, `,`,
//! `%`, spaces, control bytes and non-ASCII never appear raw — the result is always a valid HTTP
//! header value (visible ASCII only) and splits back unambiguously. Order is insertion order and a
//! key may repeat (one `retry=` per retry, in the order they happened). The header stays under
//! [`MAX_LEN`] bytes: pairs that do not fit are dropped and `truncated=1` ends the value.

use std::fmt::{self, Write as _};

use super::affinity::{KeySource, Placement};
use super::semantic::Decision;

pub const HEADER: &str = "x-llm-router-decision";
/// Longest header value produced (well under the usual 8 KiB header limits).
pub const MAX_LEN: usize = 1024;
const TRUNCATED: &str = "truncated=1";

/// The pairs, in order: every escaped value lives in one buffer (`buf[start..end]`), so a
/// request's summary costs a couple of allocations, not several per pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecisionSummary {
    buf: String,
    pairs: Vec<(&'static str, usize, usize)>,
}

/// Escapes what is written through it into the summary's buffer.
struct Escaper<'a>(&'a mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

impl DecisionSummary {
    pub fn new() -> DecisionSummary {
        DecisionSummary {
            buf: String::with_capacity(256),
            pairs: Vec::with_capacity(12),
        }
    }

    /// Appends `key=value` (value escaped).
    pub fn push(&mut self, key: &'static str, value: impl fmt::Display) -> &mut Self {
        debug_assert!(
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "decision key {key:?}"
        );
        let start = self.buf.len();
        let _ = write!(Escaper(&mut self.buf), "{value}");
        self.pairs.push((key, start, self.buf.len()));
        self
    }

    /// Appends `key=a,b,c`, each item escaped (so a `,` inside an item is `%2C`).
    pub fn push_list<I>(&mut self, key: &'static str, items: I) -> &mut Self
    where
        I: IntoIterator,
        I::Item: fmt::Display,
    {
        let start = self.buf.len();
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            let _ = write!(Escaper(&mut self.buf), "{item}");
        }
        self.pairs.push((key, start, self.buf.len()));
        self
    }

    pub fn strategy(&mut self, name: &str) -> &mut Self {
        self.push("strategy", name)
    }

    pub fn candidates<S: fmt::Display>(&mut self, ids: &[S]) -> &mut Self {
        self.push_list("candidates", ids)
    }

    /// The provider that served, and why (e.g. `least_loaded`, `affinity`, `only_healthy`).
    pub fn chosen(&mut self, provider: &str, why: &str) -> &mut Self {
        self.push("chosen", provider).push("why", why)
    }

    /// A retry on another provider after `cause` (e.g. `timeout`, `status_503`).
    pub fn retry(&mut self, failed_provider: &str, cause: &str) -> &mut Self {
        self.push_list("retry", [failed_provider, cause])
    }

    /// A fallback to another model.
    pub fn fallback(&mut self, model: &str) -> &mut Self {
        self.push("fallback", model)
    }

    /// The `model: "auto"` choice.
    pub fn auto(&mut self, d: &Decision<'_>) -> &mut Self {
        self.push("auto", d.model)
            .push("intent", d.intent)
            .push("complexity", d.complexity)
            .push("tokens", d.estimated_tokens)
    }

    /// The cache-affinity outcome: `affinity=hit|miss`, `affinity_reason=…`, `affinity_key=…`.
    pub fn affinity(&mut self, p: &Placement, source: KeySource) -> &mut Self {
        self.push("affinity", if p.hit() { "hit" } else { "miss" })
            .push("affinity_reason", p.reason.as_str())
            .push("affinity_key", source.as_str())
    }

    /// `(key, escaped value)` in order, e.g. for the trace span's fields.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.pairs.iter().map(|&(k, a, b)| (k, &self.buf[a..b]))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The header value: visible ASCII only, at most [`MAX_LEN`] bytes.
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity((self.buf.len() + 16 * self.pairs.len()).min(MAX_LEN));
        for (i, (k, v)) in self.pairs().enumerate() {
            let sep = usize::from(!out.is_empty());
            let len = sep + k.len() + 1 + v.len();
            // Leave room for the marker unless this is the last pair.
            let room = if i + 1 == self.pairs.len() {
                MAX_LEN
            } else {
                MAX_LEN - TRUNCATED.len() - 1
            };
            if out.len() + len > room {
                if !out.is_empty() {
                    out.push(';');
                }
                out.push_str(TRUNCATED);
                return out;
            }
            if sep == 1 {
                out.push(';');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

impl fmt::Display for DecisionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header_value())
    }
}

fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) && !matches!(b, b'%' | b';' | b'=' | b',') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Reverses the escaping of one value or list item (for tests and log readers).
pub fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::affinity::PlacementReason;
    use crate::routing::semantic::Complexity;

    fn valid_header_value(v: &str) -> bool {
        v.bytes().all(|b| (0x21..=0x7e).contains(&b))
    }

    #[test]
    fn a_full_decision_in_order() {
        let mut s = DecisionSummary::new();
        s.auto(&Decision {
            model: "qwen3:32b",
            intent: "code",
            intent_score: 5.0,
            complexity: Complexity::Medium,
            estimated_tokens: 40,
        })
        .strategy("balanced")
        .candidates(&["vllm-a", "vllm-b"])
        .affinity(
            &Placement {
                index: 1,
                reason: PlacementReason::RingOwner,
                skipped: 0,
            },
            KeySource::SessionId,
        )
        .retry("vllm-a", "timeout")
        .chosen("vllm-b", "affinity");
        assert_eq!(
            s.header_value(),
            "auto=qwen3:32b;intent=code;complexity=medium;tokens=40;strategy=balanced;\
             candidates=vllm-a,vllm-b;affinity=hit;affinity_reason=owner;\
             affinity_key=x-session-id;retry=vllm-a,timeout;chosen=vllm-b;why=affinity"
        );
        assert_eq!(s.pairs().nth(4), Some(("strategy", "balanced")));
    }

    #[test]
    fn separators_and_non_ascii_are_escaped_and_round_trip() {
        // (value, escaped)
        let cases = [
            ("a;b=c", "a%3Bb%3Dc"),
            ("50%", "50%25"),
            ("two words", "two%20words"),
            ("x,y", "x%2Cy"),
            ("zażółć", "za%C5%BC%C3%B3%C5%82%C4%87"),
            ("line\nbreak\t", "line%0Abreak%09"),
            ("", ""),
        ];
        for (value, escaped) in cases {
            let mut s = DecisionSummary::new();
            s.push("why", value);
            let h = s.header_value();
            assert_eq!(h, format!("why={escaped}"));
            assert!(valid_header_value(&h), "{h:?}");
            assert_eq!(unescape(escaped).as_deref(), Some(value));
        }
        let mut s = DecisionSummary::new();
        s.push_list("candidates", ["a,b", "ł;c"]);
        let h = s.header_value();
        assert_eq!(h, "candidates=a%2Cb,%C5%82%3Bc");
        let items: Vec<String> = h["candidates=".len()..]
            .split(',')
            .map(|i| unescape(i).unwrap())
            .collect();
        assert_eq!(items, ["a,b", "ł;c"]);
        assert_eq!(unescape("%G1"), None);
        assert_eq!(unescape("%4"), None);
    }

    #[test]
    fn long_summaries_are_cut_at_a_pair_with_a_marker() {
        let mut s = DecisionSummary::new();
        s.strategy("balanced");
        let ids: Vec<String> = (0..300).map(|i| format!("provider-{i}")).collect();
        s.candidates(&ids).chosen("provider-7", "least_loaded");
        let h = s.header_value();
        assert_eq!(h, "strategy=balanced;truncated=1");
        // Many small pairs: as many as fit, then the marker, never over the limit.
        let mut s = DecisionSummary::new();
        for i in 0..200 {
            s.retry(&format!("p{i}"), "timeout");
        }
        let h = s.header_value();
        assert!(h.len() <= MAX_LEN, "{}", h.len());
        assert!(
            h.ends_with(";truncated=1") && h.starts_with("retry=p0,timeout;"),
            "{h}"
        );
        assert!(valid_header_value(&h));
        // Exactly at the limit without the marker when the last pair fits.
        let mut s = DecisionSummary::new();
        s.push("why", "x".repeat(MAX_LEN - 4));
        assert_eq!(s.header_value().len(), MAX_LEN);
    }
}
