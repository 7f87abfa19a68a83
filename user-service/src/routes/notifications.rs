//! A reader's notifications: `GET /notifications/` (newest first, read and unread),
//! `POST /notifications/{id}/read`, and `GET /notifications/stream` — each new notification
//! live, as a server-sent event. A reader sees only their own; someone else's is 404.
//!
//! The stream (`text/event-stream`): `event: notification`, `id:` the notification's id,
//! `data:` its JSON; a `: keep-alive` comment every `SSE_KEEP_ALIVE_MS`. A client that
//! reconnects with `Last-Event-ID` gets what it missed first. The stream ends — with a last
//! `event: end` whose data is the reason — when the token expires (`token_expired`), the
//! session ends (`session_ended`: logout, logout everywhere, a role change; announced at
//! once, or noticed within `SSE_SESSION_CHECK_MS`), or the service stops (`shutdown`).
//! It is woken by the [`crate::live::LiveHub`]; what it sends it always reads from the database, so a
//! missed signal delays a notification until the next keep-alive at worst, never loses it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use api::notifications::{Notification, NotificationSearch, STREAM_EVENT};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use common::auth::{Role, Sessions};
use service_kit::db::Db;
use service_kit::Caller;
use tokio::sync::{broadcast, watch};
use tokio::time::{interval_at, sleep_until, Instant, Interval, MissedTickBehavior};

use super::{no_store, parse_query, path_id};
use crate::error::ApiError;
use crate::live::Change;
use crate::state::AppState;
use crate::store::notifications::{self, NotificationRow};

/// Notifications a stream sends per read of the database.
const STREAM_BATCH: u32 = 100;

/// `GET /notifications/?unread=&limit=&cursor=`: the caller's notifications, newest first;
/// `Link: <…>; rel="next"` while there may be more; `200 []` when none.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let search = parse_query::<NotificationSearch>(query.as_deref().unwrap_or_default())?;
    let limit = search.limit();
    let rows = notifications::list(
        &state.db,
        caller.user_id,
        search.unread,
        search.cursor,
        limit,
    )
    .await?;
    let next = match rows.last() {
        Some(last) if rows.len() == limit as usize => Some(last.id),
        _ => None,
    };
    let page: Vec<Notification> = rows.iter().filter_map(NotificationRow::to_api).collect();
    let mut resp = Json(page).into_response();
    no_store(resp.headers_mut());
    if let Some(cursor) = next {
        let unread = search
            .unread
            .map(|u| format!("&unread={u}"))
            .unwrap_or_default();
        let link = format!("</notifications/?limit={limit}{unread}&cursor={cursor}>; rel=\"next\"");
        resp.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&link).map_err(|e| ApiError::Internal(e.to_string()))?,
        );
    }
    Ok(resp)
}

/// `POST /notifications/{id}/read`: marks the caller's notification read (again: no
/// change); 200 with it, 404 when the caller has no such notification.
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Notification>, ApiError> {
    let id = path_id(&id)?;
    notifications::mark_read(&state.db, id, caller.user_id, Utc::now())
        .await?
        .as_ref()
        .and_then(NotificationRow::to_api)
        .map(Json)
        .ok_or(ApiError::NotificationNotFound)
}

/// `GET /notifications/stream`: the caller's new notifications, live (see the module doc).
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The token itself (not only the `Caller`): its expiry ends the stream.
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let (claims, session) = state.auth.authenticate_header(authorization).await?;
    // Listening before reading the position: nothing stored in between is missed.
    let changes = state.live.subscribe();
    let last_id = match last_event_id(&headers) {
        Some(id) => id,
        None => notifications::newest_id(&state.db, session.user_id).await?,
    };
    let left = Duration::from_millis(
        u64::try_from(claims.exp * 1000 - Utc::now().timestamp_millis()).unwrap_or(0),
    );
    let every = |period: Duration| {
        let mut timer = interval_at(Instant::now() + period, period);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        timer
    };
    let mut watch = Watch {
        db: state.db.clone(),
        sessions: state.auth.sessions.clone(),
        user_id: session.user_id,
        role: session.role,
        sid: claims.sid,
        last_id,
        changes,
        closing: state.live.closing(),
        expires: Instant::now() + left,
        keep_alive: every(state.keep_alive),
        session_check: every(state.session_check),
        out: VecDeque::new(),
        ended: false,
    };
    // Sent at once: the client (and any proxy) sees the stream open.
    watch.out.push_back(Event::default().comment("connected"));
    if *watch.closing.borrow() {
        watch.end("shutdown");
    }
    tracing::info!(
        user_id = watch.user_id,
        last_id,
        "notification stream opened"
    );
    let events = futures_util::stream::unfold(watch, |mut watch| async move {
        watch
            .next()
            .await
            .map(|event| (Ok::<_, Infallible>(event), watch))
    });
    let mut resp = Sse::new(events).into_response();
    no_store(resp.headers_mut());
    // Proxies that buffer (nginx) are told not to.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// The `Last-Event-ID` a reconnecting client sends: the id of the last notification it got.
fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .filter(|id| *id >= 0)
}

/// What woke a stream.
enum Wake {
    Closing,
    Expired,
    Change(Result<Change, broadcast::error::RecvError>),
    KeepAlive,
    SessionCheck,
}

/// One open stream: what it waits for, and the events ready to go out.
struct Watch {
    db: Db,
    sessions: Sessions,
    user_id: i64,
    role: Role,
    sid: String,
    /// The id of the last notification sent.
    last_id: i64,
    changes: broadcast::Receiver<Change>,
    closing: watch::Receiver<bool>,
    expires: Instant,
    keep_alive: Interval,
    session_check: Interval,
    out: VecDeque<Event>,
    ended: bool,
}

impl Watch {
    /// The next event to send; `None` once the stream is over.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let wake = tokio::select! {
                _ = self.closing.changed() => Wake::Closing,
                _ = sleep_until(self.expires) => Wake::Expired,
                change = self.changes.recv() => Wake::Change(change),
                _ = self.keep_alive.tick() => Wake::KeepAlive,
                _ = self.session_check.tick() => Wake::SessionCheck,
            };
            match wake {
                Wake::Closing => self.end("shutdown"),
                Wake::Expired => self.end("token_expired"),
                Wake::Change(change) => match change {
                    Ok(Change::Notified(user)) if user == self.user_id => self.fetch().await,
                    Ok(Change::SessionEnded(sid)) if sid == self.sid => self.end("session_ended"),
                    Ok(Change::SessionsChanged(user)) if user == self.user_id => {
                        self.check_session().await;
                    }
                    Ok(Change::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.check_session().await;
                        self.fetch().await;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => self.end("shutdown"),
                },
                Wake::KeepAlive => {
                    self.fetch().await;
                    self.out.push_back(Event::default().comment("keep-alive"));
                }
                Wake::SessionCheck => self.check_session().await,
            }
        }
    }

    /// Queues the reader's notifications stored since the last one sent.
    async fn fetch(&mut self) {
        match notifications::after(&self.db, self.user_id, self.last_id, STREAM_BATCH).await {
            Ok(rows) => {
                for row in rows {
                    self.last_id = row.id;
                    let Some(notification) = row.to_api() else {
                        continue;
                    };
                    match Event::default()
                        .event(STREAM_EVENT)
                        .id(row.id.to_string())
                        .json_data(&notification)
                    {
                        Ok(event) => self.out.push_back(event),
                        Err(e) => tracing::error!(error = %e, "cannot encode a notification"),
                    }
                }
            }
            // The next signal or keep-alive tries again.
            Err(e) => tracing::warn!(error = %e, "cannot read notifications for a stream"),
        }
    }

    /// Ends the stream unless its session still lives with the same role; a session store
    /// that does not answer ends it too (fail closed: the client reconnects and is told).
    async fn check_session(&mut self) {
        match self.sessions.get(&self.sid).await {
            Ok(Some(session)) if session.user_id == self.user_id && session.role == self.role => {}
            // A session lives as long as its token: gone at the expiry, it is the expiry.
            Ok(_) if Instant::now() >= self.expires => self.end("token_expired"),
            Ok(_) => self.end("session_ended"),
            Err(e) => {
                tracing::warn!(error = %e, "session store unavailable; ending a notification stream");
                self.end("session_unverifiable");
            }
        }
    }

    fn end(&mut self, reason: &'static str) {
        if !self.ended {
            tracing::info!(user_id = self.user_id, reason, "notification stream ended");
            self.out
                .push_back(Event::default().event("end").data(reason));
            self.ended = true;
        }
    }
}
