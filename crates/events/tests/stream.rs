//! The event stream against real backends: the in-process stream (SQLite) always, JetStream
//! when `TEST_NATS_URL` is set (required with `REQUIRE_EXTERNAL_BACKENDS=1`). Every JetStream
//! test uses streams and subjects of its own, deleted when it ends; the restart test runs a
//! private `nats-server` it may kill.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::shutdown::{shutdown_channel, ShutdownTrigger};
use events::testing::{nats_url, NatsServer, TestStreams};
use events::{
    Event, EventHandler, EventKind, EventStream, HandleError, Payload, PublishError, Signal,
    StreamConfig,
};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// One transport to test.
struct Case {
    name: &'static str,
    config: StreamConfig,
    _streams: Option<TestStreams>,
}

/// The in-process stream in `dir`, and JetStream under fresh names when configured; each
/// with `tune` applied.
fn cases(dir: &Path, label: &str, tune: impl Fn(&mut StreamConfig)) -> Vec<Case> {
    let mut local = StreamConfig::local(dir);
    tune(&mut local);
    let mut cases = vec![Case {
        name: "in-process",
        config: local,
        _streams: None,
    }];
    if let Some(url) = nats_url() {
        let streams = TestStreams::new(&url, label);
        let mut config = streams.config.clone();
        tune(&mut config);
        cases.push(Case {
            name: "jetstream",
            config,
            _streams: Some(streams),
        });
    }
    cases
}

/// What a handler does with an event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reaction {
    Take,
    FailForNow,
    Refuse,
    /// Records it, then never returns (a consumer that dies before acknowledging).
    Hang,
}

/// A handler that records every event it is handed and reacts by title id.
#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Event>>>,
    react: fn(&Event) -> Reaction,
}

impl Recorder {
    fn new(react: fn(&Event) -> Reaction) -> Self {
        Self {
            seen: Arc::default(),
            react,
        }
    }

    fn seen(&self) -> Vec<Event> {
        self.seen.lock().unwrap().clone()
    }

    fn count_of(&self, id: uuid::Uuid) -> usize {
        self.seen().iter().filter(|e| e.id == id).count()
    }
}

impl EventHandler for Recorder {
    async fn handle(&self, events: &[Event]) -> Result<(), HandleError> {
        self.seen.lock().unwrap().extend(events.iter().cloned());
        for event in events {
            match (self.react)(event) {
                Reaction::Take => {}
                Reaction::FailForNow => return Err(HandleError::Retry("not now".into())),
                Reaction::Refuse => return Err(HandleError::Poison("never".into())),
                Reaction::Hang => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }
}

fn take_all(_: &Event) -> Reaction {
    Reaction::Take
}

fn event(title_id: i64, n: i64) -> Event {
    Event::new(
        EventKind::HoldReady,
        title_id,
        n,
        chrono::Utc::now(),
        Payload {
            title: format!("Title {title_id}"),
            author: "Author".into(),
            hold_id: Some(n),
            ..Payload::default()
        },
    )
}

/// A consumer running in the background.
struct Running {
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(stream: &EventStream, name: &str, handler: Recorder) -> Self {
        let (trigger, shutdown) = shutdown_channel();
        let consumer = stream.consumer(name);
        let task = tokio::spawn(consumer.run(handler, shutdown));
        Self { trigger, task }
    }

    async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the consumer stops")
            .expect("consumer task");
    }
}

/// Polls `check` until it holds, for at most `within`.
async fn wait_for(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn publish_ok(stream: &EventStream, events: &[Event]) {
    for (i, result) in stream.publish(events).await.into_iter().enumerate() {
        result.unwrap_or_else(|e| panic!("event {i} not stored: {e}"));
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn events_arrive_once_each_in_the_order_of_their_title() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "order", |_| {}) {
        let n = case.name;
        let stream = EventStream::open(case.config.clone()).await.unwrap();
        // Three titles, interleaved; published in two batches.
        let events: Vec<Event> = (0..60).map(|i| event(i % 3 + 1, i)).collect();
        publish_ok(&stream, &events[..25]).await;
        publish_ok(&stream, &events[25..]).await;
        // The same events again (a relay that lost its acknowledgements): dropped.
        publish_ok(&stream, &events[10..30]).await;

        let recorder = Recorder::new(take_all);
        let consumer = Running::start(&stream, "notifier", recorder.clone());
        wait_for(Duration::from_secs(15), "every event", || {
            recorder.seen().len() >= events.len()
        })
        .await;
        // Nothing more comes (no duplicate, no redelivery of acknowledged events).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let seen = recorder.seen();
        assert_eq!(seen.len(), events.len(), "{n}: each event once");
        for title in 1..=3 {
            let published: Vec<_> = events.iter().filter(|e| e.title_id == title).collect();
            let received: Vec<_> = seen.iter().filter(|e| e.title_id == title).collect();
            assert_eq!(received, published, "{n}: title {title} in order");
        }
        consumer.stop().await;
    }
}

#[tokio::test]
async fn a_durable_consumer_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "resume", |_| {}) {
        let n = case.name;
        let stream = EventStream::open(case.config.clone()).await.unwrap();
        let first: Vec<Event> = (0..5).map(|i| event(7, i)).collect();
        publish_ok(&stream, &first).await;
        let recorder = Recorder::new(take_all);
        let consumer = Running::start(&stream, "notifier", recorder.clone());
        wait_for(Duration::from_secs(15), "the first events", || {
            recorder.seen().len() == 5
        })
        .await;
        consumer.stop().await;

        // Published while nobody consumes; a reopened stream (a restart) and a new consumer
        // under the same name get only those.
        let later: Vec<Event> = (5..8).map(|i| event(7, i)).collect();
        publish_ok(&stream, &later).await;
        drop(stream);
        let stream = EventStream::open(case.config.clone()).await.unwrap();
        let again = Recorder::new(take_all);
        let consumer = Running::start(&stream, "notifier", again.clone());
        wait_for(Duration::from_secs(15), "the later events", || {
            again.seen().len() >= 3
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(again.seen(), later, "{n}");
        // Another consumer has a position of its own: the whole history.
        let other = Recorder::new(take_all);
        let audit = Running::start(&stream, "audit", other.clone());
        wait_for(Duration::from_secs(15), "the history", || {
            other.seen().len() >= 8
        })
        .await;
        audit.stop().await;
        consumer.stop().await;
    }
}

#[tokio::test]
async fn an_event_not_acknowledged_is_delivered_again_after_the_ack_wait() {
    let dir = tempfile::tempdir().unwrap();
    let tune = |c: &mut StreamConfig| c.ack_wait = Duration::from_secs(1);
    for case in cases(dir.path(), "ackwait", tune) {
        let n = case.name;
        let stream = EventStream::open(case.config.clone()).await.unwrap();
        let e = event(3, 1);
        publish_ok(&stream, std::slice::from_ref(&e)).await;
        // The first consumer takes it in hand and dies before acknowledging.
        let dying = Recorder::new(|_| Reaction::Hang);
        let doomed = Running::start(&stream, "notifier", dying.clone());
        wait_for(Duration::from_secs(15), "the first delivery", || {
            dying.count_of(e.id) == 1
        })
        .await;
        doomed.task.abort();
        let _ = doomed.task.await;

        let recorder = Recorder::new(take_all);
        let started = Instant::now();
        let consumer = Running::start(&stream, "notifier", recorder.clone());
        wait_for(Duration::from_secs(15), "the redelivery", || {
            recorder.count_of(e.id) == 1
        })
        .await;
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "{n}: not before the ack wait ran out"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(recorder.count_of(e.id), 1, "{n}: acknowledged this time");
        consumer.stop().await;
    }
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_without_blocking_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let tune = |c: &mut StreamConfig| {
        c.retry_delay = Duration::from_millis(50);
        c.max_deliver = 3;
    };
    for case in cases(dir.path(), "dead", tune) {
        let n = case.name;
        let stream = EventStream::open(case.config.clone()).await.unwrap();
        // Title 500 always fails for now; title 666 is refused; the others are fine.
        let events = vec![event(1, 1), event(500, 2), event(666, 3), event(2, 4)];
        publish_ok(&stream, &events).await;
        let recorder = Recorder::new(|e| match e.title_id {
            500 => Reaction::FailForNow,
            666 => Reaction::Refuse,
            _ => Reaction::Take,
        });
        let consumer = Running::start(&stream, "notifier", recorder.clone());
        let started = Instant::now();
        while stream.dead_letters().await.unwrap().len() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{n}: two dead letters"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dead = stream.dead_letters().await.unwrap();
        let mut reasons: Vec<(i64, String, u32)> = dead
            .iter()
            .map(|d| {
                let e = Event::from_json(d.body.as_bytes()).unwrap();
                assert_eq!(d.consumer, "notifier");
                (e.title_id, d.reason.clone(), d.deliveries)
            })
            .collect();
        reasons.sort();
        assert_eq!(reasons[0].0, 500, "{n}");
        assert_eq!((reasons[0].1.as_str(), reasons[0].2), ("delivery_limit", 3));
        assert_eq!(reasons[1].0, 666, "{n}");
        assert!(reasons[1].1.starts_with("rejected"), "{n}: {reasons:?}");
        // The good ones were taken; the failing one was tried exactly max_deliver times.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let tries = recorder.count_of(events[1].id);
        assert!(
            (3..=4).contains(&tries),
            "{n}: tried {tries} times (together once, then alone)"
        );
        for good in [&events[0], &events[3]] {
            assert!(recorder.count_of(good.id) >= 1, "{n}");
        }
        consumer.stop().await;
    }
}

#[tokio::test]
async fn live_signals_reach_every_listener() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "live", |_| {}) {
        let n = case.name;
        let stream = EventStream::open(case.config.clone()).await.unwrap();
        let other = EventStream::open(case.config.clone()).await.unwrap();
        let mut mine = stream.live().await.unwrap();
        let mut theirs = match case.name {
            // Another instance: another connection.
            "jetstream" => other.live().await.unwrap(),
            // In one process, one stream value is shared.
            _ => stream.live().await.unwrap(),
        };
        // A subscription is live once the server has it: announce until heard.
        let heard = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                stream.announce("user:42").await.unwrap();
                if let Ok(Some(signal)) =
                    tokio::time::timeout(Duration::from_millis(100), theirs.next()).await
                {
                    return signal;
                }
            }
        })
        .await
        .expect("heard");
        assert_eq!(heard, Signal::Message("user:42".into()), "{n}");
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), mine.next())
                .await
                .unwrap(),
            Some(Signal::Message("user:42".into())),
            "{n}"
        );
        assert!(stream.check().await.is_ok(), "{n}");
    }
}

#[tokio::test]
async fn a_jetstream_restart_loses_no_event() {
    if nats_url().is_none() {
        return;
    }
    let mut server = NatsServer::start();
    let streams = TestStreams::new(&server.url(), "restart");
    let mut config = streams.config.clone();
    config.retry_delay = Duration::from_millis(100);
    let stream = EventStream::open(config).await.unwrap();
    let before: Vec<Event> = (0..10).map(|i| event(i % 2 + 1, i)).collect();
    publish_ok(&stream, &before).await;
    let recorder = Recorder::new(take_all);
    let consumer = Running::start(&stream, "notifier", recorder.clone());
    wait_for(Duration::from_secs(15), "the first events", || {
        recorder.seen().len() == 10
    })
    .await;

    // The server dies: publishing fails (nothing claimed stored) and the stream is unready.
    server.kill();
    let during: Vec<Event> = (10..20).map(|i| event(i % 2 + 1, i)).collect();
    let results = stream.publish(&during).await;
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert!(results.contains(&Err(PublishError::HeldBack)));
    assert!(stream.check().await.is_err());

    // It comes back with its storage: the same events published again all arrive, once.
    server.resume();
    let started = Instant::now();
    loop {
        if stream.publish(&during).await.iter().all(Result::is_ok) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never republished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for(
        Duration::from_secs(30),
        "the events after the restart",
        || recorder.seen().len() >= 20,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = recorder.seen();
    assert_eq!(seen.len(), 20, "none lost, none twice");
    for title in 1..=2 {
        let published: Vec<_> = before
            .iter()
            .chain(&during)
            .filter(|e| e.title_id == title)
            .collect();
        let received: Vec<_> = seen.iter().filter(|e| e.title_id == title).collect();
        assert_eq!(received, published, "title {title} in order");
    }
    consumer.stop().await;
    drop(streams);
}
