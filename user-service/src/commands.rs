//! The binary's command line: serving (no arguments) and the administrative commands.

use common::auth::Role;
use common::bin::BoxError;
use common::kv::Kv;
use service_kit::db::{DbConfig, DbStartError};

use crate::revocations;
use crate::store::users::RoleUpdate;
use crate::store::{self, StoreError};

const USAGE: &str = "usage: user-service                                        serve the API (configured by environment variables)
       user-service set-role <username> <user|librarian|admin>   change a user's role and end their sessions";

/// Runs what `args` (the arguments after the program name) ask for.
pub async fn run(args: &[String]) -> Result<(), BoxError> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => crate::startup::serve_from_env().await,
        ["set-role", username, role] => {
            let db = crate::config::db_from_env()?;
            // Only a shared store (Redis) holds the running service's sessions; without one
            // they live in the service's memory, and it ends them itself.
            let kv = match common::config::var("REDIS_URL") {
                Some(_) => Some(common::kv::from_env().await?),
                None => None,
            };
            let outcome = set_role(&db, kv.as_ref(), username, role).await?;
            println!("{username} now has role {role}; {outcome}");
            Ok(())
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unrecognised arguments\n{USAGE}").into()),
    }
}

/// Why `set-role` failed.
#[derive(Debug, thiserror::Error)]
pub enum SetRoleError {
    #[error("role must be user, librarian or admin, not {0:?}")]
    UnknownRole(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error(transparent)]
    Start(#[from] DbStartError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What became of the user's sessions after `set-role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionsOutcome {
    /// The role was already that one: sessions untouched.
    Unchanged,
    /// Ended here, through the shared session store; this many were live.
    Ended(usize),
    /// Ended meanwhile by the running service (or a login of the user).
    EndedByService,
    /// Left to the running service, which ends them within its poll interval.
    Requested,
}

impl std::fmt::Display for SessionsOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionsOutcome::Unchanged => f.write_str("it already had it"),
            SessionsOutcome::Ended(n) => write!(f, "{n} live session(s) ended"),
            SessionsOutcome::EndedByService => {
                f.write_str("the running service ended their sessions")
            }
            SessionsOutcome::Requested => {
                f.write_str("the running service ends their sessions within a second")
            }
        }
    }
}

/// Gives `username` the role `role` (the command line's `set-role`, the only way to grant or
/// revoke `admin`) and ends their sessions, which carry the old role: at once through `kv`
/// when given, otherwise through the request written with the change, which every running
/// user-service carries out (see [`crate::revocations`]). Needs only the database.
pub async fn set_role(
    db_config: &DbConfig,
    kv: Option<&Kv>,
    username: &str,
    role: &str,
) -> Result<SessionsOutcome, SetRoleError> {
    let role = Role::parse(role).ok_or_else(|| SetRoleError::UnknownRole(role.to_owned()))?;
    let db = crate::startup::open_db(db_config).await?;
    let result = async {
        let id = store::users::id_of(&db, username)
            .await?
            .ok_or_else(|| SetRoleError::NoSuchUser(username.to_owned()))?;
        let revocation = match store::users::change_role(&db, id, role, false).await? {
            RoleUpdate::Changed { revocation, .. } => revocation,
            RoleUpdate::Unchanged(_) => return Ok(SessionsOutcome::Unchanged),
            RoleUpdate::NotFound | RoleUpdate::AdminProtected(_) => {
                return Err(SetRoleError::NoSuchUser(username.to_owned()))
            }
        };
        let Some(kv) = kv else {
            return Ok(SessionsOutcome::Requested);
        };
        let sessions = common::auth::Sessions::new(kv.clone());
        match revocations::carry_out(&db, &sessions, revocation).await {
            Ok(Some(ended)) => Ok(SessionsOutcome::Ended(ended)),
            Ok(None) => Ok(SessionsOutcome::EndedByService),
            Err(e) => {
                tracing::warn!(error = %e, "cannot end the sessions from here; the running service will");
                Ok(SessionsOutcome::Requested)
            }
        }
    }
    .await;
    db.close().await;
    result
}
