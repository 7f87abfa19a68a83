//! `GET /holds/`: a reader's active holds with their place in the queue and pickup
//! deadline (a librarian's choice of reader). Placing and cancelling holds are circulation
//! commands, applied by `crate::apply`.

use api::library::page_size;
use api::library::{Hold, HoldSearch};
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use service_kit::Caller;

use super::{bad_cursor, link_next, whose, ValidQuery};
use crate::error::ApiError;
use crate::paging::{id_cursor, parse_id_cursor};
use crate::state::AppState;
use crate::store::holds;

/// `GET /holds/?user_id=&limit=&cursor=`: oldest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    ValidQuery(query): ValidQuery<HoldSearch>,
) -> Result<Response, ApiError> {
    let user_id = whose(&caller, query.user_id, "holds")?;
    let limit = page_size(query.limit).map_err(|e| ApiError::Invalid(vec![e]))?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| parse_id_cursor(c).ok_or_else(bad_cursor))
        .transpose()?;
    let mut rows = holds::list(&state.db, user_id, after, i64::from(limit) + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows.last().filter(|_| more).map(|last| id_cursor(last.id));
    let body: Vec<Hold> = rows.iter().map(|row| row.to_api()).collect();
    let mut resp = Json(body).into_response();
    if let Some(next) = next {
        link_next(&mut resp, uri.path(), uri.query(), &next);
    }
    Ok(resp)
}
