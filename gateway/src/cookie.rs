//! The browser session: which credential authenticates a protected request, and whether a
//! request authenticated by a cookie passes the CSRF check.
//!
//! The web UI never holds its token: user-service sets it in the `platform_session` cookie
//! (`HttpOnly; SameSite=Strict`), and a second, script-readable cookie `platform_csrf` with a
//! random value. A protected request that carries no `Authorization` header but the session
//! cookie is checked with the cookie's token exactly like a bearer token; the upstream then
//! gets `Authorization: Bearer <token>` and no `Cookie` header, so every service keeps
//! verifying bearer tokens only.
//!
//! A cookie is ambient — the browser attaches it to requests that another site triggers — so
//! an unsafe method (anything but GET, HEAD, OPTIONS, TRACE) authenticated by it must also
//! prove it comes from the UI: an `X-CSRF-Token` header equal to the `platform_csrf` cookie
//! (double submit; another site can neither read the cookie nor set the header). The
//! comparison is constant-time. A request with an `Authorization` header is a client's own
//! choice, never ambient: cookies play no part in it and no CSRF check applies.
//!
//! A cookie name sent twice (another path or a parent domain setting one too) is ambiguous
//! and counts as absent; an empty value (a cookie being cleared) likewise.

use http::{header, HeaderMap, Method};
use subtle::ConstantTimeEq;

/// The cookie names and the CSRF header, shared with user-service, which sets the cookies.
pub use ui_assets::session::{CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};

/// What authenticates a protected request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// The `Authorization` header as sent (or none: then there is no credential at all).
    Header(Option<&'a [u8]>),
    /// The session cookie's token, and the verdict of the CSRF check.
    Cookie { token: &'a str, csrf: Csrf },
}

/// The CSRF check of a cookie-authenticated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csrf {
    /// A safe method: nothing to check.
    NotNeeded,
    Passed,
    /// Missing or different header, or no (or an ambiguous) CSRF cookie.
    Failed,
}

/// The credential of a request: its `Authorization` header when it has one, else its
/// session cookie when it has one, else none.
pub fn credentials<'a>(method: &Method, headers: &'a HeaderMap) -> Credentials<'a> {
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        return Credentials::Header(Some(authorization.as_bytes()));
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Credentials::Header(None);
    };
    let csrf = if is_safe(method) {
        Csrf::NotNeeded
    } else if csrf_matches(headers) {
        Csrf::Passed
    } else {
        Csrf::Failed
    };
    Credentials::Cookie { token, csrf }
}

/// Methods that must not change anything, and so need no CSRF proof.
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// One `X-CSRF-Token` header, equal (in constant time) to the one CSRF cookie.
fn csrf_matches(headers: &HeaderMap) -> bool {
    let Some(expected) = cookie(headers, CSRF_COOKIE) else {
        return false;
    };
    let mut sent = headers.get_all(CSRF_HEADER).iter();
    let (Some(sent), None) = (sent.next(), sent.next()) else {
        return false;
    };
    bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// The value of the cookie `name` when it is sent exactly once and is not empty. Every
/// `Cookie` header counts (HTTP/2 clients may split them).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        // Cookie values are visible ASCII; a header that is not is no cookie of ours.
        let Ok(value) = value.to_str() else {
            continue;
        };
        for pair in value.split(';') {
            let Some((key, val)) = pair.trim().split_once('=') else {
                continue;
            };
            if key == name {
                if found.is_some() {
                    return None;
                }
                found = Some(val);
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn cookie_with(csrf: Csrf) -> Credentials<'static> {
        Credentials::Cookie {
            token: "tok.en.x",
            csrf,
        }
    }

    #[test]
    fn the_authorization_header_wins_and_needs_no_csrf_proof() {
        let h = headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "platform_session=tok.en.x"),
        ]);
        assert_eq!(
            credentials(&Method::POST, &h),
            Credentials::Header(Some(&b"Bearer abc"[..]))
        );
        // Even a malformed header is the client's choice: the token check refuses it.
        let h = headers(&[
            ("authorization", "Basic x"),
            ("cookie", "platform_session=t"),
        ]);
        assert_eq!(
            credentials(&Method::GET, &h),
            Credentials::Header(Some(&b"Basic x"[..]))
        );
    }

    #[test]
    fn without_either_there_is_no_credential() {
        assert_eq!(
            credentials(&Method::GET, &HeaderMap::new()),
            Credentials::Header(None)
        );
        let h = headers(&[("cookie", "theme=dark; platform_csrf=abc")]);
        assert_eq!(credentials(&Method::POST, &h), Credentials::Header(None));
    }

    #[test]
    fn safe_methods_use_the_cookie_without_a_csrf_check() {
        let h = headers(&[("cookie", "theme=dark; platform_session=tok.en.x")]);
        for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert_eq!(
                credentials(&method, &h),
                cookie_with(Csrf::NotNeeded),
                "{method}"
            );
        }
    }

    #[test]
    fn unsafe_methods_need_the_header_to_equal_the_csrf_cookie() {
        let session = "platform_session=tok.en.x; platform_csrf=s3cr3t";
        let passed = headers(&[("cookie", session), ("x-csrf-token", "s3cr3t")]);
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(
                credentials(&method, &passed),
                cookie_with(Csrf::Passed),
                "{method}"
            );
        }
        for refused in [
            headers(&[("cookie", session)]),
            headers(&[("cookie", session), ("x-csrf-token", "s3cr3T")]),
            headers(&[("cookie", session), ("x-csrf-token", "s3cr3")]),
            headers(&[("cookie", session), ("x-csrf-token", "")]),
            // Sent twice: which one was meant is unknowable.
            headers(&[
                ("cookie", session),
                ("x-csrf-token", "s3cr3t"),
                ("x-csrf-token", "s3cr3t"),
            ]),
            // No CSRF cookie, or an empty one: nothing can match.
            headers(&[
                ("cookie", "platform_session=tok.en.x"),
                ("x-csrf-token", ""),
            ]),
            headers(&[
                ("cookie", "platform_session=tok.en.x; platform_csrf="),
                ("x-csrf-token", ""),
            ]),
            // Two CSRF cookies (one tossed in from a parent domain): ambiguous.
            headers(&[
                ("cookie", "platform_session=tok.en.x; platform_csrf=s3cr3t"),
                ("cookie", "platform_csrf=evil"),
                ("x-csrf-token", "s3cr3t"),
            ]),
        ] {
            assert_eq!(
                credentials(&Method::POST, &refused),
                cookie_with(Csrf::Failed),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn cookies_are_found_in_every_header_once_and_not_empty() {
        let h = headers(&[
            ("cookie", "a=1;b=2"),
            ("cookie", " platform_session=tok.en.x ; c"),
        ]);
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok.en.x"));
        assert_eq!(cookie(&h, "c"), None, "a name without a value");
        assert_eq!(cookie(&h, "platform"), None, "names match whole");
        let twice = headers(&[("cookie", "platform_session=a; platform_session=b")]);
        assert_eq!(cookie(&twice, SESSION_COOKIE), None);
        assert_eq!(credentials(&Method::GET, &twice), Credentials::Header(None));
        let cleared = headers(&[("cookie", "platform_session=")]);
        assert_eq!(
            credentials(&Method::GET, &cleared),
            Credentials::Header(None)
        );
        let mut binary = HeaderMap::new();
        binary.insert(
            header::COOKIE,
            HeaderValue::from_bytes(b"platform_session=\xff").unwrap(),
        );
        assert_eq!(cookie(&binary, SESSION_COOKIE), None);
    }
}
