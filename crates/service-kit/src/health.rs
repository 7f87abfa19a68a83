//! `/healthz` (the process is alive) and the `/readyz` answer (every dependency answered).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `GET /healthz`: 200 `{"status": "ok"}` while the process serves.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `/readyz`: 200 when every dependency answered, 503 naming those that did not (causes go
/// to the log, not to the caller).
pub fn readiness(checks: &[(&str, Result<(), String>)]) -> Response {
    let mut body = serde_json::Map::new();
    let mut ready = true;
    for (name, result) in checks {
        match result {
            Ok(()) => {
                body.insert((*name).to_owned(), "ok".into());
            }
            Err(e) => {
                ready = false;
                tracing::warn!(dependency = name, error = %e, "not ready");
                body.insert((*name).to_owned(), "unavailable".into());
            }
        }
    }
    let (status, detail) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    body.insert("status".into(), detail.into());
    (status, Json(serde_json::Value::Object(body))).into_response()
}
