//! `/admin/*`: relayed to scraper-service, which checks the caller and the admin role itself.

use api::scrape::{RetransformRequest, RetransformResponse};
use api::ErrorBody;
use axum::extract::State;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// Re-run Transform over stored pages (all, or one IDNO) without fetching; admins only.
#[utoipa::path(post, path = "/admin/retransform", tag = "admin",
    security(("oauth2" = [])),
    request_body = RetransformRequest,
    responses(
        (status = 200, description = "How many pages were re-parsed", body = RetransformResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
    ))]
pub async fn retransform(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}
