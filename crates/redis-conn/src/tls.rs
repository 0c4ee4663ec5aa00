//! The TLS connector built from [`TlsOptions`]: trusted roots (a CA bundle or the system's),
//! an optional client certificate, and a certificate verifier that checks each node against
//! the name configured for its address. fred verifies a node against the address it dials,
//! and Sentinel and `CLUSTER SLOTS` hand out IPs, so without this a certificate that names
//! host names fails on every node but the seed.

use std::net::IpAddr;
use std::sync::Arc;

use fred::types::config::{TlsConfig, TlsConnector, TlsHostMapping};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{Mode, Pem, RedisConfig, TlsOptions};
use crate::error::{Error, Result};

/// Verifies each server against the name configured for the address dialled.
#[derive(Debug)]
struct NamedNodes {
    inner: Arc<WebPkiServerVerifier>,
    options: TlsOptions,
    /// A cluster's seed host name: nodes found by IP are verified against it when no name
    /// is configured for them.
    default_host: Option<String>,
}

impl NamedNodes {
    fn name_for<'a>(&self, dialled: &ServerName<'a>) -> ServerName<'a> {
        let address = match dialled {
            ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
            ServerName::DnsName(d) => d.as_ref().to_string(),
            _ => return dialled.clone(),
        };
        let configured = self
            .options
            .name_for(&address)
            .map(str::to_string)
            .or_else(|| {
                matches!(dialled, ServerName::IpAddress(_))
                    .then(|| self.default_host.clone())
                    .flatten()
            });
        configured
            .and_then(|n| ServerName::try_from(n).ok())
            .unwrap_or_else(|| dialled.clone())
    }
}

impl ServerCertVerifier for NamedNodes {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let name = self.name_for(server_name);
        self.inner
            .verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn certificates(pem: &Pem, setting: &str) -> Result<Vec<CertificateDer<'static>>> {
    let text = pem.read(setting)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::config(setting, format!("{} is not valid PEM: {e}", pem.origin())))?;
    if certs.is_empty() {
        return Err(Error::config(
            setting,
            format!("{} holds no `BEGIN CERTIFICATE` block", pem.origin()),
        ));
    }
    Ok(certs)
}

fn roots(options: &TlsOptions) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match &options.ca {
        Some(pem) => {
            for cert in certificates(pem, "TLS CA (tls_ca / REDIS_TLS_CA_FILE)")? {
                roots.add(cert).map_err(|e| {
                    Error::config(
                        "TLS CA (tls_ca / REDIS_TLS_CA_FILE)",
                        format!(
                            "{} holds a certificate that is not a usable CA: {e}",
                            pem.origin()
                        ),
                    )
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                roots.add(cert).ok();
            }
            if roots.is_empty() {
                return Err(Error::config(
                    "TLS",
                    "no system root certificates found: install ca-certificates or set tls_ca / REDIS_TLS_CA_FILE",
                ));
            }
        }
    }
    Ok(roots)
}

/// fred's TLS settings for `config`.
pub(crate) fn fred_tls(config: &RedisConfig, options: &TlsOptions) -> Result<TlsConfig> {
    options.check()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots(options)?), provider.clone())
            .build()
            .map_err(|e| Error::config("TLS CA (tls_ca / REDIS_TLS_CA_FILE)", e.to_string()))?;
    let default_host = match &config.mode {
        Mode::Cluster { seeds } => seeds
            .first()
            .filter(|s| s.host.parse::<IpAddr>().is_err())
            .map(|s| s.host.clone()),
        _ => None,
    };
    let verifier = Arc::new(NamedNodes {
        inner,
        options: options.clone(),
        default_host,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("TLS", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let client = match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(
                cert,
                "TLS client certificate (tls_cert / REDIS_TLS_CERT_FILE)",
            )?;
            let setting = "TLS client key (tls_key / REDIS_TLS_KEY_FILE)";
            let key_pem = key.read(setting)?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                Error::config(
                    setting,
                    format!("{} holds no usable private key: {e}", key.origin()),
                )
            })?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                Error::config(
                    setting,
                    format!("the key does not fit the client certificate or is unsupported: {e}"),
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConfig {
        connector: TlsConnector::from(client),
        hostnames: TlsHostMapping::None,
    })
}
