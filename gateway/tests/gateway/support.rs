//! What the tests share: fake upstreams (a small axum app that echoes what it received and
//! counts hits; a raw one that drops every connection but its health checks), tokens and
//! sessions, and clients (reqwest, and raw TCP for what a URL library would not send).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use common::auth::{Claims, Role, SessionData, Sessions, TokenSettings};
use common::config::Secret;
use common::kv::Kv;
use gateway::{Config, GatewayHandle};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;

pub const SECRET: &str = "gateway-integration-test-secret-0123456789";
pub const ISSUER: &str = "user-service";
pub const AUDIENCE: &str = "platform";

// ---------------------------------------------------------------------------------------------
// The upstream: echoes method, path, headers and body size; `/healthz`; a slow endpoint; a
// JWKS endpoint that answers 503 until keys are set; two event streams. Runs on its own
// runtime so that a test can kill it (every socket closed: connections are refused) and
// bring it back on the port.

#[derive(Clone)]
pub struct UpstreamState {
    name: &'static str,
    hits: Arc<AtomicUsize>,
    /// Every request the echo answered: method and path.
    seen: Arc<Mutex<Vec<(String, String)>>>,
    /// Set: `POST /auth/logout` ends the bearer token's session in this store, as
    /// user-service does.
    sessions: Arc<Mutex<Option<Sessions>>>,
    pub jwks: Arc<Mutex<Option<Value>>>,
    /// Lets `/notifications/stream` send its second event.
    pub release: Arc<Notify>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub state: UpstreamState,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    pub fn start(name: &'static str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let state = UpstreamState {
            name,
            hits: Arc::default(),
            seen: Arc::default(),
            sessions: Arc::default(),
            jwks: Arc::default(),
            release: Arc::default(),
        };
        let runtime = Some(Self::serve(listener, state.clone()));
        Self {
            addr,
            state,
            runtime,
        }
    }

    fn serve(listener: std::net::TcpListener, state: UpstreamState) -> tokio::runtime::Runtime {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let app = Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/docs/slow", get(slow))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/notifications/stream", get(two_events))
            .route("/notifications/keepalive", get(keep_alive_comments))
            .route("/auth/logout", axum::routing::post(logout))
            .fallback(echo)
            .with_state(state);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, app).await;
        });
        runtime
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The paths of every request the echo answered.
    pub fn paths_seen(&self) -> Vec<String> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter().map(|(_, path)| path.clone()).collect()
    }

    /// From now on `POST /auth/logout` ends the caller's session in `kv` before answering.
    pub fn end_sessions_in(&self, kv: &Kv) {
        *self.state.sessions.lock().unwrap() = Some(Sessions::new(kv.clone()));
    }

    /// Kills the server: the listener and every connection close, new connections are refused.
    pub async fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        let addr = self.addr;
        eventually("the upstream refuses connections", || async move {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await;
    }

    /// Serves again on the same port.
    pub async fn revive(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind {} again: {e}", self.addr),
            }
        };
        self.runtime = Some(Self::serve(listener, self.state.clone()));
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn echo(
    State(state): State<UpstreamState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    state
        .seen
        .lock()
        .unwrap()
        .push((method.as_str().to_owned(), uri.path().to_owned()));
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    Json(json!({
        "instance": state.name,
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": headers,
        "body_len": body.len(),
    }))
}

/// Ends the session named by the bearer token (claims read without verification: the
/// gateway verified them), like user-service's logout.
async fn logout(State(state): State<UpstreamState>, headers: HeaderMap) -> impl IntoResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let sessions = state.sessions.lock().unwrap().clone();
    let sid = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| t.split('.').nth(1))
        .and_then(|payload| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Claims>(&bytes).ok())
        .map(|c| c.sid);
    if let (Some(sessions), Some(sid)) = (sessions, sid) {
        sessions.revoke(&sid).await.expect("session store answers");
    }
    Json(json!({"detail": "Logged out"}))
}

async fn slow(State(state): State<UpstreamState>) -> impl IntoResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    Json(json!({"slow": true}))
}

async fn jwks(State(state): State<UpstreamState>) -> axum::response::Response {
    let current = state.jwks.lock().unwrap().clone();
    match current {
        Some(set) => Json(set).into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn event_stream(body: Body) -> axum::response::Response {
    ([("content-type", "text/event-stream")], body).into_response()
}

/// One event, then a second only once the test releases it.
async fn two_events(State(state): State<UpstreamState>) -> axum::response::Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let stream = futures_util::stream::unfold(0, move |sent| {
        let release = state.release.clone();
        async move {
            match sent {
                0 => Some((Ok::<_, std::io::Error>(Bytes::from("data: one\n\n")), 1)),
                1 => {
                    release.notified().await;
                    Some((Ok(Bytes::from("data: two\n\n")), 2))
                }
                _ => None,
            }
        }
    });
    event_stream(Body::from_stream(stream))
}

/// A keep-alive comment every 300 ms for 2.1 s, then one event: longer in all than the
/// gateway's upstream read timeout in these tests, never silent for that long.
async fn keep_alive_comments(State(state): State<UpstreamState>) -> axum::response::Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let stream = futures_util::stream::unfold(0, |sent| async move {
        match sent {
            0..7 => {
                if sent > 0 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(": keep-alive\n\n")),
                    sent + 1,
                ))
            }
            7 => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Some((Ok(Bytes::from("data: done\n\n")), 8))
            }
            _ => None,
        }
    });
    event_stream(Body::from_stream(stream))
}

/// An upstream that passes its health checks (`GET /healthz`) but drops every other
/// connection once it has read the request head, without a byte of answer.
pub struct Dropper {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Dropper {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                let hits = counted.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    if head.starts_with(b"GET /healthz ") {
                        let _ = conn
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                  content-length: 15\r\nconnection: close\r\n\r\n{\"status\":\"ok\"}",
                            )
                            .await;
                    } else {
                        hits.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Self { addr, hits }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Polls `check` every 20 ms for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

pub fn hmac_settings() -> TokenSettings {
    TokenSettings {
        algorithm: Algorithm::HS256,
        secret: Some(Secret::new(SECRET)),
        previous_secret: None,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        lifetime: Duration::from_secs(1800),
        leeway: Duration::ZERO,
    }
}

/// A configuration for tests: fast health checks, short timeouts, a small body limit. Every
/// upstream group points at `upstreams`, so that nothing else on this machine is probed.
pub fn test_config(upstreams: &[&Upstream]) -> Config {
    let urls: Vec<String> = upstreams.iter().map(|u| u.url()).collect();
    let mut config = Config::for_upstreams(urls.clone(), hmac_settings());
    config.book_service = urls.clone();
    config.borrowings = urls;
    config.threads = 1;
    config.health_check_interval = Duration::from_millis(100);
    config.read_timeout = Duration::from_millis(700);
    config.max_body_bytes = 1024;
    config.grace = Duration::from_secs(5);
    config
}

pub async fn start(config: Config, kv: Kv) -> GatewayHandle {
    tokio::task::spawn_blocking(move || gateway::start(config, kv))
        .await
        .unwrap()
        .expect("gateway starts")
}

pub fn claims(sid: &str, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: "7".into(),
        sid: sid.into(),
        username: "alice".into(),
        role: "user".into(),
        iat: now,
        exp: now + exp_offset,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    }
}

pub fn sign(c: &Claims) -> String {
    test_support::sign_hs256(c, SECRET)
}

/// A live session `sid` for user 7 and a token for it.
pub async fn login(kv: &Kv, sid: &str) -> String {
    let data = SessionData {
        user_id: 7,
        username: "alice".into(),
        email: "alice@example.com".into(),
        role: Role::User,
    };
    Sessions::new(kv.clone())
        .create(sid, &data, Duration::from_secs(60))
        .await
        .unwrap();
    sign(&claims(sid, 600))
}

pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }

    /// A header the upstream received, from its echo.
    pub fn upstream_saw(&self, name: &str) -> Option<&str> {
        self.body["headers"][name].as_str()
    }

    /// The upstream instance that answered, from its echo.
    pub fn instance(&self) -> &str {
        self.body["instance"].as_str().unwrap_or_default()
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("gateway answers");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let text = resp.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
    Reply {
        status,
        headers,
        body,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub fn url(gw: &GatewayHandle, path: &str) -> String {
    format!("http://{}{path}", gw.addr())
}

/// Parses a whole raw answer: status, lower-cased headers, and the body as JSON.
pub fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON ({status}): {body:?}"));
    Reply {
        status,
        headers,
        body,
    }
}

/// Reads until the gateway closes the connection (at most 10 s).
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("the gateway closes the connection")
        .ok();
    buf
}

/// Sends raw bytes (paths a URL library would normalise, chunked bodies) and parses the
/// answer.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    parse(&read_to_close(&mut stream).await)
}

/// A TCP connection to `addr` from the loopback address `ip` (127.0.0.0/8 is all local), so
/// that a test can be two different clients.
pub async fn connect_from(ip: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}
