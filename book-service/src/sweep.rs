//! The periodic sweep every instance runs: ready holds not picked up by their deadline expire
//! (the holder is told: `hold_expired`) and their copy passes to the next holder (who is
//! told: `hold_ready`) or back to the shelf; copies left on the shelf while holds wait are
//! given to the holders; the scheduled notices go out ([`crate::notices`]); idempotency
//! records and published events past their retention are forgotten.
//!
//! Several instances sweep the same database safely: each hold is expired in its own
//! transaction under the title's lock by a guarded update (`state = 'ready' AND
//! pickup_deadline < now`), so a hold another instance expired first is simply skipped; the
//! notices are claimed the same way.

use std::time::Duration;

use common::shutdown::Shutdown;
use events::EventKind;
use service_kit::db::Db;

use crate::apply::pass_on;
use crate::clock::SharedClock;
use crate::notices;
use crate::outbox::{self, Bell, Happened};
use crate::rules::{CopyStatus, Rules};
use crate::store::{commands, copies, holds, outbox as stored_events, titles, StoreError, Tx};

/// Holds, titles and notices handled per pass; the rest wait for the next pass.
const BATCH: i64 = 100;

/// What the sweep needs.
#[derive(Clone)]
pub struct Sweeper {
    pub db: Db,
    pub clock: SharedClock,
    pub rules: Rules,
    /// Time between passes.
    pub every: Duration,
    /// How long applied commands are remembered for de-duplication.
    pub retention: chrono::Duration,
    /// How long published events stay in the outbox (wall-clock time).
    pub outbox_retention: chrono::Duration,
    /// Rung after events were committed.
    pub bell: Bell,
}

impl Sweeper {
    /// Sweeps every `every` until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "hold sweep failed; trying again at the next pass");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = &mut stop => return,
            }
        }
    }

    /// One pass.
    pub async fn pass(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut expired = 0;
        for (hold_id, title_id) in holds::overdue_pickups(&self.db, now, BATCH).await? {
            let mut tx = Tx::begin(&self.db).await?;
            titles::lock(&mut tx, title_id).await?;
            if let Some((copy, user_id)) = holds::expire(&mut tx, hold_id, now).await? {
                let lapsed = Happened::hold(EventKind::HoldExpired, title_id, user_id, hold_id);
                outbox::record(&mut tx, lapsed, now).await?;
                pass_on(
                    &mut tx,
                    &self.rules,
                    copy,
                    title_id,
                    CopyStatus::OnHold,
                    now,
                )
                .await?;
                expired += 1;
            }
            tx.commit().await?;
            self.bell.ring();
        }
        for title_id in holds::stranded_titles(&self.db, BATCH).await? {
            let mut tx = Tx::begin(&self.db).await?;
            titles::lock(&mut tx, title_id).await?;
            while let Some((hold_id, user_id)) = holds::first_waiting(&mut tx, title_id).await? {
                let Some(copy) =
                    copies::take_available(&mut tx, title_id, CopyStatus::OnHold).await?
                else {
                    break;
                };
                let deadline = self.rules.pickup_deadline(now);
                holds::make_ready(&mut tx, hold_id, copy, now, deadline).await?;
                let ready = Happened::hold(EventKind::HoldReady, title_id, user_id, hold_id);
                outbox::record(&mut tx, ready.until(deadline), now).await?;
            }
            tx.commit().await?;
            self.bell.ring();
        }
        let noticed = notices::send_due(&self.db, &self.rules, now, BATCH).await?;
        if noticed > 0 {
            self.bell.ring();
        }
        let forgotten = commands::purge(&self.db, now - self.retention).await?;
        let published =
            stored_events::purge(&self.db, chrono::Utc::now() - self.outbox_retention).await?;
        if expired > 0 || noticed > 0 || forgotten > 0 || published > 0 {
            tracing::info!(expired, noticed, forgotten, published, "hold sweep");
        }
        Ok(())
    }
}
