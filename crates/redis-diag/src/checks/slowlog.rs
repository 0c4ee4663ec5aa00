//! The slow log and the latency monitor.

use std::collections::HashMap;

use fred::types::Value;

use super::probe::{Probe, text};
use crate::node::call;
use crate::options::Options;
use crate::report::{Finding, Severity};

/// Commands whose first argument is a subcommand worth naming (`CONFIG SET`, `CLIENT KILL`).
pub(super) const CONTAINERS: [&str; 14] = [
    "CONFIG", "CLIENT", "DEBUG", "SCRIPT", "CLUSTER", "OBJECT", "MEMORY", "XINFO", "ACL",
    "COMMAND", "FUNCTION", "LATENCY", "MODULE", "SLOWLOG",
];

/// One `SLOWLOG GET` entry (`[id, time, µs, [command, args…], …]`): its duration in µs and its
/// command (with the subcommand of container commands), never its arguments: they may hold
/// keys, values or scripts. `None` for an entry that is not an array.
pub(crate) fn slow_entry(entry: &Value) -> Option<(u64, String)> {
    let Value::Array(f) = entry else {
        return None;
    };
    let us = f.get(2).and_then(Value::as_u64).unwrap_or(0);
    let cmd = match f.get(3) {
        Some(Value::Array(args)) => {
            let name = args
                .first()
                .and_then(text)
                .unwrap_or_default()
                .to_uppercase();
            match args.get(1).and_then(text) {
                Some(sub) if CONTAINERS.contains(&name.as_str()) => {
                    format!("{name} {}", sub.to_uppercase())
                }
                _ => name,
            }
        }
        _ => "?".into(),
    };
    Some((us, cmd))
}

/// `slowlog`: commands over `opts.slow_command` in the slow log, judged against what the
/// slow log records.
pub(super) async fn slow_log(p: &Probe<'_>, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    // Slow log.
    let threshold_us = u64::try_from(opts.slow_command.as_micros()).unwrap_or(u64::MAX);
    let reply = call(p.client, "SLOWLOG", vec!["GET".into(), "128".into()]).await;
    if let Err(e) = &reply {
        out.push(p.unavailable("slowlog", "slowlog|get", "SLOWLOG GET", e));
    }
    if let Ok(Value::Array(entries)) = reply {
        let mut by_cmd: HashMap<String, (u64, u64)> = HashMap::new();
        for e in &entries {
            let Some((us, cmd)) = slow_entry(e) else {
                continue;
            };
            if us < threshold_us {
                continue;
            }
            let slot = by_cmd.entry(cmd).or_default();
            slot.0 += 1;
            slot.1 = slot.1.max(us);
        }
        let recorded_from: Option<i64> = p
            .conf("slowlog-log-slower-than")
            .and_then(|v| v.parse().ok());
        let blind = recorded_from.is_some_and(|us| us < 0 || us as u64 > threshold_us);
        if by_cmd.is_empty() && blind {
            out.push(
                p.finding(
                    "slowlog",
                    Severity::Info,
                    "the slow log does not record commands this slow: nothing can be said",
                )
                .evidence(match recorded_from {
                    Some(us) if us >= 0 => format!("slowlog-log-slower-than {us} µs"),
                    _ => "slowlog-log-slower-than is negative: the slow log records nothing".into(),
                })
                .fix(format!("CONFIG SET slowlog-log-slower-than {threshold_us}")),
            );
        } else if by_cmd.is_empty() {
            out.push(p.finding(
                "slowlog",
                Severity::Ok,
                format!("no command over {:?} in the slow log", opts.slow_command),
            ));
        } else {
            let mut top: Vec<(String, (u64, u64))> = by_cmd.into_iter().collect();
            top.sort_by_key(|t| std::cmp::Reverse(t.1.1));
            let n: u64 = top.iter().map(|t| t.1.0).sum();
            out.push(
                p.finding("slowlog", Severity::Warning, format!("{n} slow commands (over {:?})", opts.slow_command))
                    .evidence(
                        top.iter()
                            .take(5)
                            .map(|(c, (k, us))| format!("{c} ×{k} (max {:.1} ms)", *us as f64 / 1000.0))
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                    .fix("avoid O(N) commands on big keys (KEYS, SMEMBERS, HGETALL, LRANGE 0 -1, …); use SCAN-style iteration"),
            );
        }
    }
    out
}

/// `latency.monitor`: whether the latency monitor is on and what spikes it recorded.
pub(super) async fn latency_monitor(p: &Probe<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // Latency monitor.
    match p.conf("latency-monitor-threshold") {
        Some("0") => out.push(
            p.finding("latency.monitor", Severity::Info, "the latency monitor is off")
                .fix("CONFIG SET latency-monitor-threshold 100 to record latency spikes (LATENCY DOCTOR)"),
        ),
        Some(_) => {
            let reply = call(p.client, "LATENCY", vec!["LATEST".into()]).await;
            if let Err(e) = &reply {
                out.push(p.unavailable("latency.monitor", "latency|latest", "LATENCY LATEST", e));
            }
            if let Ok(Value::Array(events)) = reply
                && !events.is_empty()
            {
                let names: Vec<String> = events
                    .iter()
                    .filter_map(|e| match e {
                        Value::Array(f) => Some(format!(
                            "{} (max {} ms)",
                            f.first().and_then(text).unwrap_or_default(),
                            f.get(3).and_then(Value::as_u64).unwrap_or(0)
                        )),
                        _ => None,
                    })
                    .collect();
                out.push(
                    p.finding("latency.monitor", Severity::Warning, "latency spikes were recorded")
                        .evidence(names.join(", "))
                        .fix("run LATENCY DOCTOR on the node for advice"),
                );
            }
        }
        None => {}
    }
    out
}
