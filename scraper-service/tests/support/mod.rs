//! Test support: the fixture site, spawning the service, and polling helpers.

#![allow(dead_code)]

pub mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use common::db::{Db, DbConfig};
use common::kv::Kv;
use common::server::{shutdown_channel, ShutdownTrigger};
use common::testing::TestDb;
use reqwest::StatusCode;
use scraper_service::config::FetcherChoice;
use scraper_service::{Application, Config};
use serde_json::{json, Value};

pub use common::api::scrape::idno_from_stem as idno;

/// Each database backend paired with a key-value backend: SQLite with the in-process store
/// always; PostgreSQL with Redis when `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set.
pub async fn backends(dir: &Path, label: &str) -> Vec<(TestDb, Kv)> {
    let dbs = common::testing::databases(dir, label);
    let kvs = common::testing::key_values(label).await;
    let last = kvs.len() - 1;
    dbs.into_iter()
        .enumerate()
        .map(|(i, db)| (db, kvs[i.min(last)].clone()))
        .collect()
}

/// A configuration for tests: port 0, plain HTTP fetcher, fast polling and retries.
pub fn config(db: DbConfig, source: &str) -> Config {
    let mut c = Config::defaults(db);
    c.addr = "127.0.0.1:0".into();
    c.source_base_url = url::Url::parse(source).expect("fixture URL");
    c.fetcher = FetcherChoice::Http;
    c.workers = 2;
    c.poll_interval = Duration::from_millis(50);
    c.lease = Duration::from_secs(30);
    c.retry_base = Duration::from_millis(50);
    c.retry_max = Duration::from_millis(200);
    c.page_timeout = Duration::from_secs(10);
    c.shutdown_grace = Duration::from_secs(3);
    c
}

/// Whether chromedriver and Chromium are installed. When they are not, browser tests are
/// skipped — unless `REQUIRE_EXTERNAL_BACKENDS=1`, which makes them fail.
pub fn browser_available() -> bool {
    let c = Config::defaults(DbConfig::sqlite(Path::new("/tmp"), "unused"));
    let found = scraper_service::config::find_executable(&c.chromedriver_path).is_some()
        && scraper_service::config::find_executable(&c.chromium_path).is_some();
    if !found {
        let required =
            std::env::var("REQUIRE_EXTERNAL_BACKENDS").is_ok_and(|v| v == "1" || v == "true");
        assert!(
            !required,
            "REQUIRE_EXTERNAL_BACKENDS is set but chromedriver/Chromium are not installed"
        );
        eprintln!("SKIPPED: chromedriver or Chromium not found; browser test not run");
    }
    found
}

/// A running service.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: Db,
    kv: Kv,
    /// IDNOs asked for, whose cache entries `stop` deletes.
    asked: std::sync::Mutex<Vec<String>>,
    trigger: ShutdownTrigger,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    pub async fn spawn(config: Config, kv: Kv) -> TestApp {
        let app = Application::build(config, kv.clone())
            .await
            .expect("service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let db = app.db().clone();
        let (trigger, shutdown) = shutdown_channel();
        let handle = tokio::spawn(app.run_until_stopped(shutdown));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        TestApp {
            base,
            client,
            db,
            kv,
            asked: Default::default(),
            trigger,
            handle,
        }
    }

    /// Graceful stop; waits until the service has drained and released its jobs. Deletes the
    /// cache entries of the companies asked for (a shared Redis outlives the test).
    pub async fn stop(self) {
        self.trigger.trigger();
        self.handle
            .await
            .expect("service task")
            .expect("service stopped cleanly");
        let asked = std::mem::take(&mut *self.asked.lock().unwrap());
        forget(&self.kv, &asked).await;
    }

    /// Marks `idno` for cache clean-up at `stop` (when another instance asked for it).
    pub fn remember(&self, idno: &str) {
        self.asked.lock().unwrap().push(idno.to_owned());
    }

    pub async fn post(
        &self,
        path: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        if let Some(idno) = body["idno"].as_str() {
            self.asked.lock().unwrap().push(idno.to_owned());
        }
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn scrape(&self, idno: &str, force: bool) -> (StatusCode, Value) {
        let (status, _, body) = self
            .post("/scrape/", json!({"idno": idno, "force_refresh": force}))
            .await;
        (status, body)
    }

    /// Polls the job until it is succeeded or failed.
    pub async fn wait_job(&self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(&format!("/scrape/jobs/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if matches!(body["state"].as_str(), Some("succeeded" | "failed")) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not finish in time: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls until the job is in `state`.
    pub async fn wait_state(&self, id: i64, state: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, body) = self.get(&format!("/scrape/jobs/{id}")).await;
            if body["state"] == state {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never reached {state}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Deletes the cache entries of `ids` (keys left in a shared Redis would outlive the test).
pub async fn forget(kv: &Kv, ids: &[String]) {
    for id in ids {
        let _ = kv.del(&scraper_service::cache::key(id)).await;
    }
}

/// A single number from the database, e.g. `SELECT COUNT(*) …` (cast to BIGINT).
pub async fn scalar(db: &Db, sql: &str, idno: &str) -> i64 {
    common::with_db!(db, pool => sqlx::query_scalar::<_, i64>(sql).bind(idno).fetch_one(pool).await)
        .expect("query")
}
