//! The auth path end to end through the gateway: gateway → app-service → user-service, on
//! SQLite + in-process sessions and on PostgreSQL + Redis.

use std::time::Duration;

use crate::support::{claims_of, sign, start, Backend, PASSWORD};
use serde_json::json;

fn assert_bearer_challenge(headers: &reqwest::header::HeaderMap) {
    let challenge = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        challenge.starts_with("Bearer"),
        "WWW-Authenticate: {challenge:?}"
    );
}

#[tokio::test]
async fn register_login_me_logout() {
    for backend in crate::support::backends() {
        let s = start(backend, "flow", |_| {}).await;
        let id = s.register("alice").await;
        let token = s.login("alice").await;

        let (status, me, _) = s.get("/auth/me/", Some(&token)).await;
        assert_eq!(status, 200, "{backend:?}: {me}");
        assert_eq!(
            me,
            json!({"id": id, "username": "alice", "email": "alice@example.com", "role": "user"})
        );
        // Both spellings of a path work.
        assert_eq!(s.get("/auth/me", Some(&token)).await.0, 200);

        let (status, body, _) = s.post_json("/auth/logout/", &json!({}), Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        let (status, body, headers) = s.get("/auth/me/", Some(&token)).await;
        assert_eq!(
            status, 401,
            "{backend:?}: the token must be refused after logout: {body}"
        );
        assert!(body["detail"].is_string());
        assert_bearer_challenge(&headers);
        s.stop().await;
    }
}

#[tokio::test]
async fn oauth2_form_login_works_like_swagger_ui_sends_it() {
    for backend in crate::support::backends() {
        let s = start(backend, "form", |_| {}).await;
        s.register("formuser").await;
        let resp = s
            .http
            .post(s.at("/auth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "formuser"),
                ("password", PASSWORD),
                ("scope", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 1800);
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(s.get("/auth/me/", Some(token)).await.0, 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn bad_input_gets_clear_client_errors() {
    for backend in crate::support::backends() {
        let s = start(backend, "input", |_| {}).await;
        s.register("bob").await;

        // Duplicates, case-insensitively.
        let (status, body, _) = s
            .post_json(
                "/auth/register/",
                &json!({"username": "BOB", "email": "other@example.com", "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 409, "{body}");
        let (status, body, _) = s
            .post_json(
                "/auth/register/",
                &json!({"username": "bobby", "email": "Bob@Example.com", "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 409, "{body}");

        // Every invalid field is named at once.
        let (status, body, _) = s
            .post_json(
                "/auth/register/",
                &json!({"username": "a b", "email": "not-an-email", "password": "short"}),
                None,
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let fields: Vec<String> = body["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loc"][1].as_str().unwrap_or("").to_owned())
            .collect();
        for f in ["username", "email", "password"] {
            assert!(fields.contains(&f.to_owned()), "{f} missing from {body}");
        }

        // Malformed JSON.
        let resp = s
            .http
            .post(s.at("/auth/login/"))
            .header("content-type", "application/json")
            .body("{\"username\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["detail"][0]["type"], "json_invalid");

        // Oversized body: refused by the gateway before any upstream reads it.
        let big = "x".repeat(2 * 1024 * 1024);
        let resp = s
            .http
            .post(s.at("/auth/register/"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await;
        match resp {
            Ok(r) => {
                assert_eq!(r.status(), 413);
                let body: serde_json::Value = r.json().await.unwrap();
                assert!(body["detail"].is_string());
            }
            // The gateway may close the connection while the client is still sending.
            Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
        }

        // Unknown route: JSON 404.
        let (status, body, _) = s.get("/nowhere", None).await;
        assert_eq!(status, 404);
        assert!(body["detail"].is_string());
        s.stop().await;
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    for backend in crate::support::backends() {
        let s = start(backend, "same401", |_| {}).await;
        s.register("carol").await;
        let (s1, b1, h1) = s
            .post_json(
                "/auth/login/",
                &json!({"username": "carol", "password": "wrong-password"}),
                None,
            )
            .await;
        let (s2, b2, h2) = s
            .post_json(
                "/auth/login/",
                &json!({"username": "nobody", "password": "wrong-password"}),
                None,
            )
            .await;
        assert_eq!((s1, s2), (401, 401));
        assert_eq!(b1, b2);
        assert_bearer_challenge(&h1);
        assert_bearer_challenge(&h2);
        s.stop().await;
    }
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    for backend in crate::support::backends() {
        let s = start(backend, "forged", |_| {}).await;
        s.register("dave").await;
        let token = s.login("dave").await;
        let claims = claims_of(&token);

        // Altered claims under the original signature.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = token.split('.').collect();
        let mut admin = claims.clone();
        admin.role = "admin".into();
        let altered = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(serde_json::to_vec(&admin).unwrap()),
            parts[2]
        );
        // `alg: none`.
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        // Expired, though correctly signed and with a live session.
        let mut old = claims.clone();
        old.exp = chrono_now() - 60;
        old.iat = chrono_now() - 3600;
        let expired = sign(&old);
        // Signed with another key.
        let foreign = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-another"),
        )
        .unwrap();

        for (name, bad) in [
            ("altered", altered),
            ("alg none", none),
            ("expired", expired),
            ("foreign key", foreign),
            ("garbage", "abc.def".into()),
        ] {
            let (status, body, headers) = s.get("/auth/me/", Some(&bad)).await;
            assert_eq!(status, 401, "{backend:?} {name}: {body}");
            assert!(body["detail"].is_string(), "{name}: {body}");
            let challenge = headers["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains("invalid_token"), "{name}: {challenge}");
        }
        // No token at all on a protected route.
        let (status, _, headers) = s.get("/auth/me/", None).await;
        assert_eq!(status, 401);
        assert_bearer_challenge(&headers);
        // The genuine token still works.
        assert_eq!(s.get("/auth/me/", Some(&token)).await.0, 200);
        s.stop().await;
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn spoofed_identity_headers_are_ignored() {
    for backend in crate::support::backends() {
        let s = start(backend, "spoof", |_| {}).await;
        let eve = s.register("eve").await;
        let victim = s.register("victim").await;
        let token = s.login("eve").await;
        let resp = s
            .http
            .get(s.at("/auth/me/"))
            .bearer_auth(&token)
            .header("x-user-id", victim.to_string())
            .header("x-username", "victim")
            .header("x-user-role", "admin")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let me: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(me["id"], eve);
        // Identity headers alone never authenticate.
        let resp = s
            .http
            .get(s.at("/auth/me/"))
            .header("x-user-id", victim.to_string())
            .header("x-username", "victim")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        // Nor do they make an admin.
        let resp = s
            .http
            .post(s.at("/admin/retransform"))
            .bearer_auth(&token)
            .header("x-user-role", "admin")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        s.stop().await;
    }
}

#[tokio::test]
async fn logging_out_one_session_leaves_the_others() {
    for backend in crate::support::backends() {
        let s = start(backend, "sessions", |_| {}).await;
        s.register("frank").await;
        let laptop = s.login("frank").await;
        let phone = s.login("frank").await;
        assert_ne!(laptop, phone);
        assert_eq!(
            s.post_json("/auth/logout/", &json!({}), Some(&laptop))
                .await
                .0,
            200
        );
        assert_eq!(s.get("/auth/me/", Some(&laptop)).await.0, 401);
        assert_eq!(s.get("/auth/me/", Some(&phone)).await.0, 200, "{backend:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    for backend in crate::support::backends() {
        let s = start(backend, "throttle", |c| {
            c.user.throttle.max_failures_per_account = 3;
            c.user.throttle.window = Duration::from_secs(60);
        })
        .await;
        s.register("grace").await;
        for _ in 0..3 {
            let (status, _, _) = s
                .post_json(
                    "/auth/login/",
                    &json!({"username": "grace", "password": "wrong-password"}),
                    None,
                )
                .await;
            assert_eq!(status, 401);
        }
        // Even the right password is held back until the window passes.
        let (status, body, headers) = s
            .post_json(
                "/auth/login/",
                &json!({"username": "grace", "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(status, 429, "{backend:?}: {body}");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert!(body["detail"].is_string());
        s.stop().await;
    }
}

#[tokio::test]
async fn upstream_down_gives_503_and_the_gateway_recovers() {
    let s = start(Backend::Embedded, "upstream", |_| {}).await;
    // A second gateway reaching app-service through a proxy the test can cut.
    let proxy = test_support::CuttableProxy::start(format!("127.0.0.1:{}", s.stack.app_port)).await;
    let mut config = gateway::Config::for_upstreams(
        vec![format!("http://{}", proxy.addr())],
        crate::support::token_settings(),
    );
    config.health_check_interval = Duration::from_millis(100);
    let gw = gateway::start(config, s.kv.clone()).unwrap();
    let url = format!("http://{}/openapi.json", gw.addr());
    let ready = format!("http://{}/readyz", gw.addr());
    wait_for_status(&s.http, &url, 200).await;
    wait_for_status(&s.http, &ready, 200).await;

    proxy.cut();
    // Until the health check notices, a request may fail as 502; it never hangs or succeeds.
    for _ in 0..100 {
        let resp = s.http.get(&url).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["detail"].is_string(), "{status}: {body}");
        assert!(
            status == 502 || status == 503,
            "upstream down answered {status}"
        );
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = s.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    wait_for_status(&s.http, &ready, 503).await;

    proxy.restore();
    wait_for_status(&s.http, &url, 200).await;
    wait_for_status(&s.http, &ready, 200).await;
    s.stop().await;
}

async fn wait_for_status(http: &reqwest::Client, url: &str, want: u16) {
    for _ in 0..100 {
        if let Ok(r) = http.get(url).send().await {
            if r.status().as_u16() == want {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered {want}");
}

#[tokio::test]
async fn redis_down_fails_closed_and_recovers() {
    if !crate::support::backends().contains(&Backend::External) {
        eprintln!("skipped: TEST_DATABASE_URL/TEST_REDIS_URL not set (the in-process store cannot go down)");
        return;
    }
    let s = start(Backend::External, "redisdown", |_| {}).await;
    s.register("heidi").await;
    let token = s.login("heidi").await;
    let proxy = s.redis_proxy.clone().unwrap();

    proxy.cut();
    let (status, body, _) = s.get("/auth/me/", Some(&token)).await;
    assert_eq!(
        status, 503,
        "a session check without Redis must fail closed: {body}"
    );
    assert!(body["detail"].is_string());
    let (status, _, _) = s
        .post_json(
            "/auth/login/",
            &json!({"username": "heidi", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, 503);

    proxy.restore();
    let mut recovered = false;
    for _ in 0..100 {
        if s.get("/auth/me/", Some(&token)).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the platform must recover when Redis is back");
    s.stop().await;
}

#[tokio::test]
async fn swagger_ui_and_openapi_describe_the_api() {
    let s = start(Backend::Embedded, "docs", |_| {}).await;
    let resp = s.http.get(s.at("/docs/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text().await.unwrap().contains("swagger"),
        "Swagger UI page"
    );
    let (status, doc, _) = s.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in [
        "/auth/register/",
        "/auth/login/",
        "/auth/token",
        "/auth/me/",
        "/auth/logout/",
        "/scrape/",
        "/scrape/jobs/{id}",
        "/companies/{idno}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["oauth2"]["flows"]["password"]["tokenUrl"],
        "/auth/token"
    );
    s.stop().await;
}
