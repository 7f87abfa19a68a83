//! Test support: the fixture site, spawning the service, and polling helpers.

#![allow(dead_code)]

pub mod corpus;
pub mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use api::scrape::Idno;
use common::auth::{Claims, Role, SessionData, Sessions, TokenSettings};
use common::config::Secret;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use reqwest::StatusCode;
use scraper_service::config::{Config, FetcherChoice};
use scraper_service::startup::Application;
use serde_json::{json, Value};
use service_kit::db::{Db, DbConfig};

/// The secret tokens are signed with in these tests.
pub const SECRET: &str = "scraper-service-tests-secret-0123456789";

/// A valid IDNO (as text) made of a 12-digit stem and its check digit.
pub fn idno(stem: &str) -> String {
    Idno::from_stem(stem).to_string()
}

/// `raw`, which the test knows to be a valid IDNO.
pub fn checked(raw: &str) -> Idno {
    Idno::parse(raw).expect("a valid IDNO")
}

/// HS256 token settings with [`SECRET`].
pub fn tokens() -> TokenSettings {
    TokenSettings {
        algorithm: common::auth::hmac_algorithm("HS256").expect("HS256"),
        secret: Some(Secret::new(SECRET)),
        previous_secret: None,
        issuer: "user-service".into(),
        audience: "platform".into(),
        lifetime: Duration::from_secs(600),
        leeway: Duration::from_secs(5),
    }
}

/// A configuration for tests: port 0, plain HTTP fetcher, fast polling and retries.
pub fn config(db: DbConfig, source: &str) -> Config {
    let mut c = Config::for_tests(db, tokens());
    c.source_base_url = url::Url::parse(source).expect("fixture URL");
    c.fetcher = FetcherChoice::Http;
    c.workers = 2;
    c.poll_interval = Duration::from_millis(50);
    c.lease = Duration::from_secs(30);
    c.retry_base = Duration::from_millis(50);
    c.retry_max = Duration::from_millis(200);
    c.page_timeout = Duration::from_secs(10);
    c.server.drain = Duration::from_secs(3);
    c
}

/// Whether chromedriver and Chromium are installed. When they are not, browser tests are
/// skipped — unless `REQUIRE_EXTERNAL_BACKENDS=1`, which makes them fail.
pub fn browser_available() -> bool {
    let c = Config::for_tests(DbConfig::sqlite(Path::new("/tmp"), "unused"), tokens());
    let found = scraper_service::config::find_executable(&c.chromedriver_path).is_some()
        && scraper_service::config::find_executable(&c.chromium_path).is_some();
    if !found {
        let required =
            std::env::var("REQUIRE_EXTERNAL_BACKENDS").is_ok_and(|v| v == "1" || v == "true");
        assert!(
            !required,
            "REQUIRE_EXTERNAL_BACKENDS is set but chromedriver/Chromium are not installed"
        );
        eprintln!("SKIPPED: chromedriver or Chromium not found; browser test not run");
    }
    found
}

/// The user a [`TestApp`] acts as unless told otherwise.
pub const USER_ID: i64 = 1;

/// A live session for `user_id` with `role` in `kv` (where the service looks sessions up),
/// and a token for it signed with [`SECRET`] — as user-service would issue at login.
pub async fn login(kv: &Kv, user_id: i64, role: Role) -> String {
    login_signed_with(kv, user_id, role, SECRET).await
}

/// [`login`], but the token is signed with `secret`.
pub async fn login_signed_with(kv: &Kv, user_id: i64, role: Role, secret: &str) -> String {
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let username = format!("user{user_id}");
    let session = SessionData {
        user_id,
        username: username.clone(),
        email: format!("{username}@example.com"),
        role,
    };
    Sessions::new(kv.clone())
        .create(&sid, &session, Duration::from_secs(600))
        .await
        .expect("session stored");
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user_id.to_string(),
        sid,
        username,
        role: role.as_str().into(),
        iat: now,
        exp: now + 600,
        iss: "user-service".into(),
        aud: "platform".into(),
    };
    test_support::sign_hs256(&claims, secret)
}

/// A running service.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: Db,
    kv: Kv,
    /// The token of user [`USER_ID`] (role `user`), sent by the helpers without `_as`.
    pub token: String,
    /// IDNOs asked for, whose cache entries `stop` deletes.
    asked: std::sync::Mutex<Vec<String>>,
    trigger: ShutdownTrigger,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn spawn(config: Config, kv: Kv) -> TestApp {
        let app = Application::build(config, kv.clone())
            .await
            .expect("service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let db = app.db().clone();
        let (trigger, shutdown) = shutdown_channel();
        let handle = tokio::spawn(app.run_until_stopped(shutdown));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let token = login(&kv, USER_ID, Role::User).await;
        TestApp {
            base,
            client,
            db,
            kv,
            token,
            asked: Default::default(),
            trigger,
            handle,
        }
    }

    /// A token of user `user_id` with `role`.
    pub async fn login(&self, user_id: i64, role: Role) -> String {
        login(&self.kv, user_id, role).await
    }

    /// A token of user `user_id` with a live session, signed with `secret`.
    pub async fn login_signed_with(&self, user_id: i64, secret: &str) -> String {
        login_signed_with(&self.kv, user_id, Role::Admin, secret).await
    }

    /// Graceful stop; waits until the service has drained and released its jobs. Deletes the
    /// cache entries of the companies asked for (a shared Redis outlives the test).
    pub async fn stop(self) {
        self.trigger.trigger();
        self.handle
            .await
            .expect("service task")
            .expect("service stopped cleanly");
        let asked = std::mem::take(&mut *self.asked.lock().unwrap());
        forget(&self.kv, &asked).await;
    }

    /// Marks `idno` for cache clean-up at `stop` (when another instance asked for it).
    pub fn remember(&self, idno: &str) {
        self.asked.lock().unwrap().push(idno.to_owned());
    }

    /// POST as the default user.
    pub async fn post(
        &self,
        path: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.post_as(Some(&self.token), path, body).await
    }

    /// POST with `token` (none: no `Authorization` header).
    pub async fn post_as(
        &self,
        token: Option<&str>,
        path: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        if let Some(idno) = body["idno"].as_str() {
            self.asked.lock().unwrap().push(idno.to_owned());
        }
        let mut req = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// GET as the default user.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(Some(&self.token), path).await
    }

    /// GET with `token` (none: no `Authorization` header).
    pub async fn get_as(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let resp = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.expect("metrics text")
    }

    /// `POST /scrape/` as the default user.
    pub async fn scrape(&self, idno: &str, force: bool) -> (StatusCode, Value) {
        self.scrape_as(&self.token, idno, force).await
    }

    /// `POST /scrape/` with `token`.
    pub async fn scrape_as(&self, token: &str, idno: &str, force: bool) -> (StatusCode, Value) {
        let (status, _, body) = self
            .post_as(
                Some(token),
                "/scrape/",
                json!({"idno": idno, "force_refresh": force}),
            )
            .await;
        (status, body)
    }

    /// Polls the job until it is succeeded or failed.
    pub async fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        self.wait_job_as(&self.token, id, timeout).await
    }

    /// [`TestApp::wait_job`] with `token`.
    pub async fn wait_job_as(&self, token: &str, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self
                .get_as(Some(token), &format!("/scrape/jobs/{id}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if matches!(body["state"].as_str(), Some("succeeded" | "failed")) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not finish in time: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls until the job is in `state`.
    pub async fn wait_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, body) = self.get(&format!("/scrape/jobs/{id}")).await;
            if body["state"] == state {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never reached {state}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Deletes the cache entries of `ids` (keys left in a shared Redis would outlive the test).
pub async fn forget(kv: &Kv, ids: &[String]) {
    for id in ids {
        let _ = kv.del(&scraper_service::cache::key(id)).await;
    }
}

/// A single number from the database, e.g. `SELECT COUNT(*) …` (cast to BIGINT).
pub async fn scalar(db: &Db, sql: &str, idno: &str) -> i64 {
    service_kit::with_db!(db, pool => sqlx::query_scalar::<_, i64>(sql).bind(idno).fetch_one(pool).await)
        .expect("query")
}
