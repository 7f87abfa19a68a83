//! [`ClientIp`]: the address a request came from, for throttling.
//!
//! The gateway is the edge: it overwrites `X-Forwarded-For` with the peer it saw, so behind it
//! the header's first entry is the client. A request that reached a service directly has its
//! TCP peer used instead when the header is absent.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

/// The client's address: the first `X-Forwarded-For` entry (the gateway overwrites that
/// header with the peer it saw), else the TCP peer. `None` only when neither is known.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .headers
            .get(common::auth::headers::CLIENT_IP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(parse_addr);
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip())
        };
        Ok(ClientIp(forwarded.or_else(peer)))
    }
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, or either with a port.
fn parse_addr(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| match ip {
            // One client, one key, whichever way its IPv4 address is written.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forwarded_addresses() {
        assert_eq!(
            parse_addr(" 203.0.113.7 "),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_addr("203.0.113.7:4711"),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_addr("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            parse_addr("::ffff:192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_addr("unknown"), None);
    }
}
