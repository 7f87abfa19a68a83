//! `/notifications/*`: relayed to user-service, which owns notifications and checks the caller
//! itself. The live stream is relayed as a stream: each event (and keep-alive comment) reaches
//! the client as soon as user-service sends it, with no whole-call timeout (see
//! [`crate::upstream::Upstream::relay_stream`]).

use api::notifications::{Notification, NotificationSearch};
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// The caller's notifications, newest first, read and unread.
///
/// A `Link: <…>; rel="next"` header gives the next page while there may be more.
#[utoipa::path(get, path = "/notifications/", tag = "notifications",
    security(("oauth2" = [])),
    params(NotificationSearch),
    responses(
        (status = 200, description = "The notifications (`[]` when there are none)", body = [Notification]),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 422, description = "Invalid query parameters", body = ValidationBody),
        (status = 503, description = "user-service, its database or the session store unavailable", body = ErrorBody),
        (status = 504, description = "user-service did not answer in time", body = ErrorBody),
    ))]
pub async fn list(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// Mark one of the caller's notifications as read.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "notifications",
    security(("oauth2" = [])),
    params(("id" = i64, Path, description = "The notification")),
    responses(
        (status = 200, description = "The notification, now read", body = Notification),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 404, description = "No such notification, or another user's", body = ErrorBody),
        (status = 422, description = "The id is not an integer", body = ValidationBody),
        (status = 503, description = "user-service, its database or the session store unavailable", body = ErrorBody),
        (status = 504, description = "user-service did not answer in time", body = ErrorBody),
    ))]
pub async fn read(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// The caller's new notifications as they happen: server-sent events (`event: notification`,
/// `id:` its id, `data:` a `Notification`), with keep-alive comments while nothing happens.
/// Reconnecting with `Last-Event-ID` sends what was missed first. The stream ends (with a
/// last `event: end`) when the token expires, the session ends or the service stops.
#[utoipa::path(get, path = "/notifications/stream", tag = "notifications",
    security(("oauth2" = [])),
    params(("Last-Event-ID" = Option<String>, Header,
        description = "The id of the last notification received (what the stream sent as `id:`); the notifications after it are sent first. A value that is not a non-negative integer is ignored, as if absent (the stream starts with what happens next)")),
    responses(
        (status = 200, description = "A `text/event-stream` of `Notification`s", content_type = "text/event-stream"),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 503, description = "user-service or the session store unavailable", body = ErrorBody),
    ))]
pub async fn stream(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.user_events.relay_stream(request).await
}
