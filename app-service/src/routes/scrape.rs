//! `/scrape/*`: relayed to scraper-service, which checks the caller itself.

use api::scrape::{ScrapeAcceptedResponse, ScrapeCachedResponse, ScrapeJobResponse, ScrapeRequest};
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// Company data for an IDNO: from the cache when fresh, otherwise a queued scrape job.
#[utoipa::path(post, path = "/scrape/", tag = "companies",
    security(("oauth2" = [])),
    request_body = ScrapeRequest,
    responses(
        (status = 200, description = "Fresh data from the cache", body = ScrapeCachedResponse),
        (status = 202, description = "A scrape job was queued (or one for this IDNO is pending); poll Location", body = ScrapeAcceptedResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 422, description = "Invalid IDNO", body = ValidationBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    ))]
pub async fn scrape(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}

/// A scrape job's state and, once it succeeded, the company data.
#[utoipa::path(get, path = "/scrape/jobs/{id}", tag = "companies",
    security(("oauth2" = [])),
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = ScrapeJobResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 422, description = "The id is not a number", body = ValidationBody),
    ))]
pub async fn job(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}
