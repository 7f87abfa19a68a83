//! Ending every session of a user when their role changes — at once, and durably.
//!
//! A session records the role it was opened with and every service authorises from the live
//! session, so a role change must end the user's sessions (they log in again and get a session
//! with the new role). The change and a request to end the sessions are written in one
//! transaction ([`crate::store::users::change_role`]); then the request is carried out by the
//! first of:
//!
//! * whoever made the change, when it can reach the session store ([`carry_out`]): the admin
//!   endpoint in-request, `set-role` when it has the store;
//! * a login of that user, which settles their pending requests before it opens its session
//!   ([`settle_user`]) — so a request can never end a session opened after the change;
//! * every running instance, which looks for pending requests every
//!   `SESSION_REVOCATION_POLL_MS` ([`run`]). That covers `set-role` run in another process
//!   than the sessions' store (in one-process mode the sessions live in the platform's
//!   memory), a store that was down, and a crash between the commit and the end of the
//!   sessions.
//!
//! Requests are taken under a lock ([`crate::store::revocations`]), so one is never carried out
//! twice at once, and a login never opens its session while another party is still ending the
//! old ones. While the session store is down no session can be used at all (every check fails
//! closed), so a request left pending by an outage is carried out before any stale session
//! could serve again, give or take one poll interval.

use std::collections::BTreeSet;
use std::time::Duration;

use common::auth::Sessions;
use common::kv::KvError;
use common::shutdown::Shutdown;
use service_kit::db::Db;

use crate::store::revocations::{self, Taken, Which};
use crate::store::StoreError;

/// How many pending requests one look takes at most.
const BATCH: i64 = 100;

/// Why a request could not be carried out (it stays pending).
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kv(#[from] KvError),
}

/// Carries out request `id` (written by the caller): ends every session of its user and marks
/// it done. `None` when someone else carried it out first.
#[tracing::instrument(skip_all, fields(request = id))]
pub async fn carry_out(
    db: &Db,
    sessions: &Sessions,
    id: i64,
) -> Result<Option<usize>, RevokeError> {
    let taken = revocations::take(db, Which::Id(id)).await?;
    if taken.requests.is_empty() {
        return Ok(None);
    }
    let ended = end_taken(sessions, taken).await?;
    Ok(Some(ended))
}

/// Carries out every pending request of user `user_id` (before a login opens a session).
pub async fn settle_user(db: &Db, sessions: &Sessions, user_id: i64) -> Result<(), RevokeError> {
    if !revocations::any_pending(db, user_id).await? {
        return Ok(());
    }
    let taken = revocations::take(db, Which::OfUser(user_id)).await?;
    end_taken(sessions, taken).await.map(|_| ())
}

/// Carries out the pending requests (up to one batch); returns how many were done.
pub async fn process_pending(db: &Db, sessions: &Sessions) -> Result<usize, RevokeError> {
    let taken = revocations::take(db, Which::Oldest(BATCH)).await?;
    let count = taken.requests.len();
    if count > 0 {
        end_taken(sessions, taken).await?;
    }
    Ok(count)
}

/// Ends the sessions of every user among `taken` (once per user) and marks the requests done;
/// when the session store fails part-way, those done so far are recorded and the rest stay
/// pending. Returns how many sessions were live.
async fn end_taken(sessions: &Sessions, taken: Taken) -> Result<usize, RevokeError> {
    let mut done = Vec::with_capacity(taken.requests.len());
    let mut ended_for = BTreeSet::new();
    let mut ended = 0;
    let mut failure = None;
    for request in &taken.requests {
        if !ended_for.contains(&request.user_id) {
            match sessions.end_all_for_user(request.user_id).await {
                Ok(n) => {
                    tracing::info!(
                        user_id = request.user_id,
                        ended = n,
                        "sessions ended after a role change"
                    );
                    ended += n;
                    ended_for.insert(request.user_id);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        done.push(request.id);
    }
    taken.finish(&done).await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(ended),
    }
}

/// Looks for pending requests every `every` until `shutdown`.
pub async fn run(db: Db, sessions: Sessions, every: Duration, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    // Said once when looking starts failing and once when it recovers, not every tick.
    let mut failing = false;
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        match process_pending(&db, &sessions).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("pending session revocations are carried out again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot carry out pending session revocations; retrying");
            }
            Err(_) => {}
        }
    }
}
