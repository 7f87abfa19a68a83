//! Calls to user-service and scraper-service, relaying their answers faithfully.
//!
//! The request body, content type, credentials, client address, request id and trace context
//! go through unchanged; the upstream's status, body and the headers a client relies on
//! (`WWW-Authenticate`, `Retry-After`, `Cache-Control`, `Location`, ...) come back unchanged.
//! Only a failure to reach the upstream becomes app-service's own error (503 or 504).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, Response, Uri};
use bytes::Bytes;
use http::header;

use crate::error::AppError;

/// Request headers passed to the upstream.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::AUTHORIZATION,
    header::ACCEPT,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-request-id"),
];

/// Trace-context headers, passed along so one request stays one trace.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Response headers passed back to the client.
const RELAYED_RESPONSE_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::WWW_AUTHENTICATE,
    header::RETRY_AFTER,
    header::CACHE_CONTROL,
    header::PRAGMA,
    header::LOCATION,
];

/// One upstream service, reached through a shared connection pool.
#[derive(Clone, Debug)]
pub struct Upstream {
    name: &'static str,
    base_url: String,
    http: reqwest::Client,
}

impl Upstream {
    pub fn new(name: &'static str, base_url: &str, http: reqwest::Client) -> Self {
        Self {
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// Sends `method path_and_query` with `body` and the forwarded headers of `incoming`,
    /// and returns the upstream's answer as this service's response.
    pub async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        incoming: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, AppError> {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base_url, path_and_query));
        for name in FORWARDED_REQUEST_HEADERS.iter() {
            if let Some(value) = incoming.get(name) {
                request = request.header(name, value);
            }
        }
        // Continue the trace from this service's span; without a tracer installed, pass the
        // caller's context on unchanged.
        let mut trace = HeaderMap::new();
        common::telemetry::inject_trace(&tracing::Span::current(), &mut trace);
        for name in TRACE_HEADERS {
            if let Some(value) = trace.get(name).or_else(|| incoming.get(name)) {
                request = request.header(name, value);
            }
        }
        let upstream = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.failure(&e))?;

        let status = upstream.status();
        let mut headers = HeaderMap::new();
        for name in RELAYED_RESPONSE_HEADERS.iter() {
            if let Some(value) = upstream.headers().get(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        let bytes = upstream.bytes().await.map_err(|e| self.failure(&e))?;
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }

    /// Relays a request to the same path and query on the upstream.
    pub async fn relay(
        &self,
        method: Method,
        uri: &Uri,
        incoming: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, AppError> {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        self.forward(method, path, incoming, body).await
    }

    /// Whether the upstream answers its health check.
    pub async fn healthy(&self) -> Result<(), String> {
        let resp = self
            .http
            .get(format!("{}/healthz", self.base_url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", resp.status()))
        }
    }

    fn failure(&self, e: &reqwest::Error) -> AppError {
        if e.is_timeout() {
            AppError::DependencyTimeout(self.name)
        } else {
            tracing::debug!(upstream = self.name, error = %e, "upstream call failed");
            AppError::DependencyDown(self.name)
        }
    }
}

/// The connection pool shared by every upstream.
pub fn http_client(
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}
