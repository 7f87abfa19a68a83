//! The library's routes: each group reaches its upstream, everything is protected;
//! book-service's primary instances with a true backup group; retries of idempotent
//! requests; server-sent events streamed through unbuffered.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::kv::Kv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_routes_reach_their_upstream_groups_and_all_need_a_token() {
    let app = Upstream::start("app");
    let books = Upstream::start("books");
    let function = Upstream::start("borrowings");
    let mut config = test_config(&[&app]);
    config.book_service = vec![books.url()];
    config.borrowings = vec![function.url()];
    let kv = Kv::memory("gw-library:");
    let gw = start(config, kv.clone()).await;

    let protected = [
        "/books/",
        "/books/42",
        "/books/unknown/deep/path",
        "/user/borrowings/",
        "/loans/",
        "/holds/",
        "/users/",
        "/notifications/",
        "/notifications/stream",
    ];
    for path in protected {
        let reply = send(client().get(url(&gw, path))).await;
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{path}");
    }
    assert_eq!(app.hits() + books.hits() + function.hits(), 0);

    let token = login(&kv, "sid-library").await;
    let cases = [
        ("/books/?q=dune&available=true", "books"),
        ("/books/42", "books"),
        ("/books/unknown/deep/path", "books"),
        ("/user/borrowings/?user_id=3", "borrowings"),
        ("/loans/?active=true", "app"),
        ("/holds/3", "app"),
        ("/users/", "app"),
        ("/notifications/", "app"),
    ];
    for (path, instance) in cases {
        let reply = send(client().get(url(&gw, path)).bearer_auth(&token)).await;
        assert_eq!((reply.status, reply.instance()), (200, instance), "{path}");
        let (want_path, want_query) = path.split_once('?').unwrap_or((path, ""));
        assert_eq!(reply.body["path"], want_path, "forwarded unchanged");
        assert_eq!(reply.body["query"].as_str().unwrap_or(""), want_query);
    }

    // Look-alikes and traversal are not routed anywhere.
    for path in [
        "/user/me",
        "/user/borrowingsx",
        "/bookss",
        "/books/../auth/login",
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            raw(gw.addr(), request.as_bytes()).await.status,
            404,
            "{path}"
        );
    }
}

/// The instance that answers `GET /books/`.
async fn book_instance(gw: &gateway::GatewayHandle, token: &str) -> (u16, String) {
    let reply = send(client().get(url(gw, "/books/")).bearer_auth(token)).await;
    (reply.status, reply.instance().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_go_to_the_backup_only_while_no_primary_is_healthy_and_return() {
    let mut primary_1 = Upstream::start("primary-1");
    let mut primary_2 = Upstream::start("primary-2");
    let backup = Upstream::start("backup");
    let app = Upstream::start("app");
    let mut config = test_config(&[&app]);
    config.book_service = vec![primary_1.url(), primary_2.url()];
    config.book_service_backup = vec![backup.url()];
    let interval = config.health_check_interval;
    let kv = Kv::memory("gw-backup:");
    let gw = start(config, kv.clone()).await;
    let token = login(&kv, "sid-backup").await;

    // Primaries healthy: they share the load, the backup gets nothing.
    let mut seen = HashSet::new();
    for _ in 0..12 {
        let (status, instance) = book_instance(&gw, &token).await;
        assert_eq!(status, 200);
        seen.insert(instance);
    }
    assert_eq!(
        seen,
        HashSet::from(["primary-1".to_owned(), "primary-2".to_owned()])
    );
    assert_eq!(backup.hits(), 0);

    // Every primary down: the backup serves within one health-check interval (a request
    // caught in between may find both primaries refusing: 503).
    primary_1.kill().await;
    primary_2.kill().await;
    let down = Instant::now();
    loop {
        let (status, instance) = book_instance(&gw, &token).await;
        if (status, instance.as_str()) == (200, "backup") {
            break;
        }
        assert_eq!(status, 503, "{instance}");
        assert!(
            down.elapsed() < interval * 20,
            "no failover after {:?}",
            down.elapsed()
        );
    }
    let failover = down.elapsed();
    eprintln!("backup serving {failover:?} after the primaries died (interval {interval:?})");
    assert!(failover < interval * 5, "{failover:?}");
    for _ in 0..5 {
        assert_eq!(book_instance(&gw, &token).await, (200, "backup".to_owned()));
    }

    // A primary back: traffic returns to it, the backup is idle again.
    primary_1.revive().await;
    let (gw_ref, token_ref) = (&gw, token.as_str());
    eventually("traffic returns to the primary", || async move {
        book_instance(gw_ref, token_ref).await == (200, "primary-1".to_owned())
    })
    .await;
    let backup_hits = backup.hits();
    for _ in 0..10 {
        assert_eq!(
            book_instance(&gw, &token).await,
            (200, "primary-1".to_owned())
        );
    }
    assert_eq!(backup.hits(), backup_hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_request_whose_instance_drops_the_connection_is_retried_elsewhere() {
    let dropper = Dropper::start().await;
    let good = Upstream::start("good");
    let app = Upstream::start("app");
    let mut config = test_config(&[&app]);
    config.book_service = vec![dropper.url(), good.url()];
    let kv = Kv::memory("gw-retry:");
    let gw = start(config, kv.clone()).await;
    let token = login(&kv, "sid-retry").await;

    // GET and PUT (with a body) may be repeated: every one is answered by the good instance,
    // though round robin sends about half of them to the dropper first.
    for i in 0..10 {
        let req = if i % 2 == 0 {
            client().get(url(&gw, "/books/1"))
        } else {
            client()
                .put(url(&gw, "/books/1"))
                .body(r#"{"title":"Dune"}"#)
        };
        let reply = send(req.bearer_auth(&token)).await;
        assert_eq!(
            (reply.status, reply.instance()),
            (200, "good"),
            "request {i}"
        );
    }
    assert!(
        dropper.hits() >= 3,
        "the dropper was tried: {}",
        dropper.hits()
    );
    assert_eq!(good.hits(), 10);

    // POST may not be repeated: one that reached the dropper fails with 502, never retried.
    let (dropped_before, good_before) = (dropper.hits(), good.hits());
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let reply = send(
            client()
                .post(url(&gw, "/books/"))
                .bearer_auth(&token)
                .body(r#"{"title":"Dune"}"#),
        )
        .await;
        statuses.push(reply.status);
    }
    let failed = statuses.iter().filter(|s| **s == 502).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 502),
        "{statuses:?}"
    );
    assert!(failed > 0, "{statuses:?}");
    assert_eq!(
        dropper.hits() - dropped_before,
        failed,
        "each failed POST was sent once"
    );
    assert_eq!(good.hits() - good_before, 10 - failed);
}

/// Reads from `stream` into `seen` until it contains `wanted` (at most `within`).
async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, wanted: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(seen).contains(wanted) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{wanted:?} did not arrive; got {:?}",
                    String::from_utf8_lossy(seen)
                )
            })
            .unwrap();
        assert!(n > 0, "closed; got {:?}", String::from_utf8_lossy(seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_reach_the_client_as_they_are_sent() {
    let app = Upstream::start("app");
    let kv = Kv::memory("gw-sse:");
    let gw = start(test_config(&[&app]), kv.clone()).await;
    let token = login(&kv, "sid-sse").await;

    let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
    let request = format!(
        "GET /notifications/stream HTTP/1.1\r\nHost: gw\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    // The upstream holds the second event back until the first has been received: a
    // buffering gateway would deliver neither in time.
    read_until(&mut stream, &mut seen, "data: one", Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(!text.contains("data: two"));
    app.state.release.notify_one();
    read_until(&mut stream, &mut seen, "data: two", Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_event_stream_with_keep_alive_comments_outlives_the_read_timeout() {
    let app = Upstream::start("app");
    let mut config = test_config(&[&app]);
    // The stream lasts three times this, with a comment every 300 ms (in production: a
    // comment every 15 s against 30 s).
    config.read_timeout = Duration::from_millis(700);
    let kv = Kv::memory("gw-sse-long:");
    let gw = start(config, kv.clone()).await;
    let token = login(&kv, "sid-sse-long").await;

    let started = Instant::now();
    let resp = client()
        .get(url(&gw, "/notifications/keepalive"))
        .bearer_auth(&token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp
        .text()
        .await
        .expect("the stream ends normally, not cut");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(text.matches(": keep-alive").count(), 7, "{text}");
    assert!(text.ends_with("data: done\n\n"), "{text}");
}
