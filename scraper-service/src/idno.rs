//! The Moldovan IDNO: 13 digits, the last a weighted check digit (rule in `common::api::scrape`).

use std::fmt;

pub use common::api::scrape::{check_idno, IdnoError};
use common::error::FieldError;

/// An IDNO that passed [`check_idno`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Idno(String);

impl Idno {
    /// Checks `raw` (exactly as given: no trimming).
    pub fn parse(raw: &str) -> Result<Idno, IdnoError> {
        check_idno(raw).map(|()| Idno(raw.to_owned()))
    }

    /// Parses a path parameter named `name`, or the 422 field error for it.
    pub fn from_path(raw: &str, name: &str) -> Result<Idno, FieldError> {
        Idno::parse(raw)
            .map_err(|e| common::api::scrape::idno_field_error(vec!["path".into(), name.into()], e))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Idno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Idno {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_valid() {
        assert_eq!(
            Idno::parse("1008600038413").unwrap().as_str(),
            "1008600038413"
        );
    }

    #[test]
    fn a_wrong_check_digit_is_refused() {
        assert_eq!(Idno::parse("1008600038410"), Err(IdnoError::CheckDigit));
    }

    #[test]
    fn length_and_characters_are_checked() {
        assert_eq!(Idno::parse("100860003841"), Err(IdnoError::Length));
        assert_eq!(Idno::parse("10086000384133"), Err(IdnoError::Length));
        assert_eq!(Idno::parse("1008600O38413"), Err(IdnoError::NotDigits));
        assert_eq!(Idno::parse("1008600038413\n"), Err(IdnoError::NotDigits));
    }

    #[test]
    fn path_errors_name_the_parameter() {
        let e = Idno::from_path("abc", "idno").unwrap_err();
        assert_eq!(
            e.loc,
            vec![serde_json::json!("path"), serde_json::json!("idno")]
        );
        assert_eq!(e.kind, "string_pattern_mismatch");
    }

    #[test]
    fn every_stem_has_exactly_one_check_digit() {
        // Property over many stems: exactly one of the ten endings passes.
        let mut stem: u64 = 100_860_003_841;
        for _ in 0..500 {
            stem = stem.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % 1_000_000_000_000;
            let s = format!("{stem:012}");
            let ok = (0..10)
                .filter(|d| check_idno(&format!("{s}{d}")).is_ok())
                .count();
            assert_eq!(ok, 1, "{s}");
        }
    }
}
