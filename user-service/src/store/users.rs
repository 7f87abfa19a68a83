//! The `users` table: accounts, their password hashes (with the scheme each was made with)
//! and roles.
//!
//! Names are compared with `lower(...)` on both sides so that the unique indexes on
//! `lower(username)` and `lower(email)` serve the lookups and enforce case-insensitive
//! uniqueness, even between two registrations racing each other.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use common::auth::Role;
use service_kit::db::{is_unique_violation, now, Db};
use service_kit::with_db;

use super::{revocations, StoreError, Taken};

/// A row of `users`, as needed to log in.
#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub hashed_password: String,
    /// The scheme the hash was made with; `None` for a row from before it was recorded.
    pub password_scheme: Option<String>,
    pub role: Role,
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

/// An account as administrators see it (no password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role: Role,
    /// `None` for rows of the original app that never recorded it.
    pub created_at: Option<DateTime<Utc>>,
}

/// The outcome of [`change_role`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleUpdate {
    /// The role changed; `revocation` is the pending request to end the user's sessions,
    /// written in the same transaction.
    Changed {
        account: Account,
        revocation: i64,
    },
    /// The user already had that role: nothing was written.
    Unchanged(Account),
    /// The user is an admin, whose role only the command line changes: nothing was written.
    AdminProtected(Account),
    NotFound,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    email: String,
    hashed_password: String,
    password_scheme: Option<String>,
    role: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            role: role_from_db(row.id, &row.role),
            id: row.id,
            username: row.username,
            email: row.email,
            hashed_password: row.hashed_password,
            password_scheme: row.password_scheme,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    username: String,
    email: String,
    role: String,
    created_at: Option<NaiveDateTime>,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Self {
        Account {
            role: role_from_db(row.id, &row.role),
            id: row.id,
            username: row.username,
            email: row.email,
            created_at: row.created_at.map(|t| t.and_utc()),
        }
    }
}

/// A stored role; one this version does not know (written by hand, or by a newer version)
/// grants the least, never more.
fn role_from_db(id: i64, stored: &str) -> Role {
    Role::parse(stored).unwrap_or_else(|| {
        tracing::warn!(
            user_id = id,
            role = stored,
            "unknown role in users; treated as user"
        );
        Role::User
    })
}

// The id is cast so both backends decode it as i64 (it is INTEGER, i.e. i32, on PostgreSQL);
// COALESCE keeps rows of the original app, whose columns were nullable, readable.
const USER_COLUMNS: &str = "CAST(id AS BIGINT) AS id, COALESCE(username, '') AS username, \
     COALESCE(email, '') AS email, COALESCE(hashed_password, '') AS hashed_password, \
     password_scheme, COALESCE(role, 'user') AS role";

const ACCOUNT_COLUMNS: &str = "CAST(id AS BIGINT) AS id, COALESCE(username, '') AS username, \
     COALESCE(email, '') AS email, COALESCE(role, 'user') AS role, created_at";

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

/// Adds a user with role `user` and the hash made under `scheme`; a name or email taken
/// (ignoring case) is `Duplicate`.
#[tracing::instrument(skip_all, fields(username = username, scheme = scheme))]
pub async fn insert_user(
    db: &Db,
    username: &str,
    email: &str,
    hashed_password: &str,
    scheme: &str,
) -> Result<User, StoreError> {
    let sql = format!(
        "INSERT INTO users (email, username, hashed_password, password_scheme, created_at, role) \
         VALUES ($1, $2, $3, $4, $5, 'user') RETURNING {USER_COLUMNS}"
    );
    let inserted: Result<UserRow, sqlx::Error> = with_db!(db, pool => {
        sqlx::query_as(&sql)
            .bind(email)
            .bind(username)
            .bind(hashed_password)
            .bind(scheme)
            .bind(now())
            .fetch_one(pool)
            .await
    });
    match inserted {
        Ok(row) => Ok(row.into()),
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
    let row = with_db!(db, pool => sqlx::query_as::<_, UserRow>(&sql).bind(name).fetch_optional(pool).await)?;
    Ok(row.map(User::from))
}

/// Replaces the password hash of user `id` — only if it is still `old_hash`, so a re-hash
/// never overwrites a change made meanwhile. True when it was replaced.
#[tracing::instrument(skip_all, fields(user_id = id, scheme = scheme))]
pub async fn replace_password(
    db: &Db,
    id: i64,
    old_hash: &str,
    new_hash: &str,
    scheme: &str,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET hashed_password = $1, password_scheme = $2 \
               WHERE id = $3 AND hashed_password = $4";
    let done = with_db!(db, pool => sqlx::query(sql)
        .bind(new_hash)
        .bind(scheme)
        .bind(id)
        .bind(old_hash)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// The current role of user `id`; `None` when there is no such user.
#[tracing::instrument(skip_all, fields(user_id = id))]
pub async fn role_of(db: &Db, id: i64) -> Result<Option<Role>, StoreError> {
    let sql = "SELECT COALESCE(role, 'user') FROM users WHERE id = $1";
    let role: Option<String> =
        with_db!(db, pool => sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await)?;
    Ok(role.map(|r| role_from_db(id, &r)))
}

/// The id of the user named `username`, ignoring case.
#[tracing::instrument(skip_all)]
pub async fn id_of(db: &Db, username: &str) -> Result<Option<i64>, StoreError> {
    let sql = "SELECT CAST(id AS BIGINT) FROM users WHERE lower(username) = lower($1)";
    let id =
        with_db!(db, pool => sqlx::query_scalar(sql).bind(username).fetch_optional(pool).await)?;
    Ok(id)
}

/// The account with id `id`.
#[tracing::instrument(skip_all, fields(user_id = id))]
pub async fn account(db: &Db, id: i64) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = $1");
    let row = with_db!(db, pool => sqlx::query_as::<_, AccountRow>(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.map(Account::from))
}

/// The username and e-mail address of each of `ids` that has an account (whom a notice is
/// written to, and where it is mailed).
#[tracing::instrument(skip_all, fields(count = ids.len()))]
pub async fn recipients(
    db: &Db,
    ids: &[i64],
) -> Result<HashMap<i64, (String, String)>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, String, String)> = with_db!(db, pool => {
        let mut query = sqlx::QueryBuilder::new(
            "SELECT CAST(id AS BIGINT), COALESCE(username, ''), email FROM users WHERE id IN (",
        );
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(")");
        query.build_query_as().fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, username, email)| (id, (username, email)))
        .collect())
}

/// Up to `limit` accounts with an id above `after` (all when `None`), by id: a keyset page.
#[tracing::instrument(skip_all, fields(after = ?after, limit = limit))]
pub async fn list(db: &Db, after: Option<i64>, limit: u32) -> Result<Vec<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2");
    let after = after.unwrap_or(i64::MIN);
    let rows = with_db!(db, pool => sqlx::query_as::<_, AccountRow>(&sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(Account::from).collect())
}

/// Gives user `id` the role `role` and, in the same transaction, requests the end of every
/// session of theirs (a session carries the role it was opened with). With `protect_admin`
/// an admin's role is left alone: only the command line changes it.
#[tracing::instrument(skip_all, fields(user_id = id, role = %role))]
pub async fn change_role(
    db: &Db,
    id: i64,
    role: Role,
    protect_admin: bool,
) -> Result<RoleUpdate, StoreError> {
    // The conditions are in the UPDATE itself, so a concurrent change cannot slip between a
    // check and the write.
    let guard = if protect_admin {
        " AND role <> 'admin'"
    } else {
        ""
    };
    let update = format!("UPDATE users SET role = $1 WHERE id = $2 AND role <> $1{guard}");
    let select = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = $1");
    let requested_at = now();
    let (changed, account) = with_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(&update)
            .bind(role.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        let revocation: Option<i64> = if changed {
            Some(
                sqlx::query_scalar(revocations::INSERT)
                    .bind(id)
                    .bind(requested_at)
                    .fetch_one(&mut *tx)
                    .await?,
            )
        } else {
            None
        };
        let account = sqlx::query_as::<_, AccountRow>(&select)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        (revocation, account)
    });
    Ok(match (changed, account.map(Account::from)) {
        (_, None) => RoleUpdate::NotFound,
        (Some(revocation), Some(account)) => RoleUpdate::Changed {
            account,
            revocation,
        },
        (None, Some(account)) if account.role == role => RoleUpdate::Unchanged(account),
        (None, Some(account)) => RoleUpdate::AdminProtected(account),
    })
}
