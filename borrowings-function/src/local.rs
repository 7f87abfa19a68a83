//! The local HTTP adapter: the function served over plain HTTP, for compose, Kubernetes and
//! the one-process platform — wherever there is no AWS Lambda to invoke it.
//!
//! Each request to `/user/borrowings/` (with or without the trailing slash) becomes the same
//! `lambda_http::Request` the Lambda runtime builds from an API Gateway event (method, path,
//! headers, and the query string as its `QueryStringParameters` extension) and goes to the
//! same [`handler::handle`]; its response goes back as it is. The function's only route is a
//! GET, so no request body is passed on. Besides that route: `/healthz` (the process
//! serves), `/readyz` (the session store and book-service answer) and `/metrics` (the
//! platform's HTTP metrics, for the function's route) — the probes every service has.

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::metrics::Metrics;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::RequestExt;
use tokio::net::TcpListener;

use crate::handler;
use crate::state::AppState;

/// The function's route, as API Gateway routes it (and as the gateway forwards it).
pub const ROUTE: &str = "/user/borrowings/";

/// What the adapter's handlers share.
#[derive(Clone)]
struct Adapter {
    state: AppState,
    metrics: Metrics,
}

/// The adapter's routes around `state`, counting invocations in `metrics`.
pub fn router(state: AppState, metrics: Metrics) -> Router {
    Router::new()
        .route(ROUTE, get(invoke))
        .route(ROUTE.trim_end_matches('/'), get(invoke))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Adapter { state, metrics })
}

/// One invocation of the function.
async fn invoke(State(adapter): State<Adapter>, req: Request) -> Response {
    let started = Instant::now();
    let resp = handler::handle(&adapter.state, to_lambda_request(req)).await;
    adapter.metrics.record(
        ROUTE,
        &Method::GET,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp.map(axum::body::Body::new)
}

/// `req` as the Lambda runtime would hand it to the handler.
fn to_lambda_request(req: Request) -> lambda_http::Request {
    let (parts, _body) = req.into_parts();
    let query: QueryMap = parts
        .uri
        .query()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let mut out = lambda_http::Request::new(lambda_http::Body::Empty);
    *out.method_mut() = parts.method;
    *out.uri_mut() = parts.uri;
    *out.headers_mut() = parts.headers;
    out.with_raw_http_path(path)
        .with_query_string_parameters(query)
}

/// `GET /healthz`: 200 while the process serves.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the session store and book-service answer, else 503 naming
/// what did not (the causes go to the log).
async fn readyz(State(adapter): State<Adapter>) -> Response {
    let (sessions, books) = tokio::join!(
        adapter.state.auth.sessions.ping(),
        adapter.state.books.ping()
    );
    let checks = [
        ("session_store", sessions.map_err(|e| e.to_string())),
        ("book_service", books.map_err(|e| e.to_string())),
    ];
    let mut body = serde_json::Map::new();
    let mut ready = true;
    for (name, result) in checks {
        let value = match result {
            Ok(()) => "ok",
            Err(e) => {
                ready = false;
                tracing::warn!(dependency = name, error = %e, "not ready");
                "unavailable"
            }
        };
        body.insert(name.to_owned(), value.into());
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    body.insert(
        "status".into(),
        if ready { "ready" } else { "not ready" }.into(),
    );
    (status, Json(serde_json::Value::Object(body))).into_response()
}

/// `GET /metrics`: the adapter's counters in the OpenMetrics text format.
async fn metrics_text(State(adapter): State<Adapter>) -> Response {
    (
        [(header::CONTENT_TYPE, common::metrics::CONTENT_TYPE)],
        adapter.metrics.encode(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"detail": "Not Found"})),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({"detail": "Method Not Allowed"})),
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish for
/// at most `drain`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        })
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
