//! `POST /admin/retransform`: re-parse stored pages without fetching; admins only, checked
//! here like everywhere else (never left to the network path).

use api::scrape::{RetransformRequest, RetransformResponse};
use axum::extract::State;
use axum::Json;
use common::auth::Role;
use service_kit::extract::RawBody;
use service_kit::Caller;

use crate::error::ApiError;
use crate::retransform;
use crate::state::AppState;

/// `{idno?}` re-parses one company's pages; an empty body (or no `idno`) re-parses all.
pub async fn retransform(
    caller: Caller,
    State(s): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<RetransformResponse>, ApiError> {
    caller.require(Role::Admin)?;
    let idno = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        service_kit::extract::valid_json::<RetransformRequest>(&body)?
    };
    let report = retransform::run(&s.db, &s.cache, idno.as_ref()).await?;
    Ok(Json(report))
}
