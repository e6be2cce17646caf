//! Per-request masking state: which original got which placeholder.
//!
//! Invariants: a placeholder is `{TAG_n}` with `n` counting from 1 per tag in
//! the order originals are first seen; the same original always gets the same
//! placeholder within one session; a placeholder already present in the input
//! (reserved) is never issued for a new original, so restoring is unambiguous.
//! A session is dropped with its request — nothing is shared or kept.

use std::collections::{HashMap, HashSet};

/// The masking state of one request. Create one per request, pass it to every
/// `mask*` call of that request, then read [`MaskSession::mappings`].
#[derive(Debug, Default, Clone)]
pub struct MaskSession {
    by_original: HashMap<String, usize>,
    /// Direct-mapped memo in front of `by_original`: slot `quick_hash % len`
    /// holds `(quick_hash, index into entries)` of an original seen recently.
    /// A hit is confirmed by comparing the original itself, so a collision is
    /// only a miss (then the keyed `HashMap` decides): it saves the SipHash of
    /// identifiers repeated in a request, not its collision resistance.
    recent: Vec<(u64, usize)>,
    entries: Vec<(String, String)>,
    /// the last number issued per tag (a few dozen tags: a list beats hashing)
    counters: Vec<(&'static str, u32)>,
    reserved: HashSet<String>,
}

impl MaskSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// `(placeholder, original)` pairs in the order they were issued.
    pub fn mappings(&self) -> &[(String, String)] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `{placeholder: original}` as a JSON object (the `mappings` of `P/fast_text_mask`).
    pub fn mappings_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .entries
            .iter()
            .map(|(p, o)| (p.clone(), serde_json::Value::String(o.clone())))
            .collect();
        serde_json::Value::Object(map)
    }

    /// Never issue `placeholder` (it already occurs in the input as literal text).
    pub(crate) fn reserve(&mut self, placeholder: &str) {
        if !self.reserved.contains(placeholder) {
            self.reserved.insert(placeholder.to_owned());
        }
    }

    /// The placeholder for `original` of type `tag`, issuing a new one if needed.
    pub(crate) fn placeholder(&mut self, tag: &'static str, original: &str) -> &str {
        let h = quick_hash(original.as_bytes());
        if self.recent.is_empty() {
            self.recent = vec![(0, usize::MAX); RECENT];
        }
        let slot = (h % RECENT as u64) as usize;
        let (sh, si) = self.recent[slot];
        if sh == h && si < self.entries.len() && self.entries[si].1 == original {
            return &self.entries[si].0;
        }
        if let Some(&i) = self.by_original.get(original) {
            self.recent[slot] = (h, i);
            return &self.entries[i].0;
        }
        self.recent[slot] = (h, self.entries.len());
        let k = match self.counters.iter().position(|&(t, _)| t == tag) {
            Some(k) => k,
            None => {
                self.counters.push((tag, 0));
                self.counters.len() - 1
            }
        };
        let counter = &mut self.counters[k].1;
        let placeholder = loop {
            *counter += 1;
            let p = format!("{{{tag}_{counter}}}");
            if !self.reserved.contains(&p) {
                break p;
            }
        };
        self.by_original
            .insert(original.to_owned(), self.entries.len());
        self.entries.push((placeholder, original.to_owned()));
        &self.entries[self.entries.len() - 1].0
    }
}

/// Slots of [`MaskSession::recent`].
const RECENT: usize = 256;

/// A fast unkeyed hash for the memo only (never for the map itself).
fn quick_hash(s: &[u8]) -> u64 {
    let mut h = s.len() as u64;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(23) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

/// Length of the placeholder `{TAG_n}` starting at `s[0]`, if there is one.
/// TAG is `[A-Z][A-Z_]*`, `n` is 1–6 digits: no digits elsewhere, so a
/// look-alike such as `{PHONE_600123456}` cannot shelter a number from masking.
pub(crate) fn placeholder_len(s: &[u8]) -> Option<usize> {
    if s.len() < 5 || s[0] != b'{' || !s[1].is_ascii_uppercase() {
        return None;
    }
    let mut i = 2;
    while i < s.len()
        && i < 64
        && (s[i].is_ascii_uppercase() || s[i] == b'_' || s[i].is_ascii_digit())
    {
        i += 1;
    }
    if i >= s.len() || s[i] != b'}' {
        return None;
    }
    // body = s[1..i] must end with `_` + digits
    let body = &s[1..i];
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let sep = body.len().checked_sub(digits + 1)?;
    let tag_ok = body[..sep]
        .iter()
        .all(|b| b.is_ascii_uppercase() || *b == b'_');
    ((1..=6).contains(&digits) && sep >= 1 && body[sep] == b'_' && tag_ok).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_is_per_tag_and_stable() {
        let mut s = MaskSession::new();
        assert_eq!(s.placeholder("EMAIL", "a@b.pl"), "{EMAIL_1}");
        assert_eq!(s.placeholder("PESEL", "44051401359"), "{PESEL_1}");
        assert_eq!(s.placeholder("EMAIL", "c@d.pl"), "{EMAIL_2}");
        assert_eq!(s.placeholder("EMAIL", "a@b.pl"), "{EMAIL_1}");
        assert_eq!(s.mappings().len(), 3);
    }

    #[test]
    fn the_memo_never_answers_for_another_original() {
        let mut s = MaskSession::new();
        // many originals, so memo slots are shared and overwritten
        let originals: Vec<String> = (0..2000).map(|k| format!("{k}@x.pl")).collect();
        for (k, o) in originals.iter().enumerate() {
            assert_eq!(s.placeholder("EMAIL", o), format!("{{EMAIL_{}}}", k + 1));
        }
        for (k, o) in originals.iter().enumerate().rev() {
            assert_eq!(s.placeholder("EMAIL", o), format!("{{EMAIL_{}}}", k + 1));
            assert_eq!(s.placeholder("EMAIL", o), format!("{{EMAIL_{}}}", k + 1));
        }
        // a slot collision is only a miss: same hash slot, different original
        let (a, b) = (0..)
            .map(|k| format!("{k}"))
            .flat_map(|x| {
                let hx = quick_hash(x.as_bytes()) % RECENT as u64;
                (0..5000).map(move |k| format!("z{k}")).find_map(move |y| {
                    (quick_hash(y.as_bytes()) % RECENT as u64 == hx).then(|| (x.clone(), y))
                })
            })
            .next()
            .unwrap();
        let pa = s.placeholder("PESEL", &a).to_string();
        let pb = s.placeholder("PESEL", &b).to_string();
        assert_ne!(pa, pb);
        assert_eq!(s.placeholder("PESEL", &a), pa);
        assert_eq!(s.placeholder("PESEL", &b), pb);
        assert_eq!(s.mappings().len(), 2002);
    }

    #[test]
    fn reserved_placeholders_are_skipped() {
        let mut s = MaskSession::new();
        s.reserve("{EMAIL_1}");
        assert_eq!(s.placeholder("EMAIL", "a@b.pl"), "{EMAIL_2}");
    }

    #[test]
    fn placeholder_shapes() {
        assert_eq!(placeholder_len(b"{EMAIL_1} x"), Some(9));
        assert_eq!(placeholder_len(b"{PHONE_INTERNATIONAL_12}"), Some(24));
        for bad in [
            "{EMAIL}",
            "{email_1}",
            "{_1}",
            "{EMAIL_1",
            "{EMAIL_x}",
            "{E_}",
            "{ EMAIL_1}",
            "{PHONE_600123456}",
            "{A1234_1}",
        ] {
            assert_eq!(placeholder_len(bad.as_bytes()), None, "{bad}");
        }
    }
}
