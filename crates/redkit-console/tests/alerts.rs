//! The Prometheus rules, their promtool unit tests and the Grafana dashboard under
//! `deploy/`: promtool must accept the rules and pass the tests, and every metric name the
//! rules and the dashboard use must be one the console exports (`KNOWN`).
//!
//! Needs `promtool` on PATH (Debian/Ubuntu: `apt-get install -y prometheus`); without it
//! the promtool tests fail, they never skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every metric name the console's `/metrics` exports: its own (the console's metrics
/// documentation) and redis-diag's (`crates/redis-diag/src/exporter.rs`).
const KNOWN: &[&str] = &[
    // queues
    "redkit_queue_ready",
    "redkit_queue_delayed",
    "redkit_queue_in_flight",
    "redkit_queue_dead",
    "redkit_queue_oldest_ready_age_seconds",
    "redkit_queue_paused",
    "redkit_queue_enqueued_total",
    "redkit_queue_claimed_total",
    "redkit_queue_processed_total",
    "redkit_queue_failed_total",
    "redkit_queue_died_total",
    "redkit_queue_up",
    // locks
    "redkit_lock_held",
    "redkit_lock_held_seconds",
    "redkit_lock_oldest_held_seconds",
    "redkit_lock_waiters",
    // caches
    "redkit_cache_shared_hits_total",
    "redkit_cache_shared_misses_total",
    "redkit_cache_shared_builds_total",
    "redkit_cache_shared_build_errors_total",
    "redkit_cache_shared_stale_served_total",
    "redkit_cache_shared_redis_errors_total",
    "redkit_cache_shared_breaker_open",
    "redkit_cache_shared_processes",
    // the console itself
    "redkit_console_scrape_errors",
    "redkit_console_redis_up",
    // redis-diag: nodes (redis_exporter names)
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_blocked_clients",
    "redis_max_clients",
    "redis_memory_used_bytes",
    "redis_memory_used_rss_bytes",
    "redis_memory_used_peak_bytes",
    "redis_memory_max_bytes",
    "redis_mem_fragmentation_ratio",
    "redis_evicted_keys_total",
    "redis_expired_keys_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_rejected_connections_total",
    "redis_connections_received_total",
    "redis_commands_processed_total",
    "redis_connected_slaves",
    "redis_master_last_io_seconds_ago",
    "redis_master_repl_offset",
    "redis_rdb_changes_since_last_save",
    "redis_rdb_last_save_timestamp_seconds",
    "redis_aof_enabled",
    "redis_latest_fork_usec",
    "redis_master_link_up",
    // redis-diag: findings
    "redis_diag_check",
    "redis_diag_worst_severity",
];

/// The alerts the rule file must define, each with a runbook section in the README.
const ALERTS: &[&str] = &[
    "RedkitDeadSetGrowing",
    "RedkitQueueOldestReadyTooOld",
    "RedkitQueueNoWorkerClaiming",
    "RedkitLockHeldTooLong",
    "RedkitCacheHitRatioFalling",
    "RedkitCacheBreakerOpen",
    "RedkitDoctorCritical",
    "RedkitConsoleRedisDown",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn rules_path() -> PathBuf {
    deploy().join("prometheus/redkit-alerts.yml")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn run_promtool(args: &[&str], file: &Path) {
    let out = Command::new(testkit::promtool::path())
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    assert!(
        out.status.success(),
        "promtool {} {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules() {
    run_promtool(&["check", "rules"], &rules_path());
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    run_promtool(
        &["test", "rules"],
        &deploy().join("prometheus/tests/redkit-alerts.test.yml"),
    );
}

/// What a minimal line scan of the rule file finds.
#[derive(Debug, Default)]
struct Rules {
    /// `(line number, expression)` of every rule.
    exprs: Vec<(usize, String)>,
    /// Names of the recording rules.
    records: BTreeSet<String>,
    /// Names of the alerts.
    alerts: Vec<String>,
    /// `runbook` annotations.
    runbooks: Vec<String>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Reads `expr:` (inline or `|` / `>` blocks), `record:`, `alert:` and `runbook:` keys: enough
/// YAML for this file, no YAML parser.
fn scan_rules(text: &str) -> Rules {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Rules::default();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let item = line.trim_start().trim_start_matches("- ");
        let key_col = line.len() - item.len();
        if let Some(rest) = item.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let mut block = String::new();
                let mut j = i + 1;
                while j < lines.len() && (lines[j].trim().is_empty() || indent(lines[j]) > key_col)
                {
                    block.push_str(lines[j]);
                    block.push('\n');
                    j += 1;
                }
                rules.exprs.push((i + 1, block));
                i = j;
                continue;
            }
            rules.exprs.push((i + 1, unquote(rest)));
        } else if let Some(rest) = item.strip_prefix("record:") {
            rules.records.insert(unquote(rest));
        } else if let Some(rest) = item.strip_prefix("alert:") {
            rules.alerts.push(unquote(rest));
        } else if let Some(rest) = item.strip_prefix("runbook:") {
            rules.runbooks.push(unquote(rest));
        }
        i += 1;
    }
    rules
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "offset", "bool", "atan2", "inf", "nan",
];

/// Skips from `open` (an opening bracket at `i`) to just past its match, stepping over
/// strings.
fn skip_balanced(c: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < c.len() {
        match c[i] {
            '"' | '\'' | '`' => i = skip_string(c, i) - 1,
            ch if ch == open => depth += 1,
            ch if ch == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Skips a string literal starting at `i`; returns the index just past it.
fn skip_string(c: &[char], i: usize) -> usize {
    let q = c[i];
    let mut j = i + 1;
    while j < c.len() && c[j] != q {
        if c[j] == '\\' && q != '`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

fn next_non_space(c: &[char], mut i: usize) -> Option<(usize, char)> {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    c.get(i).map(|&ch| (i, ch))
}

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// aggregations, keywords, grouping labels, label matchers, durations or Grafana
/// variables (`$x`, `${x}`). `#` starts a comment.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let c: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        match ch {
            '#' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => i = skip_string(&c, i),
            '{' => i = skip_balanced(&c, i, '{', '}'),
            '[' => i = skip_balanced(&c, i, '[', ']'),
            '$' => {
                i += 1;
                if c.get(i) == Some(&'{') {
                    i = skip_balanced(&c, i, '{', '}');
                } else {
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                }
            }
            _ if ch.is_ascii_digit() || ch == '.' => {
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '.' || c[i] == '_') {
                    i += 1;
                }
            }
            _ if ch.is_alphabetic() || ch == '_' || ch == ':' => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == ':') {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                let next = next_non_space(&c, i);
                if GROUPING.contains(&word.as_str()) {
                    if let Some((j, '(')) = next {
                        i = skip_balanced(&c, j, '(', ')');
                    }
                } else if KEYWORDS.contains(&word.as_str())
                    || AGGREGATIONS.contains(&word.as_str())
                    || matches!(next, Some((_, '(')))
                {
                    // A keyword, an aggregation or a function call.
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn unknown<'a>(
    names: impl IntoIterator<Item = &'a String>,
    extra: &BTreeSet<String>,
) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| !KNOWN.contains(&n.as_str()) && !extra.contains(*n))
        .cloned()
        .collect()
}

#[test]
fn the_name_scanner_reads_promql() {
    let names = metric_names(
        "sum by (namespace, queue) (rate(redkit_queue_processed_total{namespace=~\"$namespace\", queue=\"a}b\"}[$__rate_interval]))\n\
         / on (namespace) group_left () (x:y:z offset 1h > 0.5) # comment redis_up\n\
         unless topk(3, max without (lock) (redkit_lock_waiters)) and bool 1e3 * ${v} + inf",
    );
    let expected: BTreeSet<String> = [
        "redkit_queue_processed_total",
        "x:y:z",
        "redkit_lock_waiters",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, expected);
}

#[test]
fn rules_use_only_exported_metrics_and_define_every_alert() {
    let rules = scan_rules(&read(&rules_path()));
    assert!(
        rules.exprs.len() >= ALERTS.len(),
        "too few `expr:` found: {:?}",
        rules.exprs
    );
    for (line, expr) in &rules.exprs {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "no metric name in the expr at line {line}: {expr}"
        );
        // Recording rules of the same file may be used by later rules.
        let bad = unknown(&names, &rules.records);
        assert!(
            bad.is_empty(),
            "line {line}: {bad:?} are not exported by the console (nor recorded in the file): {expr}"
        );
    }
    for alert in ALERTS {
        assert!(
            rules.alerts.iter().any(|a| a == alert),
            "alert {alert} missing from the rules; found {:?}",
            rules.alerts
        );
    }
    assert_eq!(
        rules.alerts.len(),
        rules.runbooks.len(),
        "every alert needs a runbook annotation"
    );
}

#[test]
fn every_runbook_points_at_a_readme_section() {
    let rules = scan_rules(&read(&rules_path()));
    let readme = read(&deploy().join("prometheus/README.md"));
    // GitHub's anchors: headings lowercased.
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.trim_start_matches('#').trim().to_lowercase())
        .collect();
    for (alert, runbook) in rules.alerts.iter().zip(&rules.runbooks) {
        let (file, anchor) = runbook
            .split_once('#')
            .unwrap_or_else(|| panic!("runbook of {alert} has no anchor: {runbook}"));
        assert_eq!(file, "deploy/prometheus/README.md", "runbook of {alert}");
        assert_eq!(anchor, alert.to_lowercase(), "runbook anchor of {alert}");
        assert!(
            anchors.contains(anchor),
            "README.md has no section `{alert}`"
        );
    }
}

/// Every `expr` anywhere in the dashboard (panels, rows' nested panels).
fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    let path = deploy().join("grafana/redkit-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    let vars = dash["templating"]["list"]
        .as_array()
        .unwrap_or_else(|| panic!("no templating.list"));
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no `datasource` variable of type prometheus"
    );
    let none = BTreeSet::new();
    // Variables: label_values(<selector>, label) — the selector's metric.
    for var in vars.iter().filter(|v| v["type"] == "query") {
        let q = var["query"]["query"]
            .as_str()
            .or_else(|| var["query"].as_str())
            .unwrap_or_default();
        let selector = q
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _)| selector)
            .unwrap_or_else(|| {
                panic!(
                    "variable {}: not label_values(selector, label): {q}",
                    var["name"]
                )
            });
        let names = metric_names(selector);
        assert!(
            !names.is_empty(),
            "variable {}: no metric in {q}",
            var["name"]
        );
        let bad = unknown(&names, &none);
        assert!(
            bad.is_empty(),
            "variable {}: {bad:?} are not exported: {q}",
            var["name"]
        );
    }
    let mut exprs = Vec::new();
    dashboard_exprs(&dash["panels"], &mut exprs);
    assert!(
        exprs.len() >= 20,
        "only {} panel queries found",
        exprs.len()
    );
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "no metric name in the panel query {expr}"
        );
        let bad = unknown(&names, &none);
        assert!(
            bad.is_empty(),
            "{bad:?} are not exported by the console: {expr}"
        );
    }
}
