//! Building and running book-service: connect and migrate, attach the command consumer, the
//! hold sweep (with the scheduled notices) and the outbox relay, bind, serve until stopped,
//! drain.

use std::time::Duration;

use axum::Router;
use circulation::{Bus, BusStartError, Consumer};
use common::auth::{Authenticator, Sessions};
use common::bin::BoxError;
use common::config::ConfigError;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, Shutdown};
use events::{EventStream, StreamStartError};
use service_kit::db::{Db, DbConfig, DbStartError};
use service_kit::server::{serve, CommonLayers, Listener};
use service_kit::HttpLimits;
use sqlx::migrate::Migrator;

use crate::apply::CommandHandler;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::outbox::Bell;
use crate::relay::Relay;
use crate::routes;
use crate::state::AppState;
use crate::sweep::Sweeper;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long start-up waits for the token issuer's JWKS (EdDSA only).
const JWKS_WAIT: Duration = Duration::from_secs(30);

/// Why the service could not start; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbStartError),
    #[error(transparent)]
    Bus(#[from] BusStartError),
    #[error(transparent)]
    Events(#[from] StreamStartError),
}

/// Connects to book-service's database and brings its schema up to date. Statements are
/// planned once ([`DbConfig::reuse_plans`]): each is an index range or lookup whose plan does
/// not depend on the values, and a search's statement costs more to plan than to run.
pub async fn open_database(config: &DbConfig) -> Result<Db, DbStartError> {
    let config = DbConfig {
        reuse_plans: true,
        ..config.clone()
    };
    Db::open(&config, &POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS).await
}

/// The whole HTTP surface: the routes in the layers every service shares.
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    CommonLayers::new("book-service", limits).apply(routes::routes(state))
}

/// A built service: listening, its consumer attached but not yet running.
pub struct Application {
    listener: Listener,
    router: Router,
    state: AppState,
    drain: Duration,
    consumer: Consumer,
    handler: CommandHandler,
    sweeper: Sweeper,
    relay: Relay,
}

impl Application {
    /// Verifier, database (migrated), consumer on `bus`, relay to `events`, listener. In the
    /// one-process mode `bus` is the in-process queue app-service sends on (a clone of the
    /// same [`Bus`]) and `events` the in-process stream user-service consumes (a clone of the
    /// same [`EventStream`]).
    pub async fn build(
        config: Config,
        kv: Kv,
        bus: Bus,
        events: EventStream,
    ) -> Result<Self, StartupError> {
        Self::build_with_clock(config, kv, bus, events, SharedClock::default()).await
    }

    /// [`Application::build`] with the library's time read from `clock` (tests move it).
    pub async fn build_with_clock(
        config: Config,
        kv: Kv,
        bus: Bus,
        events: EventStream,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        let verifier = common::jwks::verifier(&config.tokens, &config.jwks_url, JWKS_WAIT).await?;
        if config.tokens.secret.is_none() {
            common::jwks::spawn_refresh(
                verifier.clone(),
                config.jwks_url.clone(),
                config.jwks_refresh,
            );
        }
        let db = open_database(&config.db).await?;
        let consumer = bus.consumer();
        let bell = Bell::default();
        let state = AppState {
            db: db.clone(),
            kv: kv.clone(),
            auth: Authenticator::new(verifier, Sessions::new(kv)),
            clock: clock.clone(),
            rules: config.rules,
            bus: consumer.health(),
            bell: bell.clone(),
            vocabulary: Default::default(),
        };
        let listener = Listener::bind(&config.server).await?;
        tracing::info!(
            addr = %config.server.listen,
            port = listener.port(),
            database = db.backend_name(),
            kv = state.kv.backend_name(),
            bus = bus.backend_name(),
            events = events.backend_name(),
            "book-service ready"
        );
        Ok(Self {
            router: router(state.clone(), config.server.limits),
            handler: CommandHandler::new(db.clone(), clock.clone(), config.rules, bell.clone()),
            sweeper: Sweeper {
                db: db.clone(),
                clock,
                rules: config.rules,
                every: config.sweep_every,
                retention: chrono::Duration::from_std(config.idempotency_retention)
                    .unwrap_or(chrono::Duration::MAX),
                outbox_retention: chrono::Duration::from_std(config.outbox.retention)
                    .unwrap_or(chrono::Duration::MAX),
                bell: bell.clone(),
            },
            relay: Relay {
                db,
                events,
                bell,
                config: config.outbox,
                holder: format!("book-service-{}", uuid::Uuid::new_v4().simple()),
            },
            listener,
            state,
            drain: config.server.drain,
            consumer,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Consumes commands, sweeps holds, relays events and serves HTTP until `shutdown`; then
    /// drains requests and the commands in hand, gives the relay's lease up, and closes the
    /// pool.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let consumer = tokio::spawn(self.consumer.run(self.handler, shutdown.clone()));
        let sweeper = tokio::spawn(self.sweeper.run(shutdown.clone()));
        let relay = tokio::spawn(self.relay.run(shutdown.clone()));
        let result = serve(self.listener, self.router, shutdown.wait(), self.drain).await;
        if tokio::time::timeout(self.drain, consumer).await.is_err() {
            tracing::warn!(
                "commands still running after the drain period; the queue will redeliver them"
            );
        }
        let _ = sweeper.await;
        let _ = relay.await;
        self.state.db.close().await;
        result
    }
}

/// Runs book-service as configured by the environment until SIGTERM or Ctrl-C.
pub async fn serve_from_env() -> Result<(), BoxError> {
    let config = Config::from_env()?;
    if config.bus.is_in_process() {
        tracing::warn!(
            "AMQP_URL is unset: this book-service serves the catalogue and loans but receives no circulation commands from other processes (set AMQP_URL, or run `platform`)"
        );
    }
    let kv = common::kv::from_env().await?;
    let bus = Bus::open(config.bus.clone()).await?;
    let events = EventStream::open(config.events.clone()).await?;
    let app = Application::build(config, kv, bus, events).await?;
    let (trigger, shutdown) = shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
