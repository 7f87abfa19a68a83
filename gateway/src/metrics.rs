//! The gateway's metrics, kept by the shared [`common::metrics::Metrics`] (prometheus-client)
//! and served on a separate listener (`GATEWAY_METRICS_ADDR`) so they are never exposed with
//! the public API:
//!
//! - `http_requests_total` / `http_request_duration_seconds` with `route` = the route group
//!   (`auth`, `books`, ...) and the method — the same names and labels as every service;
//! - `gateway_requests_in_flight` — requests being handled now (draining waits for zero);
//! - `gateway_connections_refused_total` — connections refused because their client address
//!   held `GATEWAY_MAX_CONNECTIONS_PER_IP` already;
//! - `gateway_upstream_healthy{pool, upstream}` — 1 while an instance passes its health
//!   check, refreshed from the load balancers on every scrape (so an instance that disappears
//!   from DNS disappears from the metrics too).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::error::body;
use crate::routing::Group;
use crate::upstreams::Upstreams;

/// The labels of `gateway_upstream_healthy`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    pool: &'static str,
    upstream: String,
}

/// The gateway's metrics.
pub struct Metrics {
    http: common::metrics::Metrics,
    in_flight: Gauge,
    connections_refused: Counter,
    upstream_healthy: Family<UpstreamLabels, Gauge>,
    /// Held while the health gauges are rebuilt and encoded, so that two scrapes never see
    /// each other's half-rebuilt family.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let http = common::metrics::Metrics::new("gateway");
        let in_flight = Gauge::default();
        let connections_refused = Counter::default();
        let upstream_healthy = Family::<UpstreamLabels, Gauge>::default();
        http.register(
            "gateway_requests_in_flight",
            "Requests being handled now",
            in_flight.clone(),
        );
        http.register(
            "gateway_connections_refused",
            "Connections refused: their client address held its limit already",
            connections_refused.clone(),
        );
        http.register(
            "gateway_upstream_healthy",
            "Whether an upstream instance passes its health check",
            upstream_healthy.clone(),
        );
        Self {
            http,
            in_flight,
            connections_refused,
            upstream_healthy,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one finished request.
    pub fn record(&self, group: Group, method: &http::Method, status: u16, elapsed: Duration) {
        self.http.record(group.as_str(), method, status, elapsed);
    }

    /// How many requests of `group` with `method` were answered `status`.
    pub fn count(&self, group: Group, method: &http::Method, status: u16) -> u64 {
        self.http.count(group.as_str(), method, status)
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn request_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Counts a connection refused by the per-address limit.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Connections refused by the per-address limit so far.
    pub fn connections_refused(&self) -> u64 {
        self.connections_refused.get()
    }

    /// Every series, the upstream health read from `upstreams` now.
    pub fn encode(&self, upstreams: &Upstreams) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.upstream_healthy.clear();
        for pool in upstreams.pools() {
            for (addr, healthy) in pool.instances() {
                let labels = UpstreamLabels {
                    pool: pool.name(),
                    upstream: addr.to_string(),
                };
                self.upstream_healthy
                    .get_or_create(&labels)
                    .set(i64::from(healthy));
            }
        }
        self.http.encode()
    }
}

/// A request in flight; dropping it ends it.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `/metrics` endpoint.
pub struct MetricsApp {
    pub metrics: Arc<Metrics>,
    pub upstreams: Arc<Upstreams>,
}

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let (status, content_type, body) = if path == "/metrics" || path == "/metrics/" {
            (
                200,
                common::metrics::CONTENT_TYPE,
                self.metrics.encode(&self.upstreams).into_bytes(),
            )
        } else {
            (404, "application/json", body::NOT_FOUND.to_vec())
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_requests_by_group_and_method_and_counts_in_flight() {
        let m = Metrics::new();
        m.record(
            Group::Auth,
            &http::Method::GET,
            401,
            Duration::from_millis(2),
        );
        m.record(
            Group::Auth,
            &http::Method::GET,
            401,
            Duration::from_millis(70),
        );
        m.record(
            Group::Books,
            &http::Method::POST,
            201,
            Duration::from_secs(1),
        );
        assert_eq!(m.count(Group::Auth, &http::Method::GET, 401), 2);
        assert_eq!(m.count(Group::Auth, &http::Method::POST, 401), 0);
        let first = m.request_started();
        let second = m.request_started();
        assert_eq!(m.in_flight(), 2);
        drop(first);
        let text = m.http.encode();
        assert!(
            text.contains(
                r#"http_requests_total{service="gateway",route="auth",method="GET",status="401"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_requests_total{service="gateway",route="books",method="POST",status="201"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"gateway_requests_in_flight{service="gateway"} 1"#),
            "{text}"
        );
        drop(second);
        assert_eq!(m.in_flight(), 0);
    }
}
