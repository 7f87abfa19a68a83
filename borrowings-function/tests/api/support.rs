//! What the tests share: readers and librarians with live sessions, API Gateway events made
//! from the JSON fixtures in `events/`, the function's state, and a fake book-service — an
//! axum server on port 0 answering `/loans/` and `/books/{id}` the way book-service does,
//! recording what it was asked and able to misbehave on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::library::{Book, Loan};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use borrowings_function::config::Config;
use borrowings_function::state::AppState;
use chrono::{DateTime, Utc};
use common::auth::{Claims, Role, SessionData, Sessions};
use common::kv::Kv;
use serde_json::{json, Value};

pub const SECRET: &str = "borrowings-function-tests-secret-0123456789";

// ---------------------------------------------------------------------------------------
// Callers
// ---------------------------------------------------------------------------------------

/// Someone with a live session and a token for it.
#[derive(Clone, Debug)]
pub struct User {
    pub sid: String,
    pub token: String,
}

/// Claims for `id`'s session `sid`, expiring `exp_in` seconds from now.
pub fn claims(id: i64, sid: &str, role: Role, exp_in: i64) -> Claims {
    let now = Utc::now().timestamp();
    Claims {
        sub: id.to_string(),
        sid: sid.to_owned(),
        username: format!("user{id}"),
        role: role.as_str().into(),
        iat: now - 60,
        exp: now + exp_in,
        iss: "user-service".into(),
        aud: "platform".into(),
    }
}

/// A user with a live session in `kv` (as user-service records it at login).
pub async fn user(kv: &Kv, id: i64, role: Role) -> User {
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let data = SessionData {
        user_id: id,
        username: format!("user{id}"),
        email: format!("user{id}@example.com"),
        role,
    };
    Sessions::new(kv.clone())
        .create(&sid, &data, Duration::from_secs(1800))
        .await
        .expect("the session is stored");
    User {
        token: test_support::sign_hs256(&claims(id, &sid, role, 1800), SECRET),
        sid,
    }
}

// ---------------------------------------------------------------------------------------
// Events and answers
// ---------------------------------------------------------------------------------------

/// An API Gateway HTTP API (payload 2.0) event for `GET /user/borrowings/?query`, with
/// `Authorization: authorization` when given.
pub fn http_api_event(authorization: Option<&str>, query: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("events/http-api.json")).expect("fixture");
    if let Some(value) = authorization {
        event["headers"]["authorization"] = value.into();
    }
    event["rawQueryString"] = query.into();
    if !query.is_empty() {
        let params: serde_json::Map<String, Value> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        event["queryStringParameters"] = Value::Object(params);
    }
    event
}

/// An API Gateway REST API (payload 1.0) event for `GET /user/borrowings/?query`.
pub fn rest_api_event(authorization: Option<&str>, query: &[(&str, &str)]) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("events/rest-api.json")).expect("fixture");
    if let Some(value) = authorization {
        event["headers"]["Authorization"] = value.into();
        event["multiValueHeaders"]["Authorization"] = json!([value]);
    }
    if !query.is_empty() {
        let single: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let multi: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!([v])))
            .collect();
        event["queryStringParameters"] = Value::Object(single);
        event["multiValueQueryStringParameters"] = Value::Object(multi);
    }
    event
}

/// The `lambda_http::Request` the Lambda runtime makes of `event`.
pub fn request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event")
}

/// A response, reduced to what the tests look at.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `book_id`s of a list of borrowings.
    pub fn book_ids(&self) -> Vec<i64> {
        self.body
            .as_array()
            .unwrap_or_else(|| panic!("a list, got {}", self.body))
            .iter()
            .map(|b| b["book_id"].as_i64().unwrap())
            .collect()
    }
}

/// Runs the handler on `event`.
pub async fn invoke(state: &AppState, event: &Value) -> Answer {
    let resp = borrowings_function::handler::handle(state, request(event)).await;
    let (parts, body) = resp.into_parts();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: serde_json::from_slice(&body).expect("a JSON body"),
    }
}

/// The function's state with sessions in `kv`, reading book-service at `book_service_url`.
pub async fn state(kv: &Kv, book_service_url: &str) -> AppState {
    state_with(kv, config(book_service_url)).await
}

pub fn config(book_service_url: &str) -> Config {
    Config::for_tests(book_service_url, SECRET)
}

pub async fn state_with(kv: &Kv, config: Config) -> AppState {
    borrowings_function::startup::state(&config, kv.clone())
        .await
        .expect("the function's state builds")
}

/// A URL where nothing listens (a port just bound and released).
pub fn nothing_listening() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

// ---------------------------------------------------------------------------------------
// The fake book-service
// ---------------------------------------------------------------------------------------

/// How the fake behaves.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Loans per page of `/loans/` (at most the `limit` asked for).
    pub page: usize,
    /// How long each answer takes.
    pub delay: Duration,
    /// Answer `/loans/` with this status and a `{"detail"}` body instead.
    pub loans_status: Option<StatusCode>,
    /// Answer `/loans/` 200 with a body that is not a list of loans.
    pub garbage: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            page: 100,
            delay: Duration::ZERO,
            loans_status: None,
            garbage: false,
        }
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Log {
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

struct Fake {
    behaviour: Behaviour,
    loans: Vec<Loan>,
    books: HashMap<i64, Book>,
    log: Log,
}

/// A fake book-service on 127.0.0.1; stops when dropped.
pub struct FakeBooks {
    pub url: String,
    fake: Arc<Fake>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBooks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const GERMINAL: i64 = 7;
pub const THERESE: i64 = 8;
pub const LUCEAFARUL: i64 = 9;
/// A reader with two active loans (and one returned).
pub const ANA: i64 = 11;
/// A reader with one active loan.
pub const BOB: i64 = 12;

fn book(id: i64, title: &str, author: &str, isbn: &str) -> (i64, Book) {
    (
        id,
        Book {
            id,
            title: title.into(),
            author: author.into(),
            isbn: isbn.into(),
            copies_total: 2,
            copies_available: 1,
            holds_waiting: 0,
        },
    )
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn loan(id: i64, user_id: i64, book_id: i64, title: &str, returned: bool) -> Loan {
    let borrowed_at = at("2026-03-01T10:00:00Z") + chrono::Duration::hours(id);
    Loan {
        id,
        book_id,
        user_id,
        title: title.into(),
        borrowed_at,
        due_at: borrowed_at + chrono::Duration::days(14),
        renewals_left: 2,
        returned_at: returned.then_some(borrowed_at + chrono::Duration::days(3)),
        overdue: false,
    }
}

impl FakeBooks {
    /// The library of these tests: ANA has Germinal (loan 12, newest) and Thérèse Raquin
    /// (loan 11) out and has returned Luceafărul; BOB has Luceafărul out.
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::with_loans(
            behaviour,
            vec![
                loan(13, BOB, LUCEAFARUL, "Luceafărul", false),
                loan(12, ANA, GERMINAL, "Germinal", false),
                loan(11, ANA, THERESE, "Thérèse Raquin", false),
                loan(10, ANA, LUCEAFARUL, "Luceafărul", true),
            ],
        )
        .await
    }

    /// A fake with `loans` (newest first) of this library's three titles.
    pub async fn with_loans(behaviour: Behaviour, loans: Vec<Loan>) -> Self {
        let fake = Arc::new(Fake {
            behaviour,
            loans,
            books: HashMap::from([
                book(GERMINAL, "Germinal", "Émile Zola", "9782070360024"),
                book(THERESE, "Thérèse Raquin", "Émile Zola", "9782253010845"),
                book(LUCEAFARUL, "Luceafărul", "Mihai Eminescu", "9789734600373"),
            ]),
            log: Log::default(),
        });
        let app = Router::new()
            .route("/loans/", get(loans_page))
            .route("/books/{id}", get(one_book))
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, fake, task }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.fake.log.seen.lock().unwrap().clone()
    }

    /// The requests received for `path_prefix`.
    pub fn seen_at(&self, path_prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with(path_prefix))
            .collect()
    }

    /// The most `/books/{id}` requests that were in progress at once.
    pub fn most_lookups_at_once(&self) -> usize {
        self.fake.log.most_in_flight.load(Ordering::SeqCst)
    }
}

/// Records the request, waits the configured delay; 401 without a bearer token.
async fn arrive(fake: &Fake, path: &str, uri: &Uri, headers: &HeaderMap) -> Result<(), Response> {
    let query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    fake.log.seen.lock().unwrap().push(Seen {
        path: path.to_owned(),
        query,
        authorization: authorization.clone(),
    });
    tokio::time::sleep(fake.behaviour.delay).await;
    match authorization {
        Some(a) if a.starts_with("Bearer ") => Ok(()),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Not authenticated"})),
        )
            .into_response()),
    }
}

/// `GET /loans/?active=&user_id=&limit=&cursor=` (the cursor is an offset here).
async fn loans_page(State(fake): State<Arc<Fake>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = arrive(&fake, uri.path(), &uri, &headers).await {
        return refused;
    }
    if let Some(status) = fake.behaviour.loans_status {
        return (status, Json(json!({"detail": "Database unavailable"}))).into_response();
    }
    if fake.behaviour.garbage {
        return Json(json!({"loans": "not a list"})).into_response();
    }
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let user_id: i64 = query["user_id"].parse().unwrap();
    let active = query.get("active").map(|a| a == "true");
    let limit: usize = query.get("limit").map_or(20, |l| l.parse().unwrap());
    let offset: usize = query.get("cursor").map_or(0, |c| c.parse().unwrap());
    let matching: Vec<&Loan> = fake
        .loans
        .iter()
        .filter(|l| l.user_id == user_id)
        .filter(|l| active.is_none_or(|a| a == l.returned_at.is_none()))
        .collect();
    let size = limit.min(fake.behaviour.page);
    let page: Vec<&Loan> = matching.iter().skip(offset).take(size).copied().collect();
    let mut resp = Json(page).into_response();
    if offset + size < matching.len() {
        let link = format!(
            "</loans/?active=true&user_id={user_id}&limit={limit}&cursor={}>; rel=\"next\"",
            offset + size
        );
        resp.headers_mut()
            .insert(header::LINK, link.parse().unwrap());
    }
    resp
}

/// `GET /books/{id}`.
async fn one_book(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<i64>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let log = &fake.log;
    let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    log.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let answer = match arrive(&fake, uri.path(), &uri, &headers).await {
        Err(refused) => refused,
        Ok(()) => match fake.books.get(&id) {
            Some(book) => Json(book.clone()).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                Json(json!({"detail": "Book not found"})),
            )
                .into_response(),
        },
    };
    log.in_flight.fetch_sub(1, Ordering::SeqCst);
    answer
}
