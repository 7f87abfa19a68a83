//! What happens to a client connection around Pingora's HTTP handling: the per-address
//! connection limit, and the HTTP/1.1 request loop over a [`ClientStream`].
//!
//! Pingora's proxy ([`HttpProxy`]) handles one request per call; the loop that feeds it the
//! requests of a kept-alive connection is normally Pingora's (the `ServerApp` it implements
//! for every HTTP app). It is ours here, for two reasons:
//! - the connection is admitted or refused before anything is read: each client address may
//!   hold at most `GATEWAY_MAX_CONNECTIONS_PER_IP` connections, and one more is answered 429
//!   and closed at once, so that slow or idle clients from one address cannot take every
//!   connection the gateway can hold;
//! - the stream Pingora reads is our [`ClientStream`] (the request head's deadline and
//!   limits, the lingering close), told by this loop when each request begins.
//!
//! Plain HTTP/1.x only, as before: no TLS and no h2c on this listener.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;

use crate::client_stream::{linger, write_refusal, ClientStream, HeadLimits, HeadPhase};
use crate::error::{body, raw_response};
use crate::metrics::Metrics;
use crate::proxy::Gateway;

/// How long an idle kept-alive connection stays open (Pingora's default).
const KEEPALIVE_SECS: u64 = 60;

/// How long a refused connection is drained before it is closed: enough for the client's
/// request to arrive, so that closing does not reset the connection before the 429 is read.
const REFUSED_LINGER: Duration = Duration::from_millis(500);

/// Open connections per client address.
pub struct ConnectionLimit {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionLimit {
    /// A limit of `max` connections per address.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it holds `max` already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            limit: Arc::clone(self),
            ip,
        })
    }

    /// Connections `ip` holds now.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

/// One admitted connection; dropping it frees the slot.
pub struct Slot {
    limit: Arc<ConnectionLimit>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The gateway's listening application: admits a connection, then runs its requests through
/// the proxy.
pub struct ClientConnections {
    pub proxy: Arc<HttpProxy<Gateway>>,
    pub head: HeadLimits,
    /// `None`: no per-address limit.
    pub per_ip: Option<Arc<ConnectionLimit>>,
    pub metrics: Arc<Metrics>,
}

impl ClientConnections {
    /// Answers 429 and closes; the client is told why rather than reset.
    async fn refuse(&self, mut stream: Stream, ip: IpAddr) {
        self.metrics.connection_refused();
        tracing::debug!(client = %ip, "too many connections from one address; refused");
        let response = raw_response(429, "Too Many Requests", body::TOO_MANY_CONNECTIONS);
        write_refusal(&mut stream, &response).await;
        linger(stream, None, REFUSED_LINGER).await;
    }
}

/// The client's address (IPv4-mapped IPv6 addresses count as the IPv4 address).
fn client_ip(stream: &Stream) -> Option<IpAddr> {
    let digest = stream.get_socket_digest()?;
    let addr = digest.peer_addr()?.as_inet()?;
    Some(addr.ip().to_canonical())
}

#[async_trait]
impl ServerApp for ClientConnections {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let slot = match (&self.per_ip, client_ip(&stream)) {
            (Some(limit), Some(ip)) => match limit.admit(ip) {
                Some(slot) => Some(Box::new(slot) as Box<dyn Send + Sync>),
                None => {
                    self.refuse(stream, ip).await;
                    return None;
                }
            },
            _ => None,
        };
        let phase = Arc::new(HeadPhase::first_request());
        let stream = ClientStream::new(stream, Arc::clone(&phase), self.head, slot);
        let mut session = ServerSession::new_http1(Box::new(stream));
        // As Pingora's own loop does: no keep-alive once shutting down.
        session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_SECS));
        loop {
            // Handed to the proxy's `on_connection_reuse` once the head is parsed.
            session.set_connection_user_context(Some(Box::new(Arc::clone(&phase))));
            let (stream, settings) = self
                .proxy
                .process_new_http(session, shutdown)
                .await?
                .consume();
            phase.next_request();
            session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
        }
    }

    async fn cleanup(&self) {
        // Wakes kept-alive connections waiting for their next request, so they close.
        self.proxy.http_cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_slots() {
        let limit = ConnectionLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.admit(a).unwrap();
        let second = limit.admit(a).unwrap();
        assert!(limit.admit(a).is_none(), "a third from the same address");
        assert!(limit.admit(b).is_some(), "another address is not affected");
        drop(first);
        assert_eq!(limit.open(a), 1);
        let third = limit.admit(a).expect("a freed slot is reused");
        drop((second, third));
        assert_eq!(limit.open(a), 0);
        assert!(
            limit.open.lock().unwrap().is_empty(),
            "no entry left behind"
        );
    }
}
