//! `/companies/*`: relayed to scraper-service, which checks the caller itself.

use api::scrape::CompanyRecord;
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// The latest structured record of a company.
#[utoipa::path(get, path = "/companies/{idno}", tag = "companies",
    security(("oauth2" = [])),
    params(("idno" = String, Path, description = "13-digit IDNO with a valid check digit")),
    responses(
        (status = 200, description = "The company", body = CompanyRecord),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Never scraped", body = ErrorBody),
        (status = 422, description = "Invalid IDNO", body = ValidationBody),
    ))]
pub async fn company(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}
