//! One request through the gateway is one trace: the gateway, app-service and user-service
//! each record a span, all with the same trace id, received by an in-process OTLP/HTTP
//! receiver. (This test binary installs the global tracer, so it holds only this test.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::Backend;
use axum::routing::post;
use axum::Router;
use serde_json::Value;

/// Collects every span the exporter sends as `(trace id, service attribute, name)`.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let spans = self.spans.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let spans = spans.clone();
                async move {
                    if let Ok(doc) = serde_json::from_slice::<Value>(&body) {
                        spans.lock().unwrap().extend(collect(&doc));
                    }
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
}

fn collect(doc: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                let service = span["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "service")
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .unwrap_or("")
                    .to_owned();
                out.push((
                    span["traceId"].as_str().unwrap_or("").to_owned(),
                    service,
                    span["name"].as_str().unwrap_or("").to_owned(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_is_one_trace_across_every_service() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let telemetry = common::telemetry::init_with("platform-test", Some(&endpoint));

    let s = crate::support::start(Backend::Embedded, "trace", |_| {}).await;
    s.register("tracy").await;
    let token = s.login("tracy").await;
    receiver.spans.lock().unwrap().clear();
    telemetry.flush();
    receiver.spans.lock().unwrap().clear();

    let (status, _, _) = s.get("/auth/me/", Some(&token)).await;
    assert_eq!(status, 200);

    let wanted: HashSet<&str> = ["gateway", "app-service", "user-service"].into();
    let mut found = HashMap::new();
    for _ in 0..50 {
        telemetry.flush();
        let spans = receiver.spans.lock().unwrap().clone();
        let mut by_trace: HashMap<String, HashSet<String>> = HashMap::new();
        for (trace, service, _) in &spans {
            by_trace
                .entry(trace.clone())
                .or_default()
                .insert(service.clone());
        }
        if let Some((trace, services)) = by_trace
            .into_iter()
            .find(|(_, svc)| wanted.iter().all(|w| svc.contains(*w)))
        {
            found.insert(trace, services);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans = receiver.spans.lock().unwrap().clone();
    assert!(
        !found.is_empty(),
        "no trace holds spans of {wanted:?}; received: {spans:#?}"
    );
    s.stop().await;
    telemetry.shutdown();
}
