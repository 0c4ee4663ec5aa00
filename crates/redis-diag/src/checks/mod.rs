//! The checks. Each looks at what one node answers (or the topology as a whole) and returns
//! findings; the judging parts are pure functions, tested without a server.
//!
//! Read bottom up: `probe` (one node's answers, and how a refused command is reported), the
//! judges — `auth`, `commands`, `tls` (the certificate probe and the TLS settings),
//! `security`; `persistence`, `slowlog`, `replication`, `cluster`, `sentinel`, and `health`
//! that runs the health ones in order — then `run`, which visits one node with the checks of
//! a scope.

mod auth;
#[cfg(feature = "tls")]
mod certificate;
mod cluster;
mod commands;
mod health;
mod persistence;
mod probe;
#[cfg(test)]
mod properties;
mod replication;
mod run;
mod security;
mod sentinel;
mod slowlog;
mod tls;

pub(crate) use cluster::topology_checks;
pub(crate) use run::run_node;
