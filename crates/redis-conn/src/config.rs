//! Connection settings: one [`RedisConfig`] for standalone, Sentinel and Cluster, built from a
//! URL or from the environment, with production defaults.

use std::fmt;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// Default Redis port.
pub const DEFAULT_PORT: u16 = 6379;
/// Default Sentinel port.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// A secret string: shown as `***` by `Debug` and `Display`.
///
/// ```
/// let s = redis_conn::Secret::new("hunter2");
/// assert_eq!(format!("{s} {s:?}"), "*** ***");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself (for handing to the driver; never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

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
    /// Connect with TLS (`rediss://`, `REDIS_TLS=true`), verifying against the system's root
    /// certificates. Cluster nodes found by IP are verified against the first seed's host name;
    /// a primary found through Sentinel is verified against its IP, so its certificate needs an
    /// IP SAN.
    pub tls: bool,
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

const SCHEMES: &str = "redis://, rediss://, redis-sentinel://, rediss-sentinel://, redis-cluster://, rediss-cluster://";
const QUERY_PARAMS: &str = "db, service_name (or sentinelServiceName, master_name), node, sentinel_username, \
                            sentinel_password, connect_timeout_ms, command_timeout_ms, pool_size";

fn default_pool_size() -> usize {
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
            tls: false,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            unresponsive_timeout: Duration::from_secs(2),
            reconnect_min_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_secs(2),
            pool_size: default_pool_size(),
        }
    }

    /// Parses a URL:
    ///
    /// * `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS)
    /// * `redis-sentinel://[[user]:password@]s1[:port][,s2[:port]...][/service_name[/db]]`
    ///   (service name also as `?service_name=`, `?sentinelServiceName=`, or `#name`; default
    ///   sentinel port 26379)
    /// * `redis-cluster://[[user]:password@]n1[:port][,n2[:port]...]`
    ///
    /// Extra hosts may also be given as repeated `?node=host:port`. Query parameters:
    /// `db`, `service_name`, `node`, `sentinel_username`, `sentinel_password`,
    /// `connect_timeout_ms`, `command_timeout_ms`, `pool_size`; unknown ones are rejected.
    ///
    /// ```
    /// use redis_conn::{Mode, RedisConfig};
    /// let cfg = RedisConfig::from_url("redis-sentinel://:pw@s1,s2:26380/mymaster").unwrap();
    /// let Mode::Sentinel { sentinels, service_name, .. } = &cfg.mode else { unreachable!() };
    /// assert_eq!(sentinels.len(), 2);
    /// assert_eq!(sentinels[0].port, 26379);
    /// assert_eq!(service_name, "mymaster");
    ///
    /// let err = RedisConfig::from_url("http://localhost").unwrap_err();
    /// assert!(err.to_string().contains("redis://"));
    /// ```
    pub fn from_url(url: &str) -> Result<RedisConfig> {
        let bad = |msg: String| Error::config("URL", msg);
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad(format!(
                "{:?} has no scheme: expected one of {SCHEMES}",
                redact_url(url)
            ))
        })?;
        let (kind, tls) = match scheme.to_ascii_lowercase().as_str() {
            "redis" => ("standalone", false),
            "rediss" => ("standalone", true),
            "redis-sentinel" | "redis+sentinel" => ("sentinel", false),
            "rediss-sentinel" | "rediss+sentinel" => ("sentinel", true),
            "redis-cluster" | "redis+cluster" => ("cluster", false),
            "rediss-cluster" | "rediss+cluster" => ("cluster", true),
            other => {
                return Err(bad(format!(
                    "unsupported scheme {other:?}: expected one of {SCHEMES}"
                )));
            }
        };
        // The host part ends at the first '/', '?' or '#' (as in every URL parser). An '@' after
        // that point almost always means a password with one of those characters unencoded:
        // refuse it without echoing anything, since the text may be the password.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if !rest[..authority_end].contains('@') && rest[authority_end..].contains('@') {
            return Err(bad(
                "'@' after the host part: percent-encode '/', '?' and '#' in the password (%2F, %3F, %23) \
                 and '@' in parameter values (%40)"
                    .into(),
            ));
        }
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(decode(f, "URL fragment")?)),
            None => (rest, None),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };

        let default_port = if kind == "sentinel" {
            DEFAULT_SENTINEL_PORT
        } else {
            DEFAULT_PORT
        };
        let mut endpoints = Vec::new();
        for h in hosts.split(',').filter(|h| !h.is_empty()) {
            endpoints.push(parse_endpoint(h, default_port, "URL host")?);
        }

        let mut cfg = RedisConfig::standalone("localhost", DEFAULT_PORT);
        cfg.tls = tls;
        if let Some(info) = userinfo {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            let user = decode(user, "URL username")?;
            let pass = decode(pass, "URL password")?;
            cfg.username = (!user.is_empty()).then_some(user);
            // `redis://secret@host` (no colon) is the legacy password-only form.
            cfg.password = match (info.contains(':'), pass.is_empty()) {
                (true, false) => Some(Secret::new(pass)),
                (false, _) => cfg.username.take().map(Secret::new),
                (true, true) => None,
            };
        }

        let mut service_name = fragment.filter(|f| !f.is_empty());
        let mut sentinel_username = None;
        let mut sentinel_password = None;
        let mut path_parts = path.split('/').filter(|p| !p.is_empty());
        if kind == "sentinel"
            && let Some(name) = path_parts.next()
        {
            service_name = Some(decode(name, "URL path")?);
        }
        let mut db: Option<String> = path_parts.next().map(str::to_string);
        if let Some(extra) = path_parts.next() {
            return Err(bad(format!(
                "unexpected path segment {extra:?}: the path is `/db` (or `/service_name/db` for Sentinel)"
            )));
        }

        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v, &format!("URL parameter {k}"))?;
            match k {
                "db" | "database" => db = Some(v),
                "service_name" | "sentinelServiceName" | "master_name" | "master" => {
                    service_name = Some(v)
                }
                "node" => endpoints.push(parse_endpoint(&v, default_port, "URL parameter node")?),
                "sentinel_username" | "sentinelUsername" => sentinel_username = Some(v),
                "sentinel_password" | "sentinelPassword" => {
                    sentinel_password = Some(Secret::new(v))
                }
                "connect_timeout_ms" => {
                    cfg.connect_timeout = parse_millis(&v, "URL parameter connect_timeout_ms")?
                }
                "command_timeout_ms" => {
                    cfg.command_timeout = parse_millis(&v, "URL parameter command_timeout_ms")?
                }
                "pool_size" => cfg.pool_size = parse_pool_size(&v, "URL parameter pool_size")?,
                other => {
                    return Err(Error::config(
                        format!("URL parameter {other}"),
                        format!("unknown parameter: accepted parameters are {QUERY_PARAMS}"),
                    ));
                }
            }
        }
        if let Some(db) = db.filter(|d| !d.is_empty()) {
            cfg.database = Some(parse_db(&db, "URL database")?);
        }
        if endpoints.is_empty() {
            if kind == "standalone" {
                endpoints.push(Endpoint {
                    host: "localhost".into(),
                    port: DEFAULT_PORT,
                });
            } else {
                return Err(bad(format!(
                    "a {kind} URL needs at least one host: {scheme}://host1:port1,host2:port2{}",
                    if kind == "sentinel" { "/mymaster" } else { "" }
                )));
            }
        }
        cfg.mode = match kind {
            "standalone" => {
                if endpoints.len() > 1 {
                    return Err(bad(format!(
                        "{scheme}:// takes one host but {} were given: use redis-sentinel:// or redis-cluster:// for several",
                        endpoints.len()
                    )));
                }
                Mode::Standalone {
                    server: endpoints.remove(0),
                }
            }
            "sentinel" => Mode::Sentinel {
                sentinels: endpoints,
                service_name: service_name.ok_or_else(|| {
                    Error::config(
                        "URL service name",
                        "a Sentinel URL must name the monitored service: redis-sentinel://host:26379/mymaster \
                         (or ?service_name=mymaster)",
                    )
                })?,
                sentinel_username,
                sentinel_password,
            },
            _ => Mode::Cluster { seeds: endpoints },
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// Reads the process environment; see [`RedisConfig::from_env_with`] for the variables.
    ///
    /// ```no_run
    /// let cfg = redis_conn::RedisConfig::from_env().expect("valid REDIS_* variables");
    /// ```
    pub fn from_env() -> Result<RedisConfig> {
        RedisConfig::from_env_with(|k| std::env::var(k).ok())
    }

    /// Builds a config from variables looked up with `var` (the seed's contract, extended):
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `REDIS_URL` | a URL as for [`RedisConfig::from_url`]; wins over the topology variables below | |
    /// | `REDIS_MODE` | `standalone`, `sentinel` or `cluster` | `standalone` |
    /// | `REDIS_HOST`, `REDIS_PORT` | standalone server | `localhost`, `6379` |
    /// | `REDIS_SENTINEL_HOST` | sentinels, `host[:port][,host[:port]...]` (required for sentinel) | |
    /// | `REDIS_SENTINEL_PORT` | port for sentinels given without one | `26379` |
    /// | `REDIS_SENTINEL_MASTER` | monitored service name | `mymaster` |
    /// | `REDIS_SENTINEL_USERNAME`, `REDIS_SENTINEL_PASSWORD` | credentials for the sentinels | |
    /// | `REDIS_CLUSTER_HOST` | seed nodes, `host[:port][,...]` (required for cluster; port defaults to `REDIS_PORT`) | |
    /// | `REDIS_USERNAME`, `REDIS_PASSWORD` | credentials for the data nodes (also with `REDIS_URL`, which must then not carry them) | |
    /// | `REDIS_DB` | database index (not cluster) | |
    /// | `REDIS_TLS` | `true`/`false` (also `1`/`0`, `yes`/`no`) | `false` |
    /// | `REDIS_CONNECT_TIMEOUT_MS`, `REDIS_COMMAND_TIMEOUT_MS`, `REDIS_POOL_SIZE` | tuning; also applied on top of `REDIS_URL` | 2000, 5000, CPUs |
    ///
    /// ```
    /// use std::collections::HashMap;
    /// let env: HashMap<&str, &str> = [("REDIS_MODE", "cluster"), ("REDIS_CLUSTER_HOST", "n1:7000,n2:7001")].into();
    /// let cfg = redis_conn::RedisConfig::from_env_with(|k| env.get(k).map(|v| v.to_string())).unwrap();
    /// assert_eq!(cfg.mode.name(), "cluster");
    ///
    /// let env: HashMap<&str, &str> = [("REDIS_MODE", "sentinal")].into();
    /// let err = redis_conn::RedisConfig::from_env_with(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
    /// assert!(err.to_string().contains("REDIS_MODE"));
    /// ```
    pub fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Result<RedisConfig> {
        let get = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut cfg = if let Some(url) = get("REDIS_URL") {
            RedisConfig::from_url(&url).map_err(|e| match e {
                Error::Config { setting, message } => Error::Config {
                    setting: format!("REDIS_URL ({setting})"),
                    message,
                },
                other => other,
            })?
        } else {
            let port = match get("REDIS_PORT") {
                Some(p) => parse_port(&p, "REDIS_PORT")?,
                None => DEFAULT_PORT,
            };
            let mode = get("REDIS_MODE").unwrap_or_else(|| "standalone".into());
            match mode.to_ascii_lowercase().as_str() {
                "standalone" | "single" => RedisConfig::standalone(
                    get("REDIS_HOST").unwrap_or_else(|| "localhost".into()),
                    port,
                ),
                "sentinel" => {
                    let sport = match get("REDIS_SENTINEL_PORT") {
                        Some(p) => parse_port(&p, "REDIS_SENTINEL_PORT")?,
                        None => DEFAULT_SENTINEL_PORT,
                    };
                    let hosts = get("REDIS_SENTINEL_HOST").ok_or_else(|| {
                        Error::config(
                            "REDIS_SENTINEL_HOST",
                            "required when REDIS_MODE=sentinel: one or more sentinels as host[:port][,host[:port]...]",
                        )
                    })?;
                    RedisConfig::with_mode(Mode::Sentinel {
                        sentinels: parse_host_list(&hosts, sport, "REDIS_SENTINEL_HOST")?,
                        service_name: get("REDIS_SENTINEL_MASTER")
                            .unwrap_or_else(|| "mymaster".into()),
                        sentinel_username: get("REDIS_SENTINEL_USERNAME"),
                        sentinel_password: get("REDIS_SENTINEL_PASSWORD").map(Secret::new),
                    })
                }
                "cluster" => {
                    let hosts = get("REDIS_CLUSTER_HOST").ok_or_else(|| {
                        Error::config(
                            "REDIS_CLUSTER_HOST",
                            "required when REDIS_MODE=cluster: one or more seed nodes as host[:port][,host[:port]...]",
                        )
                    })?;
                    RedisConfig::with_mode(Mode::Cluster {
                        seeds: parse_host_list(&hosts, port, "REDIS_CLUSTER_HOST")?,
                    })
                }
                _ => {
                    return Err(Error::config(
                        "REDIS_MODE",
                        format!("{mode:?} is not a mode: expected standalone, sentinel or cluster"),
                    ));
                }
            }
        };
        // Credentials and connection options apply on top of REDIS_URL too (keeping the
        // password out of the URL is common); giving one in both places is an error.
        let from_url = get("REDIS_URL").is_some();
        let conflict = |var: &str| {
            Error::config(
                var,
                "is set but REDIS_URL already sets it: keep one of the two",
            )
        };
        if let Some(user) = get("REDIS_USERNAME") {
            if from_url && cfg.username.is_some() {
                return Err(conflict("REDIS_USERNAME"));
            }
            cfg.username = Some(user);
        }
        if let Some(pw) = get("REDIS_PASSWORD") {
            if from_url && cfg.password.is_some() {
                return Err(conflict("REDIS_PASSWORD"));
            }
            cfg.password = Some(Secret::new(pw));
        }
        if let Some(db) = get("REDIS_DB") {
            if from_url && cfg.database.is_some() {
                return Err(conflict("REDIS_DB"));
            }
            cfg.database = Some(parse_db(&db, "REDIS_DB")?);
        }
        if let Some(tls) = get("REDIS_TLS") {
            let on = match tls.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(Error::config(
                        "REDIS_TLS",
                        format!(
                            "{tls:?} is not a boolean: expected true/false, 1/0, yes/no or on/off"
                        ),
                    ));
                }
            };
            if from_url && on != cfg.tls {
                return Err(Error::config(
                    "REDIS_TLS",
                    "contradicts the REDIS_URL scheme (rediss:// means TLS): keep one of the two",
                ));
            }
            cfg.tls = on;
        }
        if let Some(v) = get("REDIS_CONNECT_TIMEOUT_MS") {
            cfg.connect_timeout = parse_millis(&v, "REDIS_CONNECT_TIMEOUT_MS")?;
        }
        if let Some(v) = get("REDIS_COMMAND_TIMEOUT_MS") {
            cfg.command_timeout = parse_millis(&v, "REDIS_COMMAND_TIMEOUT_MS")?;
        }
        if let Some(v) = get("REDIS_POOL_SIZE") {
            cfg.pool_size = parse_pool_size(&v, "REDIS_POOL_SIZE")?;
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks combinations that cannot work.
    fn check(&self) -> Result<()> {
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
        let s = if self.tls { "s" } else { "" };
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

fn decode(s: &str, what: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::config(what, "is not valid UTF-8 after percent-decoding"))
}

/// Removes the userinfo part of a URL-ish string for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***@{}", &url[..s], &url[a + 1..]),
        (None, Some(a)) => format!("***@{}", &url[a + 1..]),
        _ => url.to_string(),
    }
}

fn parse_port(s: &str, what: &str) -> Result<u16> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::config(
            what,
            format!("{s:?} is not a valid port: expected a number from 1 to 65535"),
        )),
    }
}

fn parse_endpoint(s: &str, default_port: u16, what: &str) -> Result<Endpoint> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // [ipv6]:port
        let (h, after) = rest.split_once(']').ok_or_else(|| {
            Error::config(what, format!("{s:?}: unclosed '[' in an IPv6 address"))
        })?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(Error::config(
            what,
            format!("{s:?} has no host: expected host[:port]"),
        ));
    }
    if host.contains(['/', '@', '?', ' ']) {
        return Err(Error::config(what, format!("{host:?} is not a host name")));
    }
    let port = match port {
        Some(p) => parse_port(p, &format!("{what} port"))?,
        None => default_port,
    };
    Ok(Endpoint {
        host: host.to_string(),
        port,
    })
}

fn parse_host_list(s: &str, default_port: u16, what: &str) -> Result<Vec<Endpoint>> {
    s.split(',')
        .filter(|h| !h.trim().is_empty())
        .map(|h| parse_endpoint(h, default_port, what))
        .collect()
}

fn parse_db(s: &str, what: &str) -> Result<u8> {
    s.parse::<u8>().map_err(|_| {
        Error::config(
            what,
            format!("{s:?} is not a database index: expected a number from 0 to 255"),
        )
    })
}

fn parse_millis(s: &str, what: &str) -> Result<Duration> {
    match s.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(Error::config(
            what,
            format!("{s:?} is not a duration: expected milliseconds greater than 0"),
        )),
    }
}

fn parse_pool_size(s: &str, what: &str) -> Result<usize> {
    match s.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(Error::config(
            what,
            format!("{s:?} is not a pool size: expected a number from 1 to 256"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<RedisConfig> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RedisConfig::from_env_with(|k| map.get(k).cloned())
    }

    fn err_text(r: Result<RedisConfig>) -> String {
        match r {
            Ok(cfg) => panic!("expected an error, got {cfg:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn standalone_url_with_everything() {
        let cfg = RedisConfig::from_url(
            "rediss://app:p%40ss@cache.internal:6380/3?connect_timeout_ms=500&command_timeout_ms=1500&pool_size=4",
        )
        .expect("valid");
        assert_eq!(
            cfg.mode,
            Mode::Standalone {
                server: Endpoint {
                    host: "cache.internal".into(),
                    port: 6380
                }
            }
        );
        assert!(cfg.tls);
        assert_eq!(cfg.username.as_deref(), Some("app"));
        assert_eq!(cfg.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(cfg.database, Some(3));
        assert_eq!(cfg.connect_timeout, Duration::from_millis(500));
        assert_eq!(cfg.command_timeout, Duration::from_millis(1500));
        assert_eq!(cfg.pool_size, 4);
    }

    #[test]
    fn password_only_forms() {
        for url in ["redis://:pw@h", "redis://pw@h"] {
            let cfg = RedisConfig::from_url(url).expect("valid");
            assert_eq!(cfg.username, None, "{url}");
            assert_eq!(
                cfg.password.as_ref().map(Secret::expose),
                Some("pw"),
                "{url}"
            );
        }
    }

    #[test]
    fn sentinel_and_cluster_urls_accept_several_hosts_in_either_form() {
        let cfg = RedisConfig::from_url(
            "redis-sentinel://s1:1,s2?sentinelServiceName=svc&node=s3:3&sentinel_password=x",
        )
        .expect("valid");
        let Mode::Sentinel {
            sentinels,
            service_name,
            sentinel_password,
            ..
        } = &cfg.mode
        else {
            panic!("sentinel")
        };
        assert_eq!(
            sentinels.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            ["s1:1", "s2:26379", "s3:3"]
        );
        assert_eq!(service_name, "svc");
        assert_eq!(sentinel_password.as_ref().map(Secret::expose), Some("x"));

        let cfg = RedisConfig::from_url("redis-sentinel://s1#primary1").expect("fragment form");
        assert!(
            matches!(&cfg.mode, Mode::Sentinel { service_name, .. } if service_name == "primary1")
        );

        let cfg = RedisConfig::from_url("redis-cluster://[::1]:7000,n2").expect("valid");
        assert_eq!(cfg.target(), "redis-cluster://[::1]:7000,n2:6379");
    }

    #[test]
    fn env_modes_follow_the_seed_contract() {
        let cfg = env(&[]).expect("defaults");
        assert_eq!(cfg.target(), "redis://localhost:6379");

        let cfg = env(&[
            ("REDIS_MODE", "sentinel"),
            ("REDIS_SENTINEL_HOST", "s1,s2:26400"),
            ("REDIS_SENTINEL_PORT", "26390"),
            ("REDIS_PASSWORD", "pw"),
        ])
        .expect("sentinel");
        assert_eq!(cfg.target(), "redis-sentinel://s1:26390,s2:26400/mymaster");
        assert_eq!(cfg.password.as_ref().map(Secret::expose), Some("pw"));

        let cfg = env(&[
            ("REDIS_MODE", "cluster"),
            ("REDIS_CLUSTER_HOST", "n1"),
            ("REDIS_PORT", "7000"),
            ("REDIS_TLS", "yes"),
        ])
        .expect("cluster");
        assert_eq!(cfg.target(), "rediss-cluster://n1:7000");

        // A password kept out of the URL still applies; giving it twice is an error.
        let cfg =
            env(&[("REDIS_URL", "redis://u:1"), ("REDIS_PASSWORD", "pw")]).expect("url + password");
        assert_eq!(cfg.password.as_ref().map(Secret::expose), Some("pw"));
        let err =
            env(&[("REDIS_URL", "redis://:a@u:1"), ("REDIS_PASSWORD", "pw")]).expect_err("twice");
        assert!(
            err.to_string().contains("REDIS_PASSWORD") && !err.to_string().contains("pw\""),
            "{err}"
        );
        assert!(env(&[("REDIS_URL", "rediss://u:1"), ("REDIS_TLS", "false")]).is_err());

        // REDIS_URL wins over the topology variables; tuning still applies.
        let cfg = env(&[
            ("REDIS_URL", "redis://u:1"),
            ("REDIS_MODE", "cluster"),
            ("REDIS_POOL_SIZE", "3"),
        ])
        .expect("url wins");
        assert_eq!(cfg.target(), "redis://u:1");
        assert_eq!(cfg.pool_size, 3);
    }

    /// Each malformed input names the variable (or URL part) and the accepted values.
    #[test]
    fn malformed_urls_and_env_give_clear_errors() {
        let cases: Vec<(Result<RedisConfig>, &[&str])> = vec![
            (
                env(&[("REDIS_MODE", "sentinal")]),
                &[
                    "REDIS_MODE",
                    "\"sentinal\"",
                    "standalone, sentinel or cluster",
                ],
            ),
            (
                env(&[("REDIS_MODE", "sentinel")]),
                &[
                    "REDIS_SENTINEL_HOST",
                    "required when REDIS_MODE=sentinel",
                    "host[:port]",
                ],
            ),
            (
                env(&[("REDIS_MODE", "cluster")]),
                &["REDIS_CLUSTER_HOST", "required when REDIS_MODE=cluster"],
            ),
            (
                env(&[("REDIS_PORT", "abc")]),
                &["REDIS_PORT", "\"abc\"", "1 to 65535"],
            ),
            (
                env(&[("REDIS_PORT", "70000")]),
                &["REDIS_PORT", "1 to 65535"],
            ),
            (env(&[("REDIS_TLS", "maybe")]), &["REDIS_TLS", "true/false"]),
            (
                env(&[("REDIS_POOL_SIZE", "0")]),
                &["REDIS_POOL_SIZE", "1 to 256"],
            ),
            (env(&[("REDIS_DB", "-1")]), &["REDIS_DB", "0 to 255"]),
            (
                env(&[("REDIS_COMMAND_TIMEOUT_MS", "soon")]),
                &["REDIS_COMMAND_TIMEOUT_MS", "milliseconds"],
            ),
            (
                env(&[("REDIS_MODE", "sentinel"), ("REDIS_SENTINEL_HOST", "s1:x")]),
                &["REDIS_SENTINEL_HOST port", "\"x\""],
            ),
            (
                env(&[("REDIS_URL", "http://h")]),
                &[
                    "REDIS_URL (URL)",
                    "unsupported scheme \"http\"",
                    "redis-sentinel://",
                ],
            ),
            (
                RedisConfig::from_url("localhost:6379"),
                &["URL", "no scheme", "redis://"],
            ),
            (
                RedisConfig::from_url("redis-sentinel://s1:26379"),
                &["URL service name", "/mymaster"],
            ),
            (
                RedisConfig::from_url("redis://a:1,b:2"),
                &["URL", "one host", "redis-cluster://"],
            ),
            (
                RedisConfig::from_url("redis-cluster://n1/2"),
                &["database", "only has database 0"],
            ),
            (
                RedisConfig::from_url("redis://h?timeout=5"),
                &["URL parameter timeout", "accepted parameters are"],
            ),
            (
                RedisConfig::from_url("redis-cluster://"),
                &["URL", "at least one host"],
            ),
            (
                RedisConfig::from_url("redis://h:0"),
                &["URL host port", "1 to 65535"],
            ),
        ];
        for (result, needles) in cases {
            let text = err_text(result);
            for needle in needles {
                assert!(text.contains(needle), "{text:?} should mention {needle:?}");
            }
        }
    }

    #[test]
    fn passwords_never_appear_in_debug_display_or_errors() {
        let cfg = RedisConfig::from_url(
            "redis-sentinel://user:TopSecret1@s1/m?sentinel_password=TopSecret2",
        )
        .expect("valid");
        let shown = format!("{cfg:?} {} {:?}", cfg.target(), cfg.mode);
        assert!(!shown.contains("TopSecret"), "{shown}");

        let errors = [
            RedisConfig::from_url("redis://:TopSecret7/x@h"),
            RedisConfig::from_url("redis://app:TopSecret8/x@h"),
            RedisConfig::from_url("redis://:Top?Secret9@h"),
            RedisConfig::from_url("redis://:TopSecret10#x@h"),
            RedisConfig::from_url("http://user:TopSecret3@h"),
            RedisConfig::from_url("user:TopSecret4@h"),
            RedisConfig::from_url("redis://user:TopSecret5@h?bogus=1"),
            RedisConfig::from_url("redis://user:TopSecret6@h:99999"),
        ];
        for e in errors {
            let e = e.expect_err("invalid");
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("TopSecret") && !shown.contains("Secret"),
                "{shown}"
            );
        }
        // Encoded, the same passwords work.
        let cfg = RedisConfig::from_url("redis://:Top%2FSecret%3F%23@h").expect("encoded");
        assert_eq!(
            cfg.password.as_ref().map(Secret::expose),
            Some("Top/Secret?#")
        );
    }
}
