//! The local HTTP adapter over HTTP: the same answers as the handler gives Lambda, the
//! probes, and a clean stop.

use std::time::Duration;

use borrowings_function::startup::Application;
use common::auth::Role;
use common::shutdown::shutdown_channel;
use serde_json::{json, Value};

use crate::support::*;

async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, Value, String) {
    let mut req = http.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("an answer");
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, challenge)
}

#[tokio::test]
async fn the_adapter_serves_the_function_and_its_probes_over_http() {
    let kv = common::kv::Kv::memory("adapter:");
    let books = FakeBooks::start(Behaviour::default()).await;
    let app = Application::build(config(&books.url), kv.clone())
        .await
        .expect("the adapter starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (trigger, shutdown) = shutdown_channel();
    let server = tokio::spawn(app.run_until_stopped(shutdown));
    let http = reqwest::Client::new();
    let ana = user(&kv, ANA, Role::User).await;
    let librarian = user(&kv, 1, Role::Librarian).await;

    // The same answers as the handler gives API Gateway, with and without the slash.
    let handler_answer = invoke(
        &state(&kv, &books.url).await,
        &http_api_event(Some(&format!("Bearer {}", ana.token)), ""),
    )
    .await;
    for path in ["/user/borrowings/", "/user/borrowings"] {
        let (status, body, _) = get(&http, &format!("{base}{path}"), Some(&ana.token)).await;
        assert_eq!((status, &body), (200, &handler_answer.body), "{path}");
    }
    let (status, body, _) = get(
        &http,
        &format!("{base}/user/borrowings/?user_id={BOB}"),
        Some(&librarian.token),
    )
    .await;
    assert_eq!(
        (status, body[0]["book_id"].as_i64()),
        (200, Some(LUCEAFARUL))
    );
    let (status, _, _) = get(
        &http,
        &format!("{base}/user/borrowings/?user_id={BOB}"),
        Some(&ana.token),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body, challenge) = get(&http, &format!("{base}/user/borrowings/"), None).await;
    assert_eq!(
        (status, body, challenge.as_str()),
        (401, json!({"detail": "Not authenticated"}), "Bearer")
    );

    // Only GET, only its route.
    let resp = http
        .post(format!("{base}/user/borrowings/"))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );
    let (status, body, _) = get(&http, &format!("{base}/user/borrowingsx"), None).await;
    assert_eq!((status, body), (404, json!({"detail": "Not Found"})));

    // Probes.
    let (status, body, _) = get(&http, &format!("{base}/healthz"), None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body, _) = get(&http, &format!("{base}/readyz"), None).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"status": "ready", "session_store": "ok", "book_service": "ok"})
        )
    );
    let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
    let metrics = resp.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"http_requests_total{service="borrowings-function",route="/user/borrowings/",method="GET",status="200"} 3"#
        ),
        "{metrics}"
    );

    // Not ready without book-service; still alive.
    drop(books);
    let (status, body, _) = get(&http, &format!("{base}/readyz"), None).await;
    assert_eq!(
        (status, &body["book_service"]),
        (503, &json!("unavailable"))
    );
    let (status, _, _) = get(&http, &format!("{base}/healthz"), None).await;
    assert_eq!(status, 200);

    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the adapter stops")
        .unwrap()
        .expect("cleanly");
}
