//! app-service: the platform's one public API.
//!
//! It relays `/auth/*` to user-service and the company endpoints to scraper-service, checks
//! the caller itself on the routes it guards, maps unreachable dependencies to 503/504, and
//! serves the OpenAPI document with Swagger UI. It keeps no data of its own.

pub mod config;
pub mod error;
pub mod identity;
pub mod openapi;
pub mod routes;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::Router;
use common::auth::{Authenticator, Sessions};
use common::config::ConfigError;
use common::kv::Kv;
use common::server::{self, Shutdown};
use tokio::net::TcpListener;

pub use config::Config;
use upstream::Upstream;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub users: Upstream,
    pub scraper: Upstream,
    pub auth: Authenticator,
}

/// Start-up failed; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StartupError(#[from] ConfigError);

/// app-service bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
}

/// How long in-flight requests may run on after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// How long to wait at start-up for user-service's JWKS (EdDSA only).
const JWKS_WAIT: Duration = Duration::from_secs(30);

impl Application {
    /// Binds the listener and prepares the router; `kv` holds the sessions.
    pub async fn build(config: Config, kv: Kv) -> Result<Self, StartupError> {
        let http = upstream::http_client(config.upstream_connect_timeout, config.upstream_timeout)
            .map_err(|e| {
                ConfigError::new(
                    "USER_SERVICE_URL",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        let verifier = common::jwks::verifier(&config.tokens, &config.jwks_url, JWKS_WAIT).await?;
        if config.tokens.secret.is_none() {
            common::jwks::spawn_refresh(
                Arc::clone(&verifier),
                config.jwks_url.clone(),
                config.jwks_refresh,
            );
        }
        let state = AppState {
            users: Upstream::new("user-service", &config.user_service_url, http.clone()),
            scraper: Upstream::new("scraper-service", &config.scraper_service_url, http),
            auth: Authenticator::new(verifier, Sessions::new(kv)),
        };
        let router = app_router(state, config.limits);
        let listener = server::bind(&config.listen, "APP_SERVICE_ADDR").await?;
        let port = listener
            .local_addr()
            .map_err(|e| ConfigError::new("APP_SERVICE_ADDR", e.to_string()))?
            .port();
        Ok(Self {
            listener,
            router,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown`, then drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        tracing::info!(port = self.port, "app-service listening");
        server::serve(self.listener, self.router, shutdown.wait(), DRAIN).await
    }
}

/// The whole router: public routes, Swagger UI, readiness and the shared layers.
pub fn app_router(state: AppState, limits: server::HttpLimits) -> Router {
    let api = routes::router().with_state(state);
    let router = Router::new().merge(openapi::swagger_ui()).merge(api);
    server::CommonLayers::new("app-service", limits).apply(router)
}

/// `/readyz`: both services answer and the session store is reachable.
async fn readyz(State(s): State<AppState>) -> Response {
    let (users, scraper, kv) = tokio::join!(
        s.users.healthy(),
        s.scraper.healthy(),
        s.auth.sessions.ping()
    );
    server::readiness(&[
        ("user-service", users),
        ("scraper-service", scraper),
        ("session-store", kv.map_err(|e| e.to_string())),
    ])
}
