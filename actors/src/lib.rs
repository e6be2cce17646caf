//! The llm-router engine: configuration domain types, provider state and health, provider-choice
//! strategies and the `ModelRegistry` actor that hands out RAII leases.
//!
//! This crate never depends on actix-web (invariant 1 of ARCHITECTURE.md): the HTTP surface lives in
//! the root crate and reaches provider state only through a [`Lease`].

#![forbid(unsafe_code)]

pub mod access;
pub mod config;
pub mod discovery;
pub mod ewma;
pub mod health;
pub mod monitors;
pub mod provider;
pub mod registry;
pub mod routing;
pub mod store;
pub mod strategies;
pub mod vram;
pub mod wire;

pub use config::{ApiType, ModelsConfig, ProviderConfig};
pub use provider::{FailureKind, HealthView, Outcome, ProbeResult, ProviderSnapshot};
pub use registry::{
    Choice, ChooseError, ChooseProvider, Chooser, ClaimKeepAlive, GetKeepAlive, GetProviders,
    GetStatus, KeepAliveView, Lease, ModelRegistry, ModelStatus, RegistryOptions,
};
pub use strategies::StrategyKind;

/// A map read on every request, keyed by names and indices from the config: hashed with
/// foldhash (randomly seeded per process) instead of SipHash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[cfg(test)]
mod registry_tests;
