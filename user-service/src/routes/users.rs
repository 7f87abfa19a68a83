//! Accounts, for librarians and admins: `GET /users/`, `PUT /admin/users/{id}/role`,
//! `DELETE /admin/users/{id}/sessions`.

use api::users::{RoleChange, SessionsEnded, UserListQuery, UserSummary};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use common::auth::Role;
use service_kit::extract::ValidJson;
use service_kit::Caller;

use super::{no_store, parse_query, path_id};
use crate::error::ApiError;
use crate::revocations;
use crate::state::AppState;
use crate::store;
use crate::store::users::{Account, RoleUpdate};

/// `GET /users/?limit=&cursor=` (librarian): accounts by id, a keyset page at a time; a
/// `Link: <…>; rel="next"` header while there may be more, `200 []` past the end.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Role::Librarian)?;
    let query = parse_query::<UserListQuery>(query.as_deref().unwrap_or_default())?;
    let limit = query.limit();
    let accounts = store::users::list(&state.db, query.cursor, limit).await?;
    let next = match accounts.last() {
        Some(last) if accounts.len() == limit as usize => Some(last.id),
        _ => None,
    };
    let page: Vec<UserSummary> = accounts.into_iter().map(summary).collect();
    let mut resp = Json(page).into_response();
    no_store(resp.headers_mut());
    if let Some(cursor) = next {
        let link = format!("</users/?limit={limit}&cursor={cursor}>; rel=\"next\"");
        resp.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&link).map_err(|e| ApiError::Internal(e.to_string()))?,
        );
    }
    Ok(resp)
}

/// `PUT /admin/users/{id}/role` (admin): grants or revokes `librarian`, and ends every session
/// of the user at once (their next login carries the new role). 404 for an unknown user; 403
/// for an admin, whose role only `set-role` changes.
pub async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ValidJson(body): ValidJson<RoleChange>,
) -> Result<Json<UserSummary>, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(&id)?;
    // The body's check admits only grantable roles.
    let role =
        Role::parse(&body.role).ok_or_else(|| ApiError::Internal("unchecked role".into()))?;
    let account = match store::users::change_role(&state.db, id, role, true).await? {
        RoleUpdate::Changed {
            account,
            revocation,
        } => {
            // Committed with the change: if the session store fails now, the background
            // look carries it out as soon as the store is back.
            if let Err(e) = revocations::carry_out(&state.db, &state.sessions, revocation).await {
                tracing::warn!(user_id = id, error = %e, "sessions not ended yet; left pending");
            }
            state.live.sessions_changed(id);
            tracing::info!(user_id = id, by = caller.user_id, role = %role, "role changed");
            account
        }
        RoleUpdate::Unchanged(account) => account,
        RoleUpdate::AdminProtected(_) => return Err(ApiError::AdminRole),
        RoleUpdate::NotFound => return Err(ApiError::UserNotFound),
    };
    Ok(Json(summary(account)))
}

/// `DELETE /admin/users/{id}/sessions` (admin): ends every session of the user (a
/// compromised account, a password changed elsewhere); answers how many were live.
pub async fn end_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionsEnded>, ApiError> {
    caller.require(Role::Admin)?;
    let id = path_id(&id)?;
    if store::users::account(&state.db, id).await?.is_none() {
        return Err(ApiError::UserNotFound);
    }
    let ended = state.sessions.end_all_for_user(id).await?;
    state.live.sessions_changed(id);
    tracing::info!(
        user_id = id,
        by = caller.user_id,
        ended,
        "sessions ended by an admin"
    );
    Ok(Json(SessionsEnded {
        user_id: id,
        sessions_ended: ended as u64,
    }))
}

fn summary(account: Account) -> UserSummary {
    UserSummary {
        id: account.id,
        username: account.username,
        email: account.email,
        role: account.role.as_str().to_owned(),
        created_at: account.created_at,
    }
}
