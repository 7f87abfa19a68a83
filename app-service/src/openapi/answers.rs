//! The answers every operation can give besides its own: what the gateway and the relay answer
//! for any request, and the headers that come with 401, 429 and 503.
//!
//! The gateway refuses a body over its limit (413) and answers 503 when no instance of the
//! service behind the route is healthy, 504 when the instance did not answer in time and 502
//! when it broke the answer off; app-service's relay answers 503 and 504 the same way. Every
//! operation that takes a token answers 401 for a missing, invalid or expired one, or an ended
//! session. Each is added where an operation does not describe it itself. The gateway also
//! answers 404 `{"detail": "Not Found"}` for a path it will not read one way (an encoded slash,
//! dot, backslash or percent sign; `..`), whatever the route: on an operation whose path takes
//! a parameter, that body is added beside the operation's own 404.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::Modify;

/// Adds the shared answers and their headers to every operation.
pub struct Answers;

impl Modify for Answers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_shared(operation);
            }
        }
    }
}

fn add_shared(operation: &mut Operation) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let has_body = operation.request_body.is_some();
    let has_path_parameter = operation
        .parameters
        .iter()
        .flatten()
        .any(|parameter| parameter.parameter_in == utoipa::openapi::path::ParameterIn::Path);
    let responses = &mut operation.responses.responses;
    if has_path_parameter {
        add_refused_path(responses);
    }
    if secured {
        responses
            .entry("401".into())
            .or_insert_with(|| error("Missing, invalid or expired token, or ended session"));
    }
    if has_body {
        responses
            .entry("413".into())
            .or_insert_with(|| error("Request body too large"));
    }
    responses
        .entry("502".into())
        .or_insert_with(|| error("The service broke its answer off"));
    responses.entry("503".into()).or_insert_with(|| {
        error("The service, or a dependency of it (database, session store), is unavailable")
    });
    responses
        .entry("504".into())
        .or_insert_with(|| error("The service did not answer in time"));

    for (status, name, description) in [
        (
            "401",
            "WWW-Authenticate",
            "`Bearer`, with `error=\"invalid_token\"` when a token was sent",
        ),
        ("429", "Retry-After", "Seconds to wait before trying again"),
        (
            "503",
            "Retry-After",
            "Seconds to wait, when the service can tell",
        ),
    ] {
        if let Some(RefOr::T(response)) = responses.get_mut(status) {
            let schema = if name == "Retry-After" {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
            } else {
                ObjectBuilder::new().schema_type(Type::String)
            };
            response.headers.entry(name.into()).or_insert_with(|| {
                HeaderBuilder::new()
                    .schema(schema)
                    .description(Some(description))
                    .build()
            });
        }
    }
}

/// The gateway's 404 for a path it will not read one way, beside the operation's own 404 (its
/// body may be either: `anyOf`, as an error body with more fields is also an error body).
fn add_refused_path(responses: &mut std::collections::BTreeMap<String, RefOr<Response>>) {
    const REFUSED: &str = "; or a path the gateway will not read one way (an encoded slash, \
                           dot, backslash or percent sign): `{\"detail\": \"Not Found\"}`";
    let error_body = RefOr::Ref(Ref::from_schema_name("ErrorBody"));
    match responses.get_mut("404") {
        None => {
            responses.insert(
                "404".into(),
                error("Not found: a path the gateway will not read one way (an encoded slash, dot, backslash or percent sign)"),
            );
        }
        Some(RefOr::T(response)) => {
            let mut widened = false;
            for content in response.content.values_mut() {
                match &content.schema {
                    Some(RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorBody") => {}
                    Some(own) => {
                        let own = own.clone();
                        content.schema = Some(RefOr::T(utoipa::openapi::Schema::AnyOf(
                            utoipa::openapi::schema::AnyOfBuilder::new()
                                .item(own)
                                .item(error_body.clone())
                                .build(),
                        )));
                        widened = true;
                    }
                    None => {}
                }
            }
            if widened {
                response.description.push_str(REFUSED);
            }
        }
        Some(RefOr::Ref(_)) => {}
    }
}

fn error(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                    .build(),
            )
            .build(),
    )
}

/// Marks the headers that always come with their answer as required (utoipa's `Header` has
/// no `required`): `WWW-Authenticate` on every 401 and `Retry-After` on every 429.
pub fn require_headers(document: &mut serde_json::Value) {
    let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        for (status, name) in [("401", "WWW-Authenticate"), ("429", "Retry-After")] {
            if let Some(header) = operation
                .pointer_mut(&format!("/responses/{status}/headers/{name}"))
                .and_then(serde_json::Value::as_object_mut)
            {
                header.insert("required".into(), true.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use crate::openapi::{document, ApiDoc};

    #[test]
    fn every_operation_has_the_shared_answers_and_their_headers() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        assert!(!paths.is_empty());
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                for status in ["502", "503", "504"] {
                    assert!(responses.get(status).is_some(), "{method} {path}: {status}");
                }
                if path.contains('{') {
                    // The gateway's 404 for a path it refuses to read is allowed everywhere.
                    let schema = &responses["404"]["content"]["application/json"]["schema"];
                    let allowed = schema["$ref"] == "#/components/schemas/ErrorBody"
                        || schema["anyOf"].as_array().is_some_and(|a| {
                            a.iter()
                                .any(|s| s["$ref"] == "#/components/schemas/ErrorBody")
                        });
                    assert!(allowed, "{method} {path}: 404 {schema}");
                }
                if operation.get("security").is_some() {
                    let challenge = &responses["401"]["headers"]["WWW-Authenticate"];
                    assert_eq!(challenge["required"], true, "{method} {path}");
                }
                if operation.get("requestBody").is_some() {
                    assert!(responses.get("413").is_some(), "{method} {path}: 413");
                }
                if let Some(throttled) = responses.get("429") {
                    assert_eq!(
                        throttled["headers"]["Retry-After"]["required"], true,
                        "{method} {path}"
                    );
                }
            }
        }
        // The document served is the one utoipa builds, with the headers marked.
        assert_eq!(
            ApiDoc::openapi().paths.paths.len(),
            paths.len(),
            "no path lost"
        );
    }
}
