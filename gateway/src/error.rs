//! How the gateway fails: [`StartupError`] when it cannot start, and per request the JSON
//! answer for a request that could not be proxied ([`failure_response`]).
//!
//! Every answer the gateway writes itself is JSON in FastAPI's shape, `{"detail": "..."}`,
//! from the fixed bodies in [`body`]: nothing is formatted at request time. The refusals of the
//! auth decision come from [`common::auth::AuthError`], not from here.

use pingora::{Error, ErrorSource, ErrorType};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{var}: cannot listen on {addr}: {source}")]
    Bind {
        var: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] common::config::ConfigError),
    #[error("the gateway did not start serving: {0}")]
    NotServing(String),
}

/// Fixed JSON bodies of the answers the gateway gives itself.
pub mod body {
    pub const NOT_FOUND: &[u8] = br#"{"detail":"Not Found"}"#;
    pub const TOO_LARGE: &[u8] = br#"{"detail":"Request body too large"}"#;
    pub const UNAVAILABLE: &[u8] = br#"{"detail":"Service unavailable"}"#;
    pub const TIMED_OUT: &[u8] = br#"{"detail":"Upstream timed out"}"#;
    pub const BAD_GATEWAY: &[u8] = br#"{"detail":"Bad gateway"}"#;
    pub const CLIENT_TIMEOUT: &[u8] = br#"{"detail":"Request timed out"}"#;
    pub const HEADERS_TOO_LARGE: &[u8] = br#"{"detail":"Request header fields too large"}"#;
    pub const TOO_MANY_CONNECTIONS: &[u8] = br#"{"detail":"Too many connections"}"#;
    pub const BAD_REQUEST: &[u8] = br#"{"detail":"Bad request"}"#;
    pub const INTERNAL: &[u8] = br#"{"detail":"Internal Server Error"}"#;
    pub const CSRF_FAILED: &[u8] = br#"{"detail":"CSRF check failed"}"#;
    pub const METHOD_NOT_ALLOWED: &[u8] = br#"{"detail":"Method Not Allowed"}"#;
}

/// The status and body for a request that could not be proxied; status 0 when the client is
/// gone and nobody is left to answer.
pub fn failure_response(e: &Error) -> (u16, &'static [u8]) {
    match e.etype() {
        ErrorType::HTTPStatus(413) => (413, body::TOO_LARGE),
        ErrorType::HTTPStatus(503) => (503, body::UNAVAILABLE),
        ErrorType::HTTPStatus(400) => (400, body::BAD_REQUEST),
        ErrorType::HTTPStatus(code) if *code >= 500 => (502, body::BAD_GATEWAY),
        ErrorType::HTTPStatus(_) => (400, body::BAD_REQUEST),
        etype => match e.esource() {
            ErrorSource::Upstream => match etype {
                ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
                    (504, body::TIMED_OUT)
                }
                // Nothing accepted the connection: every instance tried is down.
                ErrorType::ConnectRefused | ErrorType::ConnectNoRoute | ErrorType::ConnectError => {
                    (503, body::UNAVAILABLE)
                }
                _ => (502, body::BAD_GATEWAY),
            },
            ErrorSource::Downstream => match etype {
                // The client is gone: there is nobody to answer.
                ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => {
                    (0, body::BAD_REQUEST)
                }
                ErrorType::ReadTimedout => (408, body::CLIENT_TIMEOUT),
                _ => (400, body::BAD_REQUEST),
            },
            ErrorSource::Internal | ErrorSource::Unset => (500, body::INTERNAL),
        },
    }
}

/// A whole HTTP/1.1 response with a JSON body that closes the connection: what the gateway
/// writes on a raw connection, before (or instead of) any request being parsed.
pub fn raw_response(status: u16, reason: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_json_statuses() {
        let up = |t| Error::new_up(t);
        assert_eq!(failure_response(&up(ErrorType::ReadTimedout)).0, 504);
        assert_eq!(failure_response(&up(ErrorType::ConnectTimedout)).0, 504);
        assert_eq!(failure_response(&up(ErrorType::ConnectRefused)).0, 503);
        assert_eq!(failure_response(&up(ErrorType::InvalidHTTPHeader)).0, 502);
        assert_eq!(failure_response(&up(ErrorType::ConnectionClosed)).0, 502);
        assert_eq!(
            failure_response(&Error::explain(ErrorType::HTTPStatus(413), "x")).0,
            413
        );
        assert_eq!(
            failure_response(&Error::explain(ErrorType::HTTPStatus(503), "x")).0,
            503
        );
        assert_eq!(
            failure_response(&Error::new_down(ErrorType::ReadTimedout)).0,
            408
        );
        assert_eq!(
            failure_response(&Error::new_down(ErrorType::ConnectionClosed)).0,
            0
        );
        assert_eq!(
            failure_response(&Error::new_in(ErrorType::InternalError)).0,
            500
        );
        for (_, body) in [
            failure_response(&up(ErrorType::ReadTimedout)),
            failure_response(&up(ErrorType::H1Error)),
        ] {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert!(v["detail"].is_string());
        }
    }

    #[test]
    fn every_fixed_body_is_a_json_detail() {
        for b in [
            body::NOT_FOUND,
            body::TOO_LARGE,
            body::UNAVAILABLE,
            body::TIMED_OUT,
            body::BAD_GATEWAY,
            body::CLIENT_TIMEOUT,
            body::HEADERS_TOO_LARGE,
            body::TOO_MANY_CONNECTIONS,
            body::BAD_REQUEST,
            body::INTERNAL,
            body::CSRF_FAILED,
            body::METHOD_NOT_ALLOWED,
        ] {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
    }

    #[test]
    fn raw_responses_are_complete_and_close() {
        let raw = raw_response(408, "Request Timeout", body::CLIENT_TIMEOUT);
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        assert!(head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert_eq!(body.as_bytes(), body::CLIENT_TIMEOUT);
    }
}
