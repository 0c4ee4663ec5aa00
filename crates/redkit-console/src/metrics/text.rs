//! The Prometheus text format: metric families and label sets.

use std::fmt::Write as _;

use redis_diag::escape_label;

/// Appends one metric family (`# HELP`, `# TYPE`, then its samples).
pub(crate) fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, f64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// `k1="v1",k2="v2"`, every value escaped.
pub(crate) fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A counter or gauge value from a count.
pub(crate) fn as_f64(n: u64) -> f64 {
    n as f64
}

/// Notes a section that could not be read as a comment line (the scrape stays valid).
pub(crate) fn comment(out: &mut String, section: &str, error: &str) {
    let _ = writeln!(out, "# {section}: {}", error.replace(['\n', '\r'], " "));
}
