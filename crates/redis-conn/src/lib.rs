//! The shared redkit client: one [`RedisConfig`] for standalone Redis, Sentinel and Cluster
//! (from a URL or the environment), connected with production defaults that avoid fred's
//! known traps, plus [`Script`]s that survive `SCRIPT FLUSH` and failovers, key naming with
//! hash tags ([`Namespace`]), cluster-wide [`scan_keys`] and [`health`].
//!
//! ```no_run
//! use fred::prelude::*;
//! use redis_conn::{RedisClient, RedisConfig};
//!
//! # async fn demo() -> redis_conn::Result<()> {
//! // REDIS_URL, or REDIS_MODE + REDIS_HOST / REDIS_SENTINEL_HOST / REDIS_CLUSTER_HOST ...
//! let redis = RedisClient::connect(RedisConfig::from_env()?).await?;
//! let n: i64 = redis.pool().incr("visits").await?;
//! let health = redis_conn::health(&redis).await?;
//! println!("{n} visits; {} primaries", health.primaries().count());
//! # Ok(()) }
//! ```
//!
//! # TLS and least-privilege ACL users
//!
//! `rediss://` URLs (or `REDIS_TLS=true`) connect over TLS; [`TlsOptions`] adds a CA bundle
//! (`tls_ca`), a client certificate for mutual TLS (`tls_cert`, `tls_key`) and the name each
//! node's certificate carries (`tls_server_name`, or `tls_hosts=ip=name,...` for Sentinel and
//! Cluster nodes reached by IP whose certificates name host names). Every way this can be wrong
//! (untrusted CA, expired certificate, wrong name, missing client certificate, a plaintext
//! port, a TLS port reached without TLS) is [`Error::Tls`] naming the address, with the fix,
//! within the connect timeout. A command, key or channel the ACL user may not use is
//! [`Error::NoPermission`] (scripts' errors name the script and its keys). [`AclRule`] holds the
//! rights a client needs ([`AclRule::connection`]); each redkit crate documents and exposes the
//! rule that runs it.
//!
//! ```no_run
//! # async fn demo() -> redis_conn::Result<()> {
//! let cfg = redis_conn::RedisConfig::from_url(
//!     "rediss-cluster://app:pw@10.0.0.11:6379?tls_ca=/etc/redis/ca.pem\
//!      &tls_cert=/etc/redis/app.crt&tls_key=/etc/redis/app.key\
//!      &tls_hosts=10.0.0.11=redis-1.internal,10.0.0.12=redis-2.internal",
//! )?;
//! let redis = redis_conn::RedisClient::connect(cfg).await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees and limits
//!
//! | situation | what the client does |
//! |---|---|
//! | server restart, dropped connection | reconnects forever with exponential backoff and jitter (fred never reconnects without a policy) |
//! | Sentinel failover (primary killed) | commands fail or wait until Sentinel names the new primary, then go there |
//! | primary paused / black-holed | the connection is declared unresponsive after `unresponsive_timeout` and replaced, so writes are not queued on a node that will be demoted |
//! | `READONLY`, `LOADING`, `CLUSTERDOWN`, `MASTERDOWN` replies | trigger a reconnect (and re-discovery) |
//! | Cluster `MOVED` / `ASK` | followed by fred; the slot map is refreshed |
//! | `NOSCRIPT` (flush, restart, failover) | [`Script::run`] resends the source with `EVAL` |
//! | TLS (mutual TLS, host-name certificates) | the same failovers as plaintext, measured: Sentinel and Cluster kill -9 of a primary lose no acknowledged write; verification failures are typed errors, never a fallback to plaintext |
//! | one cluster primary killed | its slots answer again once a replica is promoted (≈ node timeout + 1–2 s); fred queues commands for the *other* primaries while it re-discovers the slot map, so they stall for about as long (measured, no loss) |
//!
//! Not guaranteed: Redis replication is asynchronous, so a write acknowledged by a primary that
//! dies before its replicas copied it is lost on failover; a command that timed out on the
//! client may still have run on the server (do not assume a timeout means "not applied"); a
//! command whose connection dropped after it was sent is retried (up to 3 attempts), so a
//! non-idempotent command (`INCR`, `LPUSH`) can apply twice: design state changes as idempotent
//! scripts (token- or id-checked), as redkit's crates do.
//!
//! # How this crate is laid out
//!
//! Read it bottom up. `error` holds [`Error`] and [`Result`] (server replies classified);
//! `acl` holds [`AclRule`], the least-privilege rules each crate documents;
//! `config` holds the settings: `config/types` ([`RedisConfig`], [`Mode`], [`Endpoint`],
//! [`Secret`], defaults), `config/values` (parsers for single values), `config/url`
//! ([`RedisConfig::from_url`]) and `config/env` ([`RedisConfig::from_env`]). [`keys`] names keys
//! and computes cluster slots; `tls` builds the TLS connector from [`TlsOptions`]. `client`
//! connects a config ([`RedisClient`], [`builder`],
//! [`Dedicated`] clients, pub/sub [`Delivery`]); on top of a client, `script` runs [`Script`]s,
//! `scan` walks the keyspace ([`scan_keys`]) and `health` reports on the deployment
//! ([`health`]).

mod acl;
mod client;
mod config;
mod error;
mod health;
pub mod keys;
pub mod registry;
mod scan;
mod script;
mod tls;

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
pub use tls::explain_tls_failure;

/// Re-export of the fred version redis-conn is built on, so users name the same types.
pub use fred;
