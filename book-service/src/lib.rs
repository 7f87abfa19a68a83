//! book-service: the library's catalogue and circulation.
//!
//! Titles and their copies (each copy a row with a status), searched ignoring case and
//! diacritics; loans and holds, changed only by circulation commands that app-service sends
//! over the bus ([`apply`], one transaction each, idempotent, never double-lending a copy
//! whatever the number of instances); the periodic [`sweep`] of uncollected holds and the
//! scheduled [`notices`]. Every change writes its circulation events to the [`outbox`] in its
//! own transaction; the [`relay`] publishes them to the event stream. The HTTP side serves
//! `/books/*` and the reads `GET /loans/`, `GET /holds/`; every caller is verified here. The
//! rules live in [`rules`], all SQL in [`store`].

pub mod apply;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod error;
pub mod notices;
pub mod outbox;
pub mod paging;
pub mod relay;
pub mod routes;
pub mod rules;
pub mod search;
pub mod startup;
pub mod state;
pub mod store;
pub mod sweep;
