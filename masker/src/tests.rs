//! Behaviour of the whole masker, rule by rule. Valid identifiers are computed
//! from their algorithms by the helpers below, not copied.

use super::*;
use crate::validators as v;
use std::sync::OnceLock;

fn masker() -> &'static FastMasker {
    static M: OnceLock<FastMasker> = OnceLock::new();
    M.get_or_init(FastMasker::new)
}

fn mask(text: &str) -> (String, Vec<(String, String)>) {
    let mut s = MaskSession::new();
    let out = masker().mask(text, &mut s).into_owned();
    (out, s.mappings().to_vec())
}

/// Each case: input, expected masked text.
fn check(cases: &[(&str, &str)]) {
    for (input, want) in cases {
        let (got, maps) = mask(input);
        assert_eq!(&got, want, "input: {input:?}, mappings: {maps:?}");
        // round trip
        assert_eq!(
            unmask(&got, &Mappings::new(maps.clone())),
            *input,
            "restore of {input:?}"
        );
    }
}

fn unchanged(cases: &[&str]) {
    for input in cases {
        let (got, maps) = mask(input);
        assert_eq!(&got, input, "must not be masked; mappings: {maps:?}");
    }
}

// ---- identifiers from their algorithms ------------------------------------

fn digits_of(s: &str) -> Vec<u32> {
    s.bytes().map(|b| u32::from(b - b'0')).collect()
}

fn pesel_from(first10: &str) -> String {
    let w = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = digits_of(first10).iter().zip(w).map(|(d, w)| d * w).sum();
    let p = format!("{first10}{}", (10 - sum % 10) % 10);
    assert!(v::pesel(&p));
    p
}

fn bad_last(s: &str) -> String {
    let (head, last) = s.split_at(s.len() - 1);
    let d = (last.parse::<u32>().unwrap() + 1) % 10;
    format!("{head}{d}")
}

/// NIP from 9 digits; the 9 are bumped until the check digit is not 10.
fn nip_from(first9: &str) -> String {
    let w = [6, 5, 7, 2, 3, 4, 5, 6, 7];
    let mut n: u64 = first9.parse().unwrap();
    loop {
        let s = format!("{n:09}");
        let sum: u32 = digits_of(&s).iter().zip(w).map(|(d, w)| d * w).sum();
        if sum % 11 != 10 {
            let nip = format!("{s}{}", sum % 11);
            assert!(v::nip(&nip));
            return nip;
        }
        n += 1;
    }
}

fn regon_from(head: &str) -> String {
    let w: &[u32] = if head.len() == 8 {
        &[8, 9, 2, 3, 4, 5, 6, 7]
    } else {
        &[2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8]
    };
    let sum: u32 = digits_of(head).iter().zip(w).map(|(d, w)| d * w).sum();
    let r = format!("{head}{}", (sum % 11) % 10);
    assert!(v::regon(&r));
    r
}

fn mod97_str(s: &str) -> u32 {
    s.chars().fold(0u32, |r, c| {
        if c.is_ascii_digit() {
            (r * 10 + c.to_digit(10).unwrap()) % 97
        } else {
            (r * 100 + (c as u32 - 'A' as u32 + 10)) % 97
        }
    })
}

fn iban_from(country: &str, bban: &str) -> String {
    let check = 98 - mod97_str(&format!("{bban}{country}00"));
    let iban = format!("{country}{check:02}{bban}");
    assert!(v::iban_compact(iban.as_bytes()), "{iban}");
    iban
}

fn grouped4(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

fn luhn_from(head: &str) -> String {
    for d in 0..10 {
        let c = format!("{head}{d}");
        if v::luhn(&c) {
            return c;
        }
    }
    unreachable!()
}

fn vin_from(template: &str) -> String {
    // position 9 (index 8) is replaced by the computed check digit
    let w = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let val = |c: u8| -> u32 {
        match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            _ => {
                let table = b"ABCDEFGHJKLMNPRSTUVWXYZ";
                let vals = [
                    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9,
                ];
                vals[table.iter().position(|&t| t == c).unwrap()]
            }
        }
    };
    let sum: u32 = template.bytes().zip(w).map(|(c, w)| val(c) * w).sum();
    let check = if sum % 11 == 10 {
        'X'
    } else {
        char::from_digit(sum % 11, 10).unwrap()
    };
    let mut v: Vec<char> = template.chars().collect();
    v[8] = check;
    let vin: String = v.into_iter().collect();
    assert!(v::vin(&vin));
    vin
}

// ---- rules -----------------------------------------------------------------

#[test]
fn email() {
    check(&[
        ("pisz: jan.kowalski85@firma.pl.", "pisz: {EMAIL_1}."),
        ("<Anna.Nowak+faktury@sub.example.COM>", "<{EMAIL_1}>"),
        ("ąę test_1@x-y.eu, b@c.org", "ąę {EMAIL_1}, {EMAIL_2}"),
    ]);
    unchanged(&["a@b.c", "@handle", "x@y"]);
}

#[test]
fn email_digits_are_not_other_rules() {
    let p = pesel_from("8001011234");
    check(&[(&format!("{p}@firma.pl"), "{EMAIL_1}")]);
    check(&[("600123456@sms.pl", "{EMAIL_1}")]);
}

#[test]
fn url() {
    check(&[
        (
            "zobacz https://firma.pl/oferta?id=123&x=1.",
            "zobacz {URL_1}.",
        ),
        ("(http://192.168.0.1:8080/admin)", "({URL_1})"),
        ("http://localhost:3000/api", "{URL_1}"),
        ("www.example.com/path, dalej", "{URL_1}, dalej"),
        (
            "https://pl.wikipedia.org/wiki/Łódź koniec",
            "{URL_1} koniec",
        ),
    ]);
    unchanged(&["requests.post(url)", "wwwexample", "http:/broken"]);
}

#[test]
fn url_containing_an_ip_is_one_url() {
    let (out, maps) = mask("GET http://10.0.0.5:8080/x");
    assert_eq!(out, "GET {URL_1}");
    assert_eq!(maps.len(), 1);
}

#[test]
fn ip_and_port() {
    check(&[
        ("serwer 192.168.1.10:8080.", "serwer {IP_1}:{PORT_1}."),
        ("ip 10.0.0.1, 10.0.0.1", "ip {IP_1}, {IP_1}"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334 end", "{IP_1} end"),
        (
            "on localhost:5432 and LOCALHOST",
            "on {IP_1}:{PORT_1} and {IP_2}",
        ),
        ("host 1.2.3.4:99999", "host {IP_1}:99999"),
    ]);
    unchanged(&[
        "wersja 1.2.3.4.5",
        "256.1.1.1",
        "1.2.3",
        "v1.2.3.4",
        "localhosts",
    ]);
}

#[test]
fn pesel_tagged_keeps_the_label() {
    let p = pesel_from("9002151234");
    check(&[
        (&format!("PESEL: {p}"), "PESEL: {PESEL_1}"),
        (&format!("pesel nr {p}."), "pesel nr {PESEL_1}."),
        (&format!("PESEL{p}"), "PESEL{PESEL_1}"),
    ]);
    unchanged(&[&format!("PESEL: {}", bad_last(&p))]);
}

#[test]
fn pesel() {
    let p = pesel_from("4405140135");
    check(&[
        (&format!("numer {p}, dalej"), "numer {PESEL_1}, dalej"),
        (&format!("**{p}**"), "**{PESEL_1}**"),
        (&format!("_{p}_"), "_{PESEL_1}_"),
        (&format!("({p})"), "({PESEL_1})"),
    ]);
    unchanged(&[
        &bad_last(&p),
        &format!("{p}ą"),
        &format!("ż{p}"),
        &format!("x{p}"),
        &format!("{p}1"),
        &format!("1{p}"),
    ]);
}

#[test]
fn nip() {
    let n = nip_from("526104082");
    let dashed = format!("{}-{}-{}-{}", &n[..3], &n[3..6], &n[6..8], &n[8..]);
    let dashed_alt = format!("{}-{}-{}-{}", &n[..3], &n[3..5], &n[5..7], &n[7..]);
    check(&[
        (&format!("NIP {n}"), "NIP {NIP_1}"),
        (&format!("NIP: {dashed}."), "NIP: {NIP_1}."),
        (&format!("NIP {dashed_alt}"), "NIP {NIP_1}"),
        (&format!("NIP{n}"), "NIP{NIP_1}"),
    ]);
    // bad checksum: still ten digits, so KRS (format only) takes it
    let (out, _) = mask(&format!("nr {}", bad_last(&n)));
    assert_eq!(out, "nr {KRS_1}");
    unchanged(&[&format!("{n}1"), &format!("1{n}"), &format!("{n}ą")]);
}

#[test]
fn regon() {
    let r9 = regon_from("12345678");
    let r14 = regon_from("1234567851234");
    check(&[
        (&format!("REGON {r9}"), "REGON {REGON_1}"),
        (&format!("REGON {r14}."), "REGON {REGON_1}."),
        (
            &format!("REGON {} {} {}", &r9[..2], &r9[2..5], &r9[5..]),
            "REGON {REGON_1}",
        ),
    ]);
    let (out, _) = mask(&format!("REGON {}", bad_last(&r9)));
    assert!(!out.contains("REGON_"), "{out}");
    unchanged(&[&format!("{r9}ą")]);
}

#[test]
fn date_words_polish_and_english() {
    check(&[
        ("dnia 15 stycznia 2024 r.", "dnia {DATE_1} r."),
        ("1 lutego 2023, 3 marca 2023", "{DATE_1}, {DATE_2}"),
        ("5 października 2022", "{DATE_1}"),
        ("5 pazdziernika 2022", "{DATE_1}"),
        ("12 wrz. 2021", "{DATE_1}"),
        ("30 Czerwca 2020", "{DATE_1}"),
        ("2024 maja 3", "{DATE_1}"),
        ("31 grudnia 1999", "{DATE_1}"),
        ("on January 5th, 2024.", "on {DATE_1}."),
        ("Sept 1, 2021", "{DATE_1}"),
        ("1 May 2020", "{DATE_1}"),
        ("7th of March 2019", "{DATE_1}"),
    ]);
    unchanged(&[
        "15 stycznia",
        "stycznia 2024",
        "40 stycznia 2024",
        "Maja 2024",
    ]);
}

#[test]
fn date_numeric() {
    check(&[
        ("od 2024-01-15 do 31.12.2024.", "od {DATE_1} do {DATE_2}."),
        ("15/01/2024", "{DATE_1}"),
        ("1.5.2024", "{DATE_1}"),
    ]);
    unchanged(&["2024-13-01", "32.01.2024", "2024-01.15", "12024-01-15"]);
}

#[test]
fn date_is_not_a_postal_code() {
    check(&[
        ("12-05-2024", "{DATE_1}"),
        ("00-950 Warszawa", "{POSTAL_CODE_1} Warszawa"),
    ]);
}

#[test]
fn time() {
    check(&[
        ("o 14:30 i 9.05.", "o {TIME_1} i {TIME_2}."),
        ("23:59", "{TIME_1}"),
    ]);
    unchanged(&["24:00", "12:60", "123:45", "1:2"]);
}

#[test]
fn money() {
    check(&[
        ("Kwota 1200,50 zł.", "Kwota {MONEY_1}."),
        ("1 200,50 zł", "{MONEY_1}"),
        ("1\u{a0}200\u{a0}000 PLN", "{MONEY_1}"),
        ("$1,200.50 total", "{MONEY_1} total"),
        ("€ 99", "{MONEY_1}"),
        ("1,5 mln zł", "{MONEY_1}"),
        ("10 tys. złotych", "{MONEY_1}"),
        ("USD 3 mld", "{MONEY_1}"),
        ("250 euro i 30 dolarów", "{MONEY_1} i {MONEY_2}"),
        ("12.50 zł", "{MONEY_1}"),
        ("500zł", "{MONEY_1}"),
        ("1.200,00 EUR", "{MONEY_1}"),
    ]);
    unchanged(&["1200 osób", "zł", "100 złotówek", "12 złamań"]);
}

#[test]
fn vin() {
    let vin = vin_from("1HGBH41J0MN109186");
    check(&[(&format!("VIN {vin}."), "VIN {VIN_1}.")]);
    let mut bad = vin.clone().into_bytes();
    bad[8] = if bad[8] == b'1' { b'2' } else { b'1' };
    unchanged(&[
        &format!("VIN {}", String::from_utf8(bad).unwrap()),
        &format!("{vin}ą"),
    ]);
}

#[test]
fn bank_account_iban() {
    let pl = iban_from("PL", "109010140000071219812874");
    let de = iban_from("DE", "370400440532013000");
    let gb = iban_from("GB", "NWBK60161331926819");
    check(&[
        (&format!("IBAN: {pl}."), "IBAN: {BANK_ACCOUNT_1}."),
        (
            &format!("konto {} dalej", grouped4(&pl)),
            "konto {BANK_ACCOUNT_1} dalej",
        ),
        (
            &format!("{de} / {gb}"),
            "{BANK_ACCOUNT_1} / {BANK_ACCOUNT_2}",
        ),
        (&format!("{} 2024", grouped4(&de)), "{BANK_ACCOUNT_1} 2024"),
    ]);
    let mut bad = pl.clone().into_bytes();
    bad[10] = if bad[10] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).unwrap();
    assert!(!v::iban_compact(bad.as_bytes()));
    let (out, _) = mask(&format!("IBAN {bad}"));
    assert!(!out.contains("BANK_ACCOUNT"), "{out}");
    // wrong length for the country
    let (out, _) = mask(&format!("IBAN {}1", pl));
    assert!(!out.contains("BANK_ACCOUNT"), "{out}");
}

#[test]
fn iban_vs_nrb_vs_digits() {
    let pl = iban_from("PL", "109010140000071219812874");
    let nrb = &pl[2..];
    assert!(v::nrb(nrb));
    check(&[
        (&pl, "{BANK_ACCOUNT_1}"),
        (&format!("nr {nrb}"), "nr {NRB_1}"),
        (
            &format!("nr {} {}", &nrb[..2], grouped4(&nrb[2..])),
            "nr {NRB_1}",
        ),
    ]);
    let (out, _) = mask(&format!("nr {}", bad_last(nrb)));
    assert!(!out.contains("NRB"), "{out}");
}

#[test]
fn car_plate() {
    check(&[
        (
            "auto WA 12345 i KR 1234A",
            "auto {CAR_PLATE_1} i {CAR_PLATE_2}",
        ),
        ("WPI 12AB.", "{CAR_PLATE_1}."),
        ("GD 1AB23", "{CAR_PLATE_1}"),
        ("WX1A234", "{CAR_PLATE_1}"),
    ]);
    unchanged(&["AB 1234A", "WA 123", "WA 1A2B3", "iso 9001"]);
}

#[test]
fn postal_code() {
    check(&[
        (
            "00-950 Warszawa, kod 31-564.",
            "{POSTAL_CODE_1} Warszawa, kod {POSTAL_CODE_2}.",
        ),
        ("kod 00950", "kod {POSTAL_CODE_1}"),
    ]);
    unchanged(&["/api/12345/x", "00-9500", "100-950", "12345.67", "v12345"]);
}

#[test]
fn krs_passport_id_card_ssn_health() {
    check(&[
        ("KRS 0000123456", "KRS {KRS_1}"),
        ("paszport AB1234567.", "paszport {PASSPORT_1}."),
        (
            "dowód ABC123456 lub ABC 123456",
            "dowód {ID_CARD_1} lub {ID_CARD_2}",
        ),
        ("SSN 123-45-6789", "SSN {SSN_1}"),
        ("NFZ 12345678/901", "NFZ {HEALTH_CODE_1}"),
    ]);
    unchanged(&[
        "AB12345678",
        "ABCD123456",
        "666-45-6789",
        "123-00-6789",
        "123-45-0000",
        "12345678/9012",
    ]);
}

#[test]
fn phone_international() {
    check(&[
        ("tel. +48 600 123 456.", "tel. {PHONE_INTERNATIONAL_1}."),
        (
            "+48600123456, +1-202-555-0143",
            "{PHONE_INTERNATIONAL_1}, {PHONE_INTERNATIONAL_2}",
        ),
        ("+44 20 7946 0958)", "{PHONE_INTERNATIONAL_1})"),
        ("(+48) 22 123 45 67", "{PHONE_INTERNATIONAL_1}"),
    ]);
    unchanged(&["+1", "+48 12", "1+2=3"]);
}

#[test]
fn phone_followed_by_punctuation() {
    check(&[
        ("zadzwoń: 600 123 456.", "zadzwoń: {PHONE_1}."),
        (
            "600123456, 501-234-567; (22) 123 45 67!",
            "{PHONE_1}, {PHONE_2}; {PHONE_3}!",
        ),
        ("22 123 45 67?", "{PHONE_1}?"),
        ("tel.:600 123 456)", "tel.:{PHONE_1})"),
    ]);
    unchanged(&[
        "100 123 456",
        "600 123456",
        "60012 34 56",
        "600 123 4567",
        "1600 123 456",
        "600 123 456ą",
    ]);
}

#[test]
fn mac_address() {
    check(&[
        ("MAC 00:1A:2B:3C:4D:5E.", "MAC {MAC_ADDRESS_1}."),
        ("00-1a-2b-3c-4d-5e", "{MAC_ADDRESS_1}"),
        ("001A2B3C4D5E", "{MAC_ADDRESS_1}"),
    ]);
    unchanged(&[
        "00:1A:2B:3C:4D",
        "00:1A:2B:3C:4D:5E:6F",
        "00:1A-2B:3C-4D:5E",
        "abcdefabcdef",
    ]);
}

#[test]
fn credit_card() {
    let card = luhn_from("453201511283036");
    check(&[
        (&format!("karta {card}."), "karta {CREDIT_CARD_1}."),
        (&grouped4(&card), "{CREDIT_CARD_1}"),
        (&grouped4(&card).replace(' ', "-"), "{CREDIT_CARD_1}"),
    ]);
    let amex = luhn_from("37828224631000");
    check(&[(
        &format!("{} {} {}", &amex[..4], &amex[4..10], &amex[10..]),
        "{CREDIT_CARD_1}",
    )]);
    let (out, _) = mask(&grouped4(&bad_last(&card)));
    assert!(!out.contains("CREDIT_CARD"), "{out}");
}

#[test]
fn ssl_cert_and_jwt() {
    check(&[
        ("serial 4F3A9C2B7D1E8F60A5B4", "serial {SSL_CERT_1}"),
        (
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "token {JWT_1} end",
        ),
    ]);
    unchanged(&["DEADBEEFDEADBEEF", "4F3A9C2B7D1E8F6", "a.b.c"]);
}

#[test]
fn business_numbers() {
    check(&[
        ("faktura FV/2023/00123.", "faktura {INVOICE_NUMBER_1}."),
        ("INV-2023-456", "{INVOICE_NUMBER_1}"),
        (
            "zamówienie ORD-123456, ORDER-2023-001",
            "zamówienie {ORDER_NUMBER_1}, {ORDER_NUMBER_2}",
        ),
        // three letters + six digits is an ID_CARD first (rule order)
        ("ORD123456", "{ID_CARD_1}"),
        ("ref TRX-20240101-123456", "ref {TRANSACTION_REF_1}"),
        ("fbid123456789012", "{SOCIAL_ID_1}"),
        // leftmost wins: the whole id, not its ten digits as a KRS
        ("fbid1234567890", "{SOCIAL_ID_1}"),
        (
            "VAT DE123456789 i ATU12345678",
            "VAT {EU_VAT_1} i {EU_VAT_2}",
        ),
    ]);
    unchanged(&[
        "COVID-19",
        "ISO-9001",
        "RECORD123",
        "FV/ab",
        "DEADBEEF",
        "Configuration",
    ]);
}

#[test]
fn sim_card() {
    let iccid = luhn_from("894803100000000012");
    assert_eq!(iccid.len(), 19);
    check(&[
        (&format!("SIM {iccid}"), "SIM {SIM_CARD_1}"),
        (&grouped4(&iccid), "{SIM_CARD_1}"),
    ]);
    let (out, _) = mask(&format!("SIM {}", bad_last(&iccid)));
    assert!(
        !out.contains("SIM_CARD") && !out.contains("CREDIT_CARD"),
        "{out}"
    );
}

#[test]
fn money_vs_plain_numbers_vs_phone() {
    check(&[
        ("600 123 456 zł", "{MONEY_1}"),
        ("600 123 456", "{PHONE_1}"),
        ("rok 2024 100 zł", "rok 2024 {MONEY_1}"),
    ]);
}

// ---- placeholders and sessions --------------------------------------------

#[test]
fn placeholders_stable_within_a_session_and_fresh_across() {
    let m = masker();
    let mut s = MaskSession::new();
    let a = m.mask("jan@x.pl, anna@x.pl, jan@x.pl", &mut s).into_owned();
    let b = m.mask("znowu anna@x.pl", &mut s).into_owned();
    assert_eq!(a, "{EMAIL_1}, {EMAIL_2}, {EMAIL_1}");
    assert_eq!(b, "znowu {EMAIL_2}");
    assert_eq!(s.mappings().len(), 2);
    let mut fresh = MaskSession::new();
    assert_eq!(m.mask("anna@x.pl", &mut fresh), "{EMAIL_1}");
}

#[test]
fn existing_placeholders_are_untouched_and_never_reissued() {
    let (out, maps) = mask("{PESEL_3} i {EMAIL_1} oraz jan@x.pl");
    assert_eq!(out, "{PESEL_3} i {EMAIL_1} oraz {EMAIL_2}");
    assert_eq!(maps, vec![("{EMAIL_2}".to_owned(), "jan@x.pl".to_owned())]);
}

#[test]
fn placeholder_look_alikes_do_not_shelter_numbers() {
    let (out, _) = mask("{PHONE_600123456}");
    assert!(!out.contains("600123456"), "{out}");
}

#[test]
fn text_without_pii_is_borrowed() {
    let mut s = MaskSession::new();
    assert!(matches!(
        masker().mask("Dzień dobry, 3 osoby.", &mut s),
        std::borrow::Cow::Borrowed(_)
    ));
    assert!(s.is_empty());
}

#[test]
fn mask_json_masks_every_string_value_not_keys() {
    let mut v = serde_json::json!({
        "model": "gpt",
        "jan@x.pl": 1,
        "messages": [
            {"role": "user", "content": "mail jan@x.pl tel 600 123 456"},
            {"role": "assistant", "content": ["jan@x.pl", {"deep": "{EMAIL_1} literal"}]}
        ],
        "n": 5, "stream": true, "x": null
    });
    let mut s = MaskSession::new();
    masker().mask_json(&mut v, &mut s);
    assert_eq!(
        v,
        serde_json::json!({
            "model": "gpt",
            "jan@x.pl": 1,
            "messages": [
                {"role": "user", "content": "mail {EMAIL_2} tel {PHONE_1}"},
                {"role": "assistant", "content": ["{EMAIL_2}", {"deep": "{EMAIL_1} literal"}]}
            ],
            "n": 5, "stream": true, "x": null
        })
    );
    let maps = Mappings::from(&s);
    unmask_json(&mut v, &maps);
    assert_eq!(v["messages"][0]["content"], "mail jan@x.pl tel 600 123 456");
    assert_eq!(v["messages"][1]["content"][1]["deep"], "{EMAIL_1} literal");
}

#[test]
fn mask_json_except_keeps_named_top_level_fields() {
    let mut v = serde_json::json!({
        "model": "gpt-4o-2024-08-06",
        "prompt": "model gpt-4o-2024-08-06, mail jan@x.pl",
        "nested": {"model": "2024-08-06"}
    });
    let mut s = MaskSession::new();
    masker().mask_json_except(&mut v, &mut s, &["model"]);
    assert_eq!(v["model"], "gpt-4o-2024-08-06");
    assert_eq!(v["prompt"], "model gpt-4o-{DATE_1}, mail {EMAIL_1}");
    assert_eq!(v["nested"]["model"], "{DATE_1}");
}

#[test]
fn fast_text_mask_shape() {
    let v = masker().fast_text_mask("mail jan@x.pl");
    assert_eq!(
        v,
        serde_json::json!({"text": "mail {EMAIL_1}", "mappings": {"{EMAIL_1}": "jan@x.pl"}})
    );
    let maps = Mappings::from_json(&v["mappings"]).unwrap();
    assert_eq!(unmask(v["text"].as_str().unwrap(), &maps), "mail jan@x.pl");
    assert_eq!(
        Mappings::from_json(&serde_json::json!({"a": 1})).unwrap_err(),
        "mappings.a: expected a string"
    );
}

fn sample() -> String {
    let p = pesel_from("8501011234");
    let pl = iban_from("PL", "109010140000071219812874");
    format!(
        "Szanowna Pani, PESEL {p}, konto {}, e-mail ewa.zielińska@firma.pl, tel. +48 600 123 456. \
         Kwota 1 200,50 zł płatna do 15 stycznia 2024 r. Proszę o kontakt: 22 123 45 67. Łódź, 90-001.",
        grouped4(&pl)
    )
}

#[test]
fn restore_round_trip_on_mixed_text() {
    let text = sample();
    let (out, maps) = mask(&text);
    assert!(maps.len() >= 8, "{out} {maps:?}");
    assert_eq!(unmask(&out, &Mappings::new(maps)), text);
}

#[test]
fn restorer_at_every_split_point() {
    let text = sample();
    let (masked, maps) = mask(&text);
    let maps = Mappings::new(maps);
    let chars: Vec<(usize, char)> = masked.char_indices().collect();
    for &(i, _) in &chars {
        for &(j, _) in chars.iter().filter(|&&(j, _)| j >= i) {
            let mut r = Restorer::new(maps.clone());
            let mut out = r.push(&masked[..i]);
            out.push_str(&r.push(&masked[i..j]));
            out.push_str(&r.push(&masked[j..]));
            out.push_str(&r.finish());
            assert_eq!(out, text, "split at {i}, {j}");
        }
    }
}

#[test]
fn restorer_holds_back_at_most_one_placeholder() {
    let text = sample();
    let (masked, maps) = mask(&text);
    let maps = Mappings::new(maps);
    let longest = maps_len(&masked);
    let mut r = Restorer::new(maps);
    let mut emitted = String::new();
    for c in masked.chars() {
        emitted.push_str(&r.push(c.encode_utf8(&mut [0; 4])));
        assert!(r.pending().len() < longest, "held back {:?}", r.pending());
        if !r.pending().is_empty() {
            assert!(r.pending().starts_with('{'));
        }
    }
    emitted.push_str(&r.finish());
    assert_eq!(emitted, text);
}

fn maps_len(masked: &str) -> usize {
    masked
        .split('{')
        .skip(1)
        .filter_map(|p| p.find('}'))
        .map(|n| n + 2)
        .max()
        .unwrap()
}

#[test]
fn masker_is_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<FastMasker>();
    is::<MaskSession>();
    assert_eq!(FastMasker::rule_names().count(), 33);
}

#[test]
fn corpora_pii_is_masked_and_clean_text_is_not() {
    for clean in [
        include_str!("../testdata/pl_clean.txt"),
        include_str!("../testdata/en_clean.txt"),
    ] {
        let (_, maps) = mask(clean);
        assert!(maps.is_empty(), "false positives: {maps:?}");
    }
    let pl = include_str!("../testdata/pl_pii.txt");
    let en = include_str!("../testdata/en_pii.txt");
    let secrets = [
        "85010112345",
        "jan.kowalski85@poczta.pl",
        "600 123 456",
        "+48 22 123 45 67",
        "PL61 1090 1014 0000 0712 1981 2874",
        "526-104-08-28",
        "123456785",
        "0000123456",
        "1 200,50 zł",
        "31.01.2024",
        "350 EUR",
        "FV/2024/00123",
        "ewa.zielinska@firma.com.pl",
        "ORD-2024-001234",
        "TRX-20240115-987654",
        "WA 12345",
        "1HGBH41JXMN109186",
        "14:30",
        "31-564",
        "00-950",
        "https://reklamacje.firma.pl/zgloszenie?id=98765",
        "192.168.10.25",
        "8443",
        "anna.nowak@firma.pl",
        "501-234-567",
        "DE89 3704 0044 0532 0130 00",
        "$2,450.00",
        "2024-02-15",
        "4532 0151 1283 0366",
        "ABC123456",
        "AB1234567",
        "22 987 65 43",
        "17.00",
        "15 stycznia 2024",
        "January 15th, 2024",
        "123-45-6789",
        "john.smith84@example.com",
        "+1-202-555-0143",
        "$1,200.50",
        "GB29 NWBK 6016 1331 9268 19",
        "2024-01-31",
        "INV-2024-0456",
        "billing@example.co.uk",
        "ORDER-2024-7781",
        "4532-0151-1283-0366",
        "TRX-20240115-554433",
        "+44 20 7946 0958",
        "09:45",
        "https://support.example.com/tickets/5521?ref=mail",
        "10.20.30.40",
        "00:1A:2B:3C:4D:5E",
        "eyJhbGciOiJIUzI1NiJ9",
        "4F3A9C2B7D1E8F60A5B4",
        "DE123456789",
        "EUR 3,400.00",
        "March 3, 2024",
    ];
    let (pl_out, pl_maps) = mask(pl);
    let (en_out, en_maps) = mask(en);
    for s in secrets {
        assert!(pl.contains(s) || en.contains(s), "test data lacks {s}");
        assert!(
            !pl_out.contains(s) && !en_out.contains(s),
            "{s} survived:\n{pl_out}\n{en_out}"
        );
    }
    assert_eq!(unmask(&pl_out, &Mappings::new(pl_maps)), pl);
    assert_eq!(unmask(&en_out, &Mappings::new(en_maps)), en);
}

#[test]
fn long_blobs_stay_linear_and_keep_their_pii_neighbours() {
    // 256 KiB of hex and of base64-like text without spaces, then PII
    let hex: String = (0..256 * 1024)
        .map(|i| b"0123456789abcdef"[i * 7 % 16] as char)
        .collect();
    let b64: String = (0..256 * 1024)
        .map(|i| b"AbC9+/xYz0"[i * 3 % 10] as char)
        .collect();
    for blob in [hex, b64] {
        let text = format!("{blob} mail jan@x.pl");
        let (out, _) = mask(&text);
        assert!(
            out.ends_with(" mail {EMAIL_1}"),
            "{}",
            &out[out.len() - 40..]
        );
    }
}

#[test]
fn a_very_long_url_is_masked_whole() {
    let url = format!("https://example.com/download?sig={}", "a1".repeat(5000));
    check(&[(&format!("see {url} now"), "see {URL_1} now")]);
}
