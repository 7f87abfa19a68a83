//! Which requests the gateway forwards (and to which upstream group), answers itself or
//! refuses — decided from the raw request target alone, before any upstream or the session
//! store is touched.
//!
//! The path is never normalised and then forwarded: a path that a normaliser could read two
//! ways (dot segments, encoded slashes or dots, empty segments, backslashes) is refused with
//! 404, so that what the gateway decided about a path (public or protected, which upstream)
//! is exactly what the upstream will route on. A path that is not literally one of the public
//! ones is protected.
//!
//! The web UI lives on the same origin: `/` and the UI's own paths ([`SHELL_ROUTES`]) are the
//! shell's page, which the gateway serves itself (so a deep link or a reload lands in the
//! app), `/ui/shell/…` its files; each micro-frontend's files, `/ui/<area>/…`, come from the
//! service that owns the area. All of them are public: they hold code, never data.

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
    /// The web UI: the shell (served by the gateway) and the areas app-service serves.
    Ui,
    /// The catalogue's area of the web UI, served by book-service.
    UiCatalogue,
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
            Group::Ui => "ui",
            Group::UiCatalogue => "ui-catalogue",
            Group::Other => "other",
        }
    }

    /// The upstream group serving this route group. The gateway's own groups (health, and
    /// unrouted paths) never reach an upstream; they map to app-service only to make the
    /// function total.
    pub fn upstream(self) -> Upstream {
        match self {
            Group::Books | Group::UiCatalogue => Upstream::BookService,
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
    /// The shell's page (`index.html`), answered by the gateway: `/` and every path of
    /// [`SHELL_ROUTES`].
    ShellPage,
    /// A file of the shell (`/ui/shell/<rest>`, see [`shell_file`]), answered by the gateway.
    ShellFile,
    /// Forwarded to the upstream group of `group`; a `public` route needs no token.
    Upstream { group: Group, public: bool },
    /// 404 `{"detail":"Not Found"}` without touching any upstream.
    NotFound,
}

impl Route {
    pub fn group(self) -> Group {
        match self {
            Route::Healthz | Route::Readyz => Group::Health,
            Route::ShellPage | Route::ShellFile => Group::Ui,
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

/// The first path segments the shell's router owns (`/catalogue/42`, `/account`, …): the
/// gateway answers them with the shell's page. None of them is an API path; the shell's route
/// table (`web/shell/routes.js`) uses exactly these (a test reads it).
pub const SHELL_ROUTES: [&str; 8] = [
    "login",
    "register",
    "profile",
    "members",
    "catalogue",
    "account",
    "desk",
    "company",
];

/// The areas of the web UI other than the shell, with the route group that serves each.
const UI_AREAS: [(&str, Group); 4] = [
    ("catalogue", Group::UiCatalogue),
    ("auth", Group::Ui),
    ("account", Group::Ui),
    ("companies", Group::Ui),
];

/// Routes a request: [`route`], except that `/auth/session` is public only to open a session
/// (POST, the UI's login); ending it (DELETE) needs the session's credential.
pub fn route_for(method: &http::Method, target: &[u8]) -> Route {
    let decision = route(target);
    if matches!(path_of(target), b"/auth/session" | b"/auth/session/")
        && method != http::Method::POST
    {
        return Route::Upstream {
            group: Group::Auth,
            public: false,
        };
    }
    decision
}

/// The `<rest>` of a [`Route::ShellFile`] target `/ui/shell/<rest>` (empty for any other).
pub fn shell_file(target: &[u8]) -> &str {
    path_of(target)
        .strip_prefix(b"/ui/shell/")
        .and_then(|rest| std::str::from_utf8(rest).ok())
        .unwrap_or_default()
}

/// Routes a raw request target (`/path?query`, as received on the wire), whatever the method
/// (see [`route_for`] for the one path where the method matters).
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
    if path == "/" {
        return Route::ShellPage;
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
        "ui" => return ui_route(tail),
        page if SHELL_ROUTES.contains(&page) => return Route::ShellPage,
        _ => return Route::NotFound,
    };
    let public = match group {
        Group::Docs => true,
        Group::Auth => matches!(
            tail,
            "/register"
                | "/register/"
                | "/login"
                | "/login/"
                | "/token"
                | "/token/"
                | "/session"
                | "/session/"
        ),
        _ => false,
    };
    Route::Upstream { group, public }
}

/// `/ui/<area>/<rest>` (the `tail` after `/ui`): the shell's files, or an area's from its
/// service; nothing without a `<rest>`.
fn ui_route(tail: &str) -> Route {
    let Some((area, rest)) = tail.strip_prefix('/').and_then(|t| t.split_once('/')) else {
        return Route::NotFound;
    };
    if rest.is_empty() {
        return Route::NotFound;
    }
    if area == "shell" {
        return Route::ShellFile;
    }
    match UI_AREAS.iter().find(|(name, _)| *name == area) {
        Some(&(_, group)) => Route::Upstream {
            group,
            public: true,
        },
        None => Route::NotFound,
    }
}

/// True for the requests that end the caller's session (`POST /auth/logout`, and the UI's
/// `DELETE /auth/session`), whose success the gateway acts on by forgetting that session at
/// once.
pub fn ends_session(method: &http::Method, target: &[u8]) -> bool {
    let path = path_of(target);
    (method == http::Method::POST && matches!(path, b"/auth/logout" | b"/auth/logout/"))
        || (method == http::Method::DELETE && matches!(path, b"/auth/session" | b"/auth/session/"))
}

/// True when `path` can be read only one way: absolute, printable ASCII, no backslash, no
/// `.`/`..`/empty segment (a single trailing slash is fine), no `..` anywhere, and no
/// percent-encoding of a slash, backslash, dot, percent sign or NUL (nor a malformed escape).
///
/// `..` inside a segment is refused too: some readers take `..;x` (path parameters cut off,
/// as Tomcat and Spring do) or `...` (trailing dots trimmed, as Windows does) for `..`, which
/// would climb out of a public prefix (`/docs/..;/auth/me`). No path of the API has one.
fn is_unambiguous(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') || path.windows(2).any(|w| w == b"..") {
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
        return true; // "/" itself: unambiguous (the shell's page)
    }
    let segments = segments.strip_suffix(b"/").unwrap_or(segments);
    segments
        .split(|&b| b == b'/')
        .all(|s| !s.is_empty() && s != b".")
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
        assert!(ends_session(&Method::DELETE, b"/auth/session"));
        assert!(ends_session(&Method::DELETE, b"/auth/session/"));
        assert!(!ends_session(&Method::POST, b"/auth/session"));
        assert!(!ends_session(&Method::DELETE, b"/auth/logout"));
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

    /// Found by fuzzing (docs/fuzzing.md, finding 2): segments that are not `..` but that
    /// some readers take for it were routed, public ones included.
    #[test]
    fn dot_dot_inside_a_segment_is_refused() {
        for p in [
            "/docs/..;/auth/me",
            "/docs/..%3b/auth/me",
            "/docs/.../auth/me",
            "/docs/%3f2..",
            "/auth/register/..;/me",
            "/books/a..b",
        ] {
            assert_eq!(route(p.as_bytes()), Route::NotFound, "{p}");
        }
        // A single dot inside a segment is an ordinary character.
        assert_eq!(
            route(b"/docs/swagger-ui.css"),
            Route::Upstream {
                group: Group::Docs,
                public: true
            }
        );
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
    fn the_shell_page_answers_the_root_and_the_ui_paths() {
        for p in [
            "/",
            "/?next=/account",
            "/login",
            "/login?next=%2Faccount",
            "/register/",
            "/profile",
            "/members",
            "/catalogue",
            "/catalogue/",
            "/catalogue/42",
            "/catalogue/new",
            "/catalogue?q=germinal",
            "/account",
            "/account/notifications",
            "/desk/7",
            "/company",
            "/company/1008600038413",
        ] {
            assert_eq!(route(p.as_bytes()), Route::ShellPage, "{p}");
            assert_eq!(route(p.as_bytes()).group(), Group::Ui, "{p}");
        }
        // API paths stay the API's; look-alikes and traversal are nobody's.
        assert_eq!(
            route(b"/companies/1008600038413"),
            protected(Group::Companies)
        );
        assert_eq!(route(b"/users/"), protected(Group::Users));
        for p in [
            "/catalogues",
            "/Catalogue",
            "/catalogue/../auth/me",
            "/catalogue//42",
            "/index.html",
            "//",
        ] {
            assert_eq!(route(p.as_bytes()), Route::NotFound, "{p}");
        }
    }

    #[test]
    fn ui_files_are_public_and_go_to_the_service_owning_the_area() {
        assert_eq!(route(b"/ui/shell/0123/shell.js"), Route::ShellFile);
        assert_eq!(route(b"/ui/shell/manifest.json"), Route::ShellFile);
        assert_eq!(shell_file(b"/ui/shell/0123/shell.js?v=1"), "0123/shell.js");
        assert_eq!(shell_file(b"/ui/shell/manifest.json"), "manifest.json");
        assert_eq!(shell_file(b"/auth/me"), "");
        let catalogue = public(Group::UiCatalogue);
        assert_eq!(route(b"/ui/catalogue/manifest.json"), catalogue);
        assert_eq!(route(b"/ui/catalogue/abc/index.js"), catalogue);
        assert_eq!(Group::UiCatalogue.upstream(), Upstream::BookService);
        for area in ["auth", "account", "companies"] {
            let p = format!("/ui/{area}/manifest.json");
            assert_eq!(route(p.as_bytes()), public(Group::Ui), "{p}");
        }
        assert_eq!(Group::Ui.upstream(), Upstream::AppService);
        for p in [
            "/ui",
            "/ui/",
            "/ui/shell",
            "/ui/shell/",
            "/ui/catalogue",
            "/ui/catalogue/",
            "/ui/unknown/manifest.json",
            "/ui/shell/../../auth/me",
            "/ui/catalogue/%2e%2e/books/",
            "/ui//shell/x.js",
        ] {
            assert_eq!(route(p.as_bytes()), Route::NotFound, "{p}");
        }
    }

    #[test]
    fn a_session_is_opened_without_a_credential_and_ended_with_one() {
        use http::Method;
        let open = route_for(&Method::POST, b"/auth/session");
        assert_eq!(open, public(Group::Auth));
        assert_eq!(
            route_for(&Method::POST, b"/auth/session/"),
            public(Group::Auth)
        );
        for method in [Method::DELETE, Method::GET, Method::PUT] {
            assert_eq!(
                route_for(&method, b"/auth/session"),
                protected(Group::Auth),
                "{method}"
            );
        }
        assert_eq!(
            route_for(&Method::DELETE, b"/auth/session/?x=1"),
            protected(Group::Auth)
        );
        // Every other path routes as `route` says, whatever the method.
        assert_eq!(
            route_for(&Method::DELETE, b"/holds/3"),
            protected(Group::Holds)
        );
        assert_eq!(route_for(&Method::GET, b"/catalogue"), Route::ShellPage);
        assert_eq!(
            route_for(&Method::POST, b"/auth/login"),
            public(Group::Auth)
        );
    }

    #[test]
    fn the_shell_router_and_the_gateway_agree_on_the_ui_paths() {
        // Every `path: '/…'` of the shell's route table starts with a segment the gateway
        // serves the page for, and every such segment is used.
        let table = include_str!("../web/shell/routes.js");
        let mut used = std::collections::HashSet::new();
        for (_, rest) in table
            .match_indices("path: '/")
            .map(|(i, _)| table.split_at(i + 8))
        {
            let path = &rest[..rest.find('\'').expect("a closing quote")];
            let first = path.split('/').next().unwrap_or_default();
            if !first.is_empty() {
                assert!(
                    SHELL_ROUTES.contains(&first),
                    "{path}: not served by the gateway"
                );
                used.insert(first);
            }
        }
        for segment in SHELL_ROUTES {
            assert!(
                used.contains(segment),
                "/{segment} is in no route of the shell"
            );
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
