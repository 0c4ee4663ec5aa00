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
//! finding (exit code 2), as an unreachable one is a critical `node.reachable` and one whose
//! TLS handshake fails a critical `node.tls`. A discovery query refused by the ACL stops the
//! diagnosis with [`Error::Redis`]`(`[`redis_conn::Error::NoPermission`]`)` naming the right
//! (exit code 3); a TLS failure at every seed with [`Error::Redis`]`(`[`redis_conn::Error::Tls`]`)`.
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
//! `cluster.state`, `sentinel.quorum`, `topology.failed-node`, `topology.discovery`. TLS
//! (security scope): `tls.protocols`, `tls.auth-clients`. Either scope: `node.reachable`,
//! `node.auth`, `node.tls`, `tls.certificate-expiry`, `info.unavailable`. Big-key sampling:
//! `keys.big`, `keys.sampled`.
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
//! # TLS
//!
//! Every check runs over TLS on every topology (`rediss://`, `rediss-sentinel://`,
//! `rediss-cluster://` URLs, or `REDIS_TLS_*`): each node the doctor finds (replicas and
//! sentinels from Sentinel, cluster nodes by IP from `CLUSTER NODES`) is reached with the
//! configured CA, client certificate and names by address (`tls_hosts`, `tls_server_name`;
//! a cluster seed given by host name lends its name to nodes found by IP, as in redis-conn).
//! A handshake that fails is a critical `node.tls` naming the node and why (the words of
//! [`redis_conn::Error::Tls`]).
//!
//! | check | finding |
//! | --- | --- |
//! | `tls.certificate-expiry` | per node (data nodes and sentinels): the certificate the node presents, read by a handshake of the doctor's own that accepts any chain (so an expired or misnamed one is still dated; the doctor's connection is what verifies). Critical when expired or expiring within 7 days, warning within 30, ok otherwise; evidence: not-after (RFC 3339, UTC), subject and issuer. Uses the client certificate when one is configured; needs no ACL right |
//! | `tls.protocols` | `tls-protocols` enabling TLSv1 or TLSv1.1, or a `tls-ciphers` list admitting weak ciphers (NULL, EXPORT, RC4, DES, 3DES, MD5, anonymous, `@SECLEVEL=0`, which lets OpenSSL 3 speak TLS 1.0 / 1.1): warning; evidence: the settings |
//! | `tls.auth-clients` | `tls-auth-clients no` (clients are not authenticated by certificate) and `optional`: info; `yes`: ok |
//!
//! `tls.protocols` and `tls.auth-clients` read `CONFIG GET` on data nodes that have a
//! `tls-port` (sentinels have no `CONFIG GET`: only their certificate is checked); when the
//! user may not run it, both are info findings saying "needs +config|get".
//!
//! # Least privilege
//!
//! The doctor needs no key and no channel, and only read-only commands. [`acl_rule`] is the
//! smallest rule for [`diagnose`] (and the exporter); paste it after
//! `ACL SETUSER redis-diag on >password` on every data node (`redis-diag acl-rule` prints it):
//!
//! ```text
//! resetkeys resetchannels -@all +ping +client|id +info +config|get +acl|whoami +acl|list +acl|dryrun +command|list +command|info +slowlog|get +latency|latest +cluster|info +cluster|nodes
//! ```
//!
//! With a right missing, the checks that need it are reported as not run, naming the right
//! (never a crash, never a false ok): see [`acl_rule`] for what each right is for and what
//! is lost without it. Only `+cluster|nodes` (and `+sentinel|get-master-addr-by-name` on the
//! sentinels) stop the diagnosis, with a typed error naming the right. Findings that describe
//! the diagnosing user itself differ by user: `commands.dangerous` is about the user the
//! doctor runs as (run it as the application's user to audit that one). Sentinels have an ACL
//! of their own, [`sentinel_acl_rule`]:
//!
//! ```text
//! resetkeys resetchannels -@all +ping +client|id +info +acl|whoami +acl|list +sentinel|get-master-addr-by-name +sentinel|replicas +sentinel|sentinels +sentinel|ckquorum
//! ```
//!
//! (redkit's test topologies leave the sentinels open, so there `auth.nopass` is critical on
//! every sentinel). The opt-in [`big_keys`] sampling needs [`big_keys_acl_rule`]:
//!
//! ```text
//! resetkeys resetchannels -@all +ping +client|id +info +cluster|nodes +scan +type +memory|usage ~*
//! ```
//!
//! Probes are read-only: configuration, `INFO`, `ACL GETUSER` / `ACL LIST` / `ACL DRYRUN`,
//! `COMMAND INFO` / `COMMAND LIST`, `SLOWLOG GET`, `LATENCY LATEST`, `CLUSTER INFO` /
//! `CLUSTER NODES`, `SENTINEL …` queries and `PING` (plus the `CLIENT ID` and `INFO server`
//! the client library sends at connect, and one TLS handshake per node for its certificate).
//! A dangerous command is never executed to
//! find out whether it is allowed: renamed vs disabled is told apart by comparing the live
//! command table (`COMMAND INFO`) with the original names (`COMMAND LIST`), and ACL
//! permission by `ACL DRYRUN`.

//! # How this crate is laid out
//!
//! Each module imports only those listed before it. `acl` (the least-privilege rules),
//! `exit` (the exit codes), `report` ([`Severity`], [`Finding`], [`NodeSummary`], [`Report`],
//! [`NodeInfo`]), `options` ([`Scope`], [`Options`]) and `error` ([`Error`]) are the
//! vocabulary. `passwords` (the well-known list) and `node` (one client per node with the TLS
//! options and credentials it needs, discovery of every node of a topology) come next. The
//! `checks` folder holds the judges, one area per file: `checks/probe.rs` (a node's answers,
//! gathered once, and how a refused command is reported), `auth`, `commands`, `tls` (the
//! certificate probe and TLS settings) and `security`; `persistence`, `slowlog`,
//! `replication`, `cluster`, `sentinel` and `health`, which runs the health ones in order;
//! `checks/run.rs` visits one node. `diagnose` ([`diagnose`]) runs them on every
//! node; `output` (table, JSON), `exporter` (Prometheus) and `bigkeys` (sampling) use it.
//! `lib.rs` only declares and re-exports.

mod acl;
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

pub use acl::{acl_rule, big_keys_acl_rule, sentinel_acl_rule};
pub use bigkeys::{BigKeyOptions, big_keys};
pub use diagnose::diagnose;
pub use error::Error;
pub use exporter::{escape_label, render_prometheus, scrape, serve};
pub use node::{NodeRole, Target};
pub use options::{Options, Scope};
pub use output::{render_json, render_table};
pub use report::{Finding, NodeInfo, NodeSummary, Report, SCHEMA, Severity};
