//! [`FastMasker`]: the compiled rule table and the masking pass over one text.

use std::borrow::Cow;

use regex::Regex;

use crate::rules::{self, Rule, Span};
use crate::scan::{self, Features};
use crate::session::{placeholder_len, MaskSession};

/// The compiled fast_masker rules. Build once (tens of milliseconds), share in
/// an `Arc`; `mask*` take `&self` and keep all per-request state in the
/// [`MaskSession`] passed in.
pub struct FastMasker {
    rules: Vec<Rule>,
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
        let (rules, currency_after) = rules::compile();
        FastMasker {
            rules,
            currency_after,
        }
    }

    /// The rule type names, in application order (`PESEL_TAGGED` masks as `PESEL`).
    pub fn rule_names() -> impl Iterator<Item = &'static str> {
        rules::ORDER.iter().map(|k| k.name())
    }

    /// Mask `text`, recording each placeholder in `session`. Borrowed when nothing matched.
    pub fn mask<'t>(&self, text: &'t str, session: &mut MaskSession) -> Cow<'t, str> {
        let protected = reserve_existing(text, session);
        let spans = self.find(text, &protected);
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

    /// The spans to replace, ascending and disjoint, earlier rules first on overlaps.
    fn find(&self, text: &str, protected: &[(usize, usize)]) -> Vec<Span> {
        let mut windows = Vec::new();
        scan::windows(text, &mut windows);
        let mut spans = Vec::new();
        let mut taken: Vec<(usize, usize)> = Vec::new();
        let mut hits: Vec<Span> = Vec::new();
        for &(ws, we) in &windows {
            let w = &text[ws..we];
            let f = Features::of(w.as_bytes());
            taken.clear();
            hits.clear();
            taken.extend(protected.iter().copied().filter(|&(s, e)| s < we && e > ws));
            let hay = &text[..we];
            for rule in &self.rules {
                if !rule.kind.may_match(&f, w) {
                    continue;
                }
                let mut at = ws;
                while at < we {
                    let Some(m) = rule.re.find_at(hay, at) else {
                        break;
                    };
                    let (s, e) = (m.start(), m.end());
                    let hit = rule.accept(text, s, e, &self.currency_after).filter(|h| {
                        free(&taken, h.main) && h.extra.is_none_or(|x| free(&taken, x))
                    });
                    match hit {
                        Some(h) => {
                            for sp in std::iter::once(h.main).chain(h.extra) {
                                taken.push((sp.s, sp.e));
                                hits.push(sp);
                            }
                            at = h.extra.map_or(h.main.e, |x| x.e).max(s + 1);
                            at = ceil_char(text, at);
                        }
                        None => at = ceil_char(text, s + 1),
                    }
                }
            }
            hits.sort_unstable_by_key(|h| h.s);
            spans.extend_from_slice(&hits);
        }
        spans
    }
}

fn free(taken: &[(usize, usize)], sp: Span) -> bool {
    sp.s < sp.e && taken.iter().all(|&(s, e)| sp.e <= s || sp.s >= e)
}

fn ceil_char(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Placeholders already in `text`: reserved in the session (never issued
/// anew) and returned as spans no rule may touch.
pub(crate) fn reserve_existing(text: &str, session: &mut MaskSession) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for i in memchr::memchr_iter(b'{', b) {
        if let Some(n) = placeholder_len(&b[i..]) {
            session.reserve(&text[i..i + n]);
            out.push((i, i + n));
        }
    }
    out
}
