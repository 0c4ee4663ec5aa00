//! [`RedisConfig::from_url`]: the `redis://`, `redis-sentinel://` and `redis-cluster://`
//! URL forms (with their `rediss` TLS variants), never echoing a password in an error.

use percent_encoding::percent_decode_str;

use super::secret::Secret;
use super::tls::{Pem, TlsOptions, parse_host_names};
use super::types::{DEFAULT_PORT, DEFAULT_SENTINEL_PORT, Endpoint, Mode, RedisConfig};
use super::values::{parse_db, parse_endpoint, parse_millis, parse_pool_size};
use crate::error::{Error, Result};

const SCHEMES: &str = "redis://, rediss://, redis-sentinel://, rediss-sentinel://, redis-cluster://, rediss-cluster://";
const QUERY_PARAMS: &str = "db, service_name (or sentinelServiceName, master_name), node, sentinel_username, \
                            sentinel_password, connect_timeout_ms, command_timeout_ms, pool_size, \
                            tls_ca, tls_cert, tls_key, tls_server_name, tls_hosts (the tls_ ones with rediss only)";

impl RedisConfig {
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
    /// TLS (`rediss` schemes only; see [`TlsOptions`](crate::TlsOptions)): `tls_ca` (a PEM file
    /// of CAs to trust instead of the system's), `tls_cert` and `tls_key` (PEM files of a
    /// client certificate and its key, for mutual TLS), `tls_server_name` (the name every
    /// node's certificate must carry) and `tls_hosts=ip=name,ip=name` (one name per address,
    /// for Sentinel and Cluster nodes reached by IP whose certificates name host names).
    ///
    /// ```
    /// let cfg = redis_conn::RedisConfig::from_url(
    ///     "rediss-sentinel://app:pw@10.0.0.5:26379/mymaster?tls_ca=/etc/redis/ca.pem&tls_server_name=redis.internal",
    /// ).unwrap();
    /// assert_eq!(cfg.tls.unwrap().name_for("10.0.0.9"), Some("redis.internal"));
    /// assert!(redis_conn::RedisConfig::from_url("redis://h?tls_ca=/ca.pem").is_err());
    /// ```
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
        cfg.tls = tls.then(TlsOptions::default);
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
                "tls_ca" | "tls_cert" | "tls_key" | "tls_server_name" | "tls_hosts" => {
                    let Some(t) = cfg.tls.as_mut() else {
                        return Err(Error::config(
                            format!("URL parameter {k}"),
                            format!(
                                "TLS settings need a TLS URL: use rediss:// (or rediss-sentinel://, rediss-cluster://) instead of {scheme}://"
                            ),
                        ));
                    };
                    if v.is_empty() {
                        return Err(Error::config(format!("URL parameter {k}"), "is empty"));
                    }
                    match k {
                        "tls_ca" => t.ca = Some(Pem::File(v.into())),
                        "tls_cert" => t.client_cert = Some(Pem::File(v.into())),
                        "tls_key" => t.client_key = Some(Pem::File(v.into())),
                        "tls_server_name" => t.server_name = Some(v),
                        _ => t
                            .hosts
                            .extend(parse_host_names(&v, "URL parameter tls_hosts")?),
                    }
                }
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
                service_name: service_name.filter(|n| !n.is_empty()).ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
        assert!(cfg.tls.is_some());
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
