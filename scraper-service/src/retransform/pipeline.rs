//! The three stages of a run, overlapped: read a batch of pages (keyset pagination over
//! `source_data.id`, from the run's checkpoint on), parse it on every core
//! ([`super::pool`]), commit it (records and checkpoint in one transaction) and cache each
//! company whose latest record it wrote. While one batch is parsed the next is read and the
//! previous one committed; bounded channels between the stages keep at most three batches of
//! pages in memory.

use tokio::sync::mpsc;

use crate::cache::CompanyCache;
use crate::config::RetransformSettings;
use crate::store;
use crate::store::runs::Run;
use service_kit::db::Db;

use super::pool;

/// How the stages ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Every page after the checkpoint was processed.
    Done,
    /// Another process holds the run now: nothing more was written.
    LeaseLost,
}

/// Runs the stages for `run` (held by `holder`) until no page is left after its checkpoint.
/// `run` follows each commit (counts and checkpoint), and `progress` sees it then.
pub async fn run(
    db: &Db,
    cache: &CompanyCache,
    run: &mut Run,
    holder: &str,
    settings: RetransformSettings,
    progress: &mut (dyn FnMut(&Run) + Send),
) -> Result<Flow, sqlx::Error> {
    let scope = run.idno();
    let limit = i64::try_from(settings.batch).unwrap_or(i64::MAX);
    let (pages_tx, mut pages_rx) = mpsc::channel(1);
    let (parsed_tx, mut parsed_rx) = mpsc::channel(1);

    let mut after = run.checkpoint;
    let read = async move {
        loop {
            let pages = store::pages::usable_after(db, after, scope.as_ref(), limit).await?;
            let Some(last) = pages.last() else { break };
            after = last.page.id;
            if pages_tx.send(pages).await.is_err() {
                break; // A later stage stopped.
            }
        }
        Ok::<_, sqlx::Error>(())
    };
    let threads = settings.threads;
    let parse = async move {
        while let Some(pages) = pages_rx.recv().await {
            let batch = tokio::task::spawn_blocking(move || pool::transform_batch(pages, threads))
                .await
                .map_err(|e| sqlx::Error::Protocol(format!("the parsing task failed: {e}")))?;
            if parsed_tx.send(batch).await.is_err() {
                break;
            }
        }
        Ok::<_, sqlx::Error>(())
    };
    let run_id = run.id;
    let write = async move {
        while let Some(batch) = parsed_rx.recv().await {
            let Some(latest) =
                store::runs::commit_batch(db, run_id, holder, settings.lease, &batch).await?
            else {
                return Ok(Flow::LeaseLost);
            };
            let succeeded = i64::try_from(batch.records.len()).unwrap_or(i64::MAX);
            run.processed += batch.processed;
            run.succeeded += succeeded;
            run.failed += batch.processed - succeeded;
            run.checkpoint = batch.last_id;
            for record in &latest {
                cache.remember(record).await;
            }
            progress(run);
        }
        Ok::<_, sqlx::Error>(Flow::Done)
    };
    // A stage that stops closes its channel and the others stop after it; the reader's and
    // the parser's errors come first: the writer only ends early on its own error.
    let (read, parse, write) = tokio::join!(read, parse, write);
    read?;
    parse?;
    write
}
