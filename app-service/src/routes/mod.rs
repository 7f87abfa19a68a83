//! Every route of app-service, each served with and without its trailing slash, and the
//! extractors the circulation handlers share.
//!
//! One file per resource: [`auth`], [`users`] and [`notifications`] (relayed to
//! user-service), [`scrape`], [`companies`] and [`admin`] (relayed to scraper-service),
//! [`loans`] and [`holds`] (commands on the circulation bus; their lists relayed to
//! book-service) and [`health`] (`/readyz`).
//!
//! # Who checks the caller
//!
//! Every service verifies the bearer token itself (signature, expiry, issuer, audience, live
//! session; the role from the session). app-service checks the caller only where it acts on
//! the identity itself: the circulation commands, which carry the verified user id and role to
//! book-service (taking a `service_kit::Caller`). A route that only relays to the service
//! owning the resource does not check it again: that service does (user-service for
//! `/auth/me`, `/users/`, `/admin/users/*`, `/notifications/*`; scraper-service for every
//! endpoint; book-service for `GET /loans/` and `GET /holds/`), and a second check here would
//! cost one more session-store round trip per request and decide nothing. Their
//! `Authorization` header goes through untouched and the service's 401/403 comes back
//! unchanged.

pub mod admin;
pub mod auth;
pub mod companies;
pub mod health;
pub mod holds;
pub mod loans;
pub mod notifications;
pub mod scrape;
pub mod ui;
pub mod users;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use axum::Router;
use service_kit::error::FieldError;
use service_kit::RouteBoth;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route of app-service, without the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route_both("/auth/register", post(auth::register))
        .route_both("/auth/login", post(auth::login))
        .route_both("/auth/token", post(auth::token))
        .route_both("/auth/me", get(auth::me))
        .route_both("/auth/logout", post(auth::logout))
        .route_both("/auth/logout-all", post(auth::logout_all))
        .route_both(
            "/auth/session",
            post(auth::open_session).delete(auth::close_session),
        )
        .route_both("/users", get(users::list))
        .route_both("/admin/users/{id}/role", put(users::change_role))
        .route_both("/admin/users/{id}/sessions", delete(users::end_sessions))
        .route_both("/notifications", get(notifications::list))
        .route_both("/notifications/{id}/read", post(notifications::read))
        .route_both("/notifications/stream", get(notifications::stream))
        .route_both("/scrape", post(scrape::scrape))
        .route_both("/scrape/jobs/{id}", get(scrape::job))
        .route_both("/companies/{idno}", get(companies::company))
        .route_both("/admin/retransform", post(admin::retransform))
        .route_both("/admin/retransform/{id}", get(admin::retransform_run))
        .route_both("/loans", get(loans::list).post(loans::borrow))
        .route_both("/loans/{id}/return", post(loans::give_back))
        .route_both("/loans/{id}/renew", post(loans::renew))
        .route_both("/holds", get(holds::list).post(holds::place))
        .route_both("/holds/{id}", delete(holds::cancel))
        .route_both("/readyz", get(health::readyz))
        .merge(ui::routes())
}

/// The `Idempotency-Key` request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The longest `Idempotency-Key` accepted, in bytes (a UUID needs 36).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// The client's `Idempotency-Key`, if it sent one: 1–255 visible ASCII characters, or 422
/// naming the header. A retry with the same key (by the same user) gets the first answer
/// instead of acting twice.
pub struct IdempotencyKey(pub Option<String>);

impl IdempotencyKey {
    /// The key, for `circulation::Command::new`.
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let invalid = |kind: &str, msg: &str| {
            ApiError::Invalid(vec![FieldError::at(
                vec!["header".into(), IDEMPOTENCY_KEY.into()],
                kind,
                msg,
            )])
        };
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(IdempotencyKey(None));
        };
        if values.next().is_some() {
            return Err(invalid(
                "value_error",
                "Send one Idempotency-Key, not several",
            ));
        }
        let raw = value.as_bytes();
        if raw.is_empty() {
            return Err(invalid(
                "string_too_short",
                "String should have at least 1 character",
            ));
        }
        if raw.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(invalid(
                "string_too_long",
                "String should have at most 255 characters",
            ));
        }
        if !raw.iter().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "string_pattern_mismatch",
                "Use visible ASCII characters only (a UUID is a good key)",
            ));
        }
        // Visible ASCII is valid UTF-8.
        Ok(IdempotencyKey(Some(
            String::from_utf8_lossy(raw).into_owned(),
        )))
    }
}

/// The `{id}` of the path: a positive integer, or 422 naming it (as FastAPI answers for an
/// `int` path parameter).
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
