//! Prometheus metrics, kept and encoded by the official client library (`prometheus-client`),
//! with the same HTTP metric names in the gateway and every service:
//!
//! - `http_requests_total{service, route, method, status}` — requests answered;
//! - `http_request_duration_seconds{service, route, method, status}` — how long they took.
//!
//! `route` is the matched route template in a service (`/scrape/jobs/{id}`) and the route
//! group at the gateway (`auth`, `books`, ...), so the number of series stays bounded.
//! Component-specific metrics (the gateway's upstream health, the scraper's queue depth) are
//! registered in the same [`Metrics`] registry under their own names.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// The labels of one HTTP series (`service` is a constant label of the registry).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: Cow<'static, str>,
    pub method: Cow<'static, str>,
    pub status: u16,
}

/// The metrics of one component: a registry labelled with its name, and the HTTP families.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram>,
}

impl Metrics {
    /// A registry whose every series carries `service="<service>"`.
    pub fn new(service: &'static str) -> Self {
        let mut registry =
            Registry::with_labels([(Cow::Borrowed("service"), Cow::Borrowed(service))].into_iter());
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register("http_requests", "Requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request",
            latency.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            latency,
        }
    }

    /// Counts one answered request.
    pub fn record(
        &self,
        route: impl Into<Cow<'static, str>>,
        method: &http::Method,
        status: u16,
        elapsed: Duration,
    ) {
        let labels = HttpLabels {
            route: route.into(),
            method: method_label(method),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// How many requests were answered on `route` with `method` and `status` (tests read it
    /// to see what was answered).
    pub fn count(&self, route: &'static str, method: &http::Method, status: u16) -> u64 {
        let labels = HttpLabels {
            route: Cow::Borrowed(route),
            method: method_label(method),
            status,
        };
        self.requests.get(&labels).map_or(0, |c| c.get())
    }

    /// Registers a component-specific metric.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.lock().register(name, help, metric);
    }

    /// Every series in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.lock());
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Registering and encoding leave the registry whole even if a panic interrupted one.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bounded set of method labels: the standard methods, and `OTHER` for anything else.
fn method_label(method: &http::Method) -> Cow<'static, str> {
    use http::Method;
    let name = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn records_and_encodes_requests_with_the_service_label() {
        let m = Metrics::new("svc");
        m.record(
            "/auth/me",
            &http::Method::GET,
            200,
            Duration::from_millis(3),
        );
        m.record(
            String::from("/auth/me"),
            &http::Method::GET,
            200,
            Duration::from_millis(30),
        );
        m.record(
            "/auth/me",
            &http::Method::GET,
            401,
            Duration::from_micros(500),
        );
        let depth = Gauge::<i64>::default();
        depth.set(4);
        m.register("queue_depth", "Jobs waiting", depth);
        assert_eq!(m.count("/auth/me", &http::Method::GET, 200), 2);
        assert_eq!(m.count("/auth/me", &http::Method::POST, 200), 0);
        let text = m.encode();
        assert!(
            text.contains(
                r#"http_requests_total{service="svc",route="/auth/me",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_request_duration_seconds_bucket{service="svc",le="0.005",route="/auth/me",method="GET",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"queue_depth{service="svc"} 4"#), "{text}");
        assert_eq!(
            method_label(&http::Method::from_bytes(b"PURGE").unwrap()),
            "OTHER"
        );
    }
}
