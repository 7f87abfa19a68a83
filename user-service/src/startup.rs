//! Building and running the service: [`Application::build`] connects and migrates the
//! database, starts the bcrypt pool and binds the listener; [`Application::run_until_stopped`]
//! serves, carries out pending session revocations, and — with an event stream attached —
//! consumes circulation events into notifications, until shutdown; the mailer sends their
//! e-mails and the live hub feeds the open notification streams.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::auth::{Authenticator, Sessions};
use common::config::ConfigError;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, Shutdown};
use events::{EventStream, StreamStartError};
use service_kit::db::{Db, DbConfig, DbStartError};
use service_kit::server::{serve, CommonLayers, Listener};
use service_kit::HttpLimits;
use sqlx::migrate::Migrator;

use crate::config::Config;
use crate::hasher::PasswordHasher;
use crate::live::LiveHub;
use crate::mailer::Mailer;
use crate::notifier::Notifier;
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
    #[error(transparent)]
    Events(#[from] StreamStartError),
}

/// How long a stopping service lets the notifier and the mailer finish what they hold.
const TASK_DRAIN: Duration = Duration::from_secs(10);

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
    events: Option<EventStream>,
    mailer: Mailer,
    mail_bell: Arc<tokio::sync::Notify>,
}

impl Application {
    /// Checks the token settings, connects to and migrates the database, starts the bcrypt
    /// pool and binds the listener; opens the event stream of `config.notifications.events`
    /// when there is one.
    pub async fn build(config: Config, kv: Kv) -> Result<Self, StartupError> {
        let events = match &config.notifications.events {
            Some(stream) => Some(EventStream::open(stream.clone()).await?),
            None => None,
        };
        Self::assemble(config, kv, events).await
    }

    /// [`Application::build`] consuming `events`, a stream opened elsewhere: in the
    /// one-process mode, the same [`EventStream`] book-service publishes to (a clone).
    pub async fn build_with_events(
        config: Config,
        kv: Kv,
        events: EventStream,
    ) -> Result<Self, StartupError> {
        Self::assemble(config, kv, Some(events)).await
    }

    async fn assemble(
        config: Config,
        kv: Kv,
        events: Option<EventStream>,
    ) -> Result<Self, StartupError> {
        let tokens = Arc::new(TokenIssuer::new(
            config.tokens.clone(),
            config.ed_key.clone(),
            &config.extra_jwks,
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
        let mail_bell = Arc::new(tokio::sync::Notify::new());
        let mailer = Mailer::new(
            db.clone(),
            config.notifications.mail.clone(),
            mail_bell.clone(),
        )?;
        let state = AppState {
            live: LiveHub::new(events.clone()),
            keep_alive: config.notifications.keep_alive,
            session_check: config.notifications.session_check,
            secure_cookies: config.secure_cookies,
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
            events = events.as_ref().map_or("none", EventStream::backend_name),
            "user-service ready"
        );
        Ok(Self {
            router: router(state.clone(), config.server.limits),
            listener,
            state,
            config,
            events,
            mailer,
            mail_bell,
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
    /// ([`crate::revocations`]), consuming events into notifications ([`crate::notifier`],
    /// when a stream is attached), mailing them ([`crate::mailer`]) and feeding the live
    /// streams ([`crate::live`]); at shutdown ends the live streams, lets in-flight requests
    /// finish for `server.drain` and the notifier and mailer settle what they hold, then
    /// closes the database pool.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let revoker = tokio::spawn(crate::revocations::run(
            self.state.db.clone(),
            self.state.sessions.clone(),
            self.config.revocation_poll,
            shutdown.clone(),
        ));
        let mut workers = tokio::task::JoinSet::new();
        workers.spawn(
            self.state
                .live
                .clone()
                .run(self.state.sessions.clone(), shutdown.clone()),
        );
        workers.spawn(self.mailer.run(shutdown.clone()));
        if let (Some(events), Some(name)) = (&self.events, &self.config.notifications.consumer) {
            let notifier = Notifier {
                db: self.state.db.clone(),
                live: self.state.live.clone(),
                mail_bell: self.mail_bell.clone(),
            };
            workers.spawn(events.consumer(name).run(notifier, shutdown.clone()));
        }
        let live = self.state.live.clone();
        let stopping = async move {
            shutdown.wait().await;
            // Open streams end now, or the server could not drain.
            live.close();
        };
        let result = serve(
            self.listener,
            self.router,
            stopping,
            self.config.server.drain,
        )
        .await;
        let drained = tokio::time::timeout(TASK_DRAIN, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("notifier or mailer still busy after the drain period; stopping them");
        }
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
