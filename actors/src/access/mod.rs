//! Access control (SPEC §10): client API keys and where they live, policies over routes, and
//! per-key rate limits (sliding windows, in-process or shared in Redis).
//!
//! Pure parts take time as a parameter ([`window`], [`keys`] `check(now)`, [`policy`]); the I/O
//! parts ([`store`], [`limiter`]) are thin shells over them. The HTTP side (middleware, error
//! shapes, headers) is the root crate's `access` module.

pub mod keys;
pub mod limiter;
pub mod policy;
pub mod store;
pub mod window;

pub use keys::{AuthFailure, KeyRecord, KeyTable, KeysFile, NewKey};
pub use limiter::{KeyUsage, LimiterHealth, RateLimiter, SharedLimits};
pub use policy::{classify, ErrorDialect, Policy, RouteClass, RouteInfo};
pub use store::{AdminStore, KeyStore, RedisKeys};
pub use window::{Decision, Limit};
