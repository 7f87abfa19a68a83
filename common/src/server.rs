//! Serving an axum router: binding, the layers every service shares, health endpoints and
//! graceful shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::ConfigError;
use crate::error::json_error;
use crate::metrics::{ExtraMetrics, HttpMetrics};

/// Tells long-running work that the process is stopping.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// Starts the shutdown that every [`Shutdown`] of its channel sees.
#[derive(Clone, Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A new trigger and the signal it controls.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Another signal of this channel.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }

    /// Triggers on SIGTERM or Ctrl-C.
    pub fn on_os_signal(&self) {
        let trigger = self.clone();
        tokio::spawn(async move {
            terminate_signal().await;
            tracing::info!("shutdown signal received; draining");
            trigger.trigger();
        });
    }
}

impl Shutdown {
    /// Resolves once shutdown has started.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn terminate_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The async runtime of a service binary, sized by `WORKER_THREADS` (default: the number of
/// CPUs). With 1, everything runs on the main thread (a current-thread runtime): no hand-offs
/// between threads at all, the cheapest per request when several services share a host's
/// cores (see `docs/operations.md#performance`). Blocking work (bcrypt) has its own threads
/// either way.
pub fn runtime() -> Result<tokio::runtime::Runtime, ConfigError> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = crate::config::parse_or("WORKER_THREADS", cpus)?;
    let mut builder = match threads {
        0 => return Err(ConfigError::new("WORKER_THREADS", "must be at least 1")),
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| ConfigError::new("WORKER_THREADS", format!("cannot start the runtime: {e}")))
}

/// Binds `addr`, naming `var` (the variable that chose it) when that fails.
pub async fn bind(addr: &str, var: &str) -> Result<TcpListener, ConfigError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ConfigError::new(var, format!("cannot listen on {addr}: {e}")))
}

/// Limits shared by every service.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Largest accepted request body; larger gets 413.
    pub max_body_bytes: usize,
    /// Longest a request may take inside the service; longer gets 503.
    pub request_timeout: Duration,
}

impl HttpLimits {
    /// Reads `MAX_BODY_BYTES` and `REQUEST_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            max_body_bytes: crate::config::parse_or("MAX_BODY_BYTES", 64 * 1024)?,
            request_timeout: crate::config::millis_or("REQUEST_TIMEOUT_MS", 15_000)?,
        })
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// What every service wraps its router in: `/healthz`, `/metrics`, JSON 404/405, request
/// ids, a trace span per request (continuing the caller's W3C trace context, tagged with the
/// service name), request metrics, a body-size limit, a request timeout, and panics turned
/// into a JSON 500.
pub struct CommonLayers {
    service: &'static str,
    limits: HttpLimits,
    extra_metrics: Option<ExtraMetrics>,
}

impl CommonLayers {
    pub fn new(service: &'static str, limits: HttpLimits) -> Self {
        Self {
            service,
            limits,
            extra_metrics: None,
        }
    }

    /// Adds service-specific metrics to `/metrics`.
    pub fn extra_metrics(mut self, extra: ExtraMetrics) -> Self {
        self.extra_metrics = Some(extra);
        self
    }

    pub fn apply(self, router: Router) -> Router {
        let Self {
            service,
            limits,
            extra_metrics,
        } = self;
        let request_id = HeaderName::from_static(crate::auth::headers::REQUEST_ID);
        let timeout = limits.request_timeout;
        let metrics = Arc::new(HttpMetrics::new(service));
        let recorder = metrics.clone();
        let metrics_route = get(move || {
            let metrics = metrics.clone();
            let extra = extra_metrics.clone();
            async move {
                let mut text = metrics.render();
                if let Some(extra) = extra {
                    text.push_str(&extra().await);
                }
                (
                    [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    text,
                )
            }
        });
        router
            .route("/healthz", get(healthz))
            .route("/metrics", metrics_route)
            .fallback(crate::error::not_found)
            .method_not_allowed_fallback(crate::error::method_not_allowed)
            .layer(DefaultBodyLimit::max(limits.max_body_bytes))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                request_timeout(req, next, timeout)
            }))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                record_metrics(req, next, recorder.clone())
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
                            .get(crate::auth::headers::REQUEST_ID)
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
                        crate::telemetry::continue_trace(&span, req.headers());
                        span
                    })
                    .on_response(
                        |resp: &Response, latency: Duration, _span: &tracing::Span| {
                            tracing::info!(
                                status = resp.status().as_u16(),
                                latency_ms = latency.as_secs_f64() * 1e3,
                                "served"
                            );
                        },
                    ),
            )
            .layer(PropagateRequestIdLayer::new(request_id.clone()))
            .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
    }
}

async fn record_metrics(req: Request, next: Next, metrics: Arc<HttpMetrics>) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let route = route.as_deref().unwrap_or("unmatched");
    metrics.record(
        route,
        method.as_str(),
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

async fn request_timeout(req: Request, next: Next, timeout: Duration) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => json_error(StatusCode::SERVICE_UNAVAILABLE, "Request timed out"),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `/readyz`: 200 when every dependency answered, 503 naming those that did not.
pub fn readiness(checks: &[(&str, Result<(), String>)]) -> Response {
    let mut body = serde_json::Map::new();
    let mut ready = true;
    for (name, result) in checks {
        match result {
            Ok(()) => {
                body.insert((*name).to_owned(), "ok".into());
            }
            Err(e) => {
                ready = false;
                tracing::warn!(dependency = name, error = %e, "not ready");
                body.insert((*name).to_owned(), "unavailable".into());
            }
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let detail = if ready { "ready" } else { "not ready" };
    body.insert("status".into(), detail.into());
    (status, Json(serde_json::Value::Object(body))).into_response()
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish for at
/// most `drain` before returning.
pub async fn serve(
    listener: TcpListener,
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
        listener,
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
