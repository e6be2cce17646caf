//! The acceptance checks of each rule on one regex match: boundaries
//! (Unicode-aware: `ą` is a letter), validators (checksums, ranges) and the
//! rule-specific shape checks the regexes leave out.

use regex_automata::meta::Regex;

use crate::rules::{Hit, Kind, Rule, Span};
use crate::validators as v;

fn prev(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

fn prev2(text: &str, i: usize) -> (Option<char>, Option<char>) {
    let mut it = text[..i].chars().rev();
    (it.next(), it.next())
}

fn next(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

fn next2(text: &str, i: usize) -> (Option<char>, Option<char>) {
    let mut it = text[i..].chars();
    (it.next(), it.next())
}

fn is_alnum(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

fn is_digit(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

/// No letter or digit (any script) touches the span; `_` and `*` may (emphasis).
fn no_alnum_around(text: &str, s: usize, e: usize) -> bool {
    !is_alnum(prev(text, s)) && !is_alnum(next(text, e))
}

/// Not part of a longer number: no digit on either side, and no `digit` + `sep`
/// continuing it (`1.2.3.4.5`, `12-345-6`).
fn not_in_longer_number(text: &str, s: usize, e: usize, seps: &[char]) -> bool {
    let (p1, p2) = prev2(text, s);
    let (n1, n2) = next2(text, e);
    if is_digit(p1) || is_digit(n1) {
        return false;
    }
    let glued_before = p1.is_some_and(|c| seps.contains(&c)) && is_digit(p2);
    let glued_after = n1.is_some_and(|c| seps.contains(&c)) && is_digit(n2);
    !glued_before && !glued_after
}

/// Digits rule: no digit before, no letter/digit after (a letter before is a
/// label such as `NIP1234567890`).
fn digits_bound(text: &str, s: usize, e: usize) -> bool {
    !is_digit(prev(text, s)) && !is_alnum(next(text, e))
}

fn count(s: &str, f: impl Fn(u8) -> bool) -> usize {
    s.bytes().filter(|&b| f(b)).count()
}

impl Rule {
    /// Decide about the regex match `[s, e)` of this rule.
    pub fn accept(&self, text: &str, s: usize, e: usize, currency_after: &Regex) -> Option<Hit> {
        use Kind::*;
        let m = &text[s..e];
        let tag = self.kind.tag();
        let one = |s: usize, e: usize| {
            Some(Hit {
                main: Span { s, e, tag },
                extra: None,
            })
        };
        match self.kind {
            Email => {
                if prev(text, s).is_some_and(|c| c.is_alphanumeric() || c == '.')
                    || m.starts_with('.')
                {
                    return None;
                }
                one(s, e)
            }
            Url => {
                let trimmed =
                    m.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'', '"']);
                // keep a closing parenthesis that closes one opened inside the URL
                let mut end = s + trimmed.len();
                if m[trimmed.len()..].starts_with(')') && trimmed.contains('(') {
                    end += 1;
                }
                if is_alnum(prev(text, s)) {
                    return None;
                }
                one(s, end)
            }
            Ip => {
                let (p1, p2) = prev2(text, s);
                if p1.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                    || (p1 == Some('.') && is_digit(p2))
                {
                    return None;
                }
                let v4_or_local = m.contains('.') || m.as_bytes()[0].eq_ignore_ascii_case(&b'l');
                let (ip_end, mut port) = match m.rfind(':') {
                    Some(i) if v4_or_local => (s + i, Some((s + i + 1, e))),
                    _ => (e, None),
                };
                let ip = &text[s..ip_end];
                if ip.contains('.')
                    && !ip
                        .split('.')
                        .all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255))
                {
                    return None;
                }
                if let Some((ps, pe)) = port {
                    let in_range = text[ps..pe]
                        .parse::<u32>()
                        .is_ok_and(|p| (1..=65535).contains(&p));
                    if !in_range || is_alnum(next(text, pe)) {
                        port = None; // mask the address alone
                    }
                }
                if port.is_none() {
                    let (n1, n2) = next2(text, ip_end);
                    let continues = matches!(n1, Some('.' | ':'))
                        && n2.is_some_and(|c| c.is_ascii_hexdigit())
                        && !(n1 == Some(':') && v4_or_local);
                    if is_alnum(n1) || n1 == Some('_') || continues {
                        return None; // a version number, or longer than an address
                    }
                }
                Some(Hit {
                    main: Span { s, e: ip_end, tag },
                    extra: port.map(|(s, e)| Span { s, e, tag: "PORT" }),
                })
            }
            PeselTagged => {
                let ds = e - 11;
                (!is_alnum(prev(text, s)) && !is_alnum(next(text, e)) && v::pesel(&text[ds..e]))
                    .then_some(Hit::one(ds, e, tag))
            }
            Pesel => (no_alnum_around(text, s, e) && v::pesel(m)).then_some(Hit::one(s, e, tag)),
            Nip => {
                (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &['-']) && v::nip(m))
                    .then_some(Hit::one(s, e, tag))
            }
            Regon => (digits_bound(text, s, e)
                && not_in_longer_number(text, s, e, &[' '])
                && v::regon(m))
            .then_some(Hit::one(s, e, tag)),
            DateWords => {
                if !no_alnum_around(text, s, e) {
                    return None;
                }
                // the first two digit groups: day and year in either order
                let mut groups = digit_groups(m.as_bytes());
                let first = groups.next();
                let day = if first.is_some_and(|n| n >= 1000) {
                    groups.next()
                } else {
                    first
                };
                day.is_some_and(|d| (1..=31).contains(&d))
                    .then_some(Hit::one(s, e, tag))
            }
            DateNumeric => {
                if !not_in_longer_number(text, s, e, &['-', '.', '/'])
                    || is_alnum(prev(text, s))
                    || is_alnum(next(text, e))
                {
                    return None;
                }
                // the shape has exactly two separators and three digit groups
                let mb = m.as_bytes();
                let mut seps = mb.iter().enumerate().filter(|(_, b)| !b.is_ascii_digit());
                let (Some((i1, &s1)), Some((_, &s2)), None) =
                    (seps.next(), seps.next(), seps.next())
                else {
                    return None;
                };
                if s1 != s2 {
                    return None;
                }
                let mut parts = digit_groups(mb);
                let (p0, p1, p2) = (parts.next()?, parts.next()?, parts.next()?);
                let (day, month) = if i1 == 4 { (p2, p1) } else { (p0, p1) };
                ((1..=12).contains(&month) && (1..=31).contains(&day))
                    .then_some(Hit::one(s, e, tag))
            }
            Time => {
                if !not_in_longer_number(text, s, e, &[':', '.', ',', '-', '/'])
                    || is_alnum(prev(text, s))
                    || is_alnum(next(text, e))
                {
                    return None;
                }
                let mb = m.as_bytes();
                let sep = mb.iter().position(|&b| b == b':' || b == b'.')?;
                let (h, mi) = (digits_value(&mb[..sep])?, digits_value(&mb[sep + 1..])?);
                if h > 23 || mi > 59 {
                    return None;
                }
                // `12.50 zł` / `$ 12.50` is an amount
                if mb[sep] == b'.'
                    && (currency_after.is_match(&text[e..]) || currency_before(text, s))
                {
                    return None;
                }
                one(s, e)
            }
            Money => {
                let first = m.chars().next()?;
                let last = m.chars().next_back()?;
                let before_ok = if first.is_ascii_digit() {
                    let (p1, p2) = prev2(text, s);
                    let decimal_before = matches!(p1, Some('.') | Some(',')) && is_digit(p2);
                    !(is_digit(p1) || is_alnum(p1) || decimal_before)
                } else {
                    !is_alnum(prev(text, s))
                };
                let after_ok = if last.is_ascii_digit() {
                    let (n1, n2) = next2(text, e);
                    let decimal_after = matches!(n1, Some('.') | Some(',')) && is_digit(n2);
                    !(is_alnum(n1) || decimal_after)
                } else {
                    !is_alnum(next(text, e))
                };
                (before_ok && after_ok).then_some(Hit::one(s, e, tag))
            }
            Vin => {
                let has_letter = m.bytes().any(|b| b.is_ascii_uppercase());
                (no_alnum_around(text, s, e)
                    && has_letter
                    && m.bytes().any(|b| b.is_ascii_digit())
                    && v::vin(m))
                .then_some(Hit::one(s, e, tag))
            }
            BankAccount => {
                if is_alnum(prev(text, s)) {
                    return None;
                }
                let want = v::iban_length(&m.as_bytes()[..2])?;
                let mut buf = [0u8; 64];
                let want = want.min(buf.len());
                let mut len = 0;
                let mut end = s;
                for (i, b) in m.bytes().enumerate() {
                    if b != b' ' {
                        buf[len] = b;
                        len += 1;
                        if len == want {
                            end = s + i + 1;
                            break;
                        }
                    }
                }
                (len == want && !is_alnum(next(text, end)) && v::iban_compact(&buf[..len]))
                    .then_some(Hit::one(s, end, tag))
            }
            CarPlate => {
                if !no_alnum_around(text, s, e) {
                    return None;
                }
                car_plate(m).then_some(Hit::one(s, e, tag))
            }
            PostalCode => {
                if m.len() == 5 {
                    // bare five digits: not inside a path, a decimal or a longer number
                    let p = prev(text, s);
                    let (n1, n2) = next2(text, e);
                    if is_alnum(p)
                        || is_alnum(n1)
                        || matches!(p, Some('/' | '\\' | '.' | ',' | ':' | '-' | '_'))
                        || matches!(n1, Some('/' | '\\' | '_'))
                        || (matches!(n1, Some('.' | ',' | '-' | ':' | ' ')) && is_digit(n2))
                        || (p == Some(' ') && is_digit(prev2(text, s).1))
                    {
                        return None;
                    }
                    return one(s, e);
                }
                (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &['-']))
                    .then_some(Hit::one(s, e, tag))
            }
            Nrb => (no_alnum_around(text, s, e)
                && !is_digit(next2(text, e).1.filter(|_| next(text, e) == Some(' ')))
                && v::nrb(m))
            .then_some(Hit::one(s, e, tag)),
            Krs => (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &['-']))
                .then_some(Hit::one(s, e, tag)),
            Passport | IdCard => no_alnum_around(text, s, e).then_some(Hit::one(s, e, tag)),
            Ssn => {
                (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &['-']) && v::ssn(m))
                    .then_some(Hit::one(s, e, tag))
            }
            HealthCode => (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &['/']))
                .then_some(Hit::one(s, e, tag)),
            PhoneInternational => {
                let n = count(m, |b| b.is_ascii_digit());
                if is_digit(prev(text, s)) || !(8..=15).contains(&n) || is_alnum(next(text, e)) {
                    return None;
                }
                one(s, e)
            }
            Phone => {
                if m.starts_with('(') {
                    if is_alnum(prev(text, s)) {
                        return None;
                    }
                } else if !not_in_longer_number(text, s, e, &[])
                    || is_alnum(prev(text, s))
                    || prev(text, s) == Some('+')
                {
                    return None;
                }
                if is_alnum(next(text, e)) {
                    return None;
                }
                // separators consistent: none, or between every group
                let body = m.find(')').map_or(m, |i| m[i + 1..].trim_start());
                let mut sizes = [0usize; 8];
                let mut groups = 0;
                for part in body.split([' ', '-']) {
                    if groups == sizes.len() {
                        groups = 0; // more groups than any layout has
                        break;
                    }
                    sizes[groups] = part.len();
                    groups += 1;
                }
                let sizes = &sizes[..groups];
                let ok_groups = if m.starts_with('(') {
                    matches!(sizes, [7] | [3, 2, 2])
                } else {
                    matches!(sizes, [9] | [3, 3, 3] | [2, 3, 2, 2])
                };
                let mut d = [0u8; 9];
                let mut n = 0;
                for b in m.bytes().filter(u8::is_ascii_digit) {
                    if n < d.len() {
                        d[n] = b;
                    }
                    n += 1;
                }
                (ok_groups && n == 9 && v::polish_phone_prefix(&d)).then_some(Hit::one(s, e, tag))
            }
            MacAddress => {
                if !no_alnum_around(text, s, e) {
                    return None;
                }
                let (n1, n2) = next2(text, e);
                let (p1, p2) = prev2(text, s);
                let sep_glued = |c: Option<char>, d: Option<char>| {
                    matches!(c, Some(':' | '-')) && d.is_some_and(|d| d.is_ascii_hexdigit())
                };
                if sep_glued(n1, n2) || sep_glued(p1, p2) {
                    return None;
                }
                if m.len() == 12 {
                    // bare form: must look like hex, not a plain number or word
                    let letters = m.bytes().any(|b| b.is_ascii_alphabetic());
                    let digits = m.bytes().any(|b| b.is_ascii_digit());
                    let one_case = !(m.bytes().any(|b| b.is_ascii_lowercase())
                        && m.bytes().any(|b| b.is_ascii_uppercase()));
                    if !(letters && digits && one_case) {
                        return None;
                    }
                }
                one(s, e)
            }
            CreditCard => {
                let n = count(m, |b| b.is_ascii_digit());
                let mut lead = m.bytes().filter(u8::is_ascii_digit);
                // ICCIDs (89…, 19–20 digits) belong to SIM_CARD
                if n >= 19 && lead.next() == Some(b'8') && lead.next() == Some(b'9') {
                    return None;
                }
                (digits_bound(text, s, e)
                    && not_in_longer_number(text, s, e, &[' ', '-'])
                    && (13..=19).contains(&n)
                    && v::luhn(m))
                .then_some(Hit::one(s, e, tag))
            }
            // hex, not a decimal number: needs a digit and a letter
            SslCert => (no_alnum_around(text, s, e)
                && m.bytes().any(|b| b.is_ascii_digit())
                && m.bytes().any(|b| b.is_ascii_uppercase()))
            .then_some(Hit::one(s, e, tag)),
            Jwt => {
                let glued = |c: Option<char>| {
                    c.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                };
                (!glued(prev(text, s)) && !glued(next(text, e)) && !is_alnum(next(text, e)))
                    .then_some(Hit::one(s, e, tag))
            }
            InvoiceNumber => {
                let has_year = m
                    .split(|c: char| !c.is_ascii_digit())
                    .any(|p| p.len() == 4 && (p.starts_with("19") || p.starts_with("20")));
                (no_alnum_around(text, s, e) && has_year).then_some(Hit::one(s, e, tag))
            }
            OrderNumber => no_alnum_around(text, s, e).then_some(Hit::one(s, e, tag)),
            TransactionRef => {
                // only asked when `m` is at most 64 bytes long
                let not_iban = || {
                    let mut buf = [0u8; 64];
                    let mut len = 0;
                    for b in m.bytes().filter(u8::is_ascii_alphanumeric) {
                        buf[len] = b;
                        len += 1;
                    }
                    !v::iban_compact(&buf[..len])
                };
                (no_alnum_around(text, s, e)
                    && (8..=64).contains(&m.len())
                    && count(m, |b| b.is_ascii_digit()) >= 6
                    && not_iban())
                .then_some(Hit::one(s, e, tag))
            }
            SimCard => {
                let n = count(m, |b| b.is_ascii_digit());
                (digits_bound(text, s, e)
                    && not_in_longer_number(text, s, e, &[' '])
                    && (19..=20).contains(&n)
                    && v::luhn(m))
                .then_some(Hit::one(s, e, tag))
            }
            SocialId => no_alnum_around(text, s, e).then_some(Hit::one(s, e, tag)),
            EuVat => (no_alnum_around(text, s, e) && count(m, |b| b.is_ascii_digit()) >= 4)
                .then_some(Hit::one(s, e, tag)),
        }
    }
}

/// A currency symbol or ISO code right before position `s` (spaces allowed).
fn currency_before(text: &str, s: usize) -> bool {
    // trim ' ', '\t', U+00A0 (C2 A0) and U+202F (E2 80 AF) from the end
    let b = text.as_bytes();
    let mut k = s;
    loop {
        let t = &b[..k];
        if t.ends_with(b" ") || t.ends_with(b"\t") {
            k -= 1;
        } else if t.ends_with("\u{a0}".as_bytes()) {
            k -= 2;
        } else if t.ends_with("\u{202f}".as_bytes()) {
            k -= 3;
        } else {
            break;
        }
    }
    let before = &b[..k];
    const SIGNS: [&str; 6] = ["$", "€", "£", "¥", "₽", "₹"];
    if SIGNS.iter().any(|c| before.ends_with(c.as_bytes())) {
        return true;
    }
    before.len() >= 3
        && ISO.iter().any(|c| before.ends_with(c.as_slice()))
        && (before.len() == 3 || !before[before.len() - 4].is_ascii_alphanumeric())
}

/// The ISO currency codes of [`ISO_CODES`], as bytes.
const ISO: [&[u8; 3]; 16] = [
    b"PLN", b"USD", b"EUR", b"GBP", b"CHF", b"CAD", b"AUD", b"JPY", b"NOK", b"SEK", b"DKK", b"CZK",
    b"HUF", b"RUB", b"CNY", b"INR",
];

/// The values of the runs of ASCII digits in `m`, left to right (saturating:
/// the shapes asking this have at most four digits a run).
fn digit_groups(m: &[u8]) -> impl Iterator<Item = u32> + '_ {
    m.split(|b| !b.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.iter().fold(0u32, |n, &d| {
                n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
            })
        })
}

/// The value of `m` if it is one or more ASCII digits (at most nine).
fn digits_value(m: &[u8]) -> Option<u32> {
    if m.is_empty() || m.len() > 9 || !m.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(m.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// Polish plate formats: district of 2 letters + 5 characters, or 3 letters + 4
/// or 5 characters, the individual part in one of the official digit/letter
/// layouts (D = digit, L = letter).
fn car_plate(m: &str) -> bool {
    const FIVE: [&[u8; 5]; 5] = [b"DDDDD", b"DDDDL", b"DDDLL", b"DLDDD", b"DLLDD"];
    const FOUR: [&[u8; 4]; 7] = [
        b"LDDD", b"DDLL", b"DLDD", b"DDLD", b"DLLD", b"LDDL", b"DDDD",
    ];
    // the shape is at most 3 + 1 + 5 bytes
    let mut compact = [0u8; 16];
    let mut len = 0;
    for b in m.bytes().filter(|&b| b != b' ') {
        if len == compact.len() {
            return false;
        }
        compact[len] = b;
        len += 1;
    }
    let compact = &compact[..len];
    let space = m.bytes().position(|b| b == b' ');
    let fits = |district: usize| -> bool {
        if compact.len() <= district || !compact[..district].iter().all(u8::is_ascii_uppercase) {
            return false;
        }
        if space.is_some_and(|sp| sp != district) {
            return false;
        }
        let part = &compact[district..];
        let mut layout = [0u8; 16];
        for (l, b) in layout.iter_mut().zip(part) {
            *l = if b.is_ascii_digit() { b'D' } else { b'L' };
        }
        let l = &layout[..part.len()];
        match (district, part.len()) {
            (2, 5) | (3, 5) => FIVE.iter().any(|f| f.as_slice() == l),
            (3, 4) => FOUR.iter().any(|f| f.as_slice() == l),
            _ => false,
        }
    };
    fits(2) || fits(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::ISO_CODES;

    #[test]
    fn iso_bytes_are_the_iso_codes() {
        let codes: Vec<&[u8]> = ISO_CODES.split('|').map(str::as_bytes).collect();
        assert_eq!(codes, ISO.iter().map(|c| c.as_slice()).collect::<Vec<_>>());
    }

    #[test]
    fn currency_before_trims_every_space_kind() {
        for t in [
            "$ 5",
            "$\t5",
            "€\u{a0}5",
            "PLN\u{202f} \t5",
            "x EUR 5",
            "USD5",
        ] {
            let s = t.len() - 1;
            assert!(currency_before(t, s), "{t:?}");
        }
        for t in ["XPLN 5", "5 5", " 5", "zł 5", "ABCDEF 5"] {
            assert!(!currency_before(t, t.len() - 1), "{t:?}");
        }
    }

    #[test]
    fn digit_helpers() {
        assert_eq!(
            digit_groups(b"15 stycznia 2024").collect::<Vec<_>>(),
            [15, 2024]
        );
        assert_eq!(
            digit_groups(b"2024-01-31").collect::<Vec<_>>(),
            [2024, 1, 31]
        );
        assert_eq!(digits_value(b"09"), Some(9));
        assert_eq!(digits_value(b""), None);
        assert_eq!(digits_value(b"1a"), None);
    }

    #[test]
    fn car_plates() {
        for ok in ["WA 12345", "KR 1234A", "WPI 1234", "WPI 12AB", "GD 1AB23"] {
            assert!(car_plate(ok), "{ok}");
        }
        for bad in ["WA1 2345", "WA 1A2B3", "WPIX 1234", "W 12345"] {
            assert!(!car_plate(bad), "{bad}");
        }
    }
}
