//! What a consumer does with a batch of deliveries, whichever stream they came from: which
//! to hand to the handler, and then which to acknowledge, deliver again later, or move to
//! the dead letters. The transports only carry out these verdicts.

use std::future::Future;

use crate::error::HandleError;
use crate::event::Event;

/// Takes events off the stream: the consumer's side of the contract.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles `events` (in stream order) all or nothing: `Ok` means their effect is
    /// committed, and they are acknowledged right after. It must be idempotent by event id:
    /// an event is delivered again when its acknowledgement was lost.
    fn handle(&self, events: &[Event]) -> impl Future<Output = Result<(), HandleError>> + Send;
}

/// One delivery as the judge sees it.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// The decoded event; `Err` with the decoding error for an unreadable body.
    pub(crate) event: Result<Event, String>,
    /// Deliveries so far, this one included.
    pub(crate) delivered: u32,
}

/// What to do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handled: acknowledge.
    Ack,
    /// Not handled this time: deliver again after a pause.
    Retry,
    /// Never to be handled: to the dead letters, with the reason.
    Dead(String),
}

/// Decides about each delivery of `batch`, in order. The handler gets the readable events
/// delivered at most `max_deliver` times, first all together; if that fails, one at a time,
/// so that one bad event neither blocks nor sinks the others.
pub(crate) async fn judge<H: EventHandler>(
    handler: &H,
    batch: &[Incoming],
    max_deliver: u32,
) -> Vec<Verdict> {
    let mut verdicts: Vec<Option<Verdict>> = batch
        .iter()
        .map(|incoming| match &incoming.event {
            Err(e) => Some(Verdict::Dead(format!("undecodable: {e}"))),
            // Its earlier deliveries died without settling it (a consumer crashing on it).
            Ok(_) if incoming.delivered > max_deliver => {
                Some(Verdict::Dead("delivery_limit".to_owned()))
            }
            Ok(_) => None,
        })
        .collect();
    let open: Vec<usize> = (0..batch.len())
        .filter(|&i| verdicts[i].is_none())
        .collect();
    let events: Vec<Event> = open
        .iter()
        .filter_map(|&i| batch[i].event.as_ref().ok().cloned())
        .collect();
    if events.is_empty() {
        return verdicts.into_iter().flatten().collect();
    }
    let together = handler.handle(&events).await;
    match together {
        Ok(()) => {
            for &i in &open {
                verdicts[i] = Some(Verdict::Ack);
            }
        }
        Err(e) if events.len() == 1 => {
            let i = open[0];
            verdicts[i] = Some(after_failure(e, batch[i].delivered, max_deliver));
        }
        Err(e) => {
            tracing::debug!(error = %e, count = events.len(), "batch failed; handling its events one by one");
            for (&i, event) in open.iter().zip(events) {
                verdicts[i] = Some(match handler.handle(std::slice::from_ref(&event)).await {
                    Ok(()) => Verdict::Ack,
                    Err(e) => after_failure(e, batch[i].delivered, max_deliver),
                });
            }
        }
    }
    verdicts.into_iter().flatten().collect()
}

/// The verdict on one event whose handling failed with `e` at delivery `delivered`.
fn after_failure(e: HandleError, delivered: u32, max_deliver: u32) -> Verdict {
    match e {
        HandleError::Poison(why) => {
            tracing::warn!(error = %why, "dead-lettering an event its handler cannot handle");
            Verdict::Dead(format!("rejected: {why}"))
        }
        HandleError::Retry(why) if delivered >= max_deliver => {
            tracing::warn!(error = %why, delivered, "dead-lettering an event that failed too often");
            Verdict::Dead("delivery_limit".to_owned())
        }
        HandleError::Retry(why) => {
            tracing::warn!(error = %why, delivered, "event not handled; it will be delivered again");
            Verdict::Retry
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::event::{EventKind, Payload};

    /// Fails for events of title 666 (poison) and 500 (transient); records each call.
    struct Picky(Mutex<Vec<usize>>);

    impl EventHandler for Picky {
        async fn handle(&self, events: &[Event]) -> Result<(), HandleError> {
            self.0.lock().unwrap().push(events.len());
            if events.iter().any(|e| e.title_id == 666) {
                return Err(HandleError::Poison("bad".into()));
            }
            if events.iter().any(|e| e.title_id == 500) {
                return Err(HandleError::Retry("db down".into()));
            }
            Ok(())
        }
    }

    fn incoming(title_id: i64, delivered: u32) -> Incoming {
        Incoming {
            event: Ok(Event::new(
                EventKind::HoldReady,
                title_id,
                1,
                chrono::Utc::now(),
                Payload::default(),
            )),
            delivered,
        }
    }

    #[tokio::test]
    async fn a_good_batch_is_handled_at_once() {
        let h = Picky(Mutex::new(Vec::new()));
        let batch = [incoming(1, 1), incoming(2, 1), incoming(3, 2)];
        assert_eq!(judge(&h, &batch, 5).await, vec![Verdict::Ack; 3]);
        assert_eq!(*h.0.lock().unwrap(), vec![3]);
    }

    #[tokio::test]
    async fn bad_events_are_isolated_retried_or_buried() {
        let h = Picky(Mutex::new(Vec::new()));
        let batch = [
            incoming(1, 1),
            incoming(666, 1),
            incoming(500, 2),
            incoming(500, 5),
            incoming(2, 6),
            Incoming {
                event: Err("expected value".into()),
                delivered: 1,
            },
        ];
        let verdicts = judge(&h, &batch, 5).await;
        assert_eq!(verdicts[0], Verdict::Ack);
        assert!(matches!(&verdicts[1], Verdict::Dead(r) if r.starts_with("rejected")));
        assert_eq!(verdicts[2], Verdict::Retry);
        assert_eq!(verdicts[3], Verdict::Dead("delivery_limit".into()));
        assert_eq!(
            verdicts[4],
            Verdict::Dead("delivery_limit".into()),
            "over the limit: not handed out again"
        );
        assert!(matches!(&verdicts[5], Verdict::Dead(r) if r.starts_with("undecodable")));
        // Once together (four events), then one by one.
        assert_eq!(*h.0.lock().unwrap(), vec![4, 1, 1, 1, 1]);
    }
}
