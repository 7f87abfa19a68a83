//! `GET /companies/{idno}`: the latest record of a company.

use api::scrape::{CompanyRecord, Idno};
use axum::extract::{Path, State};
use axum::Json;
use service_kit::Caller;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store;

/// The latest transformed record of `idno` (404 when it was never scraped); any
/// authenticated caller.
pub async fn company(
    _caller: Caller,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<CompanyRecord>, ApiError> {
    let idno = Idno::parse_at(&raw, &["path", "idno"]).map_err(|e| ApiError::Invalid(vec![e]))?;
    let stored = store::records::latest(&s.db, &idno)
        .await?
        .ok_or(ApiError::NotFound("Company not found"))?;
    Ok(Json(stored.record))
}
