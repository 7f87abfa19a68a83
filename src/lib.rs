//! The whole platform in one process (`cargo run --release`), wired from the same libraries
//! the separate service binaries use: [`stack`] starts every component, [`commands`] holds the
//! administrative commands that act on the same data.

pub mod commands;
pub mod stack;
