//! The end of a lease, in one place: the outcome is recorded on the lease (the provider's actor
//! learns it when the lease is released), the call is counted in the metrics, and a failure
//! becomes the client's error. Every path that lets go of a lease goes through here — a failed or
//! refused attempt, a converted answer that could not be read, and the response body when it is
//! dropped ([`super::body::RelayBody`]).

use llm_router_actors::{FailureKind, Lease, Outcome};

use crate::errors::{Attempt, RouterError};
use crate::telemetry::Metrics;

/// Records `outcome`, counts the call and releases the lease.
pub fn finish(mut lease: Lease, outcome: Outcome, metrics: Option<&Metrics>) {
    lease.set_outcome(outcome);
    report(&lease, metrics);
}

/// Counts a call whose outcome is already on the lease (the caller releases it).
pub fn report(lease: &Lease, metrics: Option<&Metrics>) {
    if let Some(m) = metrics {
        m.observe_call(lease);
    }
}

/// Finishes a lease whose provider failed after the commit point of a response that is read
/// whole (a converted answer): the client gets a 502/504 naming the provider.
pub fn failed(
    lease: Lease,
    kind: FailureKind,
    why: &str,
    metrics: Option<&Metrics>,
) -> RouterError {
    let provider = lease.provider().id.clone();
    let model = lease.model().to_string();
    tracing::warn!(provider = %provider, model = %model, "provider failed mid-response: {why}");
    finish(lease, Outcome::Failure(kind), metrics);
    RouterError::UpstreamFailed {
        model,
        attempts: vec![Attempt { provider, kind }],
    }
}
