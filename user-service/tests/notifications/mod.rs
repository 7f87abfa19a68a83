//! Readers' notifications end to end, as the platform runs them: book-service (circulation
//! commands over the in-process bus, the outbox and its relay, the sweep and scheduler on a
//! clock the test moves) and user-service (the notifier, the mailer, the endpoints, the live
//! stream) on one event stream, with real accounts, tokens and sessions.
//!
//! Backends: SQLite + the in-process store + the in-process stream + e-mails in a folder
//! always; PostgreSQL + Redis + NATS JetStream + a local SMTP sink when `TEST_DATABASE_URL`,
//! `TEST_REDIS_URL` and `TEST_NATS_URL` are set. The JetStream restart runs on a private
//! `nats-server` the test kills and starts again.

mod smtp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use book_service::clock::{ManualClock, SharedClock};
use chrono::Utc;
use circulation::{Bus, BusConfig, Client, Command, CommandKind, Outcome};
use common::auth::Role;
use common::config::Secret;
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use events::testing::{nats_url, NatsServer, TestStreams};
use events::{Event, EventHandler, EventKind, EventStream, HandleError, Payload, StreamConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use test_support::TestDb;
use user_service::config::{Config, MailConfig, MailTransport};
use user_service::live::LiveHub;
use user_service::notifier::Notifier;
use user_service::startup::Application;

use self::smtp::SmtpSink;
use super::{PASSWORD, SECRET};

const GERMINAL: &str = "978-2-07-036002-4";

// ---------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------

/// Where the e-mails end up.
enum Mail {
    Folder(PathBuf),
    Sink(SmtpSink),
}

impl Mail {
    fn config(&self) -> MailConfig {
        match self {
            Mail::Folder(dir) => MailConfig::folder(dir),
            Mail::Sink(sink) => MailConfig {
                transport: MailTransport::Smtp(Secret::new(sink.url())),
                ..MailConfig::folder(Path::new("unused"))
            },
        }
    }

    /// Every e-mail delivered so far: (recipients, text).
    fn delivered(&self) -> Vec<(Vec<String>, String)> {
        match self {
            Mail::Sink(sink) => sink
                .received()
                .into_iter()
                .map(|r| (r.to, r.data))
                .collect(),
            Mail::Folder(dir) => {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    return Vec::new();
                };
                let mut files: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect();
                files.sort();
                files
                    .into_iter()
                    .map(|path| {
                        let text = std::fs::read_to_string(path).unwrap();
                        let to = text
                            .lines()
                            .find_map(|l| l.strip_prefix("To: "))
                            .map(|to| vec![to.trim().to_owned()])
                            .unwrap_or_default();
                        (to, text)
                    })
                    .collect()
            }
        }
    }

    /// The e-mails delivered to `address`.
    fn to(&self, address: &str) -> Vec<String> {
        self.delivered()
            .into_iter()
            .filter(|(to, _)| to.iter().any(|t| t == address))
            .map(|(_, text)| text)
            .collect()
    }
}

/// Everything one run of a test uses.
struct Case {
    name: String,
    user_db: TestDb,
    book_db: TestDb,
    kv: Kv,
    stream: StreamConfig,
    _streams: Option<TestStreams>,
    mail: Mail,
    bus: BusConfig,
}

/// SQLite + memory + in-process stream + mail folder always; PostgreSQL + Redis + JetStream +
/// SMTP sink when configured. `tune` adjusts each stream's settings.
async fn cases(dir: &Path, label: &str, tune: impl Fn(&mut StreamConfig)) -> Vec<Case> {
    let nats = nats_url();
    let mut out = Vec::new();
    for (n, (user_db, kv)) in test_support::backends(dir, label)
        .await
        .into_iter()
        .enumerate()
    {
        let external = matches!(user_db, TestDb::Postgres(_));
        let (mut stream, streams) = match (&nats, external) {
            (Some(url), true) => {
                let streams = TestStreams::new(url, label);
                (streams.config.clone(), Some(streams))
            }
            _ => (
                StreamConfig::local(&dir.join(format!("{label}-events-{n}"))),
                None,
            ),
        };
        tune(&mut stream);
        let (book_db, mail) = if external {
            (
                TestDb::postgres(&format!("{label}_books")).expect("PostgreSQL configured"),
                Mail::Sink(SmtpSink::start().await),
            )
        } else {
            (
                TestDb::sqlite(dir, &format!("{label}-books-{n}.sqlite")),
                Mail::Folder(dir.join(format!("{label}-mail-{n}"))),
            )
        };
        let name = format!(
            "{}+{}+{}+{}",
            user_db.name(),
            kv.backend_name(),
            if streams.is_some() {
                "jetstream"
            } else {
                "in-process"
            },
            if external { "smtp" } else { "mail-folder" }
        );
        out.push(Case {
            name,
            user_db,
            book_db,
            kv,
            stream,
            _streams: streams,
            mail,
            bus: BusConfig::local(&dir.join(format!("{label}-bus-{n}"))),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// The services under test
// ---------------------------------------------------------------------------------------

/// A running service.
struct Running {
    base: String,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the service stops")
            .expect("service task")
            .expect("the service stops cleanly");
    }
}

/// A reader (or librarian) with an account, a session and its token.
#[derive(Clone, Debug)]
struct Reader {
    id: i64,
    email: String,
    role: Role,
    token: String,
}

/// The platform's library part: user-service instances and book-service on one stream.
struct Platform {
    name: String,
    http: reqwest::Client,
    kv: Kv,
    events: EventStream,
    users: Vec<Running>,
    books: Option<Running>,
    client: Option<Client>,
    clock: Arc<ManualClock>,
}

impl Platform {
    /// The stream and `consumers.len()` user-service instances (each consuming under the
    /// given name, or not at all); book-service only with `library`.
    async fn start(case: &Case, consumers: &[Option<&str>], library: bool) -> Self {
        let events = EventStream::open(case.stream.clone())
            .await
            .expect("the stream opens");
        let mut platform = Self {
            name: case.name.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            kv: case.kv.clone(),
            events,
            users: Vec::new(),
            books: None,
            client: None,
            clock: Arc::new(ManualClock::starting_at(Utc::now())),
        };
        for consumer in consumers {
            let user = platform.user_service(case, *consumer, |_| {}).await;
            platform.users.push(user);
        }
        if library {
            platform.start_library(case).await;
        }
        platform
    }

    /// Starts a user-service instance.
    async fn user_service(
        &self,
        case: &Case,
        consumer: Option<&str>,
        tune: impl FnOnce(&mut Config),
    ) -> Running {
        let mut config = Config::for_tests(case.user_db.config(), SECRET);
        config.notifications.consumer = consumer.map(str::to_owned);
        config.notifications.mail = case.mail.config();
        tune(&mut config);
        let app = Application::build_with_events(config, self.kv.clone(), self.events.clone())
            .await
            .expect("user-service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (trigger, shutdown) = shutdown_channel();
        let task = tokio::spawn(app.run_until_stopped(shutdown));
        Running {
            base,
            trigger,
            task,
        }
    }

    async fn start_library(&mut self, case: &Case) {
        let bus = Bus::open(case.bus.clone()).await.expect("the bus opens");
        let mut config = book_service::config::Config::for_tests(
            case.book_db.config(),
            SECRET,
            bus.config().clone(),
            case.stream.clone(),
        );
        config.sweep_every = Duration::from_millis(100);
        let app = book_service::startup::Application::build_with_clock(
            config,
            self.kv.clone(),
            bus.clone(),
            self.events.clone(),
            SharedClock::new(self.clock.clone()),
        )
        .await
        .expect("book-service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (trigger, shutdown) = shutdown_channel();
        let task = tokio::spawn(app.run_until_stopped(shutdown));
        self.client = Some(bus.client().await);
        self.books = Some(Running {
            base,
            trigger,
            task,
        });
    }

    async fn stop(self) {
        if let Some(books) = self.books {
            books.stop().await;
        }
        for user in self.users {
            user.stop().await;
        }
    }

    fn url(&self, instance: usize, path: &str) -> String {
        format!("{}{path}", self.users[instance].base)
    }

    /// Registers `username` and logs in.
    async fn reader(&self, username: &str) -> Reader {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let email = format!("{username}@example.com");
        let created = self
            .http
            .post(self.url(0, "/auth/register"))
            .header(
                "x-forwarded-for",
                format!("10.88.{}.{}", n / 250, n % 250 + 1),
            )
            .json(&json!({"username": username, "email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        let token = self.login(username).await;
        Reader {
            id,
            email,
            role: Role::User,
            token,
        }
    }

    async fn login(&self, username: &str) -> String {
        let login = self
            .http
            .post(self.url(0, "/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        login.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A librarian: a reader given the role with the `set-role` command, logged in again.
    async fn librarian(&self, case: &Case, username: &str) -> Reader {
        let reader = self.reader(username).await;
        user_service::commands::set_role(
            &case.user_db.config(),
            Some(&self.kv),
            username,
            "librarian",
        )
        .await
        .expect("set-role");
        Reader {
            role: Role::Librarian,
            token: self.login(username).await,
            ..reader
        }
    }

    /// Catalogues a title with `copies` copies at book-service; its id.
    async fn add_book(&self, librarian: &Reader, title: &str, isbn: &str, copies: u32) -> i64 {
        let base = &self.books.as_ref().expect("book-service runs").base;
        let resp = self
            .http
            .post(format!("{base}/books/"))
            .bearer_auth(&librarian.token)
            .json(&json!({"title": title, "author": "Émile Zola", "isbn": isbn, "copies": copies}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// Sends a circulation command as app-service would; the reply's body.
    async fn command(&self, reader: &Reader, kind: CommandKind) -> Value {
        let command = Command::new(kind, reader.id, reader.role, None, Duration::from_secs(30));
        let reply = self
            .client
            .as_ref()
            .expect("book-service runs")
            .request(command)
            .await
            .unwrap_or_else(|e| panic!("{}: {kind:?} got no reply: {e}", self.name));
        match reply.outcome {
            Outcome::Done { body, .. } => body,
            other => panic!("{}: {kind:?} refused: {other:?}", self.name),
        }
    }

    /// `GET path` at instance `instance` as `reader`: (status, body).
    async fn get(&self, instance: usize, path: &str, reader: &Reader) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url(instance, path))
            .bearer_auth(&reader.token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, instance: usize, path: &str, reader: &Reader) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(instance, path))
            .bearer_auth(&reader.token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The kinds of `reader`'s notifications, newest first.
    async fn kinds(&self, reader: &Reader) -> Vec<String> {
        let (status, body) = self.get(0, "/notifications/", reader).await;
        assert_eq!(status, StatusCode::OK, "{}", self.name);
        body.as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Polls `check` until it holds, for at most `within`.
async fn wait_for<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// A server-sent events client
// ---------------------------------------------------------------------------------------

/// One event of the stream (comments are skipped).
#[derive(Debug, Clone, Default)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: String,
}

struct Sse {
    resp: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(http: &reqwest::Client, url: &str, token: &str) -> Self {
        let resp = http.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut sse = Self {
            resp,
            buffer: String::new(),
        };
        // The stream opens with a comment; past it, the server listens.
        assert!(
            sse.block(Duration::from_secs(5)).await.is_some(),
            "the stream opens"
        );
        sse
    }

    /// The next block (up to a blank line), raw; `None` when closed or after `within`.
    async fn block(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                return Some(block);
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The next event, skipping comments (keep-alives); `None` when closed or after `within`.
    async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let block = self.block(left).await?;
            let mut event = SseEvent::default();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event.event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    event.id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    event.data.push_str(v.trim_start());
                }
            }
            if !event.event.is_empty() {
                return Some(event);
            }
        }
    }

    /// The next `notification` event's body.
    async fn notification(&mut self, within: Duration) -> Value {
        let event = self.next(within).await.expect("a notification in time");
        assert_eq!(event.event, "notification", "{event:?}");
        let body: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(event.id, Some(body["id"].to_string()));
        body
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_return_tells_the_first_holder_at_once_and_the_next_one_when_the_pickup_lapses() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "story", |_| {}).await {
        // Instance 0 consumes the events; instance 1 only serves (a notification stored by
        // one reaches a stream held by the other).
        let p = Platform::start(&case, &[Some("notifier"), None], true).await;
        let n = p.name.clone();
        let librarian = p.librarian(&case, "nlibrarian").await;
        let (ana, bob, cat) = (
            p.reader("nana").await,
            p.reader("nbob").await,
            p.reader("ncat").await,
        );
        let book = p.add_book(&librarian, "Germinal", GERMINAL, 1).await;
        let loan = p.command(&ana, CommandKind::Borrow { book_id: book }).await;
        let loan_id = loan["id"].as_i64().unwrap();
        for reader in [&bob, &cat] {
            p.command(reader, CommandKind::PlaceHold { book_id: book })
                .await;
        }
        let mut bobs = Sse::open(&p.http, &p.url(1, "/notifications/stream"), &bob.token).await;

        // The return: Bob — and only Bob — is told, live within a second.
        let returned = Instant::now();
        p.command(&ana, CommandKind::Return { loan_id }).await;
        let live = bobs.notification(Duration::from_secs(1)).await;
        let latency = returned.elapsed();
        assert!(latency < Duration::from_secs(1), "{n}: {latency:?}");
        assert_eq!(live["kind"], "hold_ready", "{n}");
        assert_eq!(
            (live["title"].as_str(), live["book_id"].as_i64()),
            (Some("Germinal"), Some(book))
        );
        assert_eq!(live["read"], false);
        assert!(live["message"]
            .as_str()
            .unwrap()
            .contains("set aside for you until"));
        let (status, list) = p.get(1, "/notifications/", &bob).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list, json!([live.clone()]), "{n}: the list holds the same");
        assert_eq!(
            p.kinds(&cat).await,
            Vec::<String>::new(),
            "{n}: Cat still waits"
        );
        assert_eq!(p.get(0, "/notifications/", &ana).await.1, json!([]), "{n}");
        // One e-mail, to Bob's address.
        wait_for(Duration::from_secs(10), "Bob's e-mail", || async {
            !case.mail.to(&bob.email).is_empty()
        })
        .await;
        let mail = case.mail.to(&bob.email);
        assert_eq!(mail.len(), 1, "{n}");
        assert!(
            mail[0].contains("Germinal") && mail[0].contains("Hello nbob"),
            "{}",
            mail[0]
        );
        assert!(
            mail[0].contains(&format!("<notification-{}@localhost>", live["id"])),
            "{}",
            mail[0]
        );
        assert_eq!(case.mail.delivered().len(), 1, "{n}: nobody else");

        // Bob does not come: three days later the copy passes to Cat, and Bob is told.
        p.clock
            .advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
        let expired = bobs.notification(Duration::from_secs(5)).await;
        assert_eq!(expired["kind"], "hold_expired", "{n}");
        wait_for(Duration::from_secs(5), "Cat's copy", || async {
            p.kinds(&cat).await == ["hold_ready"]
        })
        .await;
        assert_eq!(
            p.kinds(&bob).await,
            ["hold_expired", "hold_ready"],
            "{n}: newest first"
        );

        // Cat borrows; twelve days on her loan is due soon, three more and it is overdue.
        p.command(&cat, CommandKind::Borrow { book_id: book }).await;
        p.clock
            .advance(chrono::Duration::days(12) + chrono::Duration::minutes(1));
        wait_for(Duration::from_secs(5), "the due-soon notice", || async {
            p.kinds(&cat)
                .await
                .first()
                .is_some_and(|k| k == "loan_due_soon")
        })
        .await;
        p.clock.advance(chrono::Duration::days(3));
        wait_for(Duration::from_secs(5), "the overdue notice", || async {
            p.kinds(&cat)
                .await
                .first()
                .is_some_and(|k| k == "loan_overdue")
        })
        .await;
        assert_eq!(
            p.kinds(&cat).await,
            ["loan_overdue", "loan_due_soon", "hold_ready"],
            "{n}"
        );
        wait_for(Duration::from_secs(10), "five e-mails", || async {
            case.mail.delivered().len() >= 5
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            (
                case.mail.to(&bob.email).len(),
                case.mail.to(&cat.email).len()
            ),
            (2, 3),
            "{n}: one e-mail per notice, each to its reader"
        );
        assert_eq!(case.mail.delivered().len(), 5, "{n}");

        // Read and unread; someone else's notification does not exist for Cat.
        let id = live["id"].as_i64().unwrap();
        let (status, read) = p.post(1, &format!("/notifications/{id}/read"), &bob).await;
        assert_eq!(
            (status, &read["read"]),
            (StatusCode::OK, &json!(true)),
            "{n}"
        );
        let (_, again) = p.post(0, &format!("/notifications/{id}/read/"), &bob).await;
        assert_eq!(again["read_at"], read["read_at"], "{n}: read once");
        let (status, body) = p.post(0, &format!("/notifications/{id}/read"), &cat).await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (StatusCode::NOT_FOUND, Some("Notification not found")),
            "{n}"
        );
        let (_, unread) = p.get(0, "/notifications/?unread=true", &bob).await;
        assert_eq!(unread[0]["kind"], "hold_expired", "{n}");
        assert_eq!(unread.as_array().unwrap().len(), 1);
        let resp = p
            .http
            .get(p.url(0, "/notifications/?limit=1"))
            .bearer_auth(&bob.token)
            .send()
            .await
            .unwrap();
        let link = resp.headers()["link"].to_str().unwrap().to_owned();
        let next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        let (_, rest) = p.get(0, &next, &bob).await;
        assert_eq!(rest[0]["id"], id, "{n}: the next page");
        let (status, bad) = p.get(0, "/notifications/?limit=0", &bob).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad["detail"][0]["loc"], json!(["query", "limit"]));
        let anonymous = p
            .http
            .get(p.url(0, "/notifications/stream"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

        // Bob logs out (at the other instance): his stream ends.
        let (status, _) = p.post(0, "/auth/logout", &bob).await;
        assert_eq!(status, StatusCode::OK);
        let end = loop {
            let event = bobs.next(Duration::from_secs(5)).await.expect("the end");
            if event.event == "end" {
                break event;
            }
        };
        assert_eq!(end.data, "session_ended", "{n}");
        assert!(
            bobs.next(Duration::from_secs(2)).await.is_none(),
            "{n}: closed"
        );
        p.stop().await;
    }
}

#[tokio::test]
async fn a_stream_keeps_alive_and_ends_when_its_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "expiry", |_| {}).await {
        let mut p = Platform::start(&case, &[], false).await;
        let user = p
            .user_service(&case, Some("notifier"), |config| {
                config.tokens.lifetime = Duration::from_secs(3);
                config.notifications.keep_alive = Duration::from_millis(300);
            })
            .await;
        p.users.push(user);
        let ana = p.reader("xana").await;
        let mut stream = Sse::open(&p.http, &p.url(0, "/notifications/stream"), &ana.token).await;
        let keep_alive = stream
            .block(Duration::from_secs(2))
            .await
            .expect("a keep-alive");
        assert_eq!(keep_alive, ": keep-alive", "{}", case.name);
        let end = loop {
            let event = stream.next(Duration::from_secs(6)).await.expect("the end");
            if event.event == "end" {
                break event;
            }
        };
        assert_eq!(end.data, "token_expired", "{}", case.name);
        p.stop().await;
    }
}

/// Hands events to a notifier, then dies before the acknowledgement: never returns.
struct DiesBeforeAck(Notifier);

impl EventHandler for DiesBeforeAck {
    async fn handle(&self, events: &[Event]) -> Result<(), HandleError> {
        self.0.handle(events).await?;
        std::future::pending().await
    }
}

/// A `hold_ready` event for `reader`, as book-service publishes it.
fn hold_ready(reader: &Reader) -> Event {
    let now = Utc::now();
    Event::new(
        EventKind::HoldReady,
        7,
        reader.id,
        now,
        Payload {
            title: "Germinal".into(),
            author: "Émile Zola".into(),
            hold_id: Some(3),
            pickup_deadline: Some(now + chrono::Duration::days(3)),
            ..Payload::default()
        },
    )
}

#[tokio::test]
async fn a_notifier_killed_between_storing_and_acking_tells_the_reader_once() {
    let dir = tempfile::tempdir().unwrap();
    let tune = |c: &mut StreamConfig| c.ack_wait = Duration::from_secs(1);
    for case in cases(dir.path(), "killed", tune).await {
        // An instance that does not consume: the test's own notifier does, and dies.
        let mut p = Platform::start(&case, &[None], false).await;
        let n = p.name.clone();
        let bob = p.reader("kbob").await;
        let event = hold_ready(&bob);
        assert!(p.events.publish(std::slice::from_ref(&event)).await[0].is_ok());
        let db = user_service::startup::open_db(&case.user_db.config())
            .await
            .unwrap();
        let doomed = Notifier {
            db: db.clone(),
            live: LiveHub::new(None),
            mail_bell: Arc::default(),
        };
        let (_trigger, shutdown) = shutdown_channel();
        let dying = tokio::spawn(
            p.events
                .consumer("notifier")
                .run(DiesBeforeAck(doomed), shutdown),
        );
        wait_for(
            Duration::from_secs(10),
            "the notification is stored",
            || async { p.kinds(&bob).await.len() == 1 },
        )
        .await;
        dying.abort();
        let _ = dying.await;

        // A notifier comes back: the event is delivered again, and changes nothing.
        let consumer = p.user_service(&case, Some("notifier"), |_| {}).await;
        p.users.push(consumer);
        wait_for(Duration::from_secs(10), "the e-mail", || async {
            !case.mail.to(&bob.email).is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(p.kinds(&bob).await, ["hold_ready"], "{n}: one notification");
        assert_eq!(case.mail.to(&bob.email).len(), 1, "{n}: one e-mail");
        db.close().await;
        p.stop().await;
    }
}

#[tokio::test]
async fn a_mail_server_down_gets_the_mail_later_and_once() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases(dir.path(), "smtpdown", |_| {}).await {
        let Mail::Sink(sink) = &case.mail else {
            // The folder never refuses; this is about an SMTP server.
            continue;
        };
        let mut p = Platform::start(&case, &[], false).await;
        let user = p
            .user_service(&case, Some("notifier"), |config| {
                config.notifications.mail.retry_min = Duration::from_millis(100);
                config.notifications.mail.retry_max = Duration::from_millis(400);
            })
            .await;
        p.users.push(user);
        let n = p.name.clone();
        let bob = p.reader("sbob").await;
        sink.refuse(true);
        assert!(p.events.publish(&[hold_ready(&bob)]).await[0].is_ok());
        wait_for(Duration::from_secs(10), "the notification", || async {
            p.kinds(&bob).await.len() == 1
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(sink.received().is_empty(), "{n}: refused so far");
        sink.refuse(false);
        wait_for(Duration::from_secs(10), "the e-mail, later", || async {
            !sink.received().is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let received = sink.received();
        assert_eq!(received.len(), 1, "{n}: sent once");
        assert_eq!(received[0].to, std::slice::from_ref(&bob.email));
        p.stop().await;
    }
}

#[tokio::test]
async fn a_jetstream_restart_loses_no_notification() {
    let dir = tempfile::tempdir().unwrap();
    let Some(case) = cases(dir.path(), "natsrestart", |_| {})
        .await
        .into_iter()
        .find(|c| c._streams.is_some())
    else {
        // JetStream is not configured (allowed without REQUIRE_EXTERNAL_BACKENDS).
        return;
    };
    let mut server = NatsServer::start();
    let private = TestStreams::new(&server.url(), "restart");
    let case = Case {
        stream: private.config.clone(),
        ..case
    };
    let p = Platform::start(&case, &[Some("notifier")], true).await;
    let n = p.name.clone();
    let librarian = p.librarian(&case, "rlibrarian").await;
    let (ana, bob) = (p.reader("rana").await, p.reader("rbob").await);
    let book = p.add_book(&librarian, "Germinal", GERMINAL, 1).await;
    let loan = p.command(&ana, CommandKind::Borrow { book_id: book }).await;
    p.command(&bob, CommandKind::PlaceHold { book_id: book })
        .await;

    // JetStream dies; the return commits with its events in the outbox.
    server.kill();
    let loan_id = loan["id"].as_i64().unwrap();
    p.command(&ana, CommandKind::Return { loan_id }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        p.kinds(&bob).await,
        Vec::<String>::new(),
        "{n}: nothing yet"
    );

    // It comes back: the relay publishes the backlog, the notifier takes it, once.
    server.resume();
    wait_for(Duration::from_secs(40), "Bob's notification", || async {
        p.kinds(&bob).await == ["hold_ready"]
    })
    .await;
    wait_for(Duration::from_secs(10), "Bob's e-mail", || async {
        !case.mail.to(&bob.email).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.kinds(&bob).await, ["hold_ready"], "{n}");
    assert_eq!(case.mail.to(&bob.email).len(), 1, "{n}");
    p.stop().await;
    drop(private);
}
