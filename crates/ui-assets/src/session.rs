//! The web UI's session cookies, in one place for the service that sets them (user-service,
//! `POST`/`DELETE /auth/session`) and the gateway that reads them (`gateway::cookie`).
//!
//! - `platform_session`: the access token; `HttpOnly` (no script reads it), `SameSite=Strict`
//!   (no other site's request carries it), `Path=/`, `Secure` when the deployment says so
//!   (behind TLS), `Max-Age` = the token's lifetime.
//! - `platform_csrf`: a random value the UI's scripts read and echo in `X-CSRF-Token` on
//!   unsafe requests (double submit); not `HttpOnly`, otherwise the same attributes.
//!
//! Clearing sets both to an empty value with `Max-Age=0`.

/// The cookie holding the access token (`HttpOnly`).
pub const SESSION_COOKIE: &str = "platform_session";
/// The cookie holding the CSRF token (readable by the UI's scripts).
pub const CSRF_COOKIE: &str = "platform_csrf";
/// The header the UI echoes the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The two `Set-Cookie` values that open a session: the token, then the CSRF token. Both
/// values are token characters (a JWT, a hex or base64url string): nothing needs quoting.
pub fn open(token: &str, csrf: &str, max_age_secs: u64, secure: bool) -> [String; 2] {
    [
        cookie(SESSION_COOKIE, token, max_age_secs, true, secure),
        cookie(CSRF_COOKIE, csrf, max_age_secs, false, secure),
    ]
}

/// The two `Set-Cookie` values that end a session in the browser.
pub fn clear(secure: bool) -> [String; 2] {
    [
        cookie(SESSION_COOKIE, "", 0, true, secure),
        cookie(CSRF_COOKIE, "", 0, false, secure),
    ]
}

fn cookie(name: &str, value: &str, max_age_secs: u64, http_only: bool, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age_secs}; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_out_of_scripts_reach_and_the_csrf_token_is_not() {
        let [session, csrf] = open("a.b.c", "r4nd0m", 1800, false);
        assert_eq!(
            session,
            "platform_session=a.b.c; Path=/; Max-Age=1800; SameSite=Strict; HttpOnly"
        );
        assert_eq!(
            csrf,
            "platform_csrf=r4nd0m; Path=/; Max-Age=1800; SameSite=Strict"
        );
        let [session, csrf] = open("a.b.c", "r", 60, true);
        assert!(session.ends_with("; HttpOnly; Secure"), "{session}");
        assert!(csrf.ends_with("; SameSite=Strict; Secure"), "{csrf}");
    }

    #[test]
    fn clearing_empties_both_at_once() {
        let [session, csrf] = clear(false);
        assert!(session.starts_with("platform_session=; Path=/; Max-Age=0;"));
        assert!(csrf.starts_with("platform_csrf=; Path=/; Max-Age=0;"));
        assert!(clear(true).iter().all(|c| c.ends_with("; Secure")));
    }
}
