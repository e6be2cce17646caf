//! # fast_masker
//!
//! In-process PII masking for llm-router (SPEC §6, MASKING-RULES.md): regex
//! shapes plus validators, placeholders per request, and restore (whole texts
//! and streams).
//!
//! ## Rules, in application order
//! EMAIL, URL, IP (+PORT), PESEL_TAGGED, PESEL, NIP, REGON, DATE (words),
//! DATE (numeric), TIME, MONEY, VIN, BANK_ACCOUNT, CAR_PLATE, POSTAL_CODE, NRB,
//! KRS, PASSPORT, ID_CARD, SSN, HEALTH_CODE, PHONE_INTERNATIONAL, PHONE,
//! MAC_ADDRESS, CREDIT_CARD, SSL_CERT, JWT, INVOICE_NUMBER, ORDER_NUMBER,
//! TRANSACTION_REF, SIM_CARD, SOCIAL_ID, EU_VAT. Each rule finds its matches in
//! the original text; a match overlapping one of an earlier rule (or a
//! placeholder already in the text) is dropped and the rule looks again one
//! character later. Boundaries are checked in Rust with Unicode letters, so
//! `12345678901ą` is not a PESEL. Decisions beyond the table:
//! - PESEL_TAGGED keeps its label and masks only the number, with tag `PESEL`
//!   (the same number labelled or not gets one placeholder).
//! - IP and port are separate placeholders: `{IP_1}:{PORT_1}`.
//! - Both DATE rules use tag `DATE`.
//! - TIME `HH.MM` next to a currency (`12.50 zł`, `$ 12.50`) is left to MONEY;
//!   MONEY takes the whole amount (`1200,50 zł`, `1 200,50 zł`, `1,5 mln zł`).
//! - Phone numbers end at any non-alphanumeric (`600 123 456.` is masked).
//! - CREDIT_CARD leaves 19–20 digit numbers starting `89` (ICCIDs) to SIM_CARD.
//! - PASSPORT / ID_CARD / CAR_PLATE / VIN / IBAN letters are uppercase only.
//! - Bare 12-hex MACs need a letter and a digit in one case; SSL_CERT needs a digit.
//!
//! ## Placeholders
//! `{TAG_n}`, `n` counted per tag from 1 within one [`MaskSession`]; the same
//! original gets the same placeholder for the whole session; placeholders
//! already present in the input are never issued. A session is per request:
//! nothing is global, nothing outlives it.
//!
//! ## Restore
//! [`unmask`] / [`unmask_json`] for complete texts, [`Restorer`] for streams:
//! it holds back only a tail that is still a prefix of a known placeholder.
//!
//! ## Speed
//! One byte-table pass finds token windows around digits, `@`, `:`, `www.`,
//! `localhost` (see `scan`); rules run only inside windows and only when the
//! window's features allow (e.g. PESEL only with an 11-digit run); validators
//! run only on regex candidates. Figures: see `benches/mask.rs` and the crate
//! README section of the project notes.

#![forbid(unsafe_code)]

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
