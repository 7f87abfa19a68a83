//! user-service driven over HTTP, the way app-service and clients use it: the real service on
//! port 0, against SQLite and the in-process store always, and against PostgreSQL and Redis
//! when `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::auth::{Claims, TokenVerifier};
use common::db::testing::TestSchema;
use common::db::DbConfig;
use common::kv::Kv;
use common::server::{shutdown_channel, ShutdownTrigger};
use common::testing::{self, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{
    HeaderMap, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use user_service::config::ThrottleConfig;
use user_service::tokens::EdKey;
use user_service::{AppState, Application, Config};

const SECRET: &str = "user-service-integration-tests-secret-0123456789";
const PASSWORD: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// One database + key-value combination; drops its PostgreSQL schema when it goes away, even
/// when an assertion failed.
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

impl Drop for Case {
    fn drop(&mut self) {
        if let TestDb::Postgres(schema) = &self.db {
            drop_schema_blocking(&schema.url, &schema.name);
        }
    }
}

/// Drops a schema from synchronous code (a `Drop`), on a thread with its own runtime.
fn drop_schema_blocking(url: &str, name: &str) {
    let schema = TestSchema {
        url: url.to_owned(),
        name: name.to_owned(),
    };
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(schema.drop_now());
        }
    })
    .join();
}

/// SQLite + memory always; PostgreSQL and Redis paired when configured (a backend missing on
/// one side is paired with the local one of the other).
async fn cases(dir: &Path, label: &str) -> Vec<Case> {
    let mut dbs = testing::databases(dir, label);
    let kvs = testing::key_values(label).await;
    let n = dbs.len().max(kvs.len());
    while dbs.len() < n {
        let file = format!("{label}-{}.sqlite", dbs.len());
        dbs.push(TestDb::Sqlite(DbConfig::sqlite(dir, &file)));
    }
    dbs.into_iter()
        .enumerate()
        .map(|(i, db)| {
            let kv = kvs
                .get(i)
                .cloned()
                .unwrap_or_else(|| Kv::memory(&testing::unique_prefix(label)));
            Case { db, kv }
        })
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

fn sign_hs(claims: &Claims, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
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
            json!({"id": id, "username": "Alice", "email": "alice@example.com"})
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
                .bind(common::db::now())
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    }
    check_legacy_database(Config::for_tests(sqlite, SECRET)).await;

    // PostgreSQL, likewise.
    if let Some(url) = testing::postgres_url() {
        let schema = TestSchema::new(&url, "legacy");
        let _cleanup = Case {
            db: TestDb::Postgres(TestSchema {
                url: url.clone(),
                name: schema.name.clone(),
            }),
            kv: Kv::memory(""),
        };
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
        let _cleanup_dup = Case {
            db: TestDb::Postgres(TestSchema {
                url: url.clone(),
                name: dup.name.clone(),
            }),
            kv: Kv::memory(""),
        };
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
    let app = TestApp::spawn(config, Kv::memory(&testing::unique_prefix("legacy"))).await;
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
            json!({"id": id, "username": "alice", "email": "alice@example.com"})
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
        let answer = app.me(&sign_hs(&expired, Algorithm::HS256, SECRET)).await;
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
        let other_secret = sign_hs(
            &claims,
            Algorithm::HS256,
            "some-other-secret-some-other-secret-!!",
        );
        let other_alg = sign_hs(&claims, Algorithm::HS512, SECRET);
        let no_session = sign_hs(
            &Claims {
                sid: "0".repeat(32),
                ..claims.clone()
            },
            Algorithm::HS256,
            SECRET,
        );
        let other_user = sign_hs(
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
        let hs = sign_hs(&claims, Algorithm::HS256, SECRET);
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
            .run(move || {
                let _ = started_tx.send(());
                let _ = wait.recv();
            })
            .await
    });
    started_rx.await.unwrap();
    let hasher = app.state.hasher.clone();
    let queued = tokio::spawn(async move { hasher.run(|| ()).await });
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
    let Some(redis_url) = testing::redis_url() else {
        eprintln!("TEST_REDIS_URL is not set; the outage of a real Redis cannot be tested");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (proxy, kv) = testing::redis_behind_proxy(&redis_url, "outage").await;
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

        user_service::set_role(&db_config, "ALICE", "admin")
            .await
            .expect("set-role works");
        let after = app.login("alice", PASSWORD).await.token();
        assert_eq!(app.claims(&after).role, "admin");

        let unknown = user_service::set_role(&db_config, "nobody", "admin")
            .await
            .unwrap_err();
        assert_eq!(unknown.to_string(), "no user named \"nobody\"");
        let bad_role = user_service::set_role(&db_config, "alice", "root")
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
    ] {
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
