//! [`AppState`]: what every invocation shares — built once per process (per cold start on
//! AWS), cheap to clone.

use common::auth::Authenticator;

use crate::books::BookService;

/// Shared by every invocation.
#[derive(Clone)]
pub struct AppState {
    /// Verifies callers' tokens and their live sessions (the platform's one check).
    pub auth: Authenticator,
    /// The read path: book-service's API.
    pub books: BookService,
}
