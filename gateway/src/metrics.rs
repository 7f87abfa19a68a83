//! Request counts, latency and upstream health in Prometheus' text format, served on a
//! separate listener (`GATEWAY_METRICS_ADDR`) so it is never exposed with the public API.
//!
//! Counters are plain atomics in fixed arrays (route group × status code, and a latency
//! histogram per group): recording costs a few relaxed atomic adds and no allocation or lock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::protocols::http::ServerSession;

use crate::routing::Group;

const GROUPS: usize = Group::ALL.len();
/// Status codes 0 (no response: the client went away) to 599.
const STATUSES: usize = 600;
/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The gateway's counters.
pub struct Metrics {
    requests: Box<[AtomicU64]>,
    /// Per group: one count per bucket plus `+Inf`.
    latency: Box<[AtomicU64]>,
    latency_sum_micros: [AtomicU64; GROUPS],
    in_flight: Arc<AtomicUsize>,
}

impl Metrics {
    /// Counters reading requests in flight from `in_flight` (kept by the proxy).
    pub fn new(in_flight: Arc<AtomicUsize>) -> Self {
        Self {
            requests: (0..GROUPS * STATUSES).map(|_| AtomicU64::new(0)).collect(),
            latency: (0..GROUPS * (BUCKETS.len() + 1))
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency_sum_micros: Default::default(),
            in_flight,
        }
    }

    /// Counts one finished request.
    pub fn record(&self, group: Group, status: u16, elapsed: Duration) {
        let g = group.index();
        let status = usize::from(status).min(STATUSES - 1);
        self.requests[g * STATUSES + status].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.latency[g * (BUCKETS.len() + 1) + bucket].fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros[g].fetch_add(micros, Relaxed);
    }

    /// How many requests were counted for `group` with `status`.
    pub fn count(&self, group: Group, status: u16) -> u64 {
        let status = usize::from(status).min(STATUSES - 1);
        self.requests[group.index() * STATUSES + status].load(Relaxed)
    }

    /// The Prometheus text exposition, with the health of every upstream instance in `lb`.
    pub fn render(&self, lb: Option<&LoadBalancer<RoundRobin>>) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP gateway_requests_total Requests answered, by route group and status.\n",
        );
        out.push_str("# TYPE gateway_requests_total counter\n");
        for group in Group::ALL {
            for status in 0..STATUSES {
                let n = self.requests[group.index() * STATUSES + status].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "gateway_requests_total{{group=\"{}\",status=\"{status}\"}} {n}",
                        group.as_str()
                    );
                }
            }
        }
        out.push_str("# HELP gateway_request_duration_seconds Time from request head to log, by route group.\n");
        out.push_str("# TYPE gateway_request_duration_seconds histogram\n");
        for group in Group::ALL {
            let g = group.index();
            let row = &self.latency[g * (BUCKETS.len() + 1)..(g + 1) * (BUCKETS.len() + 1)];
            let total: u64 = row.iter().map(|c| c.load(Relaxed)).sum();
            if total == 0 {
                continue;
            }
            let label = group.as_str();
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += row[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "gateway_request_duration_seconds_bucket{{group=\"{label}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "gateway_request_duration_seconds_bucket{{group=\"{label}\",le=\"+Inf\"}} {total}"
            );
            let sum = self.latency_sum_micros[g].load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "gateway_request_duration_seconds_sum{{group=\"{label}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "gateway_request_duration_seconds_count{{group=\"{label}\"}} {total}"
            );
        }
        out.push_str("# HELP gateway_requests_in_flight Requests being handled now.\n");
        out.push_str("# TYPE gateway_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "gateway_requests_in_flight {}",
            self.in_flight.load(Relaxed)
        );
        if let Some(lb) = lb {
            out.push_str("# HELP gateway_upstream_healthy Whether an upstream instance passes its health check.\n");
            out.push_str("# TYPE gateway_upstream_healthy gauge\n");
            for backend in lb.backends().get_backend().iter() {
                let healthy = u8::from(lb.backends().ready(backend));
                let _ = writeln!(
                    out,
                    "gateway_upstream_healthy{{upstream=\"{}\"}} {healthy}",
                    backend.addr
                );
            }
        }
        out
    }
}

/// The `/metrics` endpoint.
pub struct MetricsApp {
    pub metrics: Arc<Metrics>,
    pub lb: Arc<LoadBalancer<RoundRobin>>,
}

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let (status, content_type, body) = if path == "/metrics" || path == "/metrics/" {
            (
                200,
                "text/plain; version=0.0.4",
                self.metrics.render(Some(&self.lb)).into_bytes(),
            )
        } else {
            (
                404,
                "application/json",
                br#"{"detail":"Not Found"}"#.to_vec(),
            )
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
    fn renders_counts_and_histogram() {
        let m = Metrics::new(Arc::new(AtomicUsize::new(3)));
        m.record(Group::Auth, 401, Duration::from_millis(2));
        m.record(Group::Auth, 401, Duration::from_millis(70));
        m.record(Group::Scrape, 200, Duration::from_secs(100));
        assert_eq!(m.count(Group::Auth, 401), 2);
        let text = m.render(None);
        assert!(
            text.contains("gateway_requests_total{group=\"auth\",status=\"401\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("gateway_request_duration_seconds_bucket{group=\"auth\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("gateway_request_duration_seconds_bucket{group=\"auth\",le=\"0.1\"} 2")
        );
        assert!(
            text.contains("gateway_request_duration_seconds_bucket{group=\"scrape\",le=\"30\"} 0")
        );
        assert!(text
            .contains("gateway_request_duration_seconds_bucket{group=\"scrape\",le=\"+Inf\"} 1"));
        assert!(text.contains("gateway_request_duration_seconds_count{group=\"auth\"} 2"));
        assert!(text.contains("gateway_requests_in_flight 3"));
        assert!(!text.contains("group=\"docs\""));
    }
}
