//! The error bodies every service answers with, in FastAPI's shape, and the [`Validate`] rule
//! that request types implement.

use serde::{Deserialize, Serialize};

/// `{"detail": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// One invalid field of a 422 answer: `{"loc": ["body", "email"], "msg": "...", "type": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// Where: the part of the request (`body`, `query`, `path`, `header`), then field names
    /// and list indexes (`["body", "copies", 0]`); a JSON syntax error gives its character
    /// position (`["body", 17]`).
    #[schema(value_type = Vec<LocItem>)]
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One step of a [`FieldError`]'s `loc`: a name or an index. Documentation only: `loc` holds
/// JSON values.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum LocItem {
    Name(String),
    Index(u64),
}

impl FieldError {
    /// An error about a field of the request body.
    pub fn body(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self::at(vec!["body".into(), field.into()], kind, msg)
    }

    /// An error about a path parameter.
    pub fn path(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self::at(vec!["path".into(), field.into()], kind, msg)
    }

    /// An error about a query parameter.
    pub fn query(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self::at(vec!["query".into(), field.into()], kind, msg)
    }

    /// An error at `loc`.
    pub fn at(loc: Vec<serde_json::Value>, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}

/// `{"detail": [FieldError, ...]}` — the 422 body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ValidationBody {
    pub detail: Vec<FieldError>,
}

/// Field rules of a request body, checked after it parsed; the body stays as it is.
pub trait Check {
    /// Every broken rule; empty when the value is valid.
    fn check(&self) -> Vec<FieldError>;
}

/// Turns a parsed request body into the value a handler works with once every rule holds
/// ("parse, don't validate"): e.g. a scrape request into one carrying a checked
/// [`crate::scrape::Idno`]. Bodies that only need checking implement [`Check`] and are their
/// own valid form.
pub trait Validate: Sized {
    /// The body once valid.
    type Valid;
    /// The valid value, or every broken rule at once.
    fn validate(self) -> Result<Self::Valid, Vec<FieldError>>;
}

impl<T: Check> Validate for T {
    type Valid = T;

    fn validate(self) -> Result<T, Vec<FieldError>> {
        let errors = self.check();
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}
