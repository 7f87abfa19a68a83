//! `/admin/retransform`: re-parse stored pages without fetching, as a background run to
//! poll; admins only, checked here like everywhere else (never left to the network path).

use api::scrape::{RetransformRequest, RetransformRun};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use common::auth::Role;
use service_kit::error::FieldError;
use service_kit::extract::RawBody;
use service_kit::server::header_value;
use service_kit::Caller;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store;

/// `POST /admin/retransform` `{idno?}`: starts the run over one company's pages (an empty
/// body, or no `idno`: all pages) — or resumes the scope's interrupted run, or joins the
/// scope's run already going. 202 with the run, `Location` = where to poll it.
pub async fn retransform(
    caller: Caller,
    State(s): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let idno = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        service_kit::extract::valid_json::<RetransformRequest>(&body)?
    };
    let run = s
        .retransforms
        .start(
            &s.db,
            &s.cache,
            &s.lease_holder,
            s.config.retransform,
            idno.as_ref(),
        )
        .await?;
    let location = format!("/admin/retransform/{}", run.public_id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, header_value(&location))],
        Json(run.view()),
    )
        .into_response())
}

/// `GET /admin/retransform/{id}`: a run's state and progress.
pub async fn retransform_run(
    caller: Caller,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<RetransformRun>, ApiError> {
    caller.require(Role::Admin)?;
    let id = Uuid::parse_str(&raw).map_err(|e| {
        ApiError::Invalid(vec![FieldError::path(
            "id",
            "uuid_parsing",
            format!("Input should be a valid UUID, {e}"),
        )])
    })?;
    let run = store::runs::by_public_id(&s.db, &id)
        .await?
        .ok_or(ApiError::NotFound("Run not found"))?;
    Ok(Json(run.view()))
}
