//! `api::scrape::Idno`: the IDNO check every request path and command line goes through.
//!
//! Invariants, for any input (bytes read as UTF-8, lossily):
//! - `Idno::parse` never panics, and agrees with an independent reading of the rule (13 ASCII
//!   digits, the last the check digit of the first twelve, weights 7, 3, 1, sum mod 10),
//!   error kind included (non-digit first, then length, then check digit);
//! - an accepted IDNO is the input unchanged (`as_str`, `Display`, JSON), and is what
//!   `Idno::from_stem` makes of its first twelve digits;
//! - `Idno::parse_at` agrees with `parse`, its error naming the given location;
//! - `TryFrom<String>` agrees with `parse`.

#![no_main]

use api::scrape::{Idno, IdnoError, IDNO_LEN};
use libfuzzer_sys::fuzz_target;

/// The rule, written again from its description rather than from the code under test.
fn expected(raw: &str) -> Result<(), IdnoError> {
    if raw.chars().any(|c| !c.is_ascii_digit()) {
        return Err(IdnoError::NotDigits);
    }
    if raw.len() != IDNO_LEN {
        return Err(IdnoError::Length);
    }
    let digits: Vec<u32> = raw.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits[..12]
        .iter()
        .zip([7, 3, 1].iter().cycle())
        .map(|(d, w)| d * w)
        .sum();
    if sum % 10 == digits[12] {
        Ok(())
    } else {
        Err(IdnoError::CheckDigit)
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let raw: &str = &raw;

    let parsed = Idno::parse(raw);
    assert_eq!(
        parsed.as_ref().map(|_| ()).map_err(|e| *e),
        expected(raw),
        "{raw:?}"
    );

    let at = Idno::parse_at(raw, &["path", "idno"]);
    match (&parsed, &at) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(e), Err(field)) => {
            assert_eq!(field.loc, ["path", "idno"]);
            assert_eq!(field.kind, e.kind());
            assert_eq!(field.msg, e.message());
        }
        _ => panic!("parse and parse_at disagree on {raw:?}"),
    }
    assert_eq!(Idno::try_from(raw.to_owned()), parsed);

    if let Ok(idno) = parsed {
        assert_eq!(idno.as_str(), raw);
        assert_eq!(idno.to_string(), raw);
        assert_eq!(idno.as_ref(), raw);
        assert_eq!(Idno::from_stem(&raw[..IDNO_LEN - 1]), idno);
        assert_eq!(
            serde_json::to_string(&idno).expect("serialises"),
            format!("\"{raw}\"")
        );
    }
});
