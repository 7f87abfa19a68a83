//! `/scrape/*`, `/companies/*` and `/admin/*`: checked here, relayed to scraper-service.

use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use common::error::{ErrorBody, ValidationBody};
use common::extract::RawBody;

use crate::error::AppError;
use crate::identity::Identity;
use crate::AppState;

/// Company data for an IDNO: from the cache when fresh, otherwise a queued scrape job.
#[utoipa::path(post, path = "/scrape/", tag = "companies",
    security(("oauth2" = [])),
    request_body = common::api::scrape::ScrapeRequest,
    responses(
        (status = 200, description = "Fresh data from the cache", body = common::api::scrape::ScrapeCachedResponse),
        (status = 202, description = "A scrape job was queued (or one for this IDNO is pending); poll Location", body = common::api::scrape::ScrapeAcceptedResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 422, description = "Invalid IDNO", body = ValidationBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    ))]
pub async fn scrape(
    _who: Identity,
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, AppError> {
    s.scraper.relay(Method::POST, &uri, &headers, body.0).await
}

/// A scrape job's state and, once it succeeded, the company data.
#[utoipa::path(get, path = "/scrape/jobs/{id}", tag = "companies",
    security(("oauth2" = [])),
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = common::api::scrape::ScrapeJobResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 422, description = "The id is not a number", body = ValidationBody),
    ))]
pub async fn job(
    _who: Identity,
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    s.scraper
        .relay(Method::GET, &uri, &headers, Default::default())
        .await
}

/// The latest structured record of a company.
#[utoipa::path(get, path = "/companies/{idno}", tag = "companies",
    security(("oauth2" = [])),
    params(("idno" = String, Path, description = "13-digit IDNO with a valid check digit")),
    responses(
        (status = 200, description = "The company", body = common::api::scrape::CompanyRecord),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "Never scraped", body = ErrorBody),
        (status = 422, description = "Invalid IDNO", body = ValidationBody),
    ))]
pub async fn company(
    _who: Identity,
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    s.scraper
        .relay(Method::GET, &uri, &headers, Default::default())
        .await
}

/// Re-run Transform over stored pages (all, or one IDNO) without fetching; admins only.
#[utoipa::path(post, path = "/admin/retransform", tag = "admin",
    security(("oauth2" = [])),
    request_body = common::api::scrape::RetransformRequest,
    responses(
        (status = 200, description = "How many pages were re-parsed", body = common::api::scrape::RetransformResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
    ))]
pub async fn retransform(
    who: Identity,
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Response, AppError> {
    who.require_admin()?;
    s.scraper.relay(Method::POST, &uri, &headers, body.0).await
}
