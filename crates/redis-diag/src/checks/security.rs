//! Security checks of one node: passwords and users (see `auth`), protected mode and bind,
//! TLS (see `tls`), DEBUG / MODULE, protected configs, dangerous commands (see `commands`), suspicious
//! files, replication source.

use super::auth::{AclAudit, acl_audit, requirepass, weak_passwords};
use super::commands::dangerous_commands;
use super::probe::Probe;
use super::tls::tls_settings;
use crate::report::{Finding, Severity};

/// Whether every address in a `bind` value is loopback (an empty value means all
/// interfaces).
pub(super) fn loopback_only(bind: &str) -> bool {
    let addrs: Vec<&str> = bind.split_whitespace().collect();
    !addrs.is_empty()
        && addrs.iter().all(|a| {
            let a = a.trim_start_matches('-');
            a == "localhost" || a == "::1" || a.starts_with("127.")
        })
}

/// A `dir` / `dbfilename` an attacker would pick to plant files through `CONFIG SET`.
pub(super) fn suspicious_path(dir: &str, file: &str) -> bool {
    let dir = dir.trim_end_matches('/').to_ascii_lowercase();
    let file = file.to_ascii_lowercase();
    let under = |root: &str| dir == root || dir.starts_with(&format!("{root}/"));
    let dir_bad = dir.split('/').any(|c| c == ".ssh")
        || [
            "/etc",
            "/var/spool/cron",
            "/var/www",
            "/usr/share/nginx",
            "/root",
            "/boot",
        ]
        .iter()
        .any(|r| under(r));
    let file_bad = file == "authorized_keys"
        || file == "root"
        || file.starts_with("crontab")
        || [".php", ".jsp", ".sh", ".py"]
            .iter()
            .any(|e| file.ends_with(e));
    dir_bad || file_bad
}

pub(super) async fn security_checks(p: &Probe<'_>) -> Vec<Finding> {
    let audit = acl_audit(p).await;
    let requirepass = requirepass(p).await;
    let weak = weak_passwords(p, &audit, requirepass);
    let AclAudit {
        findings: mut out,
        mut default_nopass,
        whoami,
        ..
    } = audit;
    out.extend(weak);
    // Without a readable ACL: connected without a password, as "default", means it has none.
    if p.password_less && whoami == "default" && !default_nopass {
        default_nopass = true;
        out.push(
            p.finding("auth.nopass", Severity::Critical, "connected without a password")
                .evidence("the default user accepted a connection that sent no password")
                .fix("set `requirepass` or give the default user a password (ACL SETUSER default resetpass >secret)"),
        );
    }

    // Network exposure.
    if let (Some(pm), Some(bind)) = (p.conf("protected-mode"), p.conf("bind")) {
        let exposed = !loopback_only(bind);
        if pm == "no" && exposed {
            let severity = if default_nopass {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(
                p.finding(
                    "network.protected-mode",
                    severity,
                    "protected mode is off and the server listens beyond loopback",
                )
                .evidence(format!("protected-mode no, bind {bind:?}{}", if default_nopass { ", default user without password" } else { "" }))
                .fix("turn protected-mode on, bind to the interfaces that need it, require a password, firewall the port"),
            );
        } else {
            out.push(
                p.finding(
                    "network.protected-mode",
                    Severity::Ok,
                    "not exposed by protected-mode and bind",
                )
                .evidence(format!("protected-mode {pm}, bind {bind:?}")),
            );
        }
        let tls = p.conf("tls-port").is_some_and(|t| t != "0");
        if exposed && !tls {
            out.push(
                p.finding(
                    "network.tls",
                    Severity::Warning,
                    "no TLS while listening beyond loopback: passwords and data cross the network in clear",
                )
                .evidence(format!("tls-port {}, bind {bind:?}", p.conf("tls-port").unwrap_or("0")))
                .fix("enable tls-port (and tls-replication / tls-cluster), or keep the traffic on a private network"),
            );
        }
    }

    out.extend(tls_settings(p));

    // Debug and module commands.
    for (param, what) in [
        ("enable-debug-command", "DEBUG"),
        ("enable-module-command", "MODULE"),
    ] {
        match p.conf(param) {
            Some("yes") => out.push(
                p.finding(
                    &format!("config.{param}"),
                    Severity::Critical,
                    format!("{what} is enabled for every connection"),
                )
                .evidence(format!("{param} yes"))
                .fix(format!("set {param} no (or local) in redis.conf")),
            ),
            Some(v) => out.push(
                p.finding(
                    &format!("config.{param}"),
                    Severity::Ok,
                    format!("{what} is not enabled remotely"),
                )
                .evidence(format!("{param} {v}")),
            ),
            None => {}
        }
    }

    // CONFIG SET of protected settings (dir, dbfilename …): the classic file-planting path.
    match p.conf("enable-protected-configs") {
        Some("yes") => out.push(
            p.finding(
                "config.enable-protected-configs",
                Severity::Critical,
                "protected settings (dir, dbfilename, …) can be changed by every connection",
            )
            .evidence("enable-protected-configs yes")
            .fix("set enable-protected-configs no (or local) in redis.conf"),
        ),
        Some(v) => out.push(
            p.finding(
                "config.enable-protected-configs",
                Severity::Ok,
                "protected settings cannot be changed remotely",
            )
            .evidence(format!("enable-protected-configs {v}")),
        ),
        None => {}
    }

    // Where RDB files are written.
    if let (Some(dir), Some(file)) = (p.conf("dir"), p.conf("dbfilename"))
        && suspicious_path(dir, file)
    {
        out.push(
            p.finding(
                "files.suspicious-dir",
                Severity::Critical,
                "the RDB file is written where an attacker would plant one",
            )
            .evidence(format!("dir {dir:?}, dbfilename {file:?}"))
            .fix("restore dir / dbfilename, look for planted files (authorized_keys, crontabs), rotate credentials; deny CONFIG"),
        );
    }

    // An unexpected replication source.
    if p.role == "replica" && p.info.contains_key("master_host") {
        out.push(
            p.finding(
                "replication.source",
                Severity::Info,
                "this node replicates from another",
            )
            .evidence(format!(
                "master {}:{}",
                p.info.get("master_host").map(String::as_str).unwrap_or("?"),
                p.info.get("master_port").map(String::as_str).unwrap_or("?")
            ))
            .fix("if this node is not meant to be a replica, someone ran REPLICAOF: investigate"),
        );
    }

    out.extend(dangerous_commands(p, &whoami).await);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_are_recognised() {
        assert!(loopback_only("127.0.0.1 -::1"));
        assert!(loopback_only("127.0.0.1"));
        assert!(!loopback_only("0.0.0.0"));
        assert!(!loopback_only("* -::*"));
        assert!(!loopback_only("127.0.0.1 10.0.0.5"));
        assert!(!loopback_only(""));
    }

    #[test]
    fn suspicious_rdb_locations_are_flagged() {
        assert!(suspicious_path("/root/.ssh", "authorized_keys"));
        assert!(suspicious_path("/var/spool/cron", "root"));
        assert!(!suspicious_path("/var/lib/redis", "dump.rdb"));
        assert!(!suspicious_path("/data/shards", "dump.shard1.rdb"));
        assert!(!suspicious_path("/rootfs/redis", "dump.rdb"));
        assert!(suspicious_path("/etc", "passwd"));
        assert!(suspicious_path("/var/www/html", "x.php"));
    }
}
