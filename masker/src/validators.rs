//! Checksums and range checks for the rules that have one. Each takes the
//! matched text (separators allowed where the rule allows them) and answers
//! whether it is a well-formed identifier. Pure functions, no allocation
//! beyond small fixed buffers.

/// The ASCII digits of `s` as values 0–9, separators skipped.
fn digits(s: &str) -> impl Iterator<Item = u32> + '_ {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
}

fn digit_vec<const N: usize>(s: &str) -> Option<[u32; N]> {
    let mut out = [0; N];
    let mut n = 0;
    for d in digits(s) {
        if n == N {
            return None;
        }
        out[n] = d;
        n += 1;
    }
    (n == N).then_some(out)
}

/// PESEL: weights 1,3,7,9,1,3,7,9,1,3; check = (10 − sum mod 10) mod 10.
pub fn pesel(s: &str) -> bool {
    let Some(d) = digit_vec::<11>(s) else {
        return false;
    };
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = W.iter().zip(&d).map(|(w, d)| w * d).sum();
    (10 - sum % 10) % 10 == d[10]
}

/// NIP: weights 6,5,7,2,3,4,5,6,7; sum mod 11 equals the last digit (10 never valid).
pub fn nip(s: &str) -> bool {
    let Some(d) = digit_vec::<10>(s) else {
        return false;
    };
    const W: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];
    let sum: u32 = W.iter().zip(&d).map(|(w, d)| w * d).sum();
    sum % 11 == d[9]
}

/// REGON, 9 or 14 digits; sum mod 11, remainder 10 counts as 0.
pub fn regon(s: &str) -> bool {
    let mut d = [0u32; 14];
    let mut n = 0;
    for x in digits(s) {
        if n == d.len() {
            return false;
        }
        d[n] = x;
        n += 1;
    }
    let w: &[u32] = match n {
        9 => &[8, 9, 2, 3, 4, 5, 6, 7],
        14 => &[2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8],
        _ => return false,
    };
    let sum: u32 = w.iter().zip(&d).map(|(w, d)| w * d).sum();
    (sum % 11) % 10 == d[n - 1]
}

/// Luhn over the digits of `s` (separators skipped).
pub fn luhn(s: &str) -> bool {
    let mut any = false;
    let sum: u32 = s
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| {
            any = true;
            u32::from(b - b'0')
        })
        .enumerate()
        .map(|(i, x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    any && sum.is_multiple_of(10)
}

fn vin_value(c: u8) -> Option<u32> {
    Some(match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A' | b'J' => 1,
        b'B' | b'K' | b'S' => 2,
        b'C' | b'L' | b'T' => 3,
        b'D' | b'M' | b'U' => 4,
        b'E' | b'N' | b'V' => 5,
        b'F' | b'W' => 6,
        b'G' | b'P' | b'X' => 7,
        b'H' | b'Y' => 8,
        b'R' | b'Z' => 9,
        _ => return None,
    })
}

/// VIN (ISO 3779 / North-American check digit at position 9; 10 is written `X`).
pub fn vin(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 17 {
        return false;
    }
    const W: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0;
    for (&c, w) in b.iter().zip(W) {
        match vin_value(c) {
            Some(v) => sum += v * w,
            None => return false,
        }
    }
    let check = match sum % 11 {
        10 => b'X',
        r => b'0' + r as u8,
    };
    b[8] == check
}

/// mod-97 of an IBAN-style string already rearranged (letters A=10 … Z=35).
fn mod97(chars: impl Iterator<Item = u8>) -> Option<u32> {
    let mut r: u32 = 0;
    for c in chars {
        match c {
            b'0'..=b'9' => r = (r * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => r = (r * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return None,
        }
    }
    Some(r)
}

/// IBAN length per ISO 3166 country code (SWIFT IBAN registry).
pub fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BI", 27),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DJ", 27),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FK", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"LY", 25),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MN", 20),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NI", 28),
        (b"NL", 18),
        (b"NO", 15),
        (b"OM", 23),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"RU", 33),
        (b"SA", 24),
        (b"SC", 31),
        (b"SD", 18),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"SO", 23),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
        (b"YE", 30),
    ];
    // sorted by code (a test checks)
    TABLE
        .binary_search_by(|(c, _)| c.as_slice().cmp(country))
        .ok()
        .map(|i| TABLE[i].1)
}

/// IBAN given as compact uppercase alphanumerics: country length and mod-97 = 1.
pub fn iban_compact(c: &[u8]) -> bool {
    if c.len() < 15
        || iban_length(&c[..2]) != Some(c.len())
        || !c[2..4].iter().all(u8::is_ascii_digit)
    {
        return false;
    }
    mod97(c[4..].iter().chain(&c[..4]).copied()) == Some(1)
}

/// Polish NRB: 26 digits, checked as the IBAN `PL` + digits.
pub fn nrb(s: &str) -> bool {
    let mut d = [0u8; 26];
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        if n == d.len() {
            return false;
        }
        d[n] = b;
        n += 1;
    }
    if n != 26 {
        return false;
    }
    mod97(
        d[2..]
            .iter()
            .copied()
            .chain(*b"PL")
            .chain(d[..2].iter().copied()),
    ) == Some(1)
}

/// US SSN `AAA-GG-SSSS`: area ∉ {000, 666, 900–999}, group ≠ 00, serial ≠ 0000.
pub fn ssn(s: &str) -> bool {
    let Some(d) = digit_vec::<9>(s) else {
        return false;
    };
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Polish telephone prefixes (mobile, geographic area codes, 39 VoIP, 70x, 80x).
pub fn polish_phone_prefix(d: &[u8]) -> bool {
    if d.len() < 3 {
        return false;
    }
    let two = (d[0] - b'0') * 10 + (d[1] - b'0');
    match two {
        // mobile
        45 | 50 | 51 | 53 | 57 | 60 | 66 | 69 | 72 | 73 | 78 | 79 | 88 => true,
        // geographic area codes
        12..=18
        | 22..=25
        | 29
        | 32..=34
        | 41..=44
        | 46
        | 48
        | 52
        | 54..=56
        | 58
        | 59
        | 61..=63
        | 65
        | 67
        | 68
        | 71
        | 74..=77
        | 81..=87
        | 89
        | 91
        | 94
        | 95 => true,
        39 | 70 => true,
        80 => matches!(d[2], b'0' | b'1' | b'4'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_examples_from_public_documentation() {
        // Each also has algorithmic coverage in the rule tests; these pin the weights.
        assert!(pesel("44051401359"));
        assert!(!pesel("44051401358"));
        assert!(nip("5261040828"));
        assert!(!nip("5261040827"));
        assert!(regon("123456785"));
        assert!(!regon("123456786"));
        assert!(vin("1HGBH41JXMN109186"));
        assert!(!vin("1HGBH41J1MN109186"));
        assert!(iban_compact(b"PL61109010140000071219812874"));
        assert!(iban_compact(b"DE89370400440532013000"));
        assert!(iban_compact(b"GB29NWBK60161331926819"));
        assert!(!iban_compact(b"PL61109010140000071219812875"));
        assert!(nrb("61109010140000071219812874"));
        assert!(luhn("4532015112830366"));
        assert!(!luhn("4532015112830367"));
        assert!(ssn("123-45-6789"));
        assert!(
            !ssn("666-45-6789")
                && !ssn("900-45-6789")
                && !ssn("123-00-6789")
                && !ssn("123-45-0000")
        );
    }

    #[test]
    fn iban_length_table_rejects_wrong_length_and_unknown_country() {
        assert!(!iban_compact(b"PL6110901014000007121981287"));
        assert!(!iban_compact(b"QQ61109010140000071219812874"));
        assert_eq!(iban_length(b"NO"), Some(15));
    }

    #[test]
    fn iban_length_table_is_sorted_for_its_binary_search() {
        for pair in ["AD", "AE", "BA", "PL", "GB", "DE", "XK", "YE"] {
            assert!(iban_length(pair.as_bytes()).is_some(), "{pair}");
        }
        // every code of the table is found, and nothing else
        let mut found = 0;
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                found += usize::from(iban_length(&[a, b]).is_some());
            }
        }
        assert_eq!(found, 88, "the table has 88 countries");
        assert_eq!(iban_length(b"P"), None);
    }

    #[test]
    fn phone_prefixes() {
        for ok in ["600", "500", "221", "800", "801", "390"] {
            assert!(polish_phone_prefix(ok.as_bytes()), "{ok}");
        }
        for bad in ["000", "100", "199", "802", "960", "300"] {
            assert!(!polish_phone_prefix(bad.as_bytes()), "{bad}");
        }
    }
}
