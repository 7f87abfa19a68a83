//! Logs and traces.
//!
//! Logs: human-readable by default, JSON lines with `LOG_FORMAT=json`, filtered by `RUST_LOG`
//! (default `info`). Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are exported
//! over OTLP/HTTP (JSON) to `<endpoint>/v1/traces`, and W3C trace context (`traceparent`) is
//! read from incoming requests and written to outgoing ones, so one client request is one
//! trace across the gateway and every service it reaches.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Keeps the trace exporter alive; dropping it (or [`Telemetry::shutdown`]) flushes spans.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends every finished span now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber (once; later calls only return an inert guard), reading
/// `RUST_LOG`, `LOG_FORMAT` and `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn init(service: &str) -> Telemetry {
    init_with(
        service,
        crate::config::var("OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
    )
}

/// As [`init`], with the OTLP endpoint given (tests pass their in-process receiver).
pub fn init_with(service: &str, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = crate::config::var("LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));

    let provider = otlp_endpoint.and_then(|endpoint| match tracer_provider(service, endpoint) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("{service}: OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces: {e}");
            None
        }
    });
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service.to_owned())));
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    let installed = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true),
            )
            .try_init()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(ansi),
            )
            .try_init()
    };
    match (installed, provider) {
        (Ok(()), Some(p)) => {
            opentelemetry::global::set_tracer_provider(p.clone());
            Telemetry { provider: Some(p) }
        }
        (_, Some(p)) => {
            let _ = p.shutdown();
            Telemetry { provider: None }
        }
        _ => Telemetry { provider: None },
    }
}

fn tracer_provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(url)
        .build()
        .map_err(|e| e.to_string())?;
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// Makes `span` a child of the trace context carried by `headers` (if any).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(parent);
}

/// Writes the trace context of `span` into `headers` (`traceparent`, `tracestate`).
pub fn inject_trace(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
