//! The load side of the fault drills (`scripts/chaos.sh`): a stand-in for openmoney.md and a
//! mixed load through the gateway, every request and every acknowledged write recorded.
//!
//! ```text
//! chaos_load OUT_DIR GATEWAY_URL
//! ```
//!
//! 1. Serves the server-rendered openmoney fixture (the scraper's test site) on 127.0.0.1 and
//!    writes its base URL to `OUT_DIR/site.url`; keeps serving it until the process ends.
//! 2. Waits for `OUT_DIR/go` (the script has started the platform and made `chaos_librarian`,
//!    password `CHAOS_PASSWORD`, a librarian), catalogues the titles, then runs
//!    `CHAOS_WORKERS` (4) readers, each in a loop: register, log in, `me`, scrape, search the
//!    catalogue, borrow (with an Idempotency-Key, retried with the same key), list borrowings
//!    (the function), return, log out. One more task replays logged-out tokens all along: each
//!    must get 401 (or 503 while the session store is down), never a 2xx.
//! 3. Stops when `OUT_DIR/stop` appears, and goes on serving the site (the scraper finishes its
//!    jobs while `chaos_report` checks) until it is killed.
//!
//! Records (JSON lines, epoch milliseconds): `requests.jsonl` — one line per request;
//! `writes.jsonl` — every acknowledged write (201 registration, accepted scrape job, 201 loan)
//! and every borrow whose outcome stayed unknown after its retries.

#[allow(dead_code)]
#[path = "../scraper-service/tests/support/fixture.rs"]
mod fixture;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fixture::{FixtureCompany, FixtureSite, Render};
use rand::Rng;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The companies the stand-in knows; the load also asks for a few it does not.
const KNOWN_COMPANIES: usize = 12;
/// Titles catalogued, each with enough copies that no reader ever waits for one.
const TITLES: usize = 8;
const COPIES: u32 = 100;
/// Logged-out tokens kept for replaying.
const REPLAY_POOL: usize = 256;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn idno(n: usize) -> String {
    api::scrape::Idno::from_stem(&format!("{:012}", 100_860_003_000 + n)).to_string()
}

fn isbn(n: usize) -> String {
    api::library::Isbn::from_stem(&format!("{:012}", 978_207_100_000 + n))
        .as_str()
        .to_owned()
}

/// One line of `requests.jsonl` or `writes.jsonl`.
enum Record {
    Request(Value),
    Write(Value),
}

/// Where records go: a writer task appends them as they come.
#[derive(Clone)]
struct Recorder(mpsc::UnboundedSender<Record>);

impl Recorder {
    fn start(dir: &Path) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (requests, writes) = (dir.join("requests.jsonl"), dir.join("writes.jsonl"));
        let task = tokio::spawn(async move {
            let mut requests = tokio::fs::File::create(requests).await.expect("requests");
            let mut writes = tokio::fs::File::create(writes).await.expect("writes");
            while let Some(record) = rx.recv().await {
                let (file, line) = match record {
                    Record::Request(v) => (&mut requests, v),
                    Record::Write(v) => (&mut writes, v),
                };
                let mut text = line.to_string();
                text.push('\n');
                file.write_all(text.as_bytes()).await.expect("record");
            }
            requests.flush().await.expect("flush");
            writes.flush().await.expect("flush");
        });
        (Self(tx), task)
    }

    fn write(&self, value: Value) {
        let _ = self.0.send(Record::Write(value));
    }
}

/// An answer: the status (0 when no HTTP answer came) and the JSON body (null if none).
struct Answer {
    status: u16,
    body: Value,
}

/// Sends requests to the gateway and records each one.
#[derive(Clone)]
struct Driver {
    http: Client,
    base: String,
    rec: Recorder,
}

impl Driver {
    /// Sends one request; `ok` lists the statuses that count as success for `op`.
    /// `protected` marks requests that need a live session (fail-closed accounting).
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        ok: &[u16],
    ) -> Answer {
        let t0 = now_ms();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let (status, body, error) = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(bytes) => (
                        status,
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                        None,
                    ),
                    Err(e) => (0, Value::Null, Some(e.to_string())),
                }
            }
            Err(e) => (0, Value::Null, Some(e.to_string())),
        };
        let t1 = now_ms();
        let detail = match (&error, status >= 400) {
            (Some(e), _) => Some(e.clone()),
            (None, true) => body.get("detail").map(|d| d.to_string()),
            _ => None,
        };
        let _ = self.rec.0.send(Record::Request(json!({
            "t0": t0, "t1": t1, "op": op, "status": status, "ok": ok.contains(&status),
            "protected": token.is_some(), "detail": detail,
        })));
        Answer { status, body }
    }
}

/// Tokens whose logout was acknowledged.
type Pool = Arc<Mutex<Vec<String>>>;

/// One reader's loop until `stop` exists.
async fn reader(d: Driver, worker: usize, titles: Arc<Vec<i64>>, pool: Pool, stop: PathBuf) {
    let password = "chaos-password-123";
    let mut own: Vec<(String, i64)> = Vec::new();
    let mut n = 0usize;
    while !stop.exists() {
        n += 1;
        let name = format!("c{worker}_{n}_{:04x}", rand::rng().random::<u16>());
        let body =
            json!({"username": name, "email": format!("{name}@example.com"), "password": password});
        let reg = d
            .call(
                "register",
                Method::POST,
                "/auth/register/",
                None,
                Some(&body),
                None,
                &[201],
            )
            .await;
        if reg.status == 201 {
            let id = reg.body["id"].as_i64().unwrap_or(-1);
            d.rec
                .write(json!({"kind": "register", "t": now_ms(), "username": name,
                               "password": password, "user_id": id}));
            own.push((name.clone(), id));
        }
        // Carry on with this reader's newest account (a new one when the registration went
        // through, else an earlier one).
        let Some((user, user_id)) = own.last().cloned() else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let login = d
            .call(
                "login",
                Method::POST,
                "/auth/login/",
                None,
                Some(&json!({"username": user, "password": password})),
                None,
                &[200],
            )
            .await;
        let Some(token) = login.body["access_token"].as_str().map(str::to_owned) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let t = Some(token.as_str());
        let me = d
            .call("me", Method::GET, "/auth/me/", t, None, None, &[200])
            .await;
        if me.status == 200 && me.body["id"].as_i64() != Some(user_id) {
            d.rec.write(
                json!({"kind": "wrong_identity", "t": now_ms(), "user_id": user_id,
                               "got": me.body["id"]}),
            );
        }

        let company = rand::rng().random_range(0..KNOWN_COMPANIES + 3);
        let scrape = d
            .call(
                "scrape",
                Method::POST,
                "/scrape/",
                t,
                Some(&json!({"idno": idno(company), "force_refresh": n.is_multiple_of(2)})),
                None,
                &[200, 202],
            )
            .await;
        if scrape.status == 202 {
            if let Some(job) = scrape.body["job_id"].as_str() {
                d.rec
                    .write(json!({"kind": "job", "t": now_ms(), "job_id": job}));
                d.call(
                    "job",
                    Method::GET,
                    &format!("/scrape/jobs/{job}"),
                    t,
                    None,
                    None,
                    &[200],
                )
                .await;
            }
        }

        d.call(
            "books",
            Method::GET,
            "/books/?q=chaos",
            t,
            None,
            None,
            &[200],
        )
        .await;

        let title = titles[rand::rng().random_range(0..titles.len())];
        let loan = borrow(&d, t, user_id, title).await;
        d.call(
            "borrowings",
            Method::GET,
            "/user/borrowings/",
            t,
            None,
            None,
            &[200],
        )
        .await;
        if let Some(loan_id) = loan {
            give_back(&d, t, loan_id).await;
        }

        let out = d
            .call(
                "logout",
                Method::POST,
                "/auth/logout/",
                t,
                None,
                None,
                &[200],
            )
            .await;
        if out.status == 200 {
            let mut p = pool.lock().unwrap();
            if p.len() >= REPLAY_POOL {
                p.remove(0);
            }
            p.push(token);
        }
    }
}

/// Statuses after which a retry with the same Idempotency-Key is the client's move.
const RETRYABLE: [u16; 5] = [0, 500, 502, 503, 504];
/// Of those, the answers that do not say whether the command was applied: no answer, or an
/// error from a hop that may have passed it on. (A 503 from the platform says nothing was done.)
const AMBIGUOUS: [u16; 4] = [0, 500, 502, 504];
/// Attempts per command, with a doubling pause from 250 ms up to 2 s: about 10 s in all, as
/// long as a process takes to come back.
const ATTEMPTS: u32 = 8;

fn pause(attempt: u32) -> Duration {
    Duration::from_millis((250u64 << attempt.min(3)).min(2000))
}

/// Borrows `title` for the caller; the loan's id on a 201. Retries with the same key.
async fn borrow(d: &Driver, t: Option<&str>, user_id: i64, title: i64) -> Option<i64> {
    let key = uuid::Uuid::new_v4().to_string();
    let body = json!({"book_id": title});
    let mut ambiguous = false;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(pause(attempt - 1)).await;
        }
        let a = d
            .call(
                "borrow",
                Method::POST,
                "/loans/",
                t,
                Some(&body),
                Some(&key),
                &[201],
            )
            .await;
        if a.status == 201 {
            let id = a.body["id"].as_i64();
            d.rec
                .write(json!({"kind": "loan", "t": now_ms(), "user_id": user_id,
                               "loan_id": id, "key": key}));
            return id;
        }
        ambiguous |= AMBIGUOUS.contains(&a.status);
        if !RETRYABLE.contains(&a.status) {
            // A refusal (or the session ended): nothing was lent by this attempt.
            break;
        }
    }
    // No 201. When some attempt got an ambiguous answer, that attempt may have been applied
    // (and a later retry never got through to say so): at most one loan may come of it.
    d.rec.write(
        json!({"kind": "loan_unknown", "t": now_ms(), "user_id": user_id,
                       "key": key, "ambiguous": ambiguous}),
    );
    None
}

/// Returns a loan; retries with the same key.
async fn give_back(d: &Driver, t: Option<&str>, loan_id: i64) {
    let key = uuid::Uuid::new_v4().to_string();
    let path = format!("/loans/{loan_id}/return");
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(pause(attempt - 1)).await;
        }
        let a = d
            .call("return", Method::POST, &path, t, None, Some(&key), &[200])
            .await;
        if !RETRYABLE.contains(&a.status) {
            return;
        }
    }
}

/// Replays logged-out tokens on protected routes until `stop` exists.
async fn replayer(d: Driver, pool: Pool, stop: PathBuf) {
    let routes = [
        "/auth/me/",
        "/loans/?active=true",
        "/user/borrowings/",
        "/books/?q=chaos",
        "/notifications/",
    ];
    let mut n = 0usize;
    while !stop.exists() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let token = {
            let p = pool.lock().unwrap();
            if p.is_empty() {
                continue;
            }
            p[rand::rng().random_range(0..p.len())].clone()
        };
        n += 1;
        let path = routes[n % routes.len()];
        // 401: refused; 503: the session store cannot tell (fail-closed). Never a 2xx.
        d.call(
            "replay",
            Method::GET,
            path,
            Some(&token),
            None,
            None,
            &[401, 503],
        )
        .await;
    }
}

/// Catalogues the titles as the librarian; their ids.
async fn catalogue(d: &Driver, password: &str) -> Vec<i64> {
    let login = d
        .call(
            "setup_login",
            Method::POST,
            "/auth/login/",
            None,
            Some(&json!({"username": "chaos_librarian", "password": password})),
            None,
            &[200],
        )
        .await;
    let token = login.body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("librarian login: {} {}", login.status, login.body))
        .to_owned();
    let mut ids = Vec::new();
    for n in 0..TITLES {
        let body = json!({"title": format!("Chaos volume {n}"), "author": "Ion Creangă",
                          "isbn": isbn(n), "copies": COPIES});
        let a = d
            .call(
                "setup_title",
                Method::POST,
                "/books/",
                Some(&token),
                Some(&body),
                None,
                &[201],
            )
            .await;
        assert_eq!(a.status, 201, "catalogue: {}", a.body);
        ids.push(a.body["id"].as_i64().expect("title id"));
    }
    ids
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(base)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: chaos_load OUT_DIR GATEWAY_URL");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    let workers: usize = std::env::var("CHAOS_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let password = std::env::var("CHAOS_PASSWORD").unwrap_or_else(|_| "chaos-librarian-pw".into());

    let site = FixtureSite::start(Render::Server).await;
    for n in 0..KNOWN_COMPANIES {
        site.add(FixtureCompany::sample(&idno(n)));
    }
    std::fs::write(dir.join("site.url"), site.base_url()).expect("site.url");

    let go = dir.join("go");
    while !go.exists() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = Client::builder()
        // Longer than any server-side limit (CIRCULATION_TIMEOUT_MS 5 s, app-service's
        // UPSTREAM_TIMEOUT_MS 10 s): the platform's own answer is what gets recorded.
        .timeout(Duration::from_secs(12))
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(workers * 2)
        .build()
        .expect("client");
    let (rec, writer) = Recorder::start(&dir);
    let d = Driver {
        http,
        base: base.trim_end_matches('/').to_owned(),
        rec,
    };
    let titles = Arc::new(catalogue(&d, &password).await);
    std::fs::write(dir.join("load.started"), now_ms().to_string()).expect("load.started");

    let stop = dir.join("stop");
    let pool: Pool = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..workers {
        tasks.push(tokio::spawn(reader(
            d.clone(),
            w,
            titles.clone(),
            pool.clone(),
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(replayer(d.clone(), pool, stop.clone())));
    for t in tasks {
        t.await.expect("load task");
    }
    drop(d);
    writer.await.expect("recorder");
    std::fs::write(dir.join("load.done"), now_ms().to_string()).expect("load.done");
    // The scraper may still be finishing jobs against the stand-in: serve it until killed.
    std::future::pending::<()>().await;
}
