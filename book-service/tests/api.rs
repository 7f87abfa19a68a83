//! book-service driven the way the platform drives it: over HTTP for `/books/*` and the
//! reads, and through the real command path for circulation — a circulation client in the
//! test sends commands as app-service does, and the consumer inside each spawned service
//! applies them. Backends: SQLite with the in-process queue and stream always; PostgreSQL with
//! Redis, RabbitMQ and NATS JetStream when `TEST_DATABASE_URL`, `TEST_REDIS_URL`,
//! `TEST_AMQP_URL` and `TEST_NATS_URL` are set (required with `REQUIRE_EXTERNAL_BACKENDS=1`).
//! The events each change produces are read back from the stream by a consumer of the test.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use book_service::clock::{ManualClock, SharedClock};
use book_service::config::Config;
use book_service::startup::Application;
use chrono::Utc;
use circulation::testing::{amqp_url, TestTopology};
use circulation::{Bus, BusConfig, BusError, Client, Command, CommandKind, Outcome};
use common::auth::{Claims, Role, SessionData, Sessions};
use common::kv::Kv;
use common::shutdown::{shutdown_channel, ShutdownTrigger};
use events::testing::{nats_url, TestStreams};
use events::{Event, EventHandler, EventKind, EventStream, HandleError, StreamConfig};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use service_kit::db::Db;
use service_kit::with_db;
use test_support::{host_port, sign_hs256, via, CuttableProxy, TestDb};

const SECRET: &str = "book-service-integration-tests-secret-0123456789";
const BUS_SECRET: &str = "book-service-tests-circulation-secret-0123456789";

// ---------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------

/// A database, a key-value store, a bus and an event stream that belong together.
struct Backend {
    db: TestDb,
    kv: Kv,
    bus: BusConfig,
    events: StreamConfig,
    _topology: Option<TestTopology>,
    _streams: Option<TestStreams>,
}

impl Backend {
    fn name(&self) -> String {
        let bus = match self.bus.transport {
            circulation::Transport::Amqp(_) => "rabbitmq",
            circulation::Transport::Local { .. } => "in-process",
        };
        let events = match self.events.transport {
            events::Transport::Nats(_) => "jetstream",
            events::Transport::Local { .. } => "in-process",
        };
        format!(
            "{}+{}+{bus}+{events}",
            self.db.name(),
            self.kv.backend_name()
        )
    }

    fn is_amqp(&self) -> bool {
        matches!(self.bus.transport, circulation::Transport::Amqp(_))
    }
}

/// SQLite + memory + in-process queue and stream always; PostgreSQL + Redis + RabbitMQ +
/// JetStream when configured.
async fn backends(dir: &Path, label: &str) -> Vec<Backend> {
    let amqp = amqp_url();
    let nats = nats_url();
    let mut out = Vec::new();
    for (n, (db, kv)) in test_support::backends(dir, label)
        .await
        .into_iter()
        .enumerate()
    {
        let (bus, topology) = match (&db, &amqp) {
            (TestDb::Postgres(_), Some(url)) => {
                let prefix = format!("test.{label}.{}", uuid::Uuid::new_v4().simple());
                let config = BusConfig::amqp(url, BUS_SECRET, &prefix);
                let topology = TestTopology {
                    url: url.clone(),
                    config: config.clone(),
                };
                (config, Some(topology))
            }
            _ => {
                let bus_dir = dir.join(format!("{label}-bus-{n}"));
                (BusConfig::local(&bus_dir), None)
            }
        };
        let (events, streams) = match (&db, &nats) {
            (TestDb::Postgres(_), Some(url)) => {
                let streams = TestStreams::new(url, label);
                (streams.config.clone(), Some(streams))
            }
            _ => (
                StreamConfig::local(&dir.join(format!("{label}-events-{n}"))),
                None,
            ),
        };
        out.push(Backend {
            db,
            kv,
            bus,
            events,
            _topology: topology,
            _streams: streams,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------

/// One running book-service instance.
struct Instance {
    base: String,
    trigger: ShutdownTrigger,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Instance {
    async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .expect("the instance stops")
            .expect("server task")
            .expect("the server stops cleanly");
    }
}

/// A reader or librarian with a live session.
#[derive(Clone)]
struct User {
    id: i64,
    role: Role,
    token: String,
}

/// An HTTP answer.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// The library under test: instances of book-service on one database and one bus, the
/// circulation client app-service would use, and the library's clock.
struct Library {
    instances: Vec<Instance>,
    bus: Bus,
    events: EventStream,
    client: Client,
    kv: Kv,
    db: service_kit::db::DbConfig,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
    name: String,
    is_amqp: bool,
}

impl Library {
    async fn start(backend: &Backend, instances: usize) -> Self {
        let bus = Bus::open(backend.bus.clone()).await.expect("the bus opens");
        let events = EventStream::open(backend.events.clone())
            .await
            .expect("the event stream opens");
        let clock = Arc::new(ManualClock::starting_at(Utc::now()));
        let mut library = Library {
            instances: Vec::new(),
            client: bus.client().await,
            bus,
            events,
            kv: backend.kv.clone(),
            db: backend.db.config(),
            clock,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            name: backend.name(),
            is_amqp: backend.is_amqp(),
        };
        for _ in 0..instances {
            let bus = library.bus.clone();
            library.add_instance(bus).await;
        }
        library
    }

    fn config(&self, bus: BusConfig) -> Config {
        let mut config =
            Config::for_tests(self.db.clone(), SECRET, bus, self.events.config().clone());
        config.sweep_every = Duration::from_millis(100);
        config
    }

    /// Starts another instance consuming from `bus`.
    async fn add_instance(&mut self, bus: Bus) {
        let config = self.config(bus.config().clone());
        let app = Application::build_with_clock(
            config,
            self.kv.clone(),
            bus,
            self.events.clone(),
            SharedClock::new(self.clock.clone()),
        )
        .await
        .expect("book-service starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (trigger, shutdown) = shutdown_channel();
        let server = tokio::spawn(app.run_until_stopped(shutdown));
        self.instances.push(Instance {
            base,
            trigger,
            server,
        });
        // Ready means the consumer is attached too.
        let base = self.instances.last().unwrap().base.clone();
        wait_for(Duration::from_secs(15), "the instance is ready", || {
            let http = self.http.clone();
            let url = format!("{base}/readyz");
            async move {
                http.get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
            }
        })
        .await;
    }

    async fn stop(self) {
        for instance in self.instances {
            instance.stop().await;
        }
    }

    /// A user with a live session and a token for it.
    async fn user(&self, id: i64, role: Role) -> User {
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: id.to_string(),
            sid: sid.clone(),
            username: format!("user{id}"),
            role: role.as_str().into(),
            iat: now,
            exp: now + 1800,
            iss: "user-service".into(),
            aud: "platform".into(),
        };
        let data = SessionData {
            user_id: id,
            username: format!("user{id}"),
            email: format!("user{id}@example.com"),
            role,
        };
        Sessions::new(self.kv.clone())
            .create(&sid, &data, Duration::from_secs(1800))
            .await
            .expect("the session is stored");
        User {
            id,
            role,
            token: sign_hs256(&claims, SECRET),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.instances[0].base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("an answer");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, user: &User, path: &str) -> Answer {
        self.send(self.http.get(self.url(path)).bearer_auth(&user.token))
            .await
    }

    async fn post(&self, user: &User, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(&user.token)
                .json(&body),
        )
        .await
    }

    async fn patch(&self, user: &User, path: &str, body: Value) -> Answer {
        self.send(
            self.http
                .patch(self.url(path))
                .bearer_auth(&user.token)
                .json(&body),
        )
        .await
    }

    /// Catalogues a title with `copies` copies; its id.
    async fn add_book(
        &self,
        librarian: &User,
        title: &str,
        author: &str,
        isbn: &str,
        copies: u32,
    ) -> i64 {
        let a = self
            .post(
                librarian,
                "/books/",
                json!({"title": title, "author": author, "isbn": isbn, "copies": copies}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}: {}", self.name, a.body);
        a.body["id"].as_i64().unwrap()
    }

    /// Sends a command as app-service would, and waits for its outcome.
    async fn command(&self, user: &User, kind: CommandKind) -> Outcome {
        self.command_with(user, kind, None).await
    }

    async fn command_with(&self, user: &User, kind: CommandKind, key: Option<&str>) -> Outcome {
        let command = Command::new(kind, user.id, user.role, key, Duration::from_secs(30));
        self.client
            .request(command)
            .await
            .unwrap_or_else(|e| panic!("{}: {kind:?} got no reply: {e}", self.name))
            .outcome
    }

    /// Runs `sql` (a single `COUNT(*)`) on the database directly.
    async fn count(&self, sql: &str) -> i64 {
        let db = Db::connect(&self.db).await.unwrap();
        let (n,): (i64,) =
            with_db!(&db, pool => sqlx::query_as(sql).fetch_one(pool).await).unwrap();
        db.close().await;
        n
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

fn created(outcome: &Outcome) -> &Value {
    match outcome {
        Outcome::Done { status: 201, body } => body,
        other => panic!("expected 201, got {other:?}"),
    }
}

fn ok(outcome: &Outcome) -> &Value {
    match outcome {
        Outcome::Done { status: 200, body } => body,
        other => panic!("expected 200, got {other:?}"),
    }
}

/// The refusal's (status, reason).
fn refused(outcome: &Outcome) -> (u16, String) {
    match outcome {
        Outcome::Refused { status, reason, .. } => (*status, reason.as_str().to_owned()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn borrow(book_id: i64) -> CommandKind {
    CommandKind::Borrow { book_id }
}

fn hold(book_id: i64) -> CommandKind {
    CommandKind::PlaceHold { book_id }
}

const GERMINAL: &str = "978-2-07-036002-4";
const THERESE: &str = "9782253010845";
const LUCEAFARUL: &str = "9789734600373";
const ISBNS: [&str; 6] = [
    "9780306406157",
    "9780140449136",
    "9780451524935",
    "9780743273565",
    "9780060935467",
    "9780141439518",
];

// ---------------------------------------------------------------------------------------
// The circulation story
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_circulation_story() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "story").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let (ana, bob, cat, dan) = (
            lib.user(11, Role::User).await,
            lib.user(12, Role::User).await,
            lib.user(13, Role::User).await,
            lib.user(14, Role::User).await,
        );
        // Add → search.
        let book = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        let found = lib.get(&ana, "/books/?q=emile%20zola").await;
        assert_eq!(found.status, StatusCode::OK, "{n}");
        assert_eq!(found.body[0]["id"], book, "{n}");
        assert_eq!(found.body[0]["copies_available"], 1, "{n}");

        // Borrow; a second borrower finds no copy.
        let loan = lib.command(&ana, borrow(book)).await;
        let loan = created(&loan).clone();
        assert_eq!(loan["book_id"], book, "{n}");
        assert_eq!(loan["title"], "Germinal");
        assert_eq!(loan["renewals_left"], 2);
        assert_eq!(loan["user_id"], ana.id);
        let due: chrono::DateTime<Utc> = loan["due_at"].as_str().unwrap().parse().unwrap();
        let borrowed: chrono::DateTime<Utc> =
            loan["borrowed_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(due - borrowed, chrono::Duration::days(14), "{n}");
        assert!(loan["due_at"].as_str().unwrap().ends_with('Z'));
        let loan_id = loan["id"].as_i64().unwrap();
        assert_eq!(
            refused(&lib.command(&bob, borrow(book)).await),
            (409, "no_copy_available".into()),
            "{n}"
        );

        // Holds queue up first come first served; one per reader.
        let bob_hold = lib.command(&bob, hold(book)).await;
        let bob_hold = created(&bob_hold).clone();
        assert_eq!(
            (bob_hold["state"].as_str(), bob_hold["position"].as_i64()),
            (Some("waiting"), Some(1)),
            "{n}"
        );
        let cat_hold = lib.command(&cat, hold(book)).await;
        assert_eq!(created(&cat_hold)["position"], 2, "{n}");
        assert_eq!(
            refused(&lib.command(&bob, hold(book)).await),
            (409, "already_holding".into())
        );
        assert_eq!(
            refused(&lib.command(&ana, hold(book)).await),
            (409, "already_borrowed".into())
        );
        let figures = lib.get(&ana, &format!("/books/{book}")).await;
        assert_eq!(
            (
                figures.body["copies_available"].as_i64(),
                figures.body["holds_waiting"].as_i64()
            ),
            (Some(0), Some(2)),
            "{n}"
        );

        // No renewal while someone waits.
        assert_eq!(
            refused(&lib.command(&ana, CommandKind::Renew { loan_id }).await),
            (409, "hold_waiting".into()),
            "{n}"
        );

        // Return: the copy is set aside for the first holder.
        let returned = lib.command(&ana, CommandKind::Return { loan_id }).await;
        assert!(ok(&returned)["returned_at"].is_string(), "{n}");
        assert_eq!(
            refused(&lib.command(&ana, CommandKind::Return { loan_id }).await),
            (409, "already_returned".into())
        );
        let bobs = lib.get(&bob, "/holds/").await;
        assert_eq!(bobs.body[0]["state"], "ready", "{n}: {}", bobs.body);
        assert!(bobs.body[0]["position"].is_null());
        let deadline: chrono::DateTime<Utc> = bobs.body[0]["pickup_deadline"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(deadline - lib.clock_now(), chrono::Duration::days(3), "{n}");
        let cats = lib.get(&cat, "/holds/").await;
        assert_eq!(
            (
                cats.body[0]["state"].as_str(),
                cats.body[0]["position"].as_i64()
            ),
            (Some("waiting"), Some(1)),
            "{n}"
        );

        // Others are refused the copy set aside; the holder borrows it.
        for other in [&cat, &dan] {
            assert_eq!(
                refused(&lib.command(other, borrow(book)).await),
                (409, "on_hold_for_another".into()),
                "{n}"
            );
        }
        let bob_loan = lib.command(&bob, borrow(book)).await;
        assert_eq!(created(&bob_loan)["book_id"], book, "{n}");
        assert_eq!(
            lib.get(&bob, "/holds/").await.body,
            json!([]),
            "{n}: the hold is fulfilled"
        );
        let figures = lib.get(&ana, &format!("/books/{book}")).await;
        assert_eq!(
            (
                figures.body["copies_available"].as_i64(),
                figures.body["holds_waiting"].as_i64()
            ),
            (Some(0), Some(1)),
            "{n}"
        );

        // The history of the first reader.
        let history = lib.get(&ana, "/loans/?active=false").await;
        assert_eq!(history.body.as_array().unwrap().len(), 1, "{n}");
        assert_eq!(history.body[0]["id"], loan_id);
        assert_eq!(lib.get(&ana, "/loans/?active=true").await.body, json!([]));
        lib.stop().await;
    }
}

impl Library {
    fn clock_now(&self) -> chrono::DateTime<Utc> {
        SharedClock::new(self.clock.clone()).now()
    }
}

#[tokio::test]
async fn an_uncollected_hold_passes_to_the_next_holder() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "pickup").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let (ana, bob, cat) = (
            lib.user(21, Role::User).await,
            lib.user(22, Role::User).await,
            lib.user(23, Role::User).await,
        );
        let book = lib
            .add_book(&librarian, "Thérèse Raquin", "Émile Zola", THERESE, 1)
            .await;
        let loan = lib.command(&ana, borrow(book)).await;
        let loan_id = created(&loan)["id"].as_i64().unwrap();
        created(&lib.command(&bob, hold(book)).await);
        created(&lib.command(&cat, hold(book)).await);
        ok(&lib.command(&ana, CommandKind::Return { loan_id }).await);
        assert_eq!(
            lib.get(&bob, "/holds/").await.body[0]["state"],
            "ready",
            "{n}"
        );

        // Three days pass and a bit: the sweep passes the copy on.
        lib.clock
            .advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
        wait_for(
            Duration::from_secs(10),
            "the next holder's copy",
            || async { lib.get(&cat, "/holds/").await.body[0]["state"] == "ready" },
        )
        .await;
        assert_eq!(
            lib.get(&bob, "/holds/").await.body,
            json!([]),
            "{n}: expired"
        );
        assert_eq!(
            refused(&lib.command(&bob, borrow(book)).await),
            (409, "on_hold_for_another".into()),
            "{n}"
        );
        created(&lib.command(&cat, borrow(book)).await);

        // Cancelling a ready hold shelves the copy when nobody else waits.
        let loan = lib.get(&cat, "/loans/").await;
        let cat_loan = loan.body[0]["id"].as_i64().unwrap();
        let dan = lib.user(24, Role::User).await;
        let dan_hold = lib.command(&dan, hold(book)).await;
        let dan_hold = created(&dan_hold)["id"].as_i64().unwrap();
        ok(&lib
            .command(&cat, CommandKind::Return { loan_id: cat_loan })
            .await);
        assert_eq!(
            lib.command(&dan, CommandKind::CancelHold { hold_id: dan_hold })
                .await,
            Outcome::Done {
                status: 204,
                body: Value::Null
            },
            "{n}"
        );
        assert_eq!(
            refused(
                &lib.command(&dan, CommandKind::CancelHold { hold_id: dan_hold })
                    .await
            ),
            (409, "hold_not_active".into())
        );
        let figures = lib.get(&dan, &format!("/books/{book}")).await;
        assert_eq!(figures.body["copies_available"], 1, "{n}");
        // A hold placed while a copy is on the shelf sets it aside at once.
        let ready = lib.command(&bob, hold(book)).await;
        assert_eq!(created(&ready)["state"], "ready", "{n}");
        lib.stop().await;
    }
}

#[tokio::test]
async fn loan_rules_renewals_limits_and_overdue() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "rules").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let ana = lib.user(31, Role::User).await;
        let mut books = Vec::new();
        for (i, isbn) in ISBNS.iter().enumerate() {
            books.push(
                lib.add_book(&librarian, &format!("Book {i}"), "Author", isbn, 2)
                    .await,
            );
        }
        // Renewals: two, each from the due date; then the limit.
        let loan = lib.command(&ana, borrow(books[0])).await;
        let loan = created(&loan).clone();
        let loan_id = loan["id"].as_i64().unwrap();
        assert_eq!(
            refused(&lib.command(&ana, borrow(books[0])).await),
            (409, "already_borrowed".into()),
            "{n}"
        );
        let mut due: chrono::DateTime<Utc> = loan["due_at"].as_str().unwrap().parse().unwrap();
        for left in [1, 0] {
            let renewed = lib.command(&ana, CommandKind::Renew { loan_id }).await;
            let renewed = ok(&renewed);
            let new_due: chrono::DateTime<Utc> =
                renewed["due_at"].as_str().unwrap().parse().unwrap();
            assert_eq!(new_due - due, chrono::Duration::days(14), "{n}");
            assert_eq!(renewed["renewals_left"], left);
            due = new_due;
        }
        assert_eq!(
            refused(&lib.command(&ana, CommandKind::Renew { loan_id }).await),
            (409, "renewal_limit".into()),
            "{n}"
        );
        // The loan limit: five out at once.
        for book in &books[1..5] {
            created(&lib.command(&ana, borrow(*book)).await);
        }
        assert_eq!(
            refused(&lib.command(&ana, borrow(books[5])).await),
            (409, "loan_limit".into()),
            "{n}"
        );
        // Time passes: the loans are overdue, and block borrowing.
        lib.clock.advance(chrono::Duration::days(60));
        let loans = lib.get(&ana, "/loans/?active=true").await;
        assert_eq!(loans.body.as_array().unwrap().len(), 5, "{n}");
        assert!(loans
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["overdue"] == true));
        let first = loans.body.as_array().unwrap().last().unwrap()["id"]
            .as_i64()
            .unwrap();
        ok(&lib
            .command(&ana, CommandKind::Return { loan_id: first })
            .await);
        assert_eq!(
            refused(&lib.command(&ana, borrow(books[5])).await),
            (409, "overdue_block".into()),
            "{n}"
        );
        // An overdue loan may still be renewed, from now.
        let second = loans.body[0]["id"].as_i64().unwrap();
        let renewed = lib
            .command(&ana, CommandKind::Renew { loan_id: second })
            .await;
        let new_due: chrono::DateTime<Utc> =
            ok(&renewed)["due_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(new_due - lib.clock_now(), chrono::Duration::days(14), "{n}");
        // Pages of a reader's loans, newest first, linked.
        let page = lib.get(&ana, "/loans/?limit=2").await;
        assert_eq!(page.body.as_array().unwrap().len(), 2);
        let link = page.headers["link"].to_str().unwrap().to_owned();
        let next = link.trim_start_matches('<').split('>').next().unwrap();
        let rest = lib.get(&ana, next).await;
        assert!(rest.body[0]["id"].as_i64().unwrap() < page.body[1]["id"].as_i64().unwrap());
        lib.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Who may do what
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn catalogue_changes_need_a_librarian() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "roles").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let admin = lib.user(2, Role::Admin).await;
        let reader = lib.user(41, Role::User).await;
        let book =
            json!({"title": "Germinal", "author": "Émile Zola", "isbn": GERMINAL, "copies": 1});
        let a = lib.post(&reader, "/books/", book.clone()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{n}");
        assert_eq!(a.body["detail"], "Librarian role required");
        // 403 comes before the body is looked at.
        let a = lib
            .post(&reader, "/books/", json!({"nonsense": true}))
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{n}");
        let id = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        for (path, body) in [
            (format!("/books/{id}"), json!({"title": "X"})),
            (format!("/books/{id}/copies"), json!({"count": 1})),
        ] {
            let a = if path.ends_with("copies") {
                lib.post(&reader, &path, body).await
            } else {
                lib.patch(&reader, &path, body).await
            };
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{n}: {path}");
        }
        let edited = lib
            .patch(
                &admin,
                &format!("/books/{id}"),
                json!({"title": "Germinal (Folio)"}),
            )
            .await;
        assert_eq!(
            edited.status,
            StatusCode::OK,
            "{n}: an admin is a librarian too"
        );
        assert_eq!(edited.body["title"], "Germinal (Folio)");
        let more = lib
            .post(
                &librarian,
                &format!("/books/{id}/copies"),
                json!({"count": 2}),
            )
            .await;
        assert_eq!(
            (more.status, more.body["copies_total"].as_i64()),
            (StatusCode::CREATED, Some(3))
        );

        // No token, a forged one, an ended session: 401 with the challenge.
        let none = lib.send(lib.http.get(lib.url("/books/"))).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{n}");
        assert_eq!(none.headers["www-authenticate"], "Bearer");
        let forged = User {
            token: format!("{}x", reader.token),
            ..reader.clone()
        };
        assert_eq!(
            lib.get(&forged, "/books/").await.status,
            StatusCode::UNAUTHORIZED
        );
        lib.stop().await;
    }
}

#[tokio::test]
async fn readers_cannot_reach_each_others_loans_and_holds() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "idor").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let (ana, eve) = (
            lib.user(51, Role::User).await,
            lib.user(52, Role::User).await,
        );
        let one = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        let two = lib
            .add_book(&librarian, "Luceafărul", "Mihai Eminescu", LUCEAFARUL, 1)
            .await;
        let loan = lib.command(&ana, borrow(one)).await;
        let loan_id = created(&loan)["id"].as_i64().unwrap();
        let ana_hold = lib.command(&ana, hold(two)).await;
        let hold_id = created(&ana_hold)["id"].as_i64().unwrap();

        // Someone else's loan or hold does not exist for Eve.
        for kind in [
            CommandKind::Return { loan_id },
            CommandKind::Renew { loan_id },
            CommandKind::CancelHold { hold_id },
        ] {
            assert_eq!(
                refused(&lib.command(&eve, kind).await),
                (404, "not_found".into()),
                "{n}: {kind:?}"
            );
        }
        for path in [
            format!("/loans/?user_id={}", ana.id),
            format!("/holds/?user_id={}", ana.id),
        ] {
            let a = lib.get(&eve, &path).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{n}: {path}");
        }
        assert_eq!(lib.get(&eve, "/loans/").await.body, json!([]), "{n}");
        // Nothing changed.
        assert_eq!(
            lib.get(&ana, "/loans/?active=true").await.body[0]["id"],
            loan_id
        );
        assert_eq!(lib.get(&ana, "/holds/").await.body[0]["id"], hold_id);

        // A librarian sees and acts on anyone's.
        let seen = lib
            .get(&librarian, &format!("/loans/?user_id={}", ana.id))
            .await;
        assert_eq!(seen.body[0]["id"], loan_id, "{n}");
        let seen = lib
            .get(&librarian, &format!("/holds/?user_id={}", ana.id))
            .await;
        assert_eq!(seen.body[0]["id"], hold_id, "{n}");
        ok(&lib
            .command(&librarian, CommandKind::Return { loan_id })
            .await);
        assert_eq!(
            lib.command(&librarian, CommandKind::CancelHold { hold_id })
                .await
                .status(),
            204,
            "{n}"
        );
        lib.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Input, search
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_is_422_in_fastapis_shape_and_unknowns_are_404() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "input").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let reader = lib.user(61, Role::User).await;
        let bad = lib
            .post(
                &librarian,
                "/books/",
                json!({"title": "T", "author": "A", "isbn": "978-2-07-036002-5"}),
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{n}");
        assert_eq!(bad.body["detail"][0]["loc"], json!(["body", "isbn"]));
        assert_eq!(bad.body["detail"][0]["type"], "value_error");
        assert!(bad.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("check digit"));
        let missing = lib.post(&librarian, "/books/", json!({"title": "T"})).await;
        assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(missing.body["detail"][0]["type"], "missing");
        let many = lib
            .post(
                &librarian,
                "/books/",
                json!({"title": "", "author": "A", "isbn": "12", "copies": 0}),
            )
            .await;
        assert_eq!(
            many.body["detail"].as_array().unwrap().len(),
            3,
            "{n}: every mistake at once"
        );

        // The ISBN-10 of a catalogued ISBN-13 is the same book.
        lib.add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        let dup = lib
            .post(
                &librarian,
                "/books/",
                json!({"title": "Again", "author": "Zola", "isbn": "2-07-036002-4"}),
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT, "{n}");

        for path in [
            "/books/?limit=0",
            "/books/?limit=abc",
            "/books/?isbn=123",
            "/books/?cursor=%21%21",
            "/books/abc",
            "/books/0",
            "/loans/?user_id=0",
        ] {
            let a = lib.get(&reader, path).await;
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{n}: {path}: {}",
                a.body
            );
            assert!(a.body["detail"][0]["loc"].is_array(), "{path}");
        }
        assert_eq!(
            lib.get(&reader, "/books/?limit=abc").await.body["detail"][0]["loc"],
            json!(["query", "limit"])
        );
        assert_eq!(
            lib.get(&reader, "/books/abc").await.body["detail"][0]["loc"],
            json!(["path", "id"])
        );

        let unknown = lib.get(&reader, "/books/999999").await;
        assert_eq!(
            (unknown.status, unknown.body["detail"].as_str()),
            (StatusCode::NOT_FOUND, Some("Book not found"))
        );
        assert_eq!(
            lib.patch(&librarian, "/books/999999", json!({}))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            refused(&lib.command(&reader, borrow(999_999)).await),
            (404, "not_found".into()),
            "{n}"
        );
        // Nothing matches: 200 and an empty list, never 404.
        for path in [
            "/books/?q=nosuchword",
            "/books/?q=%21%21%21",
            "/books/?author=nobody",
            "/books/?isbn=9780306406157",
        ] {
            let empty = lib.get(&reader, path).await;
            assert_eq!(
                (empty.status, &empty.body),
                (StatusCode::OK, &json!([])),
                "{n}: {path}"
            );
        }
        assert_eq!(lib.get(&reader, "/holds/").await.body, json!([]));
        lib.stop().await;
    }
}

#[tokio::test]
async fn search_ignores_case_and_diacritics_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "search").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let reader = lib.user(71, Role::User).await;
        let germinal = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        let therese = lib
            .add_book(&librarian, "Thérèse Raquin", "Émile Zola", THERESE, 1)
            .await;
        let luceafarul = lib
            .add_book(&librarian, "Luceafărul", "Mihai Eminescu", LUCEAFARUL, 1)
            .await;

        let ids = |a: &Answer| -> Vec<i64> {
            a.body
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_i64().unwrap())
                .collect()
        };
        for (query, expected) in [
            ("q=emile%20zola", vec![germinal, therese]),
            ("q=ZOLA", vec![germinal, therese]),
            ("q=%C3%89MILE", vec![germinal, therese]),
            ("q=therese", vec![therese]),
            ("q=TH%C3%89R%C3%88SE%20raquin", vec![therese]),
            ("q=zola%20germinal", vec![germinal]),
            ("q=germ", vec![germinal]),
            ("q=minal", vec![germinal]),
            ("q=luceafarul", vec![luceafarul]),
            ("q=eminescu", vec![luceafarul]),
            ("q=2-07-036002-4", vec![germinal]),
            ("q=9782070360024", vec![germinal]),
            ("q=978207", vec![germinal]),
            ("author=zola", vec![germinal, therese]),
            ("author=zola&q=raquin", vec![therese]),
            ("isbn=2070360024", vec![germinal]),
            ("q=zo", vec![germinal, therese]),
        ] {
            let a = lib.get(&reader, &format!("/books/?{query}")).await;
            assert_eq!(a.status, StatusCode::OK, "{n}: {query}");
            assert_eq!(ids(&a), expected, "{n}: {query}");
        }
        // Availability.
        created(&lib.command(&reader, borrow(germinal)).await);
        assert_eq!(
            ids(&lib.get(&reader, "/books/?q=zola&available=true").await),
            vec![therese],
            "{n}"
        );

        // Pages, in title order, linked until the end.
        let first = lib.get(&reader, "/books/?limit=2").await;
        assert_eq!(ids(&first), vec![germinal, luceafarul], "{n}");
        let link = first.headers["link"].to_str().unwrap().to_owned();
        assert!(
            link.ends_with("; rel=\"next\"") && link.contains("limit=2"),
            "{link}"
        );
        let next = link.trim_start_matches('<').split('>').next().unwrap();
        let second = lib.get(&reader, next).await;
        assert_eq!(ids(&second), vec![therese], "{n}");
        assert!(second.headers.get("link").is_none(), "{n}: the last page");
        lib.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Concurrency, duplicates, deadlines, faults
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fifty_readers_race_for_the_last_copy_across_two_instances() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "race").await {
        let lib = Library::start(&backend, 2).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let book = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        let mut readers = Vec::new();
        for id in 1000..1050 {
            readers.push(lib.user(id, Role::User).await);
        }
        let outcomes = join_all(readers.iter().map(|r| lib.command(r, borrow(book)))).await;
        let lent = outcomes.iter().filter(|o| o.status() == 201).count();
        let refusals: Vec<_> = outcomes
            .iter()
            .filter(|o| o.status() != 201)
            .map(refused)
            .collect();
        assert_eq!(lent, 1, "{n}: exactly one loan");
        assert_eq!(refusals.len(), 49, "{n}");
        assert!(
            refusals
                .iter()
                .all(|r| *r == (409, "no_copy_available".to_owned())),
            "{n}: {refusals:?}"
        );
        assert_eq!(lib.count("SELECT COUNT(*) FROM loans").await, 1, "{n}");
        assert_eq!(
            lib.count("SELECT COUNT(*) FROM copies WHERE status = 'available'")
                .await,
            0
        );
        lib.stop().await;
    }
}

#[tokio::test]
async fn the_same_command_delivered_twice_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "dedup").await {
        let lib = Library::start(&backend, 2).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let reader = lib.user(81, Role::User).await;
        let book = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 3)
            .await;

        // The very same message, twice at once and once more later.
        let command = Command::new(
            borrow(book),
            reader.id,
            reader.role,
            None,
            Duration::from_secs(30),
        );
        let replies = join_all((0..2).map(|_| lib.client.request(command.clone()))).await;
        let again = lib.client.request(command.clone()).await;
        let bodies: Vec<Value> = replies
            .into_iter()
            .chain([again])
            .map(|r| created(&r.unwrap().outcome).clone())
            .collect();
        assert!(
            bodies.iter().all(|b| b == &bodies[0]),
            "{n}: the same answer each time"
        );
        assert_eq!(
            lib.count("SELECT COUNT(*) FROM loans").await,
            1,
            "{n}: one loan"
        );

        // A client retry with the same Idempotency-Key: the first result.
        let other = lib.user(82, Role::User).await;
        let first = lib.command_with(&other, borrow(book), Some("key-1")).await;
        let retry = lib.command_with(&other, borrow(book), Some("key-1")).await;
        assert_eq!(first, retry, "{n}");
        assert_eq!(lib.count("SELECT COUNT(*) FROM loans").await, 2, "{n}");
        // The same key with another request is refused; another user's key is theirs.
        assert_eq!(
            refused(&lib.command_with(&other, hold(book), Some("key-1")).await),
            (422, "idempotency_key_reused".into())
        );
        let third = lib.user(83, Role::User).await;
        created(&lib.command_with(&third, borrow(book), Some("key-1")).await);
        lib.stop().await;
    }
}

#[tokio::test]
async fn a_command_past_its_deadline_is_never_applied() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "deadline").await {
        let mut lib = Library::start(&backend, 1).await;
        let n = lib.name.clone();
        let librarian = lib.user(1, Role::Librarian).await;
        let late = lib.user(91, Role::User).await;
        let prompt = lib.user(92, Role::User).await;
        let book = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 2)
            .await;
        // No instance consumes: the sender gives up.
        lib.instances.pop().unwrap().stop().await;
        let command = Command::new(
            borrow(book),
            late.id,
            late.role,
            None,
            Duration::from_millis(300),
        );
        assert_eq!(
            lib.client.request(command).await,
            Err(BusError::Timeout),
            "{n}"
        );
        // An instance comes back, and applies what is still wanted — not the stale one.
        let bus = lib.bus.clone();
        lib.add_instance(bus).await;
        created(&lib.command(&prompt, borrow(book)).await);
        assert_eq!(
            lib.get(&late, "/loans/").await.body,
            json!([]),
            "{n}: never applied"
        );
        assert_eq!(lib.count("SELECT COUNT(*) FROM loans").await, 1, "{n}");
        lib.stop().await;
    }
}

#[tokio::test]
async fn an_instance_killed_with_a_command_unacked_leaves_it_to_another_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "kill").await {
        if !(backend.is_amqp() && matches!(backend.db, TestDb::Postgres(_))) {
            // The in-process queue's redelivery is tested in the circulation crate; killing
            // an instance needs a broker connection to cut.
            continue;
        }
        let url = amqp_url().expect("configured with RabbitMQ");
        let mut lib = Library::start(&backend, 0).await;
        let librarian = lib.user(1, Role::Librarian).await;
        let reader = lib.user(101, Role::User).await;

        // The first instance reaches the broker through a proxy that "kills" it.
        let proxy = CuttableProxy::start(host_port(&url)).await;
        let mut doomed_bus = backend.bus.clone();
        if let circulation::Transport::Amqp(amqp) = &mut doomed_bus.transport {
            amqp.url = common::config::Secret::new(via(&url, proxy.addr()));
        }
        lib.add_instance(Bus::open(doomed_bus).await.unwrap()).await;
        let book = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;

        // Hold the reader's row so the instance's transaction waits inside the handler.
        let db = Db::connect(&lib.db).await.unwrap();
        let Db::Postgres(pool) = &db else {
            unreachable!("PostgreSQL")
        };
        let mut blocker = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO readers (user_id, first_seen_at) VALUES ($1, now())")
            .bind(reader.id)
            .execute(&mut *blocker)
            .await
            .unwrap();

        let sent = tokio::spawn({
            let client = lib.client.clone();
            let command = Command::new(
                borrow(book),
                reader.id,
                reader.role,
                None,
                Duration::from_secs(30),
            );
            async move { client.request(command).await }
        });
        // The first instance has it in hand (blocked on the row) once its transaction waits.
        wait_for(Duration::from_secs(10), "the command is in hand", || {
            let pool = pool.clone();
            async move {
                let (waiting,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                     AND query LIKE 'INSERT INTO readers%'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                waiting > 0
            }
        })
        .await;
        // A second instance starts; the first dies (its broker connection is cut) unacked.
        let bus = lib.bus.clone();
        lib.add_instance(bus).await;
        proxy.cut();
        // Let both transactions go: whichever commits first applies it, the other finds it
        // applied; the second instance answers.
        blocker.commit().await.unwrap();
        let reply = sent
            .await
            .unwrap()
            .expect("a reply from the second instance");
        let loan = created(&reply.outcome).clone();
        assert_eq!(
            lib.count("SELECT COUNT(*) FROM loans").await,
            1,
            "applied once"
        );
        assert_eq!(
            lib.count("SELECT COUNT(*) FROM processed_commands").await,
            1,
            "recorded once"
        );
        assert_eq!(lib.get(&reader, "/loans/").await.body[0]["id"], loan["id"]);
        db.close().await;
        // The dead instance cannot drain cleanly towards a cut broker; stop the rest.
        proxy.restore();
        lib.stop().await;
    }
}

#[tokio::test]
async fn readiness_reports_database_store_and_bus() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "ready").await {
        let lib = Library::start(&backend, 1).await;
        let a = lib.send(lib.http.get(lib.url("/readyz"))).await;
        assert_eq!(a.status, StatusCode::OK, "{}", lib.name);
        assert_eq!(
            a.body,
            json!({"database": "ok", "kv": "ok", "bus": "ok", "status": "ready"})
        );
        assert!(lib.is_amqp == backend.is_amqp());
        lib.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Circulation events: the outbox, the relay, the scheduled notices
// ---------------------------------------------------------------------------------------

/// Records every event handed to it.
#[derive(Clone, Default)]
struct Collected(Arc<std::sync::Mutex<Vec<Event>>>);

impl EventHandler for Collected {
    async fn handle(&self, events: &[Event]) -> Result<(), HandleError> {
        self.0.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// An outbox row: (kind, reader, title, published).
type OutboxRow = (String, i64, i64, bool);

impl Library {
    /// The outbox, in id order.
    async fn outbox(&self) -> Vec<OutboxRow> {
        let db = Db::connect(&self.db).await.unwrap();
        let rows: Vec<(String, i64, i64, bool)> = with_db!(&db, pool => sqlx::query_as(
            "SELECT kind, user_id, title_id, published_at IS NOT NULL FROM outbox ORDER BY id",
        )
        .fetch_all(pool)
        .await)
        .unwrap();
        db.close().await;
        rows
    }

    /// The outbox's (kind, reader) once every event in it is published.
    async fn published(&self) -> Vec<(String, i64)> {
        wait_for(
            Duration::from_secs(15),
            "the outbox is published",
            || async { self.outbox().await.iter().all(|row| row.3) },
        )
        .await;
        self.outbox()
            .await
            .into_iter()
            .map(|(kind, user, _, _)| (kind, user))
            .collect()
    }

    /// Every event on the stream, read from the start by a new consumer, once at least
    /// `at_least` have arrived and nothing more came for a moment.
    async fn stream_events(&self, at_least: usize) -> Vec<Event> {
        let collected = Collected::default();
        let (trigger, shutdown) = shutdown_channel();
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let task = tokio::spawn(self.events.consumer(&name).run(collected.clone(), shutdown));
        wait_for(
            Duration::from_secs(15),
            "the events on the stream",
            || async { collected.0.lock().unwrap().len() >= at_least },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.trigger();
        task.await.unwrap();
        let events = collected.0.lock().unwrap().clone();
        events
    }
}

fn kinds(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, u)| ((*k).to_owned(), *u)).collect()
}

#[tokio::test]
async fn every_change_writes_its_events_with_it_and_a_refusal_none() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "outbox").await {
        let lib = Library::start(&backend, 1).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let (ana, bob, cat, dan) = (
            lib.user(111, Role::User).await,
            lib.user(112, Role::User).await,
            lib.user(113, Role::User).await,
            lib.user(114, Role::User).await,
        );
        let book = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        let loan = lib.command(&ana, borrow(book)).await;
        let loan_id = created(&loan)["id"].as_i64().unwrap();
        // Refusals change nothing and say nothing.
        refused(&lib.command(&bob, borrow(book)).await);
        for reader in [&bob, &cat, &dan] {
            created(&lib.command(reader, hold(book)).await);
        }
        refused(&lib.command(&bob, hold(book)).await);
        refused(&lib.command(&ana, CommandKind::Renew { loan_id }).await);
        // A return with three holds waiting: only the first holder's copy is ready.
        ok(&lib.command(&ana, CommandKind::Return { loan_id }).await);
        let returned_at = lib.clock_now();
        // Bob does not come: the copy passes to Cat.
        lib.clock
            .advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
        wait_for(Duration::from_secs(10), "the copy passes on", || async {
            lib.get(&cat, "/holds/").await.body[0]["state"] == "ready"
        })
        .await;
        let dan_hold = lib.get(&dan, "/holds/").await.body[0]["id"]
            .as_i64()
            .unwrap();
        assert_eq!(
            lib.command(&dan, CommandKind::CancelHold { hold_id: dan_hold })
                .await
                .status(),
            204
        );
        created(&lib.command(&cat, borrow(book)).await);

        let expected = kinds(&[
            ("loan_created", ana.id),
            ("hold_placed", bob.id),
            ("hold_placed", cat.id),
            ("hold_placed", dan.id),
            ("loan_returned", ana.id),
            ("hold_ready", bob.id),
            ("hold_expired", bob.id),
            ("hold_ready", cat.id),
            ("hold_cancelled", dan.id),
            ("loan_created", cat.id),
        ]);
        assert_eq!(lib.published().await, expected, "{n}");

        // The stream holds the same events, in the same order, with what a notice needs.
        let on_stream = lib.stream_events(expected.len()).await;
        let seen: Vec<(String, i64)> = on_stream
            .iter()
            .map(|e| (e.kind.as_str().to_owned(), e.user_id))
            .collect();
        assert_eq!(seen, expected, "{n}");
        let ready = &on_stream[5];
        assert_eq!(ready.kind, EventKind::HoldReady);
        assert_eq!(
            (
                ready.title_id,
                ready.payload.title.as_str(),
                ready.payload.author.as_str()
            ),
            (book, "Germinal", "Émile Zola"),
            "{n}"
        );
        assert_eq!(
            ready.payload.pickup_deadline,
            Some(returned_at + chrono::Duration::days(3)),
            "{n}"
        );
        assert_eq!(ready.occurred_at, returned_at, "{n}: the library's clock");
        assert!(
            on_stream[0].payload.due_at.is_some() && on_stream[0].payload.loan_id == Some(loan_id)
        );
        lib.stop().await;
    }
}

#[tokio::test]
async fn a_command_rolled_back_at_its_deadline_leaves_no_event() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "rollback").await {
        let lib = Library::start(&backend, 1).await;
        let n = lib.name.clone();
        let librarian = lib.user(1, Role::Librarian).await;
        let reader = lib.user(121, Role::User).await;
        let book = lib
            .add_book(&librarian, "Germinal", "Émile Zola", GERMINAL, 1)
            .await;
        // Another transaction holds the write lock (SQLite) or the reader's row (PostgreSQL):
        // the command waits inside its transaction until after its deadline.
        let db = Db::connect(&lib.db).await.unwrap();
        let insert = "INSERT INTO readers (user_id, first_seen_at) VALUES ($1, $2)";
        let blocker = match &db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(insert)
                    .bind(reader.id)
                    .bind(Utc::now().naive_utc())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                Ok(tx)
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
                sqlx::query(insert)
                    .bind(reader.id)
                    .bind(Utc::now().naive_utc())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                Err(tx)
            }
        };
        let command = Command::new(
            borrow(book),
            reader.id,
            reader.role,
            None,
            Duration::from_millis(700),
        );
        assert_eq!(
            lib.client.request(command).await,
            Err(BusError::Timeout),
            "{n}"
        );
        match blocker {
            Ok(tx) => tx.commit().await.unwrap(),
            Err(tx) => tx.commit().await.unwrap(),
        }
        // The handler goes on, makes the change, finds its deadline passed and rolls back.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(lib.count("SELECT COUNT(*) FROM loans").await, 0, "{n}");
        assert_eq!(lib.outbox().await, Vec::<OutboxRow>::new(), "{n}: no event");
        // The next command goes through, with its event.
        let other = lib.user(122, Role::User).await;
        created(&lib.command(&other, borrow(book)).await);
        assert_eq!(
            lib.published().await,
            kinds(&[("loan_created", other.id)]),
            "{n}"
        );
        db.close().await;
        lib.stop().await;
    }
}

#[tokio::test]
async fn the_relay_keeps_each_titles_order_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "relayorder").await {
        let lib = Library::start(&backend, 2).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let mut books = Vec::new();
        for (i, isbn) in ISBNS[..3].iter().enumerate() {
            books.push(
                lib.add_book(&librarian, &format!("Book {i}"), "Author", isbn, 2)
                    .await,
            );
        }
        let mut readers = Vec::new();
        for id in 130..142 {
            readers.push(lib.user(id, Role::User).await);
        }
        // Each reader borrows and returns a title, three times, all readers at once.
        let rounds = readers.iter().enumerate().map(|(i, reader)| {
            let lib = &lib;
            let book = books[i % books.len()];
            async move {
                for _ in 0..3 {
                    let outcome = lib.command(reader, borrow(book)).await;
                    if let Outcome::Done { status: 201, body } = outcome {
                        let loan_id = body["id"].as_i64().unwrap();
                        ok(&lib.command(reader, CommandKind::Return { loan_id }).await);
                    }
                }
            }
        });
        join_all(rounds).await;
        let outbox = lib.published().await;
        assert!(outbox.len() >= 6, "{n}: {} events", outbox.len());
        let on_stream = lib.stream_events(outbox.len()).await;
        assert_eq!(on_stream.len(), outbox.len(), "{n}: each event once");
        let rows = lib.outbox().await;
        for book in &books {
            let written: Vec<(String, i64)> = rows
                .iter()
                .filter(|r| r.2 == *book)
                .map(|r| (r.0.clone(), r.1))
                .collect();
            let received: Vec<(String, i64)> = on_stream
                .iter()
                .filter(|e| e.title_id == *book)
                .map(|e| (e.kind.as_str().to_owned(), e.user_id))
                .collect();
            assert_eq!(received, written, "{n}: title {book} in outbox order");
        }
        lib.stop().await;
    }
}

#[tokio::test]
async fn due_soon_and_overdue_notices_go_out_once_even_with_two_schedulers() {
    let dir = tempfile::tempdir().unwrap();
    for backend in backends(dir.path(), "notices").await {
        let lib = Library::start(&backend, 2).await;
        let n = &lib.name;
        let librarian = lib.user(1, Role::Librarian).await;
        let (ana, bob) = (
            lib.user(151, Role::User).await,
            lib.user(152, Role::User).await,
        );
        let one = lib.add_book(&librarian, "One", "Author", ISBNS[0], 1).await;
        let two = lib.add_book(&librarian, "Two", "Author", ISBNS[1], 1).await;
        let ana_loan = lib.command(&ana, borrow(one)).await;
        let ana_loan = created(&ana_loan)["id"].as_i64().unwrap();
        created(&lib.command(&bob, borrow(two)).await);
        let notices = |rows: Vec<(String, i64)>| -> Vec<(String, i64)> {
            rows.into_iter()
                .filter(|(kind, _)| kind.starts_with("loan_due") || kind == "loan_overdue")
                .collect()
        };
        // Twelve days on: both due within two days; each told once, though two instances
        // sweep every 100 ms.
        lib.clock
            .advance(chrono::Duration::days(12) + chrono::Duration::minutes(1));
        wait_for(Duration::from_secs(10), "two due-soon notices", || async {
            notices(lib.published().await).len() == 2
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut got = notices(lib.published().await);
        got.sort();
        assert_eq!(
            got,
            kinds(&[("loan_due_soon", ana.id), ("loan_due_soon", bob.id)]),
            "{n}"
        );
        // Ana renews (a new due date, 28 days from the start); three days later Bob's loan
        // is overdue — told once — and Ana's is not due soon.
        ok(&lib
            .command(&ana, CommandKind::Renew { loan_id: ana_loan })
            .await);
        lib.clock.advance(chrono::Duration::days(3));
        wait_for(Duration::from_secs(10), "the overdue notice", || async {
            notices(lib.published().await).len() == 3
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            notices(lib.published().await)[2..],
            kinds(&[("loan_overdue", bob.id)])[..],
            "{n}"
        );
        // Ana's renewed loan gets its own due-soon notice, two days before its new date.
        lib.clock.advance(chrono::Duration::days(11));
        wait_for(
            Duration::from_secs(10),
            "the renewed loan's notice",
            || async { notices(lib.published().await).len() == 4 },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let all = notices(lib.published().await);
        assert_eq!(all.len(), 4, "{n}: {all:?}");
        assert_eq!(all[3], ("loan_due_soon".to_owned(), ana.id), "{n}");
        let on_stream = lib.stream_events(lib.outbox().await.len()).await;
        let overdue = on_stream
            .iter()
            .find(|e| e.kind == EventKind::LoanOverdue)
            .unwrap();
        assert_eq!((overdue.user_id, overdue.title_id), (bob.id, two), "{n}");
        assert!(overdue.payload.due_at.unwrap() < overdue.occurred_at);
        lib.stop().await;
    }
}
