//! One attempt at a job: Extract (fetch the page) → Load (store it verbatim) → Transform
//! (parse it into a record), and what the attempt's outcome means for the job.
//!
//! A job whose company already has a record fetched after the job was queued (another
//! user's job for the same company ran meanwhile) is completed from that record, without
//! fetching: several users asking for one company at once cost one fetch.
//!
//! Transient failures (network, timeout, 5xx, a page that never rendered) are worth a retry;
//! permanent ones (company not found, 404, a page without company data) are not.

use crate::extract::FetchError;
use crate::state::AppState;
use crate::store;
use crate::store::jobs::Job;
use crate::transform::{self, TransformError};

/// The failure reason of a job whose company does not exist.
pub const NOT_FOUND_REASON: &str = "company not found";

/// How one attempt ended.
#[derive(Debug)]
pub enum Outcome {
    Succeeded {
        source_id: i64,
        transformed_id: i64,
    },
    Retry {
        error: String,
        source_id: Option<i64>,
    },
    Fail {
        error: String,
        source_id: Option<i64>,
    },
}

/// One Extract → Load → Transform pass, unless a record fetched since the job was queued
/// answers it already; a record written is cached at once.
pub async fn attempt(s: &AppState, job: &Job) -> Outcome {
    match fetched_since_queued(s, job).await {
        Ok(Some(done)) => return done,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for a record fetched meanwhile");
            return Outcome::Retry {
                error: "database unavailable while reading records".into(),
                source_id: None,
            };
        }
    }
    let url = s.config.company_url(&job.idno);
    let page = match s.fetcher.fetch(&url).await {
        Ok(page) => page,
        Err(FetchError::Transient(m)) => {
            return Outcome::Retry {
                error: format!("source unreachable: {m}"),
                source_id: None,
            }
        }
        Err(FetchError::Permanent(m)) => {
            return Outcome::Fail {
                error: format!("fetch refused: {m}"),
                source_id: None,
            }
        }
    };

    // Load before any parsing: the page is kept whatever Transform makes of it.
    let stored = match store::pages::store(&s.db, &job.idno, &page).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a fetched page");
            return Outcome::Retry {
                error: "database unavailable while storing the page".into(),
                source_id: None,
            };
        }
    };
    let source_id = Some(stored.id);
    match page.status {
        404 | 410 => {
            return Outcome::Fail {
                error: NOT_FOUND_REASON.into(),
                source_id,
            }
        }
        408 | 425 | 429 | 500..=599 => {
            return Outcome::Retry {
                error: format!("source unreachable: HTTP {}", page.status),
                source_id,
            }
        }
        200..=299 => {}
        other => {
            return Outcome::Fail {
                error: format!("source answered HTTP {other}"),
                source_id,
            }
        }
    }

    let idno = job.idno.clone();
    let rendered = page.rendered;
    let html = page.html;
    let parsed = match tokio::task::spawn_blocking(move || transform::transform(&html, &idno)).await
    {
        Ok(result) => result,
        Err(e) => {
            return Outcome::Fail {
                error: format!("transform crashed: {e}"),
                source_id,
            }
        }
    };
    let company = match parsed {
        Ok(c) => c,
        Err(TransformError::NotFound) => {
            return Outcome::Fail {
                error: NOT_FOUND_REASON.into(),
                source_id,
            }
        }
        Err(TransformError::NoData) if !rendered => {
            let error = format!(
                "source unreachable: the page did not render within {} ms",
                s.config.page_timeout.as_millis()
            );
            return Outcome::Retry { error, source_id };
        }
        Err(e) => {
            return Outcome::Fail {
                error: e.to_string(),
                source_id,
            }
        }
    };

    let written = match store::records::write(&s.db, &stored, &job.idno, &company).await {
        Ok(written) => written,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a company record");
            return Outcome::Retry {
                error: "database unavailable while storing the record".into(),
                source_id,
            };
        }
    };
    s.cache.remember(&written.record).await;
    Outcome::Succeeded {
        source_id: stored.id,
        transformed_id: written.id,
    }
}

/// Success from the company's latest record, when its page was fetched after `job` was queued.
async fn fetched_since_queued(s: &AppState, job: &Job) -> Result<Option<Outcome>, sqlx::Error> {
    let Some(latest) = store::records::latest(&s.db, &job.idno).await? else {
        return Ok(None);
    };
    let queued_at = job.created_at.and_utc();
    match (latest.record.source_id, latest.record.fetched_at) {
        (Some(source_id), Some(fetched_at)) if fetched_at >= queued_at => {
            tracing::info!(
                source_id,
                "a record was fetched since the job was queued; not fetching"
            );
            Ok(Some(Outcome::Succeeded {
                source_id,
                transformed_id: latest.id,
            }))
        }
        _ => Ok(None),
    }
}
