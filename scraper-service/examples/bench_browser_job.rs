//! End-to-end job latency with the real browser: `POST /scrape` → job `succeeded`, against the
//! local fixture site whose page renders its data with JavaScript (after a 300 ms delay, like a
//! single-page app waiting for its API). Needs chromedriver and Chromium.
//!
//! `cargo run --release -p scraper-service --example bench_browser_job [JOBS]`

#[allow(dead_code)]
#[path = "../tests/support/fixture.rs"]
mod fixture;

use std::time::{Duration, Instant};

use fixture::{FixtureCompany, FixtureSite, Render};
use scraper_service::config::{Config, FetcherChoice};
use scraper_service::startup::Application;
use serde_json::{json, Value};

/// The secret the benchmark's tokens are signed with.
const SECRET: &str = "bench-browser-job-secret-0123456789abcdef";

fn idno(stem: u64) -> String {
    api::scrape::Idno::from_stem(&format!("{stem:012}")).to_string()
}

/// A live session of an admin in `kv` and a token for it, as user-service would issue.
async fn login(kv: &common::kv::Kv) -> String {
    let sid = "bench-session";
    let session = common::auth::SessionData {
        user_id: 1,
        username: "bench".into(),
        email: "bench@example.com".into(),
        role: common::auth::Role::Admin,
    };
    common::auth::Sessions::new(kv.clone())
        .create(sid, &session, Duration::from_secs(3600))
        .await
        .expect("session stored");
    let now = chrono::Utc::now().timestamp();
    let claims = common::auth::Claims {
        sub: "1".into(),
        sid: sid.into(),
        username: "bench".into(),
        role: "admin".into(),
        iat: now,
        exp: now + 3600,
        iss: "user-service".into(),
        aud: "platform".into(),
    };
    test_support::sign_hs256(&claims, SECRET)
}

async fn run_job(client: &reqwest::Client, base: &str, token: &str, idno: &str) -> Duration {
    let started = Instant::now();
    let resp: Value = client
        .post(format!("{base}/scrape"))
        .bearer_auth(token)
        .json(&json!({"idno": idno, "force_refresh": true}))
        .send()
        .await
        .expect("POST /scrape")
        .json()
        .await
        .expect("JSON");
    let id = resp["job_id"].as_str().expect("a job id");
    loop {
        let job: Value = client
            .get(format!("{base}/scrape/jobs/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET job")
            .json()
            .await
            .expect("JSON");
        match job["state"].as_str() {
            Some("succeeded") => return started.elapsed(),
            Some("failed") => panic!("job failed: {job}"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let jobs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let site = FixtureSite::start(Render::Script).await;
    let mut ids: Vec<String> = (0..jobs * 2).map(|i| idno(100_860_000_000 + i)).collect();
    for id in &ids {
        site.add(FixtureCompany::sample(id));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = common::auth::TokenSettings {
        algorithm: common::auth::hmac_algorithm("HS256").expect("HS256"),
        secret: Some(common::config::Secret::new(SECRET)),
        previous_secret: None,
        issuer: "user-service".into(),
        audience: "platform".into(),
        lifetime: Duration::from_secs(3600),
        leeway: Duration::from_secs(5),
    };
    let db = service_kit::db::DbConfig::sqlite(dir.path(), "bench.sqlite");
    let mut config = Config::for_tests(db, tokens);
    config.source_base_url = url::Url::parse(&site.base_url()).expect("URL");
    config.fetcher = FetcherChoice::Browser;
    config.poll_interval = Duration::from_millis(50);
    // Every job here is a forced refresh, far more than one user may ask for.
    config.quotas.jobs_per_minute = u64::MAX;
    config.quotas.forced_per_hour = u64::MAX;
    let workers = config.workers;
    let kv = common::kv::Kv::memory("bench:");
    let token = login(&kv).await;
    let app = Application::build(config, kv)
        .await
        .expect("service starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (trigger, shutdown) = common::shutdown::shutdown_channel();
    let server = tokio::spawn(app.run_until_stopped(shutdown));
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    // Sequential: the first job also starts chromedriver and the browser.
    let mut lat: Vec<Duration> = Vec::new();
    for id in &ids[..jobs as usize] {
        lat.push(run_job(&client, &base, &token, id).await);
    }
    let cold = lat[0];
    let mut warm: Vec<Duration> = lat[1..].to_vec();
    warm.sort();
    let pct = |p: f64| warm[((warm.len() as f64 - 1.0) * p).round() as usize];
    println!("fixture render delay: 300 ms (the page's script waits before fetching its data)");
    println!(
        "cold job (starts chromedriver + Chromium): {:.0} ms",
        ms(cold)
    );
    if !warm.is_empty() {
        let mean = warm.iter().map(|d| ms(*d)).sum::<f64>() / warm.len() as f64;
        println!(
            "warm jobs, sequential (n={}): mean {:.0} ms, p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            warm.len(),
            mean,
            ms(pct(0.5)),
            ms(pct(0.95)),
            ms(*warm.last().unwrap_or(&Duration::ZERO))
        );
    }

    // Concurrent: all at once, bounded by the workers and the per-host limit.
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for id in ids.split_off(jobs as usize) {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        set.spawn(async move { run_job(&client, &base, &token, &id).await });
    }
    let mut each = set.join_all().await;
    each.sort();
    let total = started.elapsed();
    println!(
        "concurrent batch of {jobs} jobs ({workers} workers): total {:.0} ms, {:.2} jobs/s, slowest {:.0} ms",
        ms(total),
        jobs as f64 / total.as_secs_f64(),
        ms(*each.last().unwrap_or(&Duration::ZERO))
    );

    trigger.trigger();
    let _ = server.await;
}
