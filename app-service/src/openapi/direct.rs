//! The operations the gateway routes past app-service, in the one OpenAPI document:
//! `/books/*` to book-service (its primary instances, or the backup) and `/user/borrowings/`
//! to the borrowings function. There are no app-service handlers to annotate, so they are
//! described here, with the bodies of `api::library`, so that `/docs` covers the whole public
//! API.

use api::library::{BookSearch, MAX_COPIES_PER_REQUEST};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Response, ResponseBuilder, Schema};
use utoipa::{IntoParams, Modify};

/// Adds the operations routed past app-service to the document.
pub struct DirectRoutes;

impl Modify for DirectRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, method, operation) in operations() {
            openapi
                .paths
                .add_path_operation(path, vec![method], operation);
        }
    }
}

/// Each operation: path, method, and what it takes and answers.
fn operations() -> Vec<(&'static str, HttpMethod, OperationBuilder)> {
    let id = || {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The title"))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            ))
            .build()
    };
    vec![
        (
            "/books/",
            HttpMethod::Get,
            operation(
                "search_books",
                "Search the catalogue",
                "Titles whose title, author or ISBN contain every word of `q`, ignoring case and \
                 diacritics (parts of words match, as one types), ordered by title; `[]` when \
                 nothing matches. A `Link: <…>; rel=\"next\"` header gives the next page while \
                 there may be more. Any signed-in user.",
            )
            .parameters(Some(BookSearch::into_params(|| Some(ParameterIn::Query))))
            .response("200", json("The matching titles", array("Book")))
            .response("401", unauthenticated())
            .response("422", invalid("Invalid ISBN, page size or cursor"))
            .response("503", unavailable()),
        ),
        (
            "/books/",
            HttpMethod::Post,
            operation(
                "add_book",
                "Catalogue a title (librarians)",
                "A new title with its first copies. The ISBN (10 or 13 digits, hyphens and spaces \
                 allowed) must have a valid check digit; it is kept as ISBN-13.",
            )
            .request_body(Some(body("BookCreate")))
            .response(
                "201",
                json("The new title (its URL in `Location`)", named("Book")),
            )
            .response("401", unauthenticated())
            .response("403", error("Librarian role required"))
            .response("409", error("A title with this ISBN is already catalogued"))
            .response("422", invalid("Invalid fields, each named"))
            .response("503", unavailable()),
        ),
        (
            "/books/{id}",
            HttpMethod::Get,
            operation(
                "get_book",
                "One title",
                "The title with its circulation figures.",
            )
            .parameter(id())
            .response("200", json("The title", named("Book")))
            .response("401", unauthenticated())
            .response("404", error("No such title"))
            .response("422", invalid("The id is not a positive integer"))
            .response("503", unavailable()),
        ),
        (
            "/books/{id}",
            HttpMethod::Patch,
            operation(
                "edit_book",
                "Edit a title (librarians)",
                "Changes the fields sent; the others stay as they are.",
            )
            .parameter(id())
            .request_body(Some(body("BookPatch")))
            .response("200", json("The title as changed", named("Book")))
            .response("401", unauthenticated())
            .response("403", error("Librarian role required"))
            .response("404", error("No such title"))
            .response("409", error("Another title has this ISBN"))
            .response("422", invalid("Invalid fields, each named"))
            .response("503", unavailable()),
        ),
        (
            "/books/{id}/copies",
            HttpMethod::Post,
            operation(
                "add_copies",
                "Add copies of a title (librarians)",
                "New copies go to the readers waiting for the title first, then to the shelf.",
            )
            .parameter(id())
            .request_body(Some(body("CopiesAdd")))
            .response("201", json("The title with its new figures", named("Book")))
            .response("401", unauthenticated())
            .response("403", error("Librarian role required"))
            .response("404", error("No such title"))
            .response(
                "422",
                invalid(&format!(
                    "The count is not between 1 and {MAX_COPIES_PER_REQUEST}"
                )),
            )
            .response("503", unavailable()),
        ),
        (
            "/user/borrowings/",
            HttpMethod::Get,
            tagged(
                "library",
                "user_borrowings",
                "Current borrowings (the borrowings function)",
                "The titles the caller has borrowed and not yet returned, newest first, in the \
                 original get-user-borrowings shape; `[]` when there are none. A librarian (or \
                 admin) may name another reader with `user_id`; a reader naming anyone else is \
                 refused. Served by the get-user-borrowings function (AWS Lambda, or its local \
                 adapter), which reads book-service's API with the caller's token.",
            )
            .parameter(
                ParameterBuilder::new()
                    .name("user_id")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(
                        "Whose borrowings (librarians only); the caller's by default",
                    ))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    ))
                    .build(),
            )
            .response("200", json("The borrowings", array("Borrowing")))
            .response("401", unauthenticated())
            .response(
                "403",
                error("`user_id` names another reader and the caller is not a librarian"),
            )
            .response("422", invalid("`user_id` is not a positive integer"))
            .response(
                "502",
                error("book-service gave an answer the function could not read"),
            )
            .response(
                "503",
                error("book-service or the session store is unavailable (see Retry-After)"),
            ),
        ),
    ]
}

fn operation(id: &str, summary: &str, description: &str) -> OperationBuilder {
    tagged("books", id, summary, description)
}

fn tagged(tag: &str, id: &str, summary: &str, description: &str) -> OperationBuilder {
    OperationBuilder::new()
        .tag(tag)
        .operation_id(Some(id))
        .summary(Some(summary))
        .description(Some(description))
        .security(SecurityRequirement::new("oauth2", Vec::<String>::new()))
}

fn named(schema: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(schema))
}

fn array(item: &str) -> RefOr<Schema> {
    RefOr::T(Schema::Array(
        ArrayBuilder::new().items(named(item)).build(),
    ))
}

fn body(schema: &str) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(named(schema))).build(),
        )
        .build()
}

fn json(description: &str, schema: RefOr<Schema>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
}

fn error(description: &str) -> Response {
    json(description, named("ErrorBody"))
}

fn invalid(description: &str) -> Response {
    json(description, named("ValidationBody"))
}

fn unauthenticated() -> Response {
    error("Missing, invalid or expired token, or ended session")
}

fn unavailable() -> Response {
    error(
        "The database or the session store is unavailable, or no book-service instance is healthy",
    )
}
