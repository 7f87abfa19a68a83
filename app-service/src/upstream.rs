//! Relaying a request to user-service, scraper-service or book-service, faithfully.
//!
//! The method, path and query, body, content type, credentials, client address, request id
//! and trace context go through unchanged; the service's status, body and the headers a client
//! relies on (`Content-Type`, `WWW-Authenticate`, `Retry-After`, `Cache-Control`, `Pragma`,
//! `Location`, `Link`) come back unchanged. Nothing else crosses in either direction (in
//! particular no identity header: each service verifies the bearer token itself). Only a
//! failure to get an answer becomes app-service's own error: 503 (unreachable) or 504 (too
//! slow).
//!
//! [`Upstream::relay`] reads the whole answer within `UPSTREAM_TIMEOUT_MS`.
//! [`Upstream::relay_stream`] is for a server-sent event stream, which lasts as long as the
//! client listens: each piece is passed on as it arrives, unbuffered, and the only limit is the
//! silence allowed between two pieces (the [`stream_client`]'s read timeout).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use common::config::ConfigError;
use service_kit::extract::{BodyRejection, RawBody};

use crate::error::ApiError;

/// Request headers passed to the service (`Last-Event-ID` lets an event stream resume).
const FORWARDED_REQUEST_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::AUTHORIZATION,
    header::ACCEPT,
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static(common::auth::headers::CLIENT_IP),
    HeaderName::from_static(common::auth::headers::REQUEST_ID),
];

/// W3C trace-context headers, so that one request stays one trace.
const TRACE_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
];

/// Response headers passed back to the client (`Link` carries the next page of a list).
const RELAYED_RESPONSE_HEADERS: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::WWW_AUTHENTICATE,
    header::RETRY_AFTER,
    header::CACHE_CONTROL,
    header::PRAGMA,
    header::LOCATION,
    header::LINK,
];

/// Headers that cross besides the usual ones, for the relays that need them: the UI's files
/// (entity tags both ways, and the security headers of the service that owns them) and the
/// web session (its cookies).
#[derive(Clone, Copy, Debug)]
pub struct Extra {
    /// Request headers passed to the service as well.
    pub request: &'static [HeaderName],
    /// Response headers passed back as well.
    pub response: &'static [HeaderName],
}

impl Extra {
    /// Nothing more than the usual headers.
    pub const NONE: Extra = Extra {
        request: &[],
        response: &[],
    };
}

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

    /// The same service reached through `http` instead (e.g. the [`stream_client`]).
    pub fn with_client(&self, http: reqwest::Client) -> Self {
        Self {
            http,
            ..self.clone()
        }
    }

    /// The service's name, as errors and readiness name it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sends `request` to the same path and query on this service and returns its answer,
    /// read whole.
    pub async fn relay(&self, request: Incoming) -> Result<Response, ApiError> {
        self.relay_with(request, Extra::NONE).await
    }

    /// [`Upstream::relay`], passing the `extra` headers as well.
    #[tracing::instrument(skip_all, fields(
        upstream = self.name,
        method = %request.method,
        path = request.uri.path(),
        otel.kind = "client",
    ))]
    pub async fn relay_with(&self, request: Incoming, extra: Extra) -> Result<Response, ApiError> {
        let answer = self.send(request, extra.request).await?;
        let head = head_of(&answer, extra.response);
        let body = answer.bytes().await.map_err(|e| self.failure(&e))?;
        Ok(head.with_body(Body::from(body)))
    }

    /// Sends `request` like [`Upstream::relay`], but passes the answer's body on piece by
    /// piece as it arrives, for as long as the service keeps sending (a server-sent event
    /// stream). Meant for an `Upstream` built on the [`stream_client`]: the whole-call timeout
    /// of the shared client would cut every stream after `UPSTREAM_TIMEOUT_MS`.
    #[tracing::instrument(skip_all, fields(
        upstream = self.name,
        method = %request.method,
        path = request.uri.path(),
        otel.kind = "client",
    ))]
    pub async fn relay_stream(&self, request: Incoming) -> Result<Response, ApiError> {
        let answer = self.send(request, &[]).await?;
        let head = head_of(&answer, &[]);
        let name = self.name;
        // `chunk()` yields each piece as the connection delivers it; an error (the service
        // went away, or was silent past the read timeout) ends the stream, and the client's
        // connection is cut mid-body so that it reconnects.
        let pieces = futures_util::stream::unfold(Some(answer), move |answer| async move {
            let mut answer = answer?;
            match answer.chunk().await {
                Ok(Some(piece)) => Some((Ok(piece), Some(answer))),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(upstream = name, error = %e, "event stream ended");
                    Some((Err(e), None))
                }
            }
        });
        Ok(head.with_body(Body::from_stream(pieces)))
    }

    /// Sends `request` (with the `extra` request headers too) and returns the answer once its
    /// head has arrived.
    async fn send(
        &self,
        request: Incoming,
        extra: &[HeaderName],
    ) -> Result<reqwest::Response, ApiError> {
        let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut headers = HeaderMap::new();
        for name in FORWARDED_REQUEST_HEADERS.iter().chain(extra) {
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

        self.http
            .request(request.method, format!("{}{path_and_query}", self.base_url))
            .headers(headers)
            .body(request.body)
            .send()
            .await
            .map_err(|e| self.failure(&e))
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

/// The status and relayed headers of an answer, waiting for a body.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
}

impl Head {
    fn with_body(self, body: Body) -> Response {
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

fn head_of(answer: &reqwest::Response, extra: &[HeaderName]) -> Head {
    let mut headers = HeaderMap::new();
    for name in RELAYED_RESPONSE_HEADERS.iter().chain(extra) {
        for value in answer.headers().get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    Head {
        status: answer.status(),
        headers,
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

/// The client of [`Upstream::relay_stream`]: no limit on the whole call, but at most
/// `idle` between two reads (a stream whose service went silent is closed); otherwise like
/// [`http_client`].
pub fn stream_client(
    connect_timeout: Duration,
    idle: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .read_timeout(idle)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}
