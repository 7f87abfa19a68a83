//! Serving an axum router: binding the listener, the layers every service shares, and
//! graceful shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use common::config::ConfigError;
use common::metrics::Metrics;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{HttpLimits, ServerConfig};
use crate::error::json_error;

/// A bound listening socket and the port it got (the real one when `:0` was asked for).
pub struct Listener {
    listener: TcpListener,
    port: u16,
}

impl Listener {
    /// Binds `config.listen`; a failure names the variable that chose the address.
    pub async fn bind(config: &ServerConfig) -> Result<Self, ConfigError> {
        let fail = |e: std::io::Error| {
            ConfigError::new(
                config.listen_var,
                format!("cannot listen on {}: {e}", config.listen),
            )
        };
        let listener = TcpListener::bind(&config.listen).await.map_err(fail)?;
        let port = listener.local_addr().map_err(fail)?.port();
        Ok(Self { listener, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Work done just before `/metrics` is encoded (e.g. reading a queue depth into a gauge).
pub type BeforeScrape = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What every service wraps its router in: `/healthz` and `/metrics` (not logged or counted),
/// JSON 404/405, request ids, a trace span per request (continuing the caller's W3C trace context, tagged with the
/// service name), request metrics, a body-size limit, a request timeout, and panics turned
/// into a JSON 500.
pub struct CommonLayers {
    service: &'static str,
    limits: HttpLimits,
    metrics: Metrics,
    before_scrape: Option<BeforeScrape>,
}

impl CommonLayers {
    pub fn new(service: &'static str, limits: HttpLimits) -> Self {
        Self {
            service,
            limits,
            metrics: Metrics::new(service),
            before_scrape: None,
        }
    }

    /// Serves these metrics (with the service's own registered in them) instead of a fresh
    /// registry.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs `hook` before every `/metrics` answer.
    pub fn before_scrape(mut self, hook: BeforeScrape) -> Self {
        self.before_scrape = Some(hook);
        self
    }

    pub fn apply(self, router: Router) -> Router {
        let Self {
            service,
            limits,
            metrics,
            before_scrape,
        } = self;
        let request_id = HeaderName::from_static(common::auth::headers::REQUEST_ID);
        let timeout = limits.request_timeout;
        let recorder = metrics.clone();
        let metrics_route = get(move || {
            let metrics = metrics.clone();
            let hook = before_scrape.clone();
            async move {
                if let Some(hook) = hook {
                    hook().await;
                }
                (
                    [(http::header::CONTENT_TYPE, common::metrics::CONTENT_TYPE)],
                    metrics.encode(),
                )
            }
        });
        router
            .fallback(crate::error::not_found)
            .method_not_allowed_fallback(crate::error::method_not_allowed)
            // Inside the limit: every body is read whole before the handler runs, so that an
            // early answer never leaves a pooled connection half-read.
            .layer(middleware::from_fn(crate::extract::read_body_first))
            .layer(DefaultBodyLimit::max(limits.max_body_bytes))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                request_timeout(req, next, timeout)
            }))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                observe(req, next, recorder.clone())
            }))
            .layer(CatchPanicLayer::custom(|_| {
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(move |req: &Request| {
                        let route = req
                            .extensions()
                            .get::<MatchedPath>()
                            .map(|m| m.as_str().to_owned())
                            .unwrap_or_else(|| "unmatched".into());
                        let request_id = req
                            .headers()
                            .get(common::auth::headers::REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned();
                        let span = tracing::info_span!(
                            "request",
                            otel.name = format!("{} {route}", req.method()),
                            otel.kind = "server",
                            service,
                            method = %req.method(),
                            route,
                            request_id,
                        );
                        common::telemetry::continue_trace(&span, req.headers());
                        span
                    })
                    // Each answer is logged by `observe`, which knows the route.
                    .on_response(()),
            )
            .layer(PropagateRequestIdLayer::new(request_id.clone()))
            .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
            // Probes (a liveness check every few seconds, Prometheus' scrapes) are added
            // outside the layers: they are neither logged nor counted as traffic.
            .route("/healthz", get(crate::health::healthz))
            .route("/metrics", metrics_route)
    }
}

/// Counts and logs each answer: one line per request at INFO, except readiness probes
/// (DEBUG), which an orchestrator sends every few seconds.
async fn observe(req: Request, next: Next, metrics: Metrics) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    if route == "/readyz" {
        tracing::debug!(status, latency_ms, "served");
    } else {
        tracing::info!(status, latency_ms, "served");
    }
    metrics.record(route, &method, status, elapsed);
    resp
}

async fn request_timeout(req: Request, next: Next, timeout: Duration) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => json_error(StatusCode::SERVICE_UNAVAILABLE, "Request timed out"),
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish for at
/// most `drain` before returning.
pub async fn serve(
    listener: Listener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let server = axum::serve(
        listener.listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        _ = stopping_rx => {}
    }
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                drain_secs = drain.as_secs_f64(),
                "requests still running after the drain period; stopping anyway"
            );
            Ok(())
        }
    }
}

/// A header value from a string that is known to be valid ASCII (`-` if it is not).
pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
