//! Starting and stopping the service: [`Application`] connects, migrates, binds and starts the
//! workers; [`router`] is the whole HTTP surface; [`serve_from_env`] is what the binary runs.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::auth::{Authenticator, Sessions};
use common::config::ConfigError;
use common::kv::Kv;
use common::metrics::Metrics;
use common::shutdown::Shutdown;
use service_kit::db::{Db, DbStartError};
use service_kit::server::{CommonLayers, Listener};
use service_kit::HttpLimits;

use crate::config::Config;
use crate::extract::{self, Fetcher};
use crate::state::AppState;
use crate::store;
use crate::worker::WorkerPool;

/// The name the service reports itself under (logs, traces, metrics).
pub const SERVICE: &str = "scraper-service";

/// How long start-up waits for the issuer's JWKS (`ALGORITHM=EdDSA` only).
const JWKS_WAIT: Duration = Duration::from_secs(30);

/// Why the service could not start; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbStartError),
}

/// A built service: listening, migrated, workers running.
pub struct Application {
    listener: Listener,
    router: Router,
    state: AppState,
    workers: WorkerPool,
}

impl Application {
    /// Connects and migrates, loads the token keys, binds `config.server.listen`, and starts
    /// the workers with the fetcher the configuration selects.
    pub async fn build(config: Config, kv: Kv) -> Result<Application, StartupError> {
        let fetcher = extract::from_config(&config)?;
        Self::build_with_fetcher(config, kv, fetcher).await
    }

    /// [`Application::build`] with a given fetcher (tests, custom sources).
    pub async fn build_with_fetcher(
        config: Config,
        kv: Kv,
        fetcher: Arc<dyn Fetcher>,
    ) -> Result<Application, StartupError> {
        let db = Db::open(
            &config.db,
            &store::POSTGRES_MIGRATIONS,
            &store::SQLITE_MIGRATIONS,
        )
        .await?;
        let verifier = common::jwks::verifier(&config.tokens, &config.jwks_url, JWKS_WAIT).await?;
        if config.tokens.secret.is_none() {
            common::jwks::spawn_refresh(
                Arc::clone(&verifier),
                config.jwks_url.clone(),
                config.jwks_refresh,
            );
        }
        let auth = Authenticator::new(verifier, Sessions::new(kv.clone()));
        let listener = Listener::bind(&config.server).await?;
        let limits = config.server.limits;
        let state = AppState::new(config, db, kv, auth, fetcher);
        let router = router(state.clone(), limits);
        let workers = WorkerPool::start(state.clone());
        tracing::info!(
            port = listener.port(),
            database = state.db.backend_name(),
            cache = state.kv.backend_name(),
            fetcher = state.fetcher.name(),
            workers = state.config.workers,
            "scraper-service ready"
        );
        Ok(Application {
            listener,
            router,
            state,
            workers,
        })
    }

    /// The port the service listens on (the real one when port 0 was asked for).
    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// The service's database (tests inspect it).
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// Serves until `shutdown`, then drains requests and running jobs for at most
    /// `server.drain` (`SHUTDOWN_GRACE_MS`), puts jobs still held back in the queue, stops
    /// re-transform runs at a batch boundary (resumable), stops the browser and closes the
    /// pool.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let Application {
            listener,
            router,
            state,
            workers,
        } = self;
        let drain = state.config.server.drain;
        let serve = service_kit::server::serve(listener, router, shutdown.clone().wait(), drain);
        let drain_jobs = async {
            shutdown.wait().await;
            tokio::join!(workers.shutdown(drain), state.retransforms.shutdown(drain));
        };
        let (served, ()) = tokio::join!(serve, drain_jobs);
        state.fetcher.shutdown().await;
        state.db.close().await;
        tracing::info!("scraper-service stopped");
        served
    }
}

/// The whole HTTP surface: [`crate::routes::routes`] with the common layers, and the queue
/// depth among the metrics.
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    let metrics = Metrics::new(SERVICE);
    let queue_depth = crate::metrics::queue_depth(&metrics, state.db.clone());
    CommonLayers::new(SERVICE, limits)
        .metrics(metrics)
        .before_scrape(queue_depth)
        .apply(crate::routes::routes().with_state(state))
}

/// Reads the configuration and the key-value store from the environment, then serves until
/// SIGTERM or Ctrl-C.
pub async fn serve_from_env() -> Result<(), common::bin::BoxError> {
    let config = Config::from_env()?;
    let kv = common::kv::from_env().await?;
    let app = Application::build(config, kv).await?;
    let (trigger, shutdown) = common::shutdown::shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
