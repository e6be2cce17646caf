//! Putting the originals back: [`unmask`] for whole texts and [`Restorer`] for
//! streams arriving in deltas.
//!
//! Only placeholders present in the mappings are replaced; any other `{…}`
//! text passes through unchanged. The streaming restorer holds back at most
//! one partial placeholder: a tail starting with `{` that is still a prefix of
//! some known placeholder. Anything else is released at once.

use std::collections::HashMap;

/// The placeholder → original table, built from a session's mappings.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    map: HashMap<String, String>,
    /// sorted, for prefix queries
    keys: Vec<String>,
    max_len: usize,
}

impl Mappings {
    pub fn new<I, P, O>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (P, O)>,
        P: Into<String>,
        O: Into<String>,
    {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(p, o)| (p.into(), o.into()))
            .collect();
        let mut keys: Vec<String> = map.keys().cloned().collect();
        keys.sort_unstable();
        let max_len = keys.iter().map(String::len).max().unwrap_or(0);
        Mappings { map, keys, max_len }
    }

    /// From a `{placeholder: original}` JSON object (the `mappings` of
    /// `P/fast_text_mask`); non-string values are an error naming the key.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "mappings: expected a JSON object".to_owned())?;
        let mut pairs = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            let o = v
                .as_str()
                .ok_or_else(|| format!("mappings.{k}: expected a string"))?;
            pairs.push((k.clone(), o.to_owned()));
        }
        Ok(Self::new(pairs))
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, placeholder: &str) -> Option<&str> {
        self.map.get(placeholder).map(String::as_str)
    }

    /// Whether `s` is a proper prefix of some known placeholder.
    fn is_prefix(&self, s: &str) -> bool {
        let i = self.keys.partition_point(|k| k.as_str() < s);
        self.keys
            .get(i)
            .is_some_and(|k| k.len() > s.len() && k.starts_with(s))
    }
}

impl From<&crate::MaskSession> for Mappings {
    fn from(s: &crate::MaskSession) -> Self {
        Mappings::new(s.mappings().iter().map(|(p, o)| (p.as_str(), o.as_str())))
    }
}

/// Replace every known placeholder in `text` by its original.
pub fn unmask(text: &str, mappings: &Mappings) -> String {
    let mut out = String::with_capacity(text.len());
    let done = restore_into(text, mappings, &mut out, true);
    debug_assert_eq!(done, text.len());
    out
}

/// Restore `text` into `out`; returns how many bytes were consumed. When
/// `last` is false, a trailing partial placeholder is left unconsumed.
fn restore_into(text: &str, m: &Mappings, out: &mut String, last: bool) -> usize {
    let b = text.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'{', &b[i..]) {
        let p = i + off;
        let mut end = text.len().min(p + m.max_len);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let window = &text[p..end];
        let close = window.find('}');
        if let Some(c) = close {
            if let Some(orig) = m.get(&window[..=c]) {
                out.push_str(&text[copied..p]);
                out.push_str(orig);
                copied = p + c + 1;
                i = copied;
                continue;
            }
        } else if !last && p + m.max_len > text.len() && m.is_prefix(&text[p..]) {
            out.push_str(&text[copied..p]);
            return p;
        }
        i = p + 1;
    }
    out.push_str(&text[copied..]);
    text.len()
}

/// Restores a stream of text deltas: `push` returns what can be emitted now,
/// `finish` what is left. Holds back only a tail that can still become a
/// known placeholder (shorter than the longest placeholder).
#[derive(Debug)]
pub struct Restorer {
    mappings: Mappings,
    pending: String,
}

impl Restorer {
    pub fn new(mappings: Mappings) -> Self {
        Restorer {
            mappings,
            pending: String::new(),
        }
    }

    pub fn push(&mut self, delta: &str) -> String {
        if self.mappings.is_empty() {
            return delta.to_owned();
        }
        let mut out = String::with_capacity(self.pending.len() + delta.len());
        if self.pending.is_empty() {
            let used = restore_into(delta, &self.mappings, &mut out, false);
            self.pending.push_str(&delta[used..]);
        } else {
            self.pending.push_str(delta);
            let buf = std::mem::take(&mut self.pending);
            let used = restore_into(&buf, &self.mappings, &mut out, false);
            self.pending.push_str(&buf[used..]);
        }
        out
    }

    /// Bytes currently held back.
    pub fn pending(&self) -> &str {
        &self.pending
    }

    pub fn finish(self) -> String {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> Mappings {
        Mappings::new([
            ("{PESEL_1}", "44051401359"),
            ("{EMAIL_1}", "jan@firma.pl"),
            ("{EMAIL_12}", "x@y.pl"),
        ])
    }

    #[test]
    fn unmask_replaces_known_only() {
        assert_eq!(
            unmask("a {PESEL_1} b {EMAIL_1}{EMAIL_12} {EMAIL_2} {x", &maps()),
            "a 44051401359 b jan@firma.plx@y.pl {EMAIL_2} {x"
        );
    }

    #[test]
    fn restorer_joins_a_split_placeholder() {
        let mut r = Restorer::new(maps());
        assert_eq!(r.push("PESEL to {PES"), "PESEL to ");
        assert_eq!(r.pending(), "{PES");
        assert_eq!(r.push("EL_1} ok"), "44051401359 ok");
        assert_eq!(r.finish(), "");
    }

    #[test]
    fn restorer_releases_a_brace_that_cannot_be_a_placeholder() {
        let mut r = Restorer::new(maps());
        assert_eq!(r.push("json {\"a\""), "json {\"a\"");
        assert_eq!(r.push(" {E"), " ");
        assert_eq!(r.push("X"), "{EX");
        // `{EMAIL_1` may still become `{EMAIL_12}`
        assert_eq!(r.push(" {EMAIL_1"), " ");
        assert_eq!(r.push("}"), "jan@firma.pl");
        assert_eq!(r.push("{EMAIL_1"), "");
        assert_eq!(r.finish(), "{EMAIL_1");
    }
}
