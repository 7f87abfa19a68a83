//! Every SQL statement of the service: the `users` table, written once for both backends.
//!
//! Names are compared with `lower(...)` on both sides so that the unique indexes on
//! `lower(username)` and `lower(email)` serve the lookups and enforce case-insensitive
//! uniqueness, even between two registrations racing each other.

use common::db::{is_unavailable, is_unique_violation, now, Db};
use common::with_db;

/// The roles a user may have.
pub const ROLES: [&str; 2] = ["user", "admin"];

/// A row of `users`, as needed to log in.
#[derive(Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub hashed_password: String,
    pub role: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Which unique field a registration collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Username,
    Email,
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} already registered")]
    Duplicate(Taken),
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Other(e)
        }
    }
}

// The id is cast so both backends decode it as i64 (it is INTEGER, i.e. i32, on PostgreSQL);
// COALESCE keeps rows of the original app, whose columns were nullable, readable.
const USER_COLUMNS: &str = "CAST(id AS BIGINT) AS id, COALESCE(username, '') AS username, \
     COALESCE(email, '') AS email, COALESCE(hashed_password, '') AS hashed_password, \
     COALESCE(role, 'user') AS role";

/// Which of `username` and `email` is already taken (username first), ignoring case.
#[tracing::instrument(skip_all)]
pub async fn taken(db: &Db, username: &str, email: &str) -> Result<Option<Taken>, StoreError> {
    let sql = "SELECT \
           COALESCE(MAX(CASE WHEN lower(username) = lower($1) THEN 1 ELSE 0 END), 0) AS u, \
           COALESCE(MAX(CASE WHEN lower(email) = lower($2) THEN 1 ELSE 0 END), 0) AS e \
         FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($2)";
    let (u, e): (i32, i32) =
        with_db!(db, pool => sqlx::query_as(sql).bind(username).bind(email).fetch_one(pool).await)?;
    Ok(match (u, e) {
        (1, _) => Some(Taken::Username),
        (_, 1) => Some(Taken::Email),
        _ => None,
    })
}

/// Adds a user with role `user`; a name or email taken (ignoring case) is `Duplicate`.
#[tracing::instrument(skip_all, fields(username))]
pub async fn insert_user(
    db: &Db,
    username: &str,
    email: &str,
    hashed_password: &str,
) -> Result<User, StoreError> {
    let sql = format!(
        "INSERT INTO users (email, username, hashed_password, created_at, role) \
         VALUES ($1, $2, $3, $4, 'user') RETURNING {USER_COLUMNS}"
    );
    let inserted: Result<User, sqlx::Error> = with_db!(db, pool => {
        sqlx::query_as(&sql)
            .bind(email)
            .bind(username)
            .bind(hashed_password)
            .bind(now())
            .fetch_one(pool)
            .await
    });
    match inserted {
        Ok(user) => Ok(user),
        // Another registration won the race (or the pre-check was skipped): the unique
        // indexes decided; ask which name they refused.
        Err(e) if is_unique_violation(&e) => {
            let which = taken(db, username, email).await?.unwrap_or(Taken::Username);
            Err(StoreError::Duplicate(which))
        }
        Err(e) => Err(e.into()),
    }
}

/// The user whose username — or else whose email — is `name`, ignoring case. A username
/// match wins, so an account of the original app whose username looks like an email address
/// still logs in by it.
#[tracing::instrument(skip_all)]
pub async fn find_for_login(db: &Db, name: &str) -> Result<Option<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($1) \
         ORDER BY CASE WHEN lower(username) = lower($1) THEN 0 ELSE 1 END LIMIT 1"
    );
    let user = with_db!(db, pool => sqlx::query_as::<_, User>(&sql).bind(name).fetch_optional(pool).await)?;
    Ok(user)
}

/// Gives the user named `username` (ignoring case) the role `role`; false when there is no
/// such user.
#[tracing::instrument(skip_all, fields(role))]
pub async fn set_role(db: &Db, username: &str, role: &str) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET role = $1 WHERE lower(username) = lower($2)";
    let done = with_db!(db, pool => sqlx::query(sql).bind(role).bind(username).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}
