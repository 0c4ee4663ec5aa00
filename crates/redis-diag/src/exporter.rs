//! Prometheus exposition: per-node metrics with the names redis_exporter uses where they
//! overlap (so existing dashboards keep working), plus the findings as gauges, served over a
//! minimal HTTP endpoint (`GET /metrics`).

use std::fmt::Write as _;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::diagnose::diagnose_nodes;
use crate::error::Error;
use crate::options::{Options, Scope};
use crate::report::{NodeInfo, Report, Severity};

/// INFO field → (metric name, type, help). Names as redis_exporter exports them.
const INFO_METRICS: &[(&str, &str, &str, &str)] = &[
    (
        "uptime_in_seconds",
        "redis_uptime_in_seconds",
        "gauge",
        "Seconds since the server started.",
    ),
    (
        "connected_clients",
        "redis_connected_clients",
        "gauge",
        "Client connections.",
    ),
    (
        "blocked_clients",
        "redis_blocked_clients",
        "gauge",
        "Clients blocked in BLPOP, WAIT and the like.",
    ),
    ("maxclients", "redis_max_clients", "gauge", "maxclients."),
    (
        "used_memory",
        "redis_memory_used_bytes",
        "gauge",
        "Memory used by Redis (allocator view).",
    ),
    (
        "used_memory_rss",
        "redis_memory_used_rss_bytes",
        "gauge",
        "Resident set size.",
    ),
    (
        "used_memory_peak",
        "redis_memory_used_peak_bytes",
        "gauge",
        "Peak memory used.",
    ),
    (
        "maxmemory",
        "redis_memory_max_bytes",
        "gauge",
        "maxmemory (0: none).",
    ),
    (
        "mem_fragmentation_ratio",
        "redis_mem_fragmentation_ratio",
        "gauge",
        "RSS / used memory.",
    ),
    (
        "evicted_keys",
        "redis_evicted_keys_total",
        "counter",
        "Keys evicted for maxmemory.",
    ),
    (
        "expired_keys",
        "redis_expired_keys_total",
        "counter",
        "Keys expired.",
    ),
    (
        "keyspace_hits",
        "redis_keyspace_hits_total",
        "counter",
        "Successful key lookups.",
    ),
    (
        "keyspace_misses",
        "redis_keyspace_misses_total",
        "counter",
        "Failed key lookups.",
    ),
    (
        "rejected_connections",
        "redis_rejected_connections_total",
        "counter",
        "Connections rejected (maxclients).",
    ),
    (
        "total_connections_received",
        "redis_connections_received_total",
        "counter",
        "Connections accepted.",
    ),
    (
        "total_commands_processed",
        "redis_commands_processed_total",
        "counter",
        "Commands processed.",
    ),
    (
        "connected_slaves",
        "redis_connected_slaves",
        "gauge",
        "Replicas connected to this node.",
    ),
    (
        "master_last_io_seconds_ago",
        "redis_master_last_io_seconds_ago",
        "gauge",
        "Seconds since the last interaction with the primary.",
    ),
    (
        "master_repl_offset",
        "redis_master_repl_offset",
        "gauge",
        "Replication offset.",
    ),
    (
        "rdb_changes_since_last_save",
        "redis_rdb_changes_since_last_save",
        "gauge",
        "Writes since the last RDB save.",
    ),
    (
        "rdb_last_save_time",
        "redis_rdb_last_save_timestamp_seconds",
        "gauge",
        "Time of the last RDB save.",
    ),
    (
        "aof_enabled",
        "redis_aof_enabled",
        "gauge",
        "1 when AOF is on.",
    ),
    (
        "latest_fork_usec",
        "redis_latest_fork_usec",
        "gauge",
        "Duration of the latest fork, µs.",
    ),
];

fn severity_value(s: Severity) -> u8 {
    match s {
        Severity::Ok => 0,
        Severity::Info => 1,
        Severity::Warning => 2,
        Severity::Critical => 3,
    }
}

/// Escapes a label value for the Prometheus text format (backslash, double quote, line feed).
///
/// ```
/// assert_eq!(redis_diag::escape_label("a\"b\nc"), "a\\\"b\\nc");
/// ```
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of a report and the nodes' INFO fields.
///
/// ```
/// let r = redis_diag::Report { schema: redis_diag::SCHEMA.into(), mode: "standalone".into(), nodes: vec![], findings: vec![] };
/// let text = redis_diag::render_prometheus(&r, &[]);
/// assert!(text.contains("redis_diag_worst_severity 0"));
/// ```
pub fn render_prometheus(report: &Report, infos: &[NodeInfo]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP redis_up 1 when the node answered.");
    let _ = writeln!(out, "# TYPE redis_up gauge");
    for NodeInfo { addr, role, up, .. } in infos {
        let _ = writeln!(
            out,
            "redis_up{{addr=\"{}\",role=\"{}\"}} {}",
            escape_label(addr),
            escape_label(role),
            u8::from(*up)
        );
    }
    for (field, name, kind, help) in INFO_METRICS {
        let values: Vec<(&String, &String, f64)> = infos
            .iter()
            .filter_map(
                |NodeInfo {
                     addr, role, info, ..
                 }| {
                    let v = info.as_ref()?.get(*field)?.parse::<f64>().ok()?;
                    // The text format has no spelling for these that every parser reads.
                    // Redis writes -1 for a duration it does not know (a replica that has
                    // never linked): no sample rather than a negative age.
                    (v.is_finite() && !(v < 0.0 && field.ends_with("_seconds_ago")))
                        .then_some((addr, role, v))
                },
            )
            .collect();
        if values.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (addr, role, v) in values {
            let _ = writeln!(
                out,
                "{name}{{addr=\"{}\",role=\"{}\"}} {v}",
                escape_label(addr),
                escape_label(role)
            );
        }
    }
    // Derived: link state and persistence status as numbers.
    let mut link = String::new();
    for NodeInfo {
        addr, role, info, ..
    } in infos
    {
        if let Some(status) = info.as_ref().and_then(|i| i.get("master_link_status")) {
            let _ = writeln!(
                link,
                "redis_master_link_up{{addr=\"{}\",role=\"{}\"}} {}",
                escape_label(addr),
                escape_label(role),
                u8::from(status == "up")
            );
        }
    }
    if !link.is_empty() {
        let _ = writeln!(
            out,
            "# HELP redis_master_link_up 1 when the replica's link to its primary is up."
        );
        let _ = writeln!(out, "# TYPE redis_master_link_up gauge");
        out.push_str(&link);
    }
    let _ = writeln!(
        out,
        "# HELP redis_diag_check A finding of redis-diag (value: 0 ok, 1 info, 2 warning, 3 critical)."
    );
    let _ = writeln!(out, "# TYPE redis_diag_check gauge");
    // One series per (check, node): several findings of one check on one node (one per
    // user, per replica) are folded into the worst.
    let mut worst: std::collections::BTreeMap<(&str, &str), Severity> = Default::default();
    for f in &report.findings {
        let w = worst
            .entry((f.check.as_str(), f.node.as_str()))
            .or_insert(f.severity);
        *w = (*w).max(f.severity);
    }
    for ((check, node), severity) in worst {
        let _ = writeln!(
            out,
            "redis_diag_check{{check=\"{}\",node=\"{}\",severity=\"{}\"}} {}",
            escape_label(check),
            escape_label(node),
            severity.name(),
            severity_value(severity)
        );
    }
    let _ = writeln!(
        out,
        "# HELP redis_diag_worst_severity The worst finding (0 ok, 1 info, 2 warning, 3 critical)."
    );
    let _ = writeln!(out, "# TYPE redis_diag_worst_severity gauge");
    let _ = writeln!(
        out,
        "redis_diag_worst_severity {}",
        severity_value(report.worst())
    );
    out
}

/// One scrape: runs the checks of `scope` on every node and renders them with each node's
/// `INFO` fields, as [`serve`] answers `GET /metrics` (for a service or console that serves
/// its own HTTP and appends its own series).
///
/// ```no_run
/// # async fn demo(cfg: redis_conn::RedisConfig) -> Result<(), redis_diag::Error> {
/// let text = redis_diag::scrape(&cfg, redis_diag::Scope::All, &redis_diag::Options::default()).await?;
/// assert!(text.contains("redis_diag_worst_severity"));
/// # Ok(()) }
/// ```
pub async fn scrape(
    config: &redis_conn::RedisConfig,
    scope: Scope,
    opts: &Options,
) -> Result<String, Error> {
    let (report, infos) = diagnose_nodes(config, scope, opts).await?;
    Ok(render_prometheus(&report, &infos))
}

/// Serves `GET /metrics` on `listen` until the process ends: each scrape runs the checks
/// (`scope`) and reads every node's `INFO`.
///
/// ```no_run
/// # async fn demo(cfg: redis_conn::RedisConfig) -> Result<(), redis_diag::Error> {
/// redis_diag::serve(cfg, "127.0.0.1:9121".parse().unwrap(), redis_diag::Scope::All, redis_diag::Options::default()).await?;
/// # Ok(()) }
/// ```
pub async fn serve(
    config: redis_conn::RedisConfig,
    listen: SocketAddr,
    scope: Scope,
    opts: Options,
) -> Result<(), Error> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Discovery(format!("cannot listen on {listen}: {e}")))?;
    // Scrapes run the checks: a few at a time is plenty.
    let scrapes = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    loop {
        let mut socket = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (config, opts, scrapes) = (config.clone(), opts.clone(), scrapes.clone());
        tokio::spawn(async move {
            // The request head, up to 8 KiB, within 5 s.
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let Ok(_permit) = scrapes.acquire().await else {
                return;
            };
            let request = String::from_utf8_lossy(&buf);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = if path == "/metrics" {
                match diagnose_nodes(&config, scope, &opts).await {
                    Ok((report, infos)) => ("200 OK", render_prometheus(&report, &infos)),
                    Err(e) => (
                        "503 Service Unavailable",
                        format!("# redis-diag: {e}\nredis_up 0\n"),
                    ),
                }
            } else {
                ("404 Not Found", "try /metrics\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, SCHEMA};

    #[test]
    fn findings_become_one_series_per_check_and_node_and_odd_values_are_skipped() {
        let report = Report {
            schema: SCHEMA.into(),
            mode: "sentinel".into(),
            nodes: vec![],
            findings: vec![
                Finding::new("replication.replica-lag", Severity::Ok, "n:1", "a"),
                Finding::new("replication.replica-lag", Severity::Warning, "n:1", "b"),
                Finding::new("auth.nopass", Severity::Critical, "n:\"2", "c"),
            ],
        };
        let infos = vec![NodeInfo {
            addr: "n:1".into(),
            role: "primary".into(),
            up: true,
            info: Some(
                [
                    ("mem_fragmentation_ratio", "inf"),
                    ("used_memory", "100"),
                    ("master_last_io_seconds_ago", "-1"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
        }];
        let text = render_prometheus(&report, &infos);
        let lag: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("redis_diag_check{check=\"replication.replica-lag\""))
            .collect();
        assert_eq!(
            lag,
            vec![
                "redis_diag_check{check=\"replication.replica-lag\",node=\"n:1\",severity=\"warning\"} 2"
            ]
        );
        assert!(text.contains("node=\"n:\\\"2\""), "{text}");
        assert!(!text.contains("inf\n") && !text.contains("redis_mem_fragmentation_ratio{"));
        assert!(text.contains("redis_memory_used_bytes{addr=\"n:1\",role=\"primary\"} 100"));
        assert!(
            !text.contains("redis_master_last_io_seconds_ago{"),
            "{text}"
        );
    }
}
