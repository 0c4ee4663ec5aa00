//! A doctor for Redis deployments: read-only security and health checks run on EVERY node of
//! a topology (a standalone server; Sentinel's primary, replicas and the sentinels
//! themselves; every cluster primary and replica), reported as findings with a severity, the
//! node, evidence and a remediation. Secrets are never printed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), redis_diag::Error> {
//! let config = redis_conn::RedisConfig::from_url("redis://127.0.0.1:6379").map_err(redis_diag::Error::from)?;
//! let report = redis_diag::diagnose(&config, redis_diag::Scope::All, &redis_diag::Options::default()).await?;
//! for f in &report.findings {
//!     println!("{:?} {} {}: {}", f.severity, f.node, f.check, f.title);
//! }
//! std::process::exit(report.exit_code());
//! # }
//! ```
//!
//! # Exit codes
//!
//! [`Report::exit_code`] and [`Error::exit_code`] give the `redis-diag` binary's exit code
//! (constants in [`exit`]):
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | the worst finding is ok or info |
//! | 1 | the worst finding is a warning |
//! | 2 | the worst finding is critical |
//! | 3 | nothing could be checked: no node answered (refused, timed out) or the topology could not be discovered |
//! | 4 | nothing could be checked: authentication failed on every node that answered (wrong or missing password, disabled user) |
//! | 5 | invalid configuration or arguments (malformed URL, bad `REDIS_*` variable, unknown flag) |
//!
//! A node that refuses the credentials while others are checked is a critical `node.auth`
//! finding (exit code 2), as an unreachable one is a critical `node.reachable`.
//!
//! # Check ids
//!
//! Security: `auth.nopass`, `auth.weak-password`, `acl.broad-user`, `acl.unavailable`,
//! `network.protected-mode`, `network.tls`, `config.enable-debug-command`,
//! `config.enable-module-command`, `config.enable-protected-configs`, `config.unavailable`,
//! `files.suspicious-dir`, `replication.source`, `commands.dangerous`. Health:
//! `latency.ping`, `memory.maxmemory`, `memory.eviction-policy`, `memory.fragmentation`,
//! `clients.maxclients`, `stats.evictions`, `stats.rejected-connections`,
//! `stats.blocked-clients`, `persistence.rdb`, `persistence.aof`, `persistence.aof-fsync`,
//! `persistence.off`, `slowlog`, `latency.monitor`, `replication.link`,
//! `replication.writable-replica`, `replication.replica-lag`, `keyspace.hit-ratio`,
//! `cluster.state`, `sentinel.quorum`, `topology.failed-node`. Either scope: `node.reachable`,
//! `node.auth`, `info.unavailable`. Big-key sampling: `keys.big`, `keys.sampled`.
//!
//! Notable judgements: `auth.weak-password` is critical when a password of an enabled ACL
//! user (compared by its SHA-256 hash from `ACL LIST`) or `requirepass` (from `CONFIG GET`)
//! is one of a few dozen well-known passwords (`foobared`, the example of redis.conf, among
//! them), a warning when `requirepass` is shorter than 12 characters; the password itself is
//! never printed. `clients.maxclients` compares the connections (clients, replicas and cluster
//! links, this diagnosis's own connection not counted) with `maxclients`: warning from 80 %,
//! critical from 95 %. `persistence.aof-fsync` warns about `appendfsync no`;
//! `replication.writable-replica` about `replica-read-only no`; a replica in its first (or a
//! full) sync has an info `replication.link`, not a critical one.
//!
//! Probes are read-only: configuration, `INFO`, `ACL GETUSER` / `ACL LIST` / `ACL DRYRUN`,
//! `COMMAND INFO` / `COMMAND LIST`, `SLOWLOG GET`, `LATENCY LATEST`, `CLUSTER INFO` /
//! `CLUSTER NODES`, `SENTINEL …` queries and `PING`. A dangerous command is never executed to
//! find out whether it is allowed: renamed vs disabled is told apart by comparing the live
//! command table (`COMMAND INFO`) with the original names (`COMMAND LIST`), and ACL
//! permission by `ACL DRYRUN`.

mod bigkeys;
mod checks;
mod exporter;
mod node;
mod output;
mod passwords;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use bigkeys::{BigKeyOptions, big_keys};
pub use exporter::{NodeInfo, render_prometheus, serve};
pub use node::{NodeRole, Target};
pub use output::{render_json, render_table};

/// The report format's identifier (bumped on incompatible changes; see
/// `schema/report.v1.json`).
pub const SCHEMA: &str = "redkit.redis-diag.report/v1";

/// The exit codes of the `redis-diag` binary (see the [crate docs](crate#exit-codes)).
///
/// ```
/// assert_eq!(redis_diag::exit::AUTH_FAILED, 4);
/// ```
pub mod exit {
    /// The worst finding is ok or info.
    pub const OK: i32 = 0;
    /// The worst finding is a warning.
    pub const WARNING: i32 = 1;
    /// The worst finding is critical.
    pub const CRITICAL: i32 = 2;
    /// Nothing could be checked: no node answered, or the topology could not be discovered.
    pub const UNREACHABLE: i32 = 3;
    /// Nothing could be checked: every node that answered refused the credentials.
    pub const AUTH_FAILED: i32 = 4;
    /// Invalid configuration or command-line arguments.
    pub const USAGE: i32 = 5;
}

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

/// Which checks to run.
///
/// ```
/// assert_ne!(redis_diag::Scope::Security, redis_diag::Scope::Health);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Security and health.
    All,
    /// Security only.
    Security,
    /// Health only.
    Health,
}

/// Thresholds and probe settings.
///
/// ```
/// let o = redis_diag::Options::default();
/// assert_eq!(o.slow_command, std::time::Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// A slowlog entry at least this long is reported. Default 10 ms.
    pub slow_command: Duration,
    /// PINGs per node for the latency percentiles. Default 20.
    pub pings: u32,
    /// How long one probe may take. Default 3 s.
    pub probe_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            slow_command: Duration::from_millis(10),
            pings: 20,
            probe_timeout: Duration::from_secs(3),
        }
    }
}

/// What can stop a diagnosis altogether (a node that does not answer is a finding, not an
/// error).
///
/// ```
/// let e = redis_diag::Error::Discovery("no sentinel answered".into());
/// assert!(e.to_string().contains("sentinel"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration or connection setup failed.
    #[error(transparent)]
    Redis(#[from] redis_conn::Error),
    /// The topology's nodes could not be found.
    #[error("cannot discover the topology: {0}")]
    Discovery(String),
    /// The topology could not be discovered because every seed (or sentinel) that answered
    /// refused the credentials. Never contains the password.
    #[error("cannot discover the topology: authentication failed on {0}")]
    Auth(String),
}

impl Error {
    /// The `redis-diag` exit code for a diagnosis that stopped with this error (see
    /// [`exit`]): 5 for invalid configuration, 4 for refused credentials, 3 otherwise.
    ///
    /// ```
    /// let e = redis_diag::Error::Discovery("no sentinel answered".into());
    /// assert_eq!(e.exit_code(), redis_diag::exit::UNREACHABLE);
    /// let e = redis_diag::Error::Auth("127.0.0.1:26379: WRONGPASS".into());
    /// assert_eq!(e.exit_code(), redis_diag::exit::AUTH_FAILED);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Redis(redis_conn::Error::Config { .. }) => exit::USAGE,
            Error::Redis(redis_conn::Error::Auth(_)) | Error::Auth(_) => exit::AUTH_FAILED,
            Error::Redis(_) | Error::Discovery(_) => exit::UNREACHABLE,
        }
    }
}

/// Runs the checks of `scope` on every node of the deployment `config` describes.
///
/// ```no_run
/// # async fn demo(cfg: redis_conn::RedisConfig) -> Result<(), redis_diag::Error> {
/// let report = redis_diag::diagnose(&cfg, redis_diag::Scope::Security, &redis_diag::Options::default()).await?;
/// println!("{}", redis_diag::render_table(&report, 80));
/// # Ok(()) }
/// ```
pub async fn diagnose(
    config: &redis_conn::RedisConfig,
    scope: Scope,
    opts: &Options,
) -> Result<Report, Error> {
    Ok(diagnose_nodes(config, scope, opts).await?.0)
}

/// [`diagnose`], also returning each node's `INFO` fields as the checks read them (for the
/// exporter: one visit per node and scrape).
pub(crate) async fn diagnose_nodes(
    config: &redis_conn::RedisConfig,
    scope: Scope,
    opts: &Options,
) -> Result<(Report, Vec<NodeInfo>), Error> {
    let targets = node::discover(config, opts).await?;
    let mut nodes = Vec::new();
    let mut infos = Vec::new();
    let mut findings = Vec::new();
    for target in &targets {
        let (summary, mut found, info) = checks::run_node(config, target, scope, opts).await;
        infos.push(NodeInfo {
            addr: summary.addr.clone(),
            role: summary.role.clone(),
            up: summary.reachable,
            info,
        });
        nodes.push(summary);
        findings.append(&mut found);
    }
    if scope != Scope::Security {
        findings.extend(checks::topology_checks(config, &targets, opts).await);
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.node.cmp(&b.node))
            .then_with(|| a.check.cmp(&b.check))
    });
    let report = Report {
        schema: SCHEMA.into(),
        mode: config.mode.name().into(),
        nodes,
        findings,
    };
    Ok((report, infos))
}
