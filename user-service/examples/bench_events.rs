//! Benchmarks of the notification path, book-service and user-service in this one process on
//! PostgreSQL and NATS JetStream (the in-process command bus carries the circulation
//! commands); run by `scripts/bench-events.sh`.
//!
//! - `latency [RETURNS]` (200): a return with a hold waiting → the `hold_ready` event at the
//!   holder's open `GET /notifications/stream`, one return at a time; p50, p99, max.
//! - `throughput [EVENTS]` (20000): `hold_ready` events committed to the outbox at once → the
//!   relay publishes them to JetStream → the notifier stores the notifications (and their
//!   e-mails); events per second for the relay and end to end.
//!
//! `BENCH_DATABASE_URL` (`postgres://postgres:postgres@127.0.0.1:5432/postgres`), `NATS_URL`
//! (`nats://127.0.0.1:4222`). Schemas and streams of its own, removed at the end.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use book_service::clock::{ManualClock, SharedClock};
use chrono::Utc;
use circulation::{Bus, BusConfig, Client, Command, CommandKind, Outcome};
use common::auth::Role;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use events::testing::TestStreams;
use events::{Event, EventKind, EventStream, Payload};
use serde_json::{json, Value};
use service_kit::db::Db;
use test_support::TestSchema;
use user_service::config::{Config, MailConfig};
use user_service::startup::Application;

const SECRET: &str = "bench-events-secret-0123456789-0123456789";
const PASSWORD: &str = "correct horse battery";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Both services on one stream.
struct Bench {
    http: reqwest::Client,
    users: String,
    books: String,
    client: Client,
    triggers: Vec<ShutdownTrigger>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    book_db: service_kit::db::DbConfig,
    user_db: service_kit::db::DbConfig,
    registered: u32,
}

impl Bench {
    async fn start(
        dir: &Path,
        user_schema: &TestSchema,
        book_schema: &TestSchema,
        streams: &TestStreams,
    ) -> Result<Self, BoxError> {
        let kv = Kv::memory("bench:");
        let events = EventStream::open(streams.config.clone()).await?;
        let mut user_config = Config::for_tests(user_schema.config(), SECRET);
        user_config.notifications.mail = MailConfig::folder(&dir.join("mail"));
        user_config.registration.max_per_ip = 100_000;
        user_config.registration.max_global = 100_000;
        let users = Application::build_with_events(user_config, kv.clone(), events.clone()).await?;
        let users_base = format!("http://127.0.0.1:{}", users.port());
        let bus = Bus::open(BusConfig::local(dir)).await?;
        let book_config = book_service::config::Config::for_tests(
            book_schema.config(),
            SECRET,
            bus.config().clone(),
            streams.config.clone(),
        );
        let books = book_service::startup::Application::build_with_clock(
            book_config,
            kv,
            bus.clone(),
            events,
            SharedClock::new(Arc::new(ManualClock::starting_at(Utc::now()))),
        )
        .await?;
        let books_base = format!("http://127.0.0.1:{}", books.port());
        let (user_trigger, user_shutdown) = shutdown_channel();
        let (book_trigger, book_shutdown) = shutdown_channel();
        let tasks = vec![
            tokio::spawn(users.run_until_stopped(user_shutdown)),
            tokio::spawn(books.run_until_stopped(book_shutdown)),
        ];
        Ok(Self {
            http: reqwest::Client::new(),
            users: users_base,
            books: books_base,
            client: bus.client().await,
            triggers: vec![user_trigger, book_trigger],
            tasks,
            book_db: book_schema.config(),
            user_db: user_schema.config(),
            registered: 0,
        })
    }

    async fn stop(self) {
        for trigger in &self.triggers {
            trigger.trigger();
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }

    /// A new account, logged in: (id, token).
    async fn reader(&mut self, name: &str) -> Result<(i64, String), BoxError> {
        self.registered += 1;
        let created: Value = self
            .http
            .post(format!("{}/auth/register", self.users))
            .header("x-forwarded-for", format!("10.99.{}.{}", self.registered / 250, self.registered % 250 + 1))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let id = created["id"].as_i64().ok_or("registered")?;
        let login: Value = self
            .http
            .post(format!("{}/auth/login", self.users))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["access_token"]
            .as_str()
            .ok_or("logged in")?
            .to_owned();
        Ok((id, token))
    }

    async fn command(&self, user_id: i64, kind: CommandKind) -> Result<Value, BoxError> {
        let command = Command::new(kind, user_id, Role::User, None, Duration::from_secs(30));
        match self.client.request(command).await?.outcome {
            Outcome::Done { body, .. } => Ok(body),
            other => Err(format!("{kind:?}: {other:?}").into()),
        }
    }
}

/// The `k`-th valid ISBN-13 of a made-up range.
fn isbn(k: u32) -> String {
    let digits = format!("979{:09}", 100_000_000 + k);
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

async fn latency(bench: &mut Bench, returns: u32) -> Result<(), BoxError> {
    bench.reader("benchlibrarian").await?;
    user_service::commands::set_role(&bench.user_db, None, "benchlibrarian", "librarian").await?;
    // The session store is in memory here: log in again to get the new role.
    let login: Value = bench
        .http
        .post(format!("{}/auth/login", bench.users))
        .json(&json!({"username": "benchlibrarian", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let librarian = login["access_token"]
        .as_str()
        .ok_or("librarian")?
        .to_owned();
    // Five loans per borrower, ten holds per holder.
    let mut borrowers = Vec::new();
    for i in 0..returns.div_ceil(5) {
        borrowers.push(bench.reader(&format!("borrower{i}")).await?);
    }
    let mut holders = Vec::new();
    for i in 0..returns.div_ceil(10) {
        holders.push(bench.reader(&format!("holder{i}")).await?);
    }
    let mut loans = Vec::new();
    for k in 0..returns {
        let book: Value = bench
            .http
            .post(format!("{}/books/", bench.books))
            .bearer_auth(&librarian)
            .json(&json!({"title": format!("Bench title {k}"), "author": "Bench", "isbn": isbn(k), "copies": 1}))
            .send()
            .await?
            .json()
            .await?;
        let book_id = book["id"].as_i64().ok_or("a title")?;
        let (borrower, _) = borrowers[(k / 5) as usize];
        let loan = bench
            .command(borrower, CommandKind::Borrow { book_id })
            .await?;
        let (holder, _) = holders[(k / 10) as usize];
        bench
            .command(holder, CommandKind::PlaceHold { book_id })
            .await?;
        loans.push((
            borrower,
            loan["id"].as_i64().ok_or("a loan")?,
            (k / 10) as usize,
            book_id,
        ));
    }
    // Every holder watches.
    let mut streams = Vec::new();
    for (_, token) in &holders {
        let mut resp = bench
            .http
            .get(format!("{}/notifications/stream", bench.users))
            .bearer_auth(token)
            .send()
            .await?;
        resp.chunk().await?; // ": connected"
        streams.push((resp, String::new()));
    }
    let mut samples = Vec::with_capacity(loans.len());
    for (borrower, loan_id, holder, book_id) in loans {
        let started = Instant::now();
        bench
            .command(borrower, CommandKind::Return { loan_id })
            .await?;
        let (resp, buffer) = &mut streams[holder];
        let needle = format!("\"book_id\":{book_id},");
        loop {
            if buffer.contains(&needle) {
                buffer.clear();
                break;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
                .await
                .map_err(|_| "no notification within 10 s")??
                .ok_or("stream closed")?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "latency  return → hold_ready at the holder's SSE stream, {} returns: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        samples.len(),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*samples.last().unwrap())
    );
    Ok(())
}

async fn throughput(bench: &mut Bench, count: u32) -> Result<(), BoxError> {
    let mut readers = Vec::new();
    for i in 0..50 {
        readers.push(bench.reader(&format!("reader{i}")).await?.0);
    }
    let book_db = Db::connect(&bench.book_db).await?;
    let user_db = Db::connect(&bench.user_db).await?;
    let Db::Postgres(books) = &book_db else {
        return Err("PostgreSQL expected".into());
    };
    let Db::Postgres(users) = &user_db else {
        return Err("PostgreSQL expected".into());
    };
    // Every event in one transaction: the relay sees them all at once.
    let now = Utc::now();
    let mut tx = books.begin().await?;
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO outbox (event_id, kind, title_id, user_id, body, created_at) ",
        );
        insert.push_values(chunk, |mut row, k| {
            let event = Event::new(
                EventKind::HoldReady,
                i64::from(k % 500) + 1,
                readers[(*k as usize) % readers.len()],
                now,
                Payload {
                    title: format!("Bench title {}", k % 500),
                    author: "Bench".into(),
                    hold_id: Some(i64::from(*k)),
                    pickup_deadline: Some(now + chrono::Duration::days(3)),
                    ..Payload::default()
                },
            );
            row.push_bind(event.id.to_string())
                .push_bind("hold_ready")
                .push_bind(event.title_id)
                .push_bind(event.user_id)
                .push_bind(event.to_json())
                .push_bind(now.naive_utc());
        });
        insert.build().execute(&mut *tx).await?;
    }
    let started = Instant::now();
    tx.commit().await?;
    let mut relayed = None;
    loop {
        if relayed.is_none() {
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
                    .fetch_one(books)
                    .await?;
            if left == 0 {
                relayed = Some(started.elapsed());
            }
        }
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications")
            .fetch_one(users)
            .await?;
        if stored >= i64::from(count) {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("only {stored} of {count} stored after 5 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_to_end = started.elapsed();
    let relayed = relayed.unwrap_or(end_to_end);
    println!(
        "throughput  {count} events: outbox → JetStream {:.0}/s ({:.2} s); outbox → JetStream → notifier stored {:.0}/s ({:.2} s)",
        f64::from(count) / relayed.as_secs_f64(),
        relayed.as_secs_f64(),
        f64::from(count) / end_to_end.as_secs_f64(),
        end_to_end.as_secs_f64()
    );
    book_db.close().await;
    user_db.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let database = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let dir = tempfile::tempdir()?;
    let user_schema = TestSchema::new(&database, "bench_users");
    let book_schema = TestSchema::new(&database, "bench_books");
    let streams = TestStreams::new(&nats, "bench");
    let mut bench = Bench::start(dir.path(), &user_schema, &book_schema, &streams).await?;
    let n = |default: u32| args.get(1).and_then(|a| a.parse().ok()).unwrap_or(default);
    let result = match args.first().map(String::as_str) {
        Some("latency") => latency(&mut bench, n(200)).await,
        Some("throughput") => throughput(&mut bench, n(20_000)).await,
        _ => Err("usage: bench_events latency [RETURNS] | throughput [EVENTS]".into()),
    };
    bench.stop().await;
    result
}
