//! Integration tests: the real router over real sockets, against fake providers.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod builtin;
mod chat;
mod clients;
mod conformance;
mod dialects;
mod errors;
mod lease;
mod observability;
mod ops;
mod privacy;
mod process;
mod resilience;
mod routes;
mod shared;
mod strategies;
