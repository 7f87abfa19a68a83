//! get-user-borrowings: the library's serverless function, `GET /user/borrowings/`.
//!
//! Real AWS Lambda code on the Rust runtime (`lambda_http`, API Gateway REST and HTTP API
//! events): it verifies the caller's bearer token and live session like every service of the
//! platform, decides whose borrowings the caller may see (their own; anyone's for a
//! librarian), and reads them through book-service's API with the caller's token — no
//! database, no credential of its own. Outside AWS the same handler runs behind a local HTTP
//! adapter ([`local`]), which compose, Kubernetes and the one-process platform use.
//!
//! [`handler`] is the function; [`books`] its read path; [`borrowing`] the answer's shape;
//! [`startup`] chooses Lambda or the adapter.

pub mod books;
pub mod borrowing;
pub mod config;
pub mod error;
pub mod handler;
pub mod local;
pub mod startup;
pub mod state;
