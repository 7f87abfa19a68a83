//! The real binary under a Lambda Runtime API emulator: the process Lambda would start
//! (`bootstrap`), with `AWS_LAMBDA_RUNTIME_API` pointing at a small HTTP server that speaks
//! the Runtime API as Lambda does — `GET /2018-06-01/runtime/invocation/next` hands out
//! API Gateway HTTP API events one at a time (with the request id and deadline headers),
//! and `POST /2018-06-01/runtime/invocation/{id}/response` records each answer.
//!
//! Sessions live in Redis here (the binary is another process), so the test needs
//! `TEST_REDIS_URL`; without it (and without `REQUIRE_EXTERNAL_BACKENDS`) it does nothing.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::auth::Role;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::support::*;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// What the emulator hands out and what it was sent back.
#[derive(Default)]
struct Emulator {
    /// Events still to hand out, each with its request id.
    pending: Mutex<VecDeque<(String, Value)>>,
    /// `(request id, payload)` of every `/response` post, in order.
    responses: Mutex<Vec<(String, Value)>>,
    /// `(path, payload)` of every error report (invocation or init errors).
    errors: Mutex<Vec<(String, Value)>>,
    posted: Notify,
}

/// `GET …/invocation/next`: the next event, or — like Lambda, which long-polls — no
/// answer until there is one (here: never; the test stops the process).
async fn next(State(emulator): State<Arc<Emulator>>) -> Response {
    let event = emulator.pending.lock().unwrap().pop_front();
    let Some((request_id, event)) = event else {
        std::future::pending::<()>().await;
        unreachable!("a pending future never completes");
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 10_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    };
    set("lambda-runtime-aws-request-id", request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-central-1:123456789012:function:get-user-borrowings".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-65f0c0de-0123456789abcdef01234567;Sampled=0".into(),
    );
    (headers, Json(event)).into_response()
}

/// `POST …/invocation/{id}/response`. Like Lambda, it takes the payload whatever its
/// `Content-Type` (the runtime client sends none).
async fn response(
    State(emulator): State<Arc<Emulator>>,
    Path(request_id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let payload: Value = serde_json::from_slice(&body).expect("a JSON payload");
    emulator
        .responses
        .lock()
        .unwrap()
        .push((request_id, payload));
    emulator.posted.notify_one();
    StatusCode::ACCEPTED
}

/// `POST …/invocation/{id}/error` and `POST …/init/error`.
async fn error(
    State(emulator): State<Arc<Emulator>>,
    uri: axum::http::Uri,
    body: String,
) -> StatusCode {
    let payload = serde_json::from_str(&body).unwrap_or(Value::String(body));
    emulator
        .errors
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), payload));
    emulator.posted.notify_one();
    StatusCode::ACCEPTED
}

#[tokio::test]
async fn the_real_binary_answers_invocations_from_the_runtime_api() {
    let Some(redis) = test_support::redis_url() else {
        return;
    };
    let prefix = test_support::unique_prefix("runtime");
    let kv = test_support::redis_kv(&redis, &prefix).await;
    let books = FakeBooks::start(Behaviour::default()).await;
    let ana = user(&kv, ANA, Role::User).await;
    let bearer = format!("Bearer {}", ana.token);

    let events = [
        ("req-own", http_api_event(Some(&bearer), "")),
        (
            "req-other",
            http_api_event(Some(&bearer), &format!("user_id={BOB}")),
        ),
        ("req-anonymous", http_api_event(None, "")),
    ];
    let emulator = Arc::new(Emulator::default());
    emulator.pending.lock().unwrap().extend(
        events
            .iter()
            .map(|(id, event)| ((*id).to_owned(), event.clone())),
    );
    let api = Router::new()
        .route(NEXT, get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(emulator.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let runtime_api = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, api).await });

    // The environment Lambda gives a `provided.al2023` function, plus the template's.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_borrowings-function"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "get-user-borrowings")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/get-user-borrowings",
        )
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/03/01/[$LATEST]0123456789abcdef",
        )
        .env("SECRET_KEY", SECRET)
        .env("REDIS_URL", &redis)
        .env("REDIS_KEY_PREFIX", &prefix)
        .env("BOOK_SERVICE_URL", &books.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");

    let all_answered = async {
        loop {
            let notified = emulator.posted.notified();
            let done =
                emulator.responses.lock().unwrap().len() + emulator.errors.lock().unwrap().len();
            if done >= events.len() {
                break;
            }
            notified.await;
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(Duration::from_secs(30), all_answered) => {}
        status = child.wait() => panic!("the binary exited early: {status:?}"),
    }
    child.kill().await.expect("the binary stops");
    server.abort();

    assert_eq!(*emulator.errors.lock().unwrap(), vec![], "no error reports");
    let responses = emulator.responses.lock().unwrap().clone();
    let ids: Vec<&str> = responses.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["req-own", "req-other", "req-anonymous"]);
    let body = |payload: &Value| -> Value {
        serde_json::from_str(payload["body"].as_str().expect("a text body")).unwrap()
    };

    // An API Gateway v2 response for each.
    let (_, own) = &responses[0];
    assert_eq!(own["statusCode"], 200, "{own}");
    assert_eq!(own["isBase64Encoded"], false);
    assert_eq!(own["headers"]["content-type"], "application/json");
    let list = body(own);
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .map(|b| (b["book_id"].as_i64().unwrap(), b["isbn"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [(GERMINAL, "9782070360024"), (THERESE, "9782253010845")]
    );
    let (_, other) = &responses[1];
    assert_eq!(other["statusCode"], 403, "{other}");
    let (_, anonymous) = &responses[2];
    assert_eq!(anonymous["statusCode"], 401, "{anonymous}");
    assert_eq!(anonymous["headers"]["www-authenticate"], "Bearer");
    assert_eq!(body(anonymous), json!({"detail": "Not authenticated"}));
    assert_eq!(
        books.seen_at("/loans/").len(),
        1,
        "book-service asked for the allowed request only"
    );
}
