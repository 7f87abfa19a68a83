//! Request bodies: `service_kit::extract::parse_json` (and `valid_json`) for every JSON body
//! the API takes, and `parse_form` for the form-encoded token request, on arbitrary bytes.
//!
//! Invariants:
//! - nothing panics, parsing or validating;
//! - every refusal is a 422 of FastAPI-shaped field errors: at least one, each located under
//!   `body`, of type `json_invalid` (located at a column), `model_attributes_type` (JSON that
//!   is not an object, located at `body`), `missing` (naming the field) or `invalid_type`
//!   from parsing, with a message;
//! - `json_invalid` is said only of bytes that are not JSON, `model_attributes_type` only of
//!   JSON that is not an object;
//! - the rules of a parsed body report every broken one under `body`, and `valid_json` is
//!   `parse_json` then those rules.

#![no_main]

use api::auth::{LoginRequest, RegisterRequest, TokenForm};
use api::library::{BookCreate, BookPatch, CopiesAdd, HoldCreate, LoanCreate};
use api::scrape::{RetransformRequest, ScrapeRequest};
use api::users::RoleChange;
use api::{FieldError, Validate};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use service_kit::extract::{parse_form, parse_json, valid_json, BodyRejection};

use axum::response::IntoResponse;

/// The field errors of a 422 refusal; anything else is a failure.
fn invalid(rejection: BodyRejection) -> Vec<FieldError> {
    if let BodyRejection::Invalid(errors) = &rejection {
        let errors = errors.clone();
        assert_eq!(rejection.into_response().status(), 422);
        errors
    } else {
        panic!("not a 422: {rejection:?}")
    }
}

fn assert_body_error(e: &FieldError) {
    assert_eq!(
        e.loc.first(),
        Some(&serde_json::Value::from("body")),
        "{e:?}"
    );
    assert!(!e.msg.is_empty(), "{e:?}");
}

/// The errors of parsing: at least one, each in FastAPI's shape.
fn assert_parse_errors(errors: &[FieldError], bytes: &[u8]) {
    assert!(!errors.is_empty());
    for e in errors {
        assert_body_error(e);
        match e.kind.as_str() {
            "json_invalid" => {
                assert_eq!(e.loc.len(), 2, "{e:?}");
                assert!(e.loc[1].is_u64(), "{e:?}");
                assert!(
                    serde_json::from_slice::<serde_json::Value>(bytes).is_err(),
                    "json_invalid said of JSON: {:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
            "model_attributes_type" => {
                assert_eq!(e.loc, [serde_json::Value::from("body")], "{e:?}");
                let json = serde_json::from_slice::<serde_json::Value>(bytes)
                    .expect("model_attributes_type said of bytes that are not JSON");
                assert!(!json.is_object(), "model_attributes_type said of an object");
            }
            "missing" => {
                assert_eq!(e.msg, "Field required");
                assert!(e.loc.len() >= 2 && e.loc.last().is_some_and(|l| l.is_string()));
            }
            "invalid_type" => {}
            other => panic!("unexpected error type {other}: {e:?}"),
        }
    }
}

fn check_json<T: DeserializeOwned + Validate>(bytes: &[u8]) {
    let whole = valid_json::<T>(bytes);
    match parse_json::<T>(bytes) {
        Err(rejection) => {
            let errors = invalid(rejection);
            assert_parse_errors(&errors, bytes);
            let again = invalid(
                whole
                    .err()
                    .expect("valid_json accepted what parse_json refused"),
            );
            assert_eq!(again, errors);
        }
        Ok(body) => match body.validate() {
            Ok(_) => assert!(whole.is_ok(), "valid_json refused a valid body"),
            Err(errors) => {
                assert!(!errors.is_empty());
                errors.iter().for_each(assert_body_error);
                let again = invalid(whole.err().expect("valid_json accepted an invalid body"));
                assert_eq!(again, errors);
            }
        },
    }
}

fn check_form<T: DeserializeOwned + Validate>(bytes: &[u8]) {
    match parse_form::<T>(bytes) {
        Err(rejection) => {
            let errors = invalid(rejection);
            assert!(!errors.is_empty());
            for e in &errors {
                assert_body_error(e);
                assert!(
                    matches!(e.kind.as_str(), "missing" | "invalid_type"),
                    "{e:?}"
                );
            }
        }
        Ok(body) => {
            if let Err(errors) = body.validate() {
                assert!(!errors.is_empty());
                errors.iter().for_each(assert_body_error);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_json::<RegisterRequest>(data);
    check_json::<LoginRequest>(data);
    check_json::<ScrapeRequest>(data);
    check_json::<RetransformRequest>(data);
    check_json::<RoleChange>(data);
    check_json::<BookCreate>(data);
    check_json::<BookPatch>(data);
    check_json::<CopiesAdd>(data);
    check_json::<LoanCreate>(data);
    check_json::<HoldCreate>(data);
    check_form::<TokenForm>(data);
});
