//! `/admin/*`: relayed to scraper-service, which checks the caller and the admin role itself.

use api::scrape::{RetransformRequest, RetransformRun};
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// Re-run Transform over stored pages (all, or one IDNO) without fetching; admins only.
///
/// Starts a background run — or resumes the scope's interrupted run, or joins the one already
/// going — and answers at once with it; poll `Location` for its progress. An empty body (or
/// no `idno`) means every stored page.
#[utoipa::path(post, path = "/admin/retransform", tag = "admin",
    security(("oauth2" = [])),
    request_body(content = Option<RetransformRequest>, description = "Optional: `{\"idno\": ...}` for one company's pages"),
    responses(
        (status = 202, description = "The run (started, resumed or already going)", body = RetransformRun,
            headers(("Location" = String, description = "Where to poll the run: `/admin/retransform/<id>`"))),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
        (status = 422, description = "Not 13 digits, or a wrong check digit (see `RetransformRequest`)", body = ValidationBody),
        (status = 503, description = "scraper-service, its database or the session store unavailable", body = ErrorBody),
    ))]
pub async fn retransform(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}

/// A re-transform run's state and progress; admins only.
#[utoipa::path(get, path = "/admin/retransform/{id}", tag = "admin",
    security(("oauth2" = [])),
    params(("id" = String, Path, format = "uuid", description = "The run (`id` of the 202 answer)")),
    responses(
        (status = 200, description = "The run", body = RetransformRun),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ValidationBody),
        (status = 503, description = "scraper-service, its database or the session store unavailable", body = ErrorBody),
    ))]
pub async fn retransform_run(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}
