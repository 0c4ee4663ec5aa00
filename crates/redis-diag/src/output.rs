//! Rendering a report: a table for people (fits the width given), JSON for machines.

use crate::report::{Report, Severity};

/// The report as JSON (see `schema/report.v1.json`).
///
/// ```
/// let r = redis_diag::Report { schema: redis_diag::SCHEMA.into(), mode: "standalone".into(), nodes: vec![], findings: vec![] };
/// assert!(redis_diag::render_json(&r).contains("\"schema\""));
/// ```
pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Splits `text` into lines of at most `width` characters, at spaces where possible.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(10);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        if line.chars().count() + word.chars().count() + usize::from(!line.is_empty()) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn tag(s: Severity) -> &'static str {
    match s {
        Severity::Ok => "OK  ",
        Severity::Info => "INFO",
        Severity::Warning => "WARN",
        Severity::Critical => "CRIT",
    }
}

/// The report as a table no wider than `width` columns (80 is a good value): one block per
/// finding, worst first — severity, node and check on the first line, then the title,
/// evidence and remediation wrapped and indented. Ends with a one-line summary.
///
/// ```
/// let r = redis_diag::Report { schema: redis_diag::SCHEMA.into(), mode: "standalone".into(), nodes: vec![], findings: vec![] };
/// assert!(redis_diag::render_table(&r, 80).lines().all(|l| l.chars().count() <= 80));
/// ```
pub fn render_table(report: &Report, width: usize) -> String {
    let width = width.max(40);
    let mut out = String::new();
    let reachable = report.nodes.iter().filter(|n| n.reachable).count();
    for l in wrap(
        &format!(
            "redis-diag: {} deployment, {} nodes ({} reachable)",
            report.mode,
            report.nodes.len(),
            reachable
        ),
        width,
    ) {
        out.push_str(&l);
        out.push('\n');
    }
    for n in &report.nodes {
        let line = format!(
            "  {:<9} {:<22} {}",
            n.role,
            n.addr,
            if n.reachable {
                n.version
                    .as_deref()
                    .map(|v| format!("redis {v}"))
                    .unwrap_or_default()
            } else if n.auth_failed {
                "AUTHENTICATION FAILED".into()
            } else {
                "UNREACHABLE".into()
            }
        );
        for l in wrap(&line, width) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out.push('\n');
    let indent = "      ";
    let inner = width - indent.len();
    for f in &report.findings {
        let head = format!("{} {} {}", tag(f.severity), f.node, f.check);
        for l in wrap(&head, width) {
            out.push_str(&l);
            out.push('\n');
        }
        let mut body = vec![f.title.clone()];
        if !f.evidence.is_empty() {
            body.push(format!("seen: {}", f.evidence));
        }
        if !f.remediation.is_empty() && f.severity > Severity::Ok {
            body.push(format!("fix: {}", f.remediation));
        }
        for part in body {
            for l in wrap(&part, inner) {
                out.push_str(indent);
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let summary = format!(
        "\n{} critical, {} warning, {} info, {} ok — worst: {}",
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info),
        count(Severity::Ok),
        report.worst().name()
    );
    for l in wrap(&summary, width) {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Finding, NodeSummary, SCHEMA};

    #[test]
    fn the_table_fits_80_columns_even_with_long_words() {
        let long = "x".repeat(200);
        let r = Report {
            schema: SCHEMA.into(),
            mode: "cluster".into(),
            nodes: vec![NodeSummary {
                addr: "127.0.0.1:30001".into(),
                role: "primary".into(),
                reachable: true,
                auth_failed: false,
                version: Some("7.0.15".into()),
            }],
            findings: vec![
                Finding::new("slowlog", Severity::Warning, "127.0.0.1:30001", "slow")
                    .evidence(format!("DEBUG SLEEP ×1 {long}"))
                    .fix("avoid O(N) commands on big keys; use SCAN-style iteration everywhere"),
            ],
        };
        let t = render_table(&r, 80);
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        assert!(t.contains("WARN 127.0.0.1:30001 slowlog"));
    }
}
