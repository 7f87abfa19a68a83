//! user-service: accounts and authentication.
//!
//! Registration, OAuth2 password login (JSON and form) checked with bcrypt on a dedicated
//! thread pool, failed-login throttling, JWT access tokens (HMAC or Ed25519) whose sessions
//! live in the key-value store and can be revoked one by one, and the JWKS of the signing key.
//! See [`password`] for the password scheme, [`throttle`] for throttling and [`routes`] for
//! the session model.

pub mod config;
pub mod error;
pub mod password;
pub mod routes;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::auth::{Authenticator, Sessions};
use common::config::ConfigError;
use common::db::{Db, DbConfig, DbStartError};
use common::kv::Kv;
use common::server::{HttpLimits, Shutdown};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

pub use crate::config::Config;
pub use crate::routes::AppState;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Why the service could not start; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbStartError),
}

/// The whole HTTP surface: the routes plus the layers every service shares (`/healthz`,
/// request ids, access log, body limit, timeout, JSON 404/405).
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    common::server::CommonLayers::new("user-service", limits).apply(routes::routes(state))
}

/// A built service, listening but not yet serving.
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
    state: AppState,
    drain: Duration,
}

impl Application {
    /// Checks the token settings, connects to and migrates the database, starts the bcrypt
    /// pool and binds the listener.
    pub async fn build(config: Config, kv: Kv) -> Result<Self, StartupError> {
        let tokens = Arc::new(tokens::TokenIssuer::new(
            config.tokens.clone(),
            config.ed_key.clone(),
        )?);
        let db = connect(&config.db).await?;
        let bcrypt = config.bcrypt;
        // The pool computes one hash at start-up (the dummy for unknown users): keep that
        // quarter-second off the async runtime too.
        let hasher = tokio::task::spawn_blocking(move || password::PasswordHasher::start(&bcrypt))
            .await
            .map_err(|e| {
                ConfigError::new(
                    "BCRYPT_THREADS",
                    format!("cannot start the bcrypt pool: {e}"),
                )
            })?
            .map_err(|e| {
                ConfigError::new(
                    "BCRYPT_THREADS",
                    format!("cannot start the bcrypt pool: {e}"),
                )
            })?;
        let sessions = Sessions::new(kv.clone());
        let state = AppState {
            auth: Authenticator::new(tokens.verifier(), sessions.clone()),
            throttle: throttle::Throttle::new(kv.clone(), config.throttle),
            db,
            kv,
            hasher,
            tokens,
            sessions,
        };
        let listener = common::server::bind(&config.addr, "USER_SERVICE_ADDR").await?;
        let port = listener
            .local_addr()
            .map_err(|e| ConfigError::new("USER_SERVICE_ADDR", e.to_string()))?
            .port();
        tracing::info!(
            addr = %config.addr,
            port,
            database = state.db.backend_name(),
            kv = state.kv.backend_name(),
            algorithm = ?config.tokens.algorithm,
            bcrypt_cost = bcrypt.cost,
            bcrypt_threads = bcrypt.threads,
            "user-service ready"
        );
        Ok(Self {
            router: router(state.clone(), config.http),
            listener,
            port,
            state,
            drain: config.drain,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests read e.g. the bcrypt pool's counters).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown`, lets in-flight requests finish, then closes the pool.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let result =
            common::server::serve(self.listener, self.router, shutdown.wait(), self.drain).await;
        self.state.db.close().await;
        result
    }
}

async fn connect(config: &DbConfig) -> Result<Db, DbStartError> {
    let db = Db::connect(config).await?;
    db.migrate(&POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS).await?;
    Ok(db)
}

/// Why `set-role` failed.
#[derive(Debug, thiserror::Error)]
pub enum SetRoleError {
    #[error("role must be user or admin, not {0:?}")]
    UnknownRole(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error(transparent)]
    Start(#[from] DbStartError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
}

/// Gives `username` the role `role` (`user` or `admin`); the command line's `set-role`.
/// Takes effect at the user's next login (live sessions keep the role they were opened with).
pub async fn set_role(
    db_config: &DbConfig,
    username: &str,
    role: &str,
) -> Result<(), SetRoleError> {
    if !store::ROLES.contains(&role) {
        return Err(SetRoleError::UnknownRole(role.to_owned()));
    }
    let db = connect(db_config).await?;
    let result = store::set_role(&db, username, role).await;
    db.close().await;
    if result? {
        Ok(())
    } else {
        Err(SetRoleError::NoSuchUser(username.to_owned()))
    }
}
