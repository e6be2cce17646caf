//! The rule table: one entry per rule type of MASKING-RULES.md, in its order.
//!
//! Each rule is a regex for the *shape* (no word boundaries: the regex crate's
//! Unicode `\b` is slow and its ASCII `\b` treats `ą` as a non-word char) plus
//! an acceptance check in Rust for boundaries (Unicode-aware) and validators
//! (checksums, ranges; `accept.rs`). A rejected candidate is retried one character later,
//! so a bad shape never hides a good one that starts inside it.

use regex_automata::hybrid;
use regex_automata::meta::Regex;
use regex_automata::nfa::thompson::pikevm::PikeVM;

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
    pub(crate) fn one(s: usize, e: usize, tag: &'static str) -> Hit {
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

pub(crate) const ISO_CODES: &str =
    "PLN|USD|EUR|GBP|CHF|CAD|AUD|JPY|NOK|SEK|DKK|CZK|HUF|RUB|CNY|INR";
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
    /// placeholder + every rule, leftmost-first in table order, as a lazy DFA
    /// searched directly (one cache per thread of use, no per-search dispatch)
    pub combined: Combined,
    /// the same patterns with all-matches semantics: which rules match at a position
    /// (leftmost-first overlapping searches do not report every pattern)
    pub every: Regex,
    pub currency_after: Regex,
}

/// The combined leftmost-first patterns: a lazy DFA, and a PikeVM on the same
/// NFA for the (never seen in practice) case that the DFA gives up on its cache.
pub(crate) struct Combined {
    pub dfa: hybrid::dfa::DFA,
    pub pikevm: PikeVM,
}

/// The combined patterns: the placeholder shape, then every rule in table order.
pub(crate) fn combined_patterns() -> Vec<String> {
    std::iter::once(PLACEHOLDER.to_string())
        .chain(ORDER.iter().map(|&k| guarded(k)))
        .collect()
}

/// Configuration shared by the combined matchers (and the test-only meta
/// regex of the reference scan).
pub(crate) const NFA_SIZE_LIMIT: usize = 64 << 20;
pub(crate) const CACHE_CAPACITY: usize = 4 << 20;

pub(crate) fn compile() -> Compiled {
    use regex_automata::{meta, nfa::thompson, MatchKind};
    let patterns: Vec<String> = ORDER.iter().map(|&k| guarded(k)).collect();
    let rules = ORDER
        .iter()
        .zip(&patterns)
        .map(|(&kind, p)| Rule {
            kind,
            re: Regex::new(p).unwrap_or_else(|e| panic!("built-in pattern {kind:?}: {e}")),
        })
        .collect();
    let all = combined_patterns();
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .nfa_size_limit(Some(NFA_SIZE_LIMIT))
                .which_captures(thompson::WhichCaptures::Implicit),
        )
        .build_many(&all)
        .expect("built-in combined pattern");
    let dfa = hybrid::dfa::Builder::new()
        .configure(
            hybrid::dfa::Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .starts_for_each_pattern(false)
                .cache_capacity(CACHE_CAPACITY)
                .minimum_cache_clear_count(Some(3))
                .minimum_bytes_per_state(Some(10)),
        )
        .build_from_nfa(nfa.clone())
        .expect("built-in combined lazy DFA");
    let pikevm = PikeVM::builder()
        .configure(PikeVM::config().match_kind(MatchKind::LeftmostFirst))
        .build_from_nfa(nfa)
        .expect("built-in combined PikeVM");
    let every = meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::All)
                .nfa_size_limit(Some(NFA_SIZE_LIMIT))
                .hybrid_cache_capacity(CACHE_CAPACITY),
        )
        .build_many(&all)
        .expect("built-in combined pattern");
    let currency_after = Regex::new(&currency_after_pattern()).expect("built-in currency pattern");
    Compiled {
        rules,
        combined: Combined { dfa, pikevm },
        every,
        currency_after,
    }
}
