//! Prometheus metrics of an axum service: requests by route, method and status, and their
//! latency, in the text exposition format at `/metrics` on the service's own port (the
//! gateway never routes `/metrics`, so it is not public).
//!
//! Recording takes a read lock and a few relaxed atomic adds; a series is created under the
//! write lock only the first time a (route, method, status) is seen. Routes are the matched
//! route templates (`/scrape/jobs/{id}`), so the number of series stays bounded.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// More metrics a service adds to `/metrics` (e.g. the scraper's queue depth), in the text
/// format, computed when scraped.
pub type ExtraMetrics = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    route: String,
    method: String,
    status: u16,
}

#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

/// The HTTP metrics of one service.
pub struct HttpMetrics {
    service: &'static str,
    series: RwLock<HashMap<Key, Arc<Series>>>,
}

impl HttpMetrics {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            series: RwLock::new(HashMap::new()),
        }
    }

    /// Counts one finished request.
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let key = Key {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        let existing = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let series = match existing {
            Some(s) => s,
            None => self
                .series
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_default()
                .clone(),
        };
        series.count.fetch_add(1, Relaxed);
        series
            .sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                series.buckets[i].fetch_add(1, Relaxed);
            }
        }
    }

    /// The text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let service = self.service;
        let series = self.series.read().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<&Key> = series.keys().collect();
        keys.sort_by(|a, b| (&a.route, &a.method, a.status).cmp(&(&b.route, &b.method, b.status)));

        out.push_str("# HELP http_requests_total Requests served, by route, method and status.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for k in &keys {
            let s = &series[*k];
            let _ = writeln!(
                out,
                "http_requests_total{{service=\"{service}\",route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                escape(&k.route), k.method, k.status, s.count.load(Relaxed)
            );
        }
        out.push_str("# HELP http_request_duration_seconds Time to serve a request.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for k in &keys {
            let s = &series[*k];
            let labels = format!(
                "service=\"{service}\",route=\"{}\",method=\"{}\",status=\"{}\"",
                escape(&k.route),
                k.method,
                k.status
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i].load(Relaxed)
                );
            }
            let count = s.count.load(Relaxed);
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_micros.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = HttpMetrics::new("svc");
        m.record("/auth/me", "GET", 200, Duration::from_millis(3));
        m.record("/auth/me", "GET", 200, Duration::from_millis(30));
        m.record("/auth/me", "GET", 401, Duration::from_micros(500));
        let text = m.render();
        assert!(
            text.contains(
                r#"http_requests_total{service="svc",route="/auth/me",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"http_requests_total{service="svc",route="/auth/me",method="GET",status="401"} 1"#
        ));
        assert!(text.contains(r#"route="/auth/me",method="GET",status="200",le="0.005"} 1"#));
        assert!(text.contains(r#"route="/auth/me",method="GET",status="200",le="+Inf"} 2"#));
    }
}
