//! Corpus generator: writes synthetic stored pages into `source_data` for re-transform
//! benchmarks — the fixture templates (`tests/fixtures/`) filled with varied companies and
//! wrapped in site chrome up to a realistic size (see `tests/support/corpus.rs`).
//!
//! ```sh
//! SCRAPER_SERVICE_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//! SCRAPER_SERVICE_DATABASE_SCHEMA=bench_retransform \
//! cargo run --release -p scraper-service --example seed_pages -- [PAGES] [--page-kib KIB] [--companies N]
//! ```
//!
//! PAGES defaults to 100 000, KIB to 194 (the size of a real company page of the source),
//! companies to 80 % of the pages (so a fifth of the companies have a second page). Pages go
//! in with multi-row inserts, 100 rows a statement, generated on one thread while two
//! connections insert; the fetch times are spread over the last two days, so about half the
//! records are fresh enough to be cached. Migrates the schema first (creating it).

#[path = "../tests/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDateTime, SubsecRound};
use scraper_service::store;
use service_kit::db::Db;
use service_kit::with_db;
use tokio::sync::{mpsc, Mutex};

/// Rows per INSERT statement.
const ROWS: usize = 100;
/// Connections inserting at once.
const INSERTERS: usize = 2;

/// A row of `source_data` to insert.
struct Row {
    idno: String,
    url: String,
    html: String,
    hash: String,
    fetched_at: NaiveDateTime,
}

#[derive(Debug)]
struct Args {
    pages: u64,
    page_bytes: usize,
    companies: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        pages: 100_000,
        page_bytes: corpus::REAL_PAGE_BYTES,
        companies: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--page-kib" => args.page_bytes = value("--page-kib")? as usize * 1024,
            "--companies" => args.companies = value("--companies")?,
            n => args.pages = n.parse().map_err(|_| format!("unknown argument {n:?}"))?,
        }
    }
    if args.companies == 0 {
        args.companies = (args.pages * 4 / 5).max(1);
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = args()?;
    let config = scraper_service::config::db_from_env()?;
    let db = Db::open(
        &config,
        &store::POSTGRES_MIGRATIONS,
        &store::SQLITE_MIGRATIONS,
    )
    .await?;
    eprintln!("seeding {args:?} into {}", db.backend_name());
    let started = Instant::now();
    let now = service_kit::db::now().trunc_subsecs(6);

    let (tx, rx) = mpsc::channel::<Vec<Row>>(4);
    let generator = std::thread::spawn(move || {
        let mut bytes = 0usize;
        for first in (0..args.pages).step_by(ROWS) {
            let rows: Vec<Row> = (first..(first + ROWS as u64).min(args.pages))
                .map(|n| {
                    let page = corpus::page(n, args.companies, args.page_bytes);
                    bytes += page.html.len();
                    // Spread over the last two days, newer pages later.
                    let age = (args.pages - n) * 172_800 / args.pages.max(1);
                    Row {
                        idno: page.idno.to_string(),
                        hash: store::pages::content_hash(&page.html),
                        url: page.url,
                        html: page.html,
                        fetched_at: now - chrono::Duration::seconds(age as i64),
                    }
                })
                .collect();
            if tx.blocking_send(rows).is_err() {
                break;
            }
        }
        bytes
    });

    let rx = Arc::new(Mutex::new(rx));
    let mut inserters = Vec::new();
    for _ in 0..INSERTERS {
        let (rx, db) = (Arc::clone(&rx), db.clone());
        inserters.push(tokio::spawn(async move {
            loop {
                let Some(rows) = rx.lock().await.recv().await else {
                    break;
                };
                insert(&db, &rows).await?;
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for inserter in inserters {
        inserter.await??;
    }
    let bytes = generator.join().map_err(|_| "the generator panicked")?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} pages ({:.1} MiB, {:.1} KiB each on average) in {secs:.1} s: {:.0} pages/s",
        args.pages,
        bytes as f64 / 1_048_576.0,
        bytes as f64 / 1024.0 / args.pages.max(1) as f64,
        args.pages as f64 / secs
    );
    db.close().await;
    Ok(())
}

/// One multi-row INSERT of `rows`.
async fn insert(db: &Db, rows: &[Row]) -> Result<(), sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO source_data (idno, url, raw_html, status_code, created_at, content_hash, \
         fetched_at, fetch_count, last_fetched_at) VALUES ",
    );
    for i in 0..rows.len() {
        let k = i * 5;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, 200, ${}, ${}, ${}, 1, ${})",
            k + 1,
            k + 2,
            k + 3,
            k + 4,
            k + 5,
            k + 4,
            k + 4
        ));
    }
    with_db!(db, pool => {
        let mut q = sqlx::query(&sql);
        for r in rows {
            q = q.bind(&r.idno).bind(&r.url).bind(&r.html).bind(r.fetched_at).bind(&r.hash);
        }
        q.execute(pool).await.map(|_| ())
    })
}
