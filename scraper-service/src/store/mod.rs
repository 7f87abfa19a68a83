//! All SQL of scraper-service, written once for PostgreSQL and SQLite (`$1` parameters and
//! [`service_kit::with_db!`]): the job queue ([`jobs`], `scrape_jobs`), fetched pages
//! ([`pages`], `source_data`), company records ([`records`], `transformed_data`), re-transform
//! runs ([`runs`], `retransform_runs`), and the migrations that create them. Nothing outside
//! this module runs SQL.
//!
//! Timestamps are UTC `NaiveDateTime`s computed here, in whole microseconds (what PostgreSQL
//! keeps), so a value built from what was written equals the value read back.

pub mod jobs;
pub mod pages;
pub mod records;
pub mod runs;

use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound};
use sqlx::migrate::Migrator;

/// The PostgreSQL migrations.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
/// The SQLite migrations (same meaning).
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The current time as stored: UTC, whole microseconds.
fn now() -> NaiveDateTime {
    service_kit::db::now().trunc_subsecs(6)
}

/// [`now`] plus `d` (saturating at the latest representable time).
fn after(d: Duration) -> NaiveDateTime {
    let now = now();
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(NaiveDateTime::MAX)
}
