//! Starting every component in one process.
//!
//! [`Stack::start`] builds user-service, scraper-service, book-service, the borrowings
//! function (behind its local HTTP adapter), app-service and the gateway in that order, each pointed at the others' actual ports, sharing one key-value
//! store (so the gateway sees the sessions user-service writes), one circulation bus
//! (app-service sends commands on it, book-service consumes them) and one event stream
//! (book-service publishes circulation events on it, user-service's notifier consumes them). With no `DATABASE_URL` the data lives in
//! SQLite files under `DATA_DIR`; with no `REDIS_URL` sessions, throttling and the company
//! cache live in process; with no `AMQP_URL` circulation commands travel on the in-process
//! queue (`DATA_DIR/bus.sqlite`), and with no `NATS_URL` events on the in-process stream
//! (`DATA_DIR/events.sqlite`). Internal services listen on loopback unless configured
//! otherwise.

use std::net::SocketAddr;

use circulation::{Bus, BusConfig, BusStartError};
use common::config::{var, ConfigError};
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use events::{EventStream, StreamConfig, StreamStartError};
use service_kit::db::DbConfig;
use tokio::task::JoinHandle;

/// A service's database in the one-process mode: a `DATABASE_URL` shared by every service
/// gets one PostgreSQL schema per service (`schema`) unless `<PREFIX>_DATABASE_SCHEMA` or
/// `DATABASE_SCHEMA` names one, so the services never see each other's tables. A
/// service-specific URL (`<PREFIX>_DATABASE_URL`) is used as it is. The `serve` command and
/// the administrative commands resolve it the same way, so they act on the same data.
pub fn one_process_db(mut db: DbConfig, prefix: &str, schema: &str) -> DbConfig {
    let shared_url = var(&format!("{prefix}_DATABASE_URL")).is_none() && db.url.is_some();
    if shared_url {
        db.schema.get_or_insert_with(|| schema.to_owned());
    }
    db
}

/// Where a one-process stack took its settings from, after defaults were applied.
pub struct StackConfig {
    pub user: user_service::config::Config,
    pub scraper: scraper_service::config::Config,
    pub app: app_service::config::Config,
    /// book-service; its `bus` and `events` are replaced by [`StackConfig::bus`] and
    /// [`StackConfig::events`] at start.
    pub book: book_service::config::Config,
    /// The get-user-borrowings function, run in process behind its local HTTP adapter.
    pub borrowings: borrowings_function::config::Config,
    pub gateway: gateway::config::Config,
    /// How circulation commands travel (`AMQP_URL`, `CIRCULATION_*`): one bus, opened once,
    /// shared by app-service and book-service.
    pub bus: BusConfig,
    /// Where circulation events go (`NATS_URL`, `EVENTS_*`): one stream, opened once,
    /// shared by book-service and user-service (whose own `notifications.events` is then
    /// not used).
    pub events: StreamConfig,
    /// Which service URLs were given; each one that was not is pointed at the port its
    /// service actually bound.
    pub explicit_urls: ExplicitUrls,
}

/// Which service URLs the operator set explicitly.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplicitUrls {
    /// `APP_SERVICE_URLS` / `APP_SERVICE_URL` (the gateway's app-service instances).
    pub app: bool,
    /// `USER_SERVICE_URL`.
    pub user: bool,
    /// `SCRAPER_SERVICE_URL`.
    pub scraper: bool,
    /// `BOOK_SERVICE_URL` (where app-service reads loans and holds).
    pub book: bool,
    /// `BOOK_SERVICE_URLS` (the gateway's primary book-service instances). The backup group,
    /// `BOOK_SERVICE_BACKUP_URLS`, is only ever what was configured.
    pub book_primaries: bool,
    /// `BORROWINGS_URL` (the gateway's borrowings function).
    pub borrowings: bool,
}

impl StackConfig {
    /// Reads every service's configuration with one-process defaults: internal services on
    /// 127.0.0.1, a random token secret when `SECRET_KEY` is unset (tokens then end with the
    /// process), likewise a random `CIRCULATION_SECRET` when `AMQP_URL` is set without one
    /// (sender and consumer are this one process), and one PostgreSQL schema per service when
    /// they share `DATABASE_URL`.
    ///
    /// Call it before other threads read the environment: it may set `SECRET_KEY` and
    /// `CIRCULATION_SECRET`.
    pub fn from_env() -> Result<Self, ConfigError> {
        if var("SECRET_KEY").is_none() && var("ALGORITHM").is_none_or(|a| a.starts_with("HS")) {
            // Every service reads the same variable; set it once, before any of them starts.
            std::env::set_var("SECRET_KEY", random_secret());
            tracing::warn!(
                "SECRET_KEY is unset: using a random one, so tokens end with this process"
            );
        }
        if var("AMQP_URL").is_some() && var("CIRCULATION_SECRET").is_none() {
            // Commands signed by this process are read by this process only; a command left
            // on the broker by an earlier run fails its signature and is dead-lettered.
            std::env::set_var("CIRCULATION_SECRET", random_secret());
            tracing::warn!("CIRCULATION_SECRET is unset: using a random one for this process");
        }
        let mut user = user_service::config::Config::from_env()?;
        let mut scraper = scraper_service::config::Config::from_env()?;
        let mut app = app_service::config::Config::from_env()?;
        let mut book = book_service::config::Config::from_env()?;
        let mut borrowings = borrowings_function::config::Config::from_env()?;
        let gateway = gateway::config::Config::from_env()?;

        if var("USER_SERVICE_ADDR").is_none() {
            user.server.listen = "127.0.0.1:8002".into();
        }
        if var("SCRAPER_SERVICE_ADDR").is_none() {
            scraper.server.listen = "127.0.0.1:8003".into();
        }
        if var("APP_SERVICE_ADDR").is_none() {
            app.server.listen = "127.0.0.1:8001".into();
        }
        if var("BOOK_SERVICE_ADDR").is_none() {
            book.server.listen = "127.0.0.1:8004".into();
        }
        if var("BORROWINGS_FUNCTION_ADDR").is_none() {
            borrowings.server.listen = "127.0.0.1:8005".into();
        }
        user.db = one_process_db(user.db, "USER_SERVICE", "user_service");
        scraper.db = one_process_db(scraper.db, "SCRAPER_SERVICE", "scraper_service");
        book.db = one_process_db(book.db, "BOOK_SERVICE", "book_service");
        let explicit_urls = ExplicitUrls {
            app: var("APP_SERVICE_URLS").is_some() || var("APP_SERVICE_URL").is_some(),
            user: var("USER_SERVICE_URL").is_some(),
            scraper: var("SCRAPER_SERVICE_URL").is_some(),
            book: var("BOOK_SERVICE_URL").is_some(),
            book_primaries: var("BOOK_SERVICE_URLS").is_some(),
            borrowings: var("BORROWINGS_URL").is_some(),
        };
        Ok(Self {
            bus: book.bus.clone(),
            events: book.events.clone(),
            user,
            scraper,
            app,
            book,
            borrowings,
            gateway,
            explicit_urls,
        })
    }
}

/// A running one-process platform.
pub struct Stack {
    pub gateway_addr: SocketAddr,
    pub app_port: u16,
    pub user_port: u16,
    pub scraper_port: u16,
    pub book_port: u16,
    pub borrowings_port: u16,
    /// The circulation bus app-service and book-service share (another book-service instance
    /// of this process must consume from a clone of it).
    pub bus: Bus,
    /// The event stream book-service publishes on and user-service consumes (likewise
    /// shared in process).
    pub events: EventStream,
    trigger: ShutdownTrigger,
    services: Vec<(&'static str, JoinHandle<std::io::Result<()>>)>,
    gateway: gateway::GatewayHandle,
}

/// Start-up failed; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bus(#[from] BusStartError),
    #[error(transparent)]
    Events(#[from] StreamStartError),
    #[error("{0}")]
    Service(String),
}

impl Stack {
    /// Builds and starts every service; returns once all of them listen.
    pub async fn start(mut config: StackConfig, kv: Kv) -> Result<Self, StackError> {
        let (trigger, _) = shutdown_channel();
        // Redis' connection task lives on the runtime that first uses it: make that this one,
        // not one of the gateway's, which stop first at shutdown. Down now is not fatal.
        if let Err(e) = kv.ping().await {
            tracing::warn!(error = %e, "the key-value store is not reachable yet; requests needing it answer 503");
        }
        let mut services = Vec::new();

        // One bus and one event stream for the process: in process, a reply reaches its
        // waiting request, and an event its consumers, through the one value.
        let bus = Bus::open(config.bus.clone()).await?;
        let events = EventStream::open(config.events.clone()).await?;

        // user-service's notifier consumes the events book-service publishes.
        let user = user_service::startup::Application::build_with_events(
            config.user,
            kv.clone(),
            events.clone(),
        )
        .await
        .map_err(|e| StackError::Service(e.to_string()))?;
        let user_port = user.port();
        services.push((
            "user-service",
            tokio::spawn(user.run_until_stopped(trigger.subscribe())),
        ));

        if config.scraper.tokens.secret.is_none() && !config.explicit_urls.user {
            config.scraper.jwks_url = format!("http://127.0.0.1:{user_port}/.well-known/jwks.json");
        }
        let scraper = scraper_service::startup::Application::build(config.scraper, kv.clone())
            .await
            .map_err(|e| StackError::Service(e.to_string()))?;
        let scraper_port = scraper.port();
        services.push((
            "scraper-service",
            tokio::spawn(scraper.run_until_stopped(trigger.subscribe())),
        ));

        config.book.bus = config.bus;
        config.book.events = config.events;
        if config.book.tokens.secret.is_none() && !config.explicit_urls.user {
            config.book.jwks_url = format!("http://127.0.0.1:{user_port}/.well-known/jwks.json");
        }
        let book = book_service::startup::Application::build(
            config.book,
            kv.clone(),
            bus.clone(),
            events.clone(),
        )
        .await
        .map_err(|e| StackError::Service(e.to_string()))?;
        let book_port = book.port();
        services.push((
            "book-service",
            tokio::spawn(book.run_until_stopped(trigger.subscribe())),
        ));

        // The function reads loans through book-service's API, with the caller's token.
        if !config.explicit_urls.book {
            config.borrowings.books.url = format!("http://127.0.0.1:{book_port}");
        }
        if config.borrowings.tokens.secret.is_none() && !config.explicit_urls.user {
            config.borrowings.jwks_url =
                format!("http://127.0.0.1:{user_port}/.well-known/jwks.json");
        }
        let borrowings =
            borrowings_function::startup::Application::build(config.borrowings, kv.clone())
                .await
                .map_err(|e| StackError::Service(e.to_string()))?;
        let borrowings_port = borrowings.port();
        services.push((
            "borrowings-function",
            tokio::spawn(borrowings.run_until_stopped(trigger.subscribe())),
        ));

        if !config.explicit_urls.user {
            config.app.user_service_url = format!("http://127.0.0.1:{user_port}");
            if config.app.tokens.secret.is_none() {
                config.app.jwks_url = format!("http://127.0.0.1:{user_port}/.well-known/jwks.json");
            }
        }
        if !config.explicit_urls.scraper {
            config.app.scraper_service_url = format!("http://127.0.0.1:{scraper_port}");
        }
        if !config.explicit_urls.book {
            config.app.book_service_url = format!("http://127.0.0.1:{book_port}");
        }
        let app = app_service::startup::Application::build(config.app, kv.clone(), bus.clone())
            .await
            .map_err(|e| StackError::Service(e.to_string()))?;
        let app_port = app.port();
        services.push((
            "app-service",
            tokio::spawn(app.run_until_stopped(trigger.subscribe())),
        ));

        if !config.explicit_urls.app {
            config.gateway.upstreams = vec![format!("127.0.0.1:{app_port}")];
        }
        if !config.explicit_urls.book_primaries {
            config.gateway.book_service = vec![format!("127.0.0.1:{book_port}")];
        }
        if !config.explicit_urls.borrowings {
            config.gateway.borrowings = vec![format!("127.0.0.1:{borrowings_port}")];
        }
        if config.gateway.tokens.secret.is_none() && !config.explicit_urls.user {
            config.gateway.jwks_url = format!("http://127.0.0.1:{user_port}/.well-known/jwks.json");
        }
        let gateway_config = config.gateway;
        let gateway = tokio::task::spawn_blocking(move || gateway::start(gateway_config, kv))
            .await
            .map_err(|e| StackError::Service(format!("gateway: {e}")))?
            .map_err(|e| StackError::Service(e.to_string()))?;
        let gateway_addr = gateway.addr();

        Ok(Self {
            gateway_addr,
            app_port,
            user_port,
            scraper_port,
            book_port,
            borrowings_port,
            bus,
            events,
            trigger,
            services,
            gateway,
        })
    }

    /// Stops the services, letting in-flight requests and jobs finish within their drain
    /// periods, and waits for them: first the gateway (so nothing new comes in), then the
    /// services behind it.
    pub async fn stop(self) {
        self.gateway.stop().await;
        self.trigger.trigger();
        for (name, handle) in self.services {
            match handle.await {
                Ok(Ok(())) => tracing::info!(service = name, "stopped"),
                Ok(Err(e)) => tracing::warn!(service = name, error = %e, "stopped with an error"),
                Err(e) => tracing::warn!(service = name, error = %e, "task failed"),
            }
        }
    }
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
