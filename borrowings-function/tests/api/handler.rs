//! The handler, driven with API Gateway events as Lambda delivers them, against the fake
//! book-service and real session stores (in-process, and Redis when configured).

use std::time::Duration;

use axum::http::StatusCode;
use common::auth::{Role, Sessions};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_reader_gets_their_own_current_borrowings() {
    for kv in test_support::key_values("own").await {
        let books = FakeBooks::start(Behaviour::default()).await;
        let state = state(&kv, &books.url).await;
        let ana = user(&kv, ANA, Role::User).await;
        let bearer = format!("Bearer {}", ana.token);

        let a = invoke(&state, &http_api_event(Some(&bearer), "")).await;
        let n = kv.backend_name();
        assert_eq!(a.status, 200, "{n}: {}", a.body);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(
            a.body,
            json!([
                {"book_id": GERMINAL, "title": "Germinal", "author": "Émile Zola",
                 "isbn": "9782070360024", "borrowed_on": "2026-03-01T22:00:00Z",
                 "return_by": "2026-03-15T22:00:00Z"},
                {"book_id": THERESE, "title": "Thérèse Raquin", "author": "Émile Zola",
                 "isbn": "9782253010845", "borrowed_on": "2026-03-01T21:00:00Z",
                 "return_by": "2026-03-15T21:00:00Z"},
            ]),
            "{n}: newest first, the returned loan left out"
        );

        // book-service was asked for ANA's active loans with ANA's own token, then for each
        // title once.
        let loans = books.seen_at("/loans/");
        assert_eq!(loans.len(), 1, "{n}");
        assert_eq!(loans[0].query["user_id"], ANA.to_string());
        assert_eq!(loans[0].query["active"], "true");
        let lookups = books.seen_at("/books/");
        let mut paths: Vec<_> = lookups.iter().map(|s| s.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["/books/7", "/books/8"], "{n}");
        assert!(
            books
                .seen()
                .iter()
                .all(|s| s.authorization.as_deref() == Some(bearer.as_str())),
            "{n}: the caller's token is forwarded on every call"
        );

        // Naming themselves is fine.
        let a = invoke(
            &state,
            &http_api_event(Some(&bearer), &format!("user_id={ANA}")),
        )
        .await;
        assert_eq!(
            (a.status, a.book_ids()),
            (200, vec![GERMINAL, THERESE]),
            "{n}"
        );
    }
}

#[tokio::test]
async fn a_reader_naming_someone_else_gets_403_and_book_service_is_not_asked() {
    for kv in test_support::key_values("others").await {
        let books = FakeBooks::start(Behaviour::default()).await;
        let state = state(&kv, &books.url).await;
        let ana = user(&kv, ANA, Role::User).await;
        let event = http_api_event(
            Some(&format!("Bearer {}", ana.token)),
            &format!("user_id={BOB}"),
        );
        let a = invoke(&state, &event).await;
        assert_eq!(a.status, 403, "{}", kv.backend_name());
        assert_eq!(
            a.body,
            json!({"detail": "Only librarians may see another reader's borrowings"})
        );
        assert!(books.seen().is_empty());
    }
}

#[tokio::test]
async fn a_librarian_sees_any_readers_borrowings() {
    for kv in test_support::key_values("librarian").await {
        let books = FakeBooks::start(Behaviour::default()).await;
        let state = state(&kv, &books.url).await;
        let n = kv.backend_name();
        for role in [Role::Librarian, Role::Admin] {
            let staff = user(&kv, 1, role).await;
            let bearer = format!("Bearer {}", staff.token);
            let a = invoke(
                &state,
                &http_api_event(Some(&bearer), &format!("user_id={BOB}")),
            )
            .await;
            assert_eq!(a.status, 200, "{n} {role}: {}", a.body);
            assert_eq!(a.book_ids(), [LUCEAFARUL], "{n} {role}");
            assert_eq!(a.body[0]["author"], "Mihai Eminescu");
            // Without user_id: their own (none).
            let a = invoke(&state, &http_api_event(Some(&bearer), "")).await;
            assert_eq!((a.status, a.body.clone()), (200, json!([])), "{n} {role}");
        }
        let asked: Vec<String> = books
            .seen_at("/loans/")
            .iter()
            .map(|s| s.query["user_id"].clone())
            .collect();
        assert_eq!(asked, ["12", "1", "12", "1"], "{n}");
    }
}

#[tokio::test]
async fn no_token_is_401_with_the_bearer_challenge() {
    let kv = common::kv::Kv::memory("no-token:");
    let books = FakeBooks::start(Behaviour::default()).await;
    let state = state(&kv, &books.url).await;
    for authorization in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer ")] {
        let a = invoke(&state, &http_api_event(authorization, "")).await;
        assert_eq!(a.status, 401, "{authorization:?}");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        assert_eq!(a.body, json!({"detail": "Not authenticated"}));
    }
    // Refused before the query is even looked at, as the services do.
    let a = invoke(&state, &http_api_event(None, "user_id=abc")).await;
    assert_eq!(a.status, 401);
    assert!(books.seen().is_empty());
}

#[tokio::test]
async fn expired_forged_and_ended_tokens_are_401_invalid_token() {
    for kv in test_support::key_values("refused").await {
        let books = FakeBooks::start(Behaviour::default()).await;
        let state = state(&kv, &books.url).await;
        let ana = user(&kv, ANA, Role::User).await;
        let n = kv.backend_name();

        let expired = test_support::sign_hs256(&claims(ANA, &ana.sid, Role::User, -60), SECRET);
        let forged = test_support::sign_hs256(
            &claims(ANA, &ana.sid, Role::User, 600),
            "another-secret-another-secret-0123456789",
        );
        for (token, detail) in [
            (expired, "Token has expired"),
            (forged, "Invalid token"),
            ("not.a.jwt".to_owned(), "Invalid token"),
        ] {
            let a = invoke(
                &state,
                &http_api_event(Some(&format!("Bearer {token}")), ""),
            )
            .await;
            assert_eq!(a.status, 401, "{n}: {detail}");
            assert_eq!(
                a.header("www-authenticate"),
                Some("Bearer error=\"invalid_token\"")
            );
            assert_eq!(a.body, json!({"detail": detail}), "{n}");
        }

        // Logging out ends the token here too.
        Sessions::new(kv.clone()).revoke(&ana.sid).await.unwrap();
        let a = invoke(
            &state,
            &http_api_event(Some(&format!("Bearer {}", ana.token)), ""),
        )
        .await;
        assert_eq!(a.status, 401, "{n}");
        assert_eq!(a.body, json!({"detail": "Session has ended"}));
        assert!(books.seen().is_empty(), "{n}");
    }
}

#[tokio::test]
async fn a_bad_user_id_is_422_in_fastapi_shape() {
    let kv = common::kv::Kv::memory("bad-user-id:");
    let books = FakeBooks::start(Behaviour::default()).await;
    let state = state(&kv, &books.url).await;
    let librarian = user(&kv, 1, Role::Librarian).await;
    let bearer = format!("Bearer {}", librarian.token);
    for (query, kind) in [
        ("user_id=abc", "int_parsing"),
        ("user_id=0", "greater_than_equal"),
        ("user_id=1&user_id=2", "value_error"),
    ] {
        let a = invoke(&state, &http_api_event(Some(&bearer), query)).await;
        assert_eq!(a.status, 422, "{query}");
        assert_eq!(a.body["detail"][0]["loc"], json!(["query", "user_id"]));
        assert_eq!(a.body["detail"][0]["type"], kind, "{query}");
    }
}

#[tokio::test]
async fn book_service_down_slow_or_failing_is_503_and_never_a_raw_error() {
    let kv = common::kv::Kv::memory("down:");
    let ana = user(&kv, ANA, Role::User).await;
    let event = http_api_event(Some(&format!("Bearer {}", ana.token)), "");

    // Nothing listening.
    let state = state(&kv, &nothing_listening()).await;
    let a = invoke(&state, &event).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.body, json!({"detail": "Book service unavailable"}));

    // Slower than BOOK_SERVICE_TIMEOUT_MS.
    let slow = FakeBooks::start(Behaviour {
        delay: Duration::from_millis(1500),
        ..Behaviour::default()
    })
    .await;
    let mut config = config(&slow.url);
    config.books.timeout = Duration::from_millis(200);
    let state = state_with(&kv, config).await;
    let started = std::time::Instant::now();
    let a = invoke(&state, &event).await;
    assert_eq!(a.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the deadline held"
    );

    // Failing itself.
    let failing = FakeBooks::start(Behaviour {
        loans_status: Some(StatusCode::SERVICE_UNAVAILABLE),
        ..Behaviour::default()
    })
    .await;
    let a = invoke(&state_with(&kv, config_for(&failing)).await, &event).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body, json!({"detail": "Book service unavailable"}));

    // Answering something that is not the API: 502 with a fixed phrase.
    let garbage = FakeBooks::start(Behaviour {
        garbage: true,
        ..Behaviour::default()
    })
    .await;
    let a = invoke(&state_with(&kv, config_for(&garbage)).await, &event).await;
    assert_eq!(a.status, 502);
    assert_eq!(
        a.body,
        json!({"detail": "Book service gave an unexpected answer"})
    );
}

fn config_for(books: &FakeBooks) -> borrowings_function::config::Config {
    config(&books.url)
}

#[tokio::test]
async fn the_session_store_down_is_503_without_a_challenge() {
    let Some(url) = test_support::redis_url() else {
        return;
    };
    let (proxy, kv) = test_support::redis_behind_proxy(&url, "store-down").await;
    let books = FakeBooks::start(Behaviour::default()).await;
    let state = state(&kv, &books.url).await;
    let ana = user(&kv, ANA, Role::User).await;
    let event = http_api_event(Some(&format!("Bearer {}", ana.token)), "");
    assert_eq!(invoke(&state, &event).await.status, 200);

    proxy.cut();
    let a = invoke(&state, &event).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("www-authenticate"), None);
    assert_eq!(a.body, json!({"detail": "Session store unavailable"}));
    assert_eq!(books.seen_at("/loans/").len(), 1, "not asked while down");

    proxy.restore();
    let mut status = 0;
    for _ in 0..50 {
        status = invoke(&state, &event).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "back once the store is");
}

#[tokio::test]
async fn rest_api_events_are_answered_the_same() {
    let kv = common::kv::Kv::memory("rest:");
    let books = FakeBooks::start(Behaviour::default()).await;
    let state = state(&kv, &books.url).await;
    let ana = user(&kv, ANA, Role::User).await;
    let librarian = user(&kv, 1, Role::Librarian).await;
    let bearer = |u: &User| format!("Bearer {}", u.token);

    let a = invoke(&state, &rest_api_event(Some(&bearer(&ana)), &[])).await;
    assert_eq!((a.status, a.book_ids()), (200, vec![GERMINAL, THERESE]));
    let bob = BOB.to_string();
    let a = invoke(
        &state,
        &rest_api_event(Some(&bearer(&ana)), &[("user_id", &bob)]),
    )
    .await;
    assert_eq!(a.status, 403);
    let a = invoke(
        &state,
        &rest_api_event(Some(&bearer(&librarian)), &[("user_id", &bob)]),
    )
    .await;
    assert_eq!((a.status, a.book_ids()), (200, vec![LUCEAFARUL]));
    let a = invoke(&state, &rest_api_event(None, &[])).await;
    assert_eq!(
        (a.status, a.header("www-authenticate")),
        (401, Some("Bearer"))
    );
}

#[tokio::test]
async fn every_page_is_read_and_titles_are_looked_up_a_few_at_a_time() {
    let kv = common::kv::Kv::memory("pages:");
    // Five loans of ANA's (two of one title, as a librarian's corrections may leave), served
    // two per page, each answer taking a while.
    let loans: Vec<api::library::Loan> = [
        (25, GERMINAL),
        (24, THERESE),
        (23, LUCEAFARUL),
        (22, GERMINAL),
        (21, THERESE),
    ]
    .into_iter()
    .map(|(id, book_id)| {
        let at = chrono::Utc::now();
        api::library::Loan {
            id,
            book_id,
            user_id: ANA,
            title: format!("title {book_id}"),
            borrowed_at: at,
            due_at: at + chrono::Duration::days(14),
            renewals_left: 2,
            returned_at: None,
            overdue: false,
        }
    })
    .collect();
    let books = FakeBooks::with_loans(
        Behaviour {
            page: 2,
            delay: Duration::from_millis(100),
            ..Behaviour::default()
        },
        loans,
    )
    .await;
    let mut config = config(&books.url);
    config.books.lookups = 2;
    let state = state_with(&kv, config).await;
    let ana = user(&kv, ANA, Role::User).await;

    let a = invoke(
        &state,
        &http_api_event(Some(&format!("Bearer {}", ana.token)), ""),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.book_ids(),
        [GERMINAL, THERESE, LUCEAFARUL, GERMINAL, THERESE]
    );
    let cursors: Vec<Option<String>> = books
        .seen_at("/loans/")
        .iter()
        .map(|s| s.query.get("cursor").cloned())
        .collect();
    assert_eq!(
        cursors,
        [None, Some("2".to_owned()), Some("4".to_owned())],
        "every page, following the Link header"
    );
    assert_eq!(books.seen_at("/books/").len(), 3, "each title once");
    assert_eq!(
        books.most_lookups_at_once(),
        2,
        "MAX_ACTIVE_LOANS at a time"
    );
}
