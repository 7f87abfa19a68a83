//! The transport against real backends: the in-process queue (SQLite) always, RabbitMQ when
//! `TEST_AMQP_URL` is set (required with `REQUIRE_EXTERNAL_BACKENDS=1`). Every RabbitMQ test
//! uses exchanges and queues of its own (a unique prefix), deleted when it ends.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use circulation::testing::{amqp_url, TestTopology};
use circulation::{
    Bus, BusConfig, BusError, Command, CommandKind, Handler, HandlerError, Outcome, Transport,
};
use common::auth::Role;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use futures_util::future::join_all;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;
use test_support::{host_port, via, CuttableProxy};

const SECRET: &str = "circulation-tests-signing-secret-0123456789";

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// One transport to test: the in-process queue or RabbitMQ.
struct Case {
    name: &'static str,
    config: BusConfig,
    _topology: Option<TestTopology>,
}

/// The in-process queue in `dir`, and RabbitMQ under a fresh prefix when configured; each
/// with `tune` applied.
fn cases(dir: &Path, tune: impl Fn(&mut BusConfig)) -> Vec<Case> {
    let mut local = BusConfig::local(dir);
    tune(&mut local);
    let mut cases = vec![Case {
        name: "in-process",
        config: local,
        _topology: None,
    }];
    if let Some(url) = amqp_url() {
        let prefix = format!("test.{}", uuid::Uuid::new_v4().simple());
        let mut config = BusConfig::amqp(&url, SECRET, &prefix);
        tune(&mut config);
        cases.push(Case {
            name: "rabbitmq",
            _topology: Some(TestTopology {
                url,
                config: config.clone(),
            }),
            config,
        });
    }
    cases
}

/// A handler made of a closure, recording every command it is handed.
#[derive(Clone)]
struct Recording<F> {
    seen: Arc<Mutex<Vec<Command>>>,
    apply: F,
}

impl<F, Fut> Handler for Recording<F>
where
    F: Fn(Command) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, HandlerError>> + Send,
{
    fn handle(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<Outcome, HandlerError>> + Send {
        self.seen.lock().unwrap().push(command.clone());
        (self.apply)(command)
    }
}

fn recording<F, Fut>(apply: F) -> (Recording<F>, Arc<Mutex<Vec<Command>>>)
where
    F: Fn(Command) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, HandlerError>> + Send,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    (
        Recording {
            seen: seen.clone(),
            apply,
        },
        seen,
    )
}

/// Answers with the command's book id and message id.
async fn echo(command: Command) -> Result<Outcome, HandlerError> {
    Ok(Outcome::done(
        200,
        &json!({"book": book_of(&command), "message_id": command.message_id}),
    ))
}

fn book_of(command: &Command) -> i64 {
    match command.kind {
        CommandKind::Borrow { book_id } | CommandKind::PlaceHold { book_id } => book_id,
        CommandKind::Return { loan_id } | CommandKind::Renew { loan_id } => loan_id,
        CommandKind::CancelHold { hold_id } => hold_id,
    }
}

fn borrow(book_id: i64, wait: Duration) -> Command {
    Command::new(CommandKind::Borrow { book_id }, 1, Role::User, None, wait)
}

/// Runs a consumer until the returned trigger fires (or its task is aborted).
fn spawn_consumer<H: Handler>(
    bus: &Bus,
    handler: H,
) -> (ShutdownTrigger, tokio::task::JoinHandle<()>) {
    let (trigger, shutdown) = shutdown_channel();
    let consumer = bus.consumer();
    let task = tokio::spawn(consumer.run(handler, shutdown));
    (trigger, task)
}

async fn stop(trigger: ShutdownTrigger, task: tokio::task::JoinHandle<()>) {
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("the consumer stops")
        .expect("the consumer task ends cleanly");
}

/// Polls `check` until it holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Dead letters of a case: rows of `bus_dead`, or messages taken from `<prefix>.dead`, as
/// (message id, reason).
async fn dead_letters(case: &Case) -> Vec<(String, String)> {
    match &case.config.transport {
        Transport::Local { path } => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT message_id, reason FROM bus_dead ORDER BY seq")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            rows
        }
        Transport::Amqp(amqp) => {
            let conn = Connection::connect(amqp.url.expose(), ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            let mut letters = Vec::new();
            while let Some(m) = ch
                .basic_get(
                    case.config.dead_queue().as_str().into(),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap()
            {
                let props = &m.delivery.properties;
                let id = props
                    .message_id()
                    .as_ref()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                let reason = props
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-first-death-reason").cloned())
                    .and_then(|v| v.as_long_string().map(|s| s.to_string()))
                    .unwrap_or_default();
                letters.push((id, reason));
            }
            let _ = conn.close(200, "bye".into()).await;
            letters
        }
    }
}

/// Dead letters of a case, waiting until there are at least `n` (for at most 5 s).
async fn collect_dead_letters(case: &Case, n: usize) -> Vec<(String, String)> {
    let started = Instant::now();
    let mut letters = Vec::new();
    while letters.len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}: {n} dead letters",
            case.name
        );
        letters.extend(dead_letters(case).await);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    letters
}

// ---------------------------------------------------------------------------------------
// Request / reply
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_requests_each_get_their_own_reply_from_competing_consumers() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), |_| {}) {
        let bus = Bus::open(case.config.clone()).await.unwrap();
        let (first, seen_first) = recording(echo);
        let (second, seen_second) = recording(echo);
        let consumers = [spawn_consumer(&bus, first), spawn_consumer(&bus, second)];
        let client = bus.client().await;
        assert!(client.is_connected(), "{}", case.name);

        let requests = (1..=120).map(|book| {
            let client = client.clone();
            async move {
                let command = borrow(book, Duration::from_secs(20));
                let id = command.message_id;
                let reply = client.request(command).await.expect("a reply");
                (book, id, reply)
            }
        });
        for (book, id, reply) in join_all(requests).await {
            assert_eq!(reply.outcome.status(), 200, "{}", case.name);
            let body = reply.outcome.body();
            assert_eq!(
                body["book"], book,
                "{}: each reply answers its own request",
                case.name
            );
            assert_eq!(body["message_id"], id.to_string());
        }
        let mut ids: Vec<_> = seen_first
            .lock()
            .unwrap()
            .iter()
            .chain(seen_second.lock().unwrap().iter())
            .map(|c| c.message_id)
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 120, "{}: every command applied once", case.name);
        for (trigger, task) in consumers {
            stop(trigger, task).await;
        }
    }
}

#[tokio::test]
async fn an_expired_command_is_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), |_| {}) {
        let bus = Bus::open(case.config.clone()).await.unwrap();
        let client = bus.client().await;
        // Nobody consumes: the sender gives up at the deadline.
        let started = Instant::now();
        let stale = borrow(1, Duration::from_millis(300));
        let stale_id = stale.message_id;
        assert_eq!(
            client.request(stale).await,
            Err(BusError::Timeout),
            "{}",
            case.name
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{}", case.name);

        let (handler, seen) = recording(echo);
        let (trigger, task) = spawn_consumer(&bus, handler);
        // The fresh command queued behind the stale one comes back: the stale one was
        // passed over before it.
        let reply = client
            .request(borrow(2, Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(reply.outcome.body()["book"], 2, "{}", case.name);
        let seen: Vec<_> = seen.lock().unwrap().iter().map(|c| c.message_id).collect();
        assert!(
            !seen.contains(&stale_id),
            "{}: the stale command was applied",
            case.name
        );
        stop(trigger, task).await;
        // Expired is not poison: nothing in the dead letters.
        assert!(dead_letters(&case).await.is_empty(), "{}", case.name);
    }
}

#[tokio::test]
async fn poison_goes_to_the_dead_letters_and_the_consumer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), |c| c.retry_delay = Duration::from_millis(50)) {
        let bus = Bus::open(case.config.clone()).await.unwrap();
        let (handler, _seen) = recording(|command: Command| async move {
            if book_of(&command) == 13 {
                Err(HandlerError::Poison("book 13 cannot be handled".into()))
            } else {
                echo(command).await
            }
        });
        let (trigger, task) = spawn_consumer(&bus, handler);
        let client = bus.client().await;

        // A message that is not a (validly signed) command: published raw.
        let forged_id = "forged-or-garbage";
        match &case.config.transport {
            Transport::Local { path } => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let far = chrono::Utc::now().timestamp_millis() + 60_000;
                sqlx::query(
                    "INSERT INTO bus_commands (message_id, correlation_id, body, deadline_ms, visible_at_ms, enqueued_at_ms) \
                     VALUES ($1, 'x', '{not json', $2, 0, 0)",
                )
                .bind(forged_id)
                .bind(far)
                .execute(&pool)
                .await
                .unwrap();
                pool.close().await;
            }
            Transport::Amqp(amqp) => {
                // A well-formed command for user 1 — but not signed with the secret.
                let body = serde_json::to_vec(&borrow(5, Duration::from_secs(60))).unwrap();
                let conn = Connection::connect(amqp.url.expose(), ConnectionProperties::default())
                    .await
                    .unwrap();
                let ch = conn.create_channel().await.unwrap();
                ch.basic_publish(
                    case.config.exchange().as_str().into(),
                    "command".into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_message_id(forged_id.into()),
                )
                .await
                .unwrap()
                .await
                .unwrap();
                let _ = conn.close(200, "bye".into()).await;
            }
        }
        // A command its handler calls poison: no reply, dead-lettered.
        let poison = borrow(13, Duration::from_millis(1500));
        let poison_id = poison.message_id.to_string();
        assert_eq!(
            client.request(poison).await,
            Err(BusError::Timeout),
            "{}",
            case.name
        );
        // The consumer still works.
        let reply = client
            .request(borrow(7, Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(reply.outcome.body()["book"], 7, "{}", case.name);

        let mut letters = collect_dead_letters(&case, 2).await;
        letters.sort();
        let ids: Vec<&str> = letters.iter().map(|(id, _)| id.as_str()).collect();
        let mut expected = vec![forged_id, poison_id.as_str()];
        expected.sort();
        assert_eq!(ids, expected, "{}", case.name);
        if case.name == "rabbitmq" {
            assert!(
                letters.iter().all(|(_, reason)| reason == "rejected"),
                "{letters:?}"
            );
        }
        stop(trigger, task).await;
    }
}

#[tokio::test]
async fn a_command_that_keeps_failing_is_dead_lettered_after_max_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let tune = |c: &mut BusConfig| {
        c.max_deliveries = 2;
        c.retry_delay = Duration::from_millis(50);
    };
    for case in cases(dir.path(), tune) {
        let bus = Bus::open(case.config.clone()).await.unwrap();
        let (handler, seen) = recording(|command: Command| async move {
            if book_of(&command) == 1 {
                Err(HandlerError::Retry("the database is down".into()))
            } else {
                echo(command).await
            }
        });
        let (trigger, task) = spawn_consumer(&bus, handler);
        let client = bus.client().await;
        let doomed = borrow(1, Duration::from_millis(1500));
        let doomed_id = doomed.message_id;
        assert_eq!(client.request(doomed).await, Err(BusError::Timeout));
        let letters = collect_dead_letters(&case, 1).await;
        assert_eq!(letters[0].0, doomed_id.to_string(), "{}", case.name);
        assert_eq!(letters[0].1, "delivery_limit", "{}", case.name);
        let deliveries = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.message_id == doomed_id)
            .count();
        assert_eq!(
            deliveries, 2,
            "{}: delivered max_deliveries times",
            case.name
        );
        stop(trigger, task).await;
    }
}

#[tokio::test]
async fn a_transient_failure_is_retried_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), |c| c.retry_delay = Duration::from_millis(100)) {
        let bus = Bus::open(case.config.clone()).await.unwrap();
        let failed_once = Arc::new(Mutex::new(false));
        let (handler, seen) = recording(move |command: Command| {
            let failed_once = failed_once.clone();
            async move {
                let first = !std::mem::replace(&mut *failed_once.lock().unwrap(), true);
                if first {
                    Err(HandlerError::Retry("the database is down".into()))
                } else {
                    echo(command).await
                }
            }
        });
        let (trigger, task) = spawn_consumer(&bus, handler);
        let client = bus.client().await;
        let reply = client
            .request(borrow(4, Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(reply.outcome.body()["book"], 4, "{}", case.name);
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "{}: delivered twice",
            case.name
        );
        stop(trigger, task).await;
    }
}

#[tokio::test]
async fn a_consumer_that_dies_unacked_leaves_the_command_to_another() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), |c| c.lease = Duration::from_millis(300)) {
        let bus = Bus::open(case.config.clone()).await.unwrap();
        let started = Arc::new(tokio::sync::Notify::new());
        let (stuck, seen_stuck) = recording({
            let started = started.clone();
            move |_command: Command| {
                let started = started.clone();
                async move {
                    started.notify_one();
                    std::future::pending::<Result<Outcome, HandlerError>>().await
                }
            }
        });
        let (_trigger, doomed) = spawn_consumer(&bus, stuck);
        let client = bus.client().await;
        let command = borrow(9, Duration::from_secs(20));
        let id = command.message_id;
        let request = tokio::spawn({
            let client = client.clone();
            async move { client.request(command).await }
        });
        tokio::time::timeout(Duration::from_secs(10), started.notified())
            .await
            .expect("the first consumer got the command");
        // The instance dies with the command in hand, unacknowledged.
        doomed.abort();
        let _ = doomed.await;

        let (healthy, seen_healthy) = recording(echo);
        let (trigger, task) = spawn_consumer(&bus, healthy);
        let reply = request
            .await
            .unwrap()
            .expect("the reply from the second consumer");
        assert_eq!(
            reply.outcome.body()["message_id"],
            id.to_string(),
            "{}",
            case.name
        );
        assert_eq!(seen_stuck.lock().unwrap()[0].message_id, id);
        assert_eq!(
            seen_healthy.lock().unwrap()[0].message_id,
            id,
            "{}: redelivered",
            case.name
        );
        stop(trigger, task).await;
    }
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn queued_commands_survive_a_restart_of_the_in_process_queue() {
    let dir = tempfile::tempdir().unwrap();
    let config = BusConfig::local(dir.path());
    let Transport::Local { path } = config.transport.clone() else {
        unreachable!("a local configuration")
    };
    let queued = {
        let bus = Bus::open(config.clone()).await.unwrap();
        let client = bus.client().await;
        let command = borrow(3, Duration::from_secs(30));
        let id = command.message_id;
        // The process goes down while its request waits: no consumer ran.
        let pending = tokio::spawn(async move { client.request(command).await });
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        eventually(Duration::from_secs(5), "the command is queued", || {
            let pool = pool.clone();
            async move {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bus_commands")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                n == 1
            }
        })
        .await;
        pool.close().await;
        pending.abort();
        id
    };
    // A new process opens the same file and applies what was queued.
    let bus = Bus::open(config).await.unwrap();
    let (handler, seen) = recording(echo);
    let (trigger, task) = spawn_consumer(&bus, handler);
    eventually(
        Duration::from_secs(5),
        "the queued command is applied",
        || {
            let seen = seen.clone();
            async move { seen.lock().unwrap().iter().any(|c| c.message_id == queued) }
        },
    )
    .await;
    stop(trigger, task).await;
}

#[tokio::test]
async fn a_broker_outage_is_unavailable_at_once_and_recovers_without_restart() {
    let Some(url) = amqp_url() else {
        return;
    };
    let proxy = CuttableProxy::start(host_port(&url)).await;
    let prefix = format!("test.{}", uuid::Uuid::new_v4().simple());
    let mut config = BusConfig::amqp(&via(&url, proxy.addr()), SECRET, &prefix);
    config.reconnect_min = Duration::from_millis(50);
    config.reconnect_max = Duration::from_millis(200);
    let _topology = TestTopology {
        url: url.clone(),
        config: config.clone(),
    };
    let bus = Bus::open(config).await.unwrap();
    let (handler, _seen) = recording(echo);
    let consumer = bus.consumer();
    let health = consumer.health();
    let (trigger, shutdown) = shutdown_channel();
    let task = tokio::spawn(consumer.run(handler, shutdown));
    let client = bus.client().await;
    assert!(client
        .request(borrow(1, Duration::from_secs(10)))
        .await
        .is_ok());
    eventually(Duration::from_secs(5), "the consumer is ready", || {
        let health = health.clone();
        async move { health.check().await.is_ok() }
    })
    .await;

    proxy.cut();
    eventually(Duration::from_secs(5), "the client sees the outage", || {
        let client = client.clone();
        async move { !client.is_connected() }
    })
    .await;
    let started = Instant::now();
    let refused = client.request(borrow(2, Duration::from_secs(10))).await;
    assert!(
        matches!(refused, Err(BusError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "answered at once"
    );
    // A client started during the outage says so too, quickly.
    let started = Instant::now();
    let late = bus.client().await;
    assert!(matches!(
        late.request(borrow(3, Duration::from_secs(10))).await,
        Err(BusError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
    eventually(
        Duration::from_secs(5),
        "readiness reports the outage",
        || {
            let health = health.clone();
            async move { health.check().await.is_err() }
        },
    )
    .await;

    proxy.restore();
    for client in [&client, &late] {
        eventually(Duration::from_secs(10), "the client reconnects", || {
            let client = client.clone();
            async move { client.is_connected() }
        })
        .await;
    }
    eventually(Duration::from_secs(10), "the consumer reconnects", || {
        let health = health.clone();
        async move { health.check().await.is_ok() }
    })
    .await;
    let reply = client
        .request(borrow(4, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(reply.outcome.body()["book"], 4);
    let reply = late
        .request(borrow(5, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(reply.outcome.body()["book"], 5);
    stop(trigger, task).await;
}

#[tokio::test]
async fn commands_are_persistent_and_carry_their_deadline() {
    let Some(url) = amqp_url() else {
        return;
    };
    let prefix = format!("test.{}", uuid::Uuid::new_v4().simple());
    let config = BusConfig::amqp(&url, SECRET, &prefix);
    let _topology = TestTopology {
        url: url.clone(),
        config: config.clone(),
    };
    let bus = Bus::open(config.clone()).await.unwrap();
    let client = bus.client().await;
    // No consumer: the command stays queued; look at it as the broker holds it.
    let command = borrow(8, Duration::from_millis(1500));
    let id = command.message_id;
    let sent = tokio::spawn(async move { client.request(command).await });
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let waited = Instant::now();
    let message = loop {
        let got = ch
            .basic_get(
                config.commands_queue().as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap();
        if let Some(message) = got {
            break message;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the command is queued"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let props = message.delivery.properties;
    assert_eq!(*props.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        props.message_id().as_ref().unwrap().as_str(),
        id.to_string()
    );
    assert!(props.reply_to().is_some() && props.correlation_id().is_some());
    let ttl: u64 = props
        .expiration()
        .as_ref()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 1500, "expiration {ttl} ms");
    assert_eq!(sent.await.unwrap(), Err(BusError::Timeout));
    let declared = ch
        .queue_declare(
            config.commands_queue().as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(declared.message_count(), 0);
    let _ = conn.close(200, "bye".into()).await;
}
