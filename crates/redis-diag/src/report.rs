//! What a diagnosis produces: findings with their [`Severity`], the nodes visited, the
//! [`Report`] and its exit code, and each node's `INFO` for the exporter.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::exit;

/// The report format's identifier (bumped on incompatible changes; see
/// `schema/report.v1.json`).
pub const SCHEMA: &str = "redkit.redis-diag.report/v1";

/// How bad a finding is. Ordered: `Ok < Info < Warning < Critical`.
///
/// ```
/// use redis_diag::Severity;
/// assert!(Severity::Critical > Severity::Warning);
/// assert_eq!(Severity::Warning.exit_code(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Checked and fine.
    Ok,
    /// Worth knowing; nothing to fix.
    Info,
    /// Should be fixed.
    Warning,
    /// Fix now: data or the server is at risk.
    Critical,
}

impl Severity {
    /// The process exit code for a report whose worst finding has this severity: 0 for ok
    /// and info, 1 warning, 2 critical (3, 4 and 5 are used when nothing could be checked;
    /// see [`exit`]).
    ///
    /// ```
    /// assert_eq!(redis_diag::Severity::Info.exit_code(), 0);
    /// ```
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Ok | Severity::Info => exit::OK,
            Severity::Warning => exit::WARNING,
            Severity::Critical => exit::CRITICAL,
        }
    }

    /// `ok`, `info`, `warning` or `critical`.
    ///
    /// ```
    /// assert_eq!(redis_diag::Severity::Critical.name(), "critical");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One result of one check on one node.
///
/// ```
/// let f = redis_diag::Finding::new("memory.maxmemory", redis_diag::Severity::Ok, "127.0.0.1:6379", "memory below maxmemory");
/// assert_eq!(f.check, "memory.maxmemory");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable check id, `area.name` (e.g. `auth.nopass`; see the [crate docs](crate#check-ids)).
    pub check: String,
    /// How bad it is.
    pub severity: Severity,
    /// The node (`host:port`) it was found on.
    pub node: String,
    /// The node's role (`primary`, `replica`, `sentinel`, `unknown`).
    pub role: String,
    /// One line for humans.
    pub title: String,
    /// What was observed (values, never secrets).
    pub evidence: String,
    /// What to do about it (empty when nothing).
    pub remediation: String,
}

impl Finding {
    /// A finding with empty evidence and remediation (role `unknown`).
    ///
    /// ```
    /// let f = redis_diag::Finding::new("x.y", redis_diag::Severity::Info, "n:1", "t").evidence("e");
    /// assert_eq!(f.evidence, "e");
    /// ```
    pub fn new(check: &str, severity: Severity, node: &str, title: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            severity,
            node: node.into(),
            role: "unknown".into(),
            title: title.into(),
            evidence: String::new(),
            remediation: String::new(),
        }
    }

    /// With evidence.
    ///
    /// ```
    /// let f = redis_diag::Finding::new("x.y", redis_diag::Severity::Info, "n:1", "t").evidence("seen");
    /// assert_eq!(f.evidence, "seen");
    /// ```
    pub fn evidence(mut self, e: impl Into<String>) -> Finding {
        // Values come from the server (key names, client input): control characters are
        // escaped so they cannot drive the reader's terminal.
        let e: String = e.into();
        self.evidence = e
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        self
    }

    /// With a remediation.
    ///
    /// ```
    /// let f = redis_diag::Finding::new("x.y", redis_diag::Severity::Warning, "n:1", "t").fix("do this");
    /// assert_eq!(f.remediation, "do this");
    /// ```
    pub fn fix(mut self, r: impl Into<String>) -> Finding {
        self.remediation = r.into();
        self
    }
}

/// A node as the report lists it.
///
/// ```
/// # fn show(n: &redis_diag::NodeSummary) { println!("{} {} reachable={} auth_failed={}", n.addr, n.role, n.reachable, n.auth_failed); }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// `host:port`.
    pub addr: String,
    /// `primary`, `replica`, `sentinel` or `unknown`.
    pub role: String,
    /// Whether it answered and could be checked.
    pub reachable: bool,
    /// It answered but refused the credentials (then `reachable` is false: nothing could be
    /// checked). Absent in reports of older versions.
    #[serde(default)]
    pub auth_failed: bool,
    /// `redis_version` from `INFO`, when known.
    pub version: Option<String>,
}

/// The whole result.
///
/// ```no_run
/// # fn show(r: &redis_diag::Report) {
/// println!("{} findings, worst {:?}", r.findings.len(), r.worst());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// `standalone`, `sentinel` or `cluster`.
    pub mode: String,
    /// The nodes checked.
    pub nodes: Vec<NodeSummary>,
    /// Every finding, worst first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The worst severity found (`Ok` when there is no finding).
    ///
    /// ```
    /// let r = redis_diag::Report { schema: redis_diag::SCHEMA.into(), mode: "standalone".into(), nodes: vec![], findings: vec![] };
    /// assert_eq!(r.worst(), redis_diag::Severity::Ok);
    /// ```
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    /// The exit code for this report (see [`exit`]): when no node could be checked, 4 if one
    /// that answered refused the credentials and 3 if none answered; else by the worst
    /// finding (see [`Severity::exit_code`]).
    ///
    /// ```
    /// use redis_diag::{NodeSummary, Report, SCHEMA};
    /// let node = |auth_failed| NodeSummary { addr: "127.0.0.1:6379".into(), role: "unknown".into(), reachable: false, auth_failed, version: None };
    /// let r = Report { schema: SCHEMA.into(), mode: "standalone".into(), nodes: vec![], findings: vec![] };
    /// assert_eq!(r.exit_code(), 0);
    /// let r = Report { nodes: vec![node(false)], ..r };
    /// assert_eq!(r.exit_code(), redis_diag::exit::UNREACHABLE);
    /// let r = Report { nodes: vec![node(false), node(true)], ..r };
    /// assert_eq!(r.exit_code(), redis_diag::exit::AUTH_FAILED);
    /// ```
    pub fn exit_code(&self) -> i32 {
        if !self.nodes.is_empty() && !self.nodes.iter().any(|n| n.reachable) {
            return if self.nodes.iter().any(|n| n.auth_failed) {
                exit::AUTH_FAILED
            } else {
                exit::UNREACHABLE
            };
        }
        self.worst().exit_code()
    }

    /// The findings of `check` (on any node).
    ///
    /// ```
    /// let r = redis_diag::Report { schema: redis_diag::SCHEMA.into(), mode: "standalone".into(), nodes: vec![], findings: vec![] };
    /// assert!(r.of("auth.nopass").is_empty());
    /// ```
    pub fn of(&self, check: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.check == check).collect()
    }
}

/// One node's `INFO` fields for the exporter.
///
/// ```
/// let n = redis_diag::NodeInfo { addr: "127.0.0.1:6379".into(), role: "primary".into(), up: false, info: None };
/// assert!(!n.up); // did not answer: redis_up 0
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `host:port`.
    pub addr: String,
    /// `primary`, `replica`, `sentinel` or `unknown`.
    pub role: String,
    /// Whether it answered.
    pub up: bool,
    /// Its `INFO` fields; `None` when it did not answer or INFO was refused.
    pub info: Option<HashMap<String, String>>,
}
