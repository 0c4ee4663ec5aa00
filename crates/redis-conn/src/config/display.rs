//! `Display` for [`RedisConfig`]: the configuration as a URL that [`RedisConfig::from_url`]
//! reads back, with every password replaced by `***`, so it is safe to log.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::tls::Pem;
use super::types::{Endpoint, Mode, RedisConfig, default_pool_size};

/// What a password is shown as.
const REDACTED: &str = "***";

/// Everything but RFC 3986's unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

fn pem(p: &Pem) -> String {
    match p {
        Pem::File(path) => enc(&path.to_string_lossy()),
        // Inline certificates (from the environment) have no URL form.
        Pem::Inline(_) => enc("(inline PEM)"),
    }
}

impl fmt::Display for RedisConfig {
    /// The URL of this configuration, passwords shown as `***`. Parsing it with
    /// [`RedisConfig::from_url`] gives the same configuration, but for those passwords (and
    /// settings a URL cannot carry: `unresponsive_timeout`, the reconnect delays, inline PEMs).
    ///
    /// ```
    /// let url = "rediss-sentinel://app:s3cret@10.0.0.5:26379,10.0.0.6/mymaster?db=2&tls_ca=%2Fetc%2Fca.pem";
    /// let cfg = redis_conn::RedisConfig::from_url(url).unwrap();
    /// let shown = cfg.to_string();
    /// assert_eq!(shown, "rediss-sentinel://app:***@10.0.0.5:26379,10.0.0.6:26379/mymaster?db=2&tls_ca=%2Fetc%2Fca.pem");
    /// let again = redis_conn::RedisConfig::from_url(&shown).unwrap();
    /// assert_eq!(again.password.unwrap().expose(), "***");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.tls.is_some() { "s" } else { "" };
        let (kind, endpoints): (&str, &[Endpoint]) = match &self.mode {
            Mode::Standalone { server } => ("", std::slice::from_ref(server)),
            Mode::Sentinel { sentinels, .. } => ("-sentinel", sentinels),
            Mode::Cluster { seeds } => ("-cluster", seeds),
        };
        write!(f, "redis{s}{kind}://")?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{}:{REDACTED}@", enc(u))?,
            (None, Some(_)) => write!(f, ":{REDACTED}@")?,
            (Some(u), None) => write!(f, "{}:@", enc(u))?,
            (None, None) => {}
        }
        let hosts: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
        f.write_str(&hosts.join(","))?;
        let mut query: Vec<String> = Vec::new();
        if let Mode::Sentinel {
            service_name,
            sentinel_username,
            sentinel_password,
            ..
        } = &self.mode
        {
            write!(f, "/{}", enc(service_name))?;
            if let Some(u) = sentinel_username {
                query.push(format!("sentinel_username={}", enc(u)));
            }
            if sentinel_password.is_some() {
                query.push(format!("sentinel_password={REDACTED}"));
            }
        }
        if let Some(db) = self.database {
            query.push(format!("db={db}"));
        }
        let defaults = RedisConfig::standalone("", 0);
        if self.connect_timeout != defaults.connect_timeout {
            query.push(format!(
                "connect_timeout_ms={}",
                self.connect_timeout.as_millis()
            ));
        }
        if self.command_timeout != defaults.command_timeout {
            query.push(format!(
                "command_timeout_ms={}",
                self.command_timeout.as_millis()
            ));
        }
        if self.pool_size != default_pool_size() {
            query.push(format!("pool_size={}", self.pool_size));
        }
        if let Some(t) = &self.tls {
            for (k, p) in [
                ("tls_ca", &t.ca),
                ("tls_cert", &t.client_cert),
                ("tls_key", &t.client_key),
            ] {
                if let Some(p) = p {
                    query.push(format!("{k}={}", pem(p)));
                }
            }
            if let Some(n) = &t.server_name {
                query.push(format!("tls_server_name={}", enc(n)));
            }
            if !t.hosts.is_empty() {
                let pairs: Vec<String> = t
                    .hosts
                    .iter()
                    .map(|h| format!("{}={}", h.address, h.name))
                    .collect();
                query.push(format!("tls_hosts={}", enc(&pairs.join(","))));
            }
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}
