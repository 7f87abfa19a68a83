//! The library end to end through the gateway: catalogue (gateway → book-service), circulation
//! (gateway → app-service → the circulation bus → book-service), accounts and roles (gateway →
//! app-service → user-service). The story and the refusals run on both backend sets (SQLite +
//! in-process store + in-process queue; PostgreSQL + Redis + RabbitMQ); the race and the
//! fault drills need the external one (the drills cut RabbitMQ, or kill a book-service
//! instance, under load).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::library::Isbn;
use chrono::Utc;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use test_support::CuttableProxy;

use crate::support::{backends, free_port, start, Backend, TestStack, HEALTH_CHECK_INTERVAL};

/// A reader: registered and logged in.
struct Reader {
    id: i64,
    name: String,
    token: String,
}

async fn reader(s: &TestStack, name: &str) -> Reader {
    let id = s.register(name).await;
    Reader {
        id,
        name: name.to_owned(),
        token: s.login(name).await,
    }
}

/// `count` readers, one after the other (user-service sheds bursts of bcrypt work with 503).
async fn many_readers(s: &TestStack, prefix: &str, count: usize) -> Vec<Reader> {
    let mut readers = Vec::with_capacity(count);
    for n in 0..count {
        readers.push(reader(s, &format!("{prefix}{n:02}")).await);
    }
    readers
}

/// A user granted `role` with the `set-role` command, then logged in (the grant ended any
/// earlier session).
async fn with_role(s: &TestStack, name: &str, role: &str) -> Reader {
    let id = s.register(name).await;
    s.set_role(name, role).await;
    Reader {
        id,
        name: name.to_owned(),
        token: s.login(name).await,
    }
}

/// Catalogues a title; its id.
async fn add_title(s: &TestStack, librarian: &Reader, title: &str, stem: &str, copies: u32) -> i64 {
    let body = json!({"title": title, "author": "Victor Hugo",
                      "isbn": Isbn::from_stem(stem).as_str(), "copies": copies});
    let (status, book, _) = s
        .call(Method::POST, "/books/", Some(&librarian.token), Some(&body))
        .await;
    assert_eq!(status, 201, "{:?}: {book}", s.backend);
    book["id"].as_i64().expect("id")
}

async fn post(s: &TestStack, who: &Reader, path: &str, body: Value) -> (u16, Value) {
    let (status, body, _) = s
        .call(Method::POST, path, Some(&who.token), Some(&body))
        .await;
    (status, body)
}

async fn get(s: &TestStack, who: &Reader, path: &str) -> (u16, Value) {
    let (status, body, _) = s.get(path, Some(&who.token)).await;
    (status, body)
}

fn assert_refused(answer: &(u16, Value), status: u16, reason: &str, what: &str) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(answer.1["reason"], reason, "{what}: {}", answer.1);
    assert!(answer.1["detail"].is_string(), "{what}: {}", answer.1);
}

/// The external backend with RabbitMQ, when this machine has it.
fn external_with_rabbitmq() -> bool {
    backends().contains(&Backend::External) && crate::support::amqp_url().is_some()
}

/// Lets a test register many readers from one address.
fn many_registrations(c: &mut platform::stack::StackConfig) {
    c.user.registration.max_per_ip = 10_000;
    c.user.registration.max_global = 10_000;
}

#[tokio::test]
async fn the_circulation_story() {
    for backend in backends() {
        let s = start(backend, "story", |_| {}).await;
        let librarian = with_role(&s, "libby", "librarian").await;
        let a = reader(&s, "reader_a").await;
        let b = reader(&s, "reader_b").await;
        let c = reader(&s, "reader_c").await;

        // A librarian catalogues a title with one copy, and another by the same author.
        let book = add_title(&s, &librarian, "Les Misérables", "978207040850", 1).await;
        let other = add_title(&s, &librarian, "Notre-Dame de Paris", "978207036003", 2).await;

        // Search ignores case and diacritics, and matches parts of words as one types.
        for q in ["MISERABLES", "misérables", "Les Mis", "les%20miserables"] {
            let (status, found) = get(&s, &a, &format!("/books/?q={q}")).await;
            assert_eq!(status, 200, "{backend:?} q={q}: {found}");
            let ids: Vec<i64> = found
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["id"].as_i64().unwrap())
                .collect();
            assert_eq!(ids, [book], "{backend:?} q={q}");
        }
        let (_, by_author) = get(&s, &a, "/books/?q=HUGO").await;
        assert_eq!(by_author.as_array().unwrap().len(), 2, "{backend:?}");
        assert_eq!(by_author[0]["copies_available"], 1);

        // A borrows the only copy.
        let (status, loan) = post(&s, &a, "/loans/", json!({"book_id": book})).await;
        assert_eq!(status, 201, "{backend:?}: {loan}");
        assert_eq!(loan["book_id"], book);
        assert_eq!(loan["title"], "Les Misérables");
        assert_eq!(loan["renewals_left"], 2);
        for field in ["id", "borrowed_at", "due_at"] {
            assert!(!loan[field].is_null(), "{backend:?}: {field} in {loan}");
        }
        let loan_id = loan["id"].as_i64().unwrap();

        // B cannot borrow the last copy; B and C queue for it.
        let refused = post(&s, &b, "/loans/", json!({"book_id": book})).await;
        assert_refused(
            &refused,
            409,
            "no_copy_available",
            "B borrows the lent copy",
        );
        let (status, hold_b) = post(&s, &b, "/holds/", json!({"book_id": book})).await;
        assert_eq!(status, 201, "{backend:?}: {hold_b}");
        assert_eq!(
            (hold_b["state"].clone(), hold_b["position"].clone()),
            (json!("waiting"), json!(1))
        );
        let (status, hold_c) = post(&s, &c, "/holds/", json!({"book_id": book})).await;
        assert_eq!(status, 201, "{backend:?}: {hold_c}");
        assert_eq!(hold_c["position"], 2);

        // A may not renew while others wait; A returns it.
        let renewed = post(&s, &a, &format!("/loans/{loan_id}/renew"), json!({})).await;
        assert_refused(&renewed, 409, "hold_waiting", "A renews while B waits");
        let (status, returned) = post(&s, &a, &format!("/loans/{loan_id}/return"), json!({})).await;
        assert_eq!(status, 200, "{backend:?}: {returned}");
        assert!(
            returned["returned_at"].is_string(),
            "{backend:?}: {returned}"
        );

        // The copy is set aside for B, the first in the queue; C's place moves up.
        let (_, holds) = get(&s, &b, "/holds/").await;
        assert_eq!(holds[0]["state"], "ready", "{backend:?}: {holds}");
        assert!(
            holds[0]["pickup_deadline"].is_string(),
            "{backend:?}: {holds}"
        );
        let refused = post(&s, &c, "/loans/", json!({"book_id": book})).await;
        assert_refused(&refused, 409, "on_hold_for_another", "C borrows B's copy");

        // B borrows it; a retry with the same Idempotency-Key gets the same loan.
        let mut answers = Vec::new();
        for _ in 0..2 {
            let resp = s
                .http
                .post(s.at("/loans/"))
                .bearer_auth(&b.token)
                .header("idempotency-key", "b-borrows-les-miserables")
                .json(&json!({"book_id": book}))
                .send()
                .await
                .unwrap();
            answers.push((resp.status().as_u16(), resp.json::<Value>().await.unwrap()));
        }
        assert_eq!(answers[0].0, 201, "{backend:?}: {:?}", answers[0]);
        assert_eq!(
            answers[0], answers[1],
            "{backend:?}: the retry returns the first answer"
        );
        let (_, b_holds) = get(&s, &b, "/holds/").await;
        assert_eq!(b_holds, json!([]), "{backend:?}: B's hold is fulfilled");
        let (_, c_holds) = get(&s, &c, "/holds/").await;
        assert_eq!(c_holds[0]["position"], 1, "{backend:?}: {c_holds}");

        let (_, figures) = get(&s, &a, &format!("/books/{book}")).await;
        assert_eq!(
            (
                figures["copies_total"].clone(),
                figures["copies_available"].clone(),
                figures["holds_waiting"].clone()
            ),
            (json!(1), json!(0), json!(1)),
            "{backend:?}: {figures}"
        );
        let (_, a_loans) = get(&s, &a, "/loans/").await;
        assert_eq!(a_loans[0]["id"], loan_id, "{backend:?}: {a_loans}");
        assert_eq!(a_loans[0]["overdue"], false);
        let (_, untouched) = get(&s, &a, &format!("/books/{other}")).await;
        assert_eq!(untouched["copies_available"], 2);
        s.stop().await;
    }
}

/// `GET /user/borrowings/` through the gateway reaches the borrowings function (in process
/// behind its local adapter), which reads book-service's API with the caller's token: the
/// original's path and shape, the caller's own loans, anyone's for a librarian, never another
/// reader's, 401 without a token.
#[tokio::test]
async fn user_borrowings_answer_the_callers_loans_in_the_original_shape() {
    for backend in backends() {
        let s = start(backend, "borrowings", |_| {}).await;
        let librarian = with_role(&s, "libby", "librarian").await;
        let a = reader(&s, "reader_a").await;
        let b = reader(&s, "reader_b").await;
        let isbn = Isbn::from_stem("978207040850");
        let book = add_title(&s, &librarian, "Les Misérables", "978207040850", 2).await;
        let (status, loan) = post(&s, &a, "/loans/", json!({"book_id": book})).await;
        assert_eq!(status, 201, "{backend:?}: {loan}");

        for path in ["/user/borrowings/", "/user/borrowings"] {
            let (status, mine) = get(&s, &a, path).await;
            assert_eq!(status, 200, "{backend:?} {path}: {mine}");
            let rows = mine.as_array().expect("a list");
            assert_eq!(rows.len(), 1, "{backend:?}: {mine}");
            let row = &rows[0];
            assert_eq!(row["book_id"], book);
            assert_eq!(row["title"], "Les Misérables");
            assert_eq!(row["author"], "Victor Hugo");
            assert_eq!(row["isbn"], isbn.as_str());
            let borrowed_on = row["borrowed_on"].as_str().expect("borrowed_on");
            let return_by = row["return_by"].as_str().expect("return_by");
            assert!(borrowed_on < return_by, "{backend:?}: {row}");
        }
        // B has borrowed nothing, and cannot see A's borrowings.
        let (status, none) = get(&s, &b, "/user/borrowings/").await;
        assert_eq!((status, none), (200, json!([])), "{backend:?}");
        let (status, refused) = get(&s, &b, &format!("/user/borrowings/?user_id={}", a.id)).await;
        assert_eq!(status, 403, "{backend:?}: {refused}");
        assert!(refused["detail"].is_string(), "{backend:?}: {refused}");
        // A librarian may look at anyone's.
        let (status, theirs) = get(
            &s,
            &librarian,
            &format!("/user/borrowings/?user_id={}", a.id),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {theirs}");
        assert_eq!(
            theirs.as_array().map(Vec::len),
            Some(1),
            "{backend:?}: {theirs}"
        );
        // No token: 401 with the challenge, from the gateway.
        let (status, _, headers) = s.get("/user/borrowings/", None).await;
        assert_eq!(status, 401, "{backend:?}");
        assert!(headers.contains_key("www-authenticate"), "{backend:?}");
        s.stop().await;
    }
}

/// The next `notification` event of a server-sent event stream, within `within`.
async fn next_notification(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    within: Duration,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.lines().any(|l| l == "event: notification") {
                let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
                return serde_json::from_str(data).ok();
            }
        }
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(bytes))) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return None,
        }
    }
}

/// A return with readers waiting tells the first holder only — live on the stream they hold
/// open through the gateway, in their list, and by e-mail to their address — on both backend
/// sets (the external one carries the events on JetStream).
#[tokio::test]
async fn a_return_tells_only_the_first_holder_live_in_the_list_and_by_mail() {
    for backend in backends() {
        let s = start(backend, "notify", |_| {}).await;
        let librarian = with_role(&s, "libby", "librarian").await;
        let a = reader(&s, "reader_a").await;
        let b = reader(&s, "reader_b").await;
        let c = reader(&s, "reader_c").await;
        let book = add_title(&s, &librarian, "Germinal", "978207036002", 1).await;
        let (status, loan) = post(&s, &a, "/loans/", json!({"book_id": book})).await;
        assert_eq!(status, 201, "{backend:?}: {loan}");
        for holder in [&b, &c] {
            let (status, hold) = post(&s, holder, "/holds/", json!({"book_id": book})).await;
            assert_eq!(status, 201, "{backend:?}: {hold}");
        }
        let open = |who: &Reader| {
            s.http
                .get(format!("{}/notifications/stream", s.url))
                .bearer_auth(&who.token)
                .send()
        };
        let (mut b_stream, mut c_stream) = (open(&b).await.unwrap(), open(&c).await.unwrap());
        for stream in [&b_stream, &c_stream] {
            assert_eq!(stream.status(), 200, "{backend:?}");
            assert_eq!(stream.headers()["content-type"], "text/event-stream");
        }
        let (mut b_buffer, mut c_buffer) = (String::new(), String::new());

        let loan_id = loan["id"].as_i64().unwrap();
        let (status, _) = post(&s, &a, &format!("/loans/{loan_id}/return"), json!({})).await;
        assert_eq!(status, 200, "{backend:?}");
        let live = next_notification(&mut b_stream, &mut b_buffer, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{backend:?}: B is told on the stream"));
        assert_eq!(live["kind"], "hold_ready", "{backend:?}: {live}");
        assert_eq!(live["book_id"], book, "{backend:?}: {live}");
        assert!(
            next_notification(&mut c_stream, &mut c_buffer, Duration::from_millis(500))
                .await
                .is_none(),
            "{backend:?}: C still waits and hears nothing"
        );
        let (status, list) = get(&s, &b, "/notifications/").await;
        assert_eq!((status, list), (200, json!([live.clone()])), "{backend:?}");
        assert_eq!(
            get(&s, &c, "/notifications/").await,
            (200, json!([])),
            "{backend:?}"
        );
        assert_eq!(
            get(&s, &a, "/notifications/").await,
            (200, json!([])),
            "{backend:?}"
        );

        // One e-mail, to B's address (the mail folder of this test's user-service).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mails = loop {
            let mails: Vec<String> = std::fs::read_dir(&s.mail_dir)
                .map(|dir| {
                    dir.filter_map(Result::ok)
                        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                        .collect()
                })
                .unwrap_or_default();
            if !mails.is_empty() || Instant::now() > deadline {
                break mails;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(mails.len(), 1, "{backend:?}: {mails:?}");
        assert!(
            mails[0].contains(&format!("{}@example.com", b.name)) && mails[0].contains("Germinal"),
            "{backend:?}: {}",
            mails[0]
        );
        drop((b_stream, c_stream));
        s.stop().await;
    }
}

#[tokio::test]
async fn each_role_is_refused_what_it_may_not_do() {
    for backend in backends() {
        let s = start(backend, "roles", |_| {}).await;
        let rita = reader(&s, "rita").await;
        let librarian = with_role(&s, "libby", "librarian").await;
        let admin = with_role(&s, "ada", "admin").await;
        let title = json!({"title": "Germinal", "author": "Émile Zola",
                           "isbn": "978-2-07-036002-4", "copies": 1});

        let (status, body) = post(&s, &rita, "/books/", title.clone()).await;
        assert_eq!(status, 403, "{backend:?}: a reader adds a title: {body}");
        let (status, body) = get(&s, &rita, "/users/").await;
        assert_eq!(status, 403, "{backend:?}: a reader lists users: {body}");
        let (status, users) = get(&s, &librarian, "/users/").await;
        assert_eq!(status, 200, "{backend:?}: {users}");
        assert_eq!(users.as_array().unwrap().len(), 3);

        let grant = json!({"role": "librarian"});
        let path = format!("/admin/users/{}/role", rita.id);
        let (status, body, _) = s
            .call(Method::PUT, &path, Some(&librarian.token), Some(&grant))
            .await;
        assert_eq!(
            status, 403,
            "{backend:?}: a librarian grants a role: {body}"
        );
        let (status, body, _) = s
            .call(Method::PUT, &path, Some(&admin.token), Some(&grant))
            .await;
        assert_eq!(
            status, 200,
            "{backend:?}: an admin grants librarian: {body}"
        );
        assert_eq!(
            (body["id"].as_i64(), body["role"].as_str()),
            (Some(rita.id), Some("librarian"))
        );

        // Rita's old session ended with the grant: her token is refused everywhere.
        let (status, _, _) = s.get("/auth/me/", Some(&rita.token)).await;
        assert_eq!(status, 401, "{backend:?}: the old session must be over");
        let (status, _) = post(&s, &rita, "/loans/", json!({"book_id": 1})).await;
        assert_eq!(
            status, 401,
            "{backend:?}: app-service checks the session itself"
        );
        let (status, _) = get(&s, &rita, "/books/").await;
        assert_eq!(status, 401, "{backend:?}");

        // Her next login carries the role.
        let rita = Reader {
            token: s.login(&rita.name).await,
            ..rita
        };
        let (status, body) = post(&s, &rita, "/books/", title).await;
        assert_eq!(
            status, 201,
            "{backend:?}: the new librarian catalogues: {body}"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn another_readers_loans_are_out_of_reach_and_bad_input_is_422() {
    for backend in backends() {
        let s = start(backend, "idor", |_| {}).await;
        let librarian = with_role(&s, "libby", "librarian").await;
        let a = reader(&s, "reader_a").await;
        let c = reader(&s, "reader_c").await;
        let book = add_title(&s, &librarian, "Les Misérables", "978207040850", 2).await;
        let (status, loan) = post(&s, &a, "/loans/", json!({"book_id": book})).await;
        assert_eq!(status, 201, "{backend:?}: {loan}");
        let loan_id = loan["id"].as_i64().unwrap();

        // C cannot return A's loan (as if it did not exist), nor list A's loans or holds.
        let refused = post(&s, &c, &format!("/loans/{loan_id}/return"), json!({})).await;
        assert_refused(&refused, 404, "not_found", "C returns A's loan");
        let refused = post(&s, &c, &format!("/loans/{loan_id}/renew"), json!({})).await;
        assert_refused(&refused, 404, "not_found", "C renews A's loan");
        let (status, body) = get(&s, &c, &format!("/loans/?user_id={}", a.id)).await;
        assert_eq!(status, 403, "{backend:?}: {body}");
        let (status, body) = get(&s, &c, &format!("/holds/?user_id={}", a.id)).await;
        assert_eq!(status, 403, "{backend:?}: {body}");
        let (_, still_out) = get(&s, &a, "/loans/?active=true").await;
        assert_eq!(
            still_out[0]["returned_at"],
            Value::Null,
            "{backend:?}: {still_out}"
        );
        // A librarian may look.
        let (status, seen) = get(&s, &librarian, &format!("/loans/?user_id={}", a.id)).await;
        assert_eq!(
            (status, seen[0]["id"].as_i64()),
            (200, Some(loan_id)),
            "{backend:?}"
        );

        // Bad input: 422 in FastAPI's shape, each naming its field.
        let cases = [
            (
                Method::POST,
                "/books/".to_owned(),
                &librarian,
                json!({"title": "X", "author": "Y", "isbn": "978-2-07-036002-5"}),
                json!(["body", "isbn"]),
            ),
            (
                Method::POST,
                "/loans/".to_owned(),
                &a,
                json!({}),
                json!(["body", "book_id"]),
            ),
            (
                Method::POST,
                "/loans/abc/return".to_owned(),
                &a,
                json!({}),
                json!(["path", "id"]),
            ),
            (
                Method::DELETE,
                "/holds/x1".to_owned(),
                &a,
                Value::Null,
                json!(["path", "id"]),
            ),
        ];
        for (method, path, who, body, loc) in cases {
            let body = (!body.is_null()).then_some(body);
            let (status, answer, _) = s
                .call(method.clone(), &path, Some(&who.token), body.as_ref())
                .await;
            assert_eq!(status, 422, "{backend:?} {method} {path}: {answer}");
            let first = &answer["detail"][0];
            assert_eq!(first["loc"], loc, "{backend:?} {method} {path}: {answer}");
            assert!(
                first["msg"].is_string() && first["type"].is_string(),
                "{answer}"
            );
        }
        let (_, missing) = post(&s, &a, "/loans/", json!({})).await;
        assert_eq!(missing["detail"][0]["type"], "missing");

        // Nothing found is an empty list, not 404.
        let (status, none) = get(&s, &a, "/books/?q=zzzqqqxxx").await;
        assert_eq!((status, none), (200, json!([])), "{backend:?}");
        let (status, none) = get(&s, &c, "/loans/").await;
        assert_eq!((status, none), (200, json!([])), "{backend:?}");
        s.stop().await;
    }
}

#[tokio::test]
async fn fifty_readers_race_for_the_last_copy_across_two_instances() {
    if !external_with_rabbitmq() {
        return;
    }
    let s = start(Backend::External, "race", many_registrations).await;
    let second = s.start_book_instance(None).await;
    let librarian = with_role(&s, "libby", "librarian").await;
    let book = add_title(&s, &librarian, "Les Misérables", "978207040850", 1).await;
    let readers = many_readers(&s, "racer", 50).await;

    let answers = join_all(
        readers
            .iter()
            .map(|r| post(&s, r, "/loans/", json!({"book_id": book}))),
    )
    .await;
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for (status, body) in &answers {
        *by_status.entry(*status).or_default() += 1;
        assert!(*status < 500, "{status}: {body}");
        if *status == 409 {
            assert_eq!(body["reason"], "no_copy_available", "{body}");
        }
    }
    assert_eq!(by_status.get(&201), Some(&1), "{by_status:?}");
    assert_eq!(by_status.get(&409), Some(&49), "{by_status:?}");
    assert_eq!(s.book_count("SELECT COUNT(*) FROM loans").await, 1);
    assert_eq!(
        s.book_count("SELECT COUNT(*) FROM processed_commands")
            .await,
        50,
        "every command applied once"
    );
    second.stop().await;
    s.stop().await;
}

/// One borrow request of the RabbitMQ drill, and what came of it.
struct Attempt {
    reader: usize,
    key: String,
    status: u16,
    answered: chrono::DateTime<Utc>,
}

#[tokio::test]
async fn rabbitmq_cut_mid_run_is_503_then_recovers_without_applying_anything_twice_or_late() {
    if !external_with_rabbitmq() {
        return;
    }
    let wait = Duration::from_secs(2);
    let s = start(Backend::External, "amqpcut", |c| {
        many_registrations(c);
        c.bus.wait = wait;
    })
    .await;
    let proxy = s.amqp_proxy.clone().expect("RabbitMQ behind a proxy");
    let librarian = with_role(&s, "libby", "librarian").await;
    let book = add_title(&s, &librarian, "Les Misérables", "978207040850", 100).await;
    let readers = many_readers(&s, "reader", 40).await;
    let mut next = 0;
    let mut attempts: Vec<Attempt> = Vec::new();
    let borrow = async |n: usize, key: &str| -> (u16, Value, reqwest::header::HeaderMap) {
        let resp = s
            .http
            .post(s.at("/loans/"))
            .bearer_auth(&readers[n].token)
            .header("idempotency-key", key)
            .json(&json!({"book_id": book}))
            .send()
            .await
            .expect("an answer");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.json().await.unwrap_or(Value::Null), headers)
    };

    let (status, body, _) = borrow(next, "k0").await;
    assert_eq!(status, 201, "before the cut: {body}");
    attempts.push(Attempt {
        reader: next,
        key: "k0".into(),
        status,
        answered: Utc::now(),
    });
    next += 1;

    // Cut while borrows are on their way: each of those is applied before its deadline or
    // never (201, 503 or 504, checked against the database below).
    let keys: Vec<String> = (next..next + 8).map(|n| format!("k{n}")).collect();
    let borrow_ref = &borrow;
    let in_flight = join_all(keys.iter().enumerate().map(|(i, key)| async move {
        let answer = borrow_ref(next + i, key).await;
        (answer, Utc::now())
    }));
    let cut = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        proxy.cut();
    };
    let (answers, ()) = tokio::join!(in_flight, cut);
    let cut_at = Instant::now();
    for (i, ((status, body, _), answered)) in answers.into_iter().enumerate() {
        assert!(
            matches!(status, 201 | 503 | 504),
            "at the cut: {status} {body}"
        );
        attempts.push(Attempt {
            reader: next + i,
            key: keys[i].clone(),
            status,
            answered,
        });
    }
    next += keys.len();

    // Down: once app-service notices, every borrow is 503 at once, in JSON, with Retry-After.
    let mut down = 0;
    while down < 3 {
        assert!(
            cut_at.elapsed() < Duration::from_secs(15),
            "no 503 while RabbitMQ is down"
        );
        let key = format!("k{next}");
        let started = Instant::now();
        let (status, body, headers) = borrow(next, &key).await;
        attempts.push(Attempt {
            reader: next,
            key,
            status,
            answered: Utc::now(),
        });
        next += 1;
        assert!(matches!(status, 503 | 504), "while down: {status} {body}");
        if status == 503 {
            assert!(body["detail"].is_string(), "{body}");
            assert_eq!(headers["retry-after"], "1");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "503 must be at once"
            );
            down += 1;
        } else {
            assert_eq!(down, 0, "504 only before app-service noticed the cut");
        }
    }

    // Back, without a restart.
    proxy.restore();
    let restored_at = Instant::now();
    loop {
        assert!(
            restored_at.elapsed() < Duration::from_secs(20),
            "no recovery after RabbitMQ came back"
        );
        let key = format!("k{next}");
        let (status, body, _) = borrow(next, &key).await;
        attempts.push(Attempt {
            reader: next,
            key,
            status,
            answered: Utc::now(),
        });
        next += 1;
        assert!(
            matches!(status, 201 | 503 | 504),
            "recovering: {status} {body}"
        );
        if status == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = |s: u16| attempts.iter().filter(|a| a.status == s).count();
    eprintln!(
        "RabbitMQ drill: {} borrows ({} × 201, {} × 503, {} × 504); recovered {:?} after the restore",
        attempts.len(),
        count(201),
        count(503),
        count(504),
        restored_at.elapsed()
    );

    // Every deadline has passed: whatever was going to be applied has been.
    tokio::time::sleep(wait + Duration::from_millis(500)).await;
    for attempt in &attempts {
        let r = &readers[attempt.reader];
        let message_id = circulation::message_id_for_key(r.id, &attempt.key).to_string();
        let processed = s.processed_at(&message_id).await;
        let loans = s
            .book_count(&format!(
                "SELECT COUNT(*) FROM loans WHERE user_id = {}",
                r.id
            ))
            .await;
        match attempt.status {
            201 => assert_eq!((processed.is_some(), loans), (true, 1), "{}", attempt.key),
            503 => assert_eq!((processed, loans), (None, 0), "503 means nothing was done"),
            _ => {
                assert!(loans <= 1, "{}", attempt.key);
                if let Some(at) = processed {
                    // Applied, then it was before the deadline, at which the client got 504.
                    let slack = chrono::Duration::milliseconds(50);
                    assert!(
                        at <= (attempt.answered + slack).naive_utc(),
                        "applied late: {}",
                        attempt.key
                    );
                }
            }
        }
    }
    // The client retries what failed with the same key: each gets one loan, never two.
    for attempt in attempts.iter().filter(|a| a.status != 201) {
        let (status, body, _) = borrow(attempt.reader, &attempt.key).await;
        assert_eq!(status, 201, "retry of {}: {body}", attempt.key);
    }
    assert_eq!(
        s.book_count("SELECT COUNT(*) FROM loans").await,
        attempts.len() as i64
    );
    assert_eq!(
        s.book_count(
            "SELECT COUNT(*) FROM (SELECT user_id FROM loans GROUP BY user_id HAVING COUNT(*) > 1) twice"
        )
        .await,
        0
    );
    s.stop().await;
}

/// `http_requests_total` of `/books/` on one book-service instance (from its `/metrics`).
async fn books_served(http: &reqwest::Client, port: u16) -> u64 {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains("route=\"/books/\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn the_backup_serves_when_the_primary_dies_and_traffic_returns_to_a_new_primary() {
    if !backends().contains(&Backend::External) {
        return;
    }
    // The primary behind a proxy: cutting it drops every connection at once, as a crash
    // does; a new primary is then started on the same port behind it.
    let primary_port = free_port();
    let backup_port = free_port();
    let proxy = CuttableProxy::start(format!("127.0.0.1:{primary_port}")).await;
    let s = start(Backend::External, "failover", |c| {
        c.gateway.book_service = vec![format!("127.0.0.1:{}", proxy.addr().port())];
        c.gateway.book_service_backup = vec![format!("127.0.0.1:{backup_port}")];
        c.explicit_urls.book_primaries = true;
    })
    .await;
    let primary = s.start_book_instance(Some(primary_port)).await;
    let backup = s.start_book_instance(Some(backup_port)).await;
    let librarian = with_role(&s, "libby", "librarian").await;
    // Until the gateway's probes find the new instances healthy, /books/ may answer 503 or
    // reach the backup; from then on it reaches the primary.
    let warm = Instant::now();
    while books_served(&s.http, primary_port).await == 0 {
        assert!(
            warm.elapsed() < Duration::from_secs(5),
            "the primary never served"
        );
        let _ = s.get("/books/", Some(&librarian.token)).await;
        tokio::time::sleep(HEALTH_CHECK_INTERVAL / 4).await;
    }
    add_title(&s, &librarian, "Les Misérables", "978207040850", 1).await;

    // Readers search in a loop from several tasks.
    let stop = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<bool>>> = Arc::default();
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, token) = (
                s.http.clone(),
                s.at("/books/?q=miserables"),
                librarian.token.clone(),
            );
            let (stop, results) = (stop.clone(), results.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = match http.get(&url).bearer_auth(&token).send().await {
                        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    results.lock().unwrap().push(ok);
                }
            })
        })
        .collect();
    // While the primary is healthy the backup rests.
    let resting = books_served(&s.http, backup_port).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        books_served(&s.http, backup_port).await,
        resting,
        "the backup served while the primary was healthy"
    );

    // The primary dies; the backup takes over within one health-check interval.
    proxy.cut();
    let killed = Instant::now();
    primary.stop().await;
    while books_served(&s.http, backup_port).await == resting {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the backup never served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took_over = killed.elapsed();
    assert!(
        took_over <= HEALTH_CHECK_INTERVAL,
        "the backup served after {took_over:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A new primary on the same port: traffic goes back to it, and the backup rests.
    let primary = s.start_book_instance(Some(primary_port)).await;
    proxy.restore();
    let restarted = Instant::now();
    while books_served(&s.http, primary_port).await == 0 {
        assert!(
            restarted.elapsed() < Duration::from_secs(5),
            "traffic never returned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(HEALTH_CHECK_INTERVAL * 2).await;
    let backup_before = books_served(&s.http, backup_port).await;
    let primary_before = books_served(&s.http, primary_port).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        books_served(&s.http, backup_port).await,
        backup_before,
        "the backup still serves"
    );
    assert!(books_served(&s.http, primary_port).await > primary_before + 10);

    stop.store(true, Ordering::Relaxed);
    join_all(load).await;
    let results = results.lock().unwrap().clone();
    let failed = results.iter().filter(|ok| !**ok).count();
    assert!(
        results.len() > 200,
        "too little load to judge: {}",
        results.len()
    );
    eprintln!(
        "failover drill: the backup served {took_over:?} after the kill; {failed} of {} reads failed",
        results.len()
    );
    assert!(
        failed * 100 < results.len(),
        "{failed} of {} requests failed (took over after {took_over:?})",
        results.len()
    );
    primary.stop().await;
    backup.stop().await;
    s.stop().await;
}
