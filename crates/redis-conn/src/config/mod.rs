//! Connection settings: one [`RedisConfig`] for standalone, Sentinel and Cluster, built from a
//! URL or from the environment, with production defaults.
//!
//! `secret` holds [`Secret`]; `types` the config itself ([`RedisConfig`], [`Mode`], [`Endpoint`], the
//! defaults and [`RedisConfig::target`]); `values` parses single setting values (ports, host
//! lists, database, durations, pool size); `url` builds a config from a URL
//! ([`RedisConfig::from_url`]) and `env` from environment variables
//! ([`RedisConfig::from_env`], applying `REDIS_URL` through `url`); `display` writes a config
//! back as a URL with its passwords redacted.

mod display;
mod env;
mod secret;
mod tls;
mod types;
mod url;
mod values;

pub use secret::Secret;
pub use tls::{HostName, Pem, TlsOptions, parse_host_names};
pub use types::{DEFAULT_PORT, DEFAULT_SENTINEL_PORT, Endpoint, Mode, RedisConfig};
