//! Company data end to end through the gateway with a bearer token: queue → poll →
//! succeeded with the rendered page's fields (headless Chromium against the local fixture
//! site), the cache, a forced refresh, a company that does not exist, and the source down.
//! Runs on SQLite + in-process store and on PostgreSQL + Redis.

use std::time::{Duration, Instant};

use crate::fixture::{FixtureCompany, FixtureSite, Render};
use crate::support::TestStack;
use scraper_service::config::FetcherChoice;
use serde_json::{json, Value};

fn idno(stem: &str) -> String {
    api::scrape::Idno::from_stem(stem).to_string()
}

fn browser_installed() -> bool {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
            .unwrap_or(false)
    };
    let found = on_path("chromedriver") && std::path::Path::new("/usr/bin/chromium").exists();
    if !found {
        let required = std::env::var("REQUIRE_EXTERNAL_BACKENDS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "REQUIRE_EXTERNAL_BACKENDS is set but Chromium/chromedriver are missing"
        );
        eprintln!("no browser installed: the end-to-end scrape uses the server-rendered fixture and the HTTP fetcher");
    }
    found
}

async fn start(
    backend: crate::support::Backend,
    label: &str,
    site: &FixtureSite,
    browser: bool,
) -> TestStack {
    let base = site.base_url();
    crate::support::start(backend, label, move |c| {
        c.scraper.source_base_url = url::Url::parse(&base).unwrap();
        c.scraper.fetcher = if browser {
            FetcherChoice::Browser
        } else {
            FetcherChoice::Http
        };
        c.scraper.poll_interval = Duration::from_millis(50);
        c.scraper.retry_base = Duration::from_millis(50);
        c.scraper.retry_max = Duration::from_millis(200);
        c.scraper.page_timeout = Duration::from_secs(15);
    })
    .await
}

/// Polls the job until it is final.
async fn wait_job(s: &TestStack, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, job, _) = s.get(&format!("/scrape/jobs/{id}"), Some(token)).await;
        assert_eq!(status, 200, "{job}");
        if matches!(job["state"].as_str(), Some("succeeded" | "failed")) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} still {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn scrape(
    s: &TestStack,
    token: &str,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    s.post_json("/scrape/", &body, Some(token)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn company_data_through_the_gateway() {
    let browser = browser_installed();
    let render = if browser {
        Render::Script
    } else {
        Render::Server
    };
    for backend in crate::support::backends() {
        let site = FixtureSite::start(render).await;
        let known = idno("100860003841");
        site.add(FixtureCompany::sample(&known));
        let s = start(backend, "scrape", &site, browser).await;
        s.register("analyst").await;
        let token = s.login("analyst").await;

        // Protected like /auth/me/, validated like any input.
        assert_eq!(
            s.post_json("/scrape/", &json!({"idno": known}), None)
                .await
                .0,
            401
        );
        let (status, body, _) = scrape(&s, &token, json!({"idno": "1008600038410"})).await;
        assert_eq!(status, 422, "bad check digit: {body}");
        let (status, _, _) = s.get(&format!("/companies/{known}"), Some(&token)).await;
        assert_eq!(status, 404, "never scraped yet");

        // Queue → poll → succeeded.
        let (status, queued, headers) =
            scrape(&s, &token, json!({"idno": known, "force_refresh": false})).await;
        assert_eq!(status, 202, "{queued}");
        let job_id = queued["job_id"].as_str().unwrap().to_owned();
        assert_eq!(headers["location"], format!("/scrape/jobs/{job_id}"));
        let job = wait_job(&s, &token, &job_id).await;
        assert_eq!(job["state"], "succeeded", "{backend:?}: {job}");
        assert_eq!(job["data"]["company_name"], "Exemplu Comerț SRL", "{job}");
        assert_eq!(job["data"]["idno"], known.as_str());
        assert_eq!(
            job["data"]["directors"],
            json!(["Ion Popescu", "Maria Rusu"])
        );
        let (status, company, _) = s.get(&format!("/companies/{known}"), Some(&token)).await;
        assert_eq!(status, 200);
        assert_eq!(
            company["address"],
            "mun. Chişinău, str. Ştefan cel Mare şi Sfînt 1, of. 2"
        );

        // Served from the cache: no new fetch.
        let hits = site.page_hits(&known);
        let (status, cached, _) = scrape(&s, &token, json!({"idno": known})).await;
        assert_eq!(status, 200, "{cached}");
        assert_eq!(cached["cached"], true);
        assert_eq!(cached["success"], true);
        assert_eq!(cached["data"]["company_name"], "Exemplu Comerț SRL");
        assert_eq!(site.page_hits(&known), hits);

        // A forced refresh (the original's spelling) queues a new job.
        let (status, refresh, _) =
            scrape(&s, &token, json!({"idno": known, "forced_refresh": true})).await;
        assert_eq!(status, 202, "{refresh}");
        assert_ne!(refresh["job_id"].as_str().unwrap(), job_id);
        assert_eq!(
            wait_job(&s, &token, refresh["job_id"].as_str().unwrap()).await["state"],
            "succeeded"
        );

        // A company that does not exist fails once, without retries.
        let unknown = idno("100260000000");
        let (_, queued, _) = scrape(&s, &token, json!({"idno": unknown})).await;
        let job = wait_job(&s, &token, queued["job_id"].as_str().unwrap()).await;
        assert_eq!(job["state"], "failed");
        assert_eq!(job["attempts"], 1, "{job}");
        assert!(
            job["error"].as_str().unwrap().contains("not found"),
            "{job}"
        );
        assert_eq!(
            s.get(&format!("/companies/{unknown}"), Some(&token))
                .await
                .0,
            404
        );

        // The source down: retried up to the limit, then failed with a clear reason.
        site.set_down(true);
        let other = idno("100300000000");
        let (_, queued, _) = scrape(&s, &token, json!({"idno": other})).await;
        let job = wait_job(&s, &token, queued["job_id"].as_str().unwrap()).await;
        assert_eq!(job["state"], "failed", "{job}");
        assert_eq!(job["attempts"], job["max_attempts"], "{job}");
        assert!(
            job["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("source"),
            "{job}"
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_job_is_finished_after_a_scraper_restart() {
    for backend in crate::support::backends() {
        let site = FixtureSite::start(Render::Server).await;
        let known = idno("100860003841");
        site.add(FixtureCompany::sample(&known));
        let base = site.base_url();
        // The stack's scraper-service takes requests but runs no workers: the job it queues
        // stays behind, as it would when the instance stops before getting to it.
        let s = crate::support::start(backend, "restart", |c| {
            c.scraper.source_base_url = url::Url::parse(&base).unwrap();
            c.scraper.fetcher = FetcherChoice::Http;
            c.scraper.workers = 0;
        })
        .await;
        s.register("patient").await;
        let token = s.login("patient").await;
        let (status, queued, _) = scrape(&s, &token, json!({"idno": known})).await;
        assert_eq!(status, 202, "{queued}");
        let job_id = queued["job_id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, job, _) = s.get(&format!("/scrape/jobs/{job_id}"), Some(&token)).await;
        assert_eq!(job["state"], "queued", "{job}");

        // The restarted service: a new instance on the same database and cache.
        let mut config = scraper_service::config::Config::for_tests(
            s.scraper_db(),
            crate::support::token_settings(),
        );
        config.source_base_url = url::Url::parse(&site.base_url()).unwrap();
        config.fetcher = FetcherChoice::Http;
        config.poll_interval = Duration::from_millis(50);
        let restarted = scraper_service::startup::Application::build(config, s.kv.clone())
            .await
            .unwrap();
        let (trigger, shutdown) = common::shutdown::shutdown_channel();
        let running = tokio::spawn(restarted.run_until_stopped(shutdown));

        let job = wait_job(&s, &token, &job_id).await;
        assert_eq!(job["state"], "succeeded", "{backend:?}: {job}");
        assert_eq!(job["data"]["company_name"], "Exemplu Comerț SRL");
        assert_eq!(site.page_hits(&known), 1);
        trigger.trigger();
        let _ = running.await;
        s.stop().await;
    }
}
