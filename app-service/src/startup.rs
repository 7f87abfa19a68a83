//! Building app-service and running it until it is told to stop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use circulation::{Bus, BusConfig, BusStartError};
use common::auth::{Authenticator, Sessions};
use common::bin::BoxError;
use common::config::ConfigError;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, Shutdown};
use service_kit::server::{serve, CommonLayers, Listener};
use service_kit::HttpLimits;

use crate::circulation::Circulation;
use crate::config::Config;
use crate::state::AppState;
use crate::upstream::{http_client, stream_client, Upstream};
use crate::{openapi, routes};

/// How long start-up waits for user-service's JWKS (EdDSA only).
const JWKS_WAIT: Duration = Duration::from_secs(30);

/// Why app-service could not start; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS backend of the HTTP client could not be set up.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Bus(#[from] BusStartError),
}

/// app-service bound to its port, ready to serve.
pub struct Application {
    listener: Listener,
    router: Router,
    drain: Duration,
}

impl Application {
    /// Loads the token keys, builds the state and binds the listener; `kv` holds the sessions
    /// and circulation commands are sent on `bus` (in the one-process mode, the same [`Bus`]
    /// book-service consumes from).
    pub async fn build(config: Config, kv: Kv, bus: Bus) -> Result<Self, StartupError> {
        let http = http_client(config.upstream_connect_timeout, config.upstream_timeout)?;
        let verifier = common::jwks::verifier(&config.tokens, &config.jwks_url, JWKS_WAIT).await?;
        if config.tokens.secret.is_none() {
            common::jwks::spawn_refresh(
                Arc::clone(&verifier),
                config.jwks_url.clone(),
                config.jwks_refresh,
            );
        }
        let users = Upstream::new(
            "user-service",
            "USER_SERVICE_URL",
            &config.user_service_url,
            http.clone(),
        )?;
        let state = AppState {
            user_events: users.with_client(stream_client(
                config.upstream_connect_timeout,
                config.stream_idle_timeout,
            )?),
            users,
            scraper: Upstream::new(
                "scraper-service",
                "SCRAPER_SERVICE_URL",
                &config.scraper_service_url,
                http.clone(),
            )?,
            books: Upstream::new(
                "book-service",
                "BOOK_SERVICE_URL",
                &config.book_service_url,
                http,
            )?,
            circulation: Circulation::new(&bus).await,
            auth: Authenticator::new(verifier, Sessions::new(kv)),
        };
        let listener = Listener::bind(&config.server).await?;
        Ok(Self {
            listener,
            router: router(state, config.server.limits),
            drain: config.server.drain,
        })
    }

    /// The port it listens on (the real one when port 0 was asked for).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// Serves until `shutdown` fires, then lets in-flight requests finish for at most
    /// `server.drain`.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        tracing::info!(port = self.port(), "app-service listening");
        serve(self.listener, self.router, shutdown.wait(), self.drain).await
    }
}

/// The whole HTTP surface: the routes, Swagger UI and `/openapi.json`, in the layers every
/// service shares.
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    let api = routes::routes().with_state(state);
    let router = Router::new().merge(openapi::swagger_ui()).merge(api);
    CommonLayers::new("app-service", limits).apply(router)
}

/// The binary's body: configuration, key-value store and circulation bus from the
/// environment, then serve until SIGTERM or Ctrl-C.
pub async fn serve_from_env() -> Result<(), BoxError> {
    let config = Config::from_env()?;
    let bus_config = BusConfig::from_env()?;
    if bus_config.is_in_process() {
        // No book-service shares this process: every command would wait for a reply in vain.
        return Err(common::config::ConfigError::new(
            "AMQP_URL",
            "required when app-service runs as its own process (the in-process queue links services only inside `platform`)",
        )
        .into());
    }
    let kv = common::kv::from_env().await?;
    let bus = Bus::open(bus_config).await?;
    let app = Application::build(config, kv, bus).await?;
    let (trigger, shutdown) = shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
