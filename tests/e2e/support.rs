//! Starting the whole platform in-process for end-to-end tests, on either backend pair:
//! embedded (SQLite files in a temporary directory, in-process sessions, the in-process
//! circulation queue) always, and external (a fresh PostgreSQL schema per service, Redis under
//! a unique prefix, RabbitMQ under a unique name prefix, Redis and RabbitMQ each reached
//! through a proxy the test can cut) when `TEST_DATABASE_URL` and `TEST_REDIS_URL` are set —
//! with RabbitMQ when `TEST_AMQP_URL` is set too (required with `REQUIRE_EXTERNAL_BACKENDS=1`).

#![allow(dead_code)]

use std::time::Duration;

pub use circulation::testing::amqp_url;
use circulation::testing::TestTopology;
use circulation::{Bus, BusConfig, Transport};
use common::auth::{Claims, TokenSettings};
use common::config::Secret;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use events::StreamConfig;
use platform::stack::{ExplicitUrls, Stack, StackConfig};
use serde_json::{json, Value};
use service_kit::db::DbConfig;
use test_support::{CuttableProxy, TestDb};

/// Which storage and session backends a stack runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + in-process key-value store: the one-command mode.
    Embedded,
    /// PostgreSQL + Redis: production.
    External,
}

/// Every backend pair this machine can test.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Embedded];
    let pg = test_support::postgres_url();
    let redis = test_support::redis_url();
    if pg.is_some() && redis.is_some() {
        all.push(Backend::External);
    }
    all
}

pub const SECRET: &str = "end-to-end-test-secret-0123456789abcdef";

/// Signs circulation commands on RabbitMQ.
const BUS_SECRET: &str = "end-to-end-circulation-secret-0123456789abc";

pub fn token_settings() -> TokenSettings {
    TokenSettings {
        algorithm: jsonwebtoken::Algorithm::HS256,
        secret: Some(Secret::new(SECRET)),
        previous_secret: None,
        issuer: "user-service".into(),
        audience: "platform".into(),
        lifetime: Duration::from_secs(30 * 60),
        leeway: Duration::from_secs(0),
    }
}

/// A running platform and what a test needs to drive it.
pub struct TestStack {
    pub stack: Stack,
    /// The gateway's base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub http: reqwest::Client,
    pub backend: Backend,
    /// The proxy in front of Redis (external backend only).
    pub redis_proxy: Option<CuttableProxy>,
    /// The proxy in front of RabbitMQ (external backend with `TEST_AMQP_URL` only).
    pub amqp_proxy: Option<CuttableProxy>,
    pub kv: Kv,
    /// The circulation bus's configuration (through the proxy, on RabbitMQ).
    pub bus: BusConfig,
    dbs: Vec<TestDb>,
    _topology: Option<TestTopology>,
    _streams: Option<events::testing::TestStreams>,
    /// Where user-service writes the notification e-mails (`notification-<id>.eml`).
    pub mail_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts a stack on `backend`; `tweak` may adjust any service's configuration first.
pub async fn start(
    backend: Backend,
    label: &str,
    tweak: impl FnOnce(&mut StackConfig),
) -> TestStack {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (user_db, scraper_db, book_db, kv, redis_proxy) = match backend {
        Backend::Embedded => {
            let user = TestDb::sqlite(dir.path(), "users.sqlite");
            let scraper = TestDb::sqlite(dir.path(), "scraper.sqlite");
            let book = TestDb::sqlite(dir.path(), "books.sqlite");
            (
                user,
                scraper,
                book,
                Kv::memory(&test_support::unique_prefix(label)),
                None,
            )
        }
        Backend::External => {
            let pg = test_support::postgres_url().expect("TEST_DATABASE_URL");
            let redis = test_support::redis_url().expect("TEST_REDIS_URL");
            let (proxy, kv) = test_support::redis_behind_proxy(&redis, label).await;
            let schema = |suffix: &str| {
                TestDb::Postgres(test_support::TestSchema::new(
                    &pg,
                    &format!("{label}_{suffix}"),
                ))
            };
            (schema("u"), schema("s"), schema("b"), kv, Some(proxy))
        }
    };
    let (bus, amqp_proxy, topology) = match (backend, amqp_url()) {
        (Backend::External, Some(url)) => {
            let proxy = CuttableProxy::start(test_support::host_port(&url)).await;
            let prefix = format!("test.{label}.{}", uuid::Uuid::new_v4().simple());
            let topology = TestTopology {
                url: url.clone(),
                config: BusConfig::amqp(&url, BUS_SECRET, &prefix),
            };
            let via_proxy = test_support::via(&url, proxy.addr());
            let mut bus = BusConfig::amqp(&via_proxy, BUS_SECRET, &prefix);
            // Back quickly once RabbitMQ is: the fault tests wait for it.
            bus.reconnect_max = Duration::from_millis(500);
            (bus, Some(proxy), Some(topology))
        }
        _ => (BusConfig::local(&dir.path().join("bus")), None, None),
    };

    let mut user = user_service::config::Config::for_tests(user_db.config(), SECRET);
    user.tokens = token_settings();
    let mail_dir = dir.path().join("mail");
    user.notifications.mail = user_service::config::MailConfig::folder(&mail_dir);
    let mut scraper =
        scraper_service::config::Config::for_tests(scraper_db.config(), token_settings());
    scraper.fetcher = scraper_service::config::FetcherChoice::Http;
    let app = app_service::config::Config::new("http://unused", "http://unused", token_settings());
    // Events on JetStream with the external backend (streams of this test's own, deleted
    // afterwards), else on the in-process stream; mail always to a folder of the test's own.
    let (events, streams) = match (backend, events::testing::nats_url()) {
        (Backend::External, Some(url)) => {
            let streams = events::testing::TestStreams::new(&url, label);
            (streams.config.clone(), Some(streams))
        }
        _ => (StreamConfig::local(&dir.path().join("events")), None),
    };
    let mut book = book_service::config::Config::for_tests(
        book_db.config(),
        SECRET,
        bus.clone(),
        events.clone(),
    );
    book.tokens = token_settings();
    let mut borrowings = borrowings_function::config::Config::for_tests("http://unused", SECRET);
    borrowings.tokens = token_settings();
    let mut gateway =
        gateway::config::Config::for_upstreams(vec!["http://unused".into()], token_settings());
    gateway.health_check_interval = HEALTH_CHECK_INTERVAL;
    let mut config = StackConfig {
        user,
        scraper,
        app,
        book,
        borrowings,
        gateway,
        bus: bus.clone(),
        events,
        explicit_urls: ExplicitUrls::default(),
    };
    tweak(&mut config);
    let bus = config.bus.clone();

    let stack = Stack::start(config, kv.clone())
        .await
        .expect("stack starts");
    let url = format!("http://{}", stack.gateway_addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let ts = TestStack {
        stack,
        url,
        http,
        backend,
        redis_proxy,
        amqp_proxy,
        kv,
        bus,
        dbs: vec![user_db, scraper_db, book_db],
        _topology: topology,
        _streams: streams,
        mail_dir,
        _dir: dir,
    };
    ts.wait_ready().await;
    ts
}

/// How often the gateway probes its upstream instances in these tests.
pub const HEALTH_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// A port that was free a moment ago, for an instance to be started on later.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Another book-service instance of a test's stack: same database, same bus.
pub struct BookInstance {
    pub port: u16,
    trigger: ShutdownTrigger,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BookInstance {
    /// Stops it: no new connections, in-flight requests and commands finish.
    pub async fn stop(self) {
        self.trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.server).await;
    }
}

impl TestStack {
    /// Polls the gateway until a public route reaches app-service.
    async fn wait_ready(&self) {
        for _ in 0..100 {
            if let Ok(r) = self
                .http
                .get(format!("{}/openapi.json", self.url))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the stack did not become ready");
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.post(self.at(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.get(self.at(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("request")).await
    }

    /// Registers `name` with a default password; returns the new id.
    pub async fn register(&self, name: &str) -> i64 {
        let (status, body, _) = self
            .post_json("/auth/register/", &json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}), None)
            .await;
        assert_eq!(status, 201, "register {name}: {body}");
        body["id"].as_i64().expect("id")
    }

    /// Logs `name` in; returns the access token.
    pub async fn login(&self, name: &str) -> String {
        let (status, body, headers) = self
            .post_json(
                "/auth/login/",
                &json!({"username": name, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 200, "login {name}: {body}");
        assert_eq!(
            headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap_or("")),
            Some("no-store")
        );
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// The scraper-service database of this stack.
    pub fn scraper_db(&self) -> DbConfig {
        self.dbs[1].config()
    }

    /// The user-service database of this stack.
    pub fn user_db(&self) -> DbConfig {
        self.dbs[0].config()
    }

    /// The book-service database of this stack.
    pub fn book_db(&self) -> DbConfig {
        self.dbs[2].config()
    }

    /// Whether circulation commands travel over RabbitMQ.
    pub fn is_amqp(&self) -> bool {
        matches!(self.bus.transport, Transport::Amqp(_))
    }

    /// Starts another book-service instance on this stack's database and bus (a competing
    /// consumer of its commands), on `port` (or any free one); returns once it is ready.
    pub async fn start_book_instance(&self, port: Option<u16>) -> BookInstance {
        let bus = match self.bus.transport {
            // In process, every consumer must share the process's one queue.
            Transport::Local { .. } => self.stack.bus.clone(),
            Transport::Amqp(_) => Bus::open(self.bus.clone()).await.expect("the bus opens"),
        };
        let mut config = book_service::config::Config::for_tests(
            self.book_db(),
            SECRET,
            self.bus.clone(),
            self.stack.events.config().clone(),
        );
        config.tokens = token_settings();
        config.server.listen = format!("127.0.0.1:{}", port.unwrap_or(0));
        let app = book_service::startup::Application::build(
            config,
            self.kv.clone(),
            bus,
            self.stack.events.clone(),
        )
        .await
        .expect("book-service instance starts");
        let port = app.port();
        let (trigger, shutdown) = shutdown_channel();
        let server = tokio::spawn(app.run_until_stopped(shutdown));
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let mut ok = false;
        for _ in 0..200 {
            if let Ok(r) = self.http.get(&ready).send().await {
                if r.status().is_success() {
                    ok = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            ok,
            "the book-service instance on port {port} did not become ready"
        );
        BookInstance {
            port,
            trigger,
            server,
        }
    }

    /// Grants `role` to `username` with user-service's `set-role` command (ending their
    /// sessions, as the command does).
    pub async fn set_role(&self, username: &str, role: &str) {
        user_service::commands::set_role(&self.user_db(), Some(&self.kv), username, role)
            .await
            .unwrap_or_else(|e| panic!("set-role {username} {role}: {e}"));
    }

    /// When the command `message_id` was applied, if it was (`processed_commands`).
    pub async fn processed_at(&self, message_id: &str) -> Option<chrono::NaiveDateTime> {
        let db = service_kit::db::Db::connect(&self.book_db())
            .await
            .expect("book database");
        let row: Option<(chrono::NaiveDateTime,)> = service_kit::with_db!(&db, pool => {
            sqlx::query_as("SELECT processed_at FROM processed_commands WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(pool)
                .await
        })
        .expect("processed_commands");
        db.close().await;
        row.map(|(at,)| at)
    }

    /// A `COUNT(*)`-like query of one integer on the book-service database.
    pub async fn book_count(&self, sql: &str) -> i64 {
        let db = service_kit::db::Db::connect(&self.book_db())
            .await
            .expect("book database");
        let (n,): (i64,) =
            service_kit::with_db!(&db, pool => sqlx::query_as(sql).fetch_one(pool).await)
                .expect(sql);
        db.close().await;
        n
    }

    /// Sends a request with an optional bearer token and JSON body; status, body, headers.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, self.at(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        read(req.send().await.expect("request")).await
    }

    /// Stops the stack; its PostgreSQL schemas are dropped with `dbs` (also when a test
    /// panicked before calling this).
    pub async fn stop(self) {
        self.stack.stop().await;
    }
}

pub const PASSWORD: &str = "correct-horse-battery";

async fn read(resp: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, headers)
}

/// The claims inside a token (without verifying it).
pub fn claims_of(token: &str) -> Claims {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

/// Signs `claims` with the test secret.
pub fn sign(claims: &Claims) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}
