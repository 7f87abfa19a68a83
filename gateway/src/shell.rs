//! The web UI's shell (`web/shell`), embedded at compile time (see `build.rs` and
//! [`ui_assets`]) and answered by the gateway itself: its page (`index.html`, revalidated on
//! every load) at `/` and at every path the shell's router owns, its files under
//! `/ui/shell/<hash>/` (immutable). The micro-frontends are not here: each is served by the
//! service that owns it and loaded by the shell at run time.

use http::Method;
use ui_assets::{Area, Reply, SECURITY_HEADERS};

use crate::error::body;

/// The embedded shell.
pub static SHELL: Area = ui_assets::area!("shell");

/// The answer to a [`crate::routing::Route::ShellPage`] request.
pub fn page(method: &Method, if_none_match: Option<&str>) -> Reply {
    if !readable(method) {
        return method_not_allowed();
    }
    SHELL.serve_page("index.html", if_none_match)
}

/// The answer to a [`crate::routing::Route::ShellFile`] request for `/ui/shell/<rest>`.
pub fn file(method: &Method, rest: &str, if_none_match: Option<&str>) -> Reply {
    if !readable(method) {
        return method_not_allowed();
    }
    SHELL.serve(rest, if_none_match)
}

fn readable(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

fn method_not_allowed() -> Reply {
    let mut headers = vec![("content-type", "application/json"), ("allow", "GET, HEAD")];
    headers.extend_from_slice(&SECURITY_HEADERS);
    Reply {
        status: 405,
        headers,
        body: body::METHOD_NOT_ALLOWED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_current_hashed_files() {
        let reply = page(&Method::GET, None);
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(reply.header("cache-control"), Some(ui_assets::REVALIDATE));
        let html = std::str::from_utf8(reply.body).unwrap();
        let base = SHELL.base();
        assert!(html.contains(&format!("src=\"{base}shell.js\"")), "{html}");
        assert!(
            html.contains(&format!("href=\"{base}shell.css\"")),
            "{html}"
        );
        assert!(!html.contains(ui_assets::BASE_TOKEN));
        // What the page names is there, under that hash.
        let script = file(&Method::GET, &format!("{}/shell.js", SHELL.hash), None);
        assert_eq!(script.status, 200);
        assert_eq!(script.header("cache-control"), Some(ui_assets::IMMUTABLE));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(page(&Method::GET, None).body).unwrap();
        // Every script is an external module; nothing the policy would refuse.
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(tag.contains(" src=\""), "inline script: {tag}");
        }
        for forbidden in [
            "<style",
            " style=\"",
            " onclick=",
            " onload=",
            "javascript:",
        ] {
            assert!(!html.contains(forbidden), "{forbidden}");
        }
    }

    #[test]
    fn only_get_and_head_read_the_ui() {
        assert_eq!(page(&Method::HEAD, None).status, 200);
        let refused = page(&Method::POST, None);
        assert_eq!(refused.status, 405);
        assert_eq!(refused.header("allow"), Some("GET, HEAD"));
        assert_eq!(
            refused.header("content-security-policy"),
            Some(ui_assets::CONTENT_SECURITY_POLICY)
        );
        assert_eq!(file(&Method::DELETE, "manifest.json", None).status, 405);
        assert_eq!(file(&Method::GET, "manifest.json", None).status, 200);
        assert_eq!(file(&Method::GET, "nope.js", None).status, 404);
    }
}
