//! The function against the real book-service (not the fake): its read path is book-service's
//! public API, so this checks the contract — the loans and titles it reads are the ones
//! book-service serves, and book-service accepts the forwarded token. book-service runs
//! in-process on SQLite with the in-process command queue and event stream; loans are made the way
//! app-service makes them, with circulation commands.

use std::time::Duration;

use book_service::config::Config as BookConfig;
use book_service::startup::Application as BookService;
use circulation::{Bus, BusConfig, Command, CommandKind, Outcome};
use common::auth::Role;
use common::shutdown::shutdown_channel;
use events::{EventStream, StreamConfig};
use serde_json::{json, Value};
use service_kit::db::DbConfig;

use crate::support::*;

#[tokio::test]
async fn borrowings_are_read_from_the_real_book_service() {
    let dir = tempfile::tempdir().unwrap();
    let kv = common::kv::Kv::memory("real-books:");
    let bus_config = BusConfig::local(&dir.path().join("bus"));
    let bus = Bus::open(bus_config.clone()).await.unwrap();
    let client = bus.client().await;
    let events_config = StreamConfig::local(&dir.path().join("events"));
    let events = EventStream::open(events_config.clone()).await.unwrap();
    let config = BookConfig::for_tests(
        DbConfig::sqlite(dir.path(), "books.sqlite"),
        SECRET,
        bus_config,
        events_config,
    );
    let books = BookService::build(config, kv.clone(), bus.clone(), events)
        .await
        .expect("book-service starts");
    let base = format!("http://127.0.0.1:{}", books.port());
    let (trigger, shutdown) = shutdown_channel();
    let server = tokio::spawn(books.run_until_stopped(shutdown));

    let librarian = user(&kv, 1, Role::Librarian).await;
    let ana = user(&kv, ANA, Role::User).await;
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for (title, author, isbn) in [
        ("Germinal", "Émile Zola", "978-2-07-036002-4"),
        ("Luceafărul", "Mihai Eminescu", "9789734600373"),
    ] {
        let resp = http
            .post(format!("{base}/books/"))
            .bearer_auth(&librarian.token)
            .json(&json!({"title": title, "author": author, "isbn": isbn, "copies": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        ids.push(resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    for &book_id in &ids {
        let command = Command::new(
            CommandKind::Borrow { book_id },
            ANA,
            Role::User,
            None,
            Duration::from_secs(10),
        );
        let reply = client.request(command).await.expect("a reply");
        assert!(
            matches!(reply.outcome, Outcome::Done { status: 201, .. }),
            "{:?}",
            reply.outcome
        );
    }
    let loans: Value = http
        .get(format!("{base}/loans/?active=true"))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let state = state(&kv, &base).await;
    let own = invoke(
        &state,
        &http_api_event(Some(&format!("Bearer {}", ana.token)), ""),
    )
    .await;
    assert_eq!(own.status, 200, "{}", own.body);
    let expected: Vec<Value> = loans
        .as_array()
        .unwrap()
        .iter()
        .map(|loan| {
            let (author, isbn) = if loan["book_id"] == ids[0] {
                ("Émile Zola", "9782070360024")
            } else {
                ("Mihai Eminescu", "9789734600373")
            };
            json!({
                "book_id": loan["book_id"], "title": loan["title"], "author": author,
                "isbn": isbn, "borrowed_on": loan["borrowed_at"], "return_by": loan["due_at"],
            })
        })
        .collect();
    assert_eq!(own.body, Value::Array(expected));
    assert_eq!(own.book_ids().len(), 2);

    // A librarian asking for ANA sees the same; ANA asking for the librarian is refused.
    let for_librarian = invoke(
        &state,
        &http_api_event(
            Some(&format!("Bearer {}", librarian.token)),
            &format!("user_id={ANA}"),
        ),
    )
    .await;
    assert_eq!(
        (for_librarian.status, &for_librarian.body),
        (200, &own.body)
    );
    let refused = invoke(
        &state,
        &http_api_event(Some(&format!("Bearer {}", ana.token)), "user_id=1"),
    )
    .await;
    assert_eq!(refused.status, 403);

    trigger.trigger();
    server.await.unwrap().unwrap();
}
