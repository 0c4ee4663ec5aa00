//! The connection settings themselves: [`RedisConfig`] with its [`Mode`], [`Endpoint`]s and
//! [`Secret`]s, the production defaults, the checks every way of building one ends with, and
//! the credential-free [`RedisConfig::target`] used in messages.

use std::fmt;
use std::time::Duration;

use super::secret::Secret;
use super::tls::TlsOptions;
use crate::error::{Error, Result};

/// Default Redis port.
pub const DEFAULT_PORT: u16 = 6379;
/// Default Sentinel port.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// A `host:port` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which kind of deployment to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// One server (possibly with replicas the client ignores).
    Standalone {
        /// The server.
        server: Endpoint,
    },
    /// A primary found through Sentinel; the client follows failovers.
    Sentinel {
        /// Sentinel addresses (any one is enough to start).
        sentinels: Vec<Endpoint>,
        /// The monitored service name (`sentinel monitor <name> ...`).
        service_name: String,
        /// ACL user for the sentinels themselves, if they require one.
        sentinel_username: Option<String>,
        /// Password for the sentinels themselves, if they require one.
        sentinel_password: Option<Secret>,
    },
    /// A Redis Cluster; the rest of the nodes are discovered from the seeds.
    Cluster {
        /// Seed nodes.
        seeds: Vec<Endpoint>,
    },
}

impl Mode {
    /// `standalone`, `sentinel` or `cluster`.
    ///
    /// ```
    /// let cfg = redis_conn::RedisConfig::from_url("redis://localhost").unwrap();
    /// assert_eq!(cfg.mode.name(), "standalone");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Standalone { .. } => "standalone",
            Mode::Sentinel { .. } => "sentinel",
            Mode::Cluster { .. } => "cluster",
        }
    }
}

/// Everything needed to connect. Build it with [`RedisConfig::from_url`],
/// [`RedisConfig::from_env`] or [`RedisConfig::standalone`], then adjust fields.
///
/// `Debug` never shows passwords:
///
/// ```
/// let cfg = redis_conn::RedisConfig::from_url("redis://app:s3cret@cache.internal:6380/2").unwrap();
/// assert!(!format!("{cfg:?}").contains("s3cret"));
/// assert_eq!(cfg.database, Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Deployment kind and addresses.
    pub mode: Mode,
    /// ACL user (`None`: the `default` user).
    pub username: Option<String>,
    /// Password for the data nodes.
    pub password: Option<Secret>,
    /// Database index (standalone and Sentinel only).
    pub database: Option<u8>,
    /// Connect with TLS (`rediss://`, `REDIS_TLS=true`) when `Some`: which CAs to trust, a
    /// client certificate for mutual TLS, and which name each node's certificate must carry
    /// (see [`TlsOptions`]). `None`: plaintext.
    pub tls: Option<TlsOptions>,
    /// Limit for establishing a connection and for the client's own probes (Sentinel queries,
    /// `CLUSTER SLOTS`). Default 2 s.
    pub connect_timeout: Duration,
    /// Default limit for one command, retries included. Default 5 s.
    pub command_timeout: Duration,
    /// A connection with a request unanswered for this long is considered dead and replaced,
    /// so a paused or black-holed primary does not swallow writes. Default 2 s.
    pub unresponsive_timeout: Duration,
    /// First reconnect delay (doubles up to `reconnect_max_delay`, with jitter). Default 50 ms.
    pub reconnect_min_delay: Duration,
    /// Largest reconnect delay. Default 2 s.
    pub reconnect_max_delay: Duration,
    /// Connections (fred clients) in the pool for ordinary traffic. Default: number of CPUs,
    /// at least 2.
    pub pool_size: usize,
}

pub(super) fn default_pool_size() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

impl RedisConfig {
    /// A standalone config with production defaults.
    ///
    /// ```
    /// let cfg = redis_conn::RedisConfig::standalone("127.0.0.1", 6379);
    /// assert_eq!(cfg.mode.name(), "standalone");
    /// ```
    pub fn standalone(host: impl Into<String>, port: u16) -> RedisConfig {
        RedisConfig::with_mode(Mode::Standalone {
            server: Endpoint {
                host: host.into(),
                port,
            },
        })
    }

    /// A config for `mode` with production defaults.
    pub fn with_mode(mode: Mode) -> RedisConfig {
        RedisConfig {
            mode,
            username: None,
            password: None,
            database: None,
            tls: None,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            unresponsive_timeout: Duration::from_secs(2),
            reconnect_min_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_secs(2),
            pool_size: default_pool_size(),
        }
    }

    /// Checks combinations that cannot work.
    pub(super) fn check(&self) -> Result<()> {
        if let Some(tls) = &self.tls {
            tls.check()?;
        }
        if matches!(self.mode, Mode::Cluster { .. }) && self.database.is_some_and(|d| d != 0) {
            return Err(Error::config(
                "database",
                "Redis Cluster only has database 0: remove the /db part or REDIS_DB",
            ));
        }
        Ok(())
    }

    /// The addresses this config starts from, for messages (never credentials).
    ///
    /// ```
    /// let cfg = redis_conn::RedisConfig::from_url("redis://:pw@h:1").unwrap();
    /// assert_eq!(cfg.target(), "redis://h:1");
    /// ```
    pub fn target(&self) -> String {
        let s = if self.tls.is_some() { "s" } else { "" };
        let join = |eps: &[Endpoint]| {
            eps.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match &self.mode {
            Mode::Standalone { server } => format!("redis{s}://{server}"),
            Mode::Sentinel {
                sentinels,
                service_name,
                ..
            } => format!("redis{s}-sentinel://{}/{service_name}", join(sentinels)),
            Mode::Cluster { seeds } => format!("redis{s}-cluster://{}", join(seeds)),
        }
    }
}
