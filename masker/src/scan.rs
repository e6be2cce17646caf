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

use memchr::memmem;

/// Non-trigger tokens a match may include next to its trigger tokens.
pub(crate) const CONTEXT_TOKENS: usize = 3;

const OTHER: u8 = 0;
const SPACE: u8 = 1;
const TRIGGER: u8 = 2;

const fn class_table() -> [u8; 256] {
    let mut t = [OTHER; 256];
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[b'\n' as usize] = SPACE;
    t[b'\r' as usize] = SPACE;
    t[0x0b] = SPACE;
    t[0x0c] = SPACE;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = TRIGGER;
        d += 1;
    }
    t[b'@' as usize] = TRIGGER;
    t[b':' as usize] = TRIGGER;
    t
}

static CLASS: [u8; 256] = class_table();

/// Byte ranges `[start, end)` of the text to run the rules on, ascending and disjoint.
pub(crate) fn windows(text: &str, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let b = text.as_bytes();
    // Literal triggers without a digit/`@`/`:` (rare): positions, ascending.
    let mut literals: Vec<usize> = Vec::new();
    for needle in ["www.", "localhost", "LOCALHOST"] {
        literals.extend(memmem::find_iter(b, needle));
    }
    literals.sort_unstable();
    let mut lit = literals.into_iter().peekable();

    let mut recent = [0usize; CONTEXT_TOKENS]; // starts of the last tokens, ring
    let mut recent_len = 0usize;
    let mut recent_pos = 0usize;
    let mut cur: Option<(usize, usize)> = None;
    let mut after = 0usize;

    let n = b.len();
    let mut i = 0;
    while i < n {
        // skip whitespace
        while i < n && CLASS[b[i] as usize] == SPACE {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        let mut trig = false;
        while i < n {
            let c = CLASS[b[i] as usize];
            if c == SPACE {
                break;
            }
            trig |= c == TRIGGER;
            i += 1;
        }
        let end = i;
        while lit.peek().is_some_and(|&p| p < end) {
            trig |= lit.next().is_some_and(|p| p >= start);
        }
        if trig {
            match cur.as_mut() {
                Some(w) => w.1 = end,
                None => {
                    let ws = match recent_len {
                        0 => start,
                        k if k < CONTEXT_TOKENS => recent[0],
                        _ => recent[recent_pos],
                    };
                    // touching the previous window: extend it instead
                    if let Some(last) = out.last_mut().filter(|w| ws <= w.1) {
                        let prev = *last;
                        out.pop();
                        cur = Some((prev.0, end));
                    } else {
                        cur = Some((ws, end));
                    }
                }
            }
            after = CONTEXT_TOKENS;
        } else if let Some(w) = cur.as_mut() {
            if after > 0 {
                w.1 = end;
                after -= 1;
            } else {
                out.push(*w);
                cur = None;
            }
        }
        // remember this token start (ring of the last CONTEXT_TOKENS)
        if recent_len < CONTEXT_TOKENS {
            recent[recent_len] = start;
            recent_len += 1;
        } else {
            recent[recent_pos] = start;
            recent_pos = (recent_pos + 1) % CONTEXT_TOKENS;
        }
    }
    if let Some(w) = cur {
        out.push(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(text: &str) -> Vec<&str> {
        let mut v = Vec::new();
        windows(text, &mut v);
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
    fn literal_triggers() {
        assert_eq!(
            win("see www.example.com now"),
            vec!["see www.example.com now"]
        );
        assert_eq!(win("a@b"), vec!["a@b"]);
        assert_eq!(win("on localhost"), vec!["on localhost"]);
    }
}
