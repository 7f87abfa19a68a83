//! The upstream instances: one pool per upstream group, found by DNS, health-checked, and
//! chosen round robin — plus the backup group of book-service.
//!
//! Each pool is a Pingora [`LoadBalancer`] run as a background service: it resolves the
//! configured host names again every few seconds (new replicas, moved containers) and probes
//! every instance every `HEALTH_CHECK_INTERVAL_MS`. Services are probed with `GET /healthz`;
//! the borrowings function, which is not one of the platform's services and promises no
//! health route, with a TCP connect.
//!
//! Backup semantics are ours: Pingora's load balancer knows one flat set of instances. An
//! [`UpstreamGroup`] is a primary pool and an optional backup pool, each health-checked on its
//! own; a request goes to a backup instance only when no primary instance is healthy (or the
//! only healthy one just failed this request), and returns to the primaries as soon as one
//! passes its health check again.
//!
//! Health transitions are logged once each (info when an instance comes up, warn when it goes
//! down); routine probes log nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::health_check::{HealthCheck, HealthObserve, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::ServiceHandle;

use crate::config::{upstream_authority, Config};
use crate::error::StartupError;
use crate::routing::Upstream;

/// How often upstream host names are resolved again (new replicas, moved containers).
const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// How long a health probe may wait for its answer.
const PROBE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One set of interchangeable instances.
pub struct Pool {
    /// The name in logs and in the `pool` label of `gateway_upstream_healthy`.
    name: &'static str,
    lb: Arc<LoadBalancer<RoundRobin>>,
}

impl Pool {
    /// A healthy instance other than `avoid`, round robin.
    fn select(&self, avoid: Option<SocketAddr>) -> Option<SocketAddr> {
        // Instances are TCP addresses (see `Resolver`), never Unix sockets.
        self.lb
            .select_with(b"", 32, |backend, healthy| {
                healthy && backend.addr.as_inet().is_some_and(|a| Some(*a) != avoid)
            })
            .and_then(|b| b.addr.as_inet().copied())
    }

    /// Every known instance and whether it passes its health check.
    pub fn instances(&self) -> Vec<(SocketAddr, bool)> {
        let backends = self.lb.backends();
        backends
            .get_backend()
            .iter()
            .filter_map(|b| b.addr.as_inet().map(|a| (*a, backends.ready(b))))
            .collect()
    }

    fn has_healthy_other_than(&self, avoid: Option<SocketAddr>) -> bool {
        let backends = self.lb.backends();
        backends
            .get_backend()
            .iter()
            .any(|b| backends.ready(b) && b.addr.as_inet().is_some_and(|a| Some(*a) != avoid))
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Primary instances, and backup instances used only while no primary is healthy.
pub struct UpstreamGroup {
    primary: Pool,
    backup: Option<Pool>,
}

impl UpstreamGroup {
    /// The instance for the next attempt: a healthy primary other than `avoid` (the instance
    /// that just failed this request), else a healthy backup other than `avoid`.
    pub fn select(&self, avoid: Option<SocketAddr>) -> Option<SocketAddr> {
        self.primary
            .select(avoid)
            .or_else(|| self.backup.as_ref().and_then(|b| b.select(avoid)))
    }

    /// Whether another attempt has somewhere to go.
    pub fn has_healthy_other_than(&self, avoid: Option<SocketAddr>) -> bool {
        self.primary.has_healthy_other_than(avoid)
            || self
                .backup
                .as_ref()
                .is_some_and(|b| b.has_healthy_other_than(avoid))
    }

    /// Whether any instance of the group is healthy.
    pub fn any_healthy(&self) -> bool {
        self.has_healthy_other_than(None)
    }

    fn pools(&self) -> impl Iterator<Item = &Pool> {
        std::iter::once(&self.primary).chain(self.backup.as_ref())
    }
}

/// Every upstream group of the gateway.
pub struct Upstreams {
    app: UpstreamGroup,
    books: UpstreamGroup,
    borrowings: UpstreamGroup,
}

impl Upstreams {
    /// Builds every pool from `config` and adds each to `server` as a background service
    /// (discovery and health checks). The handles are what the proxy must wait for: each
    /// pool is ready after its first discovery.
    pub fn install(
        config: &Config,
        server: &mut Server,
    ) -> Result<(Self, Vec<ServiceHandle>), StartupError> {
        let mut handles = Vec::new();
        let mut pool = |name, urls: &[String], var, probe| -> Result<Pool, StartupError> {
            let lb = load_balancer(config, urls, var, probe)?;
            let service = background_service(name, lb);
            let lb = service.task();
            handles.push(server.add_service(service));
            Ok(Pool { name, lb })
        };
        let app = UpstreamGroup {
            primary: pool("app", &config.upstreams, "APP_SERVICE_URLS", Probe::Http)?,
            backup: None,
        };
        let books = UpstreamGroup {
            primary: pool(
                "books",
                &config.book_service,
                "BOOK_SERVICE_URLS",
                Probe::Http,
            )?,
            backup: if config.book_service_backup.is_empty() {
                None
            } else {
                Some(pool(
                    "books-backup",
                    &config.book_service_backup,
                    "BOOK_SERVICE_BACKUP_URLS",
                    Probe::Http,
                )?)
            },
        };
        let borrowings = UpstreamGroup {
            primary: pool(
                "borrowings",
                &config.borrowings,
                "BORROWINGS_URL",
                Probe::Tcp,
            )?,
            backup: None,
        };
        Ok((
            Self {
                app,
                books,
                borrowings,
            },
            handles,
        ))
    }

    /// The group serving `upstream`.
    pub fn group(&self, upstream: Upstream) -> &UpstreamGroup {
        match upstream {
            Upstream::AppService => &self.app,
            Upstream::BookService => &self.books,
            Upstream::Borrowings => &self.borrowings,
        }
    }

    /// Every pool, backups included (for the health gauges).
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.app
            .pools()
            .chain(self.books.pools())
            .chain(self.borrowings.pools())
    }
}

/// How instances of a pool are probed.
#[derive(Clone, Copy)]
enum Probe {
    /// `GET /healthz` answers 200.
    Http,
    /// A TCP connection is accepted.
    Tcp,
}

fn load_balancer(
    config: &Config,
    urls: &[String],
    var: &'static str,
    probe: Probe,
) -> Result<LoadBalancer<RoundRobin>, StartupError> {
    let targets = urls
        .iter()
        .map(|u| upstream_authority(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| common::config::ConfigError::new(var, e))?;
    let discovery = Resolver {
        targets,
        unresolved: Mutex::new(HashSet::new()),
    };
    let mut backends = Backends::new(Box::new(discovery));
    let check: Box<dyn HealthCheck + Send + Sync> = match probe {
        Probe::Http => {
            let mut check = HttpHealthCheck::new("gateway", false);
            let mut req = pingora::http::RequestHeader::build("GET", b"/healthz", None)
                .map_err(|e| StartupError::NotServing(format!("health check request: {e}")))?;
            req.insert_header("Host", "gateway")
                .map_err(|e| StartupError::NotServing(format!("health check request: {e}")))?;
            check.req = req;
            check.peer_template.options.connection_timeout = Some(config.connect_timeout);
            check.peer_template.options.read_timeout = Some(PROBE_READ_TIMEOUT);
            check.health_changed_callback = Some(Box::new(LogHealth));
            Box::new(check)
        }
        Probe::Tcp => {
            let mut check = TcpHealthCheck::new();
            check.peer_template.options.connection_timeout = Some(config.connect_timeout);
            check.health_changed_callback = Some(Box::new(LogHealth));
            check
        }
    };
    backends.set_health_check(check);

    let mut lb = LoadBalancer::from_backends(backends);
    lb.health_check_frequency = Some(config.health_check_interval);
    lb.update_frequency = Some(RESOLVE_EVERY);
    lb.parallel_health_check = true;
    Ok(lb)
}

/// Service discovery by DNS (or IP literals) over `host:port` targets.
struct Resolver {
    targets: Vec<String>,
    /// Targets that failed to resolve last time (to log a failure once, not every round).
    unresolved: Mutex<HashSet<String>>,
}

#[async_trait]
impl ServiceDiscovery for Resolver {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let mut found = BTreeSet::new();
        let mut failed = Vec::new();
        for target in &self.targets {
            match tokio::net::lookup_host(target.as_str()).await {
                Ok(addrs) => found.extend(addrs.map(|addr| Backend {
                    addr: pingora::protocols::l4::socket::SocketAddr::Inet(addr),
                    weight: 1,
                    ext: http::Extensions::new(),
                })),
                Err(e) => failed.push((target, e)),
            }
        }
        {
            let mut unresolved = self.unresolved.lock().unwrap_or_else(|p| p.into_inner());
            for (target, e) in &failed {
                if unresolved.insert((*target).clone()) {
                    tracing::warn!(upstream = %target, error = %e, "cannot resolve upstream");
                }
            }
            unresolved.retain(|t| failed.iter().any(|(f, _)| *f == t));
        }
        if found.is_empty() && !failed.is_empty() {
            // Keep the instances we knew rather than forgetting them over a DNS hiccup.
            return Err(pingora::Error::explain(
                pingora::ErrorType::ConnectError,
                "no upstream resolved",
            ));
        }
        Ok((found, HashMap::new()))
    }
}

/// Logs health transitions through `tracing` (Pingora's own logs use `log`, which this
/// binary does not print). Called on transitions only, never per probe.
struct LogHealth;

#[async_trait]
impl HealthObserve for LogHealth {
    async fn observe(&self, target: &Backend, healthy: bool) {
        if healthy {
            tracing::info!(upstream = %target.addr, "upstream is healthy");
        } else {
            tracing::warn!(upstream = %target.addr, "upstream is unhealthy; not sending it requests");
        }
    }
}
