//! The function itself: one API Gateway request (REST or HTTP API event, as `lambda_http`
//! hands it over — or as the local adapter builds it) in, one response out.
//!
//! `GET /user/borrowings/?user_id=` answers the titles a reader has borrowed and not yet
//! returned. Who asks comes from the bearer token and its live session, never from the
//! request: `user_id` is honoured for librarians (and admins) only; a reader naming anyone
//! but themselves gets 403. The answer is read from book-service's API with the caller's own
//! token, so book-service checks the caller again.

use api::FieldError;
use common::auth::{token_of, Role, SessionData};
use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::{field, Instrument};

use crate::books::BooksError;
use crate::borrowing::{self, Borrowing};
use crate::error::{json, ApiError};
use crate::state::AppState;

/// Answers one request; never fails (every error is an answer).
pub async fn handle(state: &AppState, req: Request) -> Response<Body> {
    let span = tracing::info_span!(
        "get-user-borrowings",
        otel.kind = "server",
        request_id = %request_id(&req),
        user_id = field::Empty,
        status = field::Empty,
    );
    common::telemetry::continue_trace(&span, req.headers());
    async move {
        let resp = match borrowings(state, &req).await {
            Ok(list) => json(StatusCode::OK, &list),
            Err(e) => e.into_response(),
        };
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::info!("answered");
        resp
    }
    .instrument(span)
    .await
}

/// The current borrowings of the reader the caller may see.
async fn borrowings(state: &AppState, req: &Request) -> Result<Vec<Borrowing>, ApiError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let (_, session) = state.auth.authenticate_header(authorization).await?;
    let user_id = whose(&session, requested_user(req)?)?;
    tracing::Span::current().record("user_id", user_id);
    let token = token_of(authorization)?;
    let loans = state.books.active_loans(token, user_id).await?;
    let titles = state
        .books
        .titles(token, loans.iter().map(|loan| loan.book_id))
        .await?;
    borrowing::from_loans(loans, &titles)
        .map_err(|e| ApiError::Books(BooksError::Unexpected(e.to_string())))
}

/// Whose borrowings to show: the caller's own, or — for a librarian — the reader
/// `requested` names; another reader's is 403 for everyone else.
fn whose(caller: &SessionData, requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        Some(user_id) if user_id != caller.user_id => {
            if caller.role.permits(Role::Librarian) {
                Ok(user_id)
            } else {
                Err(ApiError::OthersBorrowings)
            }
        }
        _ => Ok(caller.user_id),
    }
}

/// The `user_id` query parameter: absent, or one positive integer (422 otherwise).
fn requested_user(req: &Request) -> Result<Option<i64>, ApiError> {
    let values = req
        .query_string_parameters_ref()
        .and_then(|params| params.all("user_id"))
        .unwrap_or_default();
    let invalid =
        |kind: &str, msg: &str| ApiError::Invalid(vec![FieldError::query("user_id", kind, msg)]);
    match values.as_slice() {
        [] => Ok(None),
        [raw] => match raw.trim().parse::<i64>() {
            Ok(id) if id >= 1 => Ok(Some(id)),
            Ok(_) => Err(invalid(
                "greater_than_equal",
                "Input should be greater than or equal to 1",
            )),
            Err(_) => Err(invalid(
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            )),
        },
        _ => Err(invalid("value_error", "user_id may be given only once")),
    }
}

/// The id to log the request under: Lambda's request id on AWS, the gateway's
/// `x-request-id` behind the local adapter.
fn request_id(req: &Request) -> String {
    req.lambda_context_ref()
        .map(|ctx| ctx.request_id.clone())
        .or_else(|| {
            req.headers()
                .get(common::auth::headers::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(user_id: i64, role: Role) -> SessionData {
        SessionData {
            user_id,
            username: "u".into(),
            email: "u@example.com".into(),
            role,
        }
    }

    #[test]
    fn only_librarians_see_other_readers() {
        let reader = session(7, Role::User);
        assert_eq!(whose(&reader, None).unwrap(), 7);
        assert_eq!(whose(&reader, Some(7)).unwrap(), 7);
        assert!(matches!(
            whose(&reader, Some(8)),
            Err(ApiError::OthersBorrowings)
        ));
        assert_eq!(whose(&session(1, Role::Librarian), Some(8)).unwrap(), 8);
        assert_eq!(whose(&session(1, Role::Admin), Some(8)).unwrap(), 8);
    }

    fn with_query(query: &str) -> Request {
        let params: lambda_http::aws_lambda_events::query_map::QueryMap =
            query.parse().expect("infallible");
        Request::default().with_query_string_parameters(params)
    }

    #[test]
    fn user_id_is_one_positive_integer() {
        assert_eq!(requested_user(&Request::default()).unwrap(), None);
        assert_eq!(requested_user(&with_query("user_id=12")).unwrap(), Some(12));
        for bad in [
            "user_id=0",
            "user_id=abc",
            "user_id=",
            "user_id=1&user_id=2",
        ] {
            match requested_user(&with_query(bad)) {
                Err(ApiError::Invalid(errors)) => {
                    assert_eq!(errors[0].loc, ["query", "user_id"], "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
