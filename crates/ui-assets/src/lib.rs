//! A web directory (one area of the UI: the shell, or a micro-frontend) embedded in a binary at
//! compile time and served under `/ui/<area>/`:
//!
//! - `GET /ui/<area>/manifest.json` — `{"area", "hash", "entry", "styles", "modules"}` with
//!   the hashed URLs of the entry module, the stylesheets and the other modules
//!   (`Cache-Control: no-cache`, `ETag`): what the shell reads at run time to load the area;
//! - `GET /ui/<area>/<hash>/<path>` — the files, under the content hash of the whole directory
//!   (`Cache-Control: public, max-age=31536000, immutable`): a new build of any file is a new
//!   hash, so nothing stale is ever served from a cache, and nothing fresh is ever refetched;
//! - pages (`.html`) also without the hash (`no-cache`), for a server that answers a document
//!   at a fixed URL (the shell's `index.html` at `/`). In an HTML file, `__UI_BASE__` is
//!   replaced at build time by `/ui/<area>/<hash>/`, so a page names its hashed files.
//!
//! Every answer carries the UI's security headers ([`SECURITY_HEADERS`]: the
//! Content-Security-Policy without `unsafe-inline` or `unsafe-eval`, `nosniff`, the referrer
//! policy) and is a plain [`Reply`] (status, headers, body bytes): the crate knows no HTTP
//! server, so the Pingora gateway and the axum services serve the same tables. The axum glue
//! is [`axum::router`] (feature `axum`).
//!
//! Adding an area to a crate (feature `build` for the build script):
//!
//! ```text
//! # Cargo.toml
//! [dependencies]       ui-assets = { workspace = true }            # + features = ["axum"]
//! [build-dependencies] ui-assets = { workspace = true, features = ["build"] }
//! // build.rs
//! fn main() { ui_assets::build::area("catalogue", "web/catalogue"); }
//! // anywhere in the crate
//! pub static UI: ui_assets::Area = ui_assets::area!("catalogue");
//! ```

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "build")]
pub mod build;
pub mod session;

/// The headers every answer about the UI carries. The policy allows scripts, styles, fonts
/// and connections from this origin only (no inline script or style, no `eval`), images from
/// this origin and `data:` URLs, no plugins, no `<base>`, no framing, forms posting here only.
pub const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// The UI's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// `Cache-Control` of a file under its content hash: cached for a year, never revalidated.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of what lives at a fixed URL (the manifest, pages): revalidated every
/// time (cheaply, with `ETag`).
pub const REVALIDATE: &str = "no-cache";

/// The body of a 404.
const NOT_FOUND: &[u8] = br#"{"detail":"Not Found"}"#;

/// The token an HTML file uses for its area's hashed base path (`/ui/<area>/<hash>/`).
pub const BASE_TOKEN: &str = "__UI_BASE__";

/// One embedded area: its files, their content hash and its manifest. Built by
/// [`area!`] from the tables the build script generated.
#[derive(Debug)]
pub struct Area {
    /// The area's name, the `<area>` of `/ui/<area>/`.
    pub name: &'static str,
    /// The content hash of every file of the area (16 hex digits of a SHA-256).
    pub hash: &'static str,
    /// `"<hash>"`, quoted: the manifest's entity tag.
    pub etag: &'static str,
    /// The manifest (JSON).
    pub manifest: &'static str,
    /// Every file, sorted by path.
    pub files: &'static [File],
}

/// One embedded file.
#[derive(Debug)]
pub struct File {
    /// Its path in the area's directory, `/`-separated (`index.js`, `icons/app.svg`).
    pub path: &'static str,
    pub content_type: &'static str,
    /// The quoted content hash of this file alone.
    pub etag: &'static str,
    pub bytes: &'static [u8],
}

/// An answer: what a server writes. `Content-Length` is the server's to add (the body's
/// length, also for `HEAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: &'static [u8],
}

impl Reply {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&'static str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn new(status: u16, headers: &[(&'static str, &'static str)], body: &'static [u8]) -> Self {
        let mut all = Vec::with_capacity(headers.len() + SECURITY_HEADERS.len());
        all.extend_from_slice(headers);
        all.extend_from_slice(&SECURITY_HEADERS);
        Self {
            status,
            headers: all,
            body,
        }
    }

    fn not_found() -> Self {
        Self::new(
            404,
            &[
                ("content-type", "application/json"),
                ("cache-control", REVALIDATE),
            ],
            NOT_FOUND,
        )
    }

    /// 200 with the body, or 304 when the client's copy (`If-None-Match`) is current.
    fn entity(
        etag: &'static str,
        content_type: &'static str,
        cache: &'static str,
        body: &'static [u8],
        if_none_match: Option<&str>,
    ) -> Self {
        if if_none_match.is_some_and(|header| etag_matches(header, etag)) {
            return Self::new(304, &[("etag", etag), ("cache-control", cache)], b"");
        }
        Self::new(
            200,
            &[
                ("content-type", content_type),
                ("cache-control", cache),
                ("etag", etag),
            ],
            body,
        )
    }
}

impl Area {
    /// The manifest (JSON): `{"area", "hash", "entry", "styles", "modules"}`.
    pub fn manifest_json(&self) -> &'static str {
        self.manifest
    }

    /// The file at `path` under the content hash `hash`; `None` for any other hash (an older
    /// or newer build: the client reloads the manifest).
    pub fn file(&self, hash: &str, path: &str) -> Option<&'static File> {
        if hash != self.hash {
            return None;
        }
        self.page(path)
    }

    /// The file at `path`, whatever the hash.
    pub fn page(&self, path: &str) -> Option<&'static File> {
        let files: &'static [File] = self.files;
        files
            .binary_search_by(|f| f.path.cmp(path))
            .ok()
            .map(|i| &files[i])
    }

    /// The answer for `/ui/<area>/<rest>`: the manifest, a file under the current hash, or
    /// 404. `if_none_match` is the request's `If-None-Match` header.
    pub fn serve(&self, rest: &str, if_none_match: Option<&str>) -> Reply {
        if rest == "manifest.json" {
            return Reply::entity(
                self.etag,
                "application/json",
                REVALIDATE,
                self.manifest.as_bytes(),
                if_none_match,
            );
        }
        let Some((hash, path)) = rest.split_once('/') else {
            return Reply::not_found();
        };
        match self.file(hash, path) {
            Some(file) => Reply::entity(
                file.etag,
                file.content_type,
                IMMUTABLE,
                file.bytes,
                if_none_match,
            ),
            None => Reply::not_found(),
        }
    }

    /// The answer for a page served at a fixed URL (e.g. `index.html` at `/`): revalidated
    /// on every use, so a new build is picked up at once. Only `.html` files are pages.
    pub fn serve_page(&self, path: &str, if_none_match: Option<&str>) -> Reply {
        match self.page(path).filter(|f| f.path.ends_with(".html")) {
            Some(file) => Reply::entity(
                file.etag,
                file.content_type,
                REVALIDATE,
                file.bytes,
                if_none_match,
            ),
            None => Reply::not_found(),
        }
    }

    /// `/ui/<area>/<hash>/`: where the area's files are.
    pub fn base(&self) -> String {
        format!("/ui/{}/{}/", self.name, self.hash)
    }
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, RFC 9110 §13.1.2).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// The [`Area`] named `name` that the build script generated with
/// [`build::area`](crate::build::area): `static UI: Area = ui_assets::area!("shell");`.
#[macro_export]
macro_rules! area {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/ui_area_", $name, ".rs"))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    static AREA: Area = Area {
        name: "demo",
        hash: "0123456789abcdef",
        etag: "\"0123456789abcdef\"",
        manifest: r#"{"area":"demo"}"#,
        files: &[
            File {
                path: "demo.css",
                content_type: "text/css; charset=utf-8",
                etag: "\"c55\"",
                bytes: b"p{}",
            },
            File {
                path: "index.html",
                content_type: "text/html; charset=utf-8",
                etag: "\"html\"",
                bytes: b"<!doctype html>",
            },
            File {
                path: "index.js",
                content_type: "text/javascript; charset=utf-8",
                etag: "\"j5\"",
                bytes: b"export {}",
            },
            File {
                path: "sub/x.js",
                content_type: "text/javascript; charset=utf-8",
                etag: "\"x\"",
                bytes: b"1",
            },
        ],
    };

    fn has_security_headers(reply: &Reply) {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(reply.header(name), Some(value), "{name}");
        }
    }

    #[test]
    fn the_manifest_is_revalidated() {
        let reply = AREA.serve("manifest.json", None);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, br#"{"area":"demo"}"#);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        assert_eq!(reply.header("etag"), Some("\"0123456789abcdef\""));
        has_security_headers(&reply);
        let again = AREA.serve("manifest.json", Some("\"0123456789abcdef\""));
        assert_eq!((again.status, again.body), (304, &b""[..]));
        assert_eq!(again.header("etag"), Some("\"0123456789abcdef\""));
        has_security_headers(&again);
    }

    #[test]
    fn files_under_the_current_hash_are_immutable() {
        let reply = AREA.serve("0123456789abcdef/index.js", None);
        assert_eq!((reply.status, reply.body), (200, &b"export {}"[..]));
        assert_eq!(
            reply.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(reply.header("cache-control"), Some(IMMUTABLE));
        assert_eq!(reply.header("etag"), Some("\"j5\""));
        has_security_headers(&reply);
        assert_eq!(AREA.serve("0123456789abcdef/sub/x.js", None).body, b"1");
        assert_eq!(
            AREA.serve("0123456789abcdef/index.js", Some("W/\"j5\""))
                .status,
            304
        );
    }

    #[test]
    fn anything_else_is_a_json_404() {
        for rest in [
            "",
            "manifest.json/",
            "0123456789abcdef",
            "0123456789abcdef/",
            "fedcba9876543210/index.js",
            "0123456789abcdef/missing.js",
            "index.js",
            "0123456789abcdef/sub",
        ] {
            let reply = AREA.serve(rest, None);
            assert_eq!(reply.status, 404, "{rest:?}");
            assert_eq!(reply.body, br#"{"detail":"Not Found"}"#);
            has_security_headers(&reply);
        }
    }

    #[test]
    fn only_html_files_are_pages() {
        let page = AREA.serve_page("index.html", None);
        assert_eq!(page.status, 200);
        assert_eq!(page.header("cache-control"), Some("no-cache"));
        assert_eq!(page.header("etag"), Some("\"html\""));
        assert_eq!(AREA.serve_page("index.html", Some("*")).status, 304);
        assert_eq!(AREA.serve_page("index.js", None).status, 404);
        assert_eq!(AREA.serve_page("nope.html", None).status, 404);
        assert_eq!(AREA.base(), "/ui/demo/0123456789abcdef/");
    }

    #[test]
    fn entity_tags_compare_weakly_in_lists() {
        assert!(etag_matches("\"a\"", "\"a\""));
        assert!(etag_matches("W/\"a\"", "\"a\""));
        assert!(etag_matches("\"b\", W/\"a\"", "\"a\""));
        assert!(etag_matches("*", "\"a\""));
        assert!(!etag_matches("\"b\"", "\"a\""));
        assert!(!etag_matches("a", "\"a\""));
        assert!(!etag_matches("", "\"a\""));
    }

    #[test]
    fn the_policy_allows_nothing_inline() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    }
}
