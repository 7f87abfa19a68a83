//! `/auth/session` (the web UI's cookie login and logout, documented on their handlers in
//! `routes::auth`) in the one OpenAPI document, with the body it answers.

use api::auth::SessionResponse;
use utoipa::{Modify, OpenApi};

use crate::routes::auth;

/// Adds the web session's operations and schemas to the document.
pub struct Session;

#[derive(OpenApi)]
#[openapi(
    paths(auth::open_session, auth::close_session),
    components(schemas(SessionResponse))
)]
struct SessionPaths;

impl Modify for Session {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.merge(SessionPaths::openapi());
    }
}
