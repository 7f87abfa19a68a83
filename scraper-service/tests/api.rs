//! scraper-service end to end: the service on port 0 against a local fixture site, on SQLite
//! with the in-process store, and on PostgreSQL with Redis when `TEST_DATABASE_URL` and
//! `TEST_REDIS_URL` are set. Browser tests drive the real headless Chromium.

mod support;

use std::time::Duration;

use common::auth::Role;
use reqwest::StatusCode;
use scraper_service::config::FetcherChoice;
use scraper_service::extract::browser::BrowserFetcher;
use scraper_service::extract::http::HttpFetcher;
use scraper_service::extract::{FetchError, Fetcher};
use scraper_service::transform::{self, TransformError, PARSER_VERSION};
use serde_json::{json, Value};
use support::fixture::{FixtureCompany, FixtureSite, Render};
use support::{checked, config, idno, scalar, TestApp};
use test_support::backends;

const JOB_TIMEOUT: Duration = Duration::from_secs(30);
const BROWSER_JOB_TIMEOUT: Duration = Duration::from_secs(60);
/// An administrator (tests' default user is [`support::USER_ID`]).
const ADMIN_ID: i64 = 900;
/// Another user.
const OTHER_ID: i64 = 2;

fn known() -> String {
    idno("100860003841")
}

fn unknown() -> String {
    idno("100260000000")
}

fn assert_sample_record(data: &Value, idno: &str) {
    assert_eq!(data["idno"], idno, "{data}");
    assert_eq!(data["company_name"], "Exemplu Comerț SRL", "{data}");
    assert_eq!(data["legal_form"], "Societate cu Răspundere Limitată");
    assert_eq!(
        data["address"],
        "mun. Chişinău, str. Ştefan cel Mare şi Sfînt 1, of. 2"
    );
    assert_eq!(data["registration_date"], "2003-03-12");
    assert_eq!(data["status"], "Activă");
    assert_eq!(data["directors"], json!(["Ion Popescu", "Maria Rusu"]));
    assert_eq!(
        data["activities"],
        json!([
            "47.11 Comerț cu amănuntul",
            "62.01 Activități de realizare a soft-ului"
        ])
    );
    assert_eq!(data["parser_version"], PARSER_VERSION);
    assert!(data["source_id"].as_i64().is_some(), "{data}");
}

/// Queue → poll → succeeded; then the cache; then a forced refresh of identical content
/// (stored once, counted twice); then changed content (stored as a new page).
async fn scrape_flow(app: &TestApp, site: &FixtureSite, timeout: Duration) {
    let id = known();
    let (status, headers, body) = app
        .post("/scrape", json!({"idno": id, "force_refresh": false}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job_id = body["job_id"].as_str().expect("job id").to_owned();
    assert_eq!(headers["location"], format!("/scrape/jobs/{job_id}"));
    assert_eq!(body["idno"], id);
    assert!(
        matches!(body["state"].as_str(), Some("queued" | "running")),
        "{body}"
    );

    let job = app.wait_job(&job_id, timeout).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["max_attempts"], 3);
    assert!(job["error"].is_null());
    assert!(
        job["started_at"].is_string() && job["finished_at"].is_string(),
        "{job}"
    );
    assert_sample_record(&job["data"], &id);
    assert_eq!(site.page_hits(&id), 1);

    let (status, company) = app.get(&format!("/companies/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(company, job["data"]);

    // Fresh data is served from the cache without touching the site.
    let (status, cached) = app.scrape(&id, false).await;
    assert_eq!(status, StatusCode::OK, "{cached}");
    assert_eq!(cached["cached"], true);
    assert_eq!(cached["success"], true);
    assert_sample_record(&cached["data"], &id);
    assert_eq!(site.page_hits(&id), 1, "a cached answer must not fetch");

    // A forced refresh (original spelling) queues a new job; the identical page is not stored twice.
    let (status, _, body) = app
        .post("/scrape", json!({"idno": id, "forced_refresh": true}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let second = body["job_id"].as_str().unwrap().to_owned();
    assert_ne!(second, job_id);
    let job2 = app.wait_job(&second, timeout).await;
    assert_eq!(job2["state"], "succeeded", "{job2}");
    assert_eq!(site.page_hits(&id), 2);
    let sql_rows = "SELECT CAST(COUNT(*) AS BIGINT) FROM source_data WHERE idno = $1";
    assert_eq!(
        scalar(&app.db, sql_rows, &id).await,
        1,
        "identical re-fetch stored once"
    );
    let sql_count = "SELECT CAST(MAX(fetch_count) AS BIGINT) FROM source_data WHERE idno = $1";
    assert_eq!(scalar(&app.db, sql_count, &id).await, 2, "and counted");
    assert_eq!(job2["data"]["source_id"], job["data"]["source_id"]);

    // Changed content is a new page, and the newest record wins.
    site.update(&id, |c| c.status = "Lichidată".into());
    let (_, body) = app.scrape(&id, true).await;
    let job3 = app
        .wait_job(body["job_id"].as_str().unwrap(), timeout)
        .await;
    assert_eq!(job3["state"], "succeeded", "{job3}");
    assert_eq!(job3["data"]["status"], "Lichidată");
    assert_eq!(scalar(&app.db, sql_rows, &id).await, 2);
    let (_, company) = app.get(&format!("/companies/{id}/")).await;
    assert_eq!(company["status"], "Lichidată");
    let (_, cached) = app.scrape(&id, false).await;
    assert_eq!(
        cached["data"]["status"], "Lichidată",
        "the cache was refreshed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_flow_with_the_http_fetcher() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "flow").await {
        let site = FixtureSite::start(Render::Server).await;
        site.add(FixtureCompany::sample(&known()));
        let app = TestApp::spawn(config(db.config(), &site.base_url()), kv).await;
        scrape_flow(&app, &site, JOB_TIMEOUT).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_flow_with_the_browser_on_a_javascript_page() {
    if !support::browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = FixtureSite::start(Render::Script).await;
    site.add(FixtureCompany::sample(&known()));
    let mut c = config(
        service_kit::db::DbConfig::sqlite(dir.path(), "browser.sqlite"),
        &site.base_url(),
    );
    c.fetcher = FetcherChoice::Browser;
    let app = TestApp::spawn(c, common::kv::Kv::memory("browser:")).await;
    scrape_flow(&app, &site, BROWSER_JOB_TIMEOUT).await;
    assert!(
        site.api_hits(&known()) >= 3,
        "the page's script ran in the browser"
    );

    // A company the site does not know: the script renders "not found"; one attempt, no record.
    let missing = unknown();
    let (_, body) = app.scrape(&missing, false).await;
    let job = app
        .wait_job(body["job_id"].as_str().unwrap(), BROWSER_JOB_TIMEOUT)
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"], "company not found");
    assert_eq!(job["attempts"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_sees_rendered_data_where_plain_http_sees_an_empty_shell() {
    if !support::browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = FixtureSite::start(Render::Script).await;
    let id = known();
    site.add(FixtureCompany::sample(&id));
    // Through a proxy that can cut the connection, to see the source vanish.
    let target = site.base_url().trim_start_matches("http://").to_owned();
    let proxy = test_support::CuttableProxy::start(target).await;
    let source = format!("http://{}", proxy.addr());
    let mut c = config(
        service_kit::db::DbConfig::sqlite(dir.path(), "unused.sqlite"),
        &source,
    );
    c.page_timeout = Duration::from_secs(20);
    let url = c.company_url(&checked(&id));

    let http = HttpFetcher::new(&c).unwrap();
    let shell = http.fetch(&url).await.expect("plain fetch");
    assert_eq!(shell.status, 200);
    assert!(!shell.html.contains("Ion Popescu"), "the shell has no data");
    assert_eq!(
        transform::transform(&shell.html, &checked(&id)),
        Err(TransformError::NoData)
    );

    let browser = BrowserFetcher::new(&c);
    let page = browser.fetch(&url).await.expect("browser fetch");
    assert_eq!(page.status, 200);
    assert!(page.rendered);
    let company = transform::transform(&page.html, &checked(&id)).expect("rendered data");
    assert_eq!(company.company_name.as_deref(), Some("Exemplu Comerț SRL"));
    assert_eq!(company.directors, ["Ion Popescu", "Maria Rusu"]);

    // The same session is reused for the next page, here an unknown company.
    let missing = browser
        .fetch(&c.company_url(&checked(&unknown())))
        .await
        .expect("browser fetch");
    assert_eq!(
        transform::transform(&missing.html, &checked(&unknown())),
        Err(TransformError::NotFound)
    );

    // chromedriver dies (and its browsers with it): the next fetch starts new ones.
    let pid = browser.driver_pid().await.expect("chromedriver runs");
    let killed = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let again = browser.fetch(&url).await.expect("fetch after a crash");
    assert!(again.html.contains("Ion Popescu"));
    assert_ne!(browser.driver_pid().await, Some(pid));

    // The source answering 503 is reported with its status, without waiting for content.
    site.set_down(true);
    let started = std::time::Instant::now();
    let down = browser
        .fetch(&url)
        .await
        .expect("a 503 page is still a page");
    assert_eq!(down.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A host other than the configured one is never fetched.
    let other = url::Url::parse("http://localhost:9/companies/1").unwrap();
    assert!(matches!(
        browser.fetch(&other).await,
        Err(FetchError::Permanent(_))
    ));

    // The source vanishing is a transient network error, and the session survives it.
    proxy.cut();
    let gone = browser.fetch(&url).await;
    assert!(
        matches!(&gone, Err(FetchError::Transient(m)) if m.starts_with("net::ERR_")),
        "{gone:?}"
    );
    proxy.restore();
    site.set_down(false);
    let back = browser.fetch(&url).await.expect("back");
    assert!(back.html.contains("Ion Popescu"));
    browser.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_company_while_pending_gets_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "dedupe").await {
        let site = FixtureSite::start(Render::Server).await;
        let mut c = config(db.config(), &site.base_url());
        c.workers = 0;
        let app = TestApp::spawn(c, kv).await;
        let id = known();
        // Concurrent requests, some forcing a refresh: all join one job.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (client, url, id, token) = (
                app.client.clone(),
                format!("{}/scrape", app.base),
                id.clone(),
                app.token.clone(),
            );
            set.spawn(async move {
                let resp = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"idno": id, "force_refresh": i % 2 == 0}))
                    .send()
                    .await
                    .unwrap();
                (resp.status(), resp.json::<Value>().await.unwrap())
            });
        }
        let answers = set.join_all().await;
        let first = answers[0].1["job_id"].as_str().unwrap().to_owned();
        for (status, body) in &answers {
            assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
            assert_eq!(body["job_id"].as_str(), Some(first.as_str()), "{body}");
        }
        let jobs = "SELECT CAST(COUNT(*) AS BIGINT) FROM scrape_jobs WHERE idno = $1";
        assert_eq!(scalar(&app.db, jobs, &id).await, 1);
        // Another company gets its own job.
        let (_, other) = app.scrape(&unknown(), false).await;
        assert_ne!(other["job_id"].as_str(), Some(first.as_str()));
        // Both wait in the queue (no worker runs here), as the queue-depth gauge says.
        let metrics = app.metrics().await;
        let queued = metrics
            .lines()
            .find(|l| l.starts_with("scrape_jobs{") && l.contains(r#"state="queued""#))
            .unwrap_or_else(|| panic!("no queue depth in {metrics}"));
        assert!(queued.ends_with(" 2"), "{queued}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_queue_without_running_a_job_twice() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "shared").await {
        let site = FixtureSite::start(Render::Server).await;
        site.set_page_delay(Duration::from_millis(20));
        let ids: Vec<String> = (0..16).map(|i| idno(&format!("1008600{i:05}"))).collect();
        for id in &ids {
            site.add(FixtureCompany::sample(id));
        }
        let a = TestApp::spawn(config(db.config(), &site.base_url()), kv.clone()).await;
        let b = TestApp::spawn(config(db.config(), &site.base_url()), kv).await;
        let mut job_ids = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let app = if i % 2 == 0 { &a } else { &b };
            let (status, body) = app.scrape(id, false).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            job_ids.push(body["job_id"].as_str().unwrap().to_owned());
        }
        for (id, job_id) in ids.iter().zip(&job_ids) {
            let job = a.wait_job(job_id, JOB_TIMEOUT).await;
            assert_eq!(job["state"], "succeeded", "{job}");
            assert_eq!(job["attempts"], 1, "{job}");
            assert_eq!(site.page_hits(id), 1, "{id} was fetched more than once");
        }
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_data_is_scraped_again() {
    let dir = tempfile::tempdir().unwrap();
    let site = FixtureSite::start(Render::Server).await;
    let id = known();
    site.add(FixtureCompany::sample(&id));
    let mut c = config(
        service_kit::db::DbConfig::sqlite(dir.path(), "stale.sqlite"),
        &site.base_url(),
    );
    c.cache_ttl = Duration::from_secs(1);
    let app = TestApp::spawn(c, common::kv::Kv::memory("stale:")).await;
    let (_, body) = app.scrape(&id, false).await;
    app.wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
        .await;
    let (status, _) = app.scrape(&id, false).await;
    assert_eq!(status, StatusCode::OK);
    // Once the TTL has passed, neither the cache nor the stored record counts as fresh.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = app.scrape(&id, false).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
        .await;
    assert_eq!(site.page_hits(&id), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "restart").await {
        let site = FixtureSite::start(Render::Server).await;
        let id = known();
        site.add(FixtureCompany::sample(&id));

        // First instance: no workers, so the job stays queued; then it stops.
        let mut c = config(db.config(), &site.base_url());
        c.workers = 0;
        let first = TestApp::spawn(c, kv.clone()).await;
        let (status, body) = first.scrape(&id, false).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let job_id = body["job_id"].as_str().unwrap().to_owned();
        first.stop().await;
        assert_eq!(site.page_hits(&id), 0);

        // A new instance on the same database finishes it.
        let second = TestApp::spawn(config(db.config(), &site.base_url()), kv).await;
        second.remember(&id);
        let job = second.wait_job(&job_id, JOB_TIMEOUT).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1);
        second.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_held_by_a_crashed_instance_is_taken_over_when_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "lease").await {
        let site = FixtureSite::start(Render::Server).await;
        let id = known();
        site.add(FixtureCompany::sample(&id));
        let mut c = config(db.config(), &site.base_url());
        c.workers = 0;
        let idle = TestApp::spawn(c, kv.clone()).await;
        let (_, body) = idle.scrape(&id, false).await;
        let job_id = body["job_id"].as_str().unwrap().to_owned();
        // A "crashed" instance claims it with a short lease and never comes back.
        let claimed = scraper_service::store::jobs::claim(
            &idle.db,
            "crashed-instance",
            Duration::from_secs(1),
        )
        .await
        .unwrap()
        .expect("a due job");
        assert_eq!(claimed.public_id, job_id);
        assert!(
            scraper_service::store::jobs::claim(&idle.db, "another", Duration::from_secs(1))
                .await
                .unwrap()
                .is_none()
        );
        idle.stop().await;

        let app = TestApp::spawn(config(db.config(), &site.base_url()), kv).await;
        app.remember(&id);
        let job = app.wait_job(&job_id, JOB_TIMEOUT).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 2, "the lost attempt counts");
        assert_eq!(site.page_hits(&id), 1);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_company_fails_once_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "notfound").await {
        let site = FixtureSite::start(Render::Server).await;
        let app = TestApp::spawn(config(db.config(), &site.base_url()), kv).await;
        let id = unknown();
        let (_, body) = app.scrape(&id, false).await;
        let job = app
            .wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
            .await;
        assert_eq!(job["state"], "failed", "{job}");
        assert_eq!(job["error"], "company not found");
        assert_eq!(job["attempts"], 1);
        assert!(job["data"].is_null());
        assert_eq!(site.page_hits(&id), 1);
        // The page is kept for audit, but no record was written.
        let pages = "SELECT CAST(COUNT(*) AS BIGINT) FROM source_data WHERE idno = $1";
        assert_eq!(scalar(&app.db, pages, &id).await, 1);
        let (status, body) = app.get(&format!("/companies/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"detail": "Company not found"}));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_is_down_is_retried_then_the_job_fails() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "down").await {
        let site = FixtureSite::start(Render::Server).await;
        let id = known();
        site.add(FixtureCompany::sample(&id));
        site.set_down(true);
        let app = TestApp::spawn(config(db.config(), &site.base_url()), kv).await;
        let (_, body) = app.scrape(&id, false).await;
        let job = app
            .wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
            .await;
        assert_eq!(job["state"], "failed", "{job}");
        assert_eq!(job["attempts"], 3);
        assert_eq!(job["error"], "source unreachable: HTTP 503");
        assert_eq!(site.page_hits(&id), 3);

        // Back up: a new request scrapes successfully.
        site.set_down(false);
        let (_, body) = app.scrape(&id, false).await;
        let job = app
            .wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
            .await;
        assert_eq!(job["state"], "succeeded", "{job}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let site = FixtureSite::start(Render::Server).await;
    let id = known();
    site.add(FixtureCompany::sample(&id));
    let proxy = test_support::CuttableProxy::start(
        site.base_url().trim_start_matches("http://").to_owned(),
    )
    .await;
    proxy.cut();
    let mut c = config(
        service_kit::db::DbConfig::sqlite(dir.path(), "refused.sqlite"),
        &format!("http://{}", proxy.addr()),
    );
    c.retry_base = Duration::from_millis(200);
    c.retry_max = Duration::from_secs(1);
    let app = TestApp::spawn(c, common::kv::Kv::memory("refused:")).await;
    let started = std::time::Instant::now();
    let (_, body) = app.scrape(&id, false).await;
    let job = app
        .wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["attempts"], 3);
    let error = job["error"].as_str().unwrap();
    assert!(error.starts_with("source unreachable: "), "{error}");
    // Two waits between three attempts: 200 ms, then 400 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(site.page_hits(&id), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransform_reparses_stored_pages_without_fetching() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "retransform").await {
        let site = FixtureSite::start(Render::Server).await;
        let id = known();
        site.add(FixtureCompany::sample(&id));
        let c = config(db.config(), &site.base_url());
        let app = TestApp::spawn(c.clone(), kv.clone()).await;
        for idno in [id.clone(), unknown()] {
            let (_, body) = app.scrape(&idno, false).await;
            app.wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
                .await;
        }
        let hits = site.page_hits(&id) + site.page_hits(&unknown());

        // Pretend an old parser wrote a poor record.
        let spoil = "UPDATE transformed_data SET company_name = 'old', directors = '[]', parser_version = '0' WHERE idno = $1";
        service_kit::with_db!(&app.db, pool => sqlx::query(spoil).bind(&id).execute(pool).await.map(|r| r.rows_affected())).unwrap();

        let admin = app.login(ADMIN_ID, Role::Admin).await;
        let (status, _, run) = app
            .post_as(Some(&admin), "/admin/retransform", json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        let report = wait_run(&app, &admin, &run).await;
        assert_eq!(counts(&report), (2, 1, 1), "{report}");
        let (_, company) = app.get(&format!("/companies/{id}")).await;
        assert_sample_record(&company, &id);
        let (_, cached) = app.scrape(&id, false).await;
        assert_eq!(cached["cached"], true);
        assert_eq!(cached["data"]["parser_version"], PARSER_VERSION);

        // One company only, by the endpoint (empty body = all) and by the library function.
        let (status, _, run) = app
            .post_as(Some(&admin), "/admin/retransform/", json!({"idno": id}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(counts(&wait_run(&app, &admin, &run).await), (1, 1, 0));
        let (status, _, body) = app
            .post_as(Some(&admin), "/admin/retransform", json!({"idno": "123"}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let resp = app
            .client
            .post(format!("{}/admin/retransform", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let run: Value = resp.json().await.unwrap();
        assert_eq!(run["idno"], Value::Null, "an empty body is every page");
        assert_eq!(counts(&wait_run(&app, &admin, &run).await), (2, 1, 1));
        let report =
            scraper_service::commands::retransform(&c.db, c.cache_ttl, &kv, Some(&checked(&id)))
                .await
                .expect("retransform");
        assert_eq!(
            (report.processed, report.succeeded, report.failed),
            (1, 1, 0)
        );

        assert_eq!(
            site.page_hits(&id) + site.page_hits(&unknown()),
            hits,
            "no fetch"
        );
        let records = "SELECT CAST(COUNT(*) AS BIGINT) FROM transformed_data WHERE idno = $1";
        assert_eq!(
            scalar(&app.db, records, &id).await,
            1,
            "one record per stored page"
        );
        app.stop().await;
    }
}

/// Polls the re-transform run `run` (as `POST /admin/retransform` answered it) until it
/// has ended; it must have succeeded.
async fn wait_run(app: &TestApp, token: &str, run: &Value) -> Value {
    let id = run["id"].as_str().expect("a run id");
    let deadline = std::time::Instant::now() + JOB_TIMEOUT;
    loop {
        let (status, body) = app
            .get_as(Some(token), &format!("/admin/retransform/{id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["state"] != "running" {
            assert_eq!(body["state"], "succeeded", "{body}");
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {id} did not end: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A run's (processed, succeeded, failed).
fn counts(run: &Value) -> (u64, u64, u64) {
    let n = |k: &str| run[k].as_u64().unwrap_or_else(|| panic!("{k} in {run}"));
    (n("processed"), n("succeeded"), n("failed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_puts_running_jobs_back_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "drain").await {
        let site = FixtureSite::start(Render::Server).await;
        let id = known();
        site.add(FixtureCompany::sample(&id));
        site.set_page_delay(Duration::from_secs(20));
        let mut c = config(db.config(), &site.base_url());
        c.page_timeout = Duration::from_secs(30);
        c.server.drain = Duration::from_millis(300);
        let app = TestApp::spawn(c, kv.clone()).await;
        let (_, body) = app.scrape(&id, false).await;
        let job_id = body["job_id"].as_str().unwrap().to_owned();
        app.wait_state(&job_id, "running", JOB_TIMEOUT).await;
        let db_handle = db.config();
        app.stop().await;

        // Read the job with a fresh instance that runs no worker.
        let mut c = config(db_handle, &site.base_url());
        c.workers = 0;
        let reader = TestApp::spawn(c, kv).await;
        let (_, job) = reader.get(&format!("/scrape/jobs/{job_id}")).await;
        assert_eq!(job["state"], "queued", "{job}");
        assert_eq!(job["attempts"], 0, "the interrupted attempt does not count");
        reader.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_gets_fastapi_shaped_errors() {
    let dir = tempfile::tempdir().unwrap();
    let site = FixtureSite::start(Render::Server).await;
    let mut c = config(
        service_kit::db::DbConfig::sqlite(dir.path(), "errors.sqlite"),
        &site.base_url(),
    );
    c.workers = 0;
    let app = TestApp::spawn(c, common::kv::Kv::memory("errors:")).await;

    let (status, _, body) = app.post("/scrape", json!({"idno": "1008600038414"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "idno"]));
    assert_eq!(body["detail"][0]["type"], "value_error");
    let (status, _, body) = app.post("/scrape/", json!({"force_refresh": true})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["type"], "missing");
    let (status, _, body) = app.post("/scrape", json!({"idno": 1008600038413u64})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, body) = app.get("/companies/12345").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["path", "idno"]));
    let (status, body) = app.get(&format!("/companies/{}", known())).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Company not found"})
        )
    );

    // Job ids are UUIDs: a sequential number is no id at all.
    for bad in ["abc", "987654"] {
        let (status, body) = app.get(&format!("/scrape/jobs/{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["detail"][0]["type"], "uuid_parsing");
        assert_eq!(body["detail"][0]["loc"], json!(["path", "id"]));
    }
    let (status, body) = app
        .get(&format!("/scrape/jobs/{}/", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"detail": "Job not found"}))
    );

    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get("/nope").await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_fetcher_stays_on_the_source_host_and_caps_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let site = FixtureSite::start(Render::Server).await;
    let mut c = config(
        service_kit::db::DbConfig::sqlite(dir.path(), "unused.sqlite"),
        &site.base_url(),
    );
    c.max_page_bytes = 10_000;
    let http = HttpFetcher::new(&c).unwrap();
    let base = url::Url::parse(&site.base_url()).unwrap();

    let away = http.fetch(&base.join("/redirect-away").unwrap()).await;
    assert!(
        matches!(&away, Err(FetchError::Permanent(m)) if m.contains("refused")),
        "{away:?}"
    );
    let big = http.fetch(&base.join("/big").unwrap()).await;
    assert!(
        matches!(&big, Err(FetchError::Permanent(m)) if m.contains("larger")),
        "{big:?}"
    );
    let other = http
        .fetch(&url::Url::parse("https://example.com/companies/1").unwrap())
        .await;
    assert!(matches!(other, Err(FetchError::Permanent(_))));
}

/// An operator's existing PostgreSQL database from the original FastAPI app: the tables keep
/// their 32-bit ids and time-zone-aware timestamps; migrations add columns, old records are
/// served, and new scrapes write into the same tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_adopt_the_original_apps_postgres_tables() {
    let Some(url) = test_support::postgres_url() else {
        eprintln!("SKIPPED: TEST_DATABASE_URL not set");
        return;
    };
    let schema = test_support::TestSchema::new(&url, "legacy");
    let legacy = service_kit::db::Db::connect(&schema.config())
        .await
        .expect("connect");
    let service_kit::db::Db::Postgres(pool) = &legacy else {
        unreachable!()
    };
    for sql in [
        "CREATE TABLE source_data (id SERIAL PRIMARY KEY, idno VARCHAR, url VARCHAR, raw_html TEXT, \
         status_code INTEGER, created_at TIMESTAMPTZ DEFAULT now())",
        "CREATE INDEX ix_source_data_idno ON source_data (idno)",
        "CREATE TABLE transformed_data (id SERIAL PRIMARY KEY, idno VARCHAR, company_name VARCHAR, \
         address VARCHAR, created_at TIMESTAMPTZ DEFAULT now())",
        "INSERT INTO source_data (idno, url, raw_html, status_code) VALUES \
         ('1003600000006', 'https://openmoney.md/companies/1003600000006', \
          '<html><body><dl><dt>Denumirea</dt><dd>Vechi SRL</dd><dt>Adresa</dt><dd>Bălți</dd></dl></body></html>', 200)",
        "INSERT INTO transformed_data (idno, company_name, address) VALUES ('1003600000006', 'Vechi SRL', 'Bălți')",
    ] {
        sqlx::query(sql).execute(pool).await.expect(sql);
    }
    legacy.close().await;

    let site = FixtureSite::start(Render::Server).await;
    let id = known();
    site.add(FixtureCompany::sample(&id));
    let kv = common::kv::Kv::memory("legacy:");
    let c = config(schema.config(), &site.base_url());
    let app = TestApp::spawn(c.clone(), kv.clone()).await;
    let (status, old) = app.get("/companies/1003600000006").await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(old["company_name"], "Vechi SRL");
    assert_eq!(old["address"], "Bălți");

    let (_, body) = app.scrape(&id, false).await;
    let job = app
        .wait_job(body["job_id"].as_str().unwrap(), JOB_TIMEOUT)
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_sample_record(&job["data"], &id);
    app.stop().await;

    // Old pages can be re-transformed too, and migrating again changes nothing.
    let report = scraper_service::commands::retransform(
        &c.db,
        c.cache_ttl,
        &kv,
        Some(&checked("1003600000006")),
    )
    .await
    .expect("retransform");
    assert_eq!((report.processed, report.succeeded), (1, 1));
    let again = TestApp::spawn(c, kv).await;
    again.stop().await;
    drop(schema);
}

// Who may do what: the service verifies every caller itself, jobs belong to whoever asked,
// and what costs outbound fetches is capped per user.

/// The ids of the jobs in 202 answers.
fn job_id(body: &Value) -> String {
    body["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a job id in {body}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_belong_to_whoever_asked_and_their_ids_cannot_be_guessed() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "owners").await {
        let site = FixtureSite::start(Render::Server).await;
        let mut c = config(db.config(), &site.base_url());
        c.workers = 0;
        let app = TestApp::spawn(c, kv).await;
        let other = app.login(OTHER_ID, Role::User).await;
        let admin = app.login(ADMIN_ID, Role::Admin).await;
        let id = known();

        let (status, mine) = app.scrape(&id, false).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{mine}");
        let job = job_id(&mine);
        let uuid = uuid::Uuid::parse_str(&job).expect("the job id is a UUID");
        assert_eq!(uuid.get_version_num(), 4, "random, derived from nothing");
        assert_eq!(job, uuid.to_string());
        let path = format!("/scrape/jobs/{job}");
        assert_eq!(mine["status_url"], path);

        // The owner reads it, and so does an admin; for anyone else it does not exist.
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], job.as_str());
        let (status, body) = app.get_as(Some(&other), &path).await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"detail": "Job not found"}))
        );
        let (status, body) = app.get_as(Some(&admin), &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.get_as(None, &path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Asking again joins one's own pending job; another user gets a job of their own,
        // which only they can read.
        let (_, again) = app.scrape(&id, false).await;
        assert_eq!(job_id(&again), job);
        let (status, theirs) = app.scrape_as(&other, &id, false).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{theirs}");
        let their_job = job_id(&theirs);
        assert_ne!(their_job, job);
        let (status, _) = app.get(&format!("/scrape/jobs/{their_job}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app
            .get_as(Some(&other), &format!("/scrape/jobs/{their_job}"))
            .await;
        assert_eq!(status, StatusCode::OK);

        // Ids are no sequence: none is a number, and consecutive ones share nothing.
        let (_, next) = app.scrape(&unknown(), false).await;
        let next_job = job_id(&next);
        for id in [&job, &their_job, &next_job] {
            assert!(id.parse::<i64>().is_err(), "{id}");
        }
        assert_ne!(job[..8], next_job[..8]);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_asking_for_one_company_at_once_cost_one_fetch() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "one_fetch").await {
        let site = FixtureSite::start(Render::Server).await;
        let id = known();
        site.add(FixtureCompany::sample(&id));
        site.set_page_delay(Duration::from_millis(300));
        let app = TestApp::spawn(config(db.config(), &site.base_url()), kv).await;
        let other = app.login(OTHER_ID, Role::User).await;

        let (status, first) = app.scrape(&id, false).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{first}");
        let (status, second) = app.scrape_as(&other, &id, false).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{second}");
        assert_ne!(job_id(&first), job_id(&second));

        let mine = app.wait_job(&job_id(&first), JOB_TIMEOUT).await;
        let theirs = app.wait_job_as(&other, &job_id(&second), JOB_TIMEOUT).await;
        assert_eq!(mine["state"], "succeeded", "{mine}");
        assert_eq!(theirs["state"], "succeeded", "{theirs}");
        assert_sample_record(&theirs["data"], &id);
        assert_eq!(theirs["data"], mine["data"], "the same record answers both");
        assert_eq!(site.page_hits(&id), 1, "the page was fetched once");
        app.stop().await;
    }
}

/// The `Retry-After` of a 429, in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_job_cap_is_refused_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "job_cap").await {
        let site = FixtureSite::start(Render::Server).await;
        let id = known();
        site.add(FixtureCompany::sample(&id));
        let mut c = config(db.config(), &site.base_url());
        c.quotas.jobs_per_minute = 3;
        let app = TestApp::spawn(c, kv).await;

        // One job (the first of three allowed), then answers from the cache, which are free.
        let (_, body) = app.scrape(&id, false).await;
        let job = app.wait_job(&job_id(&body), JOB_TIMEOUT).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        for _ in 0..5 {
            let (status, cached) = app.scrape(&id, false).await;
            assert_eq!(status, StatusCode::OK, "{cached}");
        }

        // A burst of six other companies at once: exactly two fit under the cap.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..6 {
            let (client, url, token) = (
                app.client.clone(),
                format!("{}/scrape/", app.base),
                app.token.clone(),
            );
            let idno = idno(&format!("1002600{i:05}"));
            set.spawn(async move {
                let resp = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"idno": idno, "force_refresh": false}))
                    .send()
                    .await
                    .unwrap();
                let headers = resp.headers().clone();
                (resp.status(), headers, resp.json::<Value>().await.unwrap())
            });
        }
        let answers = set.join_all().await;
        let accepted = answers
            .iter()
            .filter(|(status, _, _)| *status == StatusCode::ACCEPTED)
            .count();
        assert_eq!(accepted, 2, "{answers:?}");
        for (status, headers, body) in answers.iter().filter(|a| a.0 != StatusCode::ACCEPTED) {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(
                body,
                &json!({"detail": "Too many scrape requests; try again later"})
            );
            let wait = retry_after(headers);
            assert!((1..=60).contains(&wait), "Retry-After: {wait}");
        }

        // The cap is per user.
        let other = app.login(OTHER_ID, Role::User).await;
        let (status, body) = app.scrape_as(&other, &unknown(), false).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_refreshes_are_capped_per_user() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "forced_cap").await {
        let site = FixtureSite::start(Render::Server).await;
        let mut c = config(db.config(), &site.base_url());
        c.workers = 0;
        c.quotas.forced_per_hour = 2;
        let app = TestApp::spawn(c, kv).await;
        let id = known();

        for _ in 0..2 {
            let (status, body) = app.scrape(&id, true).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        let (status, headers, body) = app
            .post("/scrape", json!({"idno": id, "force_refresh": true}))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(
            body,
            json!({"detail": "Too many forced refreshes; try again later"})
        );
        let wait = retry_after(&headers);
        assert!((3500..=3600).contains(&wait), "Retry-After: {wait}");

        // Asking without forcing still works, and other users have their own allowance.
        let (status, body) = app.scrape(&id, false).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let other = app.login(OTHER_ID, Role::User).await;
        let (status, body) = app.scrape_as(&other, &id, true).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_check_the_caller_like_public_ones() {
    let dir = tempfile::tempdir().unwrap();
    for (db, kv) in backends(dir.path(), "callers").await {
        let site = FixtureSite::start(Render::Server).await;
        let mut c = config(db.config(), &site.base_url());
        c.workers = 0;
        let app = TestApp::spawn(c, kv).await;

        // Straight to the service, no token: 401 with the Bearer challenge, everywhere.
        let (status, headers, body) = app.post_as(None, "/admin/retransform", json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(body, json!({"detail": "Not authenticated"}));
        let (status, _, _) = app
            .post_as(
                None,
                "/scrape/",
                json!({"idno": known(), "force_refresh": false}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = app.get_as(None, &format!("/companies/{}", known())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // A token the issuer did not sign is no better than none.
        let forged = app
            .login_signed_with(ADMIN_ID, "not-the-issuers-secret-0123456789abcdef")
            .await;
        let (status, _, body) = app
            .post_as(Some(&forged), "/admin/retransform", json!({}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

        // A user is authenticated but not allowed; an admin is.
        let (status, _, body) = app
            .post_as(Some(&app.token), "/admin/retransform", json!({}))
            .await;
        assert_eq!(
            (status, body),
            (
                StatusCode::FORBIDDEN,
                json!({"detail": "Admin role required"})
            )
        );
        let admin = app.login(ADMIN_ID, Role::Admin).await;
        let (status, _, run) = app
            .post_as(Some(&admin), "/admin/retransform", json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        assert_eq!(counts(&wait_run(&app, &admin, &run).await), (0, 0, 0));
        app.stop().await;
    }
}
