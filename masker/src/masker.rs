//! [`FastMasker`]: the compiled rule table and the masking pass over one text.

use std::borrow::Cow;
use std::sync::Mutex;

use regex_automata::hybrid::dfa::Cache;
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
    combined: rules::Combined,
    /// Lazy-DFA caches of `combined`, one taken per `find` (so one per thread
    /// masking at the same time), returned when it ends.
    caches: Mutex<Vec<Cache>>,
    every: Regex,
    currency_after: Regex,
    literals: scan::LiteralFinders,
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
            caches: Mutex::new(Vec::new()),
            every: c.every,
            currency_after: c.currency_after,
            literals: scan::LiteralFinders::new(),
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
        let lit = scan::Literals::find_with(b, &self.literals);
        let mut windows = Vec::new();
        scan::windows(text, &lit, &mut windows);
        let mut spans = Vec::new();
        let mut cache = self.take_cache();
        for &(ws, we) in &windows {
            // trigger searches stop at the window's end
            let mut trig = scan::Triggers::new(&b[..we]);
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
                    if !scan::token_may_match(b, i, te, we, &lit, &mut trig) {
                        i = te;
                        continue;
                    }
                }
                if !can_begin(c) || !start_ok(text, i) || (blob && !blob_boundary(b, i)) {
                    i = next_char(b, i);
                    continue;
                }
                let cap = we.min(i + MAX_SPAN);
                let input = Input::new(text).range(i..cap).anchored(Anchored::Yes);
                let Some((pid, mut end)) = self.combined_at(&mut cache, &input) else {
                    i = skip(text, i);
                    continue;
                };
                if end == cap && cap < we && self.rules[pid - 1].kind == rules::Kind::Url {
                    // a URL longer than the cap: take all of it
                    let full = Input::new(text).range(i..we).anchored(Anchored::Yes);
                    end = self.rules[pid - 1]
                        .re
                        .search(&full)
                        .map_or(end, |m| m.end());
                }
                if pid == 0 {
                    i = end; // a placeholder already in the text
                    continue;
                }
                match self.best_at(text, i, we, pid - 1, end, later) {
                    Some(h) => {
                        spans.push(h.main);
                        spans.extend(h.extra);
                        i = h.extra.map_or(h.main.e, |x| x.e).max(i + 1);
                    }
                    None => i = skip(text, i),
                }
            }
        }
        self.caches.lock().expect("cache pool").push(cache);
        spans
    }

    fn take_cache(&self) -> Cache {
        let kept = self.caches.lock().expect("cache pool").pop();
        kept.unwrap_or_else(|| self.combined.dfa.create_cache())
    }

    /// The pattern (0: placeholder, k: rule k − 1) and end of the combined
    /// leftmost-first match for the anchored `input`, if any.
    fn combined_at(&self, cache: &mut Cache, input: &Input) -> Option<(usize, usize)> {
        match self.combined.dfa.try_search_fwd(cache, input) {
            Ok(m) => m.map(|m| (m.pattern().as_usize(), m.offset())),
            // the lazy DFA gave up (its cache thrashes): the PikeVM has no limit
            Err(_) => {
                let pv = &self.combined.pikevm;
                let m = pv.find(&mut pv.create_cache(), input.clone())?;
                Some((m.pattern().as_usize(), m.end()))
            }
        }
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
    static CAN_BEGIN: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0usize;
        while c < 256 {
            let b = c as u8;
            t[c] = b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'(' | b'$' | b'{' | b'.' | b'_' | b'%' | b'-')
                || b >= 0xC0;
            c += 1;
        }
        t
    };
    CAN_BEGIN[c as usize]
}

/// The next char boundary after `i` (UTF-8 continuation bytes are 0x80–0xBF).
fn next_char(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && (b[j] as i8) < -0x40 {
        j += 1;
    }
    j
}

/// No rule accepts a match glued to a preceding ASCII digit, and only
/// digit-first rules accept one glued to a preceding letter (`NIP1234567890`).
#[inline(always)]
fn start_ok(text: &str, s: usize) -> bool {
    let b = text.as_bytes();
    if s == 0 {
        return true;
    }
    let p = b[s - 1];
    if p < 0x80 {
        // an ASCII char: Unicode and ASCII alphanumerics agree
        return !p.is_ascii_digit() && (b[s].is_ascii_digit() || !p.is_ascii_alphanumeric());
    }
    let p = text[..s].chars().next_back().expect("a char before s");
    b[s].is_ascii_digit() || !p.is_alphanumeric()
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
mod reference;
#[cfg(test)]
mod reference_accept;

#[cfg(test)]
mod differential {
    use super::*;

    /// Texts the two ways of finding later rules are compared on: the bench corpora, each
    /// with every digit shifted by 0..9 (so checksums pass and fail in every combination),
    /// and every suffix of a dense sample (starts inside matches).
    pub(super) fn corpus() -> Vec<String> {
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

    /// [`corpus`] plus: every suffix and prefix of the dense and mixed samples (matches
    /// cut at the very start / end of the text), literal triggers, placeholders, long
    /// blobs, non-ASCII neighbours and other whitespace.
    pub(super) fn wide_corpus() -> Vec<String> {
        let mut out = corpus();
        for t in [
            include_str!("../testdata/pl_pii.txt"),
            include_str!("../testdata/en_pii.txt"),
            include_str!("../testdata/pl_mixed.txt"),
            include_str!("../testdata/en_mixed.txt"),
        ] {
            for (i, _) in t.char_indices().step_by(5) {
                out.push(t[i..].to_string());
                out.push(t[..i].to_string());
            }
            out.push(t.replace(' ', "\n"));
            out.push(t.replace(' ', "\t "));
            out.push(t.replace(", ", ",ą"));
            out.push(t.replace(' ', ""));
        }
        let blob = "a1B2c3D4e5F6".repeat(60);
        out.extend(
            [
                "see www.example.com/path now, or http://localhost:8080/x and LOCALHOST:99",
                "wwww.example.com localhost www.a.b.c 12 localhost:65536",
                "{EMAIL_1} {PESEL_12}85010112345 {A_1}x {PHONE_600123456}",
                "ą85010112345 85010112345ą ź600 123 456ż £12.50 €99 ¥1 ₹5 ₽7",
                "fbid1234567890 PL5261040828 ORD123456 12.50 zł 1 200,50 zł",
                "1.2.3.4.5 10.20.30.40:8080 00:1A:2B:3C:4D:5E 2001:db8:0:0:0:0:2:1",
                "",
                "7",
                "a@b.pl",
            ]
            .map(String::from),
        );
        out.push(format!("x {blob} 85010112345 {blob}.85010112345 {blob}"));
        out
    }

    #[test]
    fn the_fast_scan_finds_exactly_what_the_reference_finds() {
        let m = FastMasker::new();
        let texts = wide_corpus();
        let mut spans = 0;
        for t in &texts {
            let fast = m.find(t);
            assert_eq!(fast, reference::find(&m, t), "{t}");
            spans += fast.len();
        }
        assert!(
            spans > 10_000,
            "the corpus exercises the rules: {spans} spans"
        );
    }

    /// The PikeVM that answers when the lazy DFA gives up finds the same pattern and end
    /// at every start of the samples.
    #[test]
    fn the_pikevm_fallback_agrees_with_the_lazy_dfa() {
        let m = FastMasker::new();
        let mut cache = m.take_cache();
        let pv = &m.combined.pikevm;
        let mut pcache = pv.create_cache();
        let mut found = 0;
        for t in [
            include_str!("../testdata/pl_pii.txt"),
            include_str!("../testdata/en_pii.txt"),
            "{EMAIL_1} x@y.pl 10.0.0.1:80 www.a.pl 1 200,50 zł",
        ] {
            for (i, _) in t.char_indices() {
                let input = Input::new(t).range(i..).anchored(Anchored::Yes);
                let dfa = m.combined_at(&mut cache, &input);
                let pike = pv
                    .find(&mut pcache, input.clone())
                    .map(|x| (x.pattern().as_usize(), x.end()));
                assert_eq!(dfa, pike, "at {i} of {t}");
                found += usize::from(dfa.is_some());
            }
        }
        assert!(found > 150, "{found}");
    }

    /// Threads masking at once each take their own lazy-DFA cache from the pool.
    #[test]
    fn concurrent_masks_agree_with_a_sequential_one() {
        let m = FastMasker::new();
        let text = include_str!("../testdata/pl_pii.txt").repeat(8);
        let want = m.mask(&text, &mut MaskSession::new()).into_owned();
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..5 {
                        assert_eq!(m.mask(&text, &mut MaskSession::new()), want);
                    }
                });
            }
        });
        assert!(!m.caches.lock().unwrap().is_empty());
    }

    /// Matches at the very start and end of the text and of a window, and spans that touch.
    #[test]
    fn edges_and_adjacent_spans() {
        let m = FastMasker::new();
        let mask = |t: &str| m.mask(t, &mut MaskSession::new()).into_owned();
        for (t, want) in [
            ("85010112345", "{PESEL_1}"),
            ("jan@x.pl", "{EMAIL_1}"),
            ("jan@x.pl,85010112345", "{EMAIL_1},{PESEL_1}"),
            ("10.0.0.1:8080", "{IP_1}:{PORT_1}"),
            ("a b c d e f g 85010112345", "a b c d e f g {PESEL_1}"),
            ("85010112345 a b c d e f g", "{PESEL_1} a b c d e f g"),
            (
                "x 85010112345 a b c d e f g h 600 123 456",
                "x {PESEL_1} a b c d e f g h {PHONE_1}",
            ),
            ("PESEL 85010112345", "PESEL {PESEL_1}"),
        ] {
            assert_eq!(mask(t), want, "{t}");
            assert_eq!(m.find(t), reference::find(&m, t), "{t}");
        }
    }
}
