//! app-service driven over HTTP, with small axum servers on port 0 standing in for
//! user-service, scraper-service and book-service: they record what they received and answer
//! as each test needs (echo, a given status/headers/body, slowly, as a slow event stream, or
//! not at all). Circulation commands travel on a real bus — the in-process queue durable in
//! SQLite, with a consumer stub applying them — or towards a broker that cannot be reached.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::library::RefusalReason;
use app_service::config::Config;
use app_service::startup::Application;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use circulation::{
    message_id_for_key, Bus, BusConfig, Command, CommandKind, Handler, HandlerError, Outcome,
};
use common::auth::{Claims, Role, SessionData, Sessions, TokenSettings};
use common::config::Secret;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

// ---------------------------------------------------------------------------------------
// Stand-ins for the services
// ---------------------------------------------------------------------------------------

/// A request as a stand-in service received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A stand-in service listening on 127.0.0.1.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Answers every request (any method, any path) with `answer`.
    async fn start<F, Fut>(answer: F) -> Fake
    where
        F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |req: Request| {
            let (answer, log) = (answer.clone(), Arc::clone(&log));
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .expect("request body");
                let seen = Seen {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    headers: parts.headers,
                    body,
                };
                log.lock().unwrap().push(seen.clone());
                answer(seen).await
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
        let url = format!("http://{}", listener.local_addr().expect("fake address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake { url, seen }
    }

    /// Answers 200 with `{"service", "method", "uri"}` of what it received.
    async fn echo(service: &'static str) -> Fake {
        Fake::start(move |seen| async move {
            Json(json!({"service": service, "method": seen.method, "uri": seen.uri}))
                .into_response()
        })
        .await
    }

    /// Answers every request `status` with a fixed body.
    async fn answering(status: StatusCode) -> Fake {
        Fake::start(move |_| async move { (status, "stand-in").into_response() }).await
    }

    /// Everything received so far.
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The one request received; fails when there was not exactly one.
    fn only_request(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "requests received: {seen:?}");
        seen.into_iter().next().unwrap()
    }
}

/// A URL where nothing listens: a port that was free a moment ago.
fn absent() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}")
}

/// A service that accepts connections and hangs up without answering.
async fn hanging_up() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    url
}

// ---------------------------------------------------------------------------------------
// app-service under test
// ---------------------------------------------------------------------------------------

const SECRET: &str = "app-service-test-secret-0123456789abcdef";

fn token_settings() -> TokenSettings {
    TokenSettings {
        algorithm: jsonwebtoken::Algorithm::HS256,
        secret: Some(Secret::new(SECRET)),
        previous_secret: None,
        issuer: "user-service".into(),
        audience: "platform".into(),
        lifetime: Duration::from_secs(60),
        leeway: Duration::ZERO,
    }
}

fn memory_kv() -> Kv {
    Kv::memory(&test_support::unique_prefix("app-service"))
}

/// The in-process circulation queue in a directory of its own (removed with it).
async fn local_bus(wait: Duration) -> (Bus, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = BusConfig::local(dir.path());
    config.wait = wait;
    (Bus::open(config).await.expect("the bus opens"), dir)
}

/// app-service running on a port of its own; stops when dropped.
struct App {
    url: String,
    http: reqwest::Client,
    _stop: ShutdownTrigger,
    _bus_dir: Option<tempfile::TempDir>,
}

impl App {
    /// Builds app-service in front of `users` and `scraper` (as changed by `tweak`), with an
    /// in-process circulation bus nobody consumes from, starts it, and returns once its
    /// `/healthz` answers.
    async fn start(users: &str, scraper: &str, kv: Kv, tweak: impl FnOnce(&mut Config)) -> App {
        let (bus, dir) = local_bus(Duration::from_secs(5)).await;
        let mut app = App::start_on(bus, users, scraper, kv, tweak).await;
        app._bus_dir = Some(dir);
        app
    }

    /// Like [`App::start`], sending circulation commands on `bus`.
    async fn start_on(
        bus: Bus,
        users: &str,
        scraper: &str,
        kv: Kv,
        tweak: impl FnOnce(&mut Config),
    ) -> App {
        let mut config = Config::new(users, scraper, token_settings());
        tweak(&mut config);
        let app = Application::build(config, kv, bus)
            .await
            .expect("app-service builds");
        let url = format!("http://127.0.0.1:{}", app.port());
        let (stop, shutdown) = shutdown_channel();
        tokio::spawn(app.run_until_stopped(shutdown));
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let app = App {
            url,
            http,
            _stop: stop,
            _bus_dir: None,
        };
        let healthz = app.get("/healthz").send().await.expect("healthz answers");
        assert_eq!(healthz.status(), StatusCode::OK);
        app
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }
}

/// Status, headers and JSON body of a response.
async fn json_of(resp: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body");
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, headers, value)
}

// ---------------------------------------------------------------------------------------
// Relaying
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_route_reaches_its_service_with_and_without_the_trailing_slash() {
    let users = Fake::echo("user-service").await;
    let scraper = Fake::echo("scraper-service").await;
    let books = Fake::echo("book-service").await;
    let app = App::start(&users.url, &scraper.url, memory_kv(), |c| {
        c.book_service_url = books.url.clone();
    })
    .await;
    let routes = [
        ("POST", "/auth/register", "user-service"),
        ("POST", "/auth/login", "user-service"),
        ("POST", "/auth/token", "user-service"),
        ("GET", "/auth/me", "user-service"),
        ("POST", "/auth/logout", "user-service"),
        ("POST", "/auth/logout-all", "user-service"),
        ("POST", "/auth/session", "user-service"),
        ("DELETE", "/auth/session", "user-service"),
        ("GET", "/ui/auth/manifest.json", "user-service"),
        (
            "GET",
            "/ui/companies/0123456789abcdef/index.js",
            "scraper-service",
        ),
        ("GET", "/users", "user-service"),
        ("PUT", "/admin/users/5/role", "user-service"),
        ("DELETE", "/admin/users/5/sessions", "user-service"),
        ("GET", "/notifications", "user-service"),
        ("POST", "/notifications/9/read", "user-service"),
        ("POST", "/scrape", "scraper-service"),
        ("GET", "/scrape/jobs/42", "scraper-service"),
        ("GET", "/companies/1008600038413", "scraper-service"),
        ("POST", "/admin/retransform", "scraper-service"),
        (
            "GET",
            "/admin/retransform/0b6f3c1e-2a4d-4f5e-9c8b-7a6d5e4f3a2b",
            "scraper-service",
        ),
        ("GET", "/loans", "book-service"),
        ("GET", "/holds", "book-service"),
    ];
    for (method, path, service) in routes {
        for path in [path.to_owned(), format!("{path}/")] {
            let method: Method = method.parse().unwrap();
            let request = app.request(method.clone(), &path);
            let (status, _, body) = json_of(request.send().await.unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}");
            assert_eq!(
                body,
                json!({"service": service, "method": method.as_str(), "uri": path}),
                "{method} {path}"
            );
        }
    }
    // The query reaches book-service as sent (it decides whose loans the caller may see).
    let (_, _, body) = json_of(
        app.get("/loans/?active=true&user_id=3")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["uri"], "/loans/?active=true&user_id=3");
}

/// The web session's relay passes the service's cookies back; the UI files' relays pass
/// entity tags both ways (a revalidation is a bodiless 304) and the owning service's security
/// headers, and nothing else new: no cookie reaches a service, none comes back from a file.
#[tokio::test]
async fn the_session_and_ui_relays_pass_cookies_and_entity_tags() {
    let users = Fake::start(|seen: Seen| async move {
        let mut headers = HeaderMap::new();
        headers.append(
            "set-cookie",
            "platform_session=t; HttpOnly".parse().unwrap(),
        );
        headers.append("set-cookie", "platform_csrf=c".parse().unwrap());
        headers.insert("etag", "\"e1\"".parse().unwrap());
        headers.insert(
            "content-security-policy",
            "default-src 'self'".parse().unwrap(),
        );
        headers.insert("cache-control", "no-cache".parse().unwrap());
        let fresh = seen.headers.get("if-none-match").map(|v| v.as_bytes()) == Some(b"\"e1\"");
        if fresh {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (StatusCode::OK, headers, "{}").into_response()
        }
    })
    .await;
    let app = App::start(&users.url, &absent(), memory_kv(), |_| {}).await;

    let opened = app
        .post("/auth/session")
        .header("cookie", "platform_session=old")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let cookies: Vec<&str> = opened
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["platform_session=t; HttpOnly", "platform_csrf=c"]);
    assert!(users.only_request().headers.get("cookie").is_none());

    let file = app.get("/ui/auth/manifest.json").send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["etag"], "\"e1\"");
    assert_eq!(
        file.headers()["content-security-policy"],
        "default-src 'self'"
    );
    assert_eq!(file.headers()["cache-control"], "no-cache");
    assert!(file.headers().get("set-cookie").is_none());
    let again = app
        .get("/ui/auth/manifest.json")
        .header("if-none-match", "\"e1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        app.post("/ui/auth/manifest.json")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn the_request_reaches_the_service_as_the_client_sent_it() {
    let users = Fake::echo("user-service").await;
    let app = App::start(&users.url, &absent(), memory_kv(), |_| {}).await;
    let body = r#"{"username":"alice","password":"correct horse"}"#;
    let sent = [
        ("content-type", "application/json; charset=utf-8"),
        ("authorization", "Bearer some.token.value"),
        ("accept", "application/json"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-request-id", "req-4711"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("tracestate", "vendor=1"),
    ];
    let mut request = app.post("/auth/login/?next=%2Fhome").body(body);
    for (name, value) in sent {
        request = request.header(name, value);
    }
    // Headers a relay must not pass on: identities are never taken from headers, and the
    // services have no use for the rest.
    request = request
        .header("x-user-id", "1")
        .header("x-user-role", "admin")
        .header("cookie", "session=abc");
    assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);

    let seen = users.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/auth/login/?next=%2Fhome");
    assert_eq!(seen.body, body.as_bytes());
    for (name, value) in sent {
        assert_eq!(
            seen.headers.get(name).map(|v| v.as_bytes()),
            Some(value.as_bytes()),
            "{name}"
        );
    }
    for name in ["x-user-id", "x-user-role", "cookie"] {
        assert!(seen.headers.get(name).is_none(), "{name} was relayed");
    }
}

#[tokio::test]
async fn a_request_id_is_given_when_the_client_sent_none_and_the_service_gets_it() {
    let scraper = Fake::echo("scraper-service").await;
    let app = App::start(&absent(), &scraper.url, memory_kv(), |_| {}).await;
    let resp = app.get("/companies/1008600038413").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let given = resp.headers()["x-request-id"].clone();
    assert!(!given.is_empty());
    assert_eq!(
        scraper.only_request().headers.get("x-request-id"),
        Some(&given)
    );
}

#[tokio::test]
async fn the_answer_reaches_the_client_as_the_service_sent_it() {
    let users = Fake::start(|_| async {
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            r#"{"detail":"Token has expired"}"#,
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/problem+json"),
        );
        h.append(
            "www-authenticate",
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        h.append(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"other\""),
        );
        h.insert("retry-after", HeaderValue::from_static("7"));
        h.insert("cache-control", HeaderValue::from_static("no-store"));
        h.insert("pragma", HeaderValue::from_static("no-cache"));
        h.insert(
            "link",
            HeaderValue::from_static("</users/?limit=1&cursor=3>; rel=\"next\""),
        );
        h.insert(
            "x-internal-detail",
            HeaderValue::from_static("not for clients"),
        );
        resp
    })
    .await;
    let scraper = Fake::start(|_| async {
        let mut resp = (StatusCode::ACCEPTED, Json(json!({"job_id": 9}))).into_response();
        resp.headers_mut()
            .insert("location", HeaderValue::from_static("/scrape/jobs/9"));
        resp
    })
    .await;
    let app = App::start(&users.url, &scraper.url, memory_kv(), |_| {}).await;

    let resp = app.get("/auth/me/").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/problem+json");
    let challenges: Vec<_> = h.get_all("www-authenticate").iter().collect();
    assert_eq!(
        challenges,
        ["Bearer error=\"invalid_token\"", "Basic realm=\"other\""]
    );
    assert_eq!(h["retry-after"], "7");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    assert_eq!(h["link"], "</users/?limit=1&cursor=3>; rel=\"next\"");
    assert!(h.get("x-internal-detail").is_none());
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"detail":"Token has expired"}"#
    );

    let resp = app
        .post("/scrape/")
        .json(&json!({"idno": "1008600038413"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["location"], "/scrape/jobs/9");
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), r#"{"job_id":9}"#);
}

#[tokio::test]
async fn error_answers_of_a_service_are_relayed_not_replaced() {
    for status in [
        StatusCode::UNPROCESSABLE_ENTITY,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::GATEWAY_TIMEOUT,
    ] {
        let scraper = Fake::answering(status).await;
        let app = App::start(&absent(), &scraper.url, memory_kv(), |_| {}).await;
        let resp = app.get("/scrape/jobs/1").send().await.unwrap();
        assert_eq!(resp.status(), status);
        assert_eq!(resp.text().await.unwrap(), "stand-in", "{status}");
    }
}

#[tokio::test]
async fn tokens_are_left_to_the_service_that_owns_the_resource() {
    // app-service does not verify tokens on relays: a request without one, or with one that
    // is no token at all, reaches the service, whose refusal the client gets unchanged.
    let scraper = Fake::start(|seen| async move {
        let status = match seen.headers.get("authorization") {
            None => StatusCode::UNAUTHORIZED,
            Some(_) => StatusCode::FORBIDDEN,
        };
        (
            status,
            Json(json!({"detail": "refused by scraper-service"})),
        )
            .into_response()
    })
    .await;
    let app = App::start(&absent(), &scraper.url, memory_kv(), |_| {}).await;

    let (status, _, body) = json_of(app.post("/admin/retransform").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "refused by scraper-service");
    let resp = app
        .post("/admin/retransform")
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let seen = scraper.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers["authorization"], "Bearer not-a-jwt");
}

// ---------------------------------------------------------------------------------------
// Dependencies that fail
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_service_that_is_not_listening_is_503_naming_it() {
    let app = App::start(&absent(), &absent(), memory_kv(), |_| {}).await;
    for (path, service) in [
        ("/auth/login", "user-service"),
        ("/scrape", "scraper-service"),
    ] {
        let (status, headers, body) = json_of(app.post(path).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(body, json!({"detail": format!("{service} unavailable")}));
    }
}

#[tokio::test]
async fn a_service_that_hangs_up_without_answering_is_503() {
    let app = App::start(&hanging_up().await, &absent(), memory_kv(), |_| {}).await;
    let (status, _, body) = json_of(app.get("/auth/me").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, json!({"detail": "user-service unavailable"}));
}

#[tokio::test]
async fn a_service_slower_than_the_upstream_timeout_is_504() {
    let scraper = Fake::start(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        StatusCode::OK.into_response()
    })
    .await;
    let app = App::start(&absent(), &scraper.url, memory_kv(), |c| {
        c.upstream_timeout = Duration::from_millis(300);
    })
    .await;
    let started = Instant::now();
    let (status, headers, body) =
        json_of(app.get("/companies/1008600038413/").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body, json!({"detail": "scraper-service timed out"}));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_service_url_that_is_not_http_stops_start_up_naming_the_variable() {
    let (bus, _dir) = local_bus(Duration::from_secs(5)).await;
    let config = Config::new("http://127.0.0.1:1", "not a url", token_settings());
    let Err(e) = Application::build(config, memory_kv(), bus.clone()).await else {
        panic!("app-service started with SCRAPER_SERVICE_URL=\"not a url\"");
    };
    assert!(e.to_string().starts_with("SCRAPER_SERVICE_URL"), "{e}");
    let mut config = Config::new("http://127.0.0.1:1", "http://127.0.0.1:1", token_settings());
    config.book_service_url = "ftp://books".into();
    let Err(e) = Application::build(config, memory_kv(), bus).await else {
        panic!("app-service started with BOOK_SERVICE_URL=\"ftp://books\"");
    };
    assert!(e.to_string().starts_with("BOOK_SERVICE_URL"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn readyz_is_200_when_every_service_the_bus_and_the_session_store_answer() {
    let users = Fake::echo("user-service").await;
    let scraper = Fake::echo("scraper-service").await;
    let books = Fake::echo("book-service").await;
    for kv in test_support::key_values("app-readyz").await {
        let backend = kv.backend_name();
        let app = App::start(&users.url, &scraper.url, kv, |c| {
            c.book_service_url = books.url.clone();
        })
        .await;
        for path in ["/readyz", "/readyz/"] {
            let (status, _, body) = json_of(app.get(path).send().await.unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{backend} {path}");
            assert_eq!(
                body,
                json!({"user-service": "ok", "scraper-service": "ok", "book-service": "ok",
                       "circulation-bus": "ok", "session-store": "ok", "status": "ready"}),
                "{backend} {path}"
            );
        }
    }
    assert!(users.seen().iter().all(|s| s.uri == "/healthz"));
    assert!(books.seen().iter().all(|s| s.uri == "/healthz"));
}

#[tokio::test]
async fn readyz_is_503_naming_the_service_that_does_not_answer() {
    let users = Fake::echo("user-service").await;
    let failing = Fake::answering(StatusCode::INTERNAL_SERVER_ERROR).await;
    for kv in test_support::key_values("app-readyz-down").await {
        let backend = kv.backend_name();
        let app = App::start(&users.url, &absent(), kv.clone(), |c| {
            c.book_service_url = users.url.clone();
        })
        .await;
        let (status, _, body) = json_of(app.get("/readyz").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{backend}");
        assert_eq!(
            body,
            json!({"user-service": "ok", "scraper-service": "unavailable", "book-service": "ok",
                   "circulation-bus": "ok", "session-store": "ok", "status": "not ready"}),
            "{backend}"
        );

        let app = App::start(&failing.url, &users.url, kv.clone(), |c| {
            c.book_service_url = absent();
        })
        .await;
        let (status, _, body) = json_of(app.get("/readyz").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{backend}");
        assert_eq!(body["user-service"], "unavailable", "{backend}");
        assert_eq!(body["scraper-service"], "ok", "{backend}");
        assert_eq!(body["book-service"], "unavailable", "{backend}");
    }
}

#[tokio::test]
async fn readyz_is_503_naming_the_bus_when_the_broker_cannot_be_reached() {
    let up = Fake::echo("any").await;
    let app = App::start_on(
        unreachable_broker().await,
        &up.url,
        &up.url,
        memory_kv(),
        |c| {
            c.book_service_url = up.url.clone();
        },
    )
    .await;
    let (status, _, body) = json_of(app.get("/readyz").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["circulation-bus"], "unavailable");
    assert_eq!(body["book-service"], "ok");
}

#[tokio::test]
async fn readyz_is_503_naming_the_session_store_when_redis_is_down() {
    let Some(url) = test_support::redis_url() else {
        return; // Only Redis can go down; the in-process store cannot.
    };
    let users = Fake::echo("user-service").await;
    let scraper = Fake::echo("scraper-service").await;
    let (proxy, kv) = test_support::redis_behind_proxy(&url, "app-readyz-redis").await;
    let app = App::start(&users.url, &scraper.url, kv, |c| {
        c.book_service_url = users.url.clone();
    })
    .await;
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );

    proxy.cut();
    let (status, _, body) = json_of(app.get("/readyz").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"user-service": "ok", "scraper-service": "ok", "book-service": "ok",
               "circulation-bus": "ok", "session-store": "unavailable", "status": "not ready"})
    );

    // Back once Redis is: the connection is re-established on its own.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.get("/readyz").send().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// app-service's own answers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_openapi_document_lists_every_operation_and_swagger_ui_is_served() {
    let app = App::start(&absent(), &absent(), memory_kv(), |_| {}).await;
    let (status, headers, doc) = json_of(app.get("/openapi.json").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "/admin/retransform",
            "/admin/retransform/{id}",
            "/admin/users/{id}/role",
            "/admin/users/{id}/sessions",
            "/auth/login/",
            "/auth/logout-all",
            "/auth/logout/",
            "/auth/me/",
            "/auth/register/",
            "/auth/session",
            "/auth/token",
            "/books/",
            "/books/{id}",
            "/books/{id}/copies",
            "/companies/{idno}",
            "/holds/",
            "/holds/{id}",
            "/loans/",
            "/loans/{id}/renew",
            "/loans/{id}/return",
            "/notifications/",
            "/notifications/stream",
            "/notifications/{id}/read",
            "/scrape/",
            "/scrape/jobs/{id}",
            "/user/borrowings/",
            "/users/",
        ]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["oauth2"]["flows"]["password"]["tokenUrl"],
        "/auth/token"
    );
    // Every operation but registration and login needs a token.
    let public = ["/auth/register/", "/auth/login/", "/auth/token"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let security = &operation["security"];
            // Opening a web session is a login; ending it needs the session.
            if public.contains(&path.as_str()) || (path == "/auth/session" && method == "post") {
                assert!(security.is_null(), "{method} {path} is public");
            } else {
                assert_eq!(security, &json!([{"oauth2": []}]), "{method} {path}");
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{method} {path} documents 401"
                );
            }
        }
    }
    // The circulation operations document every answer, the refusal body included.
    let refusal = json!({"$ref": "#/components/schemas/Refusal"});
    for (path, method, success) in [
        ("/loans/", "post", "201"),
        ("/loans/{id}/return", "post", "200"),
        ("/loans/{id}/renew", "post", "200"),
        ("/holds/", "post", "201"),
        ("/holds/{id}", "delete", "204"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        let mut codes: Vec<&str> = responses
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        codes.sort_unstable();
        // 502 and 413 (a body over the gateway's limit) are the answers every operation
        // shares (`openapi::answers`).
        let mut expected = vec![success, "401", "404", "409", "422", "502", "503", "504"];
        if method == "post" && !path.contains('{') {
            expected.push("413");
        }
        expected.sort_unstable();
        assert_eq!(codes, expected, "{method} {path}");
        assert_eq!(
            responses["409"]["content"]["application/json"]["schema"], refusal,
            "{method} {path} 409"
        );
        // A 404 is a refusal, or the gateway's plain one for a path it will not read one way.
        let not_found = &responses["404"]["content"]["application/json"]["schema"];
        let either = if path.contains('{') {
            json!({"anyOf": [refusal, {"$ref": "#/components/schemas/ErrorBody"}]})
        } else {
            refusal.clone()
        };
        assert_eq!(not_found, &either, "{method} {path} 404");
        let params = doc["paths"][path][method]["parameters"].to_string();
        assert!(params.contains("Idempotency-Key"), "{method} {path}");
    }
    // The catalogue, served by book-service through the gateway, is described too.
    let book = json!({"$ref": "#/components/schemas/Book"});
    for (path, method, success) in [
        ("/books/", "post", "201"),
        ("/books/{id}", "get", "200"),
        ("/books/{id}", "patch", "200"),
        ("/books/{id}/copies", "post", "201"),
    ] {
        let answer = &doc["paths"][path][method]["responses"][success];
        assert_eq!(
            answer["content"]["application/json"]["schema"], book,
            "{method} {path}"
        );
    }
    let search = &doc["paths"]["/books/"]["get"];
    assert_eq!(
        search["responses"]["200"]["content"]["application/json"]["schema"]["items"],
        book
    );
    let params = search["parameters"].to_string();
    for name in [
        "\"q\"",
        "\"author\"",
        "\"isbn\"",
        "\"available\"",
        "\"limit\"",
        "\"cursor\"",
    ] {
        assert!(params.contains(name), "GET /books/ documents {name}");
    }
    assert_eq!(
        doc["paths"]["/books/"]["post"]["responses"]["403"]["content"]["application/json"]
            ["schema"],
        json!({"$ref": "#/components/schemas/ErrorBody"})
    );
    let schemas = &doc["components"]["schemas"];
    for name in [
        "Loan",
        "LoanCreate",
        "Hold",
        "HoldCreate",
        "Refusal",
        "RefusalReason",
        "UserSummary",
        "RoleChange",
        "SessionsEnded",
        "Book",
        "BookCreate",
        "BookPatch",
        "CopiesAdd",
        "ErrorBody",
        "ValidationBody",
        "Notification",
        "NotificationKind",
    ] {
        assert!(schemas[name].is_object(), "schema {name}");
    }
    let list = &doc["paths"]["/notifications/"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        list["application/json"]["schema"]["items"],
        json!({"$ref": "#/components/schemas/Notification"})
    );
    assert_eq!(
        doc["paths"]["/notifications/stream"]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["text/event-stream"]
    );
    assert!(doc["paths"]["/auth/login/"]["post"]["security"].is_null());

    let resp = app.get("/docs").send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(resp.headers()["location"], "/docs/");
    let resp = app.get("/docs/").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("swagger-ui"));
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_json_and_reach_no_service() {
    let users = Fake::echo("user-service").await;
    let scraper = Fake::echo("scraper-service").await;
    let app = App::start(&users.url, &scraper.url, memory_kv(), |_| {}).await;

    let (status, _, body) = json_of(app.get("/nowhere").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"detail": "Not Found"}));
    for (request, path) in [
        (app.get("/auth/login/"), "/auth/login/"),
        (
            app.post("/companies/1008600038413"),
            "/companies/1008600038413",
        ),
    ] {
        let (status, _, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(body, json!({"detail": "Method Not Allowed"}), "{path}");
    }
    assert!(users.seen().is_empty());
    assert!(scraper.seen().is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_never_relayed() {
    let users = Fake::echo("user-service").await;
    let app = App::start(&users.url, &absent(), memory_kv(), |c| {
        c.server.limits.max_body_bytes = 1024;
    })
    .await;

    let resp = app
        .post("/auth/register")
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    let (status, _, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body, json!({"detail": "Request body is too large"}));
    assert!(users.seen().is_empty());

    let resp = app
        .post("/auth/register")
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(users.only_request().body.len(), 1024);
}

// ---------------------------------------------------------------------------------------
// Circulation commands
// ---------------------------------------------------------------------------------------

/// A bus whose broker cannot be reached: nothing listens where it points.
async fn unreachable_broker() -> Bus {
    let url = absent().replace("http://", "amqp://guest:guest@") + "/%2f";
    let config = BusConfig::amqp(&url, "app-service-test-bus-secret-0123456789ab", "unused");
    Bus::open(config).await.expect("the bus opens")
}

/// A command as the consumer stub received it, and when.
type Received = Arc<Mutex<Vec<(Command, DateTime<Utc>)>>>;

/// book-service's side of the bus, reduced to fixed answers by kind: it records each command
/// and answers as a real consumer would.
#[derive(Clone, Default)]
struct Stub {
    received: Received,
}

impl Handler for Stub {
    async fn handle(&self, command: Command) -> Result<Outcome, HandlerError> {
        self.received
            .lock()
            .unwrap()
            .push((command.clone(), Utc::now()));
        let user = command.user_id;
        Ok(match command.kind {
            CommandKind::Borrow { book_id: 1 } => Outcome::done(
                201,
                &json!({"id": 11, "book_id": 1, "user_id": user, "title": "Germinal"}),
            ),
            CommandKind::Borrow { .. } => Outcome::refused(
                RefusalReason::NoCopyAvailable,
                "No copy of this title is available",
            ),
            CommandKind::Return { loan_id: 99 } => {
                Outcome::refused(RefusalReason::NotFound, "Loan not found")
            }
            CommandKind::Return { loan_id } => Outcome::done(
                200,
                &json!({"id": loan_id, "returned_at": "2026-03-02T10:00:00Z"}),
            ),
            CommandKind::Renew { .. } => Outcome::refused(
                RefusalReason::HoldWaiting,
                "Another reader waits for this title",
            ),
            CommandKind::PlaceHold { book_id } => {
                Outcome::done(201, &json!({"id": 4, "book_id": book_id, "position": 1}))
            }
            CommandKind::CancelHold { .. } => Outcome::Done {
                status: 204,
                body: Value::Null,
            },
        })
    }
}

/// app-service with the in-process bus and the stub consuming from it.
struct Library {
    app: App,
    kv: Kv,
    received: Received,
    wait: Duration,
    _consumer: ShutdownTrigger,
}

impl Library {
    async fn start(wait: Duration) -> Library {
        let (bus, dir) = local_bus(wait).await;
        let stub = Stub::default();
        let received = stub.received.clone();
        let (consumer, shutdown) = shutdown_channel();
        tokio::spawn(bus.consumer().run(stub, shutdown));
        let kv = memory_kv();
        let mut app = App::start_on(bus, &absent(), &absent(), kv.clone(), |_| {}).await;
        app._bus_dir = Some(dir);
        Library {
            app,
            kv,
            received,
            wait,
            _consumer: consumer,
        }
    }

    fn received(&self) -> Vec<(Command, DateTime<Utc>)> {
        self.received.lock().unwrap().clone()
    }
}

/// A token for `user_id` whose live session holds `role`; the token itself claims
/// `claimed_role`, which must not matter (the role comes from the session).
async fn token_for(kv: &Kv, user_id: i64, role: Role, claimed_role: &str) -> String {
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: user_id.to_string(),
        sid: sid.clone(),
        username: format!("reader{user_id}"),
        role: claimed_role.into(),
        iat: now,
        exp: now + 600,
        iss: "user-service".into(),
        aud: "platform".into(),
    };
    let session = SessionData {
        user_id,
        username: format!("reader{user_id}"),
        email: format!("reader{user_id}@example.com"),
        role,
    };
    Sessions::new(kv.clone())
        .create(&sid, &session, Duration::from_secs(600))
        .await
        .expect("session stored");
    test_support::sign_hs256(&claims, SECRET)
}

#[tokio::test]
async fn each_command_carries_the_verified_caller_and_its_reply_is_the_answer() {
    let lib = Library::start(Duration::from_secs(3)).await;
    // The token claims admin; the session says reader: the command must say reader.
    let token = token_for(&lib.kv, 7, Role::User, "admin").await;
    let cases = [
        (
            Method::POST,
            "/loans/",
            json!({"book_id": 1, "user_id": 99}),
            201,
            json!({"id": 11, "book_id": 1, "user_id": 7, "title": "Germinal"}),
        ),
        (
            Method::POST,
            "/loans",
            json!({"book_id": 2}),
            409,
            json!({"detail": "No copy of this title is available", "reason": "no_copy_available"}),
        ),
        (
            Method::POST,
            "/loans/5/return",
            Value::Null,
            200,
            json!({"id": 5, "returned_at": "2026-03-02T10:00:00Z"}),
        ),
        (
            Method::POST,
            "/loans/99/return/",
            Value::Null,
            404,
            json!({"detail": "Loan not found", "reason": "not_found"}),
        ),
        (
            Method::POST,
            "/loans/5/renew",
            Value::Null,
            409,
            json!({"detail": "Another reader waits for this title", "reason": "hold_waiting"}),
        ),
        (
            Method::POST,
            "/holds/",
            json!({"book_id": 3}),
            201,
            json!({"id": 4, "book_id": 3, "position": 1}),
        ),
        (Method::DELETE, "/holds/4", Value::Null, 204, Value::Null),
    ];
    for (method, path, body, status, answer) in &cases {
        let mut request = lib.app.request(method.clone(), path).bearer_auth(&token);
        if !body.is_null() {
            request = request.json(body);
        }
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{method} {path}");
        let bytes = resp.bytes().await.unwrap();
        if *status == 204 {
            assert!(bytes.is_empty(), "{method} {path}: a 204 has no body");
        } else {
            let got: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(&got, answer, "{method} {path}");
        }
    }

    let received = lib.received();
    let kinds: Vec<CommandKind> = received.iter().map(|(c, _)| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CommandKind::Borrow { book_id: 1 },
            CommandKind::Borrow { book_id: 2 },
            CommandKind::Return { loan_id: 5 },
            CommandKind::Return { loan_id: 99 },
            CommandKind::Renew { loan_id: 5 },
            CommandKind::PlaceHold { book_id: 3 },
            CommandKind::CancelHold { hold_id: 4 },
        ]
    );
    let mut ids = std::collections::HashSet::new();
    for (command, at) in &received {
        assert_eq!(
            (command.user_id, command.role),
            (7, Role::User),
            "{command:?}"
        );
        assert!(
            ids.insert(command.message_id),
            "without a key, each command is new"
        );
        // The deadline is CIRCULATION_TIMEOUT_MS after sending, and it had not passed.
        let ahead = (command.deadline - *at)
            .to_std()
            .expect("received before its deadline");
        assert!(ahead <= lib.wait, "{ahead:?}");
    }

    // A librarian's commands say librarian (book-service lets them act for others).
    let librarian = token_for(&lib.kv, 8, Role::Librarian, "user").await;
    let resp = lib
        .app
        .post("/loans/5/return")
        .bearer_auth(&librarian)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (last, _) = lib.received().pop().unwrap();
    assert_eq!((last.user_id, last.role), (8, Role::Librarian));
}

#[tokio::test]
async fn the_idempotency_key_becomes_the_message_id_scoped_to_the_user() {
    let lib = Library::start(Duration::from_secs(3)).await;
    let token = token_for(&lib.kv, 7, Role::User, "user").await;
    let other = token_for(&lib.kv, 8, Role::User, "user").await;
    for t in [&token, &token, &other] {
        let resp = lib
            .app
            .post("/loans/")
            .bearer_auth(t)
            .header("idempotency-key", "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d")
            .json(&json!({"book_id": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let ids: Vec<_> = lib.received().iter().map(|(c, _)| c.message_id).collect();
    let key = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";
    assert_eq!(
        ids,
        [
            message_id_for_key(7, key),
            message_id_for_key(7, key),
            message_id_for_key(8, key)
        ]
    );
}

#[tokio::test]
async fn commands_without_a_valid_token_are_401_and_never_sent() {
    let lib = Library::start(Duration::from_secs(3)).await;
    for (method, path) in [
        (Method::POST, "/loans/"),
        (Method::POST, "/loans/1/return"),
        (Method::POST, "/loans/1/renew"),
        (Method::POST, "/holds/"),
        (Method::DELETE, "/holds/1"),
    ] {
        for token in [None, Some("not-a-jwt")] {
            let mut request = lib
                .app
                .request(method.clone(), path)
                .json(&json!({"book_id": 1}));
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            let (status, headers, body) = json_of(request.send().await.unwrap()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert!(headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"));
            assert!(body["detail"].is_string());
        }
    }
    // An ended session: its token is refused too.
    let token = token_for(&lib.kv, 7, Role::User, "user").await;
    Sessions::new(lib.kv.clone())
        .end_all_for_user(7)
        .await
        .unwrap();
    let resp = lib
        .app
        .post("/loans/")
        .bearer_auth(&token)
        .json(&json!({"book_id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(lib.received().is_empty());
}

#[tokio::test]
async fn bad_input_is_422_in_fastapis_shape_and_never_sent() {
    let lib = Library::start(Duration::from_secs(3)).await;
    let token = token_for(&lib.kv, 7, Role::User, "user").await;
    let long_key = "k".repeat(256);
    let cases: [(Method, &str, Value, Option<&str>, Value); 8] = [
        (
            Method::POST,
            "/loans/",
            json!({}),
            None,
            json!(["body", "book_id"]),
        ),
        (
            Method::POST,
            "/loans/",
            json!({"book_id": "seven"}),
            None,
            json!(["body", "book_id"]),
        ),
        (
            Method::POST,
            "/loans/",
            json!({"book_id": 0}),
            None,
            json!(["body", "book_id"]),
        ),
        (
            Method::POST,
            "/holds/",
            json!({"book": 1}),
            None,
            json!(["body", "book_id"]),
        ),
        (
            Method::POST,
            "/loans/abc/return",
            Value::Null,
            None,
            json!(["path", "id"]),
        ),
        (
            Method::POST,
            "/loans/-1/renew",
            Value::Null,
            None,
            json!(["path", "id"]),
        ),
        (
            Method::DELETE,
            "/holds/1.5",
            Value::Null,
            None,
            json!(["path", "id"]),
        ),
        (
            Method::POST,
            "/loans/",
            json!({"book_id": 1}),
            Some(long_key.as_str()),
            json!(["header", "idempotency-key"]),
        ),
    ];
    for (method, path, body, key, loc) in cases {
        let mut request = lib.app.request(method.clone(), path).bearer_auth(&token);
        if !body.is_null() {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let (status, _, answer) = json_of(request.send().await.unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {answer}"
        );
        let errors = answer["detail"].as_array().expect("a list of errors");
        assert_eq!(errors[0]["loc"], loc, "{method} {path}: {answer}");
        assert!(errors[0]["msg"].is_string() && errors[0]["type"].is_string());
    }
    assert!(lib.received().is_empty());
}

#[tokio::test]
async fn a_bus_that_cannot_take_the_command_is_503_with_retry_after_at_once() {
    let kv = memory_kv();
    let token = token_for(&kv, 7, Role::User, "user").await;
    let app = App::start_on(unreachable_broker().await, &absent(), &absent(), kv, |_| {}).await;
    let started = Instant::now();
    let resp = app
        .post("/loans/")
        .bearer_auth(&token)
        .json(&json!({"book_id": 1}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was done"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn no_reply_before_the_deadline_is_504_after_circulation_timeout() {
    // Nobody consumes: the command is queued, and dropped once its deadline passes.
    let (bus, _dir) = local_bus(Duration::from_millis(400)).await;
    let kv = memory_kv();
    let token = token_for(&kv, 7, Role::User, "user").await;
    let app = App::start_on(bus, &absent(), &absent(), kv, |_| {}).await;
    let started = Instant::now();
    let resp = app
        .post("/loans/1/renew")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let (status, headers, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        body["detail"].as_str().unwrap().contains("Idempotency-Key"),
        "{body}"
    );
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The notification stream
// ---------------------------------------------------------------------------------------

/// A stand-in user-service whose `/notifications/stream` sends a keep-alive comment and a
/// first event at once, then the second event only when `next` is notified, then ends.
async fn slow_event_stream(next: Arc<Notify>) -> Fake {
    Fake::start(move |_| {
        let next = next.clone();
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
            tokio::spawn(async move {
                let _ = tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await;
                let _ = tx
                    .send(Ok(Bytes::from_static(b"id: 1\ndata: {\"n\":1}\n\n")))
                    .await;
                next.notified().await;
                let _ = tx
                    .send(Ok(Bytes::from_static(b"id: 2\ndata: {\"n\":2}\n\n")))
                    .await;
            });
            let body = Body::from_stream(tokio_stream_of(rx));
            let mut resp = Response::new(body);
            resp.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/event-stream"),
            );
            resp.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-cache"));
            resp
        }
    })
    .await
}

/// The receiver as a stream (without a tokio-stream dependency).
fn tokio_stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

/// Reads the response until `text` has arrived (or `within` passes); everything read so far.
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !seen.contains(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(piece))) => seen.push_str(&String::from_utf8_lossy(&piece)),
            Ok(Ok(None)) => panic!("the stream ended before {text:?}; got {seen:?}"),
            Ok(Err(e)) => panic!("the stream failed before {text:?}: {e}; got {seen:?}"),
            Err(_) => panic!("{text:?} did not arrive within {within:?}; got {seen:?}"),
        }
    }
}

#[tokio::test]
async fn the_notification_stream_is_relayed_unbuffered_beyond_the_upstream_timeout() {
    let next = Arc::new(Notify::new());
    let users = slow_event_stream(next.clone()).await;
    let app = App::start(&users.url, &absent(), memory_kv(), |c| {
        c.upstream_timeout = Duration::from_millis(300);
    })
    .await;
    let mut resp = app
        .get("/notifications/stream")
        .bearer_auth("token-for-user-service")
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-cache");

    // The first event arrives while user-service holds the second back: nothing buffers it.
    let mut seen = String::new();
    read_until(&mut resp, &mut seen, "\"n\":1", Duration::from_secs(5)).await;
    assert!(seen.starts_with(": keep-alive\n\n"), "{seen:?}");
    assert!(!seen.contains("\"n\":2"));
    // Longer than UPSTREAM_TIMEOUT_MS, which bounds every other relay but not this one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    next.notify_one();
    read_until(&mut resp, &mut seen, "\"n\":2", Duration::from_secs(5)).await;
    assert!(
        resp.chunk().await.unwrap().is_none(),
        "ends when user-service ends it"
    );

    let request = users.only_request();
    assert_eq!(request.uri, "/notifications/stream");
    assert_eq!(
        request.headers["authorization"],
        "Bearer token-for-user-service"
    );
    assert_eq!(request.headers["last-event-id"], "0");
}

#[tokio::test]
async fn a_silent_notification_stream_is_closed_after_the_idle_timeout() {
    let never = Arc::new(Notify::new());
    let users = slow_event_stream(never).await;
    let app = App::start(&users.url, &absent(), memory_kv(), |c| {
        c.stream_idle_timeout = Duration::from_millis(300);
    })
    .await;
    let started = Instant::now();
    let mut resp = app.get("/notifications/stream").send().await.unwrap();
    let mut seen = String::new();
    read_until(&mut resp, &mut seen, "\"n\":1", Duration::from_secs(5)).await;
    // Then silence: the relay gives up and cuts the client's stream, which reconnects.
    let end = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await;
    assert!(
        matches!(end, Ok(Err(_)) | Ok(Ok(None))),
        "the stream must end, got {end:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
