#![doc = include_str!("../README.md")]

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
