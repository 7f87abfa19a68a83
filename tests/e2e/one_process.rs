//! The `platform` binary as a newcomer runs it: one process, no infrastructure, data kept
//! across a restart, a clear one-line error for bad configuration, and a graceful SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PASSWORD: &str = "correct-horse-battery";

/// The binary with a clean environment: no external services, every port ephemeral.
fn platform(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_platform"));
    for var in [
        "DATABASE_URL",
        "USER_SERVICE_DATABASE_URL",
        "SCRAPER_SERVICE_DATABASE_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "ALGORITHM",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "APP_SERVICE_URLS",
        "APP_SERVICE_URL",
        "USER_SERVICE_URL",
        "SCRAPER_SERVICE_URL",
        "BOOK_SERVICE_DATABASE_URL",
        "BOOK_SERVICE_URL",
        "BOOK_SERVICE_URLS",
        "BOOK_SERVICE_BACKUP_URLS",
        "AMQP_URL",
        "CIRCULATION_SECRET",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(data_dir)
        .env("DATA_DIR", data_dir.join("data"))
        .env("GATEWAY_ADDR", "127.0.0.1:0")
        .env("APP_SERVICE_ADDR", "127.0.0.1:0")
        .env("USER_SERVICE_ADDR", "127.0.0.1:0")
        .env("SCRAPER_SERVICE_ADDR", "127.0.0.1:0")
        .env("BOOK_SERVICE_ADDR", "127.0.0.1:0")
        .env("BORROWINGS_FUNCTION_ADDR", "127.0.0.1:0")
        .env("GATEWAY_METRICS_ADDR", "off")
        .env("SCRAPER_FETCHER", "http")
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running platform and the gateway's base URL it printed.
struct Running {
    child: Child,
    url: String,
}

fn start(cmd: &mut Command) -> Running {
    let mut child = cmd.spawn().expect("spawn platform");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("API ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Running { child, url },
        Err(_) => {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "platform did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn terminate(running: &mut Running) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "platform did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let resp = http.post(url).json(&body).send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn runs_with_no_infrastructure_and_keeps_data_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();

    let mut first = start(&mut platform(dir.path()));
    let (status, body) = post(
        &http,
        &format!("{}/auth/register/", first.url),
        json!({"username": "newcomer", "email": "newcomer@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &http,
        &format!("{}/auth/login/", first.url),
        json!({"username": "newcomer", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let docs = http
        .get(format!("{}/docs/", first.url))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(terminate(&mut first).success());
    assert!(
        dir.path().join("data/users.sqlite").exists(),
        "SQLite file under DATA_DIR"
    );

    let mut second = start(&mut platform(dir.path()));
    let (status, body) = post(
        &http,
        &format!("{}/auth/login/", second.url),
        json!({"username": "newcomer", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "the user must survive a restart: {body}");
    let token = body["access_token"].as_str().unwrap();
    let me = http
        .get(format!("{}/auth/me/", second.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert!(terminate(&mut second).success());
}

#[tokio::test]
async fn set_role_from_a_second_process_ends_the_old_session_and_grants_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut running = start(&mut platform(dir.path()));
    let url = running.url.clone();
    let (status, body) = post(
        &http,
        &format!("{url}/auth/register/"),
        json!({"username": "shelver", "email": "shelver@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let login = || async {
        let (status, body) = post(
            &http,
            &format!("{url}/auth/login/"),
            json!({"username": "shelver", "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    };
    let add_title = |token: String| {
        let http = http.clone();
        let url = format!("{url}/books/");
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"title": "Germinal", "author": "Émile Zola",
                              "isbn": "978-2-07-036002-4", "copies": 1}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let old = login().await;
    assert_eq!(
        add_title(old.clone()).await,
        403,
        "a reader may not catalogue"
    );

    // A second process, with no token settings at all, against the same DATA_DIR.
    let out = platform(dir.path())
        .args(["set-role", "shelver", "librarian"])
        .output()
        .expect("run set-role");
    assert!(
        out.status.success(),
        "set-role failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("librarian"));

    // The running platform carries out the revocation the command left in the database.
    let changed = Instant::now();
    loop {
        let me = http
            .get(format!("{url}/auth/me/"))
            .bearer_auth(&old)
            .send()
            .await
            .unwrap();
        if me.status() == 401 {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_millis(2500),
            "the old token still works {:?} after set-role",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        add_title(login().await).await,
        201,
        "the new login is a librarian's"
    );
    assert!(terminate(&mut running).success());
}

/// Runs the binary with one bad setting; it must exit non-zero with one line naming `var`.
fn assert_refuses(dir: &Path, var: &str, value: &str) {
    let out = platform(dir)
        .env(var, value)
        .output()
        .expect("run platform");
    assert!(!out.status.success(), "{var}={value} must stop start-up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{var}: expected one line, got:\n{stderr}");
    assert!(
        lines[0].contains(var),
        "{var}: the line must name the variable: {}",
        lines[0]
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_configuration_stops_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_refuses(
        dir.path(),
        "DATABASE_URL",
        "postgres://nobody@127.0.0.1:1/none",
    );
    assert_refuses(dir.path(), "DATABASE_URL", "mysql://localhost/db");
    assert_refuses(dir.path(), "SECRET_KEY", "too-short");
    assert_refuses(dir.path(), "ALGORITHM", "RS256-please");
    assert_refuses(dir.path(), "BCRYPT_COST", "forty");
    assert_refuses(dir.path(), "REDIS_URL", "not a url");
    assert_refuses(dir.path(), "AMQP_URL", "amqps://broker:5671/%2f");
    assert_refuses(dir.path(), "CIRCULATION_TIMEOUT_MS", "soon");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_refuses(dir.path(), "USER_SERVICE_ADDR", &addr);
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    // bcrypt at cost 14 makes registration take about a second.
    let mut running = start(platform(dir.path()).env("BCRYPT_COST", "14"));
    let url = format!("{}/auth/register/", running.url);
    let request = tokio::spawn(async move {
        post(
            &reqwest::Client::new(),
            &url,
            json!({"username": "slowpoke", "email": "slow@example.com", "password": PASSWORD}),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::task::spawn_blocking(move || terminate(&mut running))
        .await
        .unwrap();
    let (code, body) = request.await.unwrap();
    assert_eq!(code, 201, "the in-flight request must complete: {body}");
    assert!(status.success(), "graceful exit, got {status:?}");
}
