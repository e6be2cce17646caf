//! The acceptance checks as they were before the allocation-free rewrite
//! (`accept.rs`): the reference the differential test compares with. Test-only.

use regex_automata::meta::Regex;

use crate::rules::{Hit, Kind, Rule, Span, ISO_CODES};
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

/// Decide about the regex match `[s, e)` of `rule`.
pub(super) fn accept(
    rule: &Rule,
    text: &str,
    s: usize,
    e: usize,
    currency_after: &Regex,
) -> Option<Hit> {
    use Kind::*;
    let m = &text[s..e];
    let tag = rule.kind.tag();
    let one = |s: usize, e: usize| {
        Some(Hit {
            main: Span { s, e, tag },
            extra: None,
        })
    };
    match rule.kind {
        Email => {
            if prev(text, s).is_some_and(|c| c.is_alphanumeric() || c == '.') || m.starts_with('.')
            {
                return None;
            }
            one(s, e)
        }
        Url => {
            let trimmed = m.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'', '"']);
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
        Nip => (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &['-']) && v::nip(m))
            .then_some(Hit::one(s, e, tag)),
        Regon => {
            (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &[' ']) && v::regon(m))
                .then_some(Hit::one(s, e, tag))
        }
        DateWords => {
            if !no_alnum_around(text, s, e) {
                return None;
            }
            let nums: Vec<u32> = m
                .split(|c: char| !c.is_ascii_digit())
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.parse().ok())
                .collect();
            let day = if nums.first().is_some_and(|&n| n >= 1000) {
                nums.get(1)
            } else {
                nums.first()
            };
            day.is_some_and(|d| (1..=31).contains(d))
                .then_some(Hit::one(s, e, tag))
        }
        DateNumeric => {
            if !not_in_longer_number(text, s, e, &['-', '.', '/'])
                || is_alnum(prev(text, s))
                || is_alnum(next(text, e))
            {
                return None;
            }
            let seps: Vec<char> = m.chars().filter(|c| !c.is_ascii_digit()).collect();
            if seps.len() != 2 || seps[0] != seps[1] {
                return None;
            }
            let parts: Vec<u32> = m.split(seps[0]).filter_map(|p| p.parse().ok()).collect();
            let (day, month) = if m.find(seps[0]) == Some(4) {
                (parts[2], parts[1])
            } else {
                (parts[0], parts[1])
            };
            ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Hit::one(s, e, tag))
        }
        Time => {
            if !not_in_longer_number(text, s, e, &[':', '.', ',', '-', '/'])
                || is_alnum(prev(text, s))
                || is_alnum(next(text, e))
            {
                return None;
            }
            let (h, mi) = m.split_at(m.find([':', '.'])?);
            let (h, mi): (u32, u32) = (h.parse().ok()?, mi[1..].parse().ok()?);
            if h > 23 || mi > 59 {
                return None;
            }
            // `12.50 zł` / `$ 12.50` is an amount
            if m.contains('.') && (currency_after.is_match(&text[e..]) || currency_before(text, s))
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
            let mut compact = Vec::with_capacity(want);
            let mut end = s;
            for (i, b) in m.bytes().enumerate() {
                if b != b' ' {
                    compact.push(b);
                    if compact.len() == want {
                        end = s + i + 1;
                        break;
                    }
                }
            }
            (compact.len() == want && !is_alnum(next(text, end)) && v::iban_compact(&compact))
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
        Ssn => (digits_bound(text, s, e) && not_in_longer_number(text, s, e, &['-']) && v::ssn(m))
            .then_some(Hit::one(s, e, tag)),
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
            let sizes: Vec<usize> = body.split([' ', '-']).map(str::len).collect();
            let ok_groups = if m.starts_with('(') {
                matches!(sizes.as_slice(), [7] | [3, 2, 2])
            } else {
                matches!(sizes.as_slice(), [9] | [3, 3, 3] | [2, 3, 2, 2])
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
            let not_iban = || {
                let compact: Vec<u8> = m.bytes().filter(u8::is_ascii_alphanumeric).collect();
                !v::iban_compact(&compact)
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

/// A currency symbol or ISO code right before position `s` (spaces allowed).
fn currency_before(text: &str, s: usize) -> bool {
    let before = text[..s].trim_end_matches([' ', '\t', '\u{a0}', '\u{202f}']);
    if before.ends_with(['$', '€', '£', '¥', '₽', '₹']) {
        return true;
    }
    let b = before.as_bytes();
    b.len() >= 3
        && ISO_CODES.split('|').any(|c| before.ends_with(c))
        && (b.len() == 3 || !b[b.len() - 4].is_ascii_alphanumeric())
}

/// Polish plate formats: district of 2 letters + 5 characters, or 3 letters + 4
/// or 5 characters, the individual part in one of the official digit/letter
/// layouts (D = digit, L = letter).
fn car_plate(m: &str) -> bool {
    const FIVE: [&str; 5] = ["DDDDD", "DDDDL", "DDDLL", "DLDDD", "DLLDD"];
    const FOUR: [&str; 7] = ["LDDD", "DDLL", "DLDD", "DDLD", "DLLD", "LDDL", "DDDD"];
    let compact: Vec<u8> = m.bytes().filter(|&b| b != b' ').collect();
    let layout = |part: &[u8]| -> String {
        part.iter()
            .map(|b| if b.is_ascii_digit() { 'D' } else { 'L' })
            .collect()
    };
    let fits = |district: usize| -> bool {
        if compact.len() <= district || !compact[..district].iter().all(u8::is_ascii_uppercase) {
            return false;
        }
        if let Some(space) = m.find(' ') {
            if space != district {
                return false;
            }
        }
        let part = &compact[district..];
        let l = layout(part);
        match (district, part.len()) {
            (2, 5) | (3, 5) => FIVE.contains(&l.as_str()),
            (3, 4) => FOUR.contains(&l.as_str()),
            _ => false,
        }
    };
    fits(2) || fits(3)
}
