//! `tls.certificate-expiry`: the certificate each node presents, read by a handshake of its
//! own (feature `tls`: rustls and x509-parser).
//!
//! The certificate probe accepts whatever chain the node presents, so that an expired or
//! misnamed certificate can still be read and dated: verifying it is the doctor's own
//! connection's job (a failure there is `node.tls`). It presents the configured client
//! certificate, as a server with `tls-auth-clients yes` requires, and stops as soon as the
//! server's certificate has arrived: it sends no command and needs no ACL right.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis_conn::{Endpoint, Pem, RedisConfig, TlsOptions};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::node::{Target, node_config};
use crate::report::{Finding, Severity};

const DAY: i64 = 86_400;
/// A certificate expiring within this many days is a warning.
pub(super) const WARNING_DAYS: i64 = 30;
/// A certificate expiring within this many days (or expired) is critical.
pub(super) const CRITICAL_DAYS: i64 = 7;

/// What the leaf certificate a node presented says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Presented {
    /// `notAfter`, in seconds since the Unix epoch.
    pub(super) not_after: i64,
    /// The subject's distinguished name (`CN=redis-1.internal`).
    pub(super) subject: String,
    /// The issuer's distinguished name.
    pub(super) issuer: String,
}

/// Accepts any chain, keeping the server's certificate: the probe dates certificates, the
/// doctor's own connection verifies them.
#[derive(Debug)]
struct Recorder {
    leaf: Mutex<Option<Vec<u8>>>,
    schemes: Vec<SignatureScheme>,
}

impl Recorder {
    fn leaf(&self) -> Option<Vec<u8>> {
        self.leaf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self
            .leaf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(end_entity.as_ref().to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

fn pem_bytes(pem: &Pem) -> Result<Vec<u8>, String> {
    match pem {
        Pem::File(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        Pem::Inline(secret) => Ok(secret.expose().as_bytes().to_vec()),
        _ => Err("a PEM source this version does not know".into()),
    }
}

/// A rustls configuration that records the server's certificate and presents the configured
/// client certificate, if any.
fn probe_config(tls: &TlsOptions, recorder: &Arc<Recorder>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone());
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&pem_bytes(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(&pem_bytes(key)?)
                .map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Runs a TLS handshake with the node at `endpoint` and returns the certificate it presented
/// (DER). The handshake is completed and closed with `close_notify` when the server lets it
/// (servers log a handshake cut short as an error); one the server refuses after sending its
/// certificate (a missing client certificate) still gives the certificate.
async fn fetch_certificate(tls: &TlsOptions, endpoint: &Endpoint) -> Result<Vec<u8>, String> {
    let provider = rustls::crypto::ring::default_provider();
    let recorder = Arc::new(Recorder {
        leaf: Mutex::new(None),
        schemes: provider
            .signature_verification_algorithms
            .supported_schemes(),
    });
    let config = probe_config(tls, &recorder)?;
    let name = tls
        .name_for(&endpoint.host)
        .unwrap_or(&endpoint.host)
        .to_string();
    let server_name =
        ServerName::try_from(name.clone()).map_err(|e| format!("server name {name:?}: {e}"))?;
    let mut conn = ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let mut tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let outcome = handshake(&mut conn, &mut tcp).await;
    if outcome.is_ok() {
        conn.send_close_notify();
        let _ = flush(&mut conn, &mut tcp).await;
    }
    let _ = tcp.shutdown().await;
    match (recorder.leaf(), outcome) {
        (Some(leaf), _) => Ok(leaf),
        (None, Err(e)) => Err(format!(
            "the handshake failed before the server's certificate: {e}"
        )),
        (None, Ok(())) => Err("the handshake ended without a server certificate".into()),
    }
}

/// Writes what rustls has to send.
async fn flush(conn: &mut ClientConnection, tcp: &mut TcpStream) -> Result<(), String> {
    while conn.wants_write() {
        let mut out = Vec::new();
        conn.write_tls(&mut out).map_err(|e| e.to_string())?;
        tcp.write_all(&out).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Drives the handshake to its end.
async fn handshake(conn: &mut ClientConnection, tcp: &mut TcpStream) -> Result<(), String> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        flush(conn, tcp).await?;
        if !conn.is_handshaking() {
            return Ok(());
        }
        let n = tcp.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection during the handshake".into());
        }
        let mut incoming = &buf[..n];
        while !incoming.is_empty() {
            conn.read_tls(&mut incoming).map_err(|e| e.to_string())?;
            if let Err(e) = conn.process_new_packets() {
                // Send the alert rustls queued, so the server knows why.
                let _ = flush(conn, tcp).await;
                return Err(e.to_string());
            }
        }
    }
}

/// The not-after date, subject and issuer of a DER certificate.
pub(super) fn parse_certificate(der: &[u8]) -> Result<Presented, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the server's certificate cannot be parsed: {e}"))?;
    Ok(Presented {
        not_after: cert.validity().not_after.timestamp(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
    })
}

/// `YYYY-MM-DDThh:mm:ssZ` (RFC 3339, UTC) for seconds since the Unix epoch.
pub(super) fn rfc3339(unix: i64) -> String {
    // Days to civil date (H. Hinnant's algorithm), proleptic Gregorian calendar.
    let (days, secs) = (unix.div_euclid(DAY), unix.rem_euclid(DAY));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `tls.certificate-expiry` for a certificate: critical when expired or expiring within
/// [`CRITICAL_DAYS`], a warning within [`WARNING_DAYS`], ok otherwise. `now` in seconds since
/// the Unix epoch.
pub(super) fn judge_expiry(target: &Target, cert: &Presented, now: i64) -> Finding {
    let left = cert.not_after - now;
    let days = left.div_euclid(DAY);
    let (severity, title) = if left <= 0 {
        (
            Severity::Critical,
            format!(
                "the server's certificate expired {} ago: clients that verify it refuse the node",
                ago(-left)
            ),
        )
    } else if days < CRITICAL_DAYS {
        (
            Severity::Critical,
            format!("the server's certificate expires in {}", ago(left)),
        )
    } else if days < WARNING_DAYS {
        (
            Severity::Warning,
            format!("the server's certificate expires in {}", ago(left)),
        )
    } else {
        (
            Severity::Ok,
            format!("the server's certificate is valid for {days} more days"),
        )
    };
    let mut f = Finding::new("tls.certificate-expiry", severity, &target.addr(), title)
        .evidence(format!(
            "not after {}, subject {}, issuer {}",
            rfc3339(cert.not_after),
            cert.subject,
            cert.issuer
        ))
        .fix(if severity == Severity::Ok {
            ""
        } else {
            "renew the certificate (same names, signed by the CA clients trust), then load it without a restart: CONFIG SET tls-cert-file <new.crt> tls-key-file <new.key> (and update redis.conf / sentinel.conf)"
        });
    f.role = target.role.name().into();
    f
}

/// `3.0 days`, `5 h`, `12 min`.
fn ago(seconds: i64) -> String {
    match seconds {
        s if s >= 2 * DAY => format!("{:.1} days", s as f64 / DAY as f64),
        s if s >= 3600 => format!("{} h", s / 3600),
        s => format!("{} min", s / 60),
    }
}

/// `tls.certificate-expiry` of one node, `None` when the doctor does not use TLS. A probe that
/// could not read the certificate is an info finding.
pub(crate) async fn certificate_expiry(
    config: &RedisConfig,
    target: &Target,
    timeout: Duration,
) -> Option<Finding> {
    let cfg = node_config(config, &target.endpoint, false, timeout);
    let tls = cfg.tls.as_ref()?;
    let fetched =
        match tokio::time::timeout(timeout, fetch_certificate(tls, &target.endpoint)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no TLS handshake within {timeout:?}")),
        };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some(match fetched.and_then(|der| parse_certificate(&der)) {
        Ok(cert) => judge_expiry(target, &cert, now),
        Err(why) => {
            let mut f = Finding::new(
                "tls.certificate-expiry",
                Severity::Info,
                &target.addr(),
                "the server's certificate could not be read: its expiry is not known",
            )
            .evidence(why);
            f.role = target.role.name().into();
            f
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeRole;

    fn target() -> Target {
        Target {
            endpoint: Endpoint {
                host: "10.0.0.1".into(),
                port: 6379,
            },
            role: NodeRole::Primary,
            marked_failed: false,
        }
    }

    #[test]
    fn dates_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn expiry_is_judged_by_days_left() {
        let now = 1_700_000_000;
        let cert = |days: i64| Presented {
            not_after: now + days * DAY + 60,
            subject: "CN=node-1.redkit.test".into(),
            issuer: "CN=test CA".into(),
        };
        let judge = |days| judge_expiry(&target(), &cert(days), now);
        assert_eq!(judge(365).severity, Severity::Ok);
        assert_eq!(judge(29).severity, Severity::Warning);
        assert_eq!(judge(20).severity, Severity::Warning);
        assert_eq!(judge(7).severity, Severity::Warning);
        assert_eq!(judge(6).severity, Severity::Critical);
        assert_eq!(judge(3).severity, Severity::Critical);
        let expired = judge(-2);
        assert_eq!(expired.severity, Severity::Critical);
        assert!(expired.title.contains("expired"), "{}", expired.title);
        let f = judge(3);
        assert!(f.title.contains("3.0 days"), "{}", f.title);
        assert!(
            f.evidence.contains(&rfc3339(now + 3 * DAY + 60))
                && f.evidence.contains("CN=node-1.redkit.test"),
            "{}",
            f.evidence
        );
        assert!(!f.remediation.is_empty());
    }
}
