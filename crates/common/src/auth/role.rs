//! Roles: what an account may do.

use serde::{Deserialize, Serialize};

/// What an account may do. Nobody chooses their own role: registration makes a `user`, and
/// only `set-role` or an admin grants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A reader.
    User,
    /// Keeps the catalogue and acts on readers' loans.
    Librarian,
    /// Everything, including granting roles and operating the platform.
    Admin,
}

impl Role {
    /// Every role, least to most privileged.
    pub const ALL: [Role; 3] = [Role::User, Role::Librarian, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Librarian => "librarian",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (as stored), if any.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role may do what `required` may: roles are ordered, each including the
    /// ones below it.
    pub fn permits(self, required: Role) -> bool {
        self >= required
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
