//! Dangerous commands: usable, renamed, disabled or denied, told apart without running them
//! (`COMMAND INFO` × `COMMAND LIST` × `ACL DRYRUN`).

use fred::types::Value;

use super::probe::{Probe, text};
use crate::node::{call, is_denied};
use crate::report::{Finding, Severity};

/// Commands a checker must know the reach of, with the arguments `ACL DRYRUN` needs to judge
/// them (never executed).
pub(super) const DANGEROUS: &[(&str, &[&str])] = &[
    ("flushall", &[]),
    ("flushdb", &[]),
    ("keys", &["*"]),
    ("config", &["SET", "dir", "/tmp"]),
    ("shutdown", &[]),
    ("debug", &["SLEEP", "0"]),
    ("module", &["LIST"]),
    ("monitor", &[]),
    ("replicaof", &["NO", "ONE"]),
    ("slaveof", &["NO", "ONE"]),
    ("save", &[]),
    ("bgsave", &[]),
    ("acl", &["SETUSER", "redis-diag-probe"]),
];

/// How a dangerous command stands for the connected user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    Usable,
    Renamed,
    Disabled,
    /// Renamed or disabled (COMMAND LIST unavailable to tell which).
    Absent,
    Denied,
    /// Allowed by ACL, refused by the server's enable-*-command guard.
    Protected,
    Unknown,
}

impl Reach {
    fn name(self) -> &'static str {
        match self {
            Reach::Usable => "usable",
            Reach::Renamed => "renamed",
            Reach::Disabled => "disabled",
            Reach::Absent => "renamed-or-disabled",
            Reach::Denied => "denied",
            Reach::Protected => "protected",
            Reach::Unknown => "unknown",
        }
    }
}

/// Renamed vs disabled: `COMMAND INFO` looks the live table up by name; `COMMAND LIST` prints
/// original names, renamed ones included.
pub(super) fn classify(live: bool, listed: bool) -> Reach {
    match (live, listed) {
        (true, _) => Reach::Usable,
        (false, true) => Reach::Renamed,
        (false, false) => Reach::Disabled,
    }
}

pub(super) async fn dangerous_commands(p: &Probe<'_>, user: &str) -> Vec<Finding> {
    // `None`: COMMAND LIST refused or unknown (Redis < 7): renamed cannot be told from
    // disabled.
    // Rights the user lacks for a complete answer (`+command|list` ...).
    let mut missing: Vec<&str> = Vec::new();
    let mut note = |right: &'static str, e: &fred::error::Error| {
        if is_denied(e) && !missing.contains(&right) {
            missing.push(right);
        }
    };
    let listed: Option<Vec<String>> = match call(p.client, "COMMAND", vec!["LIST".into()]).await {
        Ok(Value::Array(a)) => Some(
            a.iter()
                .filter_map(text)
                .map(|s| s.to_lowercase())
                .collect(),
        ),
        Ok(_) => None,
        Err(e) => {
            note("command|list", &e);
            None
        }
    };
    let mut usable = Vec::new();
    let mut other = Vec::new();
    for (name, args) in DANGEROUS {
        // Only a nil entry means "not in the live table"; an error tells nothing.
        let live = match call(p.client, "COMMAND", vec!["INFO".into(), (*name).into()]).await {
            Ok(Value::Array(a)) => Some(a.first().is_some_and(|v| !matches!(v, Value::Null))),
            Ok(_) => None,
            Err(e) => {
                note("command|info", &e);
                None
            }
        };
        let mut reach = match (live, &listed) {
            (Some(false), Some(l)) => classify(false, l.iter().any(|x| x == name)),
            (Some(false), None) => Reach::Absent,
            (Some(true), _) | (None, _) => Reach::Usable,
        };
        if reach == Reach::Usable {
            let mut dry = vec!["DRYRUN".to_string(), user.to_string(), (*name).to_string()];
            dry.extend(args.iter().map(|a| a.to_string()));
            reach = match call(p.client, "ACL", dry).await {
                Ok(v) if text(&v).as_deref() == Some("OK") => Reach::Usable,
                Ok(_) => Reach::Denied,
                // DRYRUN itself refused (older server, or no ACL permission).
                Err(e) => {
                    note("acl|dryrun", &e);
                    Reach::Unknown
                }
            };
        }
        // ACL allows it, but the server's own guard may not.
        let guard = match *name {
            "debug" => p.conf("enable-debug-command"),
            "module" => p.conf("enable-module-command"),
            _ => None,
        };
        if reach == Reach::Usable && matches!(guard, Some("no") | Some("local")) {
            reach = Reach::Protected;
        }
        match reach {
            Reach::Usable => usable.push(name.to_uppercase()),
            r => other.push(format!("{} {}", name.to_uppercase(), r.name())),
        }
    }
    let mut out = Vec::new();
    let unknown = other.iter().filter(|o| o.ends_with(" unknown")).count();
    let needs = if missing.is_empty() {
        String::new()
    } else {
        format!(
            "; incomplete, the user needs {}",
            missing
                .iter()
                .map(|r| format!("+{r}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    if usable.is_empty() && unknown > 0 {
        out.push(
            p.finding(
                "commands.dangerous",
                Severity::Info,
                format!(
                    "{unknown} dangerous commands could not be verified (ACL DRYRUN is not permitted{}); none is known usable",
                    if missing.contains(&"acl|dryrun") { ", needs +acl|dryrun" } else { "" }
                ),
            )
            .evidence(format!("{}{needs}", other.join(", ")))
            .fix("run the security check as a user allowed ACL DRYRUN (+acl|dryrun) for a complete answer"),
        );
    } else if usable.is_empty() {
        out.push(
            p.finding(
                "commands.dangerous",
                Severity::Ok,
                "no dangerous command is usable by this user",
            )
            .evidence(format!("{}{needs}", other.join(", "))),
        );
    } else {
        out.push(
            p.finding(
                "commands.dangerous",
                Severity::Warning,
                format!("{} dangerous commands are usable by {user:?}", usable.len()),
            )
            .evidence(format!(
                "usable: {}{}{needs}",
                usable.join(" "),
                if other.is_empty() { String::new() } else { format!("; {}", other.join(", ")) }
            ))
            .fix("deny them by ACL (+@all -@dangerous) for application users, or rename-command / disable them"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_and_disabled_commands_are_told_apart() {
        assert_eq!(classify(true, true), Reach::Usable);
        assert_eq!(classify(false, true), Reach::Renamed);
        assert_eq!(classify(false, false), Reach::Disabled);
    }
}
