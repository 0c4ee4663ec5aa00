//! Cluster state as one node sees it, and findings about the topology as a whole.

use redis_conn::RedisConfig;

use super::probe::{Probe, parse_info, text};
use crate::node::{Target, call};
use crate::options::Options;
use crate::report::{Finding, Severity};

/// `cluster.state`: the cluster as this node sees it.
pub(super) async fn state(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // Cluster state, as this node sees it.
    if p.info.get("cluster_enabled").map(String::as_str) != Some("1") {
        return out;
    }
    let reply = call(p.client, "CLUSTER", vec!["INFO".into()]).await;
    if let Err(e) = &reply {
        out.push(p.unavailable("cluster.state", "cluster|info", "CLUSTER INFO", e));
    }
    if let Ok(v) = reply {
        let ci = parse_info(&text(&v).unwrap_or_default());
        let state = ci.get("cluster_state").cloned().unwrap_or_default();
        let assigned: u64 = ci
            .get("cluster_slots_assigned")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let fail: u64 = ci
            .get("cluster_slots_fail")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let pfail: u64 = ci
            .get("cluster_slots_pfail")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let severity = if state != "ok" || assigned < 16384 || fail > 0 {
            Severity::Critical
        } else if pfail > 0 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        out.push(
            p.finding("cluster.state", severity, format!("cluster state {state}"))
                .evidence(format!("cluster_state {state}, slots assigned {assigned}/16384, fail {fail}, pfail {pfail}"))
                .fix(if severity == Severity::Ok { "" } else { "bring failed nodes back or fail over to their replicas; assign uncovered slots" }),
        );
    }
    out
}

/// Findings about the topology as a whole (nodes it marks as failed).
pub(crate) async fn topology_checks(
    _config: &RedisConfig,
    targets: &[Target],
    _opts: &Options,
) -> Vec<Finding> {
    targets
        .iter()
        .filter(|t| t.marked_failed)
        .map(|t| {
            let mut f = Finding::new(
                "topology.failed-node",
                Severity::Critical,
                &t.addr(),
                "the topology marks this node as failed",
            )
            .evidence(format!(
                "{} flagged fail / down by its peers",
                t.role.name()
            ))
            .fix("restart it or replace it; until then it serves nothing");
            f.role = t.role.name().into();
            f
        })
        .collect()
}
