//! The Pingora `ProxyHttp` implementation: route, authenticate, pick an instance of the
//! route's upstream group, clean the request's headers, retry what is safe to retry, and turn
//! every failure into a JSON answer.
//!
//! Decisions live in plain functions ([`crate::routing::route_for`],
//! [`crate::cookie::credentials`], [`crate::auth::TokenCheck`], [`crate::shell`],
//! [`crate::error::failure_response`]); this module only wires them into Pingora's request
//! phases. The per-request context is a few words, and the hot path allocates only the
//! request id (when the client sent none) and the peer Pingora needs.
//!
//! Retries: a request whose connection to an instance fails goes once to another healthy
//! instance of its group (nothing was sent yet). A request that fails after it was sent —
//! the instance dropped the connection or answered garbage before any response byte reached
//! the client — goes once to another healthy instance only when repeating it is harmless: an
//! idempotent method (GET, HEAD, PUT, DELETE, OPTIONS) whose body, if any, is still whole in
//! Pingora's retry buffer. A timeout is not retried: the instance may still be working on it,
//! and a second wait as long would only double the client's.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::auth::headers;
use http::{header, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::auth::TokenCheck;
use crate::client_stream::HeadPhase;
use crate::cookie::{credentials, Credentials, Csrf};
use crate::error::{body, failure_response};
use crate::metrics::{InFlight, Metrics};
use crate::routing::{ends_session, route_for, shell_file, Group, Route, Upstream};
use crate::shell;
use crate::upstreams::Upstreams;

/// Limits and timeouts applied to every request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub client_timeout: Duration,
}

/// The gateway's request logic, shared by every worker thread.
pub struct Gateway {
    pub tokens: Arc<TokenCheck>,
    pub upstreams: Arc<Upstreams>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

/// The gateway's own answers that are not errors.
const HEALTHY: &[u8] = br#"{"status":"ok"}"#;
const READY: &[u8] = br#"{"status":"ready"}"#;
const NOT_READY: &[u8] = br#"{"detail":"Not ready"}"#;

impl Gateway {
    /// Ready when an app-service instance passes its health check, the token keys are loaded
    /// and the session store answers. (book-service and the borrowings function are not
    /// required: without them only their routes answer 503.)
    async fn readiness(&self) -> Result<(), &'static str> {
        if !self.upstreams.group(Upstream::AppService).any_healthy() {
            return Err("no healthy app-service instance");
        }
        self.tokens.readiness().await
    }

    fn peer_for(&self, addr: SocketAddr) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(addr, false, String::new());
        let options = &mut peer.options;
        options.connection_timeout = Some(self.limits.connect_timeout);
        options.read_timeout = Some(self.limits.read_timeout);
        options.write_timeout = Some(self.limits.write_timeout);
        options.idle_timeout = Some(Duration::from_secs(60));
        Box::new(peer)
    }
}

/// Per-request state.
pub struct Ctx {
    started: Instant,
    group: Group,
    request_id: HeaderValue,
    /// The session of the verified token (a successful logout evicts it).
    session_id: Option<String>,
    /// `Bearer <token>` of a request authenticated by the session cookie: the upstream gets
    /// it as its `Authorization` header.
    cookie_bearer: Option<HeaderValue>,
    /// The instance chosen for the current attempt.
    upstream: Option<SocketAddr>,
    /// An instance that failed this request, avoided by the retry.
    failed: Option<SocketAddr>,
    /// Whether the one retry was spent.
    retried: bool,
    body_bytes: u64,
    /// This hop's span: a child of the client's trace context, parent of the upstream's.
    span: tracing::Span,
    _in_flight: InFlight,
}

/// `x-request-id` from a client is kept only when short and made of `[A-Za-z0-9_-]`, so it
/// can be logged and forwarded safely.
pub fn acceptable_request_id(raw: &[u8]) -> bool {
    !raw.is_empty()
        && raw.len() <= 64
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// A UUID v4 from the thread-local generator (`Uuid::new_v4` would make a `getrandom`
/// system call per request).
fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let id = uuid.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// True for a header name that some servers would read as an identity header (they fold
/// `_` into `-`), e.g. `x_user_id`: it is dropped like the canonical name.
fn is_identity_alias(name: &str) -> bool {
    name.len() <= 16
        && name.contains('_')
        && headers::IDENTITY.iter().any(|id| {
            id.len() == name.len()
                && id
                    .bytes()
                    .zip(name.bytes())
                    .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
        })
}

/// Whether a request that already reached an instance may be sent again: idempotent, its
/// body still whole for a replay, and nothing of an answer sent to the client yet.
fn replayable(session: &Session) -> bool {
    session.req_header().method.is_idempotent()
        && !session.as_ref().retry_buffer_truncated()
        && session.response_written().is_none()
}

/// Why a protected request is refused.
enum Refusal {
    Auth(common::auth::AuthError),
    /// Authenticated by the session cookie, without the CSRF proof an unsafe method needs.
    Csrf,
}

/// Writes an answer about the web UI from the gateway itself (the shell's page and files):
/// no body for HEAD (but its length in `Content-Length`) nor for a 304.
async fn respond_ui(session: &mut Session, ctx: &Ctx, reply: ui_assets::Reply) -> Result<()> {
    let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 2))?;
    for (name, value) in &reply.headers {
        resp.insert_header(*name, *value)?;
    }
    if reply.status != 304 {
        resp.insert_header(header::CONTENT_LENGTH, HeaderValue::from(reply.body.len()))?;
    }
    resp.insert_header(headers::REQUEST_ID, ctx.request_id.clone())?;
    if !session.is_body_empty() {
        session.set_keepalive(None);
    }
    let send_body = session.req_header().method != http::Method::HEAD && !reply.body.is_empty();
    session
        .write_response_header(Box::new(resp), !send_body)
        .await?;
    if send_body {
        session
            .write_response_body(Some(Bytes::from_static(reply.body)), true)
            .await?;
    }
    Ok(())
}

/// Writes a complete JSON response from the gateway itself.
async fn respond(
    session: &mut Session,
    ctx: &Ctx,
    status: u16,
    body: &'static [u8],
    challenge: Option<&'static str>,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(7))?;
    resp.insert_header(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )?;
    resp.insert_header(header::CONTENT_LENGTH, HeaderValue::from(body.len()))?;
    resp.insert_header(headers::REQUEST_ID, ctx.request_id.clone())?;
    // A failure to fetch a UI file (its service down) keeps the UI's policy too.
    if matches!(ctx.group, Group::Ui | Group::UiCatalogue) {
        for (name, value) in ui_assets::SECURITY_HEADERS {
            resp.insert_header(name, value)?;
        }
    }
    if let Some(challenge) = challenge {
        resp.insert_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )?;
    }
    // An unread request body would be taken for the next request on this connection. The
    // connection is closed instead, lingering (see `client_stream`) so the client still
    // reads this answer however much of its body it is still sending.
    if !session.is_body_empty() {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body)), true)
        .await
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            started: Instant::now(),
            group: Group::Other,
            request_id: HeaderValue::from_static("-"),
            session_id: None,
            cookie_bearer: None,
            upstream: None,
            failed: None,
            retried: false,
            body_bytes: 0,
            span: tracing::Span::none(),
            _in_flight: self.metrics.request_started(),
        }
    }

    fn on_connection_reuse(
        &self,
        _session: &mut Session,
        _ctx: &mut Ctx,
        connection: Box<dyn Any + Send + Sync>,
    ) {
        // Set by `connection::ClientConnections` for every request: the head is parsed, so
        // its deadline no longer applies.
        if let Ok(phase) = connection.downcast::<Arc<HeadPhase>>() {
            phase.head_parsed();
        }
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        session.set_read_timeout(Some(self.limits.client_timeout));
        session.set_write_timeout(Some(self.limits.client_timeout));
        let req = session.req_header();
        ctx.request_id = match req.headers.get(headers::REQUEST_ID) {
            Some(v) if acceptable_request_id(v.as_bytes()) => v.clone(),
            _ => new_request_id(),
        };
        let span = tracing::info_span!(
            "request",
            otel.name = "gateway",
            otel.kind = "server",
            service = "gateway",
            method = %req.method,
            request_id = ctx.request_id.to_str().unwrap_or("-"),
            group = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        // Without a subscriber interested in it (e.g. RUST_LOG=warn) this costs nothing more.
        if !span.is_disabled() {
            common::telemetry::continue_trace(&span, &req.headers);
        }
        ctx.span = span;
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let req = session.req_header();
        let decision = route_for(&req.method, req.raw_path());
        ctx.group = decision.group();
        let public = match decision {
            Route::ShellPage | Route::ShellFile => {
                let req = session.req_header();
                let if_none_match = req
                    .headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok());
                let reply = if decision == Route::ShellPage {
                    shell::page(&req.method, if_none_match)
                } else {
                    shell::file(&req.method, shell_file(req.raw_path()), if_none_match)
                };
                respond_ui(session, ctx, reply).await?;
                return Ok(true);
            }
            Route::Healthz => {
                respond(session, ctx, 200, HEALTHY, None).await?;
                return Ok(true);
            }
            Route::Readyz => {
                let (status, body) = match self.readiness().await {
                    Ok(()) => (200, READY),
                    Err(why) => {
                        tracing::warn!(reason = why, "not ready");
                        (503, NOT_READY)
                    }
                };
                respond(session, ctx, status, body, None).await?;
                return Ok(true);
            }
            Route::NotFound => {
                respond(session, ctx, 404, body::NOT_FOUND, None).await?;
                return Ok(true);
            }
            Route::Upstream { public, .. } => public,
        };
        let declared = session
            .req_header()
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_body_bytes) {
            respond(session, ctx, 413, body::TOO_LARGE, None).await?;
            return Ok(true);
        }
        if !public {
            let req = session.req_header();
            // The token is checked first: a dead session is a 401 (the UI returns to its login
            // screen) whatever the CSRF verdict.
            let outcome = match credentials(&req.method, &req.headers) {
                Credentials::Header(authorization) => self
                    .tokens
                    .check(authorization)
                    .await
                    .map(|claims| (claims, None))
                    .map_err(Refusal::Auth),
                Credentials::Cookie { token, csrf } => match self.tokens.check_token(token).await {
                    Err(refusal) => Err(Refusal::Auth(refusal)),
                    Ok(_) if csrf == Csrf::Failed => Err(Refusal::Csrf),
                    // A token that verified is a JWT: visible ASCII, a valid header value.
                    Ok(claims) => HeaderValue::from_str(&format!("Bearer {token}"))
                        .map(|mut bearer| {
                            bearer.set_sensitive(true);
                            (claims, Some(bearer))
                        })
                        .map_err(|_| Refusal::Auth(common::auth::AuthError::Invalid)),
                },
            };
            match outcome {
                Ok((claims, bearer)) => {
                    ctx.session_id = Some(claims.sid);
                    ctx.cookie_bearer = bearer;
                }
                Err(Refusal::Auth(refusal)) => {
                    let (status, body) = (refusal.status(), refusal.body());
                    respond(session, ctx, status, body, refusal.challenge()).await?;
                    return Ok(true);
                }
                Err(Refusal::Csrf) => {
                    respond(session, ctx, 403, body::CSRF_FAILED, None).await?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let group = self.upstreams.group(ctx.group.upstream());
        let Some(addr) = group.select(ctx.failed) else {
            return Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "no healthy upstream",
            ));
        };
        ctx.upstream = Some(addr);
        Ok(self.peer_for(addr))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing was sent yet, so any request may go to another instance — once. With no
        // other instance left the retry finds none and answers 503.
        let retry = !ctx.retried;
        ctx.retried = true;
        ctx.failed = ctx.upstream.take();
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let failed = ctx.upstream.take();
        let retry = !ctx.retried
            && *e.esource() == ErrorSource::Upstream
            && !matches!(
                e.etype(),
                ErrorType::ReadTimedout | ErrorType::WriteTimedout | ErrorType::HTTPStatus(_)
            )
            && replayable(session)
            && {
                let group = self.upstreams.group(ctx.group.upstream());
                if group.has_healthy_other_than(failed) {
                    ctx.failed = failed;
                    true
                } else {
                    // The only instance: a pooled connection that had gone stale is worth
                    // one fresh connection; a fresh one that failed is not.
                    client_reused
                }
            };
        ctx.retried |= retry;
        e.set_retry(retry);
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // No service reads identity headers (each verifies the token itself); a client's are
        // removed all the same, so that no future reader can be fooled by one.
        for name in headers::IDENTITY {
            upstream_request.remove_header(name);
        }
        let aliases: Vec<http::HeaderName> = upstream_request
            .headers
            .keys()
            .filter(|name| is_identity_alias(name.as_str()))
            .cloned()
            .collect();
        for name in &aliases {
            upstream_request.remove_header(name);
        }
        // We are the edge: whatever a client claims about earlier hops is discarded.
        match session.client_addr().and_then(|a| a.as_inet()) {
            Some(client) => {
                upstream_request.insert_header(headers::CLIENT_IP, client.ip().to_string())?;
            }
            None => {
                upstream_request.remove_header(headers::CLIENT_IP);
            }
        }
        upstream_request.insert_header(headers::REQUEST_ID, ctx.request_id.clone())?;
        // Cookies are the browser's business with the gateway: services authenticate bearer
        // tokens only, and never see the session cookie (nor any other).
        upstream_request.remove_header(&header::COOKIE);
        if let Some(bearer) = &ctx.cookie_bearer {
            upstream_request.insert_header(header::AUTHORIZATION, bearer.clone())?;
        }
        // With tracing exported, the upstream continues this hop's span rather than the
        // client's (a client's `traceparent` is otherwise passed on unchanged). Written through
        // `insert_header` so that Pingora's header-case bookkeeping stays consistent.
        if !ctx.span.is_disabled() {
            let mut trace = http::HeaderMap::new();
            common::telemetry::inject_trace(&ctx.span, &mut trace);
            for (name, value) in trace {
                if let Some(name) = name {
                    upstream_request.insert_header(name, value)?;
                }
            }
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(chunk) = body {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > self.limits.max_body_bytes {
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "request body too large",
                ));
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        upstream_response.insert_header(headers::REQUEST_ID, ctx.request_id.clone())?;
        // The UI's files from the services get the same policy as the shell's, whatever the
        // service sent.
        if matches!(ctx.group, Group::Ui | Group::UiCatalogue) {
            for (name, value) in ui_assets::SECURITY_HEADERS {
                upstream_response.insert_header(name, value)?;
            }
        }
        // The session ended upstream: forget it before the client can hear so, so that from
        // then on this gateway refuses the token without waiting for the announcement.
        if upstream_response.status.is_success() {
            if let Some(sid) = &ctx.session_id {
                let req = session.req_header();
                if ends_session(&req.method, req.raw_path()) {
                    self.tokens.session_ended(sid);
                }
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let (status, body) = failure_response(e);
        // Pingora does not reuse the client connection after a proxy failure: say so, or a
        // client would send its next request on a connection about to be closed.
        session.set_keepalive(None);
        if status > 0 && session.response_written().is_none() {
            if let Err(write_error) = respond(session, ctx, status, body, None).await {
                tracing::debug!(error = %write_error, "could not send the error response");
            }
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        // Failures are reported once, by the access log below.
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        let req = session.req_header();
        self.metrics.record(ctx.group, &req.method, status, elapsed);
        // The path only: a query string may carry secrets.
        let path = req.uri.path();
        let request_id = ctx.request_id.to_str().unwrap_or("-");
        let upstream = ctx.upstream.as_ref().map(|a| a as &dyn std::fmt::Display);
        let latency_ms = elapsed.as_micros() as f64 / 1e3;
        ctx.span.record("group", ctx.group.as_str());
        ctx.span.record("status", status);
        let _in_span = ctx.span.enter();
        // One line per request; the level says whose fault a failure was.
        macro_rules! access {
            ($level:ident, $($extra:tt)*) => {
                tracing::$level!(
                    target: "gateway::access",
                    method = %req.method,
                    path,
                    status,
                    latency_ms,
                    upstream = upstream.map(tracing::field::display),
                    request_id,
                    $($extra)*
                )
            };
        }
        match e {
            // Orchestrators probe `/healthz` and `/readyz` every few seconds: routine.
            None if ctx.group == Group::Health => access!(debug, "request"),
            None => access!(info, "request"),
            // A client that went away or sent garbage is not an operational problem.
            Some(e)
                if *e.esource() == ErrorSource::Downstream
                    || matches!(e.etype(), ErrorType::HTTPStatus(code) if *code < 500) =>
            {
                access!(
                    info,
                    error = e.etype().as_str(),
                    source = "client",
                    "request failed"
                )
            }
            Some(e) => {
                let source = match e.esource() {
                    ErrorSource::Upstream => "upstream",
                    _ => "gateway",
                };
                access!(warn, error = e.etype().as_str(), source, "request failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_kept_only_when_safe() {
        assert!(acceptable_request_id(b"abc-123_XYZ"));
        assert!(acceptable_request_id(&[b'a'; 64]));
        assert!(!acceptable_request_id(&[b'a'; 65]));
        assert!(!acceptable_request_id(b""));
        assert!(!acceptable_request_id(b"a b"));
        assert!(!acceptable_request_id(b"a\r\nx-user-id: 1"));
        let generated = new_request_id();
        assert_eq!(generated.len(), 36);
        let parsed = uuid::Uuid::parse_str(generated.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(new_request_id(), generated);
        assert!(acceptable_request_id(generated.as_bytes()));
    }

    #[test]
    fn underscore_spellings_of_identity_headers_are_recognised() {
        assert!(is_identity_alias("x_user_id"));
        assert!(is_identity_alias("x_user-role"));
        assert!(is_identity_alias("x_session_id"));
        assert!(!is_identity_alias("x-user-id"));
        assert!(!is_identity_alias("x_request_id"));
        assert!(!is_identity_alias("user_agent"));
    }
}
