//! The verdict of the fault drills (`scripts/chaos.sh`): reads what `chaos_load` recorded and
//! the script's fault timeline, checks the invariants against the platform and its databases,
//! and prints one Markdown table.
//!
//! ```text
//! chaos_report OUT_DIR GATEWAY_URL DATABASE_URL SCRAPER_SCHEMA BOOK_SCHEMA
//! ```
//!
//! `OUT_DIR/faults.tsv` has one line per fault: name, start, end, ready (epoch ms: the fault
//! is in force from start to end; at ready every process answered its readiness probe again),
//! and the processes that had to be restarted by hand (`-` for none). A fault's window runs
//! from its start to the next one's; what failed in it is charged to it.
//!
//! Invariants, per fault window and in total:
//! - fail-closed: a logged-out token replayed never gets a 2xx, and while Redis (the session
//!   store) is down no protected request started after it went down gets a 2xx;
//! - no lost writes: every 201 registration can log in (checked now, through the gateway);
//!   every accepted scrape job reaches `succeeded` or `failed` (polled in the scraper's
//!   database, `CHAOS_JOB_WAIT_SECONDS`, 90); every 201 loan exists in book-service's
//!   database, no loan id is handed to two borrows, and no reader has a loan nobody was told
//!   about (beyond borrows left with an ambiguous answer: none, 502, 504); every event in
//!   book-service's outbox is published to the stream (same wait);
//! - no manual restarts.
//!
//! Also counted: `me` answering with another account (served without the caller's session),
//! and 500 answers (a fault should give 502, 503 or 504).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

/// Milliseconds of slack for a request "started after the store went down".
const EDGE_MS: u64 = 100;

struct Fault {
    name: String,
    start: u64,
    end: u64,
    ready: u64,
    manual: String,
}

struct Request {
    t0: u64,
    t1: u64,
    op: String,
    status: u16,
    ok: bool,
    protected: bool,
    detail: Option<String>,
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn read_faults(path: &Path) -> Vec<Fault> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
            Fault {
                name: f[0].to_owned(),
                start: n(1),
                end: n(2),
                ready: n(3),
                manual: f.get(4).copied().unwrap_or("-").to_owned(),
            }
        })
        .collect()
}

fn read_requests(path: &Path) -> Vec<Request> {
    lines(path)
        .into_iter()
        .map(|v| Request {
            t0: v["t0"].as_u64().unwrap_or(0),
            t1: v["t1"].as_u64().unwrap_or(0),
            op: v["op"].as_str().unwrap_or("").to_owned(),
            status: v["status"].as_u64().unwrap_or(0) as u16,
            ok: v["ok"].as_bool().unwrap_or(false),
            protected: v["protected"].as_bool().unwrap_or(false),
            detail: v["detail"].as_str().map(str::to_owned),
        })
        .filter(|r| !r.op.starts_with("setup"))
        .collect()
}

/// Logs every registered account in through the gateway; the usernames that cannot.
async fn cannot_log_in(base: &str, accounts: &[(String, String)]) -> HashSet<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    stream::iter(accounts.iter().cloned())
        .map(|(user, password)| {
            let http = http.clone();
            async move {
                // A 503 (shed bcrypt work) is retried: it says nothing about the account.
                for _ in 0..5 {
                    let resp = http
                        .post(format!("{base}/auth/login/"))
                        .json(&json!({"username": user, "password": password}))
                        .send()
                        .await;
                    match resp.map(|r| r.status().as_u16()) {
                        Ok(200) => return None,
                        Ok(401) => return Some(user),
                        _ => tokio::time::sleep(Duration::from_millis(300)).await,
                    }
                }
                Some(user)
            }
        })
        .buffer_unordered(4)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// Polls the scraper's database until every job is final or the wait is over; the jobs
/// missing, and those not final.
async fn unfinished_jobs(
    db: &sqlx::PgPool,
    schema: &str,
    jobs: &[String],
    wait: Duration,
) -> (HashSet<String>, HashSet<String>) {
    let deadline = Instant::now() + wait;
    loop {
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT public_id, state FROM {schema}.scrape_jobs WHERE public_id = ANY($1)"
        ))
        .bind(jobs)
        .fetch_all(db)
        .await
        .expect("scrape_jobs");
        let found: HashMap<String, String> = rows.into_iter().collect();
        let missing: HashSet<String> = jobs
            .iter()
            .filter(|j| !found.contains_key(*j))
            .cloned()
            .collect();
        let pending: HashSet<String> = found
            .iter()
            .filter(|(_, s)| !matches!(s.as_str(), "succeeded" | "failed"))
            .map(|(j, _)| j.clone())
            .collect();
        if (missing.is_empty() && pending.is_empty()) || Instant::now() > deadline {
            return (missing, pending);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls book-service's outbox until every event is published or the wait is over; how many
/// are not.
async fn unpublished_events(db: &sqlx::PgPool, schema: &str, wait: Duration) -> i64 {
    let deadline = Instant::now() + wait;
    loop {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
        ))
        .fetch_one(db)
        .await
        .expect("outbox");
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What one window of time charged to a fault (or to the baseline) saw.
#[derive(Default)]
struct Row {
    requests: usize,
    failed: usize,
    /// Of `failed`, those answered after the fault had ended.
    failed_after: usize,
    last_failure: Option<u64>,
    replayed: usize,
    served_without_session: usize,
    writes: usize,
    lost: usize,
    failures_by_op: HashMap<String, usize>,
    sample: Option<String>,
}

fn fmt_secs(ms: i64) -> String {
    format!("{:.1}", ms as f64 / 1000.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!(
            "usage: chaos_report OUT_DIR GATEWAY_URL DATABASE_URL SCRAPER_SCHEMA BOOK_SCHEMA"
        );
        std::process::exit(2);
    }
    let dir = Path::new(&args[1]);
    let base = args[2].trim_end_matches('/').to_owned();
    let (scraper_schema, book_schema) = (&args[4], &args[5]);
    let job_wait = Duration::from_secs(
        std::env::var("CHAOS_JOB_WAIT_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(90),
    );
    let db = sqlx::PgPool::connect(&args[3]).await.expect("database");

    let faults = read_faults(&dir.join("faults.tsv"));
    let requests = read_requests(&dir.join("requests.jsonl"));
    let writes = lines(&dir.join("writes.jsonl"));
    let started: u64 = std::fs::read_to_string(dir.join("load.started"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let done: u64 = std::fs::read_to_string(dir.join("load.done"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);

    // --- The invariants, checked now. -----------------------------------------------------
    let accounts: Vec<(String, String)> = writes
        .iter()
        .filter(|w| w["kind"] == "register")
        .map(|w| {
            (
                w["username"].as_str().unwrap_or("").to_owned(),
                w["password"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    eprintln!("chaos_report: logging in {} accounts…", accounts.len());
    let locked_out = cannot_log_in(&base, &accounts).await;

    let jobs: Vec<String> = writes
        .iter()
        .filter(|w| w["kind"] == "job")
        .filter_map(|w| w["job_id"].as_str().map(str::to_owned))
        .collect();
    eprintln!("chaos_report: waiting for {} scrape jobs…", jobs.len());
    let (missing_jobs, pending_jobs) = unfinished_jobs(&db, scraper_schema, &jobs, job_wait).await;

    // Events: every one book-service wrote to its outbox reached the stream (NATS included).
    let unpublished = unpublished_events(&db, book_schema, job_wait).await;

    // Loans: what the clients were told, against the table.
    let mut told: HashMap<i64, BTreeSet<i64>> = HashMap::new();
    let mut unknown: HashMap<i64, usize> = HashMap::new();
    let mut loan_twice = 0usize;
    let mut seen_loans = HashSet::new();
    let mut wrong_identity = 0usize;
    for w in &writes {
        let user = w["user_id"].as_i64().unwrap_or(-1);
        match w["kind"].as_str() {
            Some("loan") => {
                let id = w["loan_id"].as_i64().unwrap_or(-1);
                if !seen_loans.insert(id) {
                    loan_twice += 1;
                }
                told.entry(user).or_default().insert(id);
            }
            // Only an ambiguous answer (no answer, 502, 504) leaves room for a loan.
            Some("loan_unknown") if w["ambiguous"] == true => {
                *unknown.entry(user).or_default() += 1
            }
            Some("loan_unknown") => {
                unknown.entry(user).or_default();
            }
            Some("wrong_identity") => wrong_identity += 1,
            _ => {}
        }
    }
    let users: Vec<i64> = told.keys().chain(unknown.keys()).copied().collect();
    let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT id, user_id FROM {book_schema}.loans WHERE user_id = ANY($1)"
    ))
    .bind(&users)
    .fetch_all(&db)
    .await
    .expect("loans");
    let mut stored: HashMap<i64, BTreeSet<i64>> = HashMap::new();
    for (id, user) in rows {
        stored.entry(user).or_default().insert(id);
    }
    let missing_loans: HashSet<i64> = told
        .iter()
        .flat_map(|(u, ids)| {
            let have = stored.get(u).cloned().unwrap_or_default();
            ids.iter()
                .filter(move |id| !have.contains(id))
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    let mut unexplained_loans = 0usize;
    for (user, have) in &stored {
        let known = told.get(user).map_or(0, |s| s.len());
        let allowed = known + unknown.get(user).copied().unwrap_or(0);
        unexplained_loans += have.len().saturating_sub(allowed);
    }

    // --- Per window. -------------------------------------------------------------------------
    let mut bounds: Vec<(String, u64, u64, Option<&Fault>)> = Vec::new();
    let first = faults.first().map_or(done, |f| f.start);
    bounds.push(("baseline (no fault)".into(), started, first, None));
    for (i, f) in faults.iter().enumerate() {
        let next = faults.get(i + 1).map_or(done, |n| n.start);
        bounds.push((f.name.clone(), f.start, next, Some(f)));
    }
    let window_of = |t: u64| bounds.iter().rposition(|(_, s, _, _)| t >= *s).unwrap_or(0);
    let mut table: Vec<Row> = bounds.iter().map(|_| Row::default()).collect();

    // A request is charged to the window in which its answer came (or did not): one sent just
    // before a fault and cut off by it is that fault's.
    for r in &requests {
        let i = window_of(r.t1);
        let row = &mut table[i];
        if r.op == "replay" {
            row.replayed += 1;
            if (200..300).contains(&r.status) {
                row.served_without_session += 1;
            }
            continue;
        }
        row.requests += 1;
        if !r.ok {
            row.failed += 1;
            if bounds[i].3.is_some_and(|f| r.t1 > f.end) {
                row.failed_after += 1;
            }
            row.last_failure = Some(row.last_failure.map_or(r.t1, |l| l.max(r.t1)));
            *row.failures_by_op.entry(r.op.clone()).or_default() += 1;
            if row.sample.is_none() {
                row.sample = Some(format!(
                    "{} {} {}",
                    r.op,
                    r.status,
                    r.detail.clone().unwrap_or_default()
                ));
            }
        }
    }
    // While the session store is down, nothing protected may succeed.
    for (i, (name, _, _, fault)) in bounds.iter().enumerate() {
        let Some(f) = fault else { continue };
        if !name.starts_with("redis") {
            continue;
        }
        table[i].served_without_session += requests
            .iter()
            .filter(|r| r.protected && r.t0 > f.start + EDGE_MS && r.t1 < f.end)
            .filter(|r| (200..300).contains(&r.status))
            .count();
    }
    for w in &writes {
        let t = w["t"].as_u64().unwrap_or(0);
        let row = &mut table[window_of(t)];
        if w["kind"] == "wrong_identity" {
            // `me` answered with someone else's account: served without the caller's session.
            row.served_without_session += 1;
            continue;
        }
        let lost = match w["kind"].as_str() {
            Some("register") => locked_out.contains(w["username"].as_str().unwrap_or("")),
            Some("job") => {
                let j = w["job_id"].as_str().unwrap_or("");
                missing_jobs.contains(j) || pending_jobs.contains(j)
            }
            Some("loan") => missing_loans.contains(&w["loan_id"].as_i64().unwrap_or(-1)),
            _ => continue,
        };
        row.writes += 1;
        if lost {
            row.lost += 1;
        }
    }

    // --- The table. --------------------------------------------------------------------------
    println!("| fault | outage s | requests | failed (during / after) | recovered after s | ready after s | replayed logged-out tokens | served without a live session | acknowledged writes | lost writes | manual restarts |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for ((name, _, _, fault), row) in bounds.iter().zip(&table) {
        let (outage, recovered, ready, manual) = match fault {
            Some(f) => (
                fmt_secs(f.end as i64 - f.start as i64),
                match row.last_failure {
                    Some(l) => fmt_secs((l as i64 - f.end as i64).max(0)),
                    None => "0.0".into(),
                },
                fmt_secs((f.ready as i64 - f.end as i64).max(0)),
                f.manual.clone(),
            ),
            None => ("–".into(), "–".into(), "–".into(), "-".into()),
        };
        println!(
            "| {name} | {outage} | {} | {} / {} | {recovered} | {ready} | {} | {} | {} | {} | {} |",
            row.requests,
            row.failed - row.failed_after,
            row.failed_after,
            row.replayed,
            row.served_without_session,
            row.writes,
            row.lost,
            if manual == "-" { "0".into() } else { manual },
        );
    }
    let total = |f: fn(&Row) -> usize| table.iter().map(f).sum::<usize>();
    println!();
    println!(
        "Totals: {} requests, {} failed; {} logged-out tokens replayed, {} served without a live session; \
         {} registrations (201), {} cannot log in; {} scrape jobs accepted, {} missing, {} not final after the wait; \
         {} loans (201), {} missing, {} loan ids handed out twice, {} loans nobody was told about \
         (borrows left with an ambiguous answer after their retries: {}); \
         circulation events not published to the stream: {}; \
         `me` answered with another account: {}; 500 answers (a fault must give 502/503/504): {}; \
         manual restarts: {}.",
        total(|r| r.requests),
        total(|r| r.failed),
        total(|r| r.replayed),
        total(|r| r.served_without_session),
        accounts.len(),
        locked_out.len(),
        jobs.len(),
        missing_jobs.len(),
        pending_jobs.len(),
        seen_loans.len(),
        missing_loans.len(),
        loan_twice,
        unexplained_loans,
        unknown.values().sum::<usize>(),
        unpublished,
        wrong_identity,
        requests.iter().filter(|r| r.status == 500).count(),
        faults.iter().filter(|f| f.manual != "-").count(),
    );
    println!();
    println!("Failures by operation, per window (first one quoted):");
    println!();
    for ((name, _, _, _), row) in bounds.iter().zip(&table) {
        if row.failed == 0 {
            continue;
        }
        let mut ops: Vec<_> = row.failures_by_op.iter().collect();
        ops.sort();
        let ops: Vec<String> = ops.iter().map(|(o, n)| format!("{o} {n}")).collect();
        println!(
            "- {name}: {} — e.g. `{}`",
            ops.join(", "),
            row.sample.clone().unwrap_or_default().replace('`', "'")
        );
    }
    let violations = total(|r| r.served_without_session)
        + total(|r| r.lost)
        + loan_twice
        + unexplained_loans
        + unpublished as usize
        + faults.iter().filter(|f| f.manual != "-").count();
    std::process::exit(if violations == 0 { 0 } else { 1 });
}
