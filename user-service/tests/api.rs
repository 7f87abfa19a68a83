//! user-service driven over HTTP, the way app-service and clients use it: the real service on
//! port 0, against SQLite and the in-process store always, and against PostgreSQL and Redis
//! when `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set. Readers' notifications, with
//! book-service and the event stream, are in [`notifications`].

mod notifications;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::auth::{Claims, TokenVerifier};
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use jsonwebtoken::Algorithm;
use reqwest::header::{
    HeaderMap, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use service_kit::db::DbConfig;
use test_support::{sign_hmac, TestDb, TestSchema};
use user_service::commands::SessionsOutcome;
use user_service::config::{Config, ThrottleConfig};
use user_service::hasher::Lane;
use user_service::startup::Application;
use user_service::state::AppState;
use user_service::tokens::EdKey;

const SECRET: &str = "user-service-integration-tests-secret-0123456789";
const PASSWORD: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// One database + key-value combination (the test database drops itself).
struct Case {
    db: TestDb,
    kv: Kv,
}

impl Case {
    fn name(&self) -> String {
        format!("{}+{}", self.db.name(), self.kv.backend_name())
    }

    fn config(&self) -> Config {
        Config::for_tests(self.db.config(), SECRET)
    }
}

/// SQLite + memory always; PostgreSQL + Redis when configured.
async fn cases(dir: &Path, label: &str) -> Vec<Case> {
    test_support::backends(dir, label)
        .await
        .into_iter()
        .map(|(db, kv)| Case { db, kv })
        .collect()
}

struct TestApp {
    base: String,
    http: reqwest::Client,
    state: AppState,
    trigger: ShutdownTrigger,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("a readable body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: impl reqwest::header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn token(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "login failed: {}", self.body);
        self.body["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }
}

impl TestApp {
    async fn spawn(config: Config, kv: Kv) -> Self {
        let app = Application::build(config, kv)
            .await
            .expect("the service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (trigger, shutdown) = shutdown_channel();
        let server = tokio::spawn(app.run_until_stopped(shutdown));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            base,
            http,
            state,
            trigger,
            server,
        }
    }

    async fn stop(self) {
        self.trigger.trigger();
        self.server
            .await
            .expect("server task")
            .expect("server stops cleanly");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post_json(&self, path: &str, body: &Value) -> Answer {
        Answer::from(
            self.http
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        forwarded_for: Option<&str>,
    ) -> Answer {
        let mut req = self
            .http
            .post(self.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body.to_owned());
        if let Some(ip) = forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    async fn register(&self, username: &str, email: &str, password: &str) -> Answer {
        self.post_json(
            "/auth/register",
            &json!({"username": username, "email": email, "password": password}),
        )
        .await
    }

    async fn login(&self, username: &str, password: &str) -> Answer {
        self.login_from(username, password, None).await
    }

    async fn login_from(&self, username: &str, password: &str, ip: Option<&str>) -> Answer {
        let body = json!({"username": username, "password": password}).to_string();
        self.post_raw("/auth/login", "application/json", &body, ip)
            .await
    }

    async fn token_form(&self, fields: &[(&str, &str)]) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.post_raw(
            "/auth/token",
            "application/x-www-form-urlencoded",
            &body,
            None,
        )
        .await
    }

    async fn me(&self, token: &str) -> Answer {
        self.get("/auth/me", Some(token)).await
    }

    async fn logout(&self, token: &str) -> Answer {
        Answer::from(
            self.http
                .post(self.url("/auth/logout"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    fn claims(&self, token: &str) -> Claims {
        self.state
            .tokens
            .verifier()
            .verify(token)
            .expect("a genuine token")
    }

    /// Any request, with an optional bearer token and JSON body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    async fn register_from(&self, username: &str, ip: &str) -> Answer {
        let body = json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        })
        .to_string();
        self.post_raw("/auth/register", "application/json", &body, Some(ip))
            .await
    }

    /// Registers `username` (from an address of its own) and returns its id.
    async fn user(&self, username: &str) -> i64 {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ip = format!("10.77.{}.{}", n / 250, n % 250 + 1);
        let created = self.register_from(username, &ip).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["id"].as_i64().unwrap()
    }

    async fn set_role(&self, id: i64, role: &str, token: &str) -> Answer {
        self.call(
            reqwest::Method::PUT,
            &format!("/admin/users/{id}/role"),
            Some(token),
            Some(&json!({"role": role})),
        )
        .await
    }

    /// Runs `sql` (with `$1` bound to `username`) on the service's own database.
    async fn sql(&self, sql: &str, username: &str) {
        service_kit::with_db!(&self.state.db, pool => {
            sqlx::query(sql).bind(username).execute(pool).await.map(|_| ())
        })
        .unwrap();
    }

    /// How many session revocations are still pending.
    async fn pending_revocations(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM session_revocations WHERE done_at IS NULL";
        service_kit::with_db!(&self.state.db, pool => {
            sqlx::query_scalar(sql).fetch_one(pool).await
        })
        .unwrap()
    }

    /// The stored hash and scheme of `username`.
    async fn password_row(&self, username: &str) -> (String, Option<String>) {
        let sql = "SELECT hashed_password, password_scheme FROM users WHERE username = $1";
        service_kit::with_db!(&self.state.db, pool => {
            sqlx::query_as(sql).bind(username).fetch_one(pool).await
        })
        .unwrap()
    }
}

/// Waits up to `limit` for `check` to hold, polling.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Percent-encoding for form bodies.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn locs(body: &Value) -> Vec<String> {
    body["detail"]
        .as_array()
        .expect("a list of field errors")
        .iter()
        .map(|e| {
            e["loc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.to_string().replace('"', ""))
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn register_creates_users_and_refuses_duplicates_ignoring_case() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "register").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();

        let created = app.register("Alice", "Alice@Example.com", PASSWORD).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{name}: {}",
            created.body
        );
        assert!(created.body["id"].is_i64(), "{name}: {}", created.body);
        assert_eq!(created.body["username"], "Alice");
        assert_eq!(created.body["email"], "Alice@Example.com");
        assert!(created.body.get("hashed_password").is_none());

        let same_name = app.register("aLICE", "other@example.com", PASSWORD).await;
        assert_eq!(same_name.status, StatusCode::CONFLICT, "{name}");
        assert_eq!(
            same_name.body,
            json!({"detail": "Username already registered"})
        );

        let same_email = app.register("alice2", "alice@EXAMPLE.COM", PASSWORD).await;
        assert_eq!(same_email.status, StatusCode::CONFLICT, "{name}");
        assert_eq!(
            same_email.body,
            json!({"detail": "Email already registered"})
        );

        let both = app.register("ALICE", "ALICE@example.com", PASSWORD).await;
        assert_eq!(
            both.body,
            json!({"detail": "Username already registered"}),
            "{name}"
        );

        // The trailing-slash form of the path works too, and ids are distinct.
        let bob = app
            .post_json(
                "/auth/register/",
                &json!({"username": "bob", "email": "bob@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(bob.status, StatusCode::CREATED, "{name}: {}", bob.body);
        assert_ne!(bob.body["id"], created.body["id"]);

        // A race between two registrations of the same name: exactly one wins.
        let (a, b) = tokio::join!(
            app.register("carol", "carol1@example.com", PASSWORD),
            app.register("CAROL", "carol2@example.com", PASSWORD)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "{name}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn invalid_input_is_422_naming_every_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "invalid").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;

        let bad = app.register("a b", "not-an-email", "short").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            locs(&bad.body),
            ["body.username", "body.email", "body.password"],
            "{}",
            bad.body
        );

        // A password over 128 characters is refused, never silently cut.
        let long = app
            .register("dave", "dave@example.com", &"x".repeat(129))
            .await;
        assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(long.body["detail"][0]["type"], "string_too_long");

        let malformed = app
            .post_raw(
                "/auth/register",
                "application/json",
                r#"{"username": "x", "#,
                None,
            )
            .await;
        assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(malformed.body["detail"][0]["type"], "json_invalid");

        let missing = app
            .post_json(
                "/auth/register",
                &json!({"username": "erin", "email": "erin@example.com"}),
            )
            .await;
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(locs(&missing.body), ["body.password"]);

        let empty_login = app.login("", "").await;
        assert_eq!(empty_login.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(locs(&empty_login.body), ["body.username", "body.password"]);

        let grant = app
            .token_form(&[
                ("grant_type", "client_credentials"),
                ("username", "x"),
                ("password", "y"),
            ])
            .await;
        assert_eq!(grant.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(locs(&grant.body), ["body.grant_type"]);

        // Nothing was stored: the name is still free.
        assert_eq!(
            app.register("dave", "dave@example.com", PASSWORD)
                .await
                .status,
            StatusCode::CREATED
        );
        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_with_json_and_with_the_oauth2_form() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "login").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        let id = app
            .register("Alice", "alice@example.com", PASSWORD)
            .await
            .body["id"]
            .as_i64()
            .unwrap();

        let ok = app.login("alice", PASSWORD).await;
        assert_eq!(ok.status, StatusCode::OK, "{name}: {}", ok.body);
        assert_eq!(ok.body["token_type"], "bearer");
        assert_eq!(ok.body["expires_in"], 1800);
        assert_eq!(ok.header(CACHE_CONTROL), "no-store");
        assert_eq!(ok.header(PRAGMA), "no-cache");
        let claims = app.claims(&ok.token());
        assert_eq!(claims.sub, id.to_string());
        assert_eq!(claims.username, "Alice");
        assert_eq!(claims.role, "user");
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            ("user-service", "platform")
        );
        assert_eq!(claims.exp - claims.iat, 1800);
        assert!(
            claims.sid.len() >= 32,
            "the session id carries at least 128 bits"
        );

        // By email, in any case; and through the trailing-slash path.
        let by_email = app
            .post_json(
                "/auth/login/",
                &json!({"username": "ALICE@example.COM", "password": PASSWORD}),
            )
            .await;
        assert_eq!(by_email.status, StatusCode::OK, "{name}: {}", by_email.body);
        assert_ne!(
            app.claims(&by_email.token()).sid,
            claims.sid,
            "every login opens its own session"
        );

        let form = app
            .token_form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", ""),
                ("client_id", "swagger"),
            ])
            .await;
        assert_eq!(form.status, StatusCode::OK, "{name}: {}", form.body);
        assert_eq!(form.header(CACHE_CONTROL), "no-store");
        let me = app.me(&form.token()).await;
        assert_eq!(
            me.body,
            json!({"id": id, "username": "Alice", "email": "alice@example.com", "role": "user"})
        );

        let no_grant = app
            .token_form(&[("username", "alice"), ("password", PASSWORD)])
            .await;
        assert_eq!(no_grant.status, StatusCode::OK, "grant_type is optional");
        app.stop().await;
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "creds").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        app.register("alice", "alice@example.com", PASSWORD).await;

        let before = app.state.hasher.jobs_started();
        let wrong = app.login("alice", "not the password").await;
        let unknown = app.login("nobody", "not the password").await;
        let unknown_form = app
            .token_form(&[("username", "nobody"), ("password", "x")])
            .await;
        for answer in [&wrong, &unknown, &unknown_form] {
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
            assert_eq!(
                answer.body,
                json!({"detail": "Incorrect username or password"})
            );
            assert_eq!(answer.header(WWW_AUTHENTICATE), "Bearer");
        }
        // An unknown user costs a bcrypt verification too (against the dummy hash).
        assert_eq!(app.state.hasher.jobs_started() - before, 3);
        app.stop().await;
    }
}

#[tokio::test]
async fn passwords_longer_than_72_bytes_keep_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "long").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let long = format!("{}-the-tail-matters", "p".repeat(72));
        let changed_tail = format!("{}-the-tail-matterz", "p".repeat(72));
        assert_eq!(
            app.register("alice", "alice@example.com", &long)
                .await
                .status,
            StatusCode::CREATED
        );
        assert_eq!(app.login("alice", &long).await.status, StatusCode::OK);
        assert_eq!(
            app.login("alice", &changed_tail).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.login("alice", &long[..72]).await.status,
            StatusCode::UNAUTHORIZED
        );

        // 40 two-byte characters: 80 bytes, so over bcrypt's limit while only 40 characters.
        let accented = "é".repeat(40);
        let accented_changed = format!("{}è", "é".repeat(39));
        assert_eq!(
            app.register("bob", "bob@example.com", &accented)
                .await
                .status,
            StatusCode::CREATED
        );
        assert_eq!(app.login("bob", &accented).await.status, StatusCode::OK);
        assert_eq!(
            app.login("bob", &accented_changed).await.status,
            StatusCode::UNAUTHORIZED
        );
        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// The original app's database
// ---------------------------------------------------------------------------------------

/// A `$2b$` hash as passlib writes it (at cost 4 to keep the test fast).
fn passlib_hash(password: &str) -> String {
    bcrypt::hash_with_result(password, 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB)
}

#[tokio::test]
async fn an_existing_database_of_the_original_app_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let hash = passlib_hash("legacy-password");
    let hash_2a = bcrypt::hash_with_result("older-password", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);

    // SQLite, with the table as SQLAlchemy created it.
    let sqlite = DbConfig::sqlite(dir.path(), "legacy.sqlite");
    {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&sqlite.sqlite_path)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        for sql in [
            "CREATE TABLE users (id INTEGER NOT NULL, email VARCHAR, username VARCHAR, hashed_password VARCHAR, created_at DATETIME, PRIMARY KEY (id))",
            "CREATE UNIQUE INDEX ix_users_email ON users (email)",
            "CREATE UNIQUE INDEX ix_users_username ON users (username)",
            "CREATE INDEX ix_users_id ON users (id)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        for (user, h) in [
            ("legacy", &hash),
            ("older", &hash_2a),
            ("carol@example.org", &hash),
        ] {
            sqlx::query("INSERT INTO users (email, username, hashed_password, created_at) VALUES ($1, $2, $3, $4)")
                .bind(format!("{}@example.com", user.replace('@', ".")))
                .bind(user)
                .bind(h)
                .bind(service_kit::db::now())
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    }
    check_legacy_database(Config::for_tests(sqlite, SECRET)).await;

    // PostgreSQL, likewise.
    if let Some(url) = test_support::postgres_url() {
        let schema = TestSchema::new(&url, "legacy");
        let s = &schema.name;
        run_pg(
            &url,
            &[
                format!("CREATE SCHEMA \"{s}\""),
                format!("CREATE TABLE \"{s}\".users (id SERIAL NOT NULL, email VARCHAR, username VARCHAR, hashed_password VARCHAR, created_at TIMESTAMP WITHOUT TIME ZONE, PRIMARY KEY (id))"),
                format!("CREATE UNIQUE INDEX ix_users_email ON \"{s}\".users (email)"),
                format!("CREATE UNIQUE INDEX ix_users_username ON \"{s}\".users (username)"),
                format!("INSERT INTO \"{s}\".users (email, username, hashed_password, created_at) VALUES ('legacy@example.com', 'legacy', '{hash}', now()), ('older@example.com', 'older', '{hash_2a}', now()), ('carol.example.org@example.com', 'carol@example.org', '{hash}', now())"),
            ],
        )
        .await;
        check_legacy_database(Config::for_tests(schema.config(), SECRET)).await;

        // Names that differ only in case cannot become unique: start-up says so plainly.
        let dup = TestSchema::new(&url, "legacydup");
        let d = &dup.name;
        run_pg(
            &url,
            &[
                format!("CREATE SCHEMA \"{d}\""),
                format!("CREATE TABLE \"{d}\".users (id SERIAL PRIMARY KEY, email VARCHAR, username VARCHAR, hashed_password VARCHAR, created_at TIMESTAMP)"),
                format!("INSERT INTO \"{d}\".users (email, username, hashed_password) VALUES ('a@example.com', 'Bob', 'x'), ('b@example.com', 'bob', 'x')"),
            ],
        )
        .await;
        let err = Application::build(Config::for_tests(dup.config(), SECRET), Kv::memory("dup:"))
            .await
            .err()
            .expect("start-up must refuse");
        assert!(err.to_string().contains("differ only in case"), "{err}");
    }
}

async fn run_pg(url: &str, statements: &[String]) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

async fn check_legacy_database(config: Config) {
    let app = TestApp::spawn(config, Kv::memory(&test_support::unique_prefix("legacy"))).await;
    let login = app.login("legacy", "legacy-password").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(
        app.claims(&login.token()).role,
        "user",
        "the migration gave old rows the user role"
    );
    assert_eq!(
        app.login("LEGACY@example.com", "legacy-password")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.login("older", "older-password").await.status,
        StatusCode::OK,
        "$2a$ hashes verify too"
    );
    assert_eq!(
        app.login("legacy", "wrong-password").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The new unique indexes see the old rows, ignoring case.
    assert_eq!(
        app.register("Legacy", "new@example.com", PASSWORD)
            .await
            .status,
        StatusCode::CONFLICT
    );
    let new = app
        .register("newcomer", "newcomer@example.com", PASSWORD)
        .await;
    assert_eq!(new.status, StatusCode::CREATED, "{}", new.body);
    assert!(
        new.body["id"].as_i64().unwrap() > 2,
        "ids continue after the old ones"
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// Sessions and tokens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn me_and_logout_end_only_that_session() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "sessions").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        let id = app
            .register("alice", "alice@example.com", PASSWORD)
            .await
            .body["id"]
            .clone();
        let first = app.login("alice", PASSWORD).await.token();
        let second = app.login("alice", PASSWORD).await.token();

        let me = app.me(&first).await;
        assert_eq!(me.status, StatusCode::OK, "{name}");
        assert_eq!(
            me.body,
            json!({"id": id, "username": "alice", "email": "alice@example.com", "role": "user"})
        );
        assert_eq!(
            app.get("/auth/me/", Some(&first)).await.status,
            StatusCode::OK
        );

        let out = app.logout(&first).await;
        assert_eq!(out.status, StatusCode::OK, "{name}");
        assert_eq!(out.body, json!({"detail": "Logged out"}));

        let after = app.me(&first).await;
        assert_eq!(
            after.status,
            StatusCode::UNAUTHORIZED,
            "{name}: a logged-out token is refused"
        );
        assert_eq!(
            after.header(WWW_AUTHENTICATE),
            "Bearer error=\"invalid_token\""
        );
        assert_eq!(app.logout(&first).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.me(&second).await.status,
            StatusCode::OK,
            "{name}: the other session lives on"
        );

        let none = app.get("/auth/me", None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert_eq!(none.body, json!({"detail": "Not authenticated"}));
        assert_eq!(none.header(WWW_AUTHENTICATE), "Bearer");
        app.stop().await;
    }
}

#[tokio::test]
async fn expired_forged_and_foreign_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "forged").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        app.register("alice", "alice@example.com", PASSWORD).await;
        let genuine = app.login("alice", PASSWORD).await.token();
        let claims = app.claims(&genuine);
        let now = chrono::Utc::now().timestamp();

        // Same secret, same live session, but expired (beyond the 5 s leeway).
        let expired = Claims {
            iat: now - 3600,
            exp: now - 60,
            ..claims.clone()
        };
        let answer = app.me(&sign_hmac(&expired, Algorithm::HS256, SECRET)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.body, json!({"detail": "Token has expired"}));
        assert_eq!(
            answer.header(WWW_AUTHENTICATE),
            "Bearer error=\"invalid_token\""
        );

        // alg "none".
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"JWT"}"#),
            b64url(&serde_json::to_vec(&claims).unwrap())
        );
        // Altered claims under the genuine signature.
        let parts: Vec<&str> = genuine.split('.').collect();
        let admin = Claims {
            role: "admin".into(),
            ..claims.clone()
        };
        let altered = format!(
            "{}.{}.{}",
            parts[0],
            b64url(&serde_json::to_vec(&admin).unwrap()),
            parts[2]
        );
        // Another secret; another algorithm with our secret; a session that never existed.
        let other_secret = sign_hmac(
            &claims,
            Algorithm::HS256,
            "some-other-secret-some-other-secret-!!",
        );
        let other_alg = sign_hmac(&claims, Algorithm::HS512, SECRET);
        let no_session = sign_hmac(
            &Claims {
                sid: "0".repeat(32),
                ..claims.clone()
            },
            Algorithm::HS256,
            SECRET,
        );
        let other_user = sign_hmac(
            &Claims {
                sub: "999".into(),
                ..claims.clone()
            },
            Algorithm::HS256,
            SECRET,
        );
        for (what, token) in [
            ("alg none", none),
            ("altered claims", altered),
            ("other secret", other_secret),
            ("other algorithm", other_alg),
            ("unknown session", no_session),
            ("session of another user", other_user),
            ("garbage", "not.a.token".to_owned()),
        ] {
            let answer = app.me(&token).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
            assert_eq!(
                answer.header(WWW_AUTHENTICATE),
                "Bearer error=\"invalid_token\"",
                "{what}"
            );
            assert!(answer.body["detail"].is_string(), "{what}");
        }
        assert_eq!(app.me(&genuine).await.status, StatusCode::OK);
        app.stop().await;
    }
}

#[tokio::test]
async fn hmac_mode_publishes_an_empty_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let case = cases(dir.path(), "jwks").await.remove(0);
    let app = TestApp::spawn(case.config(), case.kv.clone()).await;
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.body, json!({"keys": []}));
    app.stop().await;
}

/// A fresh Ed25519 private key in PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes
/// it: the fixed 16-byte PKCS#8 prefix for Ed25519 followed by a random 32-byte seed.
fn generate_ed25519_pem(dir: &Path) -> std::path::PathBuf {
    use base64::Engine;
    const PKCS8_ED25519_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let seed: [u8; 32] = rand::random();
    let der = [PKCS8_ED25519_PREFIX.as_slice(), seed.as_slice()].concat();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let path = dir.join("ed25519.pem");
    std::fs::write(
        &path,
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    path
}

/// Rotating an HMAC secret logs nobody out: with the old secret as `SECRET_KEY_PREVIOUS`, a
/// live session's token stays accepted while new tokens are signed with the new secret only;
/// once the previous secret is dropped (its tokens expired), only new tokens pass.
#[tokio::test]
async fn rotating_the_hmac_secret_keeps_live_sessions_and_signs_with_the_new_one() {
    const NEXT: &str = "the-next-signing-secret-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "rotate_hs").await {
        let name = case.name();
        let before = TestApp::spawn(case.config(), case.kv.clone()).await;
        before
            .register("alice", "alice@example.com", PASSWORD)
            .await;
        let old = before.login("alice", PASSWORD).await.token();
        before.stop().await;

        let mut config = case.config();
        config.tokens.previous_secret = config.tokens.secret.take();
        config.tokens.secret = Some(common::config::Secret::new(NEXT));
        let during = TestApp::spawn(config.clone(), case.kv.clone()).await;
        assert_eq!(during.me(&old).await.status, StatusCode::OK, "{name}");
        let new = during.login("alice", PASSWORD).await.token();
        let mut only_new = config.tokens.clone();
        only_new.previous_secret = None;
        assert!(
            only_new.hmac_verifier().unwrap().verify(&new).is_ok(),
            "{name}"
        );
        let mut only_old = config.tokens.clone();
        only_old.secret = only_old.previous_secret.take();
        assert!(
            only_old.hmac_verifier().unwrap().verify(&new).is_err(),
            "{name}"
        );
        during.stop().await;

        config.tokens.previous_secret = None;
        let after = TestApp::spawn(config, case.kv.clone()).await;
        assert_eq!(
            after.me(&old).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(after.me(&new).await.status, StatusCode::OK, "{name}");
        after.stop().await;
    }
}

/// Rotating the Ed25519 key logs nobody out: the JWKS saved before the rotation, given as
/// `JWT_EXTRA_JWKS_FILE`, keeps the previous public key published (and accepted) beside the
/// new one, which signs every new token; dropping it later ends only the old tokens.
#[tokio::test]
async fn rotating_the_ed25519_key_keeps_live_sessions_while_the_previous_key_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let (old_dir, new_dir) = (dir.path().join("old"), dir.path().join("new"));
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let old_key = EdKey::from_file(&generate_ed25519_pem(&old_dir)).unwrap();
    let new_key = EdKey::from_file(&generate_ed25519_pem(&new_dir)).unwrap();
    for case in cases(dir.path(), "rotate_ed").await {
        let name = case.name();
        let mut config = case.config();
        config.tokens.algorithm = Algorithm::EdDSA;
        config.tokens.secret = None;
        config.ed_key = Some(old_key.clone());
        let before = TestApp::spawn(config.clone(), case.kv.clone()).await;
        before
            .register("alice", "alice@example.com", PASSWORD)
            .await;
        let old = before.login("alice", PASSWORD).await.token();
        let saved = dir.path().join(format!("previous-{}.json", case.db.name()));
        let published = before.get("/.well-known/jwks.json", None).await.body;
        std::fs::write(&saved, published.to_string()).unwrap();
        before.stop().await;

        config.ed_key = Some(new_key.clone());
        config.extra_jwks = user_service::tokens::read_extra_jwks(&saved).unwrap();
        let during = TestApp::spawn(config.clone(), case.kv.clone()).await;
        assert_eq!(during.me(&old).await.status, StatusCode::OK, "{name}");
        let new = during.login("alice", PASSWORD).await.token();
        let kid = jsonwebtoken::decode_header(&new).unwrap().kid;
        assert_eq!(kid.as_deref(), Some(new_key.kid()), "{name}");
        let jwks = during.get("/.well-known/jwks.json", None).await.body;
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [new_key.kid(), old_key.kid()], "{name}");
        // A verifier holding the published set (the gateway, after its refresh) takes both.
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
        let verifier = config.tokens.jwks_verifier(set).unwrap();
        assert!(
            verifier.verify(&old).is_ok() && verifier.verify(&new).is_ok(),
            "{name}"
        );
        during.stop().await;

        config.extra_jwks = jsonwebtoken::jwk::JwkSet::default();
        let after = TestApp::spawn(config, case.kv.clone()).await;
        assert_eq!(
            after.me(&old).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(after.me(&new).await.status, StatusCode::OK, "{name}");
        after.stop().await;
    }
    // The file is published as it is: a private key in it is refused at start-up.
    let leaked = dir.path().join("leaked.json");
    std::fs::write(
        &leaked,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA","kid":"k"}]}"#,
    )
    .unwrap();
    let refused = user_service::tokens::read_extra_jwks(&leaked).unwrap_err();
    assert!(refused.to_string().contains("private"), "{refused}");
}

#[tokio::test]
async fn eddsa_tokens_verify_with_the_published_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = generate_ed25519_pem(dir.path());
    let key = EdKey::from_file(&key_path).expect("a valid key");
    for case in cases(dir.path(), "eddsa").await {
        let mut config = case.config();
        config.tokens.algorithm = Algorithm::EdDSA;
        config.tokens.secret = None;
        config.ed_key = Some(key.clone());
        let settings = config.tokens.clone();
        let app = TestApp::spawn(config, case.kv.clone()).await;
        app.register("alice", "alice@example.com", PASSWORD).await;
        let token = app.login("alice", PASSWORD).await.token();

        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(key.kid()));

        let jwks = app.get("/.well-known/jwks.json", None).await;
        assert_eq!(jwks.status, StatusCode::OK);
        let published = &jwks.body["keys"][0];
        assert_eq!(published["kty"], "OKP");
        assert_eq!(published["crv"], "Ed25519");
        assert_eq!(published["alg"], "EdDSA");
        assert_eq!(published["use"], "sig");
        assert_eq!(published["kid"], key.kid());
        assert_eq!(
            published["x"].as_str().unwrap().len(),
            43,
            "32 bytes in base64url"
        );
        assert!(
            published.get("d").is_none(),
            "the private key is never published"
        );
        assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 1);

        // A verifier holding only the JWKS (as the gateway does) accepts the token.
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.body.clone()).unwrap();
        let verifier: TokenVerifier = settings.jwks_verifier(set).unwrap();
        let claims = verifier
            .verify(&token)
            .expect("the token verifies with the JWKS");
        assert_eq!(claims.username, "alice");
        assert_eq!(app.me(&token).await.status, StatusCode::OK);

        // HMAC tokens are not accepted in EdDSA mode, whatever the secret.
        let hs = sign_hmac(&claims, Algorithm::HS256, SECRET);
        assert_eq!(app.me(&hs).await.status, StatusCode::UNAUTHORIZED);
        app.stop().await;
    }
}

#[test]
fn a_malformed_signing_key_names_jwt_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    for path in [garbage, dir.path().join("missing.pem")] {
        let err = EdKey::from_file(&path).unwrap_err().to_string();
        assert!(err.starts_with("JWT_PRIVATE_KEY_FILE: "), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// Throttling and overload
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn repeated_failed_logins_are_throttled_without_hashing() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "throttle").await {
        let mut config = case.config();
        config.throttle = ThrottleConfig {
            max_failures_per_account: 3,
            max_failures_per_ip: 5,
            window: Duration::from_secs(900),
        };
        let app = TestApp::spawn(config, case.kv.clone()).await;
        let name = case.name();
        app.register("alice", "alice@example.com", PASSWORD).await;
        app.register("bob", "bob@example.com", PASSWORD).await;

        // Per account: three failures (from different addresses), then even the right
        // password is refused, by username or by email.
        for i in 0..3 {
            let ip = format!("192.0.2.{i}");
            assert_eq!(
                app.login_from("alice", "wrong-password", Some(&ip))
                    .await
                    .status,
                StatusCode::UNAUTHORIZED
            );
        }
        let hashed = app.state.hasher.jobs_started();
        for who in ["alice", "ALICE", "alice@example.com"] {
            let refused = app.login_from(who, PASSWORD, Some("192.0.2.99")).await;
            assert_eq!(
                refused.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{name}: {who}"
            );
            assert_eq!(
                refused.body,
                json!({"detail": "Too many failed login attempts; try again later"})
            );
            let retry: u64 = refused
                .header(RETRY_AFTER)
                .parse()
                .expect("Retry-After in seconds");
            assert!((1..=900).contains(&retry), "{retry}");
        }
        assert_eq!(
            app.state.hasher.jobs_started(),
            hashed,
            "{name}: a throttled login does no bcrypt"
        );
        // Other accounts are not affected.
        assert_eq!(
            app.login_from("bob", PASSWORD, Some("192.0.2.99"))
                .await
                .status,
            StatusCode::OK
        );

        // A success clears the account's failures: 2 + success + 2 never reaches 3.
        for round in 0..2 {
            for _ in 0..2 {
                let failed = app
                    .login_from("bob", "wrong-password", Some("198.51.100.1"))
                    .await;
                assert_eq!(
                    failed.status,
                    StatusCode::UNAUTHORIZED,
                    "{name}: round {round}"
                );
            }
            if round == 0 {
                assert_eq!(
                    app.login_from("bob", PASSWORD, Some("198.51.100.2"))
                        .await
                        .status,
                    StatusCode::OK
                );
            }
        }

        // Per address: five failures on five different names, then the address is refused
        // for everyone (the account counters are below their limit), others are not.
        for i in 0..5 {
            let failed = app
                .login_from(&format!("ghost{i}"), "x", Some("203.0.113.7"))
                .await;
            assert_eq!(failed.status, StatusCode::UNAUTHORIZED, "{name}");
        }
        let hashed = app.state.hasher.jobs_started();
        let refused = app
            .login_from("carol", "x", Some("203.0.113.7, 10.0.0.1"))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: the first X-Forwarded-For entry counts"
        );
        assert_eq!(app.state.hasher.jobs_started(), hashed);
        let elsewhere = app.login_from("carol", "x", Some("203.0.113.8")).await;
        assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_full_bcrypt_queue_answers_503_busy() {
    let dir = tempfile::tempdir().unwrap();
    let case = cases(dir.path(), "busy").await.remove(0);
    let mut config = case.config();
    config.bcrypt.threads = 1;
    config.bcrypt.queue = 1;
    let app = TestApp::spawn(config, case.kv.clone()).await;

    // Occupy the only thread and the only queue place.
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let hasher = app.state.hasher.clone();
    let blocker = tokio::spawn(async move {
        hasher
            .run(Lane::Verify, move || {
                let _ = started_tx.send(());
                let _ = wait.recv();
            })
            .await
    });
    started_rx.await.unwrap();
    let hasher = app.state.hasher.clone();
    let queued = tokio::spawn(async move { hasher.run(Lane::Verify, || ()).await });
    // Until the queued job is in place a request may still find room; poll until it does not.
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy = loop {
        let answer = app.login("nobody", "x").await;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.body, json!({"detail": "Server busy; retry"}));
    assert_eq!(busy.header(RETRY_AFTER), "1");
    // /auth/me needs no hashing and is unaffected.
    assert_eq!(
        app.get("/auth/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    queued.await.unwrap().unwrap();
    assert_eq!(
        app.login("nobody", "x").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// Redis outage
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_session_store_outage_fails_closed_and_recovers() {
    let Some(redis_url) = test_support::redis_url() else {
        eprintln!("TEST_REDIS_URL is not set; the outage of a real Redis cannot be tested");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (proxy, kv) = test_support::redis_behind_proxy(&redis_url, "outage").await;
    let config = Config::for_tests(DbConfig::sqlite(dir.path(), "outage.sqlite"), SECRET);
    let app = TestApp::spawn(config, kv).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let token = app.login("alice", PASSWORD).await.token();
    assert_eq!(app.me(&token).await.status, StatusCode::OK);

    proxy.cut();
    let me = app.me(&token).await;
    assert_eq!(
        me.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "never 200 without the session store"
    );
    assert_eq!(me.body, json!({"detail": "Session store unavailable"}));
    assert_eq!(
        app.login("alice", PASSWORD).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.logout(&token).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["kv"], "unavailable");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let me = app.me(&token).await;
        if me.status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after Redis came back: {}",
            me.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.login("alice", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------
// Roles, health, the binary
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn set_role_makes_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "roles").await {
        let db_config = case.db.config();
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        app.register("alice", "alice@example.com", PASSWORD).await;
        let before = app.login("alice", PASSWORD).await.token();
        assert_eq!(app.claims(&before).role, "user");

        user_service::commands::set_role(&db_config, None, "ALICE", "admin")
            .await
            .expect("set-role works");
        let after = app.login("alice", PASSWORD).await.token();
        assert_eq!(app.claims(&after).role, "admin");

        let unknown = user_service::commands::set_role(&db_config, None, "nobody", "admin")
            .await
            .unwrap_err();
        assert_eq!(unknown.to_string(), "no user named \"nobody\"");
        let bad_role = user_service::commands::set_role(&db_config, None, "alice", "root")
            .await
            .unwrap_err();
        assert!(bad_role.to_string().contains("root"), "{bad_role}");
        app.stop().await;
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "health").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
        let ready = app.get("/readyz", None).await;
        assert_eq!(
            ready.status,
            StatusCode::OK,
            "{}: {}",
            case.name(),
            ready.body
        );
        assert_eq!(ready.body["database"], "ok");
        assert_eq!(ready.body["kv"], "ok");
        let missing = app.get("/auth/nothing", None).await;
        assert_eq!(
            (missing.status, missing.body),
            (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
        );
        app.stop().await;
    }
}

#[test]
fn defaults_match_the_original_app() {
    let bcrypt = user_service::config::BcryptConfig::default();
    assert_eq!(bcrypt.cost, 12, "passlib's default cost");
    assert_eq!(bcrypt.queue, 64);
    assert!(bcrypt.threads >= 1);
    assert_eq!(
        ThrottleConfig::default(),
        ThrottleConfig {
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            window: Duration::from_secs(900)
        }
    );
}

/// The binary, run with only the given variables (and no `.env`: it runs in `dir`).
fn binary(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_user-service"));
    cmd.env_clear().current_dir(dir).env("RUST_LOG", "warn");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

fn one_line_error(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(1), "exit status 1");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "exactly one line: {stderr}");
    stderr
}

#[test]
fn start_up_errors_are_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    let garbage = garbage.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    for (vars, variable) in [
        (vec![("DATA_DIR", data)], "SECRET_KEY"),
        (
            vec![
                ("DATA_DIR", data),
                ("SECRET_KEY", SECRET),
                ("BCRYPT_COST", "3"),
            ],
            "BCRYPT_COST",
        ),
        (
            vec![
                ("DATA_DIR", data),
                ("SECRET_KEY", SECRET),
                ("BCRYPT_THREADS", "many"),
            ],
            "BCRYPT_THREADS",
        ),
        (
            vec![
                ("DATA_DIR", data),
                ("ALGORITHM", "EdDSA"),
                ("JWT_PRIVATE_KEY_FILE", garbage),
            ],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            vec![("DATA_DIR", data), ("ALGORITHM", "EdDSA")],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            vec![
                ("DATA_DIR", data),
                ("SECRET_KEY", SECRET),
                ("USER_SERVICE_ADDR", "nonsense"),
            ],
            "USER_SERVICE_ADDR",
        ),
        (
            vec![
                ("DATA_DIR", data),
                ("SECRET_KEY", SECRET),
                ("WORKER_THREADS", "0"),
            ],
            "WORKER_THREADS",
        ),
    ]
    .into_iter()
    .chain(
        [
            ("BCRYPT_MAX_WAIT_MS", "20000"),
            ("BCRYPT_HASH_QUEUE", "0"),
            ("REGISTER_MAX_PER_IP", "0"),
            ("REGISTER_GLOBAL_WINDOW_SECONDS", "-1"),
            ("LOGIN_KNOWN_ADDRESS_DAYS", "soon"),
            ("SESSION_REVOCATION_POLL_MS", "1"),
        ]
        .map(|bad| (vec![("DATA_DIR", data), ("SECRET_KEY", SECRET), bad], bad.0)),
    ) {
        let output = binary(dir.path(), &vars).output().unwrap();
        let line = one_line_error(&output);
        assert!(
            line.starts_with(&format!("user-service: {variable}: ")),
            "{line}"
        );
    }
}

#[tokio::test]
async fn the_binary_serves_with_cost_12_stops_on_sigterm_and_sets_roles() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = binary(
        dir.path(),
        &[
            ("DATA_DIR", &data),
            ("SECRET_KEY", SECRET),
            ("USER_SERVICE_ADDR", &addr),
            // The single-threaded runtime compose.yaml and the benchmark use.
            ("WORKER_THREADS", "1"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = http.get(format!("{base}/healthz")).send().await {
            if resp.status() == StatusCode::OK {
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the binary exited early"
        );
        assert!(
            Instant::now() < deadline,
            "the binary did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"username": "root", "email": "root@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // The default cost is 12, as passlib wrote it.
    {
        use sqlx::Connection;
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("users.sqlite"));
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let hash: String =
            sqlx::query_scalar("SELECT hashed_password FROM users WHERE username = 'root'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(hash.starts_with("$2b$12$"), "{hash}");
        conn.close().await.unwrap();
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "a clean exit after SIGTERM: {exit}");

    // `set-role` on the same database.
    let done = binary(dir.path(), &[("DATA_DIR", &data), ("SECRET_KEY", SECRET)])
        .args(["set-role", "root", "admin"])
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let missing = binary(dir.path(), &[("DATA_DIR", &data)])
        .args(["set-role", "nobody", "admin"])
        .output()
        .unwrap();
    assert_eq!(
        one_line_error(&missing),
        "user-service: no user named \"nobody\""
    );
    let usage = binary(dir.path(), &[("DATA_DIR", &data)])
        .args(["set-role", "root"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(1));
}

// ---------------------------------------------------------------------------------------
// Abuse resistance
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_registration_flood_never_delays_a_login_nor_hangs() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "flood").await {
        let mut config = case.config();
        // About 150 ms a hash here: 64 queued jobs on 2 threads were ~5 s of waiting before.
        config.bcrypt.cost = 11;
        config.bcrypt.threads = 2;
        config.bcrypt.max_wait = Duration::from_secs(2);
        // Only the hashing pool is under test: let every registration reach it.
        config.registration.max_per_ip = 1000;
        config.registration.max_global = 1000;
        let app = TestApp::spawn(config, case.kv.clone()).await;
        let name = case.name();
        app.register("owner", "owner@example.com", PASSWORD).await;

        let before = app.state.hasher.jobs_started();
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..120 {
            let (http, url) = (app.http.clone(), app.url("/auth/register"));
            flood.spawn(async move {
                let started = Instant::now();
                let resp = http
                    .post(url)
                    .header("x-forwarded-for", format!("10.1.{}.{}", i / 200, i % 200 + 1))
                    .json(&json!({"username": format!("flood{i}"), "email": format!("flood{i}@example.com"), "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                let retry = resp.headers().get(RETRY_AFTER).is_some();
                (resp.status(), retry, started.elapsed())
            });
        }
        // The login arrives once registrations occupy the pool.
        eventually(
            Duration::from_secs(10),
            "registrations reach the pool",
            || {
                let started = app.state.hasher.jobs_started();
                async move { started >= before + 2 }
            },
        )
        .await;
        let started = Instant::now();
        let login = app.login("owner", PASSWORD).await;
        let took = started.elapsed();
        assert_eq!(login.status, StatusCode::OK, "{name}: {}", login.body);
        assert!(
            took < Duration::from_secs(2),
            "{name}: a login behind a registration flood took {took:?}"
        );

        let (mut created, mut busy) = (0, 0);
        while let Some(done) = flood.join_next().await {
            let (status, retry, took) = done.unwrap();
            assert!(
                took < Duration::from_secs(6),
                "{name}: a registration waited {took:?} (max wait 2 s)"
            );
            match status {
                StatusCode::CREATED => created += 1,
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(retry, "{name}: 503 without Retry-After");
                    busy += 1;
                }
                other => panic!("{name}: registration answered {other}"),
            }
        }
        assert!(created >= 1, "{name}: no registration got through");
        assert!(busy >= 60, "{name}: only {busy} of 120 refused");
        app.stop().await;
    }
}

#[tokio::test]
async fn registrations_are_throttled_per_address_and_globally_taken_names_included() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "regthrottle").await {
        let mut config = case.config();
        config.registration.max_per_ip = 3;
        config.registration.max_global = 5;
        let app = TestApp::spawn(config, case.kv.clone()).await;
        let name = case.name();
        let probe = "192.0.2.10";

        assert_eq!(
            app.register_from("alice", probe).await.status,
            StatusCode::CREATED
        );
        // Probing for taken names counts like any registration...
        for _ in 0..2 {
            let taken = app.register_from("alice", probe).await;
            assert_eq!(taken.status, StatusCode::CONFLICT, "{name}");
        }
        // ...so beyond the limit a taken name is no longer told apart from a free one.
        let hashed = app.state.hasher.jobs_started();
        for who in ["alice", "fresh"] {
            let refused = app.register_from(who, probe).await;
            assert_eq!(
                refused.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{name}: {who}"
            );
            assert_eq!(
                refused.body,
                json!({"detail": "Too many registrations; try again later"})
            );
            let retry: u64 = refused.header(RETRY_AFTER).parse().unwrap();
            assert!((3000..=3600).contains(&retry), "{name}: {retry}");
        }
        assert_eq!(
            app.state.hasher.jobs_started(),
            hashed,
            "{name}: 429 costs no bcrypt"
        );

        // Everyone together: 3 counted above (the refused ones are not), 2 more pass.
        for (who, ip) in [("bob", "192.0.2.11"), ("carol", "192.0.2.12")] {
            assert_eq!(
                app.register_from(who, ip).await.status,
                StatusCode::CREATED,
                "{name}"
            );
        }
        let global = app.register_from("dave", "192.0.2.13").await;
        assert_eq!(global.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
        let retry: u64 = global.header(RETRY_AFTER).parse().unwrap();
        assert!((1..=60).contains(&retry), "{name}: {retry}");
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_wrong_logins_stop_exactly_at_the_account_limit() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "burst").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        app.register("alice", "alice@example.com", PASSWORD).await;
        let before = app.state.hasher.jobs_started();
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let (http, url) = (app.http.clone(), app.url("/auth/login"));
            burst.spawn(async move {
                http.post(url)
                    .header("x-forwarded-for", "198.51.100.40")
                    .json(&json!({"username": "alice", "password": "wrong-password"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
        }
        let (mut refused, mut checked) = (0, 0);
        while let Some(status) = burst.join_next().await {
            match status.unwrap() {
                StatusCode::UNAUTHORIZED => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => refused += 1,
                other => panic!("{name}: {other}"),
            }
        }
        // Limits: 5 per account, 20 per address.
        assert_eq!((checked, refused), (5, 35), "{name}");
        assert_eq!(app.state.hasher.jobs_started() - before, 5, "{name}");
        app.stop().await;
    }
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_owner_out_of_a_known_address() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "lockout").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        let (home, attacker, elsewhere) = ("198.51.100.7", "203.0.113.66", "192.0.2.200");
        app.register("alice", "alice@example.com", PASSWORD).await;
        let first = app.login_from("alice", PASSWORD, Some(home)).await;
        assert_eq!(first.status, StatusCode::OK, "{name}");

        for _ in 0..5 {
            let guess = app.login_from("alice", "guess", Some(attacker)).await;
            assert_eq!(guess.status, StatusCode::UNAUTHORIZED, "{name}");
        }
        let locked = app.login_from("alice", "guess", Some(attacker)).await;
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
        // The lock holds for every address the account has not logged in from, even with the
        // right password...
        let unknown = app.login_from("alice", PASSWORD, Some(elsewhere)).await;
        assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
        // ...but the owner at home logs in.
        let owner = app.login_from("ALICE", PASSWORD, Some(home)).await;
        assert_eq!(owner.status, StatusCode::OK, "{name}: {}", owner.body);
        // And the owner's login gave the attacker no fresh guesses.
        let still = app.login_from("alice", "guess", Some(attacker)).await;
        assert_eq!(still.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
        app.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Password schemes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_digest_of_a_long_password_is_not_a_second_password() {
    use user_service::password::digest_b64;
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "digest").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        let long = format!("{}-the-tail-matters", "q".repeat(72));
        let digest = digest_b64(&long);
        assert_eq!(digest.len(), 44);

        // A new account records its scheme: the digest does not log in.
        app.register("carol", "carol@example.com", &long).await;
        assert_eq!(
            app.password_row("carol").await.1.as_deref(),
            Some("bcrypt-sha256"),
            "{name}"
        );
        assert_eq!(
            app.login("carol", &digest).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(
            app.login("carol", &long).await.status,
            StatusCode::OK,
            "{name}"
        );

        // A row of this platform from before the record: same hash, no scheme.
        app.register("dora", "dora@example.com", &long).await;
        app.sql(
            "UPDATE users SET password_scheme = NULL WHERE username = $1",
            "dora",
        )
        .await;
        let (old_hash, _) = app.password_row("dora").await;
        assert_eq!(
            app.login("dora", &digest).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(
            app.login("dora", &long).await.status,
            StatusCode::OK,
            "{name}"
        );
        let (new_hash, scheme) = app.password_row("dora").await;
        assert_eq!(
            scheme.as_deref(),
            Some("bcrypt-sha256"),
            "{name}: recorded at login"
        );
        assert_ne!(new_hash, old_hash, "{name}: re-hashed");
        assert_eq!(
            app.login("dora", &digest).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(
            app.login("dora", &long).await.status,
            StatusCode::OK,
            "{name}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn passlib_accounts_log_in_and_are_rehashed_even_with_truncated_long_passwords() {
    let dir = tempfile::tempdir().unwrap();
    // passlib cut passwords at 72 bytes; this one has 100.
    let long = format!("{}x", "pässwörd-".repeat(9));
    let long = long.as_str();
    assert_eq!(long.len(), 100);
    let truncated_hash = passlib_hash_bytes(&long.as_bytes()[..72]);
    let cost_12 = bcrypt::hash_with_result("legacy-password", 12)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    assert!(cost_12.starts_with("$2b$12$"));
    for case in cases(dir.path(), "passlib").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        for (user, hash) in [("erin", &truncated_hash), ("frank", &cost_12)] {
            app.register(user, &format!("{user}@example.com"), PASSWORD)
                .await;
            let sql = format!(
                "UPDATE users SET hashed_password = '{hash}', password_scheme = NULL WHERE username = $1"
            );
            app.sql(&sql, user).await;
        }

        let login = app.login("erin", long).await;
        assert_eq!(login.status, StatusCode::OK, "{name}: {}", login.body);
        let (hash, scheme) = app.password_row("erin").await;
        assert_eq!(scheme.as_deref(), Some("bcrypt-sha256"), "{name}");
        assert_ne!(&hash, &truncated_hash, "{name}: re-hashed");
        // Under the new scheme every byte counts: the first 72 alone no longer log in.
        let prefix = std::str::from_utf8(&long.as_bytes()[..72]).unwrap();
        assert_eq!(
            app.login("erin", prefix).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(
            app.login("erin", long).await.status,
            StatusCode::OK,
            "{name}"
        );

        assert_eq!(
            app.login("frank", "legacy-password").await.status,
            StatusCode::OK,
            "{name}"
        );
        let (hash, scheme) = app.password_row("frank").await;
        assert_eq!(scheme.as_deref(), Some("bcrypt"), "{name}");
        assert_ne!(hash, cost_12, "{name}");
        assert_eq!(
            app.login("frank", "legacy-password").await.status,
            StatusCode::OK,
            "{name}"
        );
        app.stop().await;
    }
}

/// A `$2b$` hash of raw bytes as passlib wrote it (cost 4).
fn passlib_hash_bytes(password: &[u8]) -> String {
    bcrypt::hash_with_result(password, 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB)
}

// ---------------------------------------------------------------------------------------
// Roles and their administration
// ---------------------------------------------------------------------------------------

/// `set-role` as the command line runs it, with or without the session store.
async fn cli_set_role(db: &DbConfig, kv: Option<&Kv>, who: &str, role: &str) -> SessionsOutcome {
    user_service::commands::set_role(db, kv, who, role)
        .await
        .unwrap()
}

#[tokio::test]
async fn set_role_from_another_process_ends_sessions_through_the_service() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "demote").await {
        let mut config = case.config();
        config.revocation_poll = Duration::from_millis(50);
        let db = case.db.config();
        let app = TestApp::spawn(config, case.kv.clone()).await;
        let name = case.name();
        app.user("carol").await;

        // Granted by a process that cannot reach the sessions; carol logs in at once.
        let outcome = cli_set_role(&db, None, "carol", "admin").await;
        assert_eq!(outcome, SessionsOutcome::Requested, "{name}");
        let admin = app.login("carol", PASSWORD).await.token();
        eventually(
            Duration::from_secs(5),
            "the request is carried out",
            || async { app.pending_revocations().await == 0 },
        )
        .await;
        // The request ended the sessions from before the change, not the new one.
        let users = app.get("/users/", Some(&admin)).await;
        assert_eq!(users.status, StatusCode::OK, "{name}: {}", users.body);

        // Demoted the same way: the running service ends the admin session.
        let outcome = cli_set_role(&db, None, "carol", "user").await;
        assert_eq!(outcome, SessionsOutcome::Requested, "{name}");
        eventually(
            Duration::from_secs(5),
            "the demoted admin's token is refused",
            || async { app.get("/users/", Some(&admin)).await.status == StatusCode::UNAUTHORIZED },
        )
        .await;
        // Marked done once carried out (the commit follows the end of the sessions).
        eventually(
            Duration::from_secs(5),
            "the request is marked done",
            || async { app.pending_revocations().await == 0 },
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn a_role_change_ends_the_users_sessions_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "roleonce").await {
        let mut config = case.config();
        // Only the change itself may end the sessions here, not the background look.
        config.revocation_poll = Duration::from_secs(60);
        let db = case.db.config();
        let app = TestApp::spawn(config, case.kv.clone()).await;
        let name = case.name();
        let carol = app.user("carol").await;
        let dave = app.user("dave").await;

        // set-role that reaches the session store.
        let user_token = app.login("carol", PASSWORD).await.token();
        let outcome = cli_set_role(&db, Some(&case.kv), "carol", "admin").await;
        assert_eq!(outcome, SessionsOutcome::Ended(1), "{name}");
        assert_eq!(
            app.me(&user_token).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        let unchanged = cli_set_role(&db, Some(&case.kv), "carol", "admin").await;
        assert_eq!(unchanged, SessionsOutcome::Unchanged, "{name}");

        // The admin endpoint: in-request, both ways.
        let admin = app.login("carol", PASSWORD).await.token();
        assert_eq!(carol, app.claims(&admin).sub.parse::<i64>().unwrap());
        let reader = app.login("dave", PASSWORD).await.token();
        assert_eq!(
            app.get("/users/", Some(&reader)).await.status,
            StatusCode::FORBIDDEN
        );
        let granted = app.set_role(dave, "librarian", &admin).await;
        assert_eq!(granted.status, StatusCode::OK, "{name}: {}", granted.body);
        assert_eq!(granted.body["role"], "librarian");
        assert_eq!(granted.body["username"], "dave");
        assert_eq!(
            app.me(&reader).await.status,
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        let librarian = app.login("dave", PASSWORD).await.token();
        assert_eq!(app.claims(&librarian).role, "librarian");
        assert_eq!(
            app.get("/users/", Some(&librarian)).await.status,
            StatusCode::OK
        );
        let revoked = app.set_role(dave, "user", &admin).await;
        assert_eq!(revoked.body["role"], "user", "{name}: {}", revoked.body);
        assert_eq!(
            app.get("/users/", Some(&librarian)).await.status,
            StatusCode::UNAUTHORIZED
        );
        // Setting the role a user already has ends nothing.
        let reader = app.login("dave", PASSWORD).await.token();
        assert_eq!(
            app.set_role(dave, "user", &admin).await.status,
            StatusCode::OK
        );
        assert_eq!(app.me(&reader).await.status, StatusCode::OK, "{name}");
        assert_eq!(app.pending_revocations().await, 0, "{name}");
        app.stop().await;
    }
}

#[tokio::test]
async fn role_administration_is_for_admins_and_never_grants_admin() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "roleadmin").await {
        let db_config = case.db.config();
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        let root = app.user("root").await;
        let erin = app.user("erin").await;
        user_service::commands::set_role(&db_config, None, "root", "admin")
            .await
            .unwrap();
        let admin = app.login("root", PASSWORD).await.token();
        let user = app.login("erin", PASSWORD).await.token();

        let admin_grant = app.set_role(erin, "admin", &admin).await;
        assert_eq!(
            admin_grant.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}"
        );
        assert_eq!(
            admin_grant.body["detail"][0]["loc"],
            json!(["body", "role"])
        );
        assert!(admin_grant.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("set-role"));
        assert_eq!(
            app.set_role(erin, "root", &admin).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let missing = app.set_role(999_999, "librarian", &admin).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{name}");
        assert_eq!(missing.body, json!({"detail": "User not found"}));
        let bad_id = app
            .call(
                reqwest::Method::PUT,
                "/admin/users/abc/role",
                Some(&admin),
                Some(&json!({"role": "user"})),
            )
            .await;
        assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad_id.body["detail"][0]["loc"], json!(["path", "id"]));
        // An admin's role (even one's own) changes only on the command line.
        let demote_admin = app.set_role(root, "user", &admin).await;
        assert_eq!(demote_admin.status, StatusCode::FORBIDDEN, "{name}");
        // Not an admin, or no token at all.
        let by_user = app.set_role(erin, "librarian", &user).await;
        assert_eq!(by_user.status, StatusCode::FORBIDDEN);
        assert_eq!(by_user.body, json!({"detail": "Admin role required"}));
        let anonymous = app
            .call(
                reqwest::Method::PUT,
                &format!("/admin/users/{erin}/role"),
                None,
                Some(&json!({"role": "librarian"})),
            )
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        assert_eq!(anonymous.header(WWW_AUTHENTICATE), "Bearer");
        assert_eq!(
            app.me(&user).await.status,
            StatusCode::OK,
            "nothing changed for erin"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_role_sent_to_register_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "selfrole").await {
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let created = app
            .post_json(
                "/auth/register",
                &json!({"username": "mallory", "email": "mallory@example.com", "password": PASSWORD, "role": "admin"}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert_eq!(created.body["role"], "user", "{}", created.body);
        let token = app.login("mallory", PASSWORD).await.token();
        assert_eq!(app.claims(&token).role, "user", "{}", case.name());
        assert_eq!(
            app.get("/users/", Some(&token)).await.status,
            StatusCode::FORBIDDEN
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn every_session_of_a_user_can_be_ended() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "endall").await {
        let db_config = case.db.config();
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        app.user("root").await;
        let frank = app.user("frank").await;
        app.user("grace").await;
        user_service::commands::set_role(&db_config, None, "root", "admin")
            .await
            .unwrap();
        let admin = app.login("root", PASSWORD).await.token();
        let grace = app.login("grace", PASSWORD).await.token();

        // The user themselves: every session, the calling one included.
        let (a, b) = (
            app.login("frank", PASSWORD).await.token(),
            app.login("frank", PASSWORD).await.token(),
        );
        let out = app
            .call(reqwest::Method::POST, "/auth/logout-all/", Some(&a), None)
            .await;
        assert_eq!(out.status, StatusCode::OK, "{name}: {}", out.body);
        assert_eq!(out.body, json!({"detail": "Logged out of 2 sessions"}));
        for token in [&a, &b] {
            assert_eq!(
                app.me(token).await.status,
                StatusCode::UNAUTHORIZED,
                "{name}"
            );
        }
        assert_eq!(
            app.me(&grace).await.status,
            StatusCode::OK,
            "others keep theirs"
        );

        // An admin, for someone else.
        let (c, d) = (
            app.login("frank", PASSWORD).await.token(),
            app.login("frank", PASSWORD).await.token(),
        );
        let path = format!("/admin/users/{frank}/sessions");
        let by_user = app
            .call(reqwest::Method::DELETE, &path, Some(&grace), None)
            .await;
        assert_eq!(by_user.status, StatusCode::FORBIDDEN);
        let ended = app
            .call(reqwest::Method::DELETE, &path, Some(&admin), None)
            .await;
        assert_eq!(ended.status, StatusCode::OK, "{name}: {}", ended.body);
        assert_eq!(ended.body, json!({"user_id": frank, "sessions_ended": 2}));
        for token in [&c, &d] {
            assert_eq!(
                app.me(token).await.status,
                StatusCode::UNAUTHORIZED,
                "{name}"
            );
        }
        let missing = app
            .call(
                reqwest::Method::DELETE,
                "/admin/users/999999/sessions",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.call(reqwest::Method::POST, "/auth/logout-all", None, None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn librarians_page_through_accounts() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "listing").await {
        let db_config = case.db.config();
        let app = TestApp::spawn(case.config(), case.kv.clone()).await;
        let name = case.name();
        let mut ids = Vec::new();
        for who in ["lib", "user1", "user2", "user3", "user4"] {
            ids.push(app.user(who).await);
        }
        user_service::commands::set_role(&db_config, None, "lib", "librarian")
            .await
            .unwrap();
        let token = app.login("lib", PASSWORD).await.token();

        let first = app.get("/users/?limit=2", Some(&token)).await;
        assert_eq!(first.status, StatusCode::OK, "{name}: {}", first.body);
        assert_eq!(first.header(CACHE_CONTROL), "no-store");
        let page = first.body.as_array().unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0]["id"], ids[0]);
        assert_eq!(page[0]["username"], "lib");
        assert_eq!(page[0]["email"], "lib@example.com");
        assert_eq!(page[0]["role"], "librarian");
        assert_eq!(page[1]["role"], "user");
        let created = page[0]["created_at"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'),
            "{created}"
        );
        assert_eq!(
            first.header(reqwest::header::LINK),
            format!("</users/?limit=2&cursor={}>; rel=\"next\"", ids[1])
        );

        // Following the links visits every account once, in id order.
        let mut seen: Vec<i64> = page.iter().map(|u| u["id"].as_i64().unwrap()).collect();
        let mut link = first.header(reqwest::header::LINK).to_owned();
        while !link.is_empty() {
            let next = link
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned();
            let answer = app.get(&next, Some(&token)).await;
            assert_eq!(answer.status, StatusCode::OK, "{name}");
            seen.extend(
                answer
                    .body
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["id"].as_i64().unwrap()),
            );
            link = answer.header(reqwest::header::LINK).to_owned();
        }
        assert_eq!(seen, ids, "{name}");

        let all = app.get("/users", Some(&token)).await;
        assert_eq!(all.body.as_array().unwrap().len(), 5, "default limit 50");
        assert_eq!(all.header(reqwest::header::LINK), "");
        let past = app
            .get(&format!("/users/?cursor={}", ids[4]), Some(&token))
            .await;
        assert_eq!((past.status, past.body), (StatusCode::OK, json!([])));

        for (query, kind) in [
            ("limit=0", "greater_than_equal"),
            ("limit=201", "less_than_equal"),
            ("limit=many", "invalid_type"),
        ] {
            let bad = app.get(&format!("/users/?{query}"), Some(&token)).await;
            assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert_eq!(
                bad.body["detail"][0]["loc"],
                json!(["query", "limit"]),
                "{query}"
            );
            assert_eq!(bad.body["detail"][0]["type"], kind, "{query}");
        }
        let reader = app.login("user1", PASSWORD).await.token();
        let refused = app.get("/users/", Some(&reader)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.body, json!({"detail": "Librarian role required"}));
        assert_eq!(
            app.get("/users/", None).await.status,
            StatusCode::UNAUTHORIZED
        );
        app.stop().await;
    }
}

#[test]
fn abuse_defaults_fit_the_upstream_timeout() {
    let bcrypt = user_service::config::BcryptConfig::default();
    assert_eq!(
        bcrypt.max_wait,
        Duration::from_secs(5),
        "below app-service's 10 s"
    );
    assert_eq!(bcrypt.hash_queue, 8);
    let registration = user_service::config::RegistrationLimits::default();
    assert_eq!(
        (registration.max_per_ip, registration.window),
        (10, Duration::from_secs(3600))
    );
    assert_eq!(
        (registration.max_global, registration.global_window),
        (60, Duration::from_secs(60))
    );
}
