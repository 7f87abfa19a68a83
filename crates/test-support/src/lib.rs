//! Test support for every crate's tests; a dev-dependency only, never linked into a
//! production binary.
//!
//! Backends: SQLite and the in-process store always; PostgreSQL and Redis when
//! `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set. With `REQUIRE_EXTERNAL_BACKENDS=1` (as
//! `.ci/run` sets) a missing URL fails the test instead of leaving the backend untested.
//!
//! - [`TestDb`]: a database for one test; a PostgreSQL schema is dropped when the value goes
//!   away, even when the test panicked.
//! - [`backends`]: each database backend paired with a key-value backend.
//! - [`sign_hs256`]: a token signed with a shared secret, for tests that forge or craft one.
//! - [`CuttableProxy`]: sits between a service and a real dependency so a test can take the
//!   dependency "down" and bring it back without touching the shared server.
//! - [`SplitMix`]: a small deterministic generator for made-up data (corpora, catalogues).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::kv::{Kv, RedisTimeouts};
use service_kit::db::DbConfig;
use sqlx::Connection;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

fn required() -> bool {
    common::config::var("REQUIRE_EXTERNAL_BACKENDS").is_some_and(|v| v == "1" || v == "true")
}

/// The URL of an external backend under test in `var` (`TEST_…_URL`), when set; with
/// `REQUIRE_EXTERNAL_BACKENDS=1` its absence fails the test instead of leaving the backend
/// untested.
pub fn external_url(var: &str) -> Option<String> {
    let value = common::config::var(var);
    assert!(
        value.is_some() || !required(),
        "REQUIRE_EXTERNAL_BACKENDS is set but {var} is not: this backend would go untested"
    );
    value
}

/// `TEST_DATABASE_URL`, when set.
pub fn postgres_url() -> Option<String> {
    external_url("TEST_DATABASE_URL")
}

/// `TEST_REDIS_URL`, when set.
pub fn redis_url() -> Option<String> {
    external_url("TEST_REDIS_URL")
}

/// Runs `cleanup` to its end on a thread with a runtime of its own: what a `Drop` that must
/// reach a backend does, since `Drop` cannot await, whether or not the dropping thread is
/// inside a runtime. Failures are the cleanup's to ignore.
pub fn clean_up_on_own_thread(cleanup: impl Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(cleanup);
        }
    })
    .join();
}

/// A unique key prefix (and schema suffix) for one test.
pub fn unique_prefix(label: &str) -> String {
    format!("test:{label}:{}:", uuid::Uuid::new_v4().simple())
}

/// A PostgreSQL schema for one test: created when a service connects with [`Self::config`],
/// dropped with everything in it when this value is dropped (also after a panic).
pub struct TestSchema {
    pub url: String,
    pub name: String,
}

impl TestSchema {
    /// A fresh schema name under `url`.
    pub fn new(url: &str, label: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(32)
            .collect();
        Self {
            url: url.to_owned(),
            name: format!("t_{label}_{}", &id[..12]),
        }
    }

    pub fn config(&self) -> DbConfig {
        DbConfig::postgres(&self.url, Some(&self.name))
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        clean_up_on_own_thread(async move {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        });
    }
}

/// A database for one test: a SQLite file, or a fresh PostgreSQL schema.
pub enum TestDb {
    Sqlite(DbConfig),
    Postgres(TestSchema),
}

impl TestDb {
    /// SQLite in `dir/<file>`.
    pub fn sqlite(dir: &Path, file: &str) -> Self {
        TestDb::Sqlite(DbConfig::sqlite(dir, file))
    }

    /// A fresh schema under `TEST_DATABASE_URL`, when set.
    pub fn postgres(label: &str) -> Option<Self> {
        postgres_url().map(|url| TestDb::Postgres(TestSchema::new(&url, label)))
    }

    pub fn config(&self) -> DbConfig {
        match self {
            TestDb::Sqlite(c) => c.clone(),
            TestDb::Postgres(s) => s.config(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            TestDb::Sqlite(_) => "sqlite",
            TestDb::Postgres(_) => "postgres",
        }
    }
}

/// Every database backend to test against: SQLite in `dir`, plus PostgreSQL when configured.
pub fn databases(dir: &Path, label: &str) -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite(dir, &format!("{label}.sqlite"))];
    dbs.extend(TestDb::postgres(label));
    dbs
}

/// Every key-value backend to test against, each with a unique prefix: in-process, plus
/// Redis when configured.
pub async fn key_values(label: &str) -> Vec<Kv> {
    let prefix = unique_prefix(label);
    let mut kvs = vec![Kv::memory(&prefix)];
    if let Some(url) = redis_url() {
        kvs.push(redis_kv(&url, &prefix).await);
    }
    kvs
}

/// Each database backend paired with a key-value backend: SQLite with the in-process store
/// always; PostgreSQL with Redis when configured (a backend missing on one side is paired with
/// the local one of the other).
pub async fn backends(dir: &Path, label: &str) -> Vec<(TestDb, Kv)> {
    let mut dbs = databases(dir, label);
    let mut kvs = key_values(label).await;
    while dbs.len() < kvs.len() {
        dbs.push(TestDb::sqlite(
            dir,
            &format!("{label}-{}.sqlite", dbs.len()),
        ));
    }
    while kvs.len() < dbs.len() {
        kvs.push(Kv::memory(&unique_prefix(label)));
    }
    dbs.into_iter().zip(kvs).collect()
}

/// Redis at `url` under `prefix`, with timeouts short enough that "down" is noticed quickly
/// and long enough that a busy 2-core machine running the whole suite (browser included) is
/// not mistaken for an outage.
pub async fn redis_kv(url: &str, prefix: &str) -> Kv {
    let timeouts = RedisTimeouts {
        connect: Duration::from_millis(1000),
        response: Duration::from_millis(1500),
    };
    Kv::redis(url, prefix, timeouts)
        .await
        .expect("TEST_REDIS_URL is a valid Redis URL")
}

/// Redis at `url` reached through a [`CuttableProxy`], under a fresh prefix for `label`: cut
/// the proxy to take the store down for this test alone.
pub async fn redis_behind_proxy(url: &str, label: &str) -> (CuttableProxy, Kv) {
    let proxy = CuttableProxy::start(host_port(url)).await;
    let kv = redis_kv(&via(url, proxy.addr()), &unique_prefix(label)).await;
    (proxy, kv)
}

/// `claims` signed with `secret` (HMAC), as an issuer sharing that secret would sign them.
pub fn sign_hmac(
    claims: &impl serde::Serialize,
    algorithm: jsonwebtoken::Algorithm,
    secret: &str,
) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("claims serialise")
}

/// [`sign_hmac`] with HS256, the platform's default algorithm.
pub fn sign_hs256(claims: &impl serde::Serialize, secret: &str) -> String {
    sign_hmac(claims, jsonwebtoken::Algorithm::HS256, secret)
}

/// A TCP proxy on 127.0.0.1 that forwards to `target` until cut, then refuses and drops
/// every connection until restored.
#[derive(Clone)]
pub struct CuttableProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl CuttableProxy {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let proxy = Self {
            addr,
            up: up.clone(),
            cut: cut.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let cut = cut.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {},
                        _ = cut.notified() => {},
                    }
                });
            }
        });
        proxy
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `url` with its host and port replaced by `addr` (to route a dependency through a proxy).
pub fn via(url: &str, addr: SocketAddr) -> String {
    let mut u = url::Url::parse(url).expect("a valid URL");
    u.set_ip_host(addr.ip()).expect("URL with a host");
    u.set_port(Some(addr.port())).expect("URL with a port");
    u.to_string()
}

/// The `host:port` of a URL (defaulting the port from the scheme).
pub fn host_port(url: &str) -> String {
    let u = url::Url::parse(url).expect("a valid URL");
    format!(
        "{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port_or_known_default().unwrap_or(0)
    )
}

/// A small deterministic generator (SplitMix64): the same seed gives the same data, with no
/// dependency.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// One of `list`, which must not be empty.
    pub fn pick<T: Copy>(&mut self, list: &[T]) -> T {
        list[(self.next_u64() % list.len() as u64) as usize]
    }
}
