//! Relaying a request to user-service or scraper-service, faithfully.
//!
//! The method, path and query, body, content type, credentials, client address, request id
//! and trace context go through unchanged; the service's status, body and the headers a client
//! relies on (`Content-Type`, `WWW-Authenticate`, `Retry-After`, `Cache-Control`, `Pragma`,
//! `Location`) come back unchanged. Nothing else crosses in either direction (in particular no
//! identity header: each service verifies the bearer token itself). Only a failure to get an
//! answer becomes app-service's own error: 503 (unreachable) or 504 (too slow).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderName, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use common::config::ConfigError;
use service_kit::extract::{BodyRejection, RawBody};

use crate::error::ApiError;

/// Request headers passed to the service.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::AUTHORIZATION,
    header::ACCEPT,
    HeaderName::from_static(common::auth::headers::CLIENT_IP),
    HeaderName::from_static(common::auth::headers::REQUEST_ID),
];

/// W3C trace-context headers, so that one request stays one trace.
const TRACE_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Response headers passed back to the client.
const RELAYED_RESPONSE_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::WWW_AUTHENTICATE,
    header::RETRY_AFTER,
    header::CACHE_CONTROL,
    header::PRAGMA,
    header::LOCATION,
];

/// How long a readiness probe waits for a service's `/healthz`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A request as it is relayed: extracted whole by a handler, with the body limit applied
/// (a larger body is a JSON 413 and never reaches the service).
#[derive(Debug)]
pub struct Incoming {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Incoming {
    type Rejection = BodyRejection;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = req.method().clone();
        let uri = req.uri().clone();
        // Reading the body needs only the body and the limit (an extension), not the headers.
        let headers = std::mem::take(req.headers_mut());
        let RawBody(body) = RawBody::from_request(req, state).await?;
        Ok(Self {
            method,
            uri,
            headers,
            body,
        })
    }
}

/// One service, reached through the connection pool shared by all of them.
#[derive(Clone, Debug)]
pub struct Upstream {
    name: &'static str,
    base_url: String,
    http: reqwest::Client,
}

impl Upstream {
    /// The service `name` at `base_url`, which came from the variable `var`: it must be an
    /// `http` or `https` URL, or start-up stops naming `var`.
    pub fn new(
        name: &'static str,
        var: &'static str,
        base_url: &str,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| ConfigError::new(var, format!("{base_url:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(ConfigError::new(
                var,
                format!("{base_url:?} is not an http(s) URL with a host"),
            ));
        }
        Ok(Self {
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The service's name, as errors and readiness name it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sends `request` to the same path and query on this service and returns its answer.
    #[tracing::instrument(skip_all, fields(
        upstream = self.name,
        method = %request.method,
        path = request.uri.path(),
        otel.kind = "client",
    ))]
    pub async fn relay(&self, request: Incoming) -> Result<Response, ApiError> {
        let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut headers = HeaderMap::new();
        for name in &FORWARDED_REQUEST_HEADERS {
            for value in request.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        // Continue the trace from this call's span; without a tracer installed nothing is
        // injected, and the caller's context goes on unchanged.
        let mut injected = HeaderMap::new();
        common::telemetry::inject_trace(&tracing::Span::current(), &mut injected);
        for name in &TRACE_HEADERS {
            if let Some(value) = injected.get(name).or_else(|| request.headers.get(name)) {
                headers.insert(name.clone(), value.clone());
            }
        }

        let answer = self
            .http
            .request(request.method, format!("{}{path_and_query}", self.base_url))
            .headers(headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| self.failure(&e))?;
        let status = answer.status();
        let mut relayed = HeaderMap::new();
        for name in &RELAYED_RESPONSE_HEADERS {
            for value in answer.headers().get_all(name) {
                relayed.append(name.clone(), value.clone());
            }
        }
        let body = answer.bytes().await.map_err(|e| self.failure(&e))?;

        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        *response.headers_mut() = relayed;
        Ok(response)
    }

    /// Whether the service answers its `/healthz` with a success; the cause when not.
    pub async fn healthy(&self) -> Result<(), String> {
        let answer = self
            .http
            .get(format!("{}/healthz", self.base_url))
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", answer.status()))
        }
    }

    /// What a failed call means for the client.
    fn failure(&self, e: &reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::DependencyTimeout(self.name)
        } else if e.is_builder() {
            // The request could not even be built: a bug here, not the service's fault.
            ApiError::Internal(format!("request to {}: {e}", self.name))
        } else {
            tracing::debug!(upstream = self.name, error = %e, "upstream call failed");
            ApiError::DependencyDown(self.name)
        }
    }
}

/// The connection pool shared by every upstream: `connect_timeout` to connect, `timeout` for
/// the whole call (then 504); redirects are relayed to the client, never followed.
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
