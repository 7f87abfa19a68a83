//! scraper-service: company data from openmoney.md through an ELT pipeline.
//!
//! `POST /scrape` answers from the cache or queues a durable job in `scrape_jobs`; workers
//! Extract the company page (headless Chromium, or plain HTTP), Load it verbatim into
//! `source_data`, Transform it into `transformed_data` and refresh the cache. Stored pages can
//! be transformed again at any time without fetching, at scale and resumably ([`retransform`]:
//! `POST /admin/retransform` starts a run to poll, the `scraper-service retransform [IDNO]`
//! command shows its progress).
//!
//! Every endpoint checks its caller's bearer token itself (`service_kit::Caller`), also on
//! internal paths: a job belongs to whoever asked for it and is named by a random UUID, what
//! costs outbound fetches is capped per user ([`quota`]), and `/admin/*` is for admins.

pub mod cache;
pub mod commands;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod nesting;
pub mod pipeline;
pub mod quota;
pub mod retransform;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;
pub mod transform;
pub mod worker;
