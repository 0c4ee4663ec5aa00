//! Replication health: a replica's link to its primary, writable replicas, and the replicas
//! as their primary sees them.

use std::collections::HashMap;

use super::probe::Probe;
use crate::report::{Finding, Severity};

/// `replication.link` and `replication.writable-replica`, as a replica sees itself.
pub(super) fn link(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // Replication link.
    if p.role == "replica" && p.info.contains_key("master_link_status") {
        out.extend(replication_link(p));
    }
    out.extend(writable_replica(p));
    out
}

/// `replication.replica-lag`: the replicas as their primary sees them, state and lag.
pub(super) fn replicas(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // Replicas as the primary sees them: state and lag.
    if p.role == "primary" {
        for (k, v) in p.info.iter().filter(|(k, _)| {
            k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit()) && k.len() > 5
        }) {
            let fields: HashMap<&str, &str> =
                v.split(',').filter_map(|kv| kv.split_once('=')).collect();
            let lag: u64 = fields.get("lag").and_then(|l| l.parse().ok()).unwrap_or(0);
            let state = fields.get("state").copied().unwrap_or("?");
            let who = format!(
                "{}:{}",
                fields.get("ip").copied().unwrap_or("?"),
                fields.get("port").copied().unwrap_or("?")
            );
            let severity = if state != "online" || lag > 10 {
                Severity::Warning
            } else {
                Severity::Ok
            };
            out.push(
                p.finding("replication.replica-lag", severity, format!("replica {who}: {state}, lag {lag} s"))
                    .evidence(format!("{k}: {v}"))
                    .fix(if severity == Severity::Ok { "" } else { "check the replica's load and the network; a lagging replica loses more on failover" }),
            );
        }
    }
    out
}

/// `replication.link` of a replica: up (ok, or a warning when silent for long), a sync from
/// the primary in progress (info: it is expected after a start or a failover), or down
/// (critical). Redis writes -1 for durations it does not know; they are never printed.
pub(super) fn replication_link(p: &Probe<'_>) -> Option<Finding> {
    let link = p.info.get("master_link_status")?;
    let master = format!(
        "{}:{}",
        p.info.get("master_host").map(String::as_str).unwrap_or("?"),
        p.info.get("master_port").map(String::as_str).unwrap_or("?")
    );
    // -1: the link has not been up since this replica started.
    let never_up = p
        .info
        .get("master_link_down_since_seconds")
        .map(String::as_str)
        == Some("-1");
    if link == "up" {
        let io = p.info_u64("master_last_io_seconds_ago").unwrap_or(0);
        let severity = if io > 10 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        return Some(
            p.finding(
                "replication.link",
                severity,
                format!("link up, last I/O {io} s ago"),
            )
            .evidence(format!(
                "master_link_status up, master {master}, master_last_io_seconds_ago {io}"
            ))
            .fix(if severity == Severity::Ok {
                ""
            } else {
                "check the primary's load and the network between them"
            }),
        );
    }
    if p.info.get("master_sync_in_progress").map(String::as_str) == Some("1") {
        let mut seen = vec![format!(
            "master_link_status {link}, master {master}, master_sync_in_progress 1"
        )];
        match (
            p.info_u64("master_sync_read_bytes"),
            p.info_u64("master_sync_total_bytes"),
        ) {
            (Some(read), Some(total)) if total > 0 => seen.push(format!(
                "{read} of {total} bytes received ({:.0}%)",
                read as f64 * 100.0 / total as f64
            )),
            (Some(read), _) => seen.push(format!("{read} bytes received, size not known yet")),
            _ => {}
        }
        if let Some(io) = p.info_u64("master_sync_last_io_seconds_ago") {
            seen.push(format!("last transfer I/O {io} s ago"));
        }
        return Some(
            p.finding(
                "replication.link",
                Severity::Info,
                if never_up {
                    "the replica is in its first sync with its primary"
                } else {
                    "the replica is resyncing with its primary (full sync in progress)"
                },
            )
            .evidence(seen.join(", "))
            .fix("wait for the sync to finish (INFO replication: master_link_status up); reads from this replica see old or no data until then"),
        );
    }
    let down = match p.info_u64("master_link_down_since_seconds") {
        Some(s) => format!("down for {s} s"),
        None if never_up => "not up since this replica started".into(),
        None => "down for an unknown time".into(),
    };
    Some(
        p.finding(
            "replication.link",
            Severity::Critical,
            "the replica's link to its primary is down",
        )
        .evidence(format!(
            "master_link_status {link}, master {master}, {down}, no sync in progress"
        ))
        .fix("check the primary and the network between them; a failover may be needed"),
    )
}

/// `replication.writable-replica`: a replica with `replica-read-only no` accepts writes that
/// are not replicated and vanish at its next full sync — a silent data-loss path, and
/// clients that write to it by mistake never learn.
pub(super) fn writable_replica(p: &Probe<'_>) -> Option<Finding> {
    if p.role != "replica" {
        return None;
    }
    let (read_only, seen) = match p.info.get("slave_read_only").map(String::as_str) {
        Some(v) => (v == "1", format!("INFO slave_read_only {v}")),
        None => {
            let v = p.conf("replica-read-only")?;
            (v == "yes", format!("replica-read-only {v}"))
        }
    };
    Some(if read_only {
        p.finding(
            "replication.writable-replica",
            Severity::Ok,
            "the replica is read-only",
        )
        .evidence(seen)
    } else {
        p.finding(
            "replication.writable-replica",
            Severity::Warning,
            "the replica accepts writes: they are not replicated and vanish at its next sync",
        )
        .evidence(format!("{seen} (replica-read-only no)"))
        .fix("CONFIG SET replica-read-only yes (and in redis.conf); send writes to the primary")
    })
}
