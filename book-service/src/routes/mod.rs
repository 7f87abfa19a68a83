//! Every HTTP route of book-service, and the extractors they share.
//!
//! `/books/*` is served to the gateway directly; `GET /loans/` and `GET /holds/` to
//! app-service (changes to loans and holds arrive as circulation commands, not over HTTP).
//! Every route checks the caller itself (`Caller`, or [`Librarian`] for catalogue changes,
//! which answers 403 before the body is even read).

pub mod books;
pub mod health;
pub mod holds;
pub mod loans;

use api::{FieldError, Validate};
use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use common::auth::{Authenticator, Role};
use serde::de::DeserializeOwned;
use service_kit::extract::{parse_form, BodyRejection};
use service_kit::{Caller, RouteBoth};

use crate::error::ApiError;
use crate::state::AppState;

/// The routes (without the shared layers; see `startup::router`).
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route_both("/books/", get(books::search).post(books::create))
        .route_both("/books/{id}", get(books::get).patch(books::update))
        .route_both("/books/{id}/copies", post(books::add_copies))
        .route_both("/loans/", get(loans::list))
        .route_both("/holds/", get(holds::list))
        .route_both("/readyz", get(health::readyz))
        .with_state(state)
        .merge(ui_assets::axum::router(&UI))
}

/// The web UI's catalogue area (`web/catalogue`: search, a title, the librarian's editor),
/// served at `/ui/catalogue/*` (see `build.rs`).
static UI: ui_assets::Area = ui_assets::area!("catalogue");

/// A caller whose role includes librarian; 401 or 403 otherwise.
pub struct Librarian(pub Caller);

impl<S> FromRequestParts<S> for Librarian
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let caller = Caller::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        caller
            .require(Role::Librarian)
            .map_err(IntoResponse::into_response)?;
        Ok(Librarian(caller))
    }
}

/// The query string parsed as `T` and validated; 422 naming the `query` field otherwise.
pub struct ValidQuery<T: Validate>(pub T::Valid);

impl<T, S> FromRequestParts<S> for ValidQuery<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let value: T = parse_form(raw.as_bytes()).map_err(|rejection| match rejection {
            BodyRejection::Invalid(errors) => ApiError::Invalid(
                errors
                    .into_iter()
                    .map(|mut e| {
                        // The form parser names the body; here it is the query.
                        if let Some(first) = e.loc.first_mut() {
                            *first = "query".into();
                        }
                        e
                    })
                    .collect(),
            ),
            BodyRejection::Read(..) => ApiError::Invalid(vec![FieldError::query(
                "",
                "value_error",
                "Unreadable query string",
            )]),
        })?;
        value.validate().map(ValidQuery).map_err(ApiError::Invalid)
    }
}

/// The `{id}` of the path: a positive integer, or 422 naming it.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = || {
            ApiError::Invalid(vec![FieldError::path(
                "id",
                "int_parsing",
                "Input should be a valid positive integer",
            )])
        };
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid())?;
        match raw.parse::<i64>() {
            Ok(id) if id >= 1 => Ok(Id(id)),
            _ => Err(invalid()),
        }
    }
}

/// Whose list to show: the caller's own, or — for a librarian — the reader `requested`
/// names; another reader's is 403 for everyone else.
pub fn whose(caller: &Caller, requested: Option<i64>, what: &'static str) -> Result<i64, ApiError> {
    match requested {
        Some(user_id) if user_id != caller.user_id => {
            if caller.is(Role::Librarian) {
                Ok(user_id)
            } else {
                Err(ApiError::OthersData(what))
            }
        }
        _ => Ok(caller.user_id),
    }
}

/// An invalid `cursor` parameter.
pub fn bad_cursor() -> ApiError {
    ApiError::Invalid(vec![FieldError::query(
        "cursor",
        "value_error",
        "Invalid cursor; use the one from the Link header",
    )])
}

/// Adds `Link: <path?…&cursor=next>; rel="next"` to `resp`, keeping the request's other
/// query parameters.
pub fn link_next(resp: &mut Response, path: &str, query: Option<&str>, next: &str) {
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key != "cursor" {
            params.append_pair(&key, &value);
        }
    }
    params.append_pair("cursor", next);
    let link = format!("<{path}?{}>; rel=\"next\"", params.finish());
    if let Ok(value) = HeaderValue::from_str(&link) {
        resp.headers_mut().insert(header::LINK, value);
    }
}
