//! The OpenAPI document of the public API and the Swagger UI that presents it.

use utoipa::openapi::security::{Flow, OAuth2, Password, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes::{admin, auth, companies, scrape};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Company data platform",
        description = "Accounts with OAuth2 login and company data scraped from openmoney.md. \
            Errors are `{\"detail\": \"...\"}`; invalid input is 422 with `{\"detail\": [{loc, msg, type}]}`. \
            Use **Authorize** (OAuth2 password flow) to log in, then call the protected endpoints.",
    ),
    paths(
        auth::register, auth::login, auth::token, auth::me, auth::logout,
        scrape::scrape, scrape::job, companies::company, admin::retransform,
    ),
    modifiers(&OAuth2PasswordFlow),
    tags(
        (name = "auth", description = "Registration, login, sessions"),
        (name = "companies", description = "Company data by IDNO"),
        (name = "admin", description = "Operations for administrators"),
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

/// `/docs` (Swagger UI) and `/openapi.json`.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi())
}
