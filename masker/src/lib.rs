//! # fast_masker
//!
//! In-process PII masking for llm-router (SPEC §6, MASKING-RULES.md): regex
//! shapes plus validators, placeholders per request, and restore (whole texts
//! and streams). Pure code: no I/O, no clock, no global state.
//!
//! ## Rules, in table order
//! EMAIL, URL, IP (+PORT), PESEL_TAGGED, PESEL, NIP, REGON, DATE (words),
//! DATE (numeric), TIME, MONEY, VIN, BANK_ACCOUNT, CAR_PLATE, POSTAL_CODE, NRB,
//! KRS, PASSPORT, ID_CARD, SSN, HEALTH_CODE, PHONE_INTERNATIONAL, PHONE,
//! MAC_ADDRESS, CREDIT_CARD, SSL_CERT, JWT, INVOICE_NUMBER, ORDER_NUMBER,
//! TRANSACTION_REF, SIM_CARD, SOCIAL_ID, EU_VAT.
//!
//! **Which match wins.** The text is read left to right once. At each position
//! where some rule's shape matches, the earliest rule in the table whose match
//! also passes its checks (checksum, ranges, boundaries) wins; the text it
//! covers is not looked at again. So at one position the table order decides
//! (an e-mail's digits are never a phone number; `12.50 zł` is MONEY because
//! TIME declines an amount; `ORD123456` is an ID_CARD); when two matches start
//! at different positions, the one starting first wins (`fbid1234567890` is one
//! SOCIAL_ID, not `fbid` + a KRS; `PL5261040828` is one EU_VAT). That differs
//! from the original's rule-after-rule rewriting only in masking a little more
//! of such compounds, never less. Text already a placeholder (`{TAG_n}`, TAG
//! of `A–Z`/`_`, n of 1–6 digits) is skipped.
//!
//! Boundaries are checked in Rust with Unicode letters (`12345678901ą` is not
//! a PESEL, `zielińska@firma.pl` is one e-mail). Decisions beyond the table:
//! - PESEL_TAGGED keeps its label and masks only the number, with tag `PESEL`
//!   (the same number labelled or not gets one placeholder).
//! - IP and port are separate placeholders: `{IP_1}:{PORT_1}`; an out-of-range
//!   port is left as text.
//! - Both DATE rules use tag `DATE`.
//! - MONEY takes the whole amount (`1200,50 zł`, `1 200,50 zł`, `1.200,00 EUR`,
//!   `1,5 mln zł`, `$1,200.50`).
//! - Phone numbers end at any non-alphanumeric (`600 123 456.` is masked); the
//!   groups must be one of `ddddddddd`, `ddd ddd ddd`, `dd ddd dd dd`,
//!   `(dd) ddd dd dd` (space or `-`), with a Polish prefix.
//! - NIP also accepts the `ddd-dd-dd-ddd` grouping.
//! - CREDIT_CARD leaves 19–20 digit numbers starting `89` (ICCIDs) to SIM_CARD.
//! - PASSPORT / ID_CARD / CAR_PLATE / VIN / IBAN letters are uppercase only;
//!   CAR_PLATE needs a voivodeship letter and an official layout.
//! - Bare 12-hex MACs need a letter and a digit in one case; SSL_CERT needs a
//!   digit and a letter; INVOICE_NUMBER needs a 19xx/20xx year group;
//!   TRANSACTION_REF needs 6+ digits and 8–64 chars.
//!
//! ## Placeholders and sessions
//! `{TAG_n}`, `n` counted per tag from 1 within one [`MaskSession`]; the same
//! original gets the same placeholder for the whole session; placeholders
//! already present in the input are reserved and never issued. A session is
//! per request: nothing is global, nothing outlives it.
//!
//! ## Restore
//! [`unmask`] / [`unmask_json`] for complete texts, [`Restorer`] for streams:
//! it holds back only a tail that is still a proper prefix of a known
//! placeholder (at most the longest placeholder minus one byte) and releases a
//! `{` as soon as it cannot become one.
//!
//! ## How it is fast
//! 1. `scan`: one pass, eight bytes at a time, finds the digits, `@`, `:` and
//!    the literals `www.` / `localhost`; each such token plus three tokens of
//!    context either side forms a window. Prose outside windows is never
//!    looked at again. Token ends are found eight bytes at a time, whether a
//!    token holds a trigger is answered from one forward trigger search shared
//!    by all tokens, and backing up over context tokens stops at the previous
//!    window.
//! 2. Inside a window, tokens that hold no trigger and cannot reach into a
//!    following number are skipped whole. At each remaining position that can
//!    start a match (not glued to a preceding digit; glued to a letter only
//!    when it starts with a digit), one anchored search of a single
//!    multi-pattern lazy DFA (all 33 shapes plus the placeholder shape, ASCII
//!    `\b` guards only) names the earliest rule matching there; its checks run
//!    on that candidate only; if they fail, the later rules are tried,
//!    anchored, at the same position. The lazy DFA is searched directly (no
//!    `meta::Regex` dispatch per candidate), with its caches pooled in the
//!    [`FastMasker`] (one per concurrent `mask`); should it give up on its
//!    cache, a PikeVM on the same NFA answers instead.
//! 3. The checks allocate nothing (stack buffers, byte-level parsing), and a
//!    [`MaskSession`] looks a repeated original up in a small direct-mapped
//!    memo (confirmed by comparing the original) before its SipHash map.
//! 4. Work per position is bounded (4 KiB; a longer URL is then taken whole),
//!    and inside tokens longer than 512 bytes only positions after
//!    punctuation are tried, so hex/base64 blobs cost linear time.
//!
//! Measured with `cargo bench -p llm-router-masker --bench mask -- mask_64k`
//! (criterion medians, ~64 KiB inputs from `testdata/`, a shared 2-core
//! machine) and callgrind (instructions per 64 KiB `mask` call,
//! `examples/mask_count.rs`): dense PII (an identifier every ~25 bytes)
//! ≈ 165–197 MiB/s, 4.4–4.9 M instructions; realistic customer-service mail
//! with a few identifiers per KiB ≈ 0.7–0.9 GiB/s, ≈ 1.3 M; prose without PII
//! ≈ 2.4–3.1 GiB/s, ≈ 0.47 M. README.md has the figures before and after.

#![forbid(unsafe_code)]

mod accept;
mod json;
mod masker;
mod restore;
mod rules;
mod scan;
mod session;
mod validators;

pub use json::unmask_json;
pub use masker::FastMasker;
pub use restore::{unmask, Mappings, Restorer};
pub use session::MaskSession;

#[cfg(test)]
mod tests;
