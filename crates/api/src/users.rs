//! Bodies of the account-administration endpoints (`/users/*`, `/admin/users/*`) and of
//! `POST /auth/logout-all`.
//!
//! Roles are `user` (a reader), `librarian` and `admin`. Nobody chooses their own role: a
//! registration makes a `user`; an admin grants or revokes `librarian` here; `admin` itself is
//! granted and revoked only with the `set-role` command.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Check, FieldError};

/// Accounts per page of `GET /users/` when `limit` is not given.
pub const USERS_PAGE_DEFAULT: u32 = 50;
/// The largest `limit` of `GET /users/`.
pub const USERS_PAGE_MAX: u32 = 200;

/// The roles `PUT /admin/users/{id}/role` may set.
pub const GRANTABLE_ROLES: [&str; 2] = ["user", "librarian"];

/// `PUT /admin/users/{id}/role`: the role the account gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"role": "librarian"}))]
pub struct RoleChange {
    /// `user` or `librarian` (`admin` only with the `set-role` command).
    #[schema(pattern = "^(user|librarian)$", example = "librarian")]
    pub role: String,
}

impl Check for RoleChange {
    fn check(&self) -> Vec<FieldError> {
        if GRANTABLE_ROLES.contains(&self.role.as_str()) {
            return Vec::new();
        }
        let mut msg = "Input should be 'user' or 'librarian'".to_owned();
        if self.role == "admin" {
            msg.push_str(" (admin is granted only with the set-role command)");
        }
        vec![FieldError::body("role", "literal_error", msg)]
    }
}

/// An account as librarians and admins see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 7, "username": "testuser", "email": "testuser@email.com", "role": "librarian", "created_at": "2026-01-31T09:30:00Z"}))]
pub struct UserSummary {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// `user`, `librarian` or `admin`.
    #[schema(example = "user")]
    pub role: String,
    /// When the account was created; `null` for accounts of the original app that never
    /// recorded it.
    pub created_at: Option<DateTime<Utc>>,
}

/// `DELETE /admin/users/{id}/sessions`: how many sessions were ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"user_id": 7, "sessions_ended": 2}))]
pub struct SessionsEnded {
    pub user_id: i64,
    /// Sessions that were live and are now ended.
    pub sessions_ended: u64,
}

/// The query of `GET /users/`: a keyset page of accounts, by id. The answer has a
/// `Link: <...>; rel="next"` header while there may be more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Accounts per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The id of the last account of the previous page (from the `Link` header).
    pub cursor: Option<i64>,
}

impl UserListQuery {
    /// The page size asked for, or the default.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(USERS_PAGE_DEFAULT)
    }
}

impl Check for UserListQuery {
    fn check(&self) -> Vec<FieldError> {
        match self.limit {
            Some(0) => vec![FieldError::query(
                "limit",
                "greater_than_equal",
                "Input should be greater than or equal to 1",
            )],
            Some(n) if n > USERS_PAGE_MAX => vec![FieldError::query(
                "limit",
                "less_than_equal",
                format!("Input should be less than or equal to {USERS_PAGE_MAX}"),
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_user_and_librarian_can_be_granted() {
        for ok in GRANTABLE_ROLES {
            assert!(RoleChange { role: ok.into() }.check().is_empty());
        }
        let admin = RoleChange {
            role: "admin".into(),
        }
        .check();
        assert_eq!(admin[0].kind, "literal_error");
        assert!(admin[0].msg.contains("set-role"), "{}", admin[0].msg);
        let other = RoleChange {
            role: "root".into(),
        }
        .check();
        assert_eq!(other[0].loc, ["body", "role"]);
    }

    #[test]
    fn page_size_bounds() {
        let q = |limit| UserListQuery {
            limit,
            cursor: None,
        };
        assert_eq!(q(None).limit(), USERS_PAGE_DEFAULT);
        assert!(q(Some(1)).check().is_empty());
        assert!(q(Some(USERS_PAGE_MAX)).check().is_empty());
        assert_eq!(q(Some(0)).check()[0].kind, "greater_than_equal");
        let over = q(Some(USERS_PAGE_MAX + 1)).check();
        assert_eq!(over[0].kind, "less_than_equal");
        assert_eq!(over[0].loc, ["query", "limit"]);
    }
}
