//! Which requests the gateway forwards (and to which upstream group), answers itself or
//! refuses — decided from the raw request target alone, before any upstream or the session
//! store is touched.
//!
//! The path is never normalised and then forwarded: a path that a normaliser could read two
//! ways (dot segments, encoded slashes or dots, empty segments, backslashes) is refused with
//! 404, so that what the gateway decided about a path (public or protected, which upstream)
//! is exactly what the upstream will route on. A path that is not literally one of the public
//! ones is protected.

/// The route groups, for metrics (the `route` label) and the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    Auth,
    Scrape,
    Companies,
    Admin,
    Docs,
    Books,
    Borrowings,
    Loans,
    Holds,
    Users,
    Notifications,
    Health,
    /// Not routed (404).
    Other,
}

impl Group {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Auth => "auth",
            Group::Scrape => "scrape",
            Group::Companies => "companies",
            Group::Admin => "admin",
            Group::Docs => "docs",
            Group::Books => "books",
            Group::Borrowings => "borrowings",
            Group::Loans => "loans",
            Group::Holds => "holds",
            Group::Users => "users",
            Group::Notifications => "notifications",
            Group::Health => "health",
            Group::Other => "other",
        }
    }

    /// The upstream group serving this route group. The gateway's own groups (health, and
    /// unrouted paths) never reach an upstream; they map to app-service only to make the
    /// function total.
    pub fn upstream(self) -> Upstream {
        match self {
            Group::Books => Upstream::BookService,
            Group::Borrowings => Upstream::Borrowings,
            _ => Upstream::AppService,
        }
    }
}

/// The upstream groups requests are forwarded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upstream {
    /// app-service instances (`APP_SERVICE_URLS`): everything but the two below.
    AppService,
    /// book-service primary instances, with a backup group (`BOOK_SERVICE_URLS`,
    /// `BOOK_SERVICE_BACKUP_URLS`): `/books/*`.
    BookService,
    /// The get-user-borrowings function (`BORROWINGS_URL`): `/user/borrowings/`.
    Borrowings,
}

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`: answered by the gateway itself (alive).
    Healthz,
    /// `/readyz`: answered by the gateway itself (an app-service instance is healthy, keys
    /// are loaded and the session store answers).
    Readyz,
    /// Forwarded to the upstream group of `group`; a `public` route needs no token.
    Upstream { group: Group, public: bool },
    /// 404 `{"detail":"Not Found"}` without touching any upstream.
    NotFound,
}

impl Route {
    pub fn group(self) -> Group {
        match self {
            Route::Healthz | Route::Readyz => Group::Health,
            Route::Upstream { group, .. } => group,
            Route::NotFound => Group::Other,
        }
    }
}

/// The path of a raw request target (`/path?query`, as received on the wire).
fn path_of(target: &[u8]) -> &[u8] {
    match target.iter().position(|&b| b == b'?' || b == b'#') {
        Some(end) => &target[..end],
        None => target,
    }
}

/// Routes a raw request target (`/path?query`, as received on the wire).
pub fn route(target: &[u8]) -> Route {
    let path = path_of(target);
    if !is_unambiguous(path) {
        return Route::NotFound;
    }
    // `is_unambiguous` guarantees ASCII, so this cannot fail.
    let Ok(path) = std::str::from_utf8(path) else {
        return Route::NotFound;
    };
    if path == "/healthz" || path == "/healthz/" {
        return Route::Healthz;
    }
    if path == "/readyz" || path == "/readyz/" {
        return Route::Readyz;
    }
    if path == "/openapi.json" {
        return Route::Upstream {
            group: Group::Docs,
            public: true,
        };
    }
    let rest = &path[1..];
    let (first, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let group = match first {
        "auth" => Group::Auth,
        "scrape" => Group::Scrape,
        "companies" => Group::Companies,
        "admin" => Group::Admin,
        "docs" => Group::Docs,
        "books" => Group::Books,
        "loans" => Group::Loans,
        "holds" => Group::Holds,
        "users" => Group::Users,
        "notifications" => Group::Notifications,
        // `/user/` holds one resource only: the borrowings function.
        "user" if tail == "/borrowings" || tail.starts_with("/borrowings/") => Group::Borrowings,
        _ => return Route::NotFound,
    };
    let public = match group {
        Group::Docs => true,
        Group::Auth => matches!(
            tail,
            "/register" | "/register/" | "/login" | "/login/" | "/token" | "/token/"
        ),
        _ => false,
    };
    Route::Upstream { group, public }
}

/// True for the request that ends the caller's session (`POST /auth/logout`), whose success
/// the gateway acts on by forgetting that session at once.
pub fn ends_session(method: &http::Method, target: &[u8]) -> bool {
    method == http::Method::POST && matches!(path_of(target), b"/auth/logout" | b"/auth/logout/")
}

/// True when `path` can be read only one way: absolute, printable ASCII, no backslash, no
/// `.`/`..`/empty segment (a single trailing slash is fine), and no percent-encoding of a
/// slash, backslash, dot, percent sign or NUL (nor a malformed escape).
fn is_unambiguous(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if !(0x21..0x7f).contains(&b) || b == b'\\' {
            return false;
        }
        if b == b'%' {
            let (Some(&h), Some(&l)) = (path.get(i + 1), path.get(i + 2)) else {
                return false;
            };
            let (Some(h), Some(l)) = (hex(h), hex(l)) else {
                return false;
            };
            if matches!(h << 4 | l, b'/' | b'\\' | b'.' | b'%' | 0) {
                return false;
            }
            i += 3;
            continue;
        }
        i += 1;
    }
    let segments = &path[1..];
    if segments.is_empty() {
        return true; // "/" itself: unambiguous (and routed nowhere)
    }
    let segments = segments.strip_suffix(b"/").unwrap_or(segments);
    segments
        .split(|&b| b == b'/')
        .all(|s| !s.is_empty() && s != b"." && s != b"..")
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(group: Group) -> Route {
        Route::Upstream {
            group,
            public: true,
        }
    }

    fn protected(group: Group) -> Route {
        Route::Upstream {
            group,
            public: false,
        }
    }

    #[test]
    fn only_a_logout_post_ends_a_session() {
        use http::Method;
        assert!(ends_session(&Method::POST, b"/auth/logout/"));
        assert!(ends_session(&Method::POST, b"/auth/logout?x=1"));
        assert!(ends_session(&Method::POST, b"/auth/logout"));
        assert!(!ends_session(&Method::GET, b"/auth/logout/"));
        assert!(!ends_session(&Method::POST, b"/auth/logout/x"));
        assert!(!ends_session(&Method::POST, b"/auth/me/"));
    }

    #[test]
    fn public_routes_need_no_token() {
        for p in [
            "/auth/register",
            "/auth/register/",
            "/auth/login",
            "/auth/login/",
            "/auth/token",
            "/auth/token/",
        ] {
            assert_eq!(route(p.as_bytes()), public(Group::Auth), "{p}");
        }
        for p in [
            "/docs",
            "/docs/",
            "/docs/swagger-ui.css",
            "/openapi.json",
            "/docs?x=1",
        ] {
            assert_eq!(route(p.as_bytes()), public(Group::Docs), "{p}");
        }
    }

    #[test]
    fn everything_else_routed_is_protected() {
        assert_eq!(route(b"/auth/me"), protected(Group::Auth));
        assert_eq!(route(b"/auth/me/"), protected(Group::Auth));
        assert_eq!(route(b"/auth/logout/"), protected(Group::Auth));
        assert_eq!(route(b"/auth/register/me"), protected(Group::Auth));
        assert_eq!(route(b"/auth/registerx"), protected(Group::Auth));
        assert_eq!(route(b"/auth"), protected(Group::Auth));
        assert_eq!(route(b"/scrape"), protected(Group::Scrape));
        assert_eq!(route(b"/scrape/"), protected(Group::Scrape));
        assert_eq!(route(b"/scrape/jobs/42"), protected(Group::Scrape));
        assert_eq!(
            route(b"/companies/1008600038413"),
            protected(Group::Companies)
        );
        assert_eq!(route(b"/admin/users"), protected(Group::Admin));
        // The query string plays no part in the decision.
        assert_eq!(route(b"/auth/me?next=/auth/login"), protected(Group::Auth));
        // Percent-encoding that is not a separator or a dot is passed on, and is protected.
        assert_eq!(route(b"/auth/%72egister"), protected(Group::Auth));
    }

    #[test]
    fn gateway_answers_healthz_and_unknown_paths() {
        assert_eq!(route(b"/healthz"), Route::Healthz);
        assert_eq!(route(b"/healthz/"), Route::Healthz);
        assert_eq!(route(b"/readyz"), Route::Readyz);
        for p in [
            "/",
            "/unknown",
            "/authx/me",
            "/AUTH/me",
            "/docsx",
            "/openapi.json/x",
            "*",
            "",
        ] {
            assert_eq!(route(p.as_bytes()), Route::NotFound, "{p}");
        }
        assert_eq!(route(b"http://example.com/auth/me"), Route::NotFound);
    }

    #[test]
    fn traversal_cannot_reach_a_protected_route_through_a_public_one() {
        for p in [
            "/auth/register/../me",
            "/auth/register/..",
            "/auth/login/./../me",
            "/docs/../auth/me",
            "/docs/..",
            "/auth/register/%2e%2e/me",
            "/auth/register/%2E%2E/me",
            "/auth/register/.%2e/me",
            "/auth/register%2f..%2fme",
            "/auth/register%2F..%2Fme",
            "/auth/register%5c..%5cme",
            "/auth/register\\..\\me",
            "/auth/register//me",
            "//auth/register",
            "/auth//register",
            "/auth/register%00",
            "/auth/register%252e%252e/me",
            "/auth/register%zz",
            "/auth/register%2",
            "/auth/register/.",
            "/./auth/me",
            "/auth/re gister",
            "/auth/r\u{e9}gister",
        ] {
            assert_eq!(route(p.as_bytes()), Route::NotFound, "{p}");
        }
        // Control bytes and non-ASCII bytes as raw input.
        assert_eq!(route(b"/auth/register\x01"), Route::NotFound);
        assert_eq!(route(b"/auth/register\xff"), Route::NotFound);
    }

    #[test]
    fn library_routes_are_protected_and_go_to_their_upstream() {
        let cases = [
            ("/books", Group::Books),
            ("/books/", Group::Books),
            ("/books/?q=dune&available=true", Group::Books),
            ("/books/42", Group::Books),
            ("/books/42/copies", Group::Books),
            ("/books/unknown/deep/path", Group::Books),
            ("/user/borrowings", Group::Borrowings),
            ("/user/borrowings/", Group::Borrowings),
            ("/user/borrowings/?user_id=3", Group::Borrowings),
            ("/loans/", Group::Loans),
            ("/loans/7/return", Group::Loans),
            ("/loans/?active=true", Group::Loans),
            ("/holds/", Group::Holds),
            ("/holds/3", Group::Holds),
            ("/users/", Group::Users),
            ("/users?cursor=x", Group::Users),
            ("/notifications/", Group::Notifications),
            ("/notifications/stream", Group::Notifications),
        ];
        for (path, group) in cases {
            assert_eq!(route(path.as_bytes()), protected(group), "{path}");
        }
        assert_eq!(Group::Books.upstream(), Upstream::BookService);
        assert_eq!(Group::Borrowings.upstream(), Upstream::Borrowings);
        for g in [
            Group::Loans,
            Group::Holds,
            Group::Users,
            Group::Notifications,
            Group::Auth,
            Group::Admin,
        ] {
            assert_eq!(g.upstream(), Upstream::AppService, "{g:?}");
        }
    }

    #[test]
    fn library_lookalikes_are_not_routed() {
        for p in [
            "/user",
            "/user/",
            "/user/me",
            "/user/borrowingsx",
            "/user/borrowings//",
            "/bookss",
            "/Books/1",
            "/books/../auth/login",
            "/books/%2e%2e/auth/login",
            "/user/borrowings/../../auth/login",
            "/notifications/%2fstream",
            "/loans//1",
        ] {
            assert_eq!(route(p.as_bytes()), Route::NotFound, "{p}");
        }
    }

    #[test]
    fn groups_have_stable_labels() {
        assert_eq!(route(b"/nope").group(), Group::Other);
        assert_eq!(route(b"/healthz").group(), Group::Health);
        assert_eq!(Group::Companies.as_str(), "companies");
        assert_eq!(Group::Borrowings.as_str(), "borrowings");
        assert_eq!(Group::Notifications.as_str(), "notifications");
    }
}
