//! The user audit (`ACL LIST`) and weak passwords (`auth.weak-password`).

use fred::types::Value;

use super::probe::{Probe, config_get, text};
use crate::node::{call, is_denied};
use crate::passwords::{self, Weakness};
use crate::report::{Finding, Severity};

/// What the user audit found out.
pub(super) struct AclAudit {
    pub(super) findings: Vec<Finding>,
    /// The default user is on and needs no password.
    pub(super) default_nopass: bool,
    /// The user we are connected as.
    pub(super) whoami: String,
    /// Each enabled user and the SHA-256 hashes of its passwords (`None`: ACL unreadable).
    pub(super) hashes: Option<Vec<(String, Vec<String>)>>,
}

/// One `ACL LIST` line (`user <name> <rules…>`), as far as the audit reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclUser {
    /// The user's name (`?` when the line has none).
    pub(crate) name: String,
    /// `on`: the user can log in.
    pub(crate) on: bool,
    /// `nopass`: any password (or none) logs in.
    pub(crate) nopass: bool,
    /// `+@all` / `allcommands`.
    pub(crate) all_commands: bool,
    /// `-@dangerous`.
    pub(crate) minus_dangerous: bool,
    /// `~*` / `allkeys`.
    pub(crate) all_keys: bool,
    /// The SHA-256 password hashes (`#<hex>`), in order.
    pub(crate) hashes: Vec<String>,
}

/// Parses one `ACL LIST` line. Only the words after the name are rules: a user may be called
/// `nopass` or `on`.
pub(crate) fn parse_acl_user(rule: &str) -> AclUser {
    let all: Vec<&str> = rule.split_whitespace().collect();
    let words = all.get(2..).unwrap_or_default();
    AclUser {
        name: all.get(1).copied().unwrap_or("?").to_string(),
        on: words.contains(&"on"),
        nopass: words.contains(&"nopass"),
        all_commands: words.contains(&"+@all") || words.contains(&"allcommands"),
        minus_dangerous: words.contains(&"-@dangerous"),
        all_keys: words.contains(&"~*") || words.contains(&"allkeys"),
        hashes: words
            .iter()
            .filter_map(|w| w.strip_prefix('#'))
            .map(str::to_string)
            .collect(),
    }
}

/// The user audit (`ACL LIST`): findings about users without a password or with broad
/// rights, and what the weak-password check needs.
pub(super) async fn acl_audit(p: &Probe<'_>) -> AclAudit {
    let mut out = Vec::new();
    // Who are we, and what does the default user allow? Without ACL WHOAMI, the user we
    // logged in as.
    let logged_in = || p.username.clone().unwrap_or_else(|| "default".into());
    let whoami = match call(p.client, "ACL", vec!["WHOAMI".into()]).await {
        Ok(v) => text(&v).unwrap_or_else(logged_in),
        Err(e) => {
            if is_denied(&e) {
                out.push(
                    p.unavailable("acl.unavailable", "acl|whoami", "ACL WHOAMI", &e)
                        .evidence(format!(
                            "ACL WHOAMI: {} (the checks assume the user logged in as)",
                            e.details()
                        )),
                );
            }
            logged_in()
        }
    };
    let users: Result<Vec<String>, Option<fred::error::Error>> =
        match call(p.client, "ACL", vec!["LIST".into()]).await {
            Ok(Value::Array(a)) => Ok(a.iter().filter_map(text).collect()),
            Ok(_) => Err(None),
            Err(e) => Err(Some(e)),
        };
    let mut default_nopass = false;
    let mut hashes = Vec::new();
    match &users {
        Ok(users) => {
            for rule in users {
                let AclUser {
                    name,
                    on,
                    nopass,
                    all_commands: all_cmds,
                    minus_dangerous,
                    all_keys,
                    hashes: user_hashes,
                } = parse_acl_user(rule);
                if !on {
                    continue;
                }
                hashes.push((name.clone(), user_hashes));
                if nopass {
                    if name == "default" {
                        default_nopass = true;
                    }
                    out.push(
                        p.finding(
                            "auth.nopass",
                            Severity::Critical,
                            format!("user {name:?} needs no password"),
                        )
                        .evidence(format!("ACL user {name} is on with nopass (anyone who connects is {name})"))
                        .fix("set a password (ACL SETUSER <user> resetpass >secret) or `requirepass`; disable unused users"),
                    );
                } else if all_cmds && all_keys && !minus_dangerous {
                    out.push(
                        p.finding(
                            "acl.broad-user",
                            Severity::Warning,
                            format!("user {name:?} may run every command on every key"),
                        )
                        .evidence(format!("ACL user {name}: +@all ~* without -@dangerous"))
                        .fix(
                            "grant applications only what they need, e.g. +@all -@dangerous ~app:*",
                        ),
                    );
                }
            }
            if !out.iter().any(|f| f.check == "auth.nopass") {
                out.push(p.finding(
                    "auth.nopass",
                    Severity::Ok,
                    "every enabled user needs a password",
                ));
            }
        }
        Err(Some(e)) if is_denied(e) => out.push(
            p.finding(
                "acl.unavailable",
                Severity::Info,
                "the ACL cannot be read by this user, needs +acl|list: users and their passwords were not audited",
            )
            .evidence(format!("ACL LIST refused for {whoami}: {}", e.details()))
            .fix("grant +acl|list to the diagnosing user (redis_diag::acl_rule() has every right the checks need)"),
        ),
        Err(e) => out.push(
            p.finding(
                "acl.unavailable",
                Severity::Info,
                "the ACL cannot be read by this user: users were not audited",
            )
            .evidence(match e {
                Some(e) => format!("ACL LIST failed for {whoami}: {e}"),
                None => format!("ACL LIST gave no list for {whoami}"),
            }),
        ),
    }
    AclAudit {
        findings: out,
        default_nopass,
        whoami,
        hashes: users.is_ok().then_some(hashes),
    }
}

/// `auth.weak-password`: well-known passwords (critical: scanners try them first, so they are
/// as good as none) among the enabled users' password hashes, in `requirepass` and in the
/// password this diagnosis was given (when the ACL cannot be read); a `requirepass` shorter
/// than [`passwords::MIN_LENGTH`] (warning). Evidence says what matched, never the password.
pub(super) fn weak_passwords(
    p: &Probe<'_>,
    audit: &AclAudit,
    requirepass: Option<Option<Weakness>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut compared = 0;
    let mut default_flagged = false;
    for (user, hashes) in audit.hashes.iter().flatten() {
        if hashes.is_empty() {
            continue;
        }
        compared += 1;
        if hashes.iter().any(|h| passwords::is_well_known_hash(h)) {
            default_flagged |= user == "default";
            out.push(
                p.finding(
                    "auth.weak-password",
                    Severity::Critical,
                    format!("user {user:?} has a well-known password"),
                )
                .evidence(format!(
                    "a password of ACL user {user} matches a well-known password (compared by its SHA-256 hash)"
                ))
                .fix(if user == "default" {
                    "set requirepass (or ACL SETUSER default resetpass >…) to a long random password, e.g. from `openssl rand -base64 32`, and update the clients".to_string()
                } else {
                    format!("ACL SETUSER {user} resetpass >… with a long random password, e.g. from `openssl rand -base64 32`, and update its clients")
                }),
            );
        }
    }
    match requirepass {
        Some(Some(Weakness::WellKnown)) if !default_flagged => out.push(
            p.finding(
                "auth.weak-password",
                Severity::Critical,
                "requirepass is a well-known password",
            )
            .evidence("requirepass matches a well-known password")
            .fix("set requirepass to a long random password (e.g. from `openssl rand -base64 32`) and update the clients"),
        ),
        Some(Some(Weakness::Short(n))) => out.push(
            p.finding(
                "auth.weak-password",
                Severity::Warning,
                "requirepass is short enough to be brute-forced",
            )
            .evidence(format!(
                "requirepass is {n} characters long (under {})",
                passwords::MIN_LENGTH
            ))
            .fix("set requirepass to a long random password (e.g. from `openssl rand -base64 32`) and update the clients"),
        ),
        _ => {}
    }
    if requirepass.is_some() {
        compared += 1;
    }
    if audit.hashes.is_none() && p.password_well_known {
        compared += 1;
        out.push(
            p.finding(
                "auth.weak-password",
                Severity::Critical,
                format!("user {:?} has a well-known password", audit.whoami),
            )
            .evidence(format!(
                "the password this diagnosis logged in with (user {}) matches a well-known password",
                audit.whoami
            ))
            .fix("give the user a long random password (e.g. from `openssl rand -base64 32`) and update its clients"),
        );
    }
    if out.is_empty() && compared > 0 {
        out.push(
            p.finding(
                "auth.weak-password",
                Severity::Ok,
                "no well-known or short password found",
            )
            .evidence(format!(
                "{} password sources compared with {} well-known passwords",
                compared,
                passwords::WELL_KNOWN.len()
            )),
        );
    }
    out
}

/// `requirepass` judged: `None` when CONFIG is unreadable or it is not set, `Some(None)` when
/// it is fine. The value itself goes no further than this function.
pub(super) async fn requirepass(p: &Probe<'_>) -> Option<Option<Weakness>> {
    p.config.as_ref()?;
    let pass = config_get(p.client, &["requirepass"]).await.ok()?;
    pass.get("requirepass")
        .filter(|v| !v.is_empty())
        .map(|v| passwords::judge(v))
}
