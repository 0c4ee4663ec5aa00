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

//! # How this crate is laid out
//!
//! Each module imports only those listed before it. `exit` (the exit codes), `report`
//! ([`Severity`], [`Finding`], [`NodeSummary`], [`Report`], [`NodeInfo`]), `options`
//! ([`Scope`], [`Options`]) and `error` ([`Error`]) are the vocabulary. `passwords` (the
//! well-known list) and `node` (one client per node, discovery of every node of a topology)
//! come next. The `checks` folder holds the judges, one area per file: `checks/probe.rs` (a
//! node's answers, gathered once), `auth`, `commands` and `security`; `persistence`,
//! `slowlog`, `replication`, `cluster`, `sentinel` and `health`, which runs the health ones
//! in order; `checks/run.rs` visits one node. `diagnose` ([`diagnose`]) runs them on every
//! node; `output` (table, JSON), `exporter` (Prometheus) and `bigkeys` (sampling) use it.
//! `lib.rs` only declares and re-exports.

mod bigkeys;
mod checks;
mod diagnose;
mod error;
pub mod exit;
mod exporter;
mod node;
mod options;
mod output;
mod passwords;
mod report;

pub use bigkeys::{BigKeyOptions, big_keys};
pub use diagnose::diagnose;
pub use error::Error;
pub use exporter::{render_prometheus, serve};
pub use node::{NodeRole, Target};
pub use options::{Options, Scope};
pub use output::{render_json, render_table};
pub use report::{Finding, NodeInfo, NodeSummary, Report, SCHEMA, Severity};
