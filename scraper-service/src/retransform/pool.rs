//! Parsing one batch of stored pages on several threads: the CPU-bound stage of a run.
//!
//! Plain scoped threads taking pages from a shared queue (pages differ in size, so a fixed
//! split would leave threads idle), called from a blocking task so the async runtime never
//! parses. A parser panic is caught and counts as a failed page, as it did when each page was
//! parsed on its own blocking task.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use api::scrape::Idno;

use crate::store::pages::StoredHtml;
use crate::store::runs::{Batch, NewRecord};
use crate::transform;

/// Parses `pages` (in id order, not empty) on `threads` threads, the calling one included.
pub fn transform_batch(pages: Vec<StoredHtml>, threads: usize) -> Batch {
    let last_id = pages.last().map_or(0, |p| p.page.id);
    let processed = i64::try_from(pages.len()).unwrap_or(i64::MAX);
    let threads = threads.clamp(1, pages.len().max(1));
    let queue = Mutex::new(pages.into_iter().enumerate());
    let work = || {
        let mut done = Vec::new();
        loop {
            // The lock is held only to take the next page, never while parsing.
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((i, page)) = next else { break };
            if let Some(record) = parse(page) {
                done.push((i, record));
            }
        }
        done
    };
    let mut records: Vec<(usize, NewRecord)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for helper in helpers {
            // `parse` catches panics, so a helper cannot have panicked.
            all.extend(helper.join().unwrap_or_default());
        }
        all
    });
    records.sort_unstable_by_key(|(i, _)| *i);
    Batch {
        last_id,
        processed,
        records: records.into_iter().map(|(_, r)| r).collect(),
    }
}

/// The record `stored` yields, if any (the reason it yields none is logged).
fn parse(stored: StoredHtml) -> Option<NewRecord> {
    let source_id = stored.page.id;
    let (Some(raw_idno), Some(html)) = (stored.idno, stored.raw_html) else {
        tracing::debug!(source_id, "stored page without IDNO or body");
        return None;
    };
    // Rows of the original app may name no valid company.
    let Ok(idno) = Idno::parse(&raw_idno) else {
        tracing::info!(source_id, idno = %raw_idno, "stored page has no valid IDNO");
        return None;
    };
    match catch_unwind(AssertUnwindSafe(|| transform::transform(&html, &idno))) {
        Ok(Ok(company)) => Some(NewRecord {
            page: stored.page,
            idno,
            company,
        }),
        Ok(Err(e)) => {
            tracing::debug!(source_id, idno = %idno, reason = %e, "stored page yields no record");
            None
        }
        Err(_) => {
            tracing::error!(source_id, idno = %idno, "transform crashed");
            None
        }
    }
}
