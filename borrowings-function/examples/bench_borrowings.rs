//! The target of `scripts/bench-borrowings.sh`: the borrowings function behind its local
//! HTTP adapter, reading a real book-service — both in this process, book-service on SQLite
//! with the in-process command queue and event stream, sessions in an in-process store they
//! share (as in the one-process platform).
//!
//! Seeds five titles and lends all five to one reader (`MAX_ACTIVE_LOANS`, the most a
//! reader can hold: the function's worst case, one loan list and five title lookups per
//! request), then prints `BOOKS=<url>`, `FUNCTION=<url>` and `TOKEN=<the reader's token>`
//! and serves until SIGTERM or Ctrl-C.
//!
//! ```sh
//! cargo run --release -p borrowings-function --example bench_borrowings
//! ```

use std::time::Duration;

use borrowings_function::config::Config;
use circulation::{Bus, BusConfig, Command, CommandKind, Outcome};
use common::auth::{Claims, Role, SessionData, Sessions};
use common::bin::BoxError;
use common::kv::Kv;
use common::shutdown::shutdown_channel;
use events::{EventStream, StreamConfig};
use serde_json::{json, Value};
use service_kit::db::DbConfig;

const SECRET: &str = "borrowings-benchmark-secret-0123456789abcdef";
const READER: i64 = 11;
const TITLES: [(&str, &str, &str); 5] = [
    ("Germinal", "Émile Zola", "9782070360024"),
    ("Thérèse Raquin", "Émile Zola", "9782253010845"),
    ("Luceafărul", "Mihai Eminescu", "9789734600373"),
    ("The Odyssey", "Homer", "9780140449136"),
    ("Nineteen Eighty-Four", "George Orwell", "9780451524935"),
];

/// A live session for `id` in `kv` and a token for it.
async fn login(kv: &Kv, id: i64, role: Role) -> Result<String, BoxError> {
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let data = SessionData {
        user_id: id,
        username: format!("user{id}"),
        email: format!("user{id}@example.com"),
        role,
    };
    let lifetime = Duration::from_secs(3600);
    Sessions::new(kv.clone())
        .create(&sid, &data, lifetime)
        .await?;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: id.to_string(),
        sid,
        username: data.username,
        role: role.as_str().into(),
        iat: now,
        exp: now + 3600,
        iss: "user-service".into(),
        aud: "platform".into(),
    };
    Ok(test_support::sign_hs256(&claims, SECRET))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let kv = Kv::memory("bench:");
    let (trigger, _) = shutdown_channel();

    // book-service.
    let bus_config = BusConfig::local(&dir.path().join("bus"));
    let bus = Bus::open(bus_config.clone()).await?;
    let events_config = StreamConfig::local(&dir.path().join("events"));
    let events = EventStream::open(events_config.clone()).await?;
    let config = book_service::config::Config::for_tests(
        DbConfig::sqlite(dir.path(), "books.sqlite"),
        SECRET,
        bus_config,
        events_config,
    );
    let books =
        book_service::startup::Application::build(config, kv.clone(), bus.clone(), events).await?;
    let books_url = format!("http://127.0.0.1:{}", books.port());
    let books_task = tokio::spawn(books.run_until_stopped(trigger.subscribe()));

    // Five titles, all lent to the reader, as app-service lends them.
    let librarian = login(&kv, 1, Role::Librarian).await?;
    let reader = login(&kv, READER, Role::User).await?;
    let http = reqwest::Client::new();
    let client = bus.client().await;
    for (title, author, isbn) in TITLES {
        let created: Value = http
            .post(format!("{books_url}/books/"))
            .bearer_auth(&librarian)
            .json(&json!({"title": title, "author": author, "isbn": isbn, "copies": 1}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let book_id = created["id"].as_i64().ok_or("no id in the created title")?;
        let borrow = Command::new(
            CommandKind::Borrow { book_id },
            READER,
            Role::User,
            None,
            Duration::from_secs(10),
        );
        match client.request(borrow).await?.outcome {
            Outcome::Done { status: 201, .. } => {}
            other => return Err(format!("borrowing {title}: {other:?}").into()),
        }
    }

    // The function, behind its adapter.
    let mut config = Config::for_tests(&books_url, SECRET);
    config.server.listen =
        std::env::var("BORROWINGS_FUNCTION_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let function = borrowings_function::startup::Application::build(config, kv.clone()).await?;
    let function_url = format!("http://127.0.0.1:{}", function.port());
    let function_task = tokio::spawn(function.run_until_stopped(trigger.subscribe()));

    println!("BOOKS={books_url}");
    println!("FUNCTION={function_url}");
    println!("TOKEN={reader}");

    common::shutdown::terminate_signal().await;
    trigger.trigger();
    function_task.await??;
    books_task.await??;
    Ok(())
}
