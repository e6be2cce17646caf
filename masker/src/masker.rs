//! [`FastMasker`]: the compiled rule table and the masking pass over one text.

use std::borrow::Cow;

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, PatternID, PatternSet};

use crate::rules::{self, Hit, Rule, Span};
use crate::scan;
use crate::session::{placeholder_len, MaskSession};

/// The compiled fast_masker rules. Build once (tens of milliseconds), share in
/// an `Arc`; `mask*` take `&self` and keep all per-request state in the
/// [`MaskSession`] passed in.
pub struct FastMasker {
    rules: Vec<Rule>,
    combined: Regex,
    every: Regex,
    currency_after: Regex,
}

impl std::fmt::Debug for FastMasker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastMasker")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Default for FastMasker {
    fn default() -> Self {
        Self::new()
    }
}

impl FastMasker {
    pub fn new() -> Self {
        let c = rules::compile();
        FastMasker {
            rules: c.rules,
            combined: c.combined,
            every: c.every,
            currency_after: c.currency_after,
        }
    }

    /// The rule type names, in application order (`PESEL_TAGGED` masks as `PESEL`).
    pub fn rule_names() -> impl Iterator<Item = &'static str> {
        rules::ORDER.iter().map(|k| k.name())
    }

    /// Mask `text`, recording each placeholder in `session`. Borrowed when nothing matched.
    pub fn mask<'t>(&self, text: &'t str, session: &mut MaskSession) -> Cow<'t, str> {
        reserve_existing(text, session);
        let spans = self.find(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + spans.len() * 8);
        let mut last = 0;
        for sp in spans {
            out.push_str(&text[last..sp.s]);
            out.push_str(session.placeholder(sp.tag, &text[sp.s..sp.e]));
            last = sp.e;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// The spans to replace, ascending and disjoint. Inside each window, each
    /// position that can start a match (see [`start_ok`], [`can_begin`]) gets
    /// one anchored search of the combined regex: it names the earliest rule
    /// in the table matching there; if that rule's checks fail, the later rules
    /// are tried at the same position. Tokens that hold no trigger byte and are
    /// not followed by a number (`Szanowni`, `Państwo,`) are skipped whole: no
    /// rule matches within them or from them.
    fn find(&self, text: &str) -> Vec<Span> {
        self.find_with(text, Later::Set)
    }

    fn find_with(&self, text: &str, later: Later) -> Vec<Span> {
        let b = text.as_bytes();
        let mut windows = Vec::new();
        scan::windows(text, &mut windows);
        let mut spans = Vec::new();
        for &(ws, we) in &windows {
            let mut i = ws;
            let mut blob = false;
            while i < we {
                let c = b[i];
                if i == ws || scan::is_space(b[i - 1]) {
                    if scan::is_space(c) {
                        i += 1;
                        continue;
                    }
                    let te = scan::token_end(b, i).min(we);
                    blob = te - i >= BLOB;
                    if !scan::token_may_match(b, i, te, we) {
                        i = te;
                        continue;
                    }
                }
                if !can_begin(c) || !start_ok(text, i) || (blob && !blob_boundary(b, i)) {
                    i = next_char(text, i);
                    continue;
                }
                let cap = we.min(i + MAX_SPAN);
                let input = Input::new(text).range(i..cap).anchored(Anchored::Yes);
                let Some(mut m) = self.combined.search(&input) else {
                    i = skip(text, i);
                    continue;
                };
                let pid = m.pattern().as_usize();
                if m.end() == cap && cap < we && self.rules[pid - 1].kind == rules::Kind::Url {
                    // a URL longer than the cap: take all of it
                    let full = Input::new(text).range(i..we).anchored(Anchored::Yes);
                    m = self.rules[pid - 1].re.search(&full).unwrap_or(m);
                }
                if pid == 0 {
                    i = m.end(); // a placeholder already in the text
                    continue;
                }
                match self.best_at(text, i, we, pid - 1, m.end(), later) {
                    Some(h) => {
                        spans.push(h.main);
                        spans.extend(h.extra);
                        i = h.extra.map_or(h.main.e, |x| x.e).max(i + 1);
                    }
                    None => i = skip(text, i),
                }
            }
        }
        spans
    }

    /// The first rule from `first` on whose match at `s` passes its checks.
    fn best_at(
        &self,
        text: &str,
        s: usize,
        we: usize,
        first: usize,
        first_end: usize,
        later: Later,
    ) -> Option<Hit> {
        if !start_ok(text, s) {
            return None;
        }
        if let Some(h) = self.rules[first].accept(text, s, first_end, &self.currency_after) {
            return Some(h);
        }
        let c = text.as_bytes()[s];
        let input = Input::new(text).range(s..we).anchored(Anchored::Yes);
        // One overlapping pass of the combined regex names every rule that matches at `s`;
        // only those are searched for their own (leftmost-first) match end.
        let mut set = PatternSet::new(0);
        if later == Later::Set {
            set = PatternSet::new(self.every.pattern_len());
            self.every.which_overlapping_matches(&input, &mut set);
        }
        for (k, rule) in self.rules.iter().enumerate().skip(first + 1) {
            if !rule.kind.may_start(c) {
                continue;
            }
            if later == Later::Set && !set.contains(PatternID::must(k + 1)) {
                continue;
            }
            if let Some(m) = rule.re.search(&input) {
                if let Some(h) = rule.accept(text, s, m.end(), &self.currency_after) {
                    return Some(h);
                }
            }
        }
        None
    }
}

/// How [`FastMasker::best_at`] finds the later rules matching where the first one failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Later {
    /// Ask the combined regex once which rules match there.
    Set,
    /// Search each rule's own regex (the reference the differential test compares with).
    #[cfg_attr(not(test), allow(dead_code))]
    EachRule,
}

/// Longest text one candidate's search looks at (a URL may run on; see `find`).
/// Bounds the work per position, so a long blob without spaces costs linear time.
const MAX_SPAN: usize = 4096;

/// Inside a token longer than this, only its start and positions after
/// punctuation that no long pattern runs through are candidates (see
/// [`blob_boundary`]): hex, base64 and `a.a.a…` blobs stay linear.
const BLOB: usize = 512;

fn blob_boundary(b: &[u8], i: usize) -> bool {
    i == 0
        || scan::is_space(b[i - 1])
        || (b[i - 1].is_ascii_punctuation()
            && !matches!(b[i - 1], b'.' | b'%' | b'+' | b'-' | b'_'))
}

/// Bytes a match can start with: ASCII letters and digits, `+` `(` `$` `{`,
/// and the lead bytes of `€ ₽ ₹` (0xE2) and `£ ¥` (0xC2); also any other
/// non-ASCII byte, since an e-mail's local part may start with one.
fn can_begin(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, b'+' | b'(' | b'$' | b'{' | b'.' | b'_' | b'%' | b'-')
        || c >= 0xC0
}

fn next_char(text: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < text.len() && !text.is_char_boundary(j) {
        j += 1;
    }
    j
}

/// No rule accepts a match glued to a preceding ASCII digit, and only
/// digit-first rules accept one glued to a preceding letter (`NIP1234567890`).
fn start_ok(text: &str, s: usize) -> bool {
    let Some(p) = text[..s].chars().next_back() else {
        return true;
    };
    if p.is_ascii_digit() {
        return false;
    }
    text.as_bytes()[s].is_ascii_digit() || !p.is_alphanumeric()
}

/// Next position worth a look after a rejected start: the rest of a digit run
/// or an ASCII letter run cannot start a match (see [`start_ok`]).
fn skip(text: &str, s: usize) -> usize {
    let b = text.as_bytes();
    let mut i = s + 1;
    if b[s].is_ascii_digit() {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    } else if b[s].is_ascii_alphabetic() {
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
    }
    while i < b.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Placeholders already in `text` are reserved in the session: never issued anew.
pub(crate) fn reserve_existing(text: &str, session: &mut MaskSession) {
    let b = text.as_bytes();
    for i in memchr::memchr_iter(b'{', b) {
        if let Some(n) = placeholder_len(&b[i..]) {
            session.reserve(&text[i..i + n]);
        }
    }
}

#[cfg(test)]
mod differential {
    use super::*;

    /// Texts the two ways of finding later rules are compared on: the bench corpora, each
    /// with every digit shifted by 0..9 (so checksums pass and fail in every combination),
    /// and every suffix of a dense sample (starts inside matches).
    fn corpus() -> Vec<String> {
        let base = [
            include_str!("../testdata/pl_clean.txt"),
            include_str!("../testdata/pl_pii.txt"),
            include_str!("../testdata/en_clean.txt"),
            include_str!("../testdata/en_pii.txt"),
            include_str!("../testdata/pl_mixed.txt"),
            include_str!("../testdata/en_mixed.txt"),
        ];
        let mut out = Vec::new();
        for t in base {
            for k in 0..10u8 {
                out.push(
                    t.chars()
                        .map(|c| match c {
                            '0'..='9' => char::from(b'0' + (c as u8 - b'0' + k) % 10),
                            c => c,
                        })
                        .collect(),
                );
            }
        }
        let dense = base[1];
        for (i, _) in dense.char_indices().step_by(7) {
            out.push(dense[i..].to_string());
        }
        out
    }

    #[test]
    fn the_pattern_set_finds_exactly_what_searching_each_rule_finds() {
        let m = FastMasker::new();
        let texts = corpus();
        let mut spans = 0;
        for t in &texts {
            let fast = m.find_with(t, Later::Set);
            assert_eq!(fast, m.find_with(t, Later::EachRule), "{t}");
            spans += fast.len();
        }
        assert!(
            spans > 1000,
            "the corpus exercises the rules: {spans} spans"
        );
    }
}
