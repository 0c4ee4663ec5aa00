//! [`RedisConfig::from_env`] and [`RedisConfig::from_env_with`]: the `REDIS_*` variables
//! (the seed's contract, extended), with `REDIS_URL` parsed by [`RedisConfig::from_url`] and
//! credentials and tuning applied on top of it.

use super::secret::Secret;
use super::tls::{Pem, TlsOptions, parse_host_names};
use super::types::{DEFAULT_PORT, DEFAULT_SENTINEL_PORT, Mode, RedisConfig};
use super::values::{parse_db, parse_host_list, parse_millis, parse_pool_size, parse_port};
use crate::error::{Error, Result};

/// The variables that configure TLS besides `REDIS_TLS`.
const TLS_VARS: [&str; 5] = [
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_KEY_FILE",
    "REDIS_TLS_SERVER_NAME",
    "REDIS_TLS_HOSTS",
];

impl RedisConfig {
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
    /// | `REDIS_TLS_CA_FILE` | PEM file of CAs to trust instead of the system's | |
    /// | `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE` | client certificate and key (PEM files), for mutual TLS | |
    /// | `REDIS_TLS_SERVER_NAME` | the name every node's certificate must carry | the address dialled |
    /// | `REDIS_TLS_HOSTS` | `ip=name,ip=name`: the name each node's certificate carries, by address | |
    ///
    /// Any `REDIS_TLS_*` setting turns TLS on; with `REDIS_TLS=false` or a plaintext
    /// `REDIS_URL` it is an error (never silently plaintext). `tls_*` URL parameters and the
    /// same variable together are an error too.
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
            if from_url && on != cfg.tls.is_some() {
                return Err(Error::config(
                    "REDIS_TLS",
                    "contradicts the REDIS_URL scheme (rediss:// means TLS): keep one of the two",
                ));
            }
            if !on && TLS_VARS.iter().any(|v| get(v).is_some()) {
                return Err(Error::config(
                    "REDIS_TLS",
                    "is false but REDIS_TLS_* settings are given: remove them or set REDIS_TLS=true",
                ));
            }
            if on && cfg.tls.is_none() {
                cfg.tls = Some(TlsOptions::default());
            }
        }
        for var in TLS_VARS {
            let Some(value) = get(var) else { continue };
            if cfg.tls.is_none() && from_url {
                return Err(Error::config(
                    var,
                    "is set but REDIS_URL is not a TLS URL: use rediss:// (or rediss-sentinel://, rediss-cluster://)",
                ));
            }
            let tls = cfg.tls.get_or_insert_with(TlsOptions::default);
            let taken = match var {
                "REDIS_TLS_CA_FILE" => tls.ca.replace(Pem::File(value.into())).is_some(),
                "REDIS_TLS_CERT_FILE" => tls.client_cert.replace(Pem::File(value.into())).is_some(),
                "REDIS_TLS_KEY_FILE" => tls.client_key.replace(Pem::File(value.into())).is_some(),
                "REDIS_TLS_SERVER_NAME" => tls.server_name.replace(value).is_some(),
                _ => {
                    let had = !tls.hosts.is_empty();
                    tls.hosts = parse_host_names(&value, var)?;
                    had
                }
            };
            if taken {
                return Err(conflict(var));
            }
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
    fn tls_variables_configure_tls_and_refuse_contradictions() {
        use crate::config::tls::Pem;
        let cfg = env(&[
            ("REDIS_MODE", "cluster"),
            ("REDIS_CLUSTER_HOST", "10.0.0.1:6379"),
            ("REDIS_TLS_CA_FILE", "/etc/redis/ca.pem"),
            ("REDIS_TLS_CERT_FILE", "/etc/redis/client.crt"),
            ("REDIS_TLS_KEY_FILE", "/etc/redis/client.key"),
            (
                "REDIS_TLS_HOSTS",
                "10.0.0.1=r1.internal,10.0.0.2=r2.internal",
            ),
        ])
        .expect("TLS from variables");
        let tls = cfg.tls.as_ref().expect("any REDIS_TLS_* turns TLS on");
        assert_eq!(tls.ca, Some(Pem::File("/etc/redis/ca.pem".into())));
        assert!(tls.client_cert.is_some() && tls.client_key.is_some());
        assert_eq!(tls.name_for("10.0.0.2"), Some("r2.internal"));
        assert!(cfg.target().starts_with("rediss-cluster://"));
        assert!(!format!("{cfg:?}").contains("BEGIN"));

        let cfg = env(&[
            ("REDIS_URL", "rediss://cache.internal:6380"),
            ("REDIS_TLS_SERVER_NAME", "redis.internal"),
        ])
        .expect("variables on top of a rediss URL");
        assert_eq!(
            cfg.tls.expect("tls").server_name.as_deref(),
            Some("redis.internal")
        );

        for (pairs, needles) in [
            (
                vec![("REDIS_TLS", "false"), ("REDIS_TLS_CA_FILE", "/ca.pem")],
                &["REDIS_TLS", "REDIS_TLS_*"][..],
            ),
            (
                vec![("REDIS_URL", "redis://h"), ("REDIS_TLS_CA_FILE", "/ca.pem")],
                &["REDIS_TLS_CA_FILE", "rediss://"][..],
            ),
            (
                vec![
                    ("REDIS_URL", "rediss://h?tls_ca=/a.pem"),
                    ("REDIS_TLS_CA_FILE", "/b.pem"),
                ],
                &["REDIS_TLS_CA_FILE", "keep one"][..],
            ),
            (vec![("REDIS_TLS_CERT_FILE", "/c.pem")], &["tls_key"][..]),
            (
                vec![("REDIS_TLS_HOSTS", "10.0.0.1")],
                &["REDIS_TLS_HOSTS", "address=name"][..],
            ),
        ] {
            let text = err_text(env(&pairs));
            for needle in needles {
                assert!(text.contains(needle), "{text:?} should mention {needle:?}");
            }
        }
    }
}
