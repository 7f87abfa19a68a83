//! `GET /scrape/jobs/{id}`: a job's state and, once it succeeded, its record — for the user
//! who asked for it (and admins) only.

use api::scrape::{JobState, ScrapeJobResponse};
use axum::extract::{Path, State};
use axum::Json;
use common::auth::Role;
use service_kit::error::FieldError;
use service_kit::Caller;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store;
use crate::store::jobs::Job;

/// The job named `id` (its UUID), with the company record when it succeeded. Someone else's
/// job is answered exactly like a job that does not exist.
pub async fn job(
    caller: Caller,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ScrapeJobResponse>, ApiError> {
    let id = Uuid::parse_str(&raw).map_err(|e| {
        ApiError::Invalid(vec![FieldError::path(
            "id",
            "uuid_parsing",
            format!("Input should be a valid UUID, {e}"),
        )])
    })?;
    let job = store::jobs::by_public_id(&s.db, &id)
        .await?
        .filter(|job| job.owner_id == Some(caller.user_id) || caller.is(Role::Admin))
        .ok_or(ApiError::NotFound("Job not found"))?;
    let mut body = view(&job);
    if let Some(tid) = job
        .transformed_id
        .filter(|_| job.state() == JobState::Succeeded)
    {
        body.data = store::records::by_id(&s.db, tid).await?;
    }
    Ok(Json(body))
}

/// The API view of a job, without its result.
fn view(job: &Job) -> ScrapeJobResponse {
    ScrapeJobResponse {
        id: job.public_id.clone(),
        idno: job.idno.to_string(),
        state: job.state(),
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        created_at: job.created_at.and_utc(),
        updated_at: job.updated_at.and_utc(),
        started_at: job.started_at.map(|t| t.and_utc()),
        finished_at: job.finished_at.map(|t| t.and_utc()),
        error: job.error.clone(),
        data: None,
    }
}
