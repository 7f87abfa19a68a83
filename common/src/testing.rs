//! Test support shared by every crate's integration tests.
//!
//! Backends: SQLite and the in-process store always; PostgreSQL and Redis when
//! `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set. With `REQUIRE_EXTERNAL_BACKENDS=1` (as
//! `.ci/run` sets) a missing URL fails the test instead of leaving the backend untested.
//!
//! [`CuttableProxy`] sits between a service and a real dependency so a test can take the
//! dependency "down" and bring it back without touching the shared server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::db::testing::TestSchema;
use crate::db::DbConfig;
use crate::kv::{Kv, RedisTimeouts};

fn required() -> bool {
    crate::config::var("REQUIRE_EXTERNAL_BACKENDS").is_some_and(|v| v == "1" || v == "true")
}

fn external(var: &str) -> Option<String> {
    let value = crate::config::var(var);
    assert!(
        value.is_some() || !required(),
        "REQUIRE_EXTERNAL_BACKENDS is set but {var} is not: this backend would go untested"
    );
    value
}

/// `TEST_DATABASE_URL`, when set.
pub fn postgres_url() -> Option<String> {
    external("TEST_DATABASE_URL")
}

/// `TEST_REDIS_URL`, when set.
pub fn redis_url() -> Option<String> {
    external("TEST_REDIS_URL")
}

/// A unique key prefix for one test.
pub fn unique_prefix(label: &str) -> String {
    format!("test:{label}:{}:", uuid::Uuid::new_v4().simple())
}

/// A database for one test: a SQLite file in `dir`, or a fresh PostgreSQL schema.
pub enum TestDb {
    Sqlite(DbConfig),
    Postgres(TestSchema),
}

impl TestDb {
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

    /// Drops the PostgreSQL schema (SQLite files go with their temporary directory).
    pub async fn cleanup(&self) {
        if let TestDb::Postgres(s) = self {
            s.drop_now().await;
        }
    }
}

/// Every database backend to test against: SQLite in `dir`, plus PostgreSQL when configured.
pub fn databases(dir: &Path, label: &str) -> Vec<TestDb> {
    let mut dbs = vec![TestDb::Sqlite(DbConfig::sqlite(
        dir,
        &format!("{label}.sqlite"),
    ))];
    if let Some(url) = postgres_url() {
        dbs.push(TestDb::Postgres(TestSchema::new(&url, label)));
    }
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

/// Redis at `url` under `prefix`, with short timeouts so "down" is noticed quickly.
pub async fn redis_kv(url: &str, prefix: &str) -> Kv {
    let timeouts = RedisTimeouts {
        connect: std::time::Duration::from_millis(500),
        response: std::time::Duration::from_millis(500),
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
