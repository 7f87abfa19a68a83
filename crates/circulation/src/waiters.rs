//! Requests waiting for their reply, by correlation id: the one place a reply meets the
//! request it answers, whichever transport carried it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::command::Outcome;

/// The pending requests of one sender (a process's client, shared by its clones).
#[derive(Clone, Default)]
pub(crate) struct Waiters(Arc<Mutex<HashMap<Uuid, oneshot::Sender<Outcome>>>>);

/// One pending request; dropping it (answered, timed out or cancelled) forgets it, so a late
/// reply finds nobody and is discarded.
pub(crate) struct Waiter {
    pub(crate) correlation_id: Uuid,
    reply: oneshot::Receiver<Outcome>,
    waiters: Waiters,
}

impl Waiter {
    /// The reply, if it comes before `deadline`.
    pub(crate) async fn until(mut self, deadline: tokio::time::Instant) -> Option<Outcome> {
        tokio::time::timeout_at(deadline, &mut self.reply)
            .await
            .ok()?
            .ok()
    }
}

impl Waiters {
    /// Registers a request under a fresh correlation id.
    pub(crate) fn register(&self) -> Waiter {
        let correlation_id = Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        self.lock().insert(correlation_id, tx);
        Waiter {
            correlation_id,
            reply: rx,
            waiters: self.clone(),
        }
    }

    /// Hands `outcome` to the request `correlation_id`; false when nobody waits for it (a
    /// late reply, or one meant for another process).
    pub(crate) fn deliver(&self, correlation_id: Uuid, outcome: Outcome) -> bool {
        match self.lock().remove(&correlation_id) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<Outcome>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.correlation_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_reply_reaches_its_own_request_once() {
        let waiters = Waiters::default();
        let a = waiters.register();
        let b = waiters.register();
        let ok = |n: u16| Outcome::Done {
            status: n,
            body: serde_json::Value::Null,
        };
        assert!(waiters.deliver(b.correlation_id, ok(2)));
        assert!(waiters.deliver(a.correlation_id, ok(1)));
        assert!(!waiters.deliver(a.correlation_id, ok(1)), "answered once");
        let (ida, idb) = (a.correlation_id, b.correlation_id);
        let soon = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        assert_eq!(a.until(soon).await.unwrap().status(), 1);
        assert_eq!(b.until(soon).await.unwrap().status(), 2);
        assert!(!waiters.deliver(ida, ok(1)) && !waiters.deliver(idb, ok(2)));
        let gone = waiters.register();
        let id = gone.correlation_id;
        drop(gone);
        assert!(
            !waiters.deliver(id, ok(3)),
            "a request that gave up is forgotten"
        );
        assert!(waiters.lock().is_empty());
    }
}
