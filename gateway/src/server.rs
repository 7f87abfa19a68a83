//! Launching the gateway: assembling the Pingora server from its parts, running it on a
//! thread of its own, and the handle that stops it.
//!
//! `Server::run_forever` exits the process. [`Server::run`] with our own shutdown watch
//! ([`crate::drain::DrainThenStop`]) returns instead, so the gateway can run on a background
//! thread (tests, the one-process binary) and stop without taking the process with it. The
//! parts: [`crate::listeners`] (sockets bound before Pingora starts), [`crate::upstreams`]
//! (pools and health checks), [`crate::connection`] and [`crate::proxy`] (each client
//! connection and request), [`crate::background`] (JWKS, ended sessions),
//! [`crate::metrics`] (its own listener), [`crate::drain`] (stopping).

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::auth::Sessions;
use common::bin::BoxError;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use jsonwebtoken::Algorithm;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service as ListeningService;
use tokio::sync::watch;

use crate::auth::TokenCheck;
use crate::background::{JwksRefresh, SessionFeed};
use crate::client_stream::HeadLimits;
use crate::config::Config;
use crate::connection::{ClientConnections, ConnectionLimit};
use crate::drain::DrainThenStop;
use crate::error::StartupError;
use crate::listeners::{bind, PreBound};
use crate::metrics::{Metrics, MetricsApp};
use crate::proxy::{Gateway, Limits};
use crate::upstreams::Upstreams;

/// A running gateway. Dropping the handle stops the gateway (draining, as [`Self::shutdown`]).
pub struct GatewayHandle {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: ShutdownTrigger,
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

    /// The gateway's metrics (tests read them to see what was answered).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts a graceful stop and returns at once: the listeners close, requests in flight
    /// get up to the grace period to finish, then the runtimes stop.
    pub fn shutdown(&self) {
        self.stop.trigger();
    }

    /// Blocks until the gateway has stopped (after [`Self::shutdown`], or a signal in
    /// [`serve_until_signal`]).
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
        self.stop.trigger();
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
/// grace period) and returns. A second signal during the drain stops at once.
pub fn serve_until_signal(config: Config, kv: Kv) -> Result<(), StartupError> {
    let handle = launch(config, kv, true)?;
    handle.join();
    tracing::info!("gateway stopped");
    Ok(())
}

/// The standalone binary: configuration from the environment, sessions in Redis (required:
/// an in-process store would be another process's, and every token would look revoked), the
/// gateway until a signal. `rt` drives the Redis connection and must outlive the gateway.
pub fn serve_from_env(rt: &tokio::runtime::Runtime) -> Result<(), BoxError> {
    let config = Config::from_env()?;
    if common::config::var("REDIS_URL").is_none() {
        return Err(common::config::ConfigError::new(
            "REDIS_URL",
            "required by the standalone gateway to check sessions",
        )
        .into());
    }
    let kv = rt.block_on(common::kv::from_env())?;
    // Connect now, on this runtime, so the connection's driver task lives here. Redis being
    // down is not fatal: protected routes answer 503 until it is back.
    if let Err(e) = rt.block_on(kv.ping()) {
        tracing::warn!(error = %e, "Redis is not reachable yet; protected routes answer 503 until it is");
    }
    serve_until_signal(config, kv)?;
    Ok(())
}

/// The token check for `config`: ready with an HMAC key, or waiting for the JWKS (EdDSA).
fn token_check(config: &Config, kv: Kv) -> Result<TokenCheck, StartupError> {
    let sessions = Sessions::new(kv);
    let tokens = if config.tokens.algorithm == Algorithm::EdDSA {
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
    Ok(tokens.with_cache(config.session_cache_ttl, config.session_cache_max_entries))
}

fn launch(config: Config, kv: Kv, os_signals: bool) -> Result<GatewayHandle, StartupError> {
    let listener = bind(&config.listen, "GATEWAY_ADDR")?;
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(bind(addr, "GATEWAY_METRICS_ADDR")?),
        None => None,
    };
    let tokens = Arc::new(token_check(&config, kv)?);

    let conf = ServerConf {
        threads: config.threads,
        // We drain ourselves (see `drain`), so Pingora's fixed grace sleep is not used.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        // A failed attempt is retried at most once (see `proxy`); a third attempt is never
        // made, this only bounds Pingora's loop.
        max_retries: 2,
        ..ServerConf::default()
    };
    let mut server =
        Server::new_with_opt_and_conf(None::<pingora::server::configuration::Opt>, conf);

    let (upstreams, pools) = Upstreams::install(&config, &mut server)?;
    let upstreams = Arc::new(upstreams);
    let metrics = Arc::new(Metrics::new());
    let (stop_accepting_tx, stop_accepting) = watch::channel(false);

    let gateway = Gateway {
        tokens: Arc::clone(&tokens),
        upstreams: Arc::clone(&upstreams),
        limits: Limits {
            max_body_bytes: config.max_body_bytes,
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout,
            write_timeout: config.write_timeout,
            client_timeout: config.client_timeout,
        },
        metrics: Arc::clone(&metrics),
    };
    let connections = ClientConnections {
        proxy: Arc::new(pingora::proxy::http_proxy(&server.configuration, gateway)),
        head: HeadLimits {
            timeout: config.header_timeout,
            max_bytes: config.max_header_bytes,
            max_headers: config.max_headers,
        },
        per_ip: (config.max_connections_per_ip > 0)
            .then(|| ConnectionLimit::new(config.max_connections_per_ip)),
        metrics: Arc::clone(&metrics),
    };
    let mut proxy = ListeningService::new("gateway".to_owned(), connections);
    let addr = listener.addr;
    proxy.add_tcp(&addr.to_string());
    let proxy_handle = server.add_service(PreBound::new(
        Box::new(proxy),
        listener,
        stop_accepting.clone(),
    ));
    // Serve only once the first discovery filled every pool (otherwise: 503 for a moment).
    for pool in &pools {
        proxy_handle.add_dependency(pool);
    }

    let metrics_addr = metrics_listener.as_ref().map(|m| m.addr);
    if let Some(bound) = metrics_listener {
        let app = MetricsApp {
            metrics: Arc::clone(&metrics),
            upstreams: Arc::clone(&upstreams),
        };
        let mut service = ListeningService::new("metrics".to_owned(), app);
        service.threads = Some(1);
        service.add_tcp(&bound.addr.to_string());
        server.add_service(PreBound::new(Box::new(service), bound, stop_accepting));
    }

    if !config.session_cache_ttl.is_zero() {
        server.add_service(background_service(
            "session feed",
            SessionFeed {
                tokens: Arc::clone(&tokens),
            },
        ));
    }

    if config.tokens.algorithm == Algorithm::EdDSA {
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

    let (stop, stop_rx) = shutdown_channel();
    let watch = DrainThenStop {
        stop: stop_rx,
        os_signals,
        stop_accepting: stop_accepting_tx,
        metrics: Arc::clone(&metrics),
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
        app_service = ?config.upstreams,
        book_service = ?config.book_service,
        book_service_backup = ?config.book_service_backup,
        borrowings = ?config.borrowings,
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
