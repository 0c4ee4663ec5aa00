//! Health checks of one node: latency, memory, pressure, hit ratio; persistence, the slow
//! log, replication and cluster state are in their own modules.

use std::time::{Duration, Instant};

use super::probe::Probe;
use super::{cluster, persistence, replication, slowlog};
use crate::node::{call, is_denied};
use crate::options::Options;
use crate::report::{Finding, Severity};

pub(super) async fn health_checks(p: &Probe<'_>, opts: &Options) -> Vec<Finding> {
    let mut out = latency(p, opts).await;
    out.extend(memory(p));
    out.extend(pressure(p));
    out.extend(persistence::persistence(p));
    out.extend(slowlog::slow_log(p, opts).await);
    out.extend(slowlog::latency_monitor(p).await);
    out.extend(replication::link(p));
    out.extend(replication::replicas(p));
    out.extend(hit_ratio(p));
    out.extend(cluster::state(p).await);
    out
}

/// `latency.ping`: PING round trips, as percentiles.
pub(super) async fn latency(p: &Probe<'_>, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    // Latency.
    let mut samples = Vec::new();
    for _ in 0..opts.pings.max(1) {
        let t = Instant::now();
        match call(p.client, "PING", vec![]).await {
            Ok(_) => samples.push(t.elapsed()),
            // Refused by the ACL: the node answers, the user may not ask.
            Err(e) if is_denied(&e) => {
                return vec![p.unavailable("latency.ping", "ping", "PING", &e)];
            }
            Err(_) => {}
        }
    }
    let answered = samples.len();
    let (p50, p99, max) = percentiles(samples);
    let severity = if answered == 0 {
        Severity::Critical
    } else if p99 > 100.0 {
        Severity::Warning
    } else {
        Severity::Ok
    };
    out.push(
        p.finding(
            "latency.ping",
            severity,
            format!("PING p50 {p50:.2} ms, p99 {p99:.2} ms"),
        )
        .evidence(format!(
            "{} pings from here: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
            opts.pings
        ))
        .fix(if severity == Severity::Ok {
            ""
        } else {
            "look for slow commands, swapping, a saturated network or CPU"
        }),
    );
    out
}

/// `memory.*`: use against `maxmemory`, the eviction policy, fragmentation.
pub(super) fn memory(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // Memory (needs INFO).
    if p.info.contains_key("used_memory") {
        let used = p.info_u64("used_memory").unwrap_or(0);
        let max_mem = p
            .info_u64("maxmemory")
            .or_else(|| p.conf("maxmemory").and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let policy = p
            .info
            .get("maxmemory_policy")
            .cloned()
            .or_else(|| p.conf("maxmemory-policy").map(str::to_string))
            .unwrap_or_default();
        if max_mem > 0 {
            let ratio = used as f64 / max_mem as f64;
            let severity = if ratio >= 0.98 {
                Severity::Critical
            } else if ratio >= 0.9 {
                Severity::Warning
            } else {
                Severity::Ok
            };
            out.push(
                p.finding("memory.maxmemory", severity, format!("memory at {:.0}% of maxmemory", ratio * 100.0))
                    .evidence(format!("used_memory {used} B, maxmemory {max_mem} B, policy {policy}"))
                    .fix(if severity == Severity::Ok {
                        ""
                    } else if policy == "noeviction" {
                        "writes fail when full: raise maxmemory, delete data, or pick an eviction policy for cache-only data"
                    } else {
                        "keys are being (or about to be) evicted: raise maxmemory or reduce the data"
                    }),
            );
        } else {
            out.push(
                p.finding(
                    "memory.maxmemory",
                    Severity::Info,
                    "no maxmemory: Redis may use all of the machine's memory",
                )
                .evidence(format!("used_memory {used} B, maxmemory 0"))
                .fix("set maxmemory below the machine's memory (leave room for forks and buffers)"),
            );
        }
        if policy.starts_with("allkeys") {
            out.push(
                p.finding(
                    "memory.eviction-policy",
                    Severity::Warning,
                    format!("{policy} may evict ANY key, including queues and locks"),
                )
                .evidence(format!("maxmemory-policy {policy}"))
                .fix("use volatile-* (only keys with a TTL) or noeviction where the data must not be evicted; keep caches on their own instance"),
            );
        }
        let frag = p.info_f64("mem_fragmentation_ratio").unwrap_or(1.0);
        let rss = p.info_u64("used_memory_rss").unwrap_or(0);
        if frag > 1.5 && rss > 100 * 1024 * 1024 {
            out.push(
                p.finding(
                    "memory.fragmentation",
                    Severity::Warning,
                    format!("memory fragmentation {frag:.2}"),
                )
                .evidence(format!(
                    "mem_fragmentation_ratio {frag}, used_memory_rss {rss} B"
                ))
                .fix("enable activedefrag, or restart the node during a quiet period"),
            );
        }
    }
    out
}

/// Evictions, rejected connections, connections against `maxclients`, blocked clients.
pub(super) fn pressure(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // Pressure counters.
    for (field, check, title, fix) in [
        (
            "evicted_keys",
            "stats.evictions",
            "keys were evicted",
            "raise maxmemory or reduce the data; check that evicted keys were cache-only",
        ),
        (
            "rejected_connections",
            "stats.rejected-connections",
            "connections were rejected (maxclients)",
            "raise maxclients or fix a connection leak",
        ),
    ] {
        let n = p.info_u64(field).unwrap_or(0);
        if n > 0 {
            out.push(
                p.finding(check, Severity::Warning, format!("{n} {title}"))
                    .evidence(format!("{field} {n} since start"))
                    .fix(fix),
            );
        }
    }
    out.extend(max_clients(p));
    let blocked = p.info_u64("blocked_clients").unwrap_or(0);
    if blocked > 0 {
        out.push(
            p.finding(
                "stats.blocked-clients",
                Severity::Info,
                format!("{blocked} clients blocked (BLPOP, WAIT …)"),
            )
            .evidence(format!("blocked_clients {blocked}")),
        );
    }
    out
}

/// `clients.maxclients`: connections in use against `maxclients`. Replicas and cluster bus
/// links take slots too; this diagnosis's own connection is not counted, so the figure is
/// the node's load without us. Warning from 80 %, critical from 95 %: at 100 % new
/// connections are refused (`stats.rejected-connections` only tells once that happened).
pub(super) fn max_clients(p: &Probe<'_>) -> Option<Finding> {
    let max = p
        .info_u64("maxclients")
        .or_else(|| p.conf("maxclients").and_then(|v| v.parse().ok()))
        .filter(|m| *m > 0)?;
    let clients = p.info_u64("connected_clients")?;
    let replicas = p.info_u64("connected_slaves").unwrap_or(0);
    let cluster = p.info_u64("cluster_connections").unwrap_or(0);
    let used = clients
        .saturating_sub(1)
        .saturating_add(replicas)
        .saturating_add(cluster);
    let percent = used.saturating_mul(100) / max;
    let severity = if used.saturating_mul(100) >= max.saturating_mul(95) {
        Severity::Critical
    } else if used.saturating_mul(100) >= max.saturating_mul(80) {
        Severity::Warning
    } else {
        Severity::Ok
    };
    Some(
        p.finding(
            "clients.maxclients",
            severity,
            format!("{used} of {max} connections in use ({percent}%)"),
        )
        .evidence(format!(
            "connected_clients {clients} (this diagnosis's own connection not counted), connected_slaves {replicas}, cluster_connections {cluster}, maxclients {max}"
        ))
        .fix(if severity == Severity::Ok {
            ""
        } else {
            "at maxclients new connections are refused: raise maxclients (and the process's open-file limit), or find the client that leaks connections (CLIENT LIST)"
        }),
    )
}

/// `keyspace.hit-ratio`, once there are enough lookups to judge.
pub(super) fn hit_ratio(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // Hit ratio.
    let hits = p.info_u64("keyspace_hits").unwrap_or(0);
    let misses = p.info_u64("keyspace_misses").unwrap_or(0);
    if hits + misses >= 1000 {
        let ratio = hits as f64 / (hits + misses) as f64;
        let severity = if ratio < 0.8 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        out.push(
            p.finding("keyspace.hit-ratio", severity, format!("keyspace hit ratio {:.1}%", ratio * 100.0))
                .evidence(format!("keyspace_hits {hits}, keyspace_misses {misses}"))
                .fix(if severity == Severity::Ok { "" } else { "if this is a cache: check TTLs, key design and whether misses are for ids that do not exist" }),
        );
    }
    out
}

/// Latency percentiles of a sample, in ms: (p50, p99, max).
pub(super) fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99), at(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_sample() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let (p50, p99, max) = percentiles(s);
        assert!((p50 - 50.0).abs() <= 1.0 && (p99 - 99.0).abs() <= 1.0 && max == 100.0);
    }
}
