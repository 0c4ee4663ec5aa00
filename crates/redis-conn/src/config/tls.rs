//! TLS settings: which CAs to trust, a client certificate for mutual TLS, and the name to
//! verify each node's certificate against ([`TlsOptions`]).

use std::fmt;
use std::path::PathBuf;

use super::secret::Secret;
use crate::error::{Error, Result};

/// PEM text, from a file or given inline (e.g. the content of an environment variable).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pem {
    /// A file holding one or more PEM blocks.
    File(PathBuf),
    /// PEM blocks themselves. Shown as `***` by `Debug`: it may be a private key.
    Inline(Secret),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(p) => write!(f, "File({})", p.display()),
            Pem::Inline(_) => f.write_str("Inline(***)"),
        }
    }
}

// Read by the TLS connector (feature `tls`) and by the doctor's certificate probe.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
impl Pem {
    /// Where the PEM comes from, for messages (`the file /etc/ca.pem`, `inline PEM`).
    pub(crate) fn origin(&self) -> String {
        match self {
            Pem::File(p) => format!("the file {}", p.display()),
            Pem::Inline(_) => "inline PEM".to_string(),
        }
    }

    /// The PEM text.
    pub(crate) fn read(&self, setting: &str) -> Result<Vec<u8>> {
        match self {
            Pem::File(p) => std::fs::read(p)
                .map_err(|e| Error::config(setting, format!("cannot read {}: {e}", p.display()))),
            Pem::Inline(s) => Ok(s.expose().as_bytes().to_vec()),
        }
    }
}

/// One entry of [`TlsOptions::hosts`]: a node reached at `address` (as Sentinel or
/// `CLUSTER SLOTS` report it, usually an IP) presents a certificate for `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName {
    /// The address as the client dials it (`10.0.0.12`).
    pub address: String,
    /// The name its certificate carries (`redis-2.internal`).
    pub name: String,
}

/// How to verify servers and identify the client over TLS. Every field is optional: the
/// default verifies against the system's root certificates and the address dialled.
///
/// Certificates that name host names while Sentinel and Cluster hand out IPs (most managed
/// services and hardened self-hosted set-ups) need a name to verify against: one for every
/// node ([`TlsOptions::server_name`]) or one per address ([`TlsOptions::hosts`]). A cluster
/// whose seed is a host name is verified against that name when neither is set. Names are
/// matched by address only, not port: nodes sharing an IP share a name.
///
/// ```
/// use redis_conn::{Pem, RedisConfig, TlsOptions};
/// let mut cfg = RedisConfig::from_url(
///     "rediss-cluster://app:pw@10.0.0.11:6379?tls_ca=/etc/redis/ca.pem&tls_hosts=10.0.0.11=redis-1.internal,10.0.0.12=redis-2.internal",
/// ).unwrap();
/// let tls = cfg.tls.as_ref().unwrap();
/// assert_eq!(tls.ca, Some(Pem::File("/etc/redis/ca.pem".into())));
/// assert_eq!(tls.name_for("10.0.0.12"), Some("redis-2.internal"));
///
/// // Or in code: mutual TLS with a client certificate.
/// cfg.tls = Some(
///     TlsOptions::default()
///         .ca_file("/etc/redis/ca.pem")
///         .client_cert_files("/etc/redis/client.crt", "/etc/redis/client.key"),
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// CA certificates to trust instead of the system's roots (`tls_ca`, `REDIS_TLS_CA_FILE`).
    pub ca: Option<Pem>,
    /// Client certificate chain for mutual TLS (`tls_cert`, `REDIS_TLS_CERT_FILE`).
    pub client_cert: Option<Pem>,
    /// Its private key (`tls_key`, `REDIS_TLS_KEY_FILE`).
    pub client_key: Option<Pem>,
    /// Verify every node against this name (`tls_server_name`, `REDIS_TLS_SERVER_NAME`).
    pub server_name: Option<String>,
    /// Verify the node at each address against its own name (`tls_hosts=ip=name,...`,
    /// `REDIS_TLS_HOSTS`); addresses not listed fall back to `server_name`, then to the
    /// address itself.
    pub hosts: Vec<HostName>,
}

impl TlsOptions {
    /// Trusts the CA certificates in this PEM file instead of the system's roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(Pem::File(path.into()));
        self
    }

    /// Presents this certificate chain and key (PEM files) to servers that ask for one.
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(Pem::File(cert.into()));
        self.client_key = Some(Pem::File(key.into()));
        self
    }

    /// Verifies every node's certificate against `name`.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Verifies the node at `address` against `name`.
    pub fn host(mut self, address: impl Into<String>, name: impl Into<String>) -> Self {
        self.hosts.push(HostName {
            address: address.into(),
            name: name.into(),
        });
        self
    }

    /// The name the certificate of the node at `address` must carry, when one is configured.
    ///
    /// ```
    /// let tls = redis_conn::TlsOptions::default().host("10.0.0.1", "a.internal").server_name("all.internal");
    /// assert_eq!(tls.name_for("10.0.0.1"), Some("a.internal"));
    /// assert_eq!(tls.name_for("10.0.0.2"), Some("all.internal"));
    /// ```
    pub fn name_for(&self, address: &str) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.address.eq_ignore_ascii_case(address))
            .map(|h| h.name.as_str())
            .or(self.server_name.as_deref())
    }

    /// Checks the combination: a certificate needs its key and the other way round.
    pub(crate) fn check(&self) -> Result<()> {
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => Err(Error::config(
                "TLS client key",
                "a client certificate was given without its key: set tls_key / REDIS_TLS_KEY_FILE",
            )),
            (None, Some(_)) => Err(Error::config(
                "TLS client certificate",
                "a client key was given without its certificate: set tls_cert / REDIS_TLS_CERT_FILE",
            )),
            _ => Ok(()),
        }
    }
}

/// Parses `ip=name,ip=name` (for `tls_hosts` and `REDIS_TLS_HOSTS`).
///
/// ```
/// let hosts = redis_conn::parse_host_names("10.0.0.1=a.internal, 10.0.0.2=b.internal", "REDIS_TLS_HOSTS").unwrap();
/// assert_eq!(hosts[1].name, "b.internal");
/// assert!(redis_conn::parse_host_names("10.0.0.1", "REDIS_TLS_HOSTS").is_err());
/// ```
pub fn parse_host_names(text: &str, setting: &str) -> Result<Vec<HostName>> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((address, name)) = pair.split_once('=') else {
            return Err(Error::config(
                setting,
                format!("{pair:?} is not address=name: expected e.g. 10.0.0.12=redis-2.internal"),
            ));
        };
        let (address, name) = (address.trim(), name.trim());
        if address.is_empty() || name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Error::config(
                setting,
                format!(
                    "{pair:?} is not address=name: both sides must be non-empty, without spaces"
                ),
            ));
        }
        out.push(HostName {
            address: address.to_string(),
            name: name.to_string(),
        });
    }
    Ok(out)
}
