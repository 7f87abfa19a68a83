//! `/books/*`: searching the catalogue (any caller) and changing it (librarians).

use api::library::{Book, BookCreate, BookFilter, BookPatch, BookSearch, CopiesAdd, Isbn};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use service_kit::extract::ValidJson;
use service_kit::Caller;

use super::{bad_cursor, link_next, Id, Librarian, ValidQuery};
use crate::catalogue;
use crate::error::ApiError;
use crate::paging::{parse_title_cursor, title_cursor};
use crate::search::words;
use crate::state::AppState;
use crate::store::search::{find_titles, Search};
use crate::store::titles::{self, BookRow};

/// `GET /books/`: titles matching the query, by title; `[]` when none does, and a
/// `Link: rel="next"` when there may be more.
#[tracing::instrument(skip_all)]
pub async fn search(
    State(state): State<AppState>,
    _caller: Caller,
    uri: Uri,
    ValidQuery(filter): ValidQuery<BookSearch>,
) -> Result<Response, ApiError> {
    let Some(search) = plan(&filter)? else {
        return Ok(Json(Vec::<Book>::new()).into_response());
    };
    let limit = filter.limit as usize;
    let mut rows = find_titles(&state.db, &state.vocabulary, &search).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|last| title_cursor(&last.sort_key, last.id));
    let books: Vec<Book> = rows.into_iter().map(BookRow::into_api).collect();
    let mut resp = Json(books).into_response();
    if let Some(next) = next {
        link_next(&mut resp, uri.path(), uri.query(), &next);
    }
    Ok(resp)
}

/// The search for `filter`, or `None` when its text can match nothing.
fn plan(filter: &BookFilter) -> Result<Option<Search>, ApiError> {
    let after = filter
        .cursor
        .as_deref()
        .map(|c| parse_title_cursor(c).ok_or_else(bad_cursor))
        .transpose()?;
    let mut isbn = filter.isbn.as_ref().map(|i| i.as_str().to_owned());
    let mut text = Vec::new();
    if let Some(q) = &filter.q {
        match Isbn::parse(q.trim()) {
            // A whole ISBN is looked up exactly, in either form.
            Ok(parsed) if isbn.is_none() => isbn = Some(parsed.as_str().to_owned()),
            _ => {
                text = words(q);
                if text.is_empty() {
                    return Ok(None);
                }
            }
        }
    }
    let author_words = filter.author.as_deref().map(words).unwrap_or_default();
    if filter.author.is_some() && author_words.is_empty() {
        return Ok(None);
    }
    Ok(Some(Search {
        words: text,
        author_words,
        isbn,
        available: filter.available,
        after,
        // One more than asked tells whether there is a next page.
        limit: i64::from(filter.limit) + 1,
    }))
}

/// `GET /books/{id}`.
#[tracing::instrument(skip_all, fields(id))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Book>, ApiError> {
    titles::get(&state.db, id)
        .await?
        .map(|row| Json(row.into_api()))
        .ok_or(ApiError::NotFound("Book"))
}

/// `POST /books/` (librarian): 201 with the new title and its `Location`.
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    Librarian(_caller): Librarian,
    ValidJson(book): ValidJson<BookCreate>,
) -> Result<Response, ApiError> {
    let row = catalogue::create(&state.db, &state.clock, &book).await?;
    let location = HeaderValue::from_str(&format!("/books/{}", row.id))
        .expect("a path of digits is a header value");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(row.into_api()),
    )
        .into_response())
}

/// `PATCH /books/{id}` (librarian).
#[tracing::instrument(skip_all, fields(id))]
pub async fn update(
    State(state): State<AppState>,
    Librarian(_caller): Librarian,
    Id(id): Id,
    ValidJson(changes): ValidJson<BookPatch>,
) -> Result<Json<Book>, ApiError> {
    catalogue::update(&state.db, &state.clock, id, &changes)
        .await?
        .map(|row| Json(row.into_api()))
        .ok_or(ApiError::NotFound("Book"))
}

/// `POST /books/{id}/copies` (librarian): 201 with the title's new figures.
#[tracing::instrument(skip_all, fields(id))]
pub async fn add_copies(
    State(state): State<AppState>,
    Librarian(_caller): Librarian,
    Id(id): Id,
    ValidJson(count): ValidJson<CopiesAdd>,
) -> Result<(StatusCode, Json<Book>), ApiError> {
    catalogue::add_copies(
        &state.db,
        &state.clock,
        &state.rules,
        &state.bell,
        id,
        count,
    )
    .await?
    .map(|row| (StatusCode::CREATED, Json(row.into_api())))
    .ok_or(ApiError::NotFound("Book"))
}
