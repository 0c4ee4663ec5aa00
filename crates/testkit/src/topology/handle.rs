//! The running [`Topology`] value: its fields (shared by the sibling modules that start,
//! inspect, break and tear it down), accessors, URL, node lookup and log report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;

use super::spec::{Kind, Spec};
use crate::error::{Error, Result};
use crate::node::{Node, Role};

/// A running topology. Dropping it stops every server and removes its files (logs are printed
/// and kept when the thread is panicking, i.e. a test failed).
#[derive(Debug)]
pub struct Topology {
    pub(super) spec: Spec,
    pub(super) run_id: String,
    pub(super) dir: PathBuf,
    pub(super) nodes: Vec<Node>,
    pub(super) watchdog: Option<Child>,
    pub(super) detached: bool,
}

impl Topology {
    /// The spec it was started from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// All nodes (data nodes first, then sentinels).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::new(format!("no node named {name}")))
    }

    /// Data nodes (not sentinels).
    pub fn data_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role != Role::Sentinel)
    }

    /// Sentinels (empty unless this is a Sentinel topology).
    pub fn sentinels(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Sentinel)
    }

    /// The run directory (node dirs with configs and logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL clients use: `redis://host:port`, `redis-sentinel://s1,s2,s3/mymaster` or
    /// `redis-cluster://n1,n2,...`, with `user:password@` when auth is on.
    pub fn url(&self) -> String {
        let creds = match &self.spec.auth {
            None => String::new(),
            Some(a) => format!("{}:{}@", a.username.as_deref().unwrap_or(""), a.password),
        };
        let join = |nodes: &mut dyn Iterator<Item = &Node>| {
            nodes
                .map(|n| n.addr.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match self.spec.kind {
            Kind::Standalone => format!("redis://{creds}{}", self.nodes[0].addr),
            Kind::Sentinel => format!(
                "redis-sentinel://{creds}{}/{}",
                join(&mut self.sentinels()),
                self.spec.master_name
            ),
            Kind::Cluster => format!("redis-cluster://{creds}{}", join(&mut self.data_nodes())),
        }
    }

    pub(super) fn node_at(&self, addr: SocketAddr) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.addr == addr)
            .ok_or_else(|| Error::new(format!("no node at {addr}")))
    }

    /// The current primary (standalone or Sentinel; as reported by the sentinels).
    pub fn current_primary(&self) -> Result<&Node> {
        match self.spec.kind {
            Kind::Standalone => Ok(&self.nodes[0]),
            Kind::Sentinel => self.node_at(self.sentinel_master_addr()?),
            Kind::Cluster => Err(Error::new(
                "a cluster has several primaries: use primary_for_key or primaries",
            )),
        }
    }

    /// The replicas currently attached to `primary` (by `INFO replication` on the replicas).
    pub fn replicas_of(&self, primary: &Node) -> Vec<&Node> {
        self.data_nodes()
            .filter(|n| n.name != primary.name)
            .filter(|n| {
                n.conn()
                    .and_then(|mut c| c.info("replication"))
                    .map(|info| {
                        let get =
                            |k: &str| info.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
                        get("role").as_deref() == Some("slave")
                            && get("master_port") == Some(primary.addr.port().to_string())
                            && get("master_host") == Some(primary.addr.ip().to_string())
                    })
                    .unwrap_or(false)
            })
            .collect()
    }

    /// The last `lines` of every node's log, headed by node name and address.
    pub fn log_report(&self, lines: usize) -> String {
        let mut out = format!(
            "--- logs of {} (kept in {}) ---\n",
            self.run_id,
            self.dir.display()
        );
        for n in &self.nodes {
            out.push_str(&format!(
                "--- {} {} ---\n{}\n",
                n.name,
                n.addr,
                n.log_tail(lines)
            ));
        }
        out
    }
}
