//! user-service: accounts and authentication.
//!
//! Registration, OAuth2 password login (JSON and form) checked with bcrypt ([`password`]) on a
//! dedicated two-lane thread pool ([`hasher`]), login and registration throttling
//! ([`throttle`]), JWT access tokens (HMAC or Ed25519, [`tokens`]) whose sessions live in the
//! key-value store and can be revoked one by one or all at once ([`login`], [`revocations`]),
//! roles (`user`, `librarian`, `admin`) and their administration, and the JWKS of the signing
//! key. Readers' notifications: the [`notifier`] consumes the library's circulation events
//! into notifications ([`notice`] words them), the [`mailer`] e-mails them, and [`live`]
//! wakes the open notification streams of every instance.

pub mod commands;
pub mod config;
pub mod error;
pub mod hasher;
pub mod live;
pub mod login;
pub mod mailer;
pub mod notice;
pub mod notifier;
pub mod password;
pub mod revocations;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tokens;
