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
    params(("idno" = String, Path, min_length = 13, max_length = 13, pattern = "^[0-9]{13}$",
        description = "The company's IDNO: 13 digits, the last a check digit (weights 7, 3, 1 repeated over the first 12, sum mod 10); a wrong check digit is refused (422)")),
    responses(
        (status = 200, description = "The company", body = CompanyRecord),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Never scraped", body = ErrorBody),
        (status = 422, description = "Not 13 digits, or a wrong check digit", body = ValidationBody),
    ))]
pub async fn company(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}
