//! Persistence: RDB and AOF health, the AOF's fsync policy, persistence switched off.

use super::probe::Probe;
use crate::report::{Finding, Severity};

/// `persistence.*`: RDB and AOF status, AOF fsync policy, persistence off.
pub(super) fn persistence(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let aof = p.info.get("aof_enabled").map(String::as_str) == Some("1")
        || (!p.info.contains_key("aof_enabled") && p.conf("appendonly") == Some("yes"));
    let save = p.conf("save").map(str::to_string);
    // A failed last save or write, each its own finding.
    for (field, check, title, fix) in [
        (
            "rdb_last_bgsave_status",
            "persistence.rdb",
            "the last RDB save failed",
            "check disk space and permissions of dir; see the server log",
        ),
        (
            "aof_last_write_status",
            "persistence.aof",
            "the last AOF write failed",
            "check disk space; see the server log",
        ),
    ] {
        if p.info.get(field).is_some_and(|s| s != "ok") {
            out.push(
                p.finding(check, Severity::Critical, title)
                    .evidence(format!("{field} err"))
                    .fix(fix),
            );
        }
    }
    if aof {
        match p.conf("appendfsync") {
            Some("no") => out.push(
                p.finding(
                    "persistence.aof-fsync",
                    Severity::Warning,
                    "the AOF is never fsynced by Redis: a crash of the machine loses what the OS had not flushed yet (typically up to 30 s)",
                )
                .evidence("appendonly yes, appendfsync no")
                .fix("CONFIG SET appendfsync everysec (and in redis.conf): at most about one second of writes is lost"),
            ),
            Some(v) => out.push(
                p.finding(
                    "persistence.aof-fsync",
                    Severity::Ok,
                    format!("the AOF is fsynced ({v})"),
                )
                .evidence(format!("appendonly yes, appendfsync {v}")),
            ),
            None => {}
        }
    }
    if !p.info.contains_key("aof_enabled") || save.is_none() {
        // Not enough known to judge (INFO or CONFIG unavailable).
    } else if !aof && save.as_deref() == Some("") {
        out.push(
            p.finding(
                "persistence.off",
                Severity::Warning,
                "no persistence: a restart loses every key",
            )
            .evidence("appendonly no, save \"\"")
            .fix("enable appendonly (everysec) or RDB snapshots, unless this is a pure cache"),
        );
    } else {
        out.push(
            p.finding("persistence.off", Severity::Ok, "persistence is on")
                .evidence(format!(
                    "appendonly {}, save {:?}",
                    if aof { "yes" } else { "no" },
                    save.as_deref().unwrap_or("")
                )),
        );
    }
    out
}
