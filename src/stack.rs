//! Starting every component in one process.
//!
//! [`Stack::start`] builds user-service, scraper-service, app-service and the gateway in that
//! order, each pointed at the others' actual ports, sharing one key-value store (so the
//! gateway sees the sessions user-service writes). With no `DATABASE_URL` the data lives in
//! SQLite files under `DATA_DIR`; with no `REDIS_URL` sessions, throttling and the company
//! cache live in process. Internal services listen on loopback unless configured otherwise.

use std::net::SocketAddr;

use common::config::{var, ConfigError};
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
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
    pub gateway: gateway::config::Config,
    /// Whether `APP_SERVICE_URLS`/`USER_SERVICE_URL`/`SCRAPER_SERVICE_URL` were given; when
    /// not, each service is pointed at the port its neighbour actually bound.
    pub explicit_urls: ExplicitUrls,
}

/// Which service URLs the operator set explicitly.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExplicitUrls {
    pub app: bool,
    pub user: bool,
    pub scraper: bool,
}

impl StackConfig {
    /// Reads every service's configuration with one-process defaults: internal services on
    /// 127.0.0.1, a random token secret when `SECRET_KEY` is unset (tokens then end with the
    /// process), and one PostgreSQL schema per service when both share `DATABASE_URL`.
    ///
    /// Call it before other threads read the environment: it may set `SECRET_KEY`.
    pub fn from_env() -> Result<Self, ConfigError> {
        if var("SECRET_KEY").is_none() && var("ALGORITHM").is_none_or(|a| a.starts_with("HS")) {
            // Every service reads the same variable; set it once, before any of them starts.
            std::env::set_var("SECRET_KEY", random_secret());
            tracing::warn!(
                "SECRET_KEY is unset: using a random one, so tokens end with this process"
            );
        }
        let mut user = user_service::config::Config::from_env()?;
        let mut scraper = scraper_service::config::Config::from_env()?;
        let mut app = app_service::config::Config::from_env()?;
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
        user.db = one_process_db(user.db, "USER_SERVICE", "user_service");
        scraper.db = one_process_db(scraper.db, "SCRAPER_SERVICE", "scraper_service");
        let explicit_urls = ExplicitUrls {
            app: var("APP_SERVICE_URLS").is_some() || var("APP_SERVICE_URL").is_some(),
            user: var("USER_SERVICE_URL").is_some(),
            scraper: var("SCRAPER_SERVICE_URL").is_some(),
        };
        Ok(Self {
            user,
            scraper,
            app,
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
    trigger: ShutdownTrigger,
    services: Vec<(&'static str, JoinHandle<std::io::Result<()>>)>,
    gateway: gateway::GatewayHandle,
}

/// Start-up failed; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Config(#[from] ConfigError),
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

        let user = user_service::startup::Application::build(config.user, kv.clone())
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

        if !config.explicit_urls.user {
            config.app.user_service_url = format!("http://127.0.0.1:{user_port}");
            if config.app.tokens.secret.is_none() {
                config.app.jwks_url = format!("http://127.0.0.1:{user_port}/.well-known/jwks.json");
            }
        }
        if !config.explicit_urls.scraper {
            config.app.scraper_service_url = format!("http://127.0.0.1:{scraper_port}");
        }
        let app = app_service::startup::Application::build(config.app, kv.clone())
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
