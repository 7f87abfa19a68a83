//! `api::library::Isbn`: the ISBN check of book requests and searches.
//!
//! Invariants, for any input (bytes read as UTF-8, lossily):
//! - `Isbn::parse` never panics, and agrees with an independent reading of the rule in the
//!   type's documentation, error kind included;
//! - an accepted ISBN is normalised: 13 ASCII digits, prefix 978 or 979, a valid ISBN-13 check
//!   digit, and parsing it again gives it back;
//! - an ISBN-10 and its ISBN-13 form are one ISBN: a 978 ISBN has an ISBN-10 form that parses
//!   to it, and an accepted ISBN-10 input is that form (with `x` read as `X`);
//! - `Isbn::parse_at` agrees with `parse`, its error naming the given location.

#![no_main]

use api::library::{Isbn, IsbnError};
use libfuzzer_sys::fuzz_target;

/// Values of the check character: digits, and `X` (10) at the end of an ISBN-10.
fn value(c: u8) -> u32 {
    if c == b'X' {
        10
    } else {
        u32::from(c - b'0')
    }
}

/// The rule, written again from the type's documentation: hyphens and spaces anywhere;
/// ISBN-10: nine digits then a digit or `X`, weights 10…1, sum ≡ 0 mod 11; ISBN-13: thirteen
/// digits, weights 1, 3, 1, 3, …, sum ≡ 0 mod 10, then the 978/979 prefix.
fn expected(raw: &str) -> Result<(), IsbnError> {
    let mut chars = Vec::new();
    for c in raw.chars() {
        match c {
            '-' | ' ' => {}
            '0'..='9' => chars.push(c as u8),
            'X' | 'x' => chars.push(b'X'),
            _ => return Err(IsbnError::Characters),
        }
    }
    match chars.len() {
        10 => {
            if chars[..9].contains(&b'X') {
                return Err(IsbnError::Characters);
            }
            let sum: u32 = (0..10).map(|i| value(chars[i]) * (10 - i as u32)).sum();
            if !sum.is_multiple_of(11) {
                return Err(IsbnError::CheckDigit);
            }
            Ok(())
        }
        13 => {
            if chars.contains(&b'X') {
                return Err(IsbnError::Characters);
            }
            if !isbn13_valid(&chars) {
                return Err(IsbnError::CheckDigit);
            }
            if !(chars.starts_with(b"978") || chars.starts_with(b"979")) {
                return Err(IsbnError::Prefix);
            }
            Ok(())
        }
        _ => Err(IsbnError::Length),
    }
}

fn isbn13_valid(digits: &[u8]) -> bool {
    digits.len() == 13
        && digits.iter().all(u8::is_ascii_digit)
        && digits
            .iter()
            .enumerate()
            .map(|(i, &d)| value(d) * if i % 2 == 0 { 1 } else { 3 })
            .sum::<u32>()
            .is_multiple_of(10)
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let raw: &str = &raw;

    let parsed = Isbn::parse(raw);
    assert_eq!(
        parsed.as_ref().map(|_| ()).map_err(|e| *e),
        expected(raw),
        "{raw:?}"
    );

    match (&parsed, Isbn::parse_at(raw, &["body", "isbn"])) {
        (Ok(a), Ok(b)) => assert_eq!(*a, b),
        (Err(e), Err(field)) => {
            assert_eq!(field.loc, ["body", "isbn"]);
            assert_eq!(field.kind, e.kind());
            assert_eq!(field.msg, e.message());
        }
        _ => panic!("parse and parse_at disagree on {raw:?}"),
    }

    let Ok(isbn) = parsed else { return };
    let digits = isbn.as_str();
    assert!(isbn13_valid(digits.as_bytes()), "{raw:?} → {digits}");
    assert!(digits.starts_with("978") || digits.starts_with("979"));
    assert_eq!(Isbn::parse(digits).as_ref(), Ok(&isbn), "not idempotent");
    assert_eq!(isbn.to_string(), digits);

    match isbn.isbn10() {
        Some(ten) => {
            assert!(digits.starts_with("978"));
            assert_eq!(ten.len(), 10);
            assert_eq!(ten[..9], digits[3..12]);
            assert_eq!(Isbn::parse(&ten).as_ref(), Ok(&isbn), "{ten} ≠ {digits}");
        }
        None => assert!(digits.starts_with("979"), "{digits} has no ISBN-10 form"),
    }

    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match compact.len() {
        10 => assert_eq!(isbn.isbn10().as_deref(), Some(compact.as_str())),
        13 => assert_eq!(digits, compact),
        n => panic!("accepted {n} characters: {raw:?}"),
    }
});
