//! The gateway in front of one or two app-service instances: routing, tokens and sessions,
//! limits, failures, metrics and shutdown.

use std::time::{Duration, Instant};

use common::auth::{Role, SessionData, Sessions};
use common::kv::Kv;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Routing and public routes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_route_is_forwarded_without_a_token_and_never_with_a_client_identity() {
    let upstream = Upstream::start("a");
    let gw = start(test_config(&[&upstream]), Kv::memory("gw-test:")).await;

    let reply = send(
        client()
            .post(url(&gw, "/auth/login/"))
            .header("x-user-id", "1")
            .header("x-user-role", "admin")
            .json(&json!({"username": "alice", "password": "pw"})),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["path"], "/auth/login/");
    assert_eq!(reply.body["method"], "POST");
    assert!(reply.body["body_len"].as_u64().unwrap() > 0);
    assert_eq!(reply.upstream_saw("x-user-id"), None);
    assert_eq!(reply.upstream_saw("x-user-role"), None);
    // A request id is generated, sent upstream and returned.
    let id = reply
        .header("x-request-id")
        .expect("x-request-id on the response");
    assert_eq!(id.len(), 36);
    assert_eq!(reply.upstream_saw("x-request-id"), Some(id));

    for path in [
        "/docs",
        "/docs/",
        "/openapi.json",
        "/auth/register",
        "/auth/token",
    ] {
        assert_eq!(
            send(client().get(url(&gw, path))).await.status,
            200,
            "{path}"
        );
    }
    assert_eq!(upstream.hits(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_traversal_are_refused_without_touching_the_upstream() {
    let upstream = Upstream::start("a");
    let gw = start(test_config(&[&upstream]), Kv::memory("gw-test:")).await;

    let reply = send(client().get(url(&gw, "/nowhere"))).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.detail(), "Not Found");
    assert!(reply.header("x-request-id").is_some());

    let health = send(client().get(url(&gw, "/healthz"))).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );

    for path in [
        "/auth/register/../me",
        "/auth/register/%2e%2e/me",
        "/auth/login/..%2fme",
        "/docs/../auth/me",
        "/auth/register//me",
        "/auth/register%2f..%2fme",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        let reply = raw(gw.addr(), request.as_bytes()).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.detail(), "Not Found", "{path}");
    }
    // The same path without traversal is protected, not public.
    let reply = raw(
        gw.addr(),
        b"GET /auth/register/me HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(upstream.hits(), 0);
}

// ---------------------------------------------------------------------------------------------
// Tokens and sessions, against every session store.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_route_without_a_token_gets_401_and_the_upstream_is_not_hit() {
    let upstream = Upstream::start("a");
    let gw = start(test_config(&[&upstream]), Kv::memory("gw-test:")).await;

    let reply = send(client().get(url(&gw, "/auth/me/"))).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.detail(), "Not authenticated");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));

    let reply = send(
        client()
            .post(url(&gw, "/scrape/"))
            .header("authorization", "Basic YTpi"),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));

    let reply = send(
        client()
            .get(url(&gw, "/companies/1008600038413"))
            .bearer_auth("garbage"),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.detail(), "Invalid token");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_is_forwarded_and_no_identity_header_reaches_the_upstream() {
    for kv in test_support::key_values("gw-identity").await {
        let upstream = Upstream::start("a");
        let gw = start(test_config(&[&upstream]), kv.clone()).await;
        let token = login(&kv, "sid-1").await;

        let reply = send(
            client()
                .get(url(&gw, "/auth/me/?x=1"))
                .bearer_auth(&token)
                .header("x-user-id", "999")
                .header("x_user_id", "999")
                .header("x-username", "mallory")
                .header("x-user-role", "admin")
                .header("x_user-role", "admin")
                .header("x-session-id", "other")
                .header("x-forwarded-for", "203.0.113.9")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
        )
        .await;
        let backend = kv.backend_name();
        assert_eq!(reply.status, 200, "{backend}");
        // The token is the only identity the upstream gets: it verifies it itself.
        for name in [
            "x-user-id",
            "x_user_id",
            "x-username",
            "x-user-role",
            "x_user-role",
            "x-session-id",
        ] {
            assert_eq!(reply.upstream_saw(name), None, "{name} ({backend})");
        }
        assert_eq!(reply.upstream_saw("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(
            reply.upstream_saw("traceparent"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let expected_auth = format!("Bearer {token}");
        assert_eq!(
            reply.upstream_saw("authorization"),
            Some(expected_auth.as_str())
        );
        assert_eq!(upstream.hits(), 1);
        Sessions::new(kv).revoke("sid-1").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_never_reach_the_upstream() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for kv in test_support::key_values("gw-refused").await {
        let upstream = Upstream::start("a");
        let gw = start(test_config(&[&upstream]), kv.clone()).await;
        let token = login(&kv, "sid-2").await;
        let parts: Vec<&str> = token.split('.').collect();

        let mut admin = claims("sid-2", 600);
        admin.role = "admin".into();
        let altered = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(serde_json::to_vec(&admin).unwrap()),
            parts[2]
        );
        let alg_none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(serde_json::to_vec(&claims("sid-2", 600)).unwrap())
        );
        let expired = sign(&claims("sid-2", -600));
        let mut foreign = claims("sid-2", 600);
        foreign.aud = "another-platform".into();
        let wrong_audience = sign(&foreign);
        let other_key = encode(
            &Header::new(Algorithm::HS256),
            &claims("sid-2", 600),
            &EncodingKey::from_secret(b"some-other-secret-some-other-secret!"),
        )
        .unwrap();
        let unknown_session = sign(&claims("never-created", 600));

        let cases = [
            ("altered claims", altered, "Invalid token"),
            ("alg none", alg_none, "Invalid token"),
            ("expired", expired, "Token has expired"),
            ("wrong audience", wrong_audience, "Invalid token"),
            ("other key", other_key, "Invalid token"),
            ("unknown session", unknown_session, "Session has ended"),
        ];
        for (what, bad, detail) in cases {
            let reply = send(client().get(url(&gw, "/auth/me/")).bearer_auth(&bad)).await;
            assert_eq!(reply.status, 401, "{what} ({})", kv.backend_name());
            assert_eq!(reply.detail(), detail, "{what}");
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Bearer error=\"invalid_token\""),
                "{what}"
            );
        }
        assert_eq!(upstream.hits(), 0);

        // The genuine token works until its session ends (logout), then never again.
        assert_eq!(
            send(client().get(url(&gw, "/auth/me/")).bearer_auth(&token))
                .await
                .status,
            200
        );
        Sessions::new(kv.clone()).revoke("sid-2").await.unwrap();
        // With Redis the gateway hears of the end by its announcement (see the session cache
        // test below for how fast); from then on the upstream is never reached again.
        let me = url(&gw, "/auth/me/");
        eventually("the ended session is refused", || {
            let (me, token) = (me.clone(), token.clone());
            async move { send(client().get(me).bearer_auth(token)).await.status == 401 }
        })
        .await;
        let hits = upstream.hits();
        let reply = send(client().get(url(&gw, "/auth/me/")).bearer_auth(&token)).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.detail(), "Session has ended");
        assert_eq!(upstream.hits(), hits);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cache_is_kept_fresh_by_announcements_logouts_and_the_feed() {
    let Some(redis_url) = test_support::redis_url() else {
        eprintln!("TEST_REDIS_URL not set: the session cache (Redis only) is not exercised");
        return;
    };
    let (proxy, kv) = test_support::redis_behind_proxy(&redis_url, "gw-cache").await;
    let upstream = Upstream::start("a");
    let mut config = test_config(&[&upstream]);
    // Far longer than any wait below: whatever is refused was evicted, not expired.
    config.session_cache_ttl = Duration::from_secs(60);
    let gw = start(config, kv.clone()).await;
    let me = url(&gw, "/auth/me/");
    let get_me = |token: String| {
        let me = me.clone();
        async move { send(client().get(me).bearer_auth(token)).await }
    };

    // Once the feed is subscribed, a live session is remembered: removing it from the store
    // without an announcement goes unnoticed (this is what the cache saves: the lookup).
    eventually("a live session is served from the cache", || {
        let kv = kv.clone();
        async move {
            let token = login(&kv, "sid-c1").await;
            let first = get_me(token.clone()).await.status;
            kv.del("session:sid-c1").await.unwrap();
            first == 200 && get_me(token).await.status == 200
        }
    })
    .await;

    // An announced end (any service's revoke) evicts it long before the TTL.
    let token = login(&kv, "sid-c2").await;
    assert_eq!(get_me(token.clone()).await.status, 200);
    let revoked = Instant::now();
    Sessions::new(kv.clone()).revoke("sid-c2").await.unwrap();
    eventually("the announced end is heard", || {
        let token = token.clone();
        async move { get_me(token).await.status == 401 }
    })
    .await;
    assert!(
        revoked.elapsed() < Duration::from_secs(2),
        "{:?}",
        revoked.elapsed()
    );

    // A logout relayed by this gateway evicts at once, even if no announcement ever came.
    let token = login(&kv, "sid-c3").await;
    assert_eq!(get_me(token.clone()).await.status, 200);
    kv.del("session:sid-c3").await.unwrap();
    assert_eq!(get_me(token.clone()).await.status, 200, "still cached");
    let logout = send(client().post(url(&gw, "/auth/logout/")).bearer_auth(&token)).await;
    assert_eq!(logout.status, 200);
    let reply = get_me(token.clone()).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.detail(), "Session has ended");

    // Without the feed nothing is served from memory: the store is asked, and it is down.
    let token = login(&kv, "sid-c4").await;
    assert_eq!(get_me(token.clone()).await.status, 200);
    proxy.cut();
    eventually("a lost feed turns the cache off", || {
        let token = token.clone();
        async move { get_me(token).await.status == 503 }
    })
    .await;
    proxy.restore();
    eventually("sessions are checked again", || {
        let token = token.clone();
        async move { get_me(token).await.status == 200 }
    })
    .await;
    Sessions::new(kv).revoke("sid-c4").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_session_store_fails_closed_and_recovers() {
    let Some(redis_url) = test_support::redis_url() else {
        eprintln!("TEST_REDIS_URL not set: the Redis outage case is not exercised");
        return;
    };
    let (proxy, kv) = test_support::redis_behind_proxy(&redis_url, "gw-kv-down").await;
    let upstream = Upstream::start("a");
    let gw = start(test_config(&[&upstream]), kv.clone()).await;
    let token = login(&kv, "sid-3").await;
    assert_eq!(
        send(client().get(url(&gw, "/scrape/jobs/1")).bearer_auth(&token))
            .await
            .status,
        200
    );

    proxy.cut();
    // The cut also ends the gateway's subscription to ended sessions, which turns its session
    // cache off (at once, in practice; the poll allows for the notice to arrive).
    let (jobs, bearer) = (url(&gw, "/scrape/jobs/1"), token.clone());
    eventually("the store outage is noticed", || {
        let (jobs, bearer) = (jobs.clone(), bearer.clone());
        async move { send(client().get(jobs).bearer_auth(bearer)).await.status == 503 }
    })
    .await;
    let hits = upstream.hits();
    let reply = send(client().get(url(&gw, "/scrape/jobs/1")).bearer_auth(&token)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.detail(), "Session store unavailable");
    assert_eq!(
        upstream.hits(),
        hits,
        "nothing is forwarded while sessions cannot be checked"
    );
    // A token that is invalid by itself is refused without the store.
    assert_eq!(
        send(
            client()
                .get(url(&gw, "/scrape/jobs/1"))
                .bearer_auth("a.b.c")
        )
        .await
        .status,
        401
    );

    proxy.restore();
    let (gw_url, token) = (url(&gw, "/scrape/jobs/1"), token.clone());
    eventually("sessions are checked again", || {
        let (gw_url, token) = (gw_url.clone(), token.clone());
        async move { send(client().get(gw_url).bearer_auth(token)).await.status == 200 }
    })
    .await;
    Sessions::new(kv).revoke("sid-3").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_keys_come_from_the_jwks_and_protected_routes_wait_for_them() {
    const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID0G11wSXZDwtjLjeQZVihRgj1tECVtzekTw4dWzjgrK\n-----END PRIVATE KEY-----\n";
    const PUBLIC_X: &str = "2n8_tpwFV4Zjo4OzddhxO1ISRp99cqyLKfH_TgF_R8g";
    let upstream = Upstream::start("a");
    let kv = Kv::memory("gw-eddsa:");
    let mut settings = hmac_settings();
    settings.algorithm = Algorithm::EdDSA;
    settings.secret = None;
    let mut config = test_config(&[&upstream]);
    config.tokens = settings;
    config.jwks_url = format!("{}/.well-known/jwks.json", upstream.url());
    let gw = start(config, kv.clone()).await;

    let data = SessionData {
        user_id: 7,
        username: "alice".into(),
        email: "a@example.com".into(),
        role: Role::User,
    };
    Sessions::new(kv.clone())
        .create("sid-ed", &data, Duration::from_secs(60))
        .await
        .unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let token = encode(
        &header,
        &claims("sid-ed", 600),
        &EncodingKey::from_ed_pem(PRIVATE_PEM.as_bytes()).unwrap(),
    )
    .unwrap();

    // The issuer's JWKS does not answer yet: fail closed.
    let reply = send(client().get(url(&gw, "/auth/me/")).bearer_auth(&token)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.detail(), "Authentication unavailable");
    assert_eq!(upstream.hits(), 0);

    *upstream.state.jwks.lock().unwrap() = Some(json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": PUBLIC_X, "kid": "k1", "alg": "EdDSA", "use": "sig"}
    ]}));
    let gw_url = url(&gw, "/auth/me/");
    eventually("the JWKS is fetched and the token accepted", || {
        let (gw_url, token) = (gw_url.clone(), token.clone());
        async move { send(client().get(gw_url).bearer_auth(token)).await.status == 200 }
    })
    .await;
    // HMAC tokens are not accepted by an EdDSA gateway (algorithm allow-list).
    let reply = send(
        client()
            .get(url(&gw, "/auth/me/"))
            .bearer_auth(sign(&claims("sid-ed", 600))),
    )
    .await;
    assert_eq!(reply.status, 401);
}

// ---------------------------------------------------------------------------------------------
// Limits, timeouts and request ids.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_json() {
    let upstream = Upstream::start("a");
    let kv = Kv::memory("gw-body:");
    let gw = start(test_config(&[&upstream]), kv.clone()).await;
    let token = login(&kv, "sid-4").await;

    // Declared length over the limit: refused before anything is forwarded.
    let reply = send(
        client()
            .post(url(&gw, "/scrape/"))
            .bearer_auth(&token)
            .body(vec![b'x'; 2000]),
    )
    .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.detail(), "Request body too large");
    assert_eq!(upstream.hits(), 0);

    // Within the limit: forwarded whole.
    let reply = send(
        client()
            .post(url(&gw, "/scrape/"))
            .bearer_auth(&token)
            .body(vec![b'x'; 1000]),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["body_len"], 1000);

    // Chunked, no declared length: counted as it streams.
    let chunk = "x".repeat(600);
    let request = format!(
        "POST /auth/register/ HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let reply = raw(gw.addr(), request.as_bytes()).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.detail(), "Request body too large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_gets_504_json_not_a_hang() {
    let upstream = Upstream::start("a");
    let gw = start(test_config(&[&upstream]), Kv::memory("gw-slow:")).await;
    let started = Instant::now();
    let reply = send(client().get(url(&gw, "/docs/slow"))).await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.detail(), "Upstream timed out");
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "answered after {:?}",
        started.elapsed()
    );
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_sending_its_body_gets_408_json() {
    let upstream = Upstream::start("a");
    let mut config = test_config(&[&upstream]);
    config.client_timeout = Duration::from_millis(300);
    config.read_timeout = Duration::from_secs(5);
    let gw = start(config, Kv::memory("gw-client-timeout:")).await;
    let started = Instant::now();
    // Promises 100 bytes, sends 3, then waits (the connection stays open for writing).
    let mut stream = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    stream
        .write_all(b"POST /auth/login/ HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("the gateway gives up on the client")
        .ok();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.ends_with(r#"{"detail":"Request timed out"}"#),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_from_clients_are_kept_when_safe_and_replaced_otherwise() {
    let upstream = Upstream::start("a");
    let gw = start(test_config(&[&upstream]), Kv::memory("gw-rid:")).await;

    let reply = send(
        client()
            .get(url(&gw, "/docs"))
            .header("x-request-id", "client-id_42"),
    )
    .await;
    assert_eq!(reply.header("x-request-id"), Some("client-id_42"));
    assert_eq!(reply.upstream_saw("x-request-id"), Some("client-id_42"));

    let long = "a".repeat(65);
    for bad in [long.as_str(), "has space", "semi;colon"] {
        let reply = send(client().get(url(&gw, "/docs")).header("x-request-id", bad)).await;
        let id = reply.header("x-request-id").unwrap().to_owned();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36);
        assert_eq!(reply.upstream_saw("x-request-id"), Some(id.as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream failures, load balancing and recovery.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_answers_503_json_and_the_gateway_recovers_by_itself() {
    let mut upstream = Upstream::start("a");
    let mut config = test_config(&[&upstream]);
    config.metrics_listen = Some("127.0.0.1:0".into());
    let gw = start(config, Kv::memory("gw-down:")).await;
    assert_eq!(send(client().get(url(&gw, "/docs"))).await.status, 200);
    let metrics = format!("http://{}/metrics", gw.metrics_addr().unwrap());
    let upstream_addr = upstream.addr;
    let health_is = |value: u8| {
        let (metrics, line) = (
            metrics.clone(),
            format!(
                "gateway_upstream_healthy{{service=\"gateway\",pool=\"app\",upstream=\"{upstream_addr}\"}} {value}"
            ),
        );
        move || {
            let (metrics, line) = (metrics.clone(), line.clone());
            async move {
                client()
                    .get(metrics)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
                    .contains(&line)
            }
        }
    };

    upstream.kill().await;
    // One client for all: its kept-alive connection must not be reused after an error answer.
    let same_client = client();
    for _ in 0..3 {
        let reply = send(same_client.get(url(&gw, "/docs"))).await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.detail(), "Service unavailable");
    }
    // The health check marks it down: requests are refused at once, the gateway stays healthy.
    eventually("the health check marks the instance down", health_is(0)).await;
    let reply = send(client().get(url(&gw, "/openapi.json"))).await;
    assert_eq!((reply.status, reply.detail()), (503, "Service unavailable"));
    assert_eq!(send(client().get(url(&gw, "/healthz"))).await.status, 200);

    // Back on the same port: the health check notices, and requests flow again.
    upstream.revive().await;
    eventually("the health check marks the instance up", health_is(1)).await;
    let reply = send(client().get(url(&gw, "/openapi.json"))).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_load_is_shared_and_a_dead_one_is_retried_around() {
    let a = Upstream::start("a");
    let mut b = Upstream::start("b");
    let mut config = test_config(&[&a, &b]);
    // Slow health checks, so that it is the retry (not the health check) that avoids `b`.
    config.health_check_interval = Duration::from_secs(60);
    let gw = start(config, Kv::memory("gw-lb:")).await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        let reply = send(client().get(url(&gw, "/docs"))).await;
        assert_eq!(reply.status, 200);
        seen.push(reply.body["instance"].as_str().unwrap().to_owned());
    }
    assert!(
        seen.iter().any(|i| i == "a") && seen.iter().any(|i| i == "b"),
        "round robin: {seen:?}"
    );

    b.kill().await;
    let before = a.hits();
    for i in 0..6 {
        let req = if i % 2 == 0 {
            client().get(url(&gw, "/docs"))
        } else {
            client()
                .post(url(&gw, "/auth/login/"))
                .json(&json!({"n": i}))
        };
        let reply = send(req).await;
        assert_eq!(reply.status, 200, "request {i}");
        assert_eq!(reply.body["instance"], "a");
    }
    assert_eq!(a.hits() - before, 6);
}

// ---------------------------------------------------------------------------------------------
// Metrics and shutdown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener() {
    let upstream = Upstream::start("a");
    let mut config = test_config(&[&upstream]);
    config.metrics_listen = Some("127.0.0.1:0".into());
    let gw = start(config, Kv::memory("gw-metrics:")).await;
    send(client().get(url(&gw, "/docs"))).await;
    send(client().get(url(&gw, "/auth/me"))).await;

    let metrics_addr = gw.metrics_addr().expect("metrics listener");
    let text = client()
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"http_requests_total{service="gateway",route="docs",method="GET",status="200"} 1"#,
        r#"http_requests_total{service="gateway",route="auth",method="GET",status="401"} 1"#,
        r#"http_request_duration_seconds_count{service="gateway",route="docs",method="GET",status="200"} 1"#,
        r#"gateway_requests_in_flight{service="gateway"} 0"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let healthy = format!(
        r#"gateway_upstream_healthy{{service="gateway",pool="app",upstream="{}"}} 1"#,
        upstream.addr
    );
    assert!(text.contains(&healthy), "{healthy} in {text}");
    assert_eq!(
        gw.metrics()
            .count(gateway::routing::Group::Auth, &http::Method::GET, 401),
        1
    );
    // Not on the public listener.
    assert_eq!(send(client().get(url(&gw, "/metrics"))).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_lets_requests_in_flight_finish_and_refuses_new_ones() {
    let upstream = Upstream::start("a");
    let mut config = test_config(&[&upstream]);
    config.read_timeout = Duration::from_secs(5);
    let gw = start(config, Kv::memory("gw-stop:")).await;
    let addr = gw.addr();

    let slow = tokio::spawn(send(client().get(url(&gw, "/docs/slow"))));
    eventually("the slow request reached the upstream", || async {
        upstream.hits() == 1
    })
    .await;
    let started = Instant::now();
    let stopping = tokio::spawn(gw.stop());
    let reply = slow.await.unwrap();
    assert_eq!(reply.status, 200, "the request in flight completes");
    stopping.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped after the request, not the grace period"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_address_is_a_startup_error_naming_the_variable() {
    let upstream = Upstream::start("a");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config(&[&upstream]);
    config.listen = taken.local_addr().unwrap().to_string();
    let error =
        tokio::task::spawn_blocking(move || gateway::start(config, Kv::memory("gw-taken:")))
            .await
            .unwrap()
            .err()
            .expect("the port is taken");
    assert!(
        error
            .to_string()
            .starts_with("GATEWAY_ADDR: cannot listen on"),
        "{error}"
    );
}

// A current-thread runtime, as most clients' tests use: this is where a connection kept alive
// after an error answer used to be reused and reset.
#[tokio::test]
async fn an_upstream_that_drops_connections_gets_json_errors_on_a_reused_client() {
    let upstream = Upstream::start("a");
    // Accepts connections, then drops them without a response once cut.
    let proxy = test_support::CuttableProxy::start(upstream.addr.to_string()).await;
    let mut config = test_config(&[&upstream]);
    config.upstreams = vec![format!("http://{}", proxy.addr())];
    let gw = start(config, Kv::memory("gw-cut:")).await;
    let same_client = client();
    assert_eq!(send(same_client.get(url(&gw, "/docs"))).await.status, 200);

    proxy.cut();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        // `send` fails the test on a transport error (e.g. a connection reset).
        let reply = send(same_client.get(url(&gw, "/docs"))).await;
        assert!(reply.detail().len() > 1, "JSON detail: {:?}", reply.body);
        statuses.push(reply.status);
        if reply.status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        statuses.iter().all(|s| *s == 502 || *s == 503),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&503),
        "the health check takes it out: {statuses:?}"
    );

    proxy.restore();
    let gw_url = url(&gw, "/docs");
    eventually("served again", || {
        let (client, gw_url) = (same_client.clone(), gw_url.clone());
        async move { send(client.get(gw_url)).await.status == 200 }
    })
    .await;
}
