//! Assembling and running the Pingora server: listeners, the upstream pool and its health
//! checks, the JWKS refresh, the metrics listener, and a shutdown that drains.
//!
//! Three Pingora behaviours shape this module:
//! - Pingora binds its listeners itself, inside its runtimes. To hand callers a listening
//!   address at once (and an ephemeral port to tests), the sockets are bound here with `std`
//!   and passed to Pingora as "inherited" file descriptors — the mechanism Pingora uses for
//!   zero-downtime upgrades — through a small service wrapper ([`PreBound`]). No port race.
//! - `Server::run_forever` exits the process. [`Server::run`] with our own
//!   [`ShutdownSignalWatch`] returns instead, so the gateway can run on a background thread
//!   and stop without taking the process with it.
//! - Pingora's graceful shutdown sleeps a fixed grace period. Instead, our watch first stops
//!   the listeners (through a separate watch given only to them: no new connections, idle
//!   keep-alive connections closed), waits until the requests in flight reach zero or the
//!   grace period ends, and only then lets Pingora stop its runtimes (grace period 0).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::auth::{Sessions, TokenSettings};
use common::kv::Kv;
use jsonwebtoken::Algorithm;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::health_check::{HealthObserve, HttpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::server::configuration::ServerConf;
use pingora::server::{
    Fds, ListenFds, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch,
};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service as ListeningService;
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};
use tokio::sync::watch;

use crate::auth::TokenCheck;
use crate::config::{upstream_authority, Config};
use crate::metrics::{Metrics, MetricsApp};
use crate::proxy::{Gateway, Limits};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{var}: cannot listen on {addr}: {source}")]
    Bind {
        var: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] common::config::ConfigError),
    #[error("the gateway did not start serving: {0}")]
    NotServing(String),
}

/// A running gateway. Dropping the handle stops the gateway (draining, as [`Self::shutdown`]).
pub struct GatewayHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl GatewayHandle {
    /// The address the proxy listens on (with the real port when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the Prometheus listener, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The gateway's counters (tests read them to see what was answered).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts a graceful stop and returns at once: the listeners close, requests in flight
    /// get up to the grace period to finish, then the runtimes stop.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Blocks until the gateway has stopped (after [`Self::shutdown`], or a signal in
    /// [`crate::run_forever`]).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the gateway thread panicked");
            }
        }
    }

    /// [`Self::shutdown`], then waits (without blocking the async runtime) until it stopped.
    pub async fn stop(self) {
        self.shutdown();
        let _ = tokio::task::spawn_blocking(move || self.join()).await;
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the gateway on background threads and returns once it answers on its address.
///
/// `kv` is the session store: Redis in production; in the one-process mode the same
/// in-memory store user-service writes sessions to. Create it on a runtime that outlives the
/// gateway (the Redis connection's driver task lives there).
pub fn start(config: Config, kv: Kv) -> Result<GatewayHandle, StartupError> {
    launch(config, kv, false)
}

/// Runs the gateway until SIGTERM or SIGINT, then drains (requests in flight get up to the
/// grace period) and returns: the standalone binary's main loop. A second signal during the
/// drain stops at once.
pub fn serve_until_signal(config: Config, kv: Kv) -> Result<(), StartupError> {
    let handle = launch(config, kv, true)?;
    handle.join();
    tracing::info!("gateway stopped");
    Ok(())
}

/// [`serve_until_signal`], then exits the process (status 1 with one line on stderr when
/// the gateway could not start).
pub fn run_forever(config: Config, kv: Kv) -> ! {
    match serve_until_signal(config, kv) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::exit(1)
        }
    }
}

/// A socket bound here, handed to Pingora by file descriptor once everything else is ready
/// (until then an error simply drops and closes it).
struct Bound {
    addr: SocketAddr,
    listener: TcpListener,
}

impl Bound {
    /// Pingora's table of inherited listeners, holding this one under its address.
    fn into_fds(self) -> ListenFds {
        let mut fds = Fds::new();
        fds.add(self.addr.to_string(), self.listener.into_raw_fd());
        Arc::new(parking_lot::Mutex::new(fds))
    }
}

fn bind(addr: &str, var: &'static str) -> Result<Bound, StartupError> {
    let bind_error = |source| StartupError::Bind {
        var,
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    // Pingora's accept loop expects a non-blocking socket, as it would have made itself.
    listener.set_nonblocking(true).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(Bound { addr, listener })
}

fn launch(config: Config, kv: Kv, os_signals: bool) -> Result<GatewayHandle, StartupError> {
    let upstreams = upstream_pool(&config)?;
    let listener = bind(&config.listen, "GATEWAY_ADDR")?;
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(bind(addr, "GATEWAY_METRICS_ADDR")?),
        None => None,
    };

    let sessions = Sessions::new(kv);
    let eddsa = config.tokens.algorithm == Algorithm::EdDSA;
    let tokens = if eddsa {
        TokenCheck::pending(sessions)
    } else {
        let verifier = config.tokens.hmac_verifier().ok_or_else(|| {
            common::config::ConfigError::new(
                "SECRET_KEY",
                "no usable HMAC key for the configured ALGORITHM",
            )
        })?;
        TokenCheck::ready(Arc::new(verifier), sessions)
    };
    let tokens =
        Arc::new(tokens.with_cache(config.session_cache_ttl, config.session_cache_max_entries));

    let conf = ServerConf {
        threads: config.threads,
        // We drain ourselves (see the module doc), so Pingora's fixed grace sleep is not used.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        // A refused connection is retried once on another instance; a stale pooled
        // connection (idempotent requests) may cost one more attempt.
        max_retries: 3,
        ..ServerConf::default()
    };
    let mut server =
        Server::new_with_opt_and_conf(None::<pingora::server::configuration::Opt>, conf);

    let upstreams_service = background_service("upstreams", upstreams);
    let pool = upstreams_service.task();
    let pool_handle = server.add_service(upstreams_service);

    let in_flight = Arc::new(AtomicUsize::new(0));
    let metrics = Arc::new(Metrics::new(Arc::clone(&in_flight)));
    let (stop_accepting_tx, stop_accepting) = watch::channel(false);

    let gateway = Gateway {
        tokens: Arc::clone(&tokens),
        upstreams: Arc::clone(&pool),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout,
            write_timeout: config.write_timeout,
            client_timeout: config.client_timeout,
        },
        metrics: Arc::clone(&metrics),
        in_flight: Arc::clone(&in_flight),
    };
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "gateway");
    let addr = listener.addr;
    proxy.add_tcp(&addr.to_string());
    let proxy_handle = server.add_service(PreBound {
        inner: Box::new(proxy),
        fds: listener.into_fds(),
        stop_accepting: stop_accepting.clone(),
    });
    // Serve only once the first discovery filled the pool (otherwise: 503 for a moment).
    proxy_handle.add_dependency(&pool_handle);

    let metrics_addr = metrics_listener.as_ref().map(|m| m.addr);
    if let Some(bound) = metrics_listener {
        let app = MetricsApp {
            metrics: Arc::clone(&metrics),
            lb: Arc::clone(&pool),
        };
        let mut service = ListeningService::new("metrics".to_owned(), app);
        service.threads = Some(1);
        service.add_tcp(&bound.addr.to_string());
        server.add_service(PreBound {
            inner: Box::new(service),
            fds: bound.into_fds(),
            stop_accepting,
        });
    }

    if !config.session_cache_ttl.is_zero() {
        server.add_service(background_service(
            "session feed",
            SessionFeed {
                tokens: Arc::clone(&tokens),
            },
        ));
    }

    if eddsa {
        server.add_service(background_service(
            "jwks",
            JwksRefresh {
                url: config.jwks_url.clone(),
                every: config.jwks_refresh,
                settings: config.tokens.clone(),
                tokens: Arc::clone(&tokens),
            },
        ));
    }

    let (stop, stop_rx) = watch::channel(false);
    let watch = DrainThenStop {
        stop: stop_rx,
        os_signals,
        stop_accepting: stop_accepting_tx,
        in_flight,
        grace: config.grace,
    };
    let thread = std::thread::Builder::new()
        .name("gateway".to_owned())
        .spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(watch),
            })
        })
        .map_err(|e| StartupError::NotServing(format!("cannot start a thread: {e}")))?;

    let handle = GatewayHandle {
        addr,
        metrics_addr,
        stop,
        thread: Some(thread),
        metrics,
    };
    wait_until_serving(&handle)?;
    tracing::info!(
        addr = %handle.addr,
        upstreams = ?config.upstreams,
        metrics = ?handle.metrics_addr,
        algorithm = ?config.tokens.algorithm,
        "gateway listening"
    );
    Ok(handle)
}

/// Polls the gateway's own `/healthz` until it answers 200 (Pingora starts its services
/// asynchronously; the socket accepts connections before that, so a connect is not enough).
fn wait_until_serving(handle: &GatewayHandle) -> Result<(), StartupError> {
    let target = match handle.addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last_error = String::from("no answer");
    while Instant::now() < deadline {
        if handle.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(StartupError::NotServing("the server thread ended".into()));
        }
        match probe_healthz(target) {
            Ok(true) => return Ok(()),
            Ok(false) => last_error = "/healthz did not answer 200".into(),
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(StartupError::NotServing(last_error))
}

fn probe_healthz(target: SocketAddr) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(&head[9..12] == b"200")
}

/// The app-service pool: round robin over every address the upstream names resolve to,
/// re-resolved every few seconds, each probed on `/healthz`.
fn upstream_pool(config: &Config) -> Result<LoadBalancer<RoundRobin>, StartupError> {
    let targets = config
        .upstreams
        .iter()
        .map(|u| upstream_authority(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| common::config::ConfigError::new("APP_SERVICE_URLS", e))?;
    let discovery = Resolver {
        targets,
        unresolved: Mutex::new(HashSet::new()),
    };
    let mut backends = Backends::new(Box::new(discovery));

    let mut check = HttpHealthCheck::new("gateway", false);
    let mut req = pingora::http::RequestHeader::build("GET", b"/healthz", None)
        .map_err(|e| StartupError::NotServing(format!("health check request: {e}")))?;
    req.insert_header("Host", "gateway")
        .map_err(|e| StartupError::NotServing(format!("health check request: {e}")))?;
    check.req = req;
    check.peer_template.options.connection_timeout = Some(config.connect_timeout);
    check.peer_template.options.read_timeout = Some(Duration::from_secs(2));
    check.health_changed_callback = Some(Box::new(LogHealth));
    backends.set_health_check(Box::new(check));

    let mut pool = LoadBalancer::from_backends(backends);
    pool.health_check_frequency = Some(config.health_check_interval);
    pool.update_frequency = Some(RESOLVE_EVERY);
    pool.parallel_health_check = true;
    Ok(pool)
}

/// How often upstream host names are resolved again (new replicas, moved containers).
const RESOLVE_EVERY: Duration = Duration::from_secs(5);

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

/// Logs health transitions through `tracing` (Pingora's own logs use `log`).
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

/// Runs a Pingora listening service on a socket bound beforehand, and stops its accept loop
/// on our own watch (so that draining starts before Pingora's shutdown).
struct PreBound {
    inner: Box<dyn ServiceWithDependents>,
    fds: ListenFds,
    stop_accepting: ShutdownWatch,
}

#[async_trait]
impl ServiceWithDependents for PreBound {
    async fn start_service(
        &mut self,
        _inherited: Option<ListenFds>,
        _shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready: ServiceReadyNotifier,
    ) {
        self.inner
            .start_service(
                Some(Arc::clone(&self.fds)),
                self.stop_accepting.clone(),
                listeners_per_fd,
                ready,
            )
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }
}

/// Waits for a stop request (the handle, or SIGTERM/SIGINT in the standalone binary), then
/// drains: stop accepting, wait for in-flight requests (at most `grace`), then stop.
struct DrainThenStop {
    stop: watch::Receiver<bool>,
    os_signals: bool,
    stop_accepting: watch::Sender<bool>,
    in_flight: Arc<AtomicUsize>,
    grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for DrainThenStop {
    async fn recv(&self) -> ShutdownSignal {
        let mut stop = self.stop.clone();
        let mut signals = if self.os_signals {
            OsSignals::new()
        } else {
            None
        };
        tokio::select! {
            _ = stop.wait_for(|stopping| *stopping) => {}
            _ = next_signal(&mut signals) => {}
        }
        let started = Instant::now();
        tracing::info!(
            in_flight = self.in_flight.load(Ordering::Relaxed),
            "gateway draining"
        );
        let _ = self.stop_accepting.send(true);
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            if self.in_flight.load(Ordering::Relaxed) == 0 {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        in_flight = self.in_flight.load(Ordering::Relaxed),
                        "requests still running after the grace period; stopping anyway"
                    );
                    break;
                }
                _ = next_signal(&mut signals) => {
                    tracing::warn!("second signal; stopping without waiting");
                    return ShutdownSignal::FastShutdown;
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        tracing::info!(
            drain_ms = started.elapsed().as_millis() as u64,
            "gateway drained"
        );
        ShutdownSignal::GracefulTerminate
    }
}

struct OsSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl OsSignals {
    fn new() -> Option<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some(Self { term, int }),
            _ => {
                tracing::error!(
                    "cannot listen for SIGTERM/SIGINT; the gateway stops only when killed"
                );
                None
            }
        }
    }
}

/// The next SIGTERM or SIGINT; never resolves without signal handling.
async fn next_signal(signals: &mut Option<OsSignals>) {
    match signals {
        Some(s) => {
            tokio::select! {
                _ = s.term.recv() => {}
                _ = s.int.recv() => {}
            }
        }
        None => std::future::pending().await,
    }
}

/// Fetches the issuer's JWKS (EdDSA) until it answers, then refreshes it periodically.
/// Until the first answer protected routes answer 503; a failed refresh keeps the old keys.
struct JwksRefresh {
    url: String,
    every: Duration,
    settings: TokenSettings,
    tokens: Arc<TokenCheck>,
}

#[async_trait]
impl BackgroundService for JwksRefresh {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let http = match reqwest::Client::builder().build() {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot build an HTTP client; JWKS never loaded");
                return;
            }
        };
        let mut backoff = Duration::from_millis(200);
        let mut warned = false;
        loop {
            let wait = match common::jwks::fetch(&http, &self.url).await {
                Ok(set) => {
                    let installed = match self.tokens.verifier() {
                        Some(verifier) => verifier.replace_jwks(&set),
                        None => self.settings.jwks_verifier(set).map(|v| {
                            self.tokens.install(Arc::new(v));
                            tracing::info!(url = %self.url, "JWKS loaded; protected routes open");
                        }),
                    };
                    if let Err(e) = installed {
                        tracing::warn!(url = %self.url, error = %e, "ignoring an unusable JWKS");
                    }
                    backoff = Duration::from_millis(200);
                    warned = false;
                    self.every
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "JWKS not available; retrying");
                        warned = true;
                    }
                    if self.tokens.verifier().is_some() {
                        self.every.min(Duration::from_secs(30))
                    } else {
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        backoff
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Keeps the session cache honest: subscribes to the ids of ended sessions and evicts each.
/// The cache serves only while subscribed; when the subscription is lost every request asks
/// the store until it is back.
struct SessionFeed {
    tokens: Arc<TokenCheck>,
}

/// How long to wait before subscribing again.
const FEED_RETRY: Duration = Duration::from_secs(1);

#[async_trait]
impl BackgroundService for SessionFeed {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let cache = self.tokens.cache();
        let mut quiet = false;
        loop {
            match self.tokens.sessions().ended().await {
                // An in-process store announces nothing, and needs no cache in front of it.
                Ok(None) => return,
                Ok(Some(mut feed)) => {
                    cache.start_listening();
                    tracing::info!("subscribed to ended sessions; session cache on");
                    loop {
                        tokio::select! {
                            ended = feed.next() => match ended {
                                Some(sid) => self.tokens.session_ended(&sid),
                                None => break,
                            },
                            _ = shutdown.changed() => {
                                cache.stop_listening();
                                return;
                            }
                        }
                    }
                    cache.stop_listening();
                    tracing::warn!(
                        "lost the ended-sessions feed; session cache off until it is back"
                    );
                    quiet = true;
                }
                Err(e) => {
                    if !quiet {
                        tracing::warn!(error = %e, "cannot subscribe to ended sessions; session cache off");
                        quiet = true;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(FEED_RETRY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
