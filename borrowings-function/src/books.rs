//! [`BookService`]: the function's only read path — book-service's public API, called with
//! the caller's own token, so book-service checks the caller again and the function holds
//! no credential of its own (no database role, no service account).
//!
//! Two reads: the reader's active loans (`GET /loans/?active=true&user_id=`, every page),
//! then the titles those loans are of (`GET /books/{id}`, each distinct title once, at most
//! `MAX_ACTIVE_LOANS` at a time), because a loan carries the title but not its author or
//! ISBN. Every call has a deadline (`BOOK_SERVICE_TIMEOUT_MS`); a refused connection, a
//! timeout or a 5xx is "unavailable", never a raw error.

use std::collections::HashMap;
use std::time::Duration;

use api::library::{Book, Loan, MAX_PAGE};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::config::BooksConfig;

/// Most pages of loans read for one reader (`MAX_PAGE` loans each). A reader holds at most
/// `MAX_ACTIVE_LOANS` (5 by default), so more pages than this means book-service is
/// misbehaving; stopping keeps one request from looping until its deadline.
const MAX_LOAN_PAGES: usize = 10;

/// Why book-service could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    /// Unreachable, too slow, or failing itself (5xx).
    #[error("book-service unavailable: {0}")]
    Unavailable(String),
    /// book-service refused the caller's token (401).
    #[error("book-service refused the token")]
    Unauthenticated,
    /// book-service refused the caller this reader's loans (403).
    #[error("book-service refused access")]
    Forbidden,
    /// An answer the function cannot use: another 4xx, or a body that is not what the API
    /// promises.
    #[error("{0}")]
    Unexpected(String),
}

/// A client of book-service's read API.
#[derive(Clone, Debug)]
pub struct BookService {
    http: reqwest::Client,
    base: String,
    lookups: usize,
}

impl BookService {
    /// A client for `config.url`, each call bounded by `config.timeout`.
    pub fn new(config: &BooksConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(1)))
            // book-service sits behind no proxy; never pick one up from the environment.
            .no_proxy()
            .build()
            .expect("a client with rustls and no proxy builds");
        Self {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            lookups: config.lookups,
        }
    }

    /// Every active loan of `user_id`, newest first, as `token`'s holder may see them.
    #[tracing::instrument(skip_all, fields(user_id))]
    pub async fn active_loans(&self, token: &str, user_id: i64) -> Result<Vec<Loan>, BooksError> {
        let mut loans = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LOAN_PAGES {
            let mut query = vec![
                ("active", "true".to_owned()),
                ("user_id", user_id.to_string()),
                ("limit", MAX_PAGE.to_string()),
            ];
            if let Some(c) = cursor.take() {
                query.push(("cursor", c));
            }
            let request = self.http.get(format!("{}/loans/", self.base)).query(&query);
            let (page, headers): (Vec<Loan>, HeaderMap) = self.read(request, token).await?;
            loans.extend(page);
            match next_cursor(&headers) {
                Some(next) => cursor = Some(next),
                None => return Ok(loans),
            }
        }
        Err(BooksError::Unexpected(format!(
            "more than {MAX_LOAN_PAGES} pages of active loans for one reader"
        )))
    }

    /// The titles `ids` name, each looked up once, at most `MAX_ACTIVE_LOANS` at a time.
    #[tracing::instrument(skip_all, fields(count))]
    pub async fn titles(
        &self,
        token: &str,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<HashMap<i64, Book>, BooksError> {
        let mut distinct: Vec<i64> = ids.into_iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        tracing::Span::current().record("count", distinct.len());
        stream::iter(distinct)
            .map(|id| async move { self.title(token, id).await.map(|book| (id, book)) })
            .buffer_unordered(self.lookups)
            .try_collect()
            .await
    }

    /// One title.
    #[tracing::instrument(skip_all, fields(book_id = id))]
    async fn title(&self, token: &str, id: i64) -> Result<Book, BooksError> {
        let request = self.http.get(format!("{}/books/{id}", self.base));
        let (book, _): (Book, _) = self.read(request, token).await?;
        if book.id != id {
            return Err(BooksError::Unexpected(format!(
                "asked for title {id}, got {}",
                book.id
            )));
        }
        Ok(book)
    }

    /// Whether book-service answers its liveness probe (for the adapter's `/readyz`).
    pub async fn ping(&self) -> Result<(), BooksError> {
        let resp = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .map_err(|e| BooksError::Unavailable(e.to_string()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(BooksError::Unavailable(format!(
                "/healthz answered {}",
                resp.status()
            )))
        }
    }

    /// Sends `request` with the caller's token and the current trace context; the body
    /// decoded as `T` on 200, and the answer's headers.
    async fn read<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        token: &str,
    ) -> Result<(T, HeaderMap), BooksError> {
        let mut trace = HeaderMap::new();
        common::telemetry::inject_trace(&tracing::Span::current(), &mut trace);
        let resp = request
            .bearer_auth(token)
            .headers(trace)
            .send()
            .await
            .map_err(|e| BooksError::Unavailable(e.to_string()))?;
        let status = resp.status();
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(BooksError::Unauthenticated),
            StatusCode::FORBIDDEN => return Err(BooksError::Forbidden),
            s if s.is_server_error() => {
                return Err(BooksError::Unavailable(format!("answered {s}")));
            }
            s => {
                return Err(BooksError::Unexpected(format!(
                    "{} answered {s}",
                    resp.url().path()
                )))
            }
        }
        let headers = resp.headers().clone();
        // A body cut short by a timeout is the dependency's failure, not a bad answer.
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| BooksError::Unavailable(e.to_string()))?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| BooksError::Unexpected(format!("unreadable body: {e}")))?;
        Ok((value, headers))
    }
}

/// The `cursor` of the `Link: <…?…&cursor=…>; rel="next"` header book-service sends when
/// a list has more pages.
fn next_cursor(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|link| link.contains("rel=\"next\""))
        .find_map(|link| {
            let target = link.trim().strip_prefix('<')?.split_once('>')?.0;
            let query = target.split_once('?')?.1;
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "cursor")
                .map(|(_, value)| value.into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(next_cursor(&headers), None);
        headers.insert(
            header::LINK,
            HeaderValue::from_static(
                "</loans/?active=true&user_id=7&limit=100&cursor=MTI%3D>; rel=\"next\"",
            ),
        );
        assert_eq!(next_cursor(&headers).as_deref(), Some("MTI="));
        headers.insert(
            header::LINK,
            HeaderValue::from_static("</loans/?cursor=abc>; rel=\"prev\""),
        );
        assert_eq!(next_cursor(&headers), None);
    }
}
