//! TLS settings checks, from `CONFIG GET`: the protocol versions and ciphers a node admits
//! (`tls.protocols`) and whether it asks clients for a certificate (`tls.auth-clients`). The
//! certificate itself is dated by `certificate` (feature `tls`).

use super::probe::Probe;
use crate::report::{Finding, Severity};

/// Protocol versions of a `tls-protocols` value older than TLS 1.2 (empty: the default,
/// TLS 1.2 and 1.3).
pub(super) fn old_protocols(protocols: &str) -> Vec<String> {
    protocols
        .split_whitespace()
        .filter(|p| p.eq_ignore_ascii_case("TLSv1") || p.eq_ignore_ascii_case("TLSv1.1"))
        .map(str::to_string)
        .collect()
}

/// Parts of a `tls-ciphers` value (OpenSSL cipher list, TLS 1.2 and older) that admit weak
/// ciphers, or TLS 1.0 / 1.1 where enabled (`@SECLEVEL=0`: OpenSSL 3 allows those versions
/// at level 0 only). Excluded ones (`!RC4`, `-DES`) do not count.
pub(super) fn weak_ciphers(ciphers: &str) -> Vec<String> {
    const WEAK: &[&str] = &[
        "NULL", "eNULL", "aNULL", "EXPORT", "EXP", "LOW", "RC4", "DES", "3DES", "MD5", "ADH",
        "AECDH", "SSLv3", "TLSv1",
    ];
    ciphers
        .split([':', ',', ' '])
        .filter(|part| !part.is_empty() && !part.starts_with(['!', '-']))
        .map(|part| part.trim_start_matches('+'))
        .filter(|part| {
            part.to_ascii_uppercase().contains("@SECLEVEL=0")
                || part
                    .split(['-', '+', '@'])
                    .any(|c| WEAK.iter().any(|w| c.eq_ignore_ascii_case(w)))
        })
        .map(str::to_string)
        .collect()
}

/// `tls.protocols` and `tls.auth-clients` of a node that serves TLS (`tls-port` set), from
/// `CONFIG GET`; when CONFIG is refused on a TLS deployment, each says which right is missing.
pub(super) fn tls_settings(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if p.config.is_none() {
        if p.tls
            && let Some(e) = &p.config_error
        {
            out.push(p.unavailable(
                "tls.protocols",
                "config|get",
                "CONFIG GET tls-protocols tls-ciphers",
                e,
            ));
            out.push(p.unavailable(
                "tls.auth-clients",
                "config|get",
                "CONFIG GET tls-auth-clients",
                e,
            ));
        }
        return out;
    }
    if p.conf("tls-port").is_none_or(|t| t == "0" || t.is_empty()) {
        return out; // No TLS: `network.tls` says whether that matters.
    }
    let protocols = p.conf("tls-protocols").unwrap_or("");
    let ciphers = p.conf("tls-ciphers").unwrap_or("");
    let old = old_protocols(protocols);
    let weak = weak_ciphers(ciphers);
    let seen = format!(
        "tls-protocols {protocols:?}{}, tls-ciphers {ciphers:?}{}",
        if protocols.trim().is_empty() {
            " (the default: TLSv1.2 TLSv1.3)"
        } else {
            ""
        },
        if ciphers.trim().is_empty() {
            " (the default)"
        } else {
            ""
        }
    );
    out.push(if !old.is_empty() {
        p.finding(
            "tls.protocols",
            Severity::Warning,
            format!("{} enabled: broken protocol versions", old.join(" and ")),
        )
        .evidence(seen)
        .fix("CONFIG SET tls-protocols \"TLSv1.2 TLSv1.3\" (and in redis.conf); clients older than TLS 1.2 must be upgraded")
    } else if !weak.is_empty() {
        p.finding(
            "tls.protocols",
            Severity::Warning,
            format!("the cipher list admits weak ciphers ({})", weak.join(" ")),
        )
        .evidence(seen)
        .fix("remove them from tls-ciphers (CONFIG SET tls-ciphers \"\" restores OpenSSL's default), and never lower @SECLEVEL to 0")
    } else {
        p.finding(
            "tls.protocols",
            Severity::Ok,
            "only TLS 1.2 and newer are enabled",
        )
        .evidence(seen)
    });
    match p.conf("tls-auth-clients") {
        Some("no") => out.push(
            p.finding(
                "tls.auth-clients",
                Severity::Info,
                "clients are not authenticated by certificate (tls-auth-clients no): the password or ACL is the only check",
            )
            .evidence("tls-auth-clients no")
            .fix("if every client can have a certificate: CONFIG SET tls-auth-clients yes (mutual TLS), or optional while they migrate"),
        ),
        Some("optional") => out.push(
            p.finding(
                "tls.auth-clients",
                Severity::Info,
                "a client certificate is checked only when a client sends one (tls-auth-clients optional)",
            )
            .evidence("tls-auth-clients optional")
            .fix("once every client has a certificate: CONFIG SET tls-auth-clients yes"),
        ),
        Some(v) => out.push(
            p.finding(
                "tls.auth-clients",
                Severity::Ok,
                "clients must present a certificate signed by the server's CA",
            )
            .evidence(format!("tls-auth-clients {v}")),
        ),
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_protocols_and_weak_ciphers_are_found() {
        assert_eq!(old_protocols("TLSv1.1 TLSv1.2"), ["TLSv1.1"]);
        assert_eq!(old_protocols("tlsv1 TLSv1.3"), ["tlsv1"]);
        assert!(old_protocols("").is_empty());
        assert!(old_protocols("TLSv1.2 TLSv1.3").is_empty());
        assert!(weak_ciphers("").is_empty());
        assert!(weak_ciphers("HIGH:!aNULL:!MD5:-RC4").is_empty());
        assert!(weak_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384").is_empty());
        assert_eq!(weak_ciphers("DEFAULT:@SECLEVEL=0"), ["@SECLEVEL=0"]);
        assert_eq!(weak_ciphers("HIGH:RC4-SHA:+3DES"), ["RC4-SHA", "3DES"]);
        assert_eq!(weak_ciphers("DEFAULT@SECLEVEL=0"), ["DEFAULT@SECLEVEL=0"]);
        assert_eq!(weak_ciphers("ECDHE-RSA-RC4-SHA"), ["ECDHE-RSA-RC4-SHA"]);
    }
}
