//! Integration tests: the real router over real sockets, against fake providers.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod auth_clients;
mod batch;
mod builtin;
mod chat;
mod clients;
mod conformance;
mod console;
mod console_browser;
mod dialects;
mod discovery;
mod errors;
mod fastapi;
mod lease;
mod limits;
mod observability;
mod ops;
mod plugins;
mod privacy;
mod privacy_response;
mod process;
mod profiles;
mod rag;
mod reload;
mod resilience;
mod resume;
mod routes;
mod shared;
mod smart;
mod strategies;
mod upstream;
mod vram;
