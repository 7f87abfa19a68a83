//! Sessions in the key-value store: `session:<sid>` lives as long as its token, and ending it
//! revokes the token everywhere at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AuthError, Claims, Role};
use crate::kv::{Kv, KvError, Subscription};

/// What a live session records; served by `GET /auth/me/` without touching the database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionData {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub role: Role,
}

/// The channel on which ended session ids are published (prefixed like keys).
pub const SESSIONS_ENDED_CHANNEL: &str = "sessions:ended";

/// Sessions in the key-value store.
#[derive(Clone, Debug)]
pub struct Sessions {
    kv: Kv,
}

impl Sessions {
    pub fn new(kv: Kv) -> Self {
        Self { kv }
    }

    fn key(sid: &str) -> String {
        format!("session:{sid}")
    }

    /// The ids of a user's sessions (some may have ended already).
    fn user_key(user_id: i64) -> String {
        format!("user_sessions:{user_id}")
    }

    /// Records a session that lives for `ttl`, and remembers it among its user's sessions.
    pub async fn create(
        &self,
        sid: &str,
        data: &SessionData,
        ttl: Duration,
    ) -> Result<(), KvError> {
        let value = serde_json::to_string(data).expect("session data serialises");
        self.kv
            .add_to_set(&Self::user_key(data.user_id), sid, ttl)
            .await?;
        self.kv.set_ex(&Self::key(sid), &value, ttl).await
    }

    /// Ends every session of `user_id` (a role change, a password change, a compromised
    /// account), each announced like [`Sessions::revoke`]. Returns how many were live.
    pub async fn end_all_for_user(&self, user_id: i64) -> Result<usize, KvError> {
        let sids = self.kv.take_set(&Self::user_key(user_id)).await?;
        let mut ended = 0;
        for sid in sids {
            if self.revoke(&sid).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// The session, when it is still live.
    pub async fn get(&self, sid: &str) -> Result<Option<SessionData>, KvError> {
        Ok(self
            .kv
            .get(&Self::key(sid))
            .await?
            .and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// The live session a verified token names: `SessionEnded` when it is gone or belongs
    /// to another user.
    pub async fn live_for(&self, claims: &Claims) -> Result<SessionData, AuthError> {
        match self.get(&claims.sid).await? {
            Some(session) if session.user_id.to_string() == claims.sub => Ok(session),
            _ => Err(AuthError::SessionEnded),
        }
    }

    /// Whether the session store answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), KvError> {
        self.kv.ping().await
    }

    /// Ends the session and, in the same transaction, announces its id on
    /// [`SESSIONS_ENDED_CHANNEL`] so that caches of it (the gateway's) drop it; true when it
    /// was live.
    pub async fn revoke(&self, sid: &str) -> Result<bool, KvError> {
        self.kv
            .del_and_publish(&Self::key(sid), SESSIONS_ENDED_CHANNEL, sid)
            .await
    }

    /// The ids of sessions ended from now on, as [`Sessions::revoke`] announces them; `None`
    /// when the store publishes nothing (the in-process one).
    pub async fn ended(&self) -> Result<Option<Subscription>, KvError> {
        self.kv.subscribe(SESSIONS_ENDED_CHANNEL).await
    }
}
