//! Integration tests: the real router over real sockets, against fake providers.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod batch;
mod builtin;
mod chat;
mod clients;
mod conformance;
mod dialects;
mod errors;
mod fastapi;
mod lease;
mod observability;
mod ops;
mod privacy;
mod process;
mod profiles;
mod rag;
mod reload;
mod resilience;
mod routes;
mod shared;
mod strategies;
