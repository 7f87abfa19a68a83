//! The mailer: sends the e-mails of notifications from `outgoing_mail`, over SMTP (`SMTP_URL`)
//! or, without a server, as `.eml` files in `MAIL_DIR`.
//!
//! Never lost: an e-mail is a row written with its notification; it is marked sent only after
//! the server accepted it (or the file was written). A transient failure (server down, a 4xx
//! reply) schedules the next attempt with backoff (doubling from `MAIL_RETRY_MIN_MS` to
//! `MAIL_RETRY_MAX_MS`), forever; a permanent refusal (a 5xx reply, an address that cannot be
//! parsed) gives it up, kept with its error. Never sent twice in the normal path: rows are
//! leased to one mailer at a time. A mailer that dies between the server's acceptance and the
//! mark sends it once more after the lease runs out — with the same `Message-ID`
//! (`<notification-<id>@<MAIL_FROM's domain>>`), by which mail clients recognise the copy. A
//! file is written under its notification's name, so a repeat replaces it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::shutdown::Shutdown;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use service_kit::db::Db;
use tokio::sync::Notify;

use crate::config::{MailConfig, MailTransport};
use crate::store::mail::{self, OutgoingMail};

/// E-mails claimed at once.
const BATCH: i64 = 50;

/// Where e-mails go.
enum Carrier {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(PathBuf),
}

/// Why one e-mail was not sent.
enum Failure {
    /// Try again later.
    Transient(String),
    /// It will never be accepted.
    Permanent(String),
}

/// The mailer of one instance.
pub struct Mailer {
    db: Db,
    carrier: Carrier,
    from: Mailbox,
    /// The domain of `Message-ID`s.
    domain: String,
    config: MailConfig,
    /// This instance's name in the leases.
    owner: String,
    bell: Arc<Notify>,
}

impl Mailer {
    /// A mailer for `config`; `bell` wakes it when e-mails were queued. Fails on an
    /// unusable `SMTP_URL` or `MAIL_FROM`.
    pub fn new(
        db: Db,
        config: MailConfig,
        bell: Arc<Notify>,
    ) -> Result<Self, common::config::ConfigError> {
        use common::config::ConfigError;
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| ConfigError::new("MAIL_FROM", format!("not an address: {e}")))?;
        let carrier = match &config.transport {
            MailTransport::Smtp(url) => Carrier::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| ConfigError::new("SMTP_URL", e.to_string()))?
                    .timeout(Some(config.timeout))
                    .build(),
            ),
            MailTransport::Folder(dir) => Carrier::Folder(dir.clone()),
        };
        Ok(Self {
            db,
            carrier,
            domain: from.email.domain().to_owned(),
            from,
            config,
            owner: format!("mailer-{}", uuid::Uuid::new_v4().simple()),
            bell,
        })
    }

    /// Sends due e-mails until `shutdown` (the one in hand is finished).
    pub async fn run(self, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let sent_some = match self.round().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "mailer cannot read its queue; trying again");
                    false
                }
            };
            if sent_some {
                continue;
            }
            tokio::select! {
                _ = self.bell.notified() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = &mut stop => return,
            }
        }
    }

    /// Claims and handles one batch; how many were claimed.
    async fn round(&self) -> Result<usize, crate::store::StoreError> {
        let now = Utc::now();
        let lease =
            chrono::Duration::from_std(self.config.timeout * 3).unwrap_or(chrono::Duration::MAX);
        let claimed = mail::claim(&self.db, &self.owner, now, now + lease, BATCH).await?;
        for email in &claimed {
            let id = email.notification_id;
            match self.send(email).await {
                Ok(()) => {
                    mail::mark_sent(&self.db, id, &self.owner, Utc::now()).await?;
                    tracing::info!(notification_id = id, "e-mail sent");
                }
                Err(Failure::Transient(e)) => {
                    let pause = self.pause_after(email.attempts);
                    let at = Utc::now()
                        + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::MAX);
                    tracing::warn!(notification_id = id, attempts = email.attempts, error = %e,
                        retry_in_ms = pause.as_millis() as u64, "e-mail not sent; will retry");
                    mail::retry_at(&self.db, id, &self.owner, at, &e).await?;
                }
                Err(Failure::Permanent(e)) => {
                    tracing::warn!(notification_id = id, error = %e, "e-mail refused for good");
                    mail::give_up(&self.db, id, &self.owner, Utc::now(), &e).await?;
                }
            }
        }
        Ok(claimed.len())
    }

    /// The pause after `attempts` failed attempts.
    fn pause_after(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        (self.config.retry_min * 2u32.pow(doublings)).min(self.config.retry_max)
    }

    async fn send(&self, email: &OutgoingMail) -> Result<(), Failure> {
        let to: Mailbox = email
            .to_address
            .parse()
            .map_err(|e| Failure::Permanent(format!("bad address {:?}: {e}", email.to_address)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!(
                "<notification-{}@{}>",
                email.notification_id, self.domain
            )))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        match &self.carrier {
            Carrier::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    Failure::Permanent(e.to_string())
                } else {
                    Failure::Transient(e.to_string())
                }
            }),
            Carrier::Folder(dir) => write_file(dir, email.notification_id, message.formatted())
                .await
                .map_err(|e| Failure::Transient(format!("cannot write to {}: {e}", dir.display()))),
        }
    }
}

/// Writes `notification-<id>.eml` in `dir` whole or not at all (a temporary file renamed).
async fn write_file(dir: &std::path::Path, id: i64, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let name = format!("notification-{id}.eml");
    let partial = dir.join(format!(".{name}.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, dir.join(name)).await
}
