//! Re-transform runs at scale, on SQLite with the in-process store and on PostgreSQL with
//! Redis when `TEST_DATABASE_URL` and `TEST_REDIS_URL` are set: the pipeline writes what the
//! per-page transform gives, a run killed mid-way resumes at its checkpoint with every page
//! counted once, and the progress endpoint is for admins.

mod support;

use std::time::{Duration, Instant};

use api::scrape::{Idno, RetransformState};
use common::auth::Role;
use common::kv::Kv;
use reqwest::StatusCode;
use scraper_service::cache::CompanyCache;
use scraper_service::config::RetransformSettings;
use scraper_service::extract::FetchedPage;
use scraper_service::retransform::{self, Begun};
use scraper_service::store;
use scraper_service::store::runs::Run;
use scraper_service::transform::{self, PARSER_VERSION};
use serde_json::{json, Value};
use service_kit::db::Db;
use service_kit::with_db;
use support::fixture::{FixtureSite, Render};
use support::{config, corpus, TestApp};
use test_support::{backends, TestDb};

/// An administrator (tests' default user is [`support::USER_ID`]).
const ADMIN_ID: i64 = 900;

/// Small batches on two threads, and a short lease so that a dead holder's run is free soon.
fn settings() -> RetransformSettings {
    RetransformSettings {
        batch: 7,
        threads: 2,
        lease: Duration::from_secs(1),
    }
}

async fn open(db: &TestDb) -> Db {
    Db::open(
        &db.config(),
        &store::POSTGRES_MIGRATIONS,
        &store::SQLITE_MIGRATIONS,
    )
    .await
    .expect("database opens")
}

async fn store_page(db: &Db, idno: &Idno, html: String, status: u16) -> i64 {
    let page = FetchedPage {
        url: format!("https://openmoney.md/companies/{idno}"),
        status,
        html,
        rendered: true,
    };
    store::pages::store(db, idno, &page)
        .await
        .expect("page stored")
        .id
}

/// Stores `n` corpus pages (8 KiB each, several per company: some say "not found", some
/// are empty shells), the fixture files, and a failed fetch that no run may read.
async fn seed(db: &Db, n: u64) {
    for i in 0..n {
        let page = corpus::page(i, n * 2 / 3, 8 * 1024);
        store_page(db, &page.idno, page.html, 200).await;
    }
    for (stem, file) in [
        ("100860003841", "rendered_ro.html"),
        ("100360000000", "cedilla_messy.html"),
        ("100860003841", "russian.html"),
        ("100260000000", "not_found.html"),
        ("100860003841", "shell.html"),
    ] {
        let html = std::fs::read_to_string(format!("tests/fixtures/{file}")).expect("fixture");
        store_page(db, &Idno::from_stem(stem), html, 200).await;
    }
    let down = Idno::from_stem("100860003841");
    store_page(db, &down, "<p>Service Unavailable</p>".into(), 503).await;
}

/// Each usable stored page, and what the per-page transform makes of it, in id order.
async fn expected(db: &Db) -> Vec<(i64, Result<transform::ParsedCompany, String>)> {
    let sql = "SELECT CAST(id AS BIGINT), idno, raw_html FROM source_data \
               WHERE status_code >= 200 AND status_code < 300 ORDER BY id";
    let rows: Vec<(i64, String, String)> =
        with_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await).expect("pages");
    rows.into_iter()
        .map(|(id, idno, html)| {
            let idno = Idno::parse(&idno).expect("a valid IDNO");
            (
                id,
                transform::transform(&html, &idno).map_err(|e| e.to_string()),
            )
        })
        .collect()
}

/// The records in `transformed_data` as (source id, company, parser version), by source id.
async fn records(db: &Db) -> Vec<(i64, transform::ParsedCompany, String)> {
    type Row = (
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
        String,
    );
    let sql = "SELECT CAST(t.source_id AS BIGINT), t.idno, t.company_name, t.legal_form, t.address, \
               t.registration_date, t.status, t.directors, t.activities, t.parser_version \
               FROM transformed_data t JOIN source_data s ON s.id = t.source_id ORDER BY t.source_id";
    let rows: Vec<Row> =
        with_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await).expect("records");
    rows.into_iter()
        .map(|r| {
            let list = |j: &str| serde_json::from_str::<Vec<String>>(j).expect("a JSON list");
            let company = transform::ParsedCompany {
                idno: None,
                company_name: r.2,
                legal_form: r.3,
                address: r.4,
                registration_date: r.5,
                status: r.6,
                directors: list(&r.7),
                activities: list(&r.8),
            };
            (r.0, company, r.9)
        })
        .collect()
}

/// What a record keeps of a parsed company (the IDNO the page shows is checked, not kept).
fn kept(mut c: transform::ParsedCompany) -> transform::ParsedCompany {
    c.idno = None;
    c
}

/// Runs `run` to its end as `holder`.
async fn finish(db: &Db, cache: &CompanyCache, run: Run, holder: &str) -> Run {
    retransform::execute(
        db,
        cache,
        run,
        holder,
        settings(),
        std::future::pending(),
        &mut |_| {},
    )
    .await
    .expect("the run ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_writes_what_the_per_page_transform_gives() {
    let dir = tempfile::tempdir().unwrap();
    for (test_db, kv) in backends(dir.path(), "rt-equal").await {
        let db = open(&test_db).await;
        seed(&db, 120).await;
        let want = expected(&db).await;
        let cache = CompanyCache::new(kv.clone(), Duration::from_secs(86_400));

        let Begun::Started(run) = retransform::begin(&db, None, "tester", settings().lease)
            .await
            .unwrap()
        else {
            panic!("a new run starts")
        };
        assert_eq!(run.total, want.len() as i64);
        let run = finish(&db, &cache, run, "tester").await;

        assert_eq!(run.state(), RetransformState::Succeeded, "{run:?}");
        let ok = want.iter().filter(|(_, r)| r.is_ok()).count() as i64;
        assert_eq!(
            (run.processed, run.succeeded, run.failed),
            (want.len() as i64, ok, want.len() as i64 - ok)
        );
        assert!(
            ok > 100 && run.failed > 0,
            "the corpus has both kinds: {run:?}"
        );
        let got = records(&db).await;
        let want: Vec<_> = want
            .into_iter()
            .filter_map(|(id, r)| r.ok().map(|c| (id, kept(c), PARSER_VERSION.to_owned())))
            .collect();
        assert_eq!(
            got, want,
            "one record per page, as the per-page transform gives it"
        );

        // Each company's latest record is the one cached.
        for (id, company, _) in &got {
            let idno: String = with_db!(&db, pool => sqlx::query_scalar("SELECT idno FROM source_data WHERE id = $1").bind(id).fetch_one(pool).await).unwrap();
            let idno = Idno::parse(&idno).unwrap();
            let latest = store::records::latest(&db, &idno).await.unwrap().unwrap();
            if latest.record.source_id == Some(*id) {
                let key = scraper_service::cache::key(idno.as_str());
                let cached = kv
                    .get(&key)
                    .await
                    .unwrap()
                    .expect("the latest record is cached");
                let cached: api::scrape::CompanyRecord = serde_json::from_str(&cached).unwrap();
                assert_eq!(cached, latest.record);
                assert_eq!(cached.company_name, company.company_name);
            }
        }
        forget_all(&kv, &db).await;
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_resumes_at_its_checkpoint_and_counts_each_page_once() {
    let dir = tempfile::tempdir().unwrap();
    for (test_db, kv) in backends(dir.path(), "rt-resume").await {
        let db = open(&test_db).await;
        seed(&db, 60).await;
        let want = expected(&db).await;
        let pages = want.len() as i64;
        let cache = CompanyCache::new(kv.clone(), Duration::from_secs(86_400));

        // A first process takes the run and dies after a few batches: its task is aborted
        // while it waits, so it never releases the run.
        let Begun::Started(run) = retransform::begin(&db, None, "first", settings().lease)
            .await
            .unwrap()
        else {
            panic!("a new run starts")
        };
        let (public_id, run_id) = (run.public_id.clone(), run.id);
        let (signal, signalled) = tokio::sync::oneshot::channel();
        let mut signal = Some(signal);
        let (db2, cache2) = (db.clone(), cache.clone());
        let first = tokio::spawn(async move {
            let mut batches = 0;
            let mut progress = |_: &Run| {
                batches += 1;
                if batches == 3 {
                    if let Some(signal) = signal.take() {
                        let _ = signal.send(());
                    }
                    // Give the test the time to kill it before it goes on.
                    std::thread::sleep(Duration::from_millis(300));
                }
            };
            let stop = std::future::pending();
            retransform::execute(&db2, &cache2, run, "first", settings(), stop, &mut progress).await
        });
        signalled.await.expect("three batches committed");
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());

        let killed = store::runs::by_id(&db, run_id).await.unwrap().unwrap();
        assert!(
            killed.processed >= 3 * 7 && killed.processed < pages,
            "{killed:?}"
        );
        assert_eq!(killed.processed, killed.succeeded + killed.failed);
        let done_before: i64 = want
            .iter()
            .filter(|(id, _)| *id <= killed.checkpoint)
            .count() as i64;
        assert_eq!(killed.processed, done_before, "counts match the checkpoint");

        // While its lease lives the run is busy, whoever asks; then it is resumed.
        assert!(matches!(
            retransform::begin(&db, None, "second", settings().lease).await.unwrap(),
            Begun::Busy(ref r) if r.id == run_id
        ));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(killed.view().state, RetransformState::Interrupted);
        let Begun::Resumed(resumed) = retransform::begin(&db, None, "second", settings().lease)
            .await
            .unwrap()
        else {
            panic!("the run resumes")
        };
        assert_eq!(
            (resumed.id, resumed.checkpoint),
            (run_id, killed.checkpoint)
        );
        assert_eq!(resumed.total, pages, "pages done plus pages left");
        let run = finish(&db, &cache, resumed, "second").await;

        assert_eq!(run.state(), RetransformState::Succeeded);
        assert_eq!(run.public_id, public_id);
        let ok = want.iter().filter(|(_, r)| r.is_ok()).count() as i64;
        assert_eq!(
            (run.total, run.processed, run.succeeded, run.failed),
            (pages, pages, ok, pages - ok),
            "every page counted exactly once"
        );
        assert_eq!(records(&db).await.len() as i64, ok);

        // The first process, back from the dead, cannot write over it.
        let batch = store::runs::Batch {
            last_id: 1,
            processed: 1,
            records: vec![],
        };
        assert!(
            store::runs::commit_batch(&db, run_id, "first", settings().lease, &batch)
                .await
                .unwrap()
                .is_none()
        );
        // A run of another parser version left unfinished is not resumed but replaced.
        let Begun::Started(next) = retransform::begin(&db, None, "third", settings().lease)
            .await
            .unwrap()
        else {
            panic!("a finished run is not resumed")
        };
        let old = "UPDATE retransform_runs SET parser_version = '0.9', state = 'interrupted' WHERE id = $1";
        with_db!(&db, pool => sqlx::query(old).bind(next.id).execute(pool).await.map(|_| ()))
            .unwrap();
        let Begun::Started(newest) = retransform::begin(&db, None, "third", settings().lease)
            .await
            .unwrap()
        else {
            panic!("an older parser's run is replaced")
        };
        assert_ne!(newest.id, next.id);
        let abandoned = store::runs::by_id(&db, next.id).await.unwrap().unwrap();
        assert_eq!(abandoned.state(), RetransformState::Abandoned);
        finish(&db, &cache, newest, "third").await;
        forget_all(&kv, &db).await;
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_started_and_polled_by_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    for (test_db, kv) in backends(dir.path(), "rt-api").await {
        let site = FixtureSite::start(Render::Server).await;
        let mut c = config(test_db.config(), &site.base_url());
        c.workers = 0;
        c.retransform = settings();
        let app = TestApp::spawn(c, kv.clone()).await;
        seed(&app.db, 200).await;
        let pages = expected(&app.db).await.len() as u64;

        let admin = app.login(ADMIN_ID, Role::Admin).await;
        let (status, headers, run) = app
            .post_as(Some(&admin), "/admin/retransform", json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        let id = run["id"].as_str().expect("run id").to_owned();
        let location = format!("/admin/retransform/{id}");
        assert_eq!(headers["location"], location.as_str());
        assert_eq!(run["idno"], Value::Null);
        assert_eq!(run["parser_version"], PARSER_VERSION);
        assert_eq!(run["total"], pages);
        assert!(
            matches!(run["state"].as_str(), Some("running" | "succeeded")),
            "{run}"
        );

        // The service keeps answering while the run parses; the run is polled to its end.
        let deadline = Instant::now() + Duration::from_secs(60);
        let done = loop {
            let asked = Instant::now();
            let (status, _) = app.get("/readyz").await;
            assert_eq!(status, StatusCode::OK);
            assert!(
                asked.elapsed() < Duration::from_secs(2),
                "readyz took {:?}",
                asked.elapsed()
            );
            let (status, body) = app.get_as(Some(&admin), &format!("{location}/")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(body["processed"].as_u64() <= Some(pages), "{body}");
            if body["state"] == "succeeded" {
                break body;
            }
            assert!(Instant::now() < deadline, "the run did not end: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(done["processed"], pages);
        assert_eq!(
            done["succeeded"].as_u64().unwrap() + done["failed"].as_u64().unwrap(),
            pages
        );
        assert!(
            done["finished_at"].is_string() && done["error"].is_null(),
            "{done}"
        );

        // Another user may neither start nor read a run; unknown and malformed ids.
        let (status, body) = app.get(&location).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::FORBIDDEN,
                json!({"detail": "Admin role required"})
            )
        );
        let (status, _, _) = app.post("/admin/retransform", json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app.get_as(None, &location).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = app
            .get_as(
                Some(&admin),
                &format!("/admin/retransform/{}", uuid::Uuid::new_v4()),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"detail": "Run not found"}))
        );
        let (status, body) = app.get_as(Some(&admin), "/admin/retransform/17").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["path", "id"]));

        // One company's run.
        let one = Idno::from_stem("100860003841");
        let (status, _, run) = app
            .post_as(
                Some(&admin),
                "/admin/retransform",
                json!({"idno": one.as_str()}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        assert_eq!(run["idno"], one.as_str());
        let mine = wait_run(&app, &admin, run["id"].as_str().unwrap()).await;
        let of_one = usable_of(&app.db, &one).await;
        assert_eq!(mine["processed"].as_i64(), Some(of_one));
        forget_all(&kv, &app.db).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_a_run_interrupted_and_the_next_start_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    for (test_db, kv) in backends(dir.path(), "rt-stop").await {
        let site = FixtureSite::start(Render::Server).await;
        let mut c = config(test_db.config(), &site.base_url());
        c.workers = 0;
        // One thread parsing batches of one page of 194 KiB: long enough to stop it mid-way.
        c.retransform = RetransformSettings {
            batch: 1,
            threads: 1,
            lease: Duration::from_secs(30),
        };
        let app = TestApp::spawn(c.clone(), kv.clone()).await;
        for i in 0..40 {
            let page = corpus::page(i, 30, corpus::REAL_PAGE_BYTES);
            store_page(&app.db, &page.idno, page.html, 200).await;
        }
        let admin = app.login(ADMIN_ID, Role::Admin).await;
        let (status, _, run) = app
            .post_as(Some(&admin), "/admin/retransform", json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        // Asking again while it runs joins it.
        let (_, _, again) = app
            .post_as(Some(&admin), "/admin/retransform", json!({}))
            .await;
        assert_eq!(again["id"], id.as_str());
        app.stop().await;
        let db = open(&test_db).await;

        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        let stopped = store::runs::by_public_id(&db, &uuid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stopped.state(),
            RetransformState::Interrupted,
            "{stopped:?}"
        );
        assert!(
            stopped.lease_owner.is_none() && stopped.processed < 40,
            "{stopped:?}"
        );

        // No need to wait for a lease: the next start (here the command) resumes it.
        let report = scraper_service::commands::retransform(&c.db, c.cache_ttl, &kv, None)
            .await
            .expect("the run resumes and ends");
        assert_eq!(report.processed, 40);
        let ended = store::runs::by_public_id(&db, &uuid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ended.state(), RetransformState::Succeeded);
        forget_all(&kv, &db).await;
        db.close().await;
    }
}

/// Polls run `id` until it has ended.
async fn wait_run(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = app
            .get_as(Some(token), &format!("/admin/retransform/{id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["state"] != "running" {
            return body;
        }
        assert!(Instant::now() < deadline, "run {id} did not end: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Usable stored pages of `idno`.
async fn usable_of(db: &Db, idno: &Idno) -> i64 {
    store::pages::count_usable_after(db, 0, Some(idno))
        .await
        .unwrap()
}

/// Deletes the cache entries of every stored company (a shared Redis outlives the test).
async fn forget_all(kv: &Kv, db: &Db) {
    let ids: Vec<String> = with_db!(db, pool => sqlx::query_scalar("SELECT DISTINCT idno FROM source_data").fetch_all(pool).await).unwrap();
    support::forget(kv, &ids).await;
}
