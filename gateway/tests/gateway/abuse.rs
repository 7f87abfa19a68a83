//! Slow, greedy and malformed clients: each gets a clear JSON answer (or a prompt close),
//! never a hang, a reset instead of the answer, or a gateway that stops serving others.

use std::time::{Duration, Instant};

use common::kv::Kv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Reads one whole response (head and a `content-length` body) from a kept-alive connection.
async fn read_one_response(stream: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return parse(&buf[..end + 4 + length]);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before a whole answer: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn healthz_answers(gw: &gateway::GatewayHandle) {
    let reply = send(client().get(url(gw, "/healthz"))).await;
    assert_eq!(reply.status, 200, "the gateway still serves");
}

/// Sends the start of a request head, then one header line every 200 ms until the gateway
/// closes the connection; returns the answer and how long after the first byte it came.
async fn trickle_head(mut stream: TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    stream
        .write_all(b"GET /docs HTTP/1.1\r\nHost: gw\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for i in 0..200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let line = format!("x-slow-{i}: 1\r\n");
            if writer.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer))
        .await
        .expect("the gateway gives up on the slow head")
        .ok();
    let elapsed = started.elapsed();
    trickle.abort();
    (answer, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_trickles_in_is_cut_off_at_its_deadline_with_408_json() {
    let upstream = Upstream::start("a");
    let mut config = test_config(&[&upstream]);
    config.header_timeout = Duration::from_millis(1000);
    // Far longer than the deadline: it is the head's total time that is limited, not the
    // silence between its lines (200 ms here).
    config.client_timeout = Duration::from_secs(30);
    let gw = start(config, Kv::memory("gw-slow-head:")).await;

    let (answer, elapsed) = trickle_head(TcpStream::connect(gw.addr()).await.unwrap()).await;
    let reply = parse(&answer);
    assert_eq!(reply.status, 408);
    assert_eq!(reply.detail(), "Request timed out");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
        "cut after {elapsed:?}"
    );

    // On a kept-alive connection the deadline runs from the next request's first byte: an
    // idle pause longer than the deadline is not cut (idle connections are Pingora's
    // keep-alive timeout's business), a trickling head is.
    let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_one_response(&mut stream).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_one_response(&mut stream).await.status,
        200,
        "an idle kept-alive connection is served after a pause"
    );
    let (answer, elapsed) = trickle_head(stream).await;
    assert_eq!(parse(&answer).status, 408);
    assert!(
        elapsed < Duration::from_millis(2500),
        "cut after {elapsed:?}"
    );

    assert_eq!(
        upstream.hits(),
        0,
        "no partial request reached the upstream"
    );
    healthz_answers(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_slow_clients_are_held_to_their_limit_while_other_clients_stay_fast() {
    const LIMIT: usize = 20;
    const SLOW: usize = 60;
    let upstream = Upstream::start("a");
    let mut config = test_config(&[&upstream]);
    config.header_timeout = Duration::from_secs(2);
    config.max_connections_per_ip = LIMIT;
    config.read_timeout = Duration::from_secs(5);
    let gw = start(config, Kv::memory("gw-slow-many:")).await;
    let addr = gw.addr();

    // 127.0.0.2 opens three times its share of connections and sends half a head on each.
    let opened = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..SLOW {
        let mut stream = connect_from("127.0.0.2", addr).await;
        let _ = stream
            .write_all(b"GET /docs HTTP/1.1\r\nHost: gw\r\n")
            .await;
        readers.push(tokio::spawn(async move {
            let answer = read_to_close(&mut stream).await;
            (answer, opened.elapsed())
        }));
    }

    // Meanwhile another client (127.0.0.1) is served as usual, and fast.
    let normal = client();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let reply = send(normal.get(url(&gw, "/docs"))).await;
        assert_eq!(reply.status, 200);
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest of 20 requests while {LIMIT} slow connections were held: {slowest:?}");
    assert!(slowest < Duration::from_millis(500), "{slowest:?}");

    let mut refused = 0;
    let mut timed_out = 0;
    for reader in readers {
        let (answer, elapsed) = reader.await.unwrap();
        let reply = parse(&answer);
        match reply.status {
            429 => {
                assert_eq!(reply.detail(), "Too many connections");
                assert!(
                    elapsed < Duration::from_secs(1),
                    "refused after {elapsed:?}"
                );
                refused += 1;
            }
            408 => {
                assert!(
                    elapsed >= Duration::from_millis(1800),
                    "held only {elapsed:?}"
                );
                timed_out += 1;
            }
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    }
    assert_eq!((timed_out, refused), (LIMIT, SLOW - LIMIT));
    assert!(gw.metrics().connections_refused() >= (SLOW - LIMIT) as u64);

    // Once they are gone, the address is served again.
    eventually("127.0.0.2 is admitted again", || async {
        let mut stream = connect_from("127.0.0.2", addr).await;
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            .await;
        parse(&read_to_close(&mut stream).await).status == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_its_whole_oversized_body_before_reading_gets_413_json() {
    let upstream = Upstream::start("a");
    let kv = Kv::memory("gw-greedy:");
    let gw = start(test_config(&[&upstream]), kv.clone()).await;
    let token = login(&kv, "sid-greedy").await;
    let body = vec![b'x'; 3 * 1024 * 1024];

    // As Python's urllib does: the head, the whole body, and only then read.
    let declared = |path: &str, auth: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: gw\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
    };
    let bearer = format!("Authorization: Bearer {token}\r\n");
    for (path, auth) in [
        ("/auth/login/", ""),
        ("/books/", bearer.as_str()),
        ("/loans/", ""),
    ] {
        let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
        stream
            .write_all(declared(path, auth).as_bytes())
            .await
            .unwrap();
        stream
            .write_all(&body)
            .await
            .expect("the whole body is taken in, not cut off with a reset");
        let reply = parse(&read_to_close(&mut stream).await);
        assert_eq!(reply.status, 413, "{path}");
        assert_eq!(reply.detail(), "Request body too large");
        assert!(reply.header("x-request-id").is_some());
    }

    // Chunked, no declared length: refused once the limit is crossed, mid-stream.
    let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /auth/register/ HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    for chunk in body.chunks(64 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        stream
            .write_all(&framed)
            .await
            .expect("the whole chunked body is taken in");
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let reply = parse(&read_to_close(&mut stream).await);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.detail(), "Request body too large");

    // A protected route without a token, with a body: refused with 401, also read in full.
    let small = vec![b'x'; 512];
    let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /loans/ HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\r\n",
                small.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(&small).await.unwrap();
    let reply = parse(&read_to_close(&mut stream).await);
    assert_eq!(reply.status, 401);

    assert_eq!(upstream.hits(), 0);
    healthz_answers(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_and_oversized_heads_get_431_json_and_the_gateway_stays_healthy() {
    let upstream = Upstream::start("a");
    let gw = start(test_config(&[&upstream]), Kv::memory("gw-flood:")).await;

    let head_with = |headers: &str| format!("GET /docs HTTP/1.1\r\nHost: gw\r\n{headers}\r\n");
    let flood: String = (0..5000).map(|i| format!("x-flood-{i}: v\r\n")).collect();
    let huge = format!("x-huge: {}\r\n", "a".repeat(64 * 1024));
    for (what, headers) in [("5000 headers", flood), ("a 64 KiB header", huge)] {
        let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
        stream
            .write_all(head_with(&headers).as_bytes())
            .await
            .expect("the whole head is taken in");
        let reply = parse(&read_to_close(&mut stream).await);
        assert_eq!(reply.status, 431, "{what}");
        assert_eq!(reply.detail(), "Request header fields too large", "{what}");
    }
    assert_eq!(upstream.hits(), 0);

    // Within the limits (100 headers, 32 KiB): served.
    let many: String = (0..90).map(|i| format!("x-many-{i}: v\r\n")).collect();
    let big = format!("x-big: {}\r\n", "a".repeat(20 * 1024));
    for headers in [many, big] {
        let request = head_with(&format!("{headers}Connection: close\r\n"));
        assert_eq!(raw(gw.addr(), request.as_bytes()).await.status, 200);
    }

    // A head that is not HTTP at all: Pingora's own 400 (empty body), and a closed connection.
    let mut stream = TcpStream::connect(gw.addr()).await.unwrap();
    stream
        .write_all(b"\x16\x03\x01garbage\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    healthz_answers(&gw).await;
}
