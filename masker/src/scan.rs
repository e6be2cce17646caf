//! The one pass over the whole text that finds where PII can be.
//!
//! Every rule's match contains a *trigger*: an ASCII digit, `@`, `:`, or one of
//! the literals `www.` / `localhost`. The scan splits the text into tokens
//! (runs of non-ASCII-whitespace), marks the tokens holding a trigger, and
//! returns *windows*: each run of trigger tokens widened by [`CONTEXT_TOKENS`]
//! tokens on each side (so `15 stycznia 2024`, `1,5 mln zł`, `PESEL: …` fit),
//! merged when they touch. Rules then run only inside windows, which start and
//! end on token boundaries. Prose without digits costs one byte-table lookup
//! per byte.

/// Non-trigger tokens a match may include next to its trigger tokens.
pub(crate) const CONTEXT_TOKENS: usize = 3;

const H: u64 = 0x8080_8080_8080_8080;
const L: u64 = 0x0101_0101_0101_0101;

/// Byte classes, one table lookup per byte: [`SPACE`] (ASCII whitespace) and
/// [`TRIGGER`] (ASCII digits, `:` and `@`).
const SPACE: u8 = 1;
const TRIGGER: u8 = 2;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = b'0';
    while c <= b':' {
        t[c as usize] = TRIGGER;
        c += 1;
    }
    t[b'@' as usize] = TRIGGER;
    let spaces = [b' ', b'\t', b'\n', b'\r', 0x0b, 0x0c];
    let mut i = 0;
    while i < spaces.len() {
        t[spaces[i] as usize] = SPACE;
        i += 1;
    }
    t
};

/// Trigger bytes: ASCII digits, `:` (0x30–0x3A) and `@`.
#[cfg(test)]
pub(crate) fn is_trigger(c: u8) -> bool {
    CLASS[c as usize] == TRIGGER
}

#[inline(always)]
pub(crate) fn is_space(c: u8) -> bool {
    CLASS[c as usize] == SPACE
}

/// Position of the first trigger byte at or after `from`, eight bytes at a
/// time: for lanes below 0x80, `(x | 0x80) - k` has its high bit set exactly
/// when `x >= k`, and no lane borrows from its neighbour.
pub(crate) fn next_trigger_byte(b: &[u8], from: usize) -> Option<usize> {
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
    (i..b.len()).find(|&j| CLASS[b[j] as usize] == TRIGGER)
}

/// End of the token at `i`: the first ASCII whitespace at or after `i`, eight
/// bytes at a time (a lane below 0x21 is a candidate, then checked exactly).
#[inline(always)]
pub(crate) fn token_end(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let v = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let low = !((v | H).wrapping_sub(0x21 * L)) & !v & H;
        if low == 0 {
            i += 8;
            continue;
        }
        let j = i + (low.trailing_zeros() / 8) as usize;
        if is_space(b[j]) {
            return j;
        }
        i = j + 1; // a control character: not a space
    }
    while i < b.len() && !is_space(b[i]) {
        i += 1;
    }
    i
}

/// Which tokens hold a trigger byte, asked for tokens in ascending order: the
/// next trigger byte is searched once and kept until a token passes it, so all
/// the questions together cost one pass over the text.
pub(crate) struct Triggers<'a> {
    b: &'a [u8],
    next: usize,
    from: usize,
}

impl<'a> Triggers<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        // nothing searched yet: the first question searches
        Triggers {
            b,
            next: 0,
            from: usize::MAX,
        }
    }

    /// The first trigger byte at or after `s`.
    #[inline(always)]
    pub(crate) fn next_at(&mut self, s: usize) -> Option<usize> {
        // `next` is the first trigger at or after `from` (MAX: none)
        if s < self.from || self.next < s {
            self.next = next_trigger_byte(self.b, s).unwrap_or(usize::MAX);
            self.from = s;
        }
        (self.next != usize::MAX).then_some(self.next)
    }

    /// Whether `b[s..e]` holds a trigger byte.
    #[inline(always)]
    pub(crate) fn any_in(&mut self, s: usize, e: usize) -> bool {
        self.next_at(s).is_some_and(|t| t < e)
    }
}

#[inline(always)]
fn token_start(b: &[u8], mut i: usize) -> usize {
    while i > 0 && CLASS[b[i - 1] as usize] != SPACE {
        i -= 1;
    }
    i
}

/// Searchers for the literal triggers, built once per [`crate::FastMasker`].
#[derive(Debug, Clone)]
pub(crate) struct LiteralFinders([memchr::memmem::Finder<'static>; 3]);

impl LiteralFinders {
    pub(crate) fn new() -> Self {
        use memchr::memmem::Finder;
        LiteralFinders([
            Finder::new(b"www.").into_owned(),
            Finder::new(b"localhost").into_owned(),
            Finder::new(b"LOCALHOST").into_owned(),
        ])
    }
}

/// Start positions of the literal triggers `www.` / `localhost` / `LOCALHOST`,
/// ascending (none of them overlaps itself, so these are all occurrences).
#[derive(Debug, Default)]
pub(crate) struct Literals(Vec<usize>);

impl Literals {
    #[cfg(test)]
    pub(crate) fn find(b: &[u8]) -> Literals {
        Literals::find_with(b, &LiteralFinders::new())
    }

    /// [`Literals::find`] with searchers built once (a short text would
    /// otherwise spend more on building them than on searching).
    pub(crate) fn find_with(b: &[u8], f: &LiteralFinders) -> Literals {
        let mut v: Vec<usize> = Vec::new();
        for finder in &f.0 {
            v.extend(finder.find_iter(b));
        }
        v.sort_unstable();
        Literals(v)
    }

    /// Whether one starts in `[s, e)`; for a whole token that is: it holds one.
    pub(crate) fn any_in(&self, s: usize, e: usize) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let i = self.0.partition_point(|&p| p < s);
        self.0.get(i).is_some_and(|&p| p < e)
    }

    fn next_from(&self, from: usize) -> Option<usize> {
        if self.0.is_empty() {
            return None;
        }
        let i = self.0.partition_point(|&p| p < from);
        self.0.get(i).copied()
    }
}

/// Whether a match can start in token `b[s..e]` (a whole token: `e` is its
/// end): it holds a trigger byte or literal, or it can begin a match that
/// reaches into the next token, which then starts with a digit (`PLN 100`,
/// `January 5`, `pesel 850…`, `WA 12345`, `€ 99`).
#[inline(always)]
pub(crate) fn token_may_match(
    b: &[u8],
    s: usize,
    e: usize,
    limit: usize,
    lit: &Literals,
    trig: &mut Triggers,
) -> bool {
    if trig.any_in(s, e) || lit.any_in(s, e) {
        return true;
    }
    let tok = &b[s..e];
    // `b[e]` is the whitespace ending the token
    let mut j = e + 1;
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

/// Byte ranges `[start, end)` of the text to run the rules on, ascending and
/// disjoint; each starts at a token start and ends at a token end.
pub(crate) fn windows(text: &str, lit: &Literals, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let b = text.as_bytes();
    let n = b.len();
    let mut trig = Triggers::new(b);
    let next_trigger =
        |trig: &mut Triggers, from: usize| match (trig.next_at(from), lit.next_from(from)) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
    let mut pos = 0;
    while let Some(t) = next_trigger(&mut trig, pos) {
        // back over the trigger token and CONTEXT_TOKENS tokens before it; once
        // at or before the last window's end the two merge, and the exact
        // start no longer matters
        let floor = out.last().map(|w| w.1);
        let mut ws = token_start(b, t);
        for _ in 0..CONTEXT_TOKENS {
            if floor.is_some_and(|f| ws <= f) {
                break;
            }
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
        'grow: loop {
            let mut j = end;
            let mut last = end;
            for _ in 0..CONTEXT_TOKENS {
                // `b[j]`, a token's end, is whitespace (or the text's end)
                j += 1;
                while j < n && is_space(b[j]) {
                    j += 1;
                }
                if j >= n {
                    break;
                }
                let e = token_end(b, j);
                if trig.any_in(j, e) || lit.any_in(j, e) {
                    end = e;
                    continue 'grow;
                }
                last = e;
                j = e;
            }
            end = last;
            break;
        }
        match out.last_mut() {
            Some(w) if ws <= w.1 => w.1 = end,
            _ => out.push((ws, end)),
        }
        pos = end.max(t + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        windows(text, &Literals::find(text.as_bytes()), &mut v);
        v.into_iter().map(|(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn prose_without_triggers_has_no_window() {
        assert!(win("Szanowni Państwo, uprzejmie proszę o kontakt.").is_empty());
    }

    #[test]
    fn windows_take_context_tokens_both_sides() {
        assert_eq!(
            win("a b c d e f 15 stycznia 2024 r. g h i j k"),
            vec!["d e f 15 stycznia 2024 r. g h"]
        );
    }

    #[test]
    fn close_triggers_merge_far_ones_do_not() {
        assert_eq!(win("x 1 a b 2 y"), vec!["x 1 a b 2 y"]);
        assert_eq!(win("1 a b c d e f g h 2"), vec!["1 a b c", "f g h 2"]);
    }

    #[test]
    fn swar_trigger_search_matches_a_byte_loop() {
        let text = "zażółć gęślą jaźń ;<=>?@ABC 0 9 : / { ~ \u{7f} \u{a0}x1";
        let b = text.as_bytes();
        for from in 0..b.len() {
            assert_eq!(
                next_trigger_byte(b, from),
                (from..b.len()).find(|&j| is_trigger(b[j])),
                "from {from}"
            );
        }
        for c in 0..=255u8 {
            let buf = [b'x', b'x', b'x', c, b'x', b'x', b'x', b'x', b'x'];
            assert_eq!(
                next_trigger_byte(&buf, 0),
                is_trigger(c).then_some(3),
                "byte {c:#x}"
            );
        }
    }

    #[test]
    fn literal_triggers() {
        assert_eq!(
            win("see www.example.com now"),
            vec!["see www.example.com now"]
        );
        assert_eq!(win("a@b"), vec!["a@b"]);
        assert_eq!(win("on localhost"), vec!["on localhost"]);
    }
}
