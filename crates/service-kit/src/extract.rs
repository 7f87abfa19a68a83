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

/// Middleware: reads the whole request body (within the body limit, which must be set by an
/// outer `DefaultBodyLimit`) before the handler runs, and hands it on in memory.
///
/// A handler that answers before reading the body (a 403 from a role check, a 404) would
/// otherwise leave it unread, and hyper then closes the keep-alive connection right after the
/// answer without saying so: a proxy that pooled the connection (the gateway) could send the
/// next request on it and fail that one (a 502 for a POST, which is not retried). With the
/// body read first, the connection stays usable. A body over the limit is the usual JSON 413.
pub async fn read_body_first(req: Request, next: axum::middleware::Next) -> Response {
    let (parts, body) = req.into_parts();
    let probe = Request::from_parts(parts.clone(), body);
    match Bytes::from_request(probe, &()).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(rejection) => BodyRejection::from(rejection).into_response(),
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
///
/// Every JSON body of the API is an object: anything else (an array, a string, a number,
/// `null`) is refused as a whole (`model_attributes_type`, at `["body"]`), as pydantic
/// refuses it, instead of letting serde fill a struct from an array. A number with a zero
/// fraction (`3.0`) is the integer it equals, as JSON Schema and pydantic read it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyRejection> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| BodyRejection::Invalid(vec![describe(None, &e.to_string(), e.column())]))?;
    if !value.is_object() {
        return Err(BodyRejection::Invalid(vec![FieldError {
            loc: vec!["body".into()],
            msg: "Input should be a valid dictionary or object to extract fields from".into(),
            kind: "model_attributes_type".into(),
        }]));
    }
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        BodyRejection::Invalid(vec![describe(Some(path), &inner.to_string(), 0)])
    })
}

/// Rewrites every number with a zero fraction that fits an `i64` (`3.0`, `-1e2`) as that
/// integer, so that an integer field accepts it; other fields read an integer as well.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    // 2^63: the first float past i64's range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
                    // In range and integral: the conversion is exact.
                    *value = serde_json::Value::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(integral_floats_as_integers)
        }
        _ => {}
    }
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
    fn a_body_that_is_not_an_object_is_refused_as_a_whole() {
        for body in [
            &br#"["alice", "secret"]"#[..],
            br#"["alice", "secret", true, 1]"#,
            br#""alice""#,
            b"5",
            b"null",
        ] {
            let e = errors(parse_json(body));
            assert_eq!(e.len(), 1, "{body:?}");
            assert_eq!(e[0].kind, "model_attributes_type");
            assert_eq!(e[0].loc, vec![serde_json::json!("body")]);
            assert_eq!(
                e[0].msg,
                "Input should be a valid dictionary or object to extract fields from"
            );
        }
        let resp = BodyRejection::Invalid(errors(parse_json(b"[]"))).into_response();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[derive(Debug, Deserialize)]
    struct Count {
        count: i64,
    }

    #[test]
    fn an_integral_number_is_an_integer_and_a_fraction_is_not() {
        let c: Count = parse_json(br#"{"count": 3.0}"#).unwrap();
        assert_eq!(c.count, 3);
        let c: Count = parse_json(br#"{"count": -1e2}"#).unwrap();
        assert_eq!(c.count, -100);
        for body in [&br#"{"count": 3.5}"#[..], br#"{"count": 1e19}"#] {
            match parse_json::<Count>(body) {
                Err(BodyRejection::Invalid(e)) => {
                    assert_eq!(e[0].kind, "invalid_type");
                    assert_eq!(
                        e[0].loc,
                        vec![serde_json::json!("body"), serde_json::json!("count")]
                    );
                }
                other => panic!("expected 422, got {other:?}"),
            }
        }
    }

    /// A server with one route that refuses every request without looking at its body, behind
    /// [`read_body_first`]; its address.
    async fn refusing_server(limit: usize) -> std::net::SocketAddr {
        let app = axum::Router::new()
            .route("/", axum::routing::post(|| async { StatusCode::FORBIDDEN }))
            .layer(axum::middleware::from_fn(read_body_first))
            .layer(axum::extract::DefaultBodyLimit::max(limit));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[tokio::test]
    async fn an_answer_given_before_the_body_was_read_keeps_the_connection_usable() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = refusing_server(1024).await;
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Twice on one connection, the body a little after the head (as a proxy streams it):
        // without the middleware the server answers 403 at once and closes the connection,
        // and the second request finds it gone.
        for round in 0..2 {
            conn.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n")
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            conn.write_all(b"{}").await.unwrap();
            let mut answer = [0u8; 512];
            let n = conn.read(&mut answer).await.unwrap();
            let head = String::from_utf8_lossy(&answer[..n]);
            assert!(head.starts_with("HTTP/1.1 403"), "round {round}: {head:?}");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_the_json_413() {
        let addr = refusing_server(8).await;
        let resp = post_once(addr, &[b'x'; 64]).await;
        assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
        assert!(
            resp.ends_with(r#"{"detail":"Request body is too large"}"#),
            "{resp}"
        );
    }

    /// One POST of `body` to `addr` on a fresh connection; the whole answer as text.
    async fn post_once(addr: std::net::SocketAddr, body: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(body).await.unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
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
