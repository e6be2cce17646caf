//! The rule table: one entry per rule type of MASKING-RULES.md, in its order.
//!
//! Each rule is a regex for the *shape* (no word boundaries: the regex crate's
//! Unicode `\b` is slow and its ASCII `\b` treats `ą` as a non-word char) plus
//! an acceptance check in Rust for boundaries (Unicode-aware) and validators
//! (checksums, ranges). A rejected candidate is retried one character later,
//! so a bad shape never hides a good one that starts inside it.

use regex_automata::meta::Regex;

use crate::validators as v;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Email,
    Url,
    Ip,
    PeselTagged,
    Pesel,
    Nip,
    Regon,
    DateWords,
    DateNumeric,
    Time,
    Money,
    Vin,
    BankAccount,
    CarPlate,
    PostalCode,
    Nrb,
    Krs,
    Passport,
    IdCard,
    Ssn,
    HealthCode,
    PhoneInternational,
    Phone,
    MacAddress,
    CreditCard,
    SslCert,
    Jwt,
    InvoiceNumber,
    OrderNumber,
    TransactionRef,
    SimCard,
    SocialId,
    EuVat,
}

/// A span to replace, `[s, e)`, and its placeholder tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub s: usize,
    pub e: usize,
    pub tag: &'static str,
}

/// What an accepted match turns into: one span, or two (IP and port).
pub(crate) struct Hit {
    pub main: Span,
    pub extra: Option<Span>,
}

impl Hit {
    fn one(s: usize, e: usize, tag: &'static str) -> Hit {
        Hit {
            main: Span { s, e, tag },
            extra: None,
        }
    }
}

pub(crate) struct Rule {
    pub kind: Kind,
    pub re: Regex,
}

const SP: &str = r"[ \t\x{a0}\x{202f}]";

const PL_MONTHS: &str = concat!(
    r"stycz(?:nia|niu|niem|eń|en)|sty|",
    r"lut(?:ego|ym|y)|lut|",
    r"mar(?:zec|ca|cu|cem)|mar|",
    r"kwie(?:tnia|tniu|tniem|cień|cien)|kwi|",
    r"maj(?:a|u|em)?|",
    r"czer(?:wca|wcu|wcem|wiec)|cze|",
    r"lip(?:ca|cu|cem|iec)|lip|",
    r"sierp(?:nia|niu|niem|ień|ien)|sie|",
    r"wrze(?:śnia|snia|śniu|sniu|śniem|sniem|sień|sien)|wrz|",
    r"(?:październik|pazdziernik)(?:a|u|iem)?|paź|paz|",
    r"listopad(?:a|zie|em)?|lis|",
    r"grud(?:nia|niu|niem|zień|zien)|gru"
);

const EN_MONTHS: &str = "january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec";

const ISO_CODES: &str = "PLN|USD|EUR|GBP|CHF|CAD|AUD|JPY|NOK|SEK|DKK|CZK|HUF|RUB|CNY|INR";
const SYMBOLS: &str = r"\$|€|£|¥|₽|₹";
const PL_CURRENCY: &str = concat!(
    r"złotych|złotego|złote|złoty|zlotych|zlote|zloty|zł|zl|groszy|grosze|gr|",
    r"dolarów|dolarow|dolary|dolara|dolar|euro|",
    r"funtów|funtow|funty|funta|funt|rubli|ruble|rubla|rubel|franków|frankow|franki|franka|frank"
);
const MULTIPLIER: &str = r"tysięcy|tysiące|tysiąc|tys\.?|milionów|miliony|milion|mln\.?|miliardów|miliardy|miliard|mld\.?";

fn amount() -> String {
    format!(
        r"(?:[0-9]{{1,3}}(?:{SP}[0-9]{{3}})+|[0-9]{{1,3}}(?:,[0-9]{{3}})+|[0-9]{{1,3}}(?:\.[0-9]{{3}})+|[0-9]+)(?:[.,][0-9]{{1,2}})?"
    )
}

fn money_pattern() -> String {
    let amt = amount();
    format!(
        r"(?:{SYMBOLS}|{ISO_CODES}){SP}*-?{amt}(?:{SP}*(?i:{MULTIPLIER}))?|{amt}(?:{SP}*(?i:{MULTIPLIER}))?{SP}*(?:{SYMBOLS}|{ISO_CODES}|(?i:{PL_CURRENCY}))"
    )
}

/// Anchored: a currency (with optional multiplier) right after a number — used
/// so `12.50 zł` is money, not a time.
pub(crate) fn currency_after_pattern() -> String {
    format!(r"^{SP}*(?:(?i:{MULTIPLIER}){SP}*)?(?:{SYMBOLS}|{ISO_CODES}|(?i:{PL_CURRENCY}))")
}

fn pattern(kind: Kind) -> String {
    use Kind::*;
    match kind {
        // local part and domain may carry any letters (`zielińska@`, IDN hosts)
        Email => r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}".into(),
        Url => concat!(
            r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*(?::[0-9]{1,5})?(?:[/?#][^\s<>{}]*)?",
            r"|[Ww][Ww][Ww]\.[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?::[0-9]{1,5})?(?:[/?#][^\s<>{}]*)?"
        )
        .into(),
        Ip => concat!(
            r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?::[0-9]{1,5})?",
            r"|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}",
            r"|(?:localhost|LOCALHOST)(?::[0-9]{1,5})?"
        )
        .into(),
        PeselTagged => format!(r"(?i:pesel)(?:{SP}|[:.#=\-])*(?:(?i:nr)\.?{SP}*)?[0-9]{{11}}"),
        Pesel => r"[0-9]{11}".into(),
        Nip => r"[0-9]{3}-[0-9]{3}-[0-9]{2}-[0-9]{2}|[0-9]{3}-[0-9]{2}-[0-9]{2}-[0-9]{3}|[0-9]{10}".into(),
        Regon => r"[0-9]{14}|[0-9]{2} [0-9]{3} [0-9]{4} [0-9]{5}|[0-9]{9}|[0-9]{2} [0-9]{3} [0-9]{4}".into(),
        DateWords => format!(
            r"[0-9]{{1,2}}(?i:st|nd|rd|th)?\.?{SP}+(?i:of{SP}+)?(?i:{PL_MONTHS}|{EN_MONTHS})\.?,?{SP}+[0-9]{{4}}|[0-9]{{4}}{SP}+(?i:{PL_MONTHS}|{EN_MONTHS})\.?{SP}+[0-9]{{1,2}}|(?i:{EN_MONTHS})\.?{SP}+[0-9]{{1,2}}(?i:st|nd|rd|th)?,?{SP}+[0-9]{{4}}"
        ),
        DateNumeric => r"[0-9]{4}[-./][0-9]{1,2}[-./][0-9]{1,2}|[0-9]{1,2}[-./][0-9]{1,2}[-./][0-9]{4}".into(),
        Time => r"[0-9]{1,2}[:.][0-9]{2}".into(),
        Money => money_pattern(),
        Vin => r"[A-HJ-NPR-Z0-9]{17}".into(),
        BankAccount => r"[A-Z]{2} ?[0-9]{2}(?: ?[A-Z0-9]){11,30}".into(),
        CarPlate => r"[BCDEFGKLNOPRSTWZ][A-Z]{1,2} ?[0-9A-Z]{4,5}".into(),
        PostalCode => r"[0-9]{2}-[0-9]{3}|[0-9]{5}".into(),
        Nrb => r"[0-9]{2}(?: ?[0-9]{4}){6}".into(),
        Krs => r"[0-9]{10}|[0-9]{3}-[0-9]{3}-[0-9]{2}-[0-9]{2}".into(),
        Passport => r"[A-Z]{2}[0-9]{7}".into(),
        IdCard => r"[A-Z]{3} ?[0-9]{6}".into(),
        Ssn => r"[0-9]{3}-[0-9]{2}-[0-9]{4}".into(),
        HealthCode => r"[0-9]{8}/[0-9]{3}".into(),
        PhoneInternational => {
            r"(?:\(\+[0-9]{1,3}\)|\+[0-9]{1,3})(?:[ \-]?\([0-9]{1,4}\))?(?:[ \-]?[0-9]{2,5}){1,6}".into()
        }
        Phone => concat!(
            r"\([0-9]{2}\) ?[0-9]{3}[ \-]?[0-9]{2}[ \-]?[0-9]{2}",
            r"|[0-9]{3}[ \-]?[0-9]{3}[ \-]?[0-9]{3}",
            r"|[0-9]{2}[ \-]?[0-9]{3}[ \-]?[0-9]{2}[ \-]?[0-9]{2}"
        )
        .into(),
        MacAddress => concat!(
            r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}",
            r"|[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}",
            r"|[0-9A-Fa-f]{12}"
        )
        .into(),
        CreditCard => concat!(
            r"[0-9]{4}[ \-][0-9]{4}[ \-][0-9]{4}[ \-][0-9]{4}(?:[ \-][0-9]{3})?",
            r"|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{5}",
            r"|[0-9]{13,19}"
        )
        .into(),
        SslCert => r"[0-9A-F]{16,40}".into(),
        Jwt => r"[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}".into(),
        InvoiceNumber => {
            r"(?i:invoice|inv|fv) ?[/\-] ?[0-9]{1,8}(?:[/\-][0-9A-Za-z]{1,10}){1,4}".into()
        }
        OrderNumber => r"(?i:order|ord)[\-_#]?[0-9]{3,10}(?:[\-_][0-9]{1,10})*".into(),
        TransactionRef => r"[A-Z]{2,5}(?:[\-_][0-9]{2,20}){1,5}".into(),
        SimCard => r"[0-9]{4}(?: ?[0-9]{4}){3} ?[0-9]{3,4}|[0-9]{19,20}".into(),
        SocialId => r"(?i:fbid)[=:]?[0-9]{8,}".into(),
        EuVat => r"(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)[0-9A-Z]{8,12}".into(),
    }
}

pub(crate) const ORDER: [Kind; 33] = {
    use Kind::*;
    [
        Email,
        Url,
        Ip,
        PeselTagged,
        Pesel,
        Nip,
        Regon,
        DateWords,
        DateNumeric,
        Time,
        Money,
        Vin,
        BankAccount,
        CarPlate,
        PostalCode,
        Nrb,
        Krs,
        Passport,
        IdCard,
        Ssn,
        HealthCode,
        PhoneInternational,
        Phone,
        MacAddress,
        CreditCard,
        SslCert,
        Jwt,
        InvoiceNumber,
        OrderNumber,
        TransactionRef,
        SimCard,
        SocialId,
        EuVat,
    ]
};

impl Kind {
    /// The rule type's name as MASKING-RULES.md lists it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PeselTagged => "PESEL_TAGGED",
            k => k.tag(),
        }
    }

    pub fn tag(self) -> &'static str {
        use Kind::*;
        match self {
            Email => "EMAIL",
            Url => "URL",
            Ip => "IP",
            // Same entity as an unlabelled PESEL: same original → same placeholder.
            PeselTagged | Pesel => "PESEL",
            Nip => "NIP",
            Regon => "REGON",
            DateWords | DateNumeric => "DATE",
            Time => "TIME",
            Money => "MONEY",
            Vin => "VIN",
            BankAccount => "BANK_ACCOUNT",
            CarPlate => "CAR_PLATE",
            PostalCode => "POSTAL_CODE",
            Nrb => "NRB",
            Krs => "KRS",
            Passport => "PASSPORT",
            IdCard => "ID_CARD",
            Ssn => "SSN",
            HealthCode => "HEALTH_CODE",
            PhoneInternational => "PHONE_INTERNATIONAL",
            Phone => "PHONE",
            MacAddress => "MAC_ADDRESS",
            CreditCard => "CREDIT_CARD",
            SslCert => "SSL_CERT",
            Jwt => "JWT",
            InvoiceNumber => "INVOICE_NUMBER",
            OrderNumber => "ORDER_NUMBER",
            TransactionRef => "TRANSACTION_REF",
            SimCard => "SIM_CARD",
            SocialId => "SOCIAL_ID",
            EuVat => "EU_VAT",
        }
    }

    /// Whether a match of this rule can start with byte `c` (filters the
    /// fallback tries at a position).
    pub fn may_start(self, c: u8) -> bool {
        use Kind::*;
        let d = c.is_ascii_digit();
        let up = c.is_ascii_uppercase();
        match self {
            Email => {
                c.is_ascii_alphanumeric()
                    || c >= 0x80
                    || matches!(c, b'.' | b'%' | b'+' | b'-' | b'_')
            }
            Url => matches!(c, b'h' | b'H' | b'w' | b'W'),
            Ip => c.is_ascii_hexdigit() || c == b'l' || c == b'L',
            PeselTagged => c == b'p' || c == b'P',
            Pesel | Nip | Regon | DateNumeric | Time | PostalCode | Nrb | Krs | Ssn
            | HealthCode | CreditCard | SimCard => d,
            DateWords => d || c.is_ascii_alphabetic(),
            Money => d || up || c == b'$' || c >= 0x80,
            Vin | SslCert => d || up,
            BankAccount | CarPlate | Passport | IdCard | TransactionRef | EuVat => up,
            PhoneInternational => c == b'+' || c == b'(',
            Phone => d || c == b'(',
            MacAddress => c.is_ascii_hexdigit(),
            Jwt => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
            InvoiceNumber => matches!(c, b'f' | b'F' | b'i' | b'I'),
            OrderNumber => c == b'o' || c == b'O',
            SocialId => c == b'f' || c == b'F',
        }
    }
}

/// ASCII word boundaries the acceptance checks would demand anyway, put into
/// the pattern so the combined pass proposes fewer doomed candidates: before
/// patterns that always start with a letter (`\b` is ASCII: `ą` counts as a
/// non-word char here and the Unicode check in `accept` catches it), after
/// patterns that always end with an ASCII letter or digit.
fn guarded(kind: Kind) -> String {
    use Kind::*;
    let left = matches!(
        kind,
        Url | PeselTagged
            | Vin
            | BankAccount
            | CarPlate
            | Passport
            | IdCard
            | InvoiceNumber
            | OrderNumber
            | TransactionRef
            | SocialId
            | EuVat
    );
    let right = !matches!(
        kind,
        Email | Url | PeselTagged | Pesel | Money | BankAccount | Jwt
    );
    format!(
        "{}(?:{}){}",
        if left { r"(?-u:\b)" } else { "" },
        pattern(kind),
        if right { r"(?-u:\b)" } else { "" }
    )
}

/// Pattern 0 of the combined regex: a placeholder already in the text.
pub(crate) const PLACEHOLDER: &str = r"\{[A-Z][A-Z_]*_[0-9]{1,6}\}";

pub(crate) struct Compiled {
    pub rules: Vec<Rule>,
    /// placeholder + every rule, leftmost-first in table order
    pub combined: Regex,
    /// the same patterns with all-matches semantics: which rules match at a position
    /// (leftmost-first overlapping searches do not report every pattern)
    pub every: Regex,
    pub currency_after: Regex,
}

pub(crate) fn compile() -> Compiled {
    use regex_automata::{meta, MatchKind};
    let patterns: Vec<String> = ORDER.iter().map(|&k| guarded(k)).collect();
    let rules = ORDER
        .iter()
        .zip(&patterns)
        .map(|(&kind, p)| Rule {
            kind,
            re: Regex::new(p).unwrap_or_else(|e| panic!("built-in pattern {kind:?}: {e}")),
        })
        .collect();
    let all: Vec<&str> = std::iter::once(PLACEHOLDER)
        .chain(patterns.iter().map(String::as_str))
        .collect();
    let combined = meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(4 << 20),
        )
        .build_many(&all)
        .expect("built-in combined pattern");
    let every = meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::All)
                .nfa_size_limit(Some(64 << 20))
                .hybrid_cache_capacity(4 << 20),
        )
        .build_many(&all)
        .expect("built-in combined pattern");
    let currency_after = Regex::new(&currency_after_pattern()).expect("built-in currency pattern");
    Compiled {
        rules,
        combined,
        every,
        currency_after,
    }
}

// ---- boundaries ----------------------------------------------------------

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
                let (h, mi) = m.split_at(m.find([':', '.'])?);
                let (h, mi): (u32, u32) = (h.parse().ok()?, mi[1..].parse().ok()?);
                if h > 23 || mi > 59 {
                    return None;
                }
                // `12.50 zł` / `$ 12.50` is an amount
                if m.contains('.')
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
