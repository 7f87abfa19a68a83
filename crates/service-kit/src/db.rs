//! The relational backend: PostgreSQL when `DATABASE_URL` is set, an embedded SQLite file
//! under the data directory otherwise.
//!
//! Services keep one migration directory per backend (`migrations/postgres`,
//! `migrations/sqlite`) with the same meaning, and write their SQL once with `$1`-style
//! parameters, which both drivers accept. Timestamps are computed in Rust and bound as UTC
//! `NaiveDateTime`, so no SQL depends on a backend's clock functions.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

use common::config::{redact_url, ConfigError};

/// A pool on one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Where a service's data lives.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// `postgres://…`; `None` selects SQLite.
    pub url: Option<String>,
    /// A PostgreSQL schema to keep the tables in, created when missing (`None`: the default
    /// `search_path`).
    pub schema: Option<String>,
    /// The SQLite file when `url` is `None`.
    pub sqlite_path: PathBuf,
    pub max_connections: u32,
    /// How long a request may wait for a pooled connection before it fails (503).
    pub acquire_timeout: Duration,
    /// The longest a single statement may run on PostgreSQL.
    pub statement_timeout: Duration,
    /// PostgreSQL: plan each prepared statement once, for any parameters
    /// (`plan_cache_mode=force_generic_plan`), instead of planning it again at every execution
    /// when the planner's estimates favour plans made for the values. For services whose
    /// statements are shaped so that one plan fits every value; planning a statement with
    /// several subqueries can cost more than running it. SQLite always does so: the bundled
    /// library is built with `SQLITE_ENABLE_QPSG` (`.cargo/config.toml`).
    pub reuse_plans: bool,
}

impl DbConfig {
    /// Reads `<PREFIX>_DATABASE_URL` (falling back to `DATABASE_URL`), `<PREFIX>_DATABASE_SCHEMA`
    /// (falling back to `DATABASE_SCHEMA`), `DATABASE_MAX_CONNECTIONS`,
    /// `DATABASE_ACQUIRE_TIMEOUT_MS`, `DATABASE_STATEMENT_TIMEOUT_MS` and `DATA_DIR`; the
    /// SQLite file is `DATA_DIR/<sqlite_file>`. `prefix` is e.g. `USER_SERVICE`.
    pub fn from_env(prefix: &str, sqlite_file: &str) -> Result<Self, ConfigError> {
        use common::config::var;
        let data_dir = PathBuf::from(common::config::var_or("DATA_DIR", "data"));
        let url_var = format!("{prefix}_DATABASE_URL");
        let (url_name, url) = match var(&url_var) {
            Some(u) => (url_var, Some(u)),
            None => ("DATABASE_URL".to_owned(), var("DATABASE_URL")),
        };
        if let Some(u) = &url {
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(ConfigError::new(
                    url_name,
                    "expected a postgres:// URL (leave it unset for embedded SQLite)",
                ));
            }
        }
        Ok(Self {
            url,
            schema: var(&format!("{prefix}_DATABASE_SCHEMA")).or_else(|| var("DATABASE_SCHEMA")),
            sqlite_path: data_dir.join(sqlite_file),
            max_connections: common::config::parse_or("DATABASE_MAX_CONNECTIONS", 10)?,
            acquire_timeout: common::config::millis_or("DATABASE_ACQUIRE_TIMEOUT_MS", 3000)?,
            statement_timeout: common::config::millis_or("DATABASE_STATEMENT_TIMEOUT_MS", 10_000)?,
            reuse_plans: false,
        })
    }

    /// SQLite in `dir/<file>`; for tests and the one-process mode.
    pub fn sqlite(dir: &Path, file: &str) -> Self {
        Self {
            url: None,
            schema: None,
            sqlite_path: dir.join(file),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            reuse_plans: false,
        }
    }

    /// PostgreSQL at `url`, tables in `schema`; for tests.
    pub fn postgres(url: &str, schema: Option<&str>) -> Self {
        Self {
            url: Some(url.to_owned()),
            schema: schema.map(str::to_owned),
            sqlite_path: PathBuf::new(),
            max_connections: 5,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            reuse_plans: false,
        }
    }
}

/// Connecting or migrating failed; the message names `DATABASE_URL` (or the SQLite file).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DbStartError(pub ConfigError);

impl Db {
    /// Opens the pool and checks that the database answers.
    pub async fn connect(config: &DbConfig) -> Result<Self, DbStartError> {
        match &config.url {
            Some(url) => connect_postgres(url, config).await.map(Db::Postgres),
            None => connect_sqlite(config).await.map(Db::Sqlite),
        }
    }

    /// Connects ([`Db::connect`]) and applies the service's migrations for the backend:
    /// what every service does at start-up.
    pub async fn open(
        config: &DbConfig,
        postgres: &Migrator,
        sqlite: &Migrator,
    ) -> Result<Self, DbStartError> {
        let db = Self::connect(config).await?;
        db.migrate(postgres, sqlite).await?;
        Ok(db)
    }

    /// Applies the service's migrations for this backend.
    pub async fn migrate(
        &self,
        postgres: &Migrator,
        sqlite: &Migrator,
    ) -> Result<(), DbStartError> {
        let result = match self {
            Db::Postgres(pool) => postgres.run(pool).await,
            Db::Sqlite(pool) => sqlite.run(pool).await,
        };
        result.map_err(|e| {
            DbStartError(ConfigError::new(
                "DATABASE_URL",
                format!("migrations failed: {e}"),
            ))
        })
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }

    /// Whether the database answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Whether an error means the database could not be reached (rather than a bad query).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("08") || c == "57P01" || c == "57P03"))
}

/// Whether an error is a unique-constraint violation (PostgreSQL 23505, SQLite 2067/1555).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

async fn connect_postgres(url: &str, config: &DbConfig) -> Result<PgPool, DbStartError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        DbStartError(ConfigError::new(
            "DATABASE_URL",
            format!("{what} {}: {e}", redact_url(url)),
        ))
    };
    let mut options = PgConnectOptions::from_str(url).map_err(|e| fail("cannot parse", &e))?;
    options = options
        .options([(
            "statement_timeout",
            format!("{}", config.statement_timeout.as_millis()),
        )])
        .options(
            config
                .reuse_plans
                .then_some(("plan_cache_mode", "force_generic_plan")),
        )
        .log_statements(tracing::log::LevelFilter::Trace);

    if let Some(schema) = &config.schema {
        if !is_plain_identifier(schema) {
            return Err(DbStartError(ConfigError::new(
                "DATABASE_SCHEMA",
                "use letters, digits and underscores only",
            )));
        }
        let mut conn = tokio::time::timeout(config.acquire_timeout, options.connect())
            .await
            .map_err(|_| fail("timed out connecting to", &"no answer"))?
            .map_err(|e| fail("cannot connect to", &e))?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| fail("cannot create the schema in", &e))?;
        let _ = conn.close().await;
        options = options.options([("search_path", schema.as_str())]);
    }

    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| fail("cannot connect to", &e))
}

async fn connect_sqlite(config: &DbConfig) -> Result<SqlitePool, DbStartError> {
    let path = &config.sqlite_path;
    let fail = |e: &dyn std::fmt::Display| {
        DbStartError(ConfigError::new(
            "DATA_DIR",
            format!("cannot open {}: {e}", path.display()),
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(config.statement_timeout)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| fail(&e))
}

fn is_plain_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The current time in UTC without zone, as stored in `TIMESTAMP` columns.
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Runs the same statement-building code against either pool.
///
/// `with_db!(db, pool => sqlx::query("…").execute(pool).await)` expands to a `match` whose
/// arms bind `pool` to the PostgreSQL or the SQLite pool, so a query is written once.
#[macro_export]
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

#[cfg(test)]
mod tests {
    /// The bundled SQLite is compiled as `.cargo/config.toml` says (the reasons are there):
    /// a build that misses it (another checkout layout, a Dockerfile that leaves `.cargo` out)
    /// fails here rather than running searches at half speed.
    #[tokio::test]
    async fn the_bundled_sqlite_is_built_with_the_workspace_flags() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "{options:?}");
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
