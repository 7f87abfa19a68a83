//! `scraper_service::transform::transform` on arbitrary stored pages: the bytes of a page, read
//! as UTF-8 lossily (as the pipeline reads what it loaded), parsed for the IDNO the fixtures
//! show.
//!
//! Invariants:
//! - never panics (nor overflows: the build has debug assertions);
//! - a record has at least one field; every text field and list item is non-empty, one line
//!   of cleaned text (`clean_text` leaves it unchanged); list items are unique;
//! - a record's IDNO, when the page shows one, is the requested one;
//! - a refusal for another company's IDNO names 13 digits other than the requested ones, and
//!   when those digits are a valid IDNO, the same page parsed for it yields its record.

#![no_main]

use api::scrape::{Idno, IDNO_LEN};
use libfuzzer_sys::fuzz_target;
use scraper_service::transform::{clean_text, transform, ParsedCompany, TransformError};

/// The IDNO of the fixture pages (scraper-service/tests/fixtures) and most seeds.
const REQUESTED: &str = "1008600038413";

fn assert_clean(what: &str, text: &str) {
    assert!(!text.is_empty(), "empty {what}");
    assert_eq!(clean_text(text), text, "{what} is not cleaned text");
}

fn assert_record(company: &ParsedCompany, requested: &Idno) {
    assert_ne!(
        company,
        &ParsedCompany::default(),
        "a record without fields"
    );
    if let Some(idno) = &company.idno {
        assert_eq!(idno, requested.as_str());
    }
    for (what, field) in [
        ("company_name", &company.company_name),
        ("legal_form", &company.legal_form),
        ("address", &company.address),
        ("registration_date", &company.registration_date),
        ("status", &company.status),
    ] {
        if let Some(text) = field {
            assert_clean(what, text);
        }
    }
    for (what, list) in [
        ("director", &company.directors),
        ("activity", &company.activities),
    ] {
        for (i, item) in list.iter().enumerate() {
            assert_clean(what, item);
            assert!(!list[..i].contains(item), "duplicate {what} {item:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let requested = Idno::parse(REQUESTED).expect("a valid IDNO");
    match transform(&html, &requested) {
        Ok(company) => assert_record(&company, &requested),
        Err(TransformError::IdnoMismatch {
            page,
            requested: named,
        }) => {
            assert_eq!(named, requested);
            assert_ne!(page, REQUESTED);
            assert!(page.len() == IDNO_LEN && page.bytes().all(|b| b.is_ascii_digit()));
            if let Ok(shown) = Idno::parse(&page) {
                let company = transform(&html, &shown)
                    .unwrap_or_else(|e| panic!("the page of {page} refused for it: {e}"));
                assert_eq!(company.idno.as_deref(), Some(page.as_str()));
                assert_record(&company, &shown);
            }
        }
        Err(TransformError::NotFound | TransformError::NoData | TransformError::TooDeep) => {}
    }
});
