//! Building and running the service: [`Application::build`] connects and migrates the
//! database, starts the bcrypt pool and binds the listener; [`Application::run_until_stopped`]
//! serves, and carries out pending session revocations, until shutdown.

use std::sync::Arc;

use axum::Router;
use common::auth::{Authenticator, Sessions};
use common::config::ConfigError;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, Shutdown};
use service_kit::db::{Db, DbConfig, DbStartError};
use service_kit::server::{serve, CommonLayers, Listener};
use service_kit::HttpLimits;
use sqlx::migrate::Migrator;

use crate::config::Config;
use crate::hasher::PasswordHasher;
use crate::state::AppState;
use crate::throttle::login::LoginThrottle;
use crate::throttle::registration::RegistrationThrottle;
use crate::tokens::TokenIssuer;

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

/// Connects to the service's database and applies its migrations.
pub async fn open_db(config: &DbConfig) -> Result<Db, DbStartError> {
    Db::open(config, &POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS).await
}

/// The whole HTTP surface: the routes plus the layers every service shares (`/healthz`,
/// `/metrics`, request ids, access log, body limit, timeout, JSON 404/405/500).
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    CommonLayers::new("user-service", limits).apply(crate::routes::routes(state))
}

/// A built service, listening but not yet serving.
pub struct Application {
    listener: Listener,
    router: Router,
    state: AppState,
    config: Config,
}

impl Application {
    /// Checks the token settings, connects to and migrates the database, starts the bcrypt
    /// pool and binds the listener.
    pub async fn build(config: Config, kv: Kv) -> Result<Self, StartupError> {
        let tokens = Arc::new(TokenIssuer::new(
            config.tokens.clone(),
            config.ed_key.clone(),
        )?);
        let db = open_db(&config.db).await?;
        let bcrypt = config.bcrypt;
        let pool_error = |e: &dyn std::fmt::Display| {
            ConfigError::new(
                "BCRYPT_THREADS",
                format!("cannot start the bcrypt pool: {e}"),
            )
        };
        // The pool computes one hash at start-up (the dummy for unknown users): keep that
        // quarter-second off the async runtime too.
        let hasher = tokio::task::spawn_blocking(move || PasswordHasher::start(&bcrypt))
            .await
            .map_err(|e| pool_error(&e))?
            .map_err(|e| pool_error(&e))?;
        let sessions = Sessions::new(kv.clone());
        let state = AppState {
            auth: Authenticator::new(tokens.verifier(), sessions.clone()),
            login_throttle: LoginThrottle::new(
                kv.clone(),
                config.throttle,
                config.known_address_ttl,
            ),
            registration_throttle: RegistrationThrottle::new(kv.clone(), config.registration),
            db,
            hasher,
            tokens,
            sessions,
        };
        let listener = Listener::bind(&config.server).await?;
        tracing::info!(
            addr = %config.server.listen,
            port = listener.port(),
            database = state.db.backend_name(),
            kv = kv.backend_name(),
            algorithm = ?config.tokens.algorithm,
            bcrypt_cost = bcrypt.cost,
            bcrypt_threads = bcrypt.threads,
            "user-service ready"
        );
        Ok(Self {
            router: router(state.clone(), config.server.limits),
            listener,
            state,
            config,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// The shared state (tests read e.g. the bcrypt pool's counters).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown`, carrying out pending session revocations meanwhile
    /// ([`crate::revocations`]); lets in-flight requests finish for `server.drain`, then
    /// closes the database pool.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let revoker = tokio::spawn(crate::revocations::run(
            self.state.db.clone(),
            self.state.sessions.clone(),
            self.config.revocation_poll,
            shutdown.clone(),
        ));
        let result = serve(
            self.listener,
            self.router,
            shutdown.wait(),
            self.config.server.drain,
        )
        .await;
        // It has stopped at the same signal, unless serving failed without one: stop it before
        // the pool closes. Cut short, its batch rolls back and stays pending.
        revoker.abort();
        if let Err(e) = revoker.await {
            if e.is_panic() {
                tracing::error!(error = %e, "the session revocation task panicked");
            }
        }
        self.state.db.close().await;
        result
    }
}

/// The service as its binary runs it: configuration and key-value store from the
/// environment, serving until SIGTERM or Ctrl-C.
pub async fn serve_from_env() -> Result<(), common::bin::BoxError> {
    let config = Config::from_env()?;
    let kv = common::kv::from_env().await?;
    let app = Application::build(config, kv).await?;
    let (trigger, shutdown) = shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
