//! The masking pass as it was before the faster scan (one anchored search per
//! candidate, every later rule searched on its own): the reference the
//! differential test compares [`FastMasker::find`] with. Test-only.

use std::sync::OnceLock;

use regex_automata::meta::{self, Regex};
use regex_automata::{Anchored, Input, MatchKind};

use super::reference_accept::accept;
use super::{FastMasker, BLOB, MAX_SPAN};
use crate::rules::{self, Hit, Span};
use crate::scan::CONTEXT_TOKENS;

/// The combined leftmost-first patterns as the meta regex the scan used before.
fn combined() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        meta::Builder::new()
            .configure(
                meta::Config::new()
                    .match_kind(MatchKind::LeftmostFirst)
                    .nfa_size_limit(Some(rules::NFA_SIZE_LIMIT))
                    .hybrid_cache_capacity(rules::CACHE_CAPACITY),
            )
            .build_many(&rules::combined_patterns())
            .expect("built-in combined pattern")
    })
}

const H: u64 = 0x8080_8080_8080_8080;
const L: u64 = 0x0101_0101_0101_0101;

/// Trigger bytes: ASCII digits, `:` (0x30–0x3A) and `@`.
fn is_trigger(c: u8) -> bool {
    (b'0'..=b':').contains(&c) || c == b'@'
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Position of the first trigger byte at or after `from`, eight bytes at a
/// time: for lanes below 0x80, `(x | 0x80) - k` has its high bit set exactly
/// when `x >= k`, and no lane borrows from its neighbour.
fn next_trigger_byte(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 8 <= b.len() {
        let v = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let ge_30 = (v | H).wrapping_sub(0x30 * L);
        let ge_3b = (v | H).wrapping_sub(0x3b * L);
        let digit_colon = ge_30 & !ge_3b & !v & H;
        let z = v ^ (0x40 * L);
        let at = !((z | H).wrapping_sub(L)) & !z & H;
        let m = digit_colon | at;
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    (i..b.len()).find(|&j| is_trigger(b[j]))
}

fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !is_space(b[i]) {
        i += 1;
    }
    i
}

fn token_start(b: &[u8], mut i: usize) -> usize {
    while i > 0 && !is_space(b[i - 1]) {
        i -= 1;
    }
    i
}

/// Whether a match can start in token `b[s..e]`: it holds a trigger byte or
/// literal, or it can begin a match that reaches into the next token, which
/// then starts with a digit (`PLN 100`, `January 5`, `pesel 850…`, `WA 12345`,
/// `€ 99`).
fn token_may_match(b: &[u8], s: usize, e: usize, limit: usize) -> bool {
    if b[s..e].iter().any(|&c| is_trigger(c)) {
        return true;
    }
    let tok = &b[s..e];
    let has =
        |needle: &[u8]| tok.len() >= needle.len() && tok.windows(needle.len()).any(|w| w == needle);
    if has(b"www.") || has(b"localhost") || has(b"LOCALHOST") {
        return true;
    }
    let mut j = e;
    while j < limit && is_space(b[j]) {
        j += 1;
    }
    if !(j < limit && b[j].is_ascii_digit()) {
        return false;
    }
    // Only these reach into a following number: an English month or a PESEL
    // label (any case), a currency sign, or an uppercase code / district.
    let c = b[s];
    if c.is_ascii_lowercase() {
        const HEADS: [&[u8; 3]; 13] = [
            b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
            b"dec", b"pes",
        ];
        return tok.len() >= 3 && HEADS.iter().any(|h| tok[..3].eq_ignore_ascii_case(*h));
    }
    c.is_ascii_uppercase() || matches!(c, b'$' | b'(' | b'+' | 0xC2 | 0xE2)
}

/// Byte ranges `[start, end)` of the text to run the rules on, ascending and disjoint.
fn windows(text: &str, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let b = text.as_bytes();
    let n = b.len();
    // Literal triggers without a digit/`@`/`:` (rare): positions, ascending.
    let mut literals: Vec<usize> = Vec::new();
    for needle in ["www.", "localhost", "LOCALHOST"] {
        literals.extend(memchr::memmem::find_iter(b, needle));
    }
    literals.sort_unstable();
    let has_literal = |s: usize, e: usize| {
        let i = literals.partition_point(|&p| p < s);
        literals.get(i).is_some_and(|&p| p < e)
    };
    let next_trigger = |from: usize| {
        let byte = next_trigger_byte(b, from);
        let i = literals.partition_point(|&p| p < from);
        match (byte, literals.get(i)) {
            (Some(x), Some(&y)) => Some(x.min(y)),
            (x, y) => x.or(y.copied()),
        }
    };
    let mut pos = 0;
    while let Some(t) = next_trigger(pos) {
        // back over the trigger token and CONTEXT_TOKENS tokens before it
        let mut ws = token_start(b, t);
        for _ in 0..CONTEXT_TOKENS {
            let mut j = ws;
            while j > 0 && is_space(b[j - 1]) {
                j -= 1;
            }
            if j == 0 {
                break;
            }
            ws = token_start(b, j);
        }
        // forward while another trigger token follows within CONTEXT_TOKENS
        let mut end = token_end(b, t);
        loop {
            let mut j = end;
            let mut last = end;
            let mut found = None;
            for _ in 0..CONTEXT_TOKENS {
                while j < n && is_space(b[j]) {
                    j += 1;
                }
                if j >= n {
                    break;
                }
                let e = token_end(b, j);
                if b[j..e].iter().any(|&c| is_trigger(c)) || has_literal(j, e) {
                    found = Some(e);
                    break;
                }
                last = e;
                j = e;
            }
            match found {
                Some(e) => end = e,
                None => {
                    end = last;
                    break;
                }
            }
        }
        match out.last_mut() {
            Some(w) if ws <= w.1 => w.1 = end,
            _ => out.push((ws, end)),
        }
        pos = end.max(t + 1);
    }
}

pub(super) fn find(fm: &FastMasker, text: &str) -> Vec<Span> {
    let b = text.as_bytes();
    let mut wins = Vec::new();
    windows(text, &mut wins);
    let mut spans = Vec::new();
    for &(ws, we) in &wins {
        let mut i = ws;
        let mut blob = false;
        while i < we {
            let c = b[i];
            if i == ws || is_space(b[i - 1]) {
                if is_space(c) {
                    i += 1;
                    continue;
                }
                let te = token_end(b, i).min(we);
                blob = te - i >= BLOB;
                if !token_may_match(b, i, te, we) {
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
            let Some(mut m) = combined().search(&input) else {
                i = skip(text, i);
                continue;
            };
            let pid = m.pattern().as_usize();
            if m.end() == cap && cap < we && fm.rules[pid - 1].kind == rules::Kind::Url {
                // a URL longer than the cap: take all of it
                let full = Input::new(text).range(i..we).anchored(Anchored::Yes);
                m = fm.rules[pid - 1].re.search(&full).unwrap_or(m);
            }
            if pid == 0 {
                i = m.end(); // a placeholder already in the text
                continue;
            }
            match best_at(fm, text, i, we, pid - 1, m.end()) {
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

/// The first rule from `first` on whose match at `s` passes its checks, every
/// later rule searched with its own regex.
fn best_at(
    fm: &FastMasker,
    text: &str,
    s: usize,
    we: usize,
    first: usize,
    first_end: usize,
) -> Option<Hit> {
    if !start_ok(text, s) {
        return None;
    }
    if let Some(h) = accept(&fm.rules[first], text, s, first_end, &fm.currency_after) {
        return Some(h);
    }
    let c = text.as_bytes()[s];
    let input = Input::new(text).range(s..we).anchored(Anchored::Yes);
    for rule in fm.rules.iter().skip(first + 1) {
        if !rule.kind.may_start(c) {
            continue;
        }
        if let Some(m) = rule.re.search(&input) {
            if let Some(h) = accept(rule, text, s, m.end(), &fm.currency_after) {
                return Some(h);
            }
        }
    }
    None
}

fn blob_boundary(b: &[u8], i: usize) -> bool {
    i == 0
        || is_space(b[i - 1])
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

#[test]
fn the_fast_windows_are_the_reference_windows() {
    for t in super::differential::wide_corpus() {
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        crate::scan::windows(&t, &crate::scan::Literals::find(t.as_bytes()), &mut fast);
        windows(&t, &mut slow);
        assert_eq!(fast, slow, "{t}");
        let lit = crate::scan::Literals::find(t.as_bytes());
        let b = t.as_bytes();
        let mut trig = crate::scan::Triggers::new(b);
        for &(ws, we) in &fast {
            let mut i = ws;
            while i < we {
                let e = token_end(b, i).min(we);
                if e > i {
                    assert_eq!(
                        crate::scan::token_may_match(b, i, e, we, &lit, &mut trig),
                        token_may_match(b, i, e, we),
                        "{:?}",
                        &t[i..e]
                    );
                }
                i = e + 1;
            }
        }
    }
}
