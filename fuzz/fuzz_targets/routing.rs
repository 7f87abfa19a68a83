//! The gateway's routing decisions (`gateway::routing::route`, `route_for`, `ends_session`
//! and `shell_file`) on raw request targets, as received on the wire.
//!
//! The module is compiled here on its own, from the gateway's source file: it depends on
//! nothing but `http`, and the gateway crate would bring Pingora into this build (a cold
//! fuzz build several minutes longer) for no more coverage of these functions.
//!
//! Invariants, from the module's documentation:
//! - nothing panics, and only the path (before `?` or `#`) decides;
//! - a routed path can be read only one way: absolute, printable ASCII, no backslash, no
//!   `.`/empty segment (but a single trailing slash), no `..` anywhere, every `%` a well-formed
//!   escape of none of `/ \ . %` or NUL;
//! - a path that is not literally one of the public ones is not public: public routes are
//!   `/auth/{register,login,token,session}[/]`, `/openapi.json`, `/docs[/…]` and the UI's
//!   `/ui/<area>/<file>`;
//! - normalising a routed path the ways an upstream or a proxy might (decoding escapes,
//!   backslashes as slashes, dot segments, repeated slashes) keeps its route group, and keeps
//!   a public route the same public route;
//! - the gateway answers `/healthz`, `/readyz`, the shell's page (`/` and the shell router's
//!   first segments) and the shell's files (`/ui/shell/<file>`, whose `<file>` `shell_file`
//!   gives) itself; each group goes to its upstream;
//! - `route_for` is `route` but for `/auth/session`, which is public to POST only;
//! - `ends_session` holds exactly for `POST /auth/logout[/]` and `DELETE /auth/session[/]`,
//!   each a protected route for that method.

#![no_main]

// Items the gateway uses and this target does not would otherwise be reported as dead.
#[path = "../../gateway/src/routing.rs"]
#[allow(dead_code)]
mod routing;

use libfuzzer_sys::fuzz_target;
use routing::{ends_session, route, route_for, shell_file, Group, Route, Upstream, SHELL_ROUTES};

const PUBLIC_AUTH: [&[u8]; 8] = [
    b"/auth/register",
    b"/auth/register/",
    b"/auth/login",
    b"/auth/login/",
    b"/auth/token",
    b"/auth/token/",
    b"/auth/session",
    b"/auth/session/",
];

const METHODS: [http::Method; 5] = [
    http::Method::GET,
    http::Method::POST,
    http::Method::PUT,
    http::Method::DELETE,
    http::Method::PATCH,
];

fn path_of(target: &[u8]) -> &[u8] {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    &target[..end]
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The path rules of a routed path, written again from the module documentation.
fn assert_unambiguous(path: &[u8]) {
    let shown = String::from_utf8_lossy(path);
    assert_eq!(path.first(), Some(&b'/'), "{shown}");
    assert!(
        path.iter()
            .all(|&b| (0x21..0x7f).contains(&b) && b != b'\\'),
        "{shown}"
    );
    for (i, _) in path.iter().enumerate().filter(|(_, &b)| b == b'%') {
        let decoded = match (
            path.get(i + 1).and_then(|&h| hex(h)),
            path.get(i + 2).and_then(|&l| hex(l)),
        ) {
            (Some(h), Some(l)) => h << 4 | l,
            _ => panic!("malformed escape routed: {shown}"),
        };
        assert!(
            !matches!(decoded, b'/' | b'\\' | b'.' | b'%' | 0),
            "encoded separator, dot, percent or NUL routed: {shown}"
        );
    }
    assert!(!path.windows(2).any(|w| w == b".."), "'..' routed: {shown}");
    let inner = path[1..].strip_suffix(b"/").unwrap_or(&path[1..]);
    if !inner.is_empty() {
        for segment in inner.split(|&b| b == b'/') {
            assert!(
                !segment.is_empty() && segment != b".",
                "empty or dot segment routed: {shown}"
            );
        }
    }
}

/// What an upstream or another proxy might make of `path`: escapes of printable characters
/// decoded once, backslashes read as slashes, repeated slashes merged and dot segments
/// resolved (RFC 3986 §5.2.4). Escapes of other bytes stay as they are, and so do escaped
/// `?` and `#`: decoded after the query was split off, they are path characters, which
/// `route` would read as the query's start.
fn normalise(path: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' {
            if let (Some(h), Some(l)) = (
                path.get(i + 1).and_then(|&h| hex(h)),
                path.get(i + 2).and_then(|&l| hex(l)),
            ) {
                let b = h << 4 | l;
                if (0x21..0x7f).contains(&b) && b != b'?' && b != b'#' {
                    decoded.push(if b == b'\\' { b'/' } else { b });
                    i += 3;
                    continue;
                }
            }
        }
        decoded.push(if path[i] == b'\\' { b'/' } else { path[i] });
        i += 1;
    }
    let trailing = decoded.ends_with(b"/");
    let mut out: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut normal = Vec::with_capacity(decoded.len());
    for s in &out {
        normal.push(b'/');
        normal.extend_from_slice(s);
    }
    if trailing || out.is_empty() {
        normal.push(b'/');
    }
    normal
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, target)) = data.split_first() else {
        return;
    };
    let method = &METHODS[usize::from(selector) % METHODS.len()];
    let decision = route(target);
    let path = path_of(target);
    let shown = String::from_utf8_lossy(target);

    // Only the path decides: the query (and fragment) play no part.
    assert_eq!(route(path), decision, "{shown}");
    let mut with_query = path.to_vec();
    with_query.extend_from_slice(b"?next=/auth/login&x=..%2f");
    assert_eq!(route(&with_query), decision, "{shown}");

    if decision != Route::NotFound {
        assert_unambiguous(path);
    }
    let segments: Vec<&[u8]> = path
        .get(1..)
        .unwrap_or_default()
        .split(|&b| b == b'/')
        .collect();
    let first = segments[0];
    assert_eq!(
        decision == Route::Healthz,
        matches!(path, b"/healthz" | b"/healthz/"),
        "{shown}"
    );
    assert_eq!(
        decision == Route::Readyz,
        matches!(path, b"/readyz" | b"/readyz/"),
        "{shown}"
    );
    match decision {
        Route::ShellPage => assert!(
            path == b"/" || SHELL_ROUTES.iter().any(|r| r.as_bytes() == first),
            "{shown}"
        ),
        Route::ShellFile => {
            let file = shell_file(target);
            assert!(!file.is_empty(), "{shown}");
            assert_eq!(
                path.strip_prefix(b"/ui/shell/"),
                Some(file.as_bytes()),
                "{shown}"
            );
        }
        _ => {}
    }
    if !path.starts_with(b"/ui/shell/") {
        assert_eq!(shell_file(target), "", "{shown}");
    }
    assert_eq!(
        decision.group(),
        match decision {
            Route::Healthz | Route::Readyz => Group::Health,
            Route::ShellPage | Route::ShellFile => Group::Ui,
            Route::Upstream { group, .. } => group,
            Route::NotFound => Group::Other,
        }
    );

    if let Route::Upstream { group, public } = decision {
        assert!(!matches!(group, Group::Health | Group::Other), "{shown}");
        let expected_upstream = match group {
            Group::Books | Group::UiCatalogue => Upstream::BookService,
            Group::Borrowings => Upstream::Borrowings,
            _ => Upstream::AppService,
        };
        assert_eq!(group.upstream(), expected_upstream);
        // The first segment names the group literally.
        let expected_first = match group {
            Group::Borrowings => "user",
            Group::Ui | Group::UiCatalogue => "ui",
            Group::Docs if path == b"/openapi.json" => "openapi.json",
            g => g.as_str(),
        };
        assert_eq!(first, expected_first.as_bytes(), "{shown}");
        let ui_file = first == b"ui" && segments.len() >= 3 && segments[1] != b"shell";
        if public {
            let literally_public = PUBLIC_AUTH.contains(&path)
                || path == b"/openapi.json"
                || path == b"/docs"
                || path.starts_with(b"/docs/")
                || ui_file;
            assert!(literally_public, "public but not a public path: {shown}");
        } else {
            assert!(
                !PUBLIC_AUTH.contains(&path)
                    && !matches!(group, Group::Docs | Group::Ui | Group::UiCatalogue),
                "{shown}"
            );
        }

        let normal = normalise(path);
        let again = route(&normal);
        let shown_normal = String::from_utf8_lossy(&normal);
        if public {
            assert_eq!(again, decision, "{shown} normalises to {shown_normal}");
        } else {
            assert!(
                matches!(again, Route::Upstream { group: g, .. } if g == group),
                "{shown} ({group:?}) normalises to {shown_normal} ({again:?})"
            );
        }
    }

    // The method matters for one path only.
    let for_method = route_for(method, target);
    if matches!(path, b"/auth/session" | b"/auth/session/") && *method != http::Method::POST {
        assert_eq!(
            for_method,
            Route::Upstream {
                group: Group::Auth,
                public: false
            },
            "{shown}"
        );
    } else {
        assert_eq!(for_method, decision, "{shown}");
    }

    let ends = ends_session(method, target);
    assert_eq!(
        ends,
        (*method == http::Method::POST && matches!(path, b"/auth/logout" | b"/auth/logout/"))
            || (*method == http::Method::DELETE
                && matches!(path, b"/auth/session" | b"/auth/session/")),
        "{shown}"
    );
    if ends {
        assert_eq!(
            for_method,
            Route::Upstream {
                group: Group::Auth,
                public: false
            }
        );
    }
});
