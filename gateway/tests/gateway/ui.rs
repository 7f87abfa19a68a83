//! The web UI through the gateway: the shell's page and files served by the gateway itself
//! (security headers, caching for revalidated and hashed files), the areas' files from their
//! services (public, with the same policy), and the browser session — a cookie checked like
//! a bearer token, CSRF-checked on unsafe methods, forwarded as `Authorization: Bearer`, the
//! `Cookie` header never forwarded.

use common::kv::Kv;
use gateway::GatewayHandle;
use reqwest::header::HeaderMap;
use serde_json::Value;
use ui_assets::{CONTENT_SECURITY_POLICY, IMMUTABLE, REVALIDATE};

use crate::support::*;

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn has_ui_policy(&self) {
        assert_eq!(
            self.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{}",
            self.body
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("referrer-policy"), Some("same-origin"));
    }
}

async fn fetch(req: reqwest::RequestBuilder) -> Page {
    let resp = req.send().await.expect("gateway answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    Page {
        status,
        headers,
        body,
    }
}

/// The hashed URL of the shell's script, as its page names it.
fn script_of(html: &str) -> String {
    let start = html.find("src=\"/ui/shell/").expect("a shell script") + 5;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

async fn ui_gateway(app: &Upstream, books: &Upstream) -> (GatewayHandle, Kv) {
    let mut config = test_config(&[app]);
    config.book_service = vec![books.url()];
    let kv = Kv::memory("gw-ui:");
    (start(config, kv.clone()).await, kv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_page_is_revalidated_and_carries_the_policy() {
    let (app, books) = (Upstream::start("app"), Upstream::start("books"));
    let (gw, _kv) = ui_gateway(&app, &books).await;

    let page = fetch(client().get(url(&gw, "/"))).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some(REVALIDATE));
    page.has_ui_policy();
    assert!(page.body.contains("<main id=\"main\""), "{}", page.body);
    let etag = page.header("etag").expect("an ETag").to_owned();

    // Deep links and reloads of the UI's own paths get the same page; API paths do not.
    for path in [
        "/login",
        "/catalogue/42",
        "/account/notifications",
        "/company/1008600038413",
        "/catalogue?q=dune",
    ] {
        let deep = fetch(client().get(url(&gw, path))).await;
        assert_eq!(
            (deep.status, deep.body.as_str()),
            (200, page.body.as_str()),
            "{path}"
        );
    }
    let api = fetch(client().get(url(&gw, "/companies/1008600038413"))).await;
    assert_eq!(api.status, 401, "an API path stays the API's");

    // Revalidation: unchanged, nothing to send again.
    let again = fetch(client().get(url(&gw, "/")).header("if-none-match", &etag)).await;
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    again.has_ui_policy();

    let head = fetch(client().head(url(&gw, "/catalogue"))).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(
        head.header("content-length"),
        Some(page.body.len().to_string().as_str())
    );

    let post = fetch(client().post(url(&gw, "/"))).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(app.hits() + books.hits(), 0, "the gateway answered alone");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_files_are_immutable_under_their_hash() {
    let (app, books) = (Upstream::start("app"), Upstream::start("books"));
    let (gw, _kv) = ui_gateway(&app, &books).await;
    let html = fetch(client().get(url(&gw, "/"))).await.body;
    let script = script_of(&html);
    assert!(script.ends_with("/shell.js"), "{script}");

    let js = fetch(client().get(url(&gw, &script))).await;
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control"), Some(IMMUTABLE));
    js.has_ui_policy();
    // The modules it imports are there under the same hash.
    let base = script.trim_end_matches("shell.js");
    for module in [
        "api.js",
        "session.js",
        "events.js",
        "loader.js",
        "routes.js",
        "ui.js",
    ] {
        assert!(js.body.contains(&format!("'./{module}'")), "{module}");
        let file = fetch(client().get(url(&gw, &format!("{base}{module}")))).await;
        assert_eq!(
            (file.status, file.header("cache-control")),
            (200, Some(IMMUTABLE)),
            "{module}"
        );
    }
    let css = fetch(client().get(url(&gw, &format!("{base}shell.css")))).await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    // Another build's hash, or a file that is not there: 404, never a stale copy.
    let stale = fetch(client().get(url(&gw, "/ui/shell/0000000000000000/shell.js"))).await;
    assert_eq!(stale.status, 404);
    assert_eq!(stale.header("cache-control"), Some(REVALIDATE));
    let missing = fetch(client().get(url(&gw, &format!("{base}nope.js")))).await;
    assert_eq!(missing.status, 404);

    let manifest = fetch(client().get(url(&gw, "/ui/shell/manifest.json"))).await;
    assert_eq!(manifest.header("cache-control"), Some(REVALIDATE));
    let manifest: Value = serde_json::from_str(&manifest.body).unwrap();
    assert_eq!(manifest["area"], "shell");
    assert_eq!(
        manifest["styles"][0],
        Value::from(format!("{base}shell.css"))
    );
    assert_eq!(app.hits() + books.hits(), 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn area_files_come_from_their_service_without_a_token_and_with_the_policy() {
    let (app, mut books) = (Upstream::start("app"), Upstream::start("books"));
    let (gw, kv) = ui_gateway(&app, &books).await;
    let cases = [
        ("/ui/catalogue/manifest.json", "books"),
        ("/ui/catalogue/abc/index.js", "books"),
        ("/ui/auth/manifest.json", "app"),
        ("/ui/account/abc/account.css", "app"),
        ("/ui/companies/manifest.json", "app"),
    ];
    for (path, instance) in cases {
        let reply = send(client().get(url(&gw, path))).await;
        assert_eq!((reply.status, reply.instance()), (200, instance), "{path}");
        assert_eq!(reply.body["path"], path, "forwarded unchanged");
        assert_eq!(
            reply.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY),
            "{path}"
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("same-origin"));
    }
    // An API answer gets no UI policy: it is not a document.
    let token = login(&kv, "sid-ui-api").await;
    let api = send(client().get(url(&gw, "/books/")).bearer_auth(&token)).await;
    assert_eq!(api.header("content-security-policy"), None);
    for path in ["/ui/unknown/manifest.json", "/ui/catalogue/", "/ui/shell"] {
        assert_eq!(
            fetch(client().get(url(&gw, path))).await.status,
            404,
            "{path}"
        );
    }
    // The catalogue's service down: a JSON 503 (the shell shows its fallback), same policy;
    // the other areas are still served.
    books.kill().await;
    let down = send(client().get(url(&gw, "/ui/catalogue/manifest.json"))).await;
    assert_eq!(down.status, 503);
    assert_eq!(
        down.header("content-security-policy"),
        Some(CONTENT_SECURITY_POLICY)
    );
    let up = send(client().get(url(&gw, "/ui/account/manifest.json"))).await;
    assert_eq!((up.status, up.instance()), (200, "app"));
    gw.stop().await;
}

/// `Cookie: platform_session=<token>; platform_csrf=<csrf>; theme=dark`.
fn cookies(token: &str, csrf: &str) -> String {
    format!("platform_session={token}; platform_csrf={csrf}; theme=dark")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_session_reaches_the_service_as_a_bearer_token_without_cookies() {
    let (app, books) = (Upstream::start("app"), Upstream::start("books"));
    let (gw, kv) = ui_gateway(&app, &books).await;
    let token = login(&kv, "sid-cookie").await;

    for (path, instance) in [
        ("/loans/?active=true", "app"),
        ("/books/7", "books"),
        ("/auth/me/", "app"),
    ] {
        let reply = send(
            client()
                .get(url(&gw, path))
                .header("cookie", cookies(&token, "c5rf")),
        )
        .await;
        assert_eq!((reply.status, reply.instance()), (200, instance), "{path}");
        assert_eq!(
            reply.upstream_saw("authorization"),
            Some(format!("Bearer {token}").as_str()),
            "{path}"
        );
        assert_eq!(reply.upstream_saw("cookie"), None, "{path}");
    }

    // A cookie whose token is not valid, or whose session ended, is refused like a bearer.
    for bad in ["not.a.jwt", &sign(&claims("sid-gone", 600))] {
        let reply = send(
            client()
                .get(url(&gw, "/loans/"))
                .header("cookie", cookies(bad, "c5rf")),
        )
        .await;
        assert_eq!(reply.status, 401);
        assert!(reply
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer")));
    }
    // A session cookie sent twice is ambiguous: no credential.
    let twice = send(client().get(url(&gw, "/loans/")).header(
        "cookie",
        format!("platform_session={token}; platform_session={token}"),
    ))
    .await;
    assert_eq!(twice.status, 401);
    assert_eq!(app.hits() + books.hits(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_cookie_requests_need_the_csrf_token() {
    let (app, books) = (Upstream::start("app"), Upstream::start("books"));
    let (gw, kv) = ui_gateway(&app, &books).await;
    let token = login(&kv, "sid-csrf").await;
    let jar = cookies(&token, "9f86d081884c7d65");
    let post = || {
        client()
            .post(url(&gw, "/loans/"))
            .header("cookie", &jar)
            .json(&serde_json::json!({"book_id": 7}))
    };

    for (name, request) in [
        ("no header", post()),
        (
            "a wrong token",
            post().header("x-csrf-token", "9f86d081884c7d66"),
        ),
        ("a prefix", post().header("x-csrf-token", "9f86d081884c7d6")),
        ("an empty one", post().header("x-csrf-token", "")),
    ] {
        let reply = send(request).await;
        assert_eq!(reply.status, 403, "{name}");
        assert_eq!(reply.detail(), "CSRF check failed", "{name}");
    }
    for method in [
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
        reqwest::Method::PUT,
    ] {
        let reply = send(
            client()
                .request(method.clone(), url(&gw, "/holds/3"))
                .header("cookie", &jar),
        )
        .await;
        assert_eq!(reply.status, 403, "{method}");
    }
    assert_eq!(app.hits(), 0, "nothing reached the service");

    let reply = send(post().header("x-csrf-token", "9f86d081884c7d65")).await;
    assert_eq!((reply.status, reply.instance()), (200, "app"));
    assert_eq!(reply.body["method"], "POST");
    assert_eq!(
        reply.upstream_saw("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(reply.upstream_saw("cookie"), None);
    assert_eq!(reply.body["body_len"], 13, "the body went along");

    // The UI's log-out: DELETE /auth/session with the cookie and its CSRF token.
    let logout = send(
        client()
            .delete(url(&gw, "/auth/session"))
            .header("cookie", &jar)
            .header("x-csrf-token", "9f86d081884c7d65"),
    )
    .await;
    assert_eq!(
        (logout.status, logout.body["path"].as_str()),
        (200, Some("/auth/session"))
    );
    assert_eq!(
        logout.upstream_saw("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    // Without a credential, ending a session is refused; opening one needs none.
    let anonymous = send(client().delete(url(&gw, "/auth/session"))).await;
    assert_eq!(anonymous.status, 401);
    let open = send(
        client()
            .post(url(&gw, "/auth/session"))
            .header("cookie", "platform_session=stale; platform_csrf=x")
            .json(&serde_json::json!({"username": "a", "password": "b"})),
    )
    .await;
    assert_eq!(
        (open.status, open.body["path"].as_str()),
        (200, Some("/auth/session"))
    );
    assert_eq!(open.upstream_saw("cookie"), None);
    assert_eq!(open.upstream_saw("authorization"), None);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_clients_are_unaffected_by_cookies() {
    let (app, books) = (Upstream::start("app"), Upstream::start("books"));
    let (gw, kv) = ui_gateway(&app, &books).await;
    let token = login(&kv, "sid-bearer").await;

    // A bearer request needs no CSRF token, even with cookies along; they are not forwarded.
    let reply = send(
        client()
            .post(url(&gw, "/holds/"))
            .bearer_auth(&token)
            .header(
                "cookie",
                "platform_session=other.token.x; platform_csrf=abc",
            )
            .json(&serde_json::json!({"book_id": 7})),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.upstream_saw("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(reply.upstream_saw("cookie"), None);

    // The header decides: a bad bearer is refused even beside a good cookie.
    let refused = send(
        client()
            .get(url(&gw, "/loans/"))
            .bearer_auth("not.a.jwt")
            .header("cookie", cookies(&token, "x")),
    )
    .await;
    assert_eq!(refused.status, 401);

    // Public routes do not forward cookies either.
    let public = send(
        client()
            .post(url(&gw, "/auth/login"))
            .header("cookie", "tracking=1")
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!(public.status, 200);
    assert_eq!(public.upstream_saw("cookie"), None);
    gw.stop().await;
}
