//! borrowings-function's tests, in one binary: the handler with API Gateway events
//! ([`handler`]), against the real book-service ([`book_service`]), the real binary under a
//! Lambda Runtime API emulator ([`runtime`]), and the local HTTP adapter ([`adapter`]).
//! Session stores: in-process always, Redis when `TEST_REDIS_URL` is set (required with
//! `REQUIRE_EXTERNAL_BACKENDS=1`).

mod adapter;
mod book_service;
mod handler;
mod runtime;
mod support;
