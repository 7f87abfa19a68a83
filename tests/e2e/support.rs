//! Starting the whole platform in-process for end-to-end tests, on either backend pair:
//! embedded (SQLite files in a temporary directory, in-process sessions) always, and
//! external (a fresh PostgreSQL schema per service, Redis under a unique prefix, reached
//! through a proxy the test can cut) when `TEST_DATABASE_URL` and `TEST_REDIS_URL` are set.

#![allow(dead_code)]

use std::time::Duration;

use common::auth::{Claims, TokenSettings};
use common::config::Secret;
use common::kv::Kv;
use platform::stack::{ExplicitUrls, Stack, StackConfig};
use serde_json::{json, Value};
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

pub fn token_settings() -> TokenSettings {
    TokenSettings {
        algorithm: jsonwebtoken::Algorithm::HS256,
        secret: Some(Secret::new(SECRET)),
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
    pub kv: Kv,
    dbs: Vec<TestDb>,
    _dir: tempfile::TempDir,
}

/// Starts a stack on `backend`; `tweak` may adjust any service's configuration first.
pub async fn start(
    backend: Backend,
    label: &str,
    tweak: impl FnOnce(&mut StackConfig),
) -> TestStack {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (user_db, scraper_db, kv, redis_proxy) = match backend {
        Backend::Embedded => {
            let user = TestDb::sqlite(dir.path(), "users.sqlite");
            let scraper = TestDb::sqlite(dir.path(), "scraper.sqlite");
            (
                user,
                scraper,
                Kv::memory(&test_support::unique_prefix(label)),
                None,
            )
        }
        Backend::External => {
            let pg = test_support::postgres_url().expect("TEST_DATABASE_URL");
            let redis = test_support::redis_url().expect("TEST_REDIS_URL");
            let (proxy, kv) = test_support::redis_behind_proxy(&redis, label).await;
            let user = TestDb::Postgres(test_support::TestSchema::new(&pg, &format!("{label}_u")));
            let scraper =
                TestDb::Postgres(test_support::TestSchema::new(&pg, &format!("{label}_s")));
            (user, scraper, kv, Some(proxy))
        }
    };

    let mut user = user_service::config::Config::for_tests(user_db.config(), SECRET);
    user.tokens = token_settings();
    let mut scraper =
        scraper_service::config::Config::for_tests(scraper_db.config(), token_settings());
    scraper.fetcher = scraper_service::config::FetcherChoice::Http;
    let app = app_service::config::Config::new("http://unused", "http://unused", token_settings());
    let mut gateway =
        gateway::config::Config::for_upstreams(vec!["http://unused".into()], token_settings());
    gateway.health_check_interval = Duration::from_millis(200);
    let mut config = StackConfig {
        user,
        scraper,
        app,
        gateway,
        explicit_urls: ExplicitUrls::default(),
    };
    tweak(&mut config);

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
        kv,
        dbs: vec![user_db, scraper_db],
        _dir: dir,
    };
    ts.wait_ready().await;
    ts
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
    pub fn scraper_db(&self) -> service_kit::db::DbConfig {
        self.dbs[1].config()
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
