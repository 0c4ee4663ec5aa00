#![doc = include_str!("../README.md")]

mod acl;
mod client;
mod config;
mod error;
mod health;
pub mod keys;
pub mod registry;
mod scan;
mod script;
pub mod telemetry;
#[cfg(feature = "tls")]
mod tls;
mod tls_failure;

pub use acl::AclRule;
pub use client::{Dedicated, Delivery, RedisClient, builder};
pub use config::{
    DEFAULT_PORT, DEFAULT_SENTINEL_PORT, Endpoint, HostName, Mode, Pem, RedisConfig, Secret,
    TlsOptions, parse_host_names,
};
pub use error::{Error, Result};
pub use health::{Health, NodeHealth, health};
pub use keys::{Namespace, TaggedKeys};
pub use scan::scan_keys;
pub use script::Script;
pub use tls_failure::explain_tls_failure;

/// Re-export of the fred version redis-conn is built on, so users name the same types.
pub use fred;
