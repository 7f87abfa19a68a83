//! Request-body extractors whose every rejection is a JSON error in FastAPI's shape.
//!
//! `ValidJson<T>` and `ValidForm<T>` parse the body, report each field that failed to parse
//! (422 with its location), then run the type's own [`Validate`] rules and report every field
//! that breaks them at once, so a client sees all its mistakes in one answer. The handler gets
//! the body's valid form (`T::Valid`), e.g. a request carrying a checked IDNO.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub use api::{Check, Validate};

use crate::error::{json_error, validation_error, FieldError};

/// Why a body was refused.
#[derive(Debug)]
pub enum BodyRejection {
    /// Larger than the configured limit (413), or unreadable (400).
    Read(StatusCode, String),
    /// Did not parse, or broke the type's rules (422).
    Invalid(Vec<FieldError>),
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        match self {
            BodyRejection::Read(status, detail) => json_error(status, detail),
            BodyRejection::Invalid(errors) => validation_error(errors),
        }
    }
}

impl From<BytesRejection> for BodyRejection {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            BodyRejection::Read(status, "Request body is too large".into())
        } else {
            BodyRejection::Read(
                StatusCode::BAD_REQUEST,
                "Could not read the request body".into(),
            )
        }
    }
}

/// The body as bytes, for relaying it unparsed; over the size limit it is a JSON 413.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(RawBody(Bytes::from_request(req, state).await?))
    }
}

/// A JSON body of type `T`, parsed and validated; holds its valid form.
#[derive(Debug, Clone)]
pub struct ValidJson<T: Validate>(pub T::Valid);

impl<T, S> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await?;
        valid_json::<T>(&bytes).map(ValidJson)
    }
}

/// A form-encoded body (`application/x-www-form-urlencoded`) of type `T`, parsed and
/// validated; holds its valid form.
#[derive(Debug, Clone)]
pub struct ValidForm<T: Validate>(pub T::Valid);

impl<T, S> FromRequest<S> for ValidForm<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await?;
        let value = parse_form::<T>(&bytes)?;
        value
            .validate()
            .map(ValidForm)
            .map_err(BodyRejection::Invalid)
    }
}

/// Parses and validates a JSON body (for handlers that read the bytes themselves).
pub fn valid_json<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T::Valid, BodyRejection> {
    parse_json::<T>(bytes)?
        .validate()
        .map_err(BodyRejection::Invalid)
}

/// Parses JSON, naming the failing field the way FastAPI does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyRejection> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let field = if inner.is_data() { Some(path) } else { None };
        BodyRejection::Invalid(vec![describe(field, &inner.to_string(), inner.column())])
    })?;
    de.end()
        .map_err(|e| BodyRejection::Invalid(vec![describe(None, &e.to_string(), e.column())]))?;
    Ok(value)
}

/// Parses a form body, naming the failing field.
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyRejection> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(bytes));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        BodyRejection::Invalid(vec![describe(Some(path), &message, 0)])
    })
}

/// Turns a serde message into a FastAPI-like field error.
fn describe(field_path: Option<String>, message: &str, column: usize) -> FieldError {
    match field_path {
        None => FieldError {
            loc: vec!["body".into(), column.into()],
            msg: "JSON decode error".into(),
            kind: "json_invalid".into(),
        },
        Some(path) => {
            if let Some(missing) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                let mut loc = location(&path);
                loc.push(missing.into());
                return FieldError {
                    loc,
                    msg: "Field required".into(),
                    kind: "missing".into(),
                };
            }
            let msg = message
                .split(" at line ")
                .next()
                .unwrap_or(message)
                .to_owned();
            FieldError {
                loc: location(&path),
                msg,
                kind: "invalid_type".into(),
            }
        }
    }
}

/// `a.b[0]` → `["body", "a", "b", 0]`; the root `.` → `["body"]`.
fn location(path: &str) -> Vec<serde_json::Value> {
    let mut loc = vec![serde_json::Value::from("body")];
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let mut parts = segment.split('[');
        if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
            loc.push(name.into());
        }
        for index in parts {
            let index = index.trim_end_matches(']');
            match index.parse::<u64>() {
                Ok(i) => loc.push(i.into()),
                Err(_) => loc.push(index.into()),
            }
        }
    }
    loc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
        remember: Option<bool>,
    }

    fn errors(r: Result<Login, BodyRejection>) -> Vec<FieldError> {
        match r {
            Err(BodyRejection::Invalid(e)) => e,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_json_invalid() {
        let e = errors(parse_json(br#"{"username": "a", "#));
        assert_eq!(e[0].kind, "json_invalid");
        assert_eq!(e[0].loc[0], "body");
    }

    #[test]
    fn missing_field_is_named() {
        let e = errors(parse_json(br#"{"username": "alice"}"#));
        assert_eq!(e[0].kind, "missing");
        assert_eq!(
            e[0].loc,
            vec![serde_json::json!("body"), serde_json::json!("password")]
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let e = errors(parse_json(br#"{"username": 5, "password": "x"}"#));
        assert_eq!(e[0].kind, "invalid_type");
        assert_eq!(
            e[0].loc,
            vec![serde_json::json!("body"), serde_json::json!("username")]
        );
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let e = errors(parse_json(br#"{"username": "a", "password": "b"} x"#));
        assert_eq!(e[0].kind, "json_invalid");
    }

    #[derive(Debug, Deserialize)]
    struct Grant {
        grant_type: Option<String>,
        expires: Option<u32>,
    }

    #[test]
    fn form_handles_optional_and_numeric_fields() {
        let g: Grant = parse_form(b"grant_type=password&expires=30").unwrap();
        assert_eq!(
            (g.grant_type.as_deref(), g.expires),
            (Some("password"), Some(30))
        );
        let g: Grant = parse_form(b"").unwrap();
        assert_eq!((g.grant_type, g.expires), (None, None));
    }

    #[test]
    fn form_parses_and_reports_missing() {
        let ok: Login = parse_form(b"username=alice&password=p%40ss").unwrap();
        assert_eq!(ok.password, "p@ss");
        let e = errors(parse_form(b"username=alice"));
        assert_eq!(e[0].kind, "missing");
    }
}
