//! app-service driven over HTTP, with small axum servers on port 0 standing in for
//! user-service and scraper-service: they record what they received and answer as each test
//! needs (echo, a given status/headers/body, slowly, or not at all).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app_service::config::Config;
use app_service::startup::Application;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use common::auth::TokenSettings;
use common::config::Secret;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use serde_json::{json, Value};
use tokio::net::TcpListener;

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

fn token_settings() -> TokenSettings {
    TokenSettings {
        algorithm: jsonwebtoken::Algorithm::HS256,
        secret: Some(Secret::new("app-service-test-secret-0123456789abcdef")),
        issuer: "user-service".into(),
        audience: "platform".into(),
        lifetime: Duration::from_secs(60),
        leeway: Duration::ZERO,
    }
}

fn memory_kv() -> Kv {
    Kv::memory(&test_support::unique_prefix("app-service"))
}

/// app-service running on a port of its own; stops when dropped.
struct App {
    url: String,
    http: reqwest::Client,
    _stop: ShutdownTrigger,
}

impl App {
    /// Builds app-service in front of `users` and `scraper` (as changed by `tweak`), starts
    /// it, and returns once its `/healthz` answers.
    async fn start(users: &str, scraper: &str, kv: Kv, tweak: impl FnOnce(&mut Config)) -> App {
        let mut config = Config::new(users, scraper, token_settings());
        tweak(&mut config);
        let app = Application::build(config, kv)
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
    let app = App::start(&users.url, &scraper.url, memory_kv(), |_| {}).await;
    let routes = [
        ("POST", "/auth/register", "user-service"),
        ("POST", "/auth/login", "user-service"),
        ("POST", "/auth/token", "user-service"),
        ("GET", "/auth/me", "user-service"),
        ("POST", "/auth/logout", "user-service"),
        ("POST", "/scrape", "scraper-service"),
        ("GET", "/scrape/jobs/42", "scraper-service"),
        ("GET", "/companies/1008600038413", "scraper-service"),
        ("POST", "/admin/retransform", "scraper-service"),
    ];
    for (method, path, service) in routes {
        for path in [path.to_owned(), format!("{path}/")] {
            let request = match method {
                "GET" => app.get(&path),
                _ => app.post(&path),
            };
            let (status, _, body) = json_of(request.send().await.unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}");
            assert_eq!(
                body,
                json!({"service": service, "method": method, "uri": path}),
                "{method} {path}"
            );
        }
    }
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
    let config = Config::new("http://127.0.0.1:1", "not a url", token_settings());
    let Err(e) = Application::build(config, memory_kv()).await else {
        panic!("app-service started with SCRAPER_SERVICE_URL=\"not a url\"");
    };
    assert!(e.to_string().starts_with("SCRAPER_SERVICE_URL"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn readyz_is_200_when_both_services_and_the_session_store_answer() {
    let users = Fake::echo("user-service").await;
    let scraper = Fake::echo("scraper-service").await;
    for kv in test_support::key_values("app-readyz").await {
        let backend = kv.backend_name();
        let app = App::start(&users.url, &scraper.url, kv, |_| {}).await;
        for path in ["/readyz", "/readyz/"] {
            let (status, _, body) = json_of(app.get(path).send().await.unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{backend} {path}");
            assert_eq!(
                body,
                json!({"user-service": "ok", "scraper-service": "ok", "session-store": "ok",
                       "status": "ready"}),
                "{backend} {path}"
            );
        }
    }
    assert!(users.seen().iter().all(|s| s.uri == "/healthz"));
}

#[tokio::test]
async fn readyz_is_503_naming_the_service_that_does_not_answer() {
    let users = Fake::echo("user-service").await;
    let failing = Fake::answering(StatusCode::INTERNAL_SERVER_ERROR).await;
    for kv in test_support::key_values("app-readyz-down").await {
        let backend = kv.backend_name();
        let app = App::start(&users.url, &absent(), kv.clone(), |_| {}).await;
        let (status, _, body) = json_of(app.get("/readyz").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{backend}");
        assert_eq!(
            body,
            json!({"user-service": "ok", "scraper-service": "unavailable",
                   "session-store": "ok", "status": "not ready"}),
            "{backend}"
        );

        let app = App::start(&failing.url, &users.url, kv, |_| {}).await;
        let (status, _, body) = json_of(app.get("/readyz").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{backend}");
        assert_eq!(body["user-service"], "unavailable", "{backend}");
        assert_eq!(body["scraper-service"], "ok", "{backend}");
    }
}

#[tokio::test]
async fn readyz_is_503_naming_the_session_store_when_redis_is_down() {
    let Some(url) = test_support::redis_url() else {
        return; // Only Redis can go down; the in-process store cannot.
    };
    let users = Fake::echo("user-service").await;
    let scraper = Fake::echo("scraper-service").await;
    let (proxy, kv) = test_support::redis_behind_proxy(&url, "app-readyz-redis").await;
    let app = App::start(&users.url, &scraper.url, kv, |_| {}).await;
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );

    proxy.cut();
    let (status, _, body) = json_of(app.get("/readyz").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"user-service": "ok", "scraper-service": "ok", "session-store": "unavailable",
               "status": "not ready"})
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
            "/auth/login/",
            "/auth/logout/",
            "/auth/me/",
            "/auth/register/",
            "/auth/token",
            "/companies/{idno}",
            "/scrape/",
            "/scrape/jobs/{id}",
        ]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["oauth2"]["flows"]["password"]["tokenUrl"],
        "/auth/token"
    );
    for (path, method) in [
        ("/auth/me/", "get"),
        ("/auth/logout/", "post"),
        ("/scrape/", "post"),
        ("/scrape/jobs/{id}", "get"),
        ("/companies/{idno}", "get"),
        ("/admin/retransform", "post"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"],
            json!([{"oauth2": []}]),
            "{method} {path}"
        );
    }
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
