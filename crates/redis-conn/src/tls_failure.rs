//! [`explain_tls_failure`]: what a TLS handshake failure means and how to fix it, from the
//! driver's message. Plain text work, so it is there with or without the `tls` feature (the
//! doctor words its own probes' findings with it).

use crate::config::TlsOptions;

/// What a TLS failure means and how to fix it, from the driver's (rustls') message: an
/// untrusted CA, an expired certificate, a name it does not carry, a missing or refused client
/// certificate, or a port that does not speak TLS. `None` when the message is none of these.
/// [`RedisClient::connect`](crate::RedisClient::connect) puts this in [`Error::Tls`](crate::Error::Tls); tools
/// that make their own handshakes (the doctor's probes) can word their findings the same way.
///
/// ```
/// let why = redis_conn::explain_tls_failure("invalid peer certificate: UnknownIssuer", &Default::default());
/// assert!(why.unwrap().contains("tls_ca"));
/// assert!(redis_conn::explain_tls_failure("connection refused", &Default::default()).is_none());
/// ```
pub fn explain_tls_failure(details: &str, options: &TlsOptions) -> Option<String> {
    let d = details;
    let has = |s: &str| d.contains(s);
    Some(if has("UnknownIssuer") || has("unknown issuer") {
        "the server's certificate is not signed by a CA this client trusts: set tls_ca / REDIS_TLS_CA_FILE to the CA bundle that signed it".into()
    } else if has("Expired") || has("expired") {
        "the server's certificate has expired: renew it (or check this machine's clock)".into()
    } else if has("NotYetValid") {
        "the server's certificate is not valid yet: check this machine's clock".into()
    } else if has("NotValidForName") {
        "the server's certificate does not name the address dialled: set tls_server_name / REDIS_TLS_SERVER_NAME, or tls_hosts / REDIS_TLS_HOSTS (address=name), to the name it carries".into()
    } else if has("CertificateRequired")
        || (options.client_cert.is_none()
            && (has("HandshakeFailure") || has("BadCertificate") || has("AlertReceived")))
    {
        "the server requires a client certificate (tls-auth-clients yes): set tls_cert and tls_key (REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE)".into()
    } else if has("BadCertificate") || has("UnknownCA") || has("DecryptError") {
        "the server refused the client certificate: it must be signed by a CA in the server's tls-ca-cert-file".into()
    } else if has("InvalidContentType")
        || has("CorruptMessage")
        || has("corrupt message")
        || has("InvalidMessage")
    {
        "the server does not speak TLS on this port: use redis:// (or the server's tls-port)".into()
    } else {
        return None;
    })
}
