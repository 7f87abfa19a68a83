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
        (status = 422, description = "Not 13 digits, or a wrong check digit (see `ScrapeRequest`)", body = ValidationBody),
        (status = 429, description = "Over the caller's scrape-job quota (per minute, or forced refreshes per hour); see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    ))]
pub async fn scrape(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}

/// A scrape job's state and, once it succeeded, the company data.
#[utoipa::path(get, path = "/scrape/jobs/{id}", tag = "companies",
    security(("oauth2" = [])),
    params(("id" = String, Path, format = "uuid", description = "The job id (`job_id` of the 202 answer)")),
    responses(
        (status = 200, description = "The job", body = ScrapeJobResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 422, description = "The id is not a UUID", body = ValidationBody),
    ))]
pub async fn job(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.scraper.relay(request).await
}
