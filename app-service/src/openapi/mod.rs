//! The OpenAPI document of the public API and the Swagger UI that presents it.
//!
//! Operations served through app-service are documented on their handlers (`routes/`), with
//! the bodies of `crates/api`; those the gateway routes past app-service — `/books/*` to
//! book-service, `/user/borrowings/` to the borrowings function — in [`direct`].

mod answers;
mod direct;
mod session;

use api::library::{
    Book, BookCreate, BookPatch, Borrowing, CopiesAdd, InvalidOrKeyReused, Refusal,
};
use api::notifications::Notification;
use utoipa::openapi::security::{Flow, OAuth2, Password, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use self::answers::Answers;
use self::direct::DirectRoutes;
use self::session::Session;
use crate::routes::{admin, auth, companies, holds, loans, notifications, scrape, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Company data and library platform",
        description = "Accounts with OAuth2 login, company data scraped from openmoney.md, and the library: \
            its catalogue and circulation (loans and holds). Errors are `{\"detail\": \"...\"}`; invalid input is 422 with \
            `{\"detail\": [{loc, msg, type}]}`; a refused loan, renewal or hold is `{\"detail\", \"reason\"}`. \
            Use **Authorize** (OAuth2 password flow) to log in, then call the protected endpoints.",
    ),
    paths(
        auth::register, auth::login, auth::token, auth::me, auth::logout, auth::logout_all,
        users::list, users::change_role, users::end_sessions,
        scrape::scrape, scrape::job, companies::company, admin::retransform, admin::retransform_run,
        loans::borrow, loans::list, loans::give_back, loans::renew,
        holds::place, holds::list, holds::cancel,
        notifications::list, notifications::read, notifications::stream,
    ),
    components(schemas(Refusal, InvalidOrKeyReused, Book, BookCreate, BookPatch, Borrowing, CopiesAdd, Notification)),
    // `Answers` last: it completes every operation the others added.
    modifiers(&OAuth2PasswordFlow, &DirectRoutes, &Session, &Answers),
    tags(
        (name = "auth", description = "Registration, login, sessions"),
        (name = "users", description = "Accounts and roles, for librarians and admins"),
        (name = "companies", description = "Company data by IDNO"),
        (name = "admin", description = "Operations for administrators"),
        (name = "books", description = "The library's catalogue: search titles; librarians add and edit them"),
        (name = "library", description = "Loans and holds: borrow, return, renew, wait for a title"),
        (name = "notifications", description = "What happened to the caller's loans and holds, listed or live"),
    )
)]
pub struct ApiDoc;

/// Declares the OAuth2 password flow at `/auth/token`, which Swagger UI's Authorize uses.
struct OAuth2PasswordFlow;

impl Modify for OAuth2PasswordFlow {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/auth/token",
                Scopes::new(),
            ))])),
        );
    }
}

/// The document served at `/openapi.json`: [`ApiDoc`], with the headers that always come with
/// their answer marked required (see [`answers::require_headers`]).
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi())
        .expect("an OpenAPI document always serializes to JSON");
    answers::require_headers(&mut document);
    document
}

/// `/docs` (Swagger UI) and `/openapi.json`.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", document())
}
