//! scraper-service: company data from openmoney.md through an ELT pipeline.
//!
//! `POST /scrape` answers from the cache or queues a durable job in `scrape_jobs`; workers
//! Extract the company page (headless Chromium, or plain HTTP), Load it verbatim into
//! `source_data`, Transform it into `transformed_data` and refresh the cache. Stored pages can
//! be transformed again at any time without fetching (`POST /admin/retransform`, or the
//! `scraper-service retransform [IDNO]` command).

pub mod cache;
pub mod config;
pub mod error;
pub mod extract;
pub mod idno;
pub mod jobs;
pub mod load;
pub mod retransform;
pub mod routes;
pub mod transform;
pub mod worker;

use std::sync::Arc;

use axum::Router;
use common::db::Db;
use common::kv::Kv;
use common::server::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use config::Config;
pub use error::{ApiError, RetransformError, StartupError};
pub use retransform::RetransformReport;

use crate::extract::Fetcher;
use crate::worker::{Pipeline, WorkerPool};

/// The embedded migrations, per backend.
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A built service: listening, migrated, workers running.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    pipeline: Arc<Pipeline>,
    workers: WorkerPool,
}

/// Connects to the database named by `config` and applies the migrations.
pub async fn connect_db(config: &Config) -> Result<Db, StartupError> {
    let db = Db::connect(&config.db).await?;
    db.migrate(&POSTGRES_MIGRATIONS, &SQLITE_MIGRATIONS).await?;
    Ok(db)
}

impl Application {
    /// Connects, migrates, binds `config.addr`, and starts the workers with the fetcher the
    /// configuration selects.
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
        let db = connect_db(&config).await?;
        let listener = common::server::bind(&config.addr, "SCRAPER_SERVICE_ADDR").await?;
        let port = listener
            .local_addr()
            .map_err(|e| common::config::ConfigError::new("SCRAPER_SERVICE_ADDR", e.to_string()))?
            .port();
        let pipeline = Arc::new(Pipeline {
            config: Arc::new(config),
            db,
            kv,
            fetcher,
            notify: Notify::new(),
            owner: format!("scraper-{}", uuid::Uuid::new_v4().simple()),
        });
        let metrics_db = pipeline.db.clone();
        let router = common::server::CommonLayers::new("scraper-service", pipeline.config.limits)
            .extra_metrics(Arc::new(move || {
                let db = metrics_db.clone();
                Box::pin(async move { jobs::queue_metrics(&db).await })
            }))
            .apply(routes::router(pipeline.clone()));
        let workers = WorkerPool::start(pipeline.clone());
        tracing::info!(
            port,
            database = pipeline.db.backend_name(),
            cache = pipeline.kv.backend_name(),
            fetcher = pipeline.fetcher.name(),
            workers = pipeline.config.workers,
            "scraper-service ready"
        );
        Ok(Application {
            listener,
            router,
            port,
            pipeline,
            workers,
        })
    }

    /// The port the service listens on (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's database (tests inspect it).
    pub fn db(&self) -> &Db {
        &self.pipeline.db
    }

    /// Serves until `shutdown`, then drains requests and running jobs for at most
    /// `SCRAPE_SHUTDOWN_GRACE_MS`, puts jobs still held back in the queue, and stops the
    /// browser.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let Application {
            listener,
            router,
            pipeline,
            workers,
            ..
        } = self;
        let grace = pipeline.config.shutdown_grace;
        let serve = common::server::serve(listener, router, shutdown.clone().wait(), grace);
        let drain_jobs = async {
            shutdown.wait().await;
            workers.shutdown(grace).await;
        };
        let (served, ()) = tokio::join!(serve, drain_jobs);
        pipeline.fetcher.shutdown().await;
        pipeline.db.close().await;
        tracing::info!("scraper-service stopped");
        served
    }
}

/// Re-runs Transform over the stored pages of `idno` (or all), without any network fetch,
/// on the database `config` names; refreshes the cache in `kv`.
pub async fn retransform(
    config: &Config,
    kv: &Kv,
    idno: Option<&str>,
) -> Result<RetransformReport, RetransformError> {
    if let Some(i) = idno {
        common::api::scrape::check_idno(i).map_err(RetransformError::InvalidIdno)?;
    }
    let db = connect_db(config).await?;
    let result = retransform::run(&db, kv, config, idno).await;
    db.close().await;
    result
}
