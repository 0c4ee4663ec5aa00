//! Throwaway certificates for TLS topologies, made at topology start with `rcgen` (no network,
//! no `openssl` binary): one CA per topology, one certificate per node naming its address and
//! its host names, one client certificate for mutual TLS, and the rustls client configuration
//! the harness itself connects with.
//!
//! Every node certificate names `<node>.redkit.test` and `nodes.redkit.test` (no DNS resolves
//! them: they exist to test host-name verification through a host mapping) and, unless
//! [`TlsSpec::ip_sans`] is off, the node's IP address.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::write_file;
use crate::resp::ConnTls;

/// The domain every node host name lives under (`primary.redkit.test`, `nodes.redkit.test`).
pub const TEST_DOMAIN: &str = "redkit.test";

/// `tls-auth-clients`: whether servers ask clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAuth {
    /// `no`: clients need no certificate.
    Off,
    /// `optional`: a certificate is checked when a client sends one.
    Optional,
    /// `yes`: mutual TLS, a client without a CA-signed certificate is refused.
    Required,
}

impl ClientAuth {
    fn setting(self) -> &'static str {
        match self {
            ClientAuth::Off => "no",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "yes",
        }
    }
}

/// How a TLS topology is set up: servers listen on TLS only (`port 0`, `tls-port`), with TLS
/// replication, TLS cluster bus and TLS sentinels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSpec {
    /// `tls-auth-clients` (default [`ClientAuth::Off`]).
    pub client_auth: ClientAuth,
    /// Whether node certificates name the node's IP address too (default `true`). Off, only
    /// host names are named, as managed services do: clients must map addresses to names.
    pub ip_sans: bool,
    /// How long node certificates are valid from now (default 365 days).
    pub valid_for: Duration,
}

impl Default for TlsSpec {
    fn default() -> Self {
        TlsSpec {
            client_auth: ClientAuth::Off,
            ip_sans: true,
            valid_for: Duration::from_secs(365 * 86_400),
        }
    }
}

impl TlsSpec {
    /// Mutual TLS: servers require a client certificate.
    ///
    /// ```
    /// let tls = testkit::TlsSpec::mutual();
    /// assert_eq!(tls.client_auth, testkit::ClientAuth::Required);
    /// ```
    pub fn mutual() -> TlsSpec {
        TlsSpec {
            client_auth: ClientAuth::Required,
            ..TlsSpec::default()
        }
    }
}

/// Where a TLS topology's client-side files are: the CA to trust and a CA-signed client
/// certificate and key (for mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// The topology's CA certificate (PEM).
    pub ca: PathBuf,
    /// A client certificate signed by that CA (PEM).
    pub client_cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// The URL query that makes redis-conn use these files:
    /// `tls_ca=...&tls_cert=...&tls_key=...` (without the leading `?`).
    ///
    /// ```
    /// let files = testkit::TlsFiles { ca: "/t/ca.crt".into(), client_cert: "/t/c.crt".into(), client_key: "/t/c.key".into() };
    /// assert_eq!(files.query(true), "tls_ca=/t/ca.crt&tls_cert=/t/c.crt&tls_key=/t/c.key");
    /// assert_eq!(files.query(false), "tls_ca=/t/ca.crt");
    /// ```
    pub fn query(&self, with_client_cert: bool) -> String {
        let mut q = format!("tls_ca={}", self.ca.display());
        if with_client_cert {
            q.push_str(&format!(
                "&tls_cert={}&tls_key={}",
                self.client_cert.display(),
                self.client_key.display()
            ));
        }
        q
    }
}

/// The CA of one topology: signs node and client certificates.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) files: TlsFiles,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("files", &self.files)
            .finish()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(format!("{what}: {e}"))
}

/// How long a node certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From an hour ago until this long from now.
    For(Duration),
    /// Valid for a month until yesterday: expired.
    Expired,
}

fn validity(params: &mut CertificateParams, valid: Validity) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    match valid {
        Validity::For(d) => {
            params.not_before = now - time::Duration::hours(1);
            params.not_after =
                now + time::Duration::try_from(d).map_err(|e| err("certificate validity", e))?;
        }
        Validity::Expired => {
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - time::Duration::days(1);
        }
    }
    Ok(())
}

impl Authority {
    /// A new CA, with a client certificate, written under `dir/tls`.
    pub(crate) fn create(dir: &Path, run_id: &str) -> Result<Authority> {
        let tls_dir = dir.join("tls");
        std::fs::create_dir_all(&tls_dir)
            .map_err(|e| err(&format!("cannot create {}", tls_dir.display()), e))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA parameters", e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("redkit test CA {run_id}"));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        validity(
            &mut params,
            Validity::For(Duration::from_secs(3650 * 86_400)),
        )?;
        let key = KeyPair::generate().map_err(|e| err("CA key", e))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| err("CA certificate", e))?;
        let ca = tls_dir.join("ca.crt");
        write_file(&ca, &cert.pem())?;
        let issuer = Issuer::new(params, key);
        let authority = Authority {
            issuer,
            files: TlsFiles {
                ca,
                client_cert: tls_dir.join("client.crt"),
                client_key: tls_dir.join("client.key"),
            },
        };
        let (cert, key) = authority.sign(
            "redkit-test-client",
            &[],
            None,
            false,
            true,
            Validity::For(Duration::from_secs(365 * 86_400)),
        )?;
        write_file(&authority.files.client_cert, &cert)?;
        write_file(&authority.files.client_key, &key)?;
        Ok(authority)
    }

    /// A certificate and key (PEM) for `common_name`, naming `dns` and `ip`.
    fn sign(
        &self,
        common_name: &str,
        dns: &[String],
        ip: Option<IpAddr>,
        server: bool,
        client: bool,
        valid: Validity,
    ) -> Result<(String, String)> {
        let mut names: Vec<String> = dns.to_vec();
        if let Some(ip) = ip {
            names.push(ip.to_string());
        }
        let mut params =
            CertificateParams::new(names).map_err(|e| err("certificate parameters", e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        validity(&mut params, valid)?;
        let key = KeyPair::generate().map_err(|e| err("key", e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| err("certificate", e))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Writes `server.crt` / `server.key` / `ca.crt` for node `name` into `node_dir/tls`. The
    /// certificate also serves as the node's client certificate (replication, cluster bus,
    /// sentinel links), so it carries both purposes.
    pub(crate) fn node_files(
        &self,
        node_dir: &Path,
        name: &str,
        ip: IpAddr,
        spec: &TlsSpec,
        valid: Validity,
    ) -> Result<()> {
        self.node_file_pair(node_dir, name, ip, spec, valid, "server.crt", "server.key")
    }

    /// Like `node_files`, under other file names (a re-issued certificate).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn node_file_pair(
        &self,
        node_dir: &Path,
        name: &str,
        ip: IpAddr,
        spec: &TlsSpec,
        valid: Validity,
        cert_file: &str,
        key_file: &str,
    ) -> Result<()> {
        let dir = node_dir.join("tls");
        std::fs::create_dir_all(&dir)
            .map_err(|e| err(&format!("cannot create {}", dir.display()), e))?;
        let dns = vec![
            format!("{name}.{TEST_DOMAIN}"),
            format!("nodes.{TEST_DOMAIN}"),
        ];
        let ip = spec.ip_sans.then_some(ip);
        let (cert, key) = self.sign(
            &format!("{name}.{TEST_DOMAIN}"),
            &dns,
            ip,
            true,
            true,
            valid,
        )?;
        write_file(&dir.join(cert_file), &cert)?;
        write_file(&dir.join(key_file), &key)?;
        let ca = std::fs::read_to_string(&self.files.ca)
            .map_err(|e| err(&format!("cannot read {}", self.files.ca.display()), e))?;
        write_file(&dir.join("ca.crt"), &ca)
    }
}

/// The `redis-server` arguments (or, for sentinels, config lines) of a TLS node whose files
/// are in `tls_dir` as the server sees it.
pub(crate) fn server_settings(port: u16, tls_dir: &str, spec: &TlsSpec) -> Vec<(String, String)> {
    [
        ("port", "0".to_string()),
        ("tls-port", port.to_string()),
        ("tls-cert-file", format!("{tls_dir}/server.crt")),
        ("tls-key-file", format!("{tls_dir}/server.key")),
        ("tls-ca-cert-file", format!("{tls_dir}/ca.crt")),
        ("tls-auth-clients", spec.client_auth.setting().to_string()),
        ("tls-replication", "yes".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What the harness connects to TLS nodes with: their CA, its client certificate, and the name
/// to verify (a host name when node certificates name no IP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HarnessTls {
    pub(crate) files: TlsFiles,
    pub(crate) server_name: Option<String>,
}

impl HarnessTls {
    /// A rustls client configuration trusting the topology's CA and presenting its client
    /// certificate.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.files.ca)
            .map_err(|e| err(&format!("{}", self.files.ca.display()), e))?
        {
            roots
                .add(cert.map_err(|e| err("CA certificate", e))?)
                .map_err(|e| err("CA certificate", e))?;
        }
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&self.files.client_cert)
                .map_err(|e| err(&format!("{}", self.files.client_cert.display()), e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| err("client certificate", e))?;
        let key = PrivateKeyDer::from_pem_file(&self.files.client_key)
            .map_err(|e| err("client key", e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS versions", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| err("client certificate", e))?;
        Ok(Arc::new(config))
    }

    /// The name to verify a node at `ip` against.
    pub(crate) fn server_name(&self, ip: IpAddr) -> ServerName<'static> {
        match &self.server_name {
            Some(name) => ServerName::try_from(name.clone()).unwrap_or(ServerName::from(ip)),
            None => ServerName::from(ip),
        }
    }

    /// The harness's TLS settings for a node at `ip` (the client configuration is built once
    /// per CA file and shared).
    pub(crate) fn conn_tls(&self, ip: IpAddr) -> Result<ConnTls> {
        static CONFIGS: Mutex<Vec<(TlsFiles, Arc<rustls::ClientConfig>)>> = Mutex::new(Vec::new());
        let mut configs = CONFIGS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let config = match configs.iter().find(|(f, _)| *f == self.files) {
            Some((_, c)) => c.clone(),
            None => {
                let c = self.client_config()?;
                configs.push((self.files.clone(), c.clone()));
                c
            }
        };
        Ok(ConnTls {
            config,
            server_name: self.server_name(ip),
        })
    }
}
