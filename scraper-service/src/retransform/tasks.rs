//! The runs an instance of the service holds in the background: `POST /admin/retransform`
//! starts (or resumes) one and answers at once; shutdown stops them at a batch boundary and
//! leaves them interrupted, to be resumed by the next start of their scope.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::scrape::Idno;
use service_kit::db::Db;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::cache::CompanyCache;
use crate::config::RetransformSettings;
use crate::store::runs::Run;

use super::Begun;

/// The background runs of one instance; cheap to clone.
#[derive(Clone)]
pub struct Retransforms {
    inner: Arc<Inner>,
}

struct Inner {
    stop: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
}

impl Default for Retransforms {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                stop: watch::channel(false).0,
                tasks: Mutex::new(JoinSet::new()),
            }),
        }
    }
}

impl Retransforms {
    /// Takes the run of `idno`'s scope (see [`super::begin`]) and, unless a live process
    /// already holds it, runs it in the background as `holder`. Returns the run as taken.
    pub async fn start(
        &self,
        db: &Db,
        cache: &CompanyCache,
        holder: &str,
        settings: RetransformSettings,
        idno: Option<&Idno>,
    ) -> Result<Run, sqlx::Error> {
        let run = match super::begin(db, idno, holder, settings.lease).await? {
            Begun::Busy(run) => return Ok(run),
            Begun::Started(run) | Begun::Resumed(run) => run,
        };
        let (db, cache, holder, taken) =
            (db.clone(), cache.clone(), holder.to_owned(), run.clone());
        let mut stop = self.inner.stop.subscribe();
        let span =
            tracing::info_span!("retransform_run", run_id = %run.public_id, scope = %run.scope);
        let task = async move {
            let stopped = async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            };
            if let Err(e) =
                super::execute(&db, &cache, taken, &holder, settings, stopped, &mut |_| {}).await
            {
                tracing::error!(error = %e, "re-transform run failed; its lease will run out");
            }
        };
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task.instrument(span));
        Ok(run)
    }

    /// Stops the running runs and waits at most `grace` for them to record where they are;
    /// the ones still busy then are dropped (their leases run out, and they stay resumable).
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.inner.stop.send(true);
        let mut tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!("re-transform runs still busy after the grace period; dropping them");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}
