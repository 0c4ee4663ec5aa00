//! Cluster topologies: creating the cluster (slots, meet, replicate), waiting until it is ok,
//! reading its slot map, and cluster failovers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::handle::Topology;
use super::launch::Launcher;
use super::ready::poll;
use super::spec::Kind;
use crate::error::{Error, Result};
use crate::node::{Node, Role};
use crate::resp::Reply;

impl Topology {
    pub(super) fn start_cluster(&mut self, mut l: Launcher) -> Result<()> {
        let timeout = self.spec.cluster_node_timeout.as_millis().to_string();
        let extra: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
            // A replica whose primary died before its first full sync would otherwise refuse to
            // ever fail over ("Disconnected from master for longer than allowed").
            "--cluster-replica-validity-factor",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for i in 0..6 {
            self.launch_data(
                &mut l,
                &format!("node-{i}"),
                if i < 3 { Role::Primary } else { Role::Replica },
                extra.clone(),
            )?;
        }
        let ids: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                n.cmd(&["CLUSTER", "MYID"])
                    .map(|r| r.text().unwrap_or_default())
            })
            .collect::<Result<_>>()?;
        for (i, n) in self.nodes.iter().enumerate() {
            n.cmd(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()])?;
        }
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (n, (a, b)) in self.nodes.iter().zip(ranges) {
            n.cmd(&["CLUSTER", "ADDSLOTSRANGE", &a.to_string(), &b.to_string()])?;
        }
        let first = self.nodes[0].addr;
        for n in &self.nodes[1..] {
            n.cmd(&[
                "CLUSTER",
                "MEET",
                &first.ip().to_string(),
                &first.port().to_string(),
            ])?;
        }
        poll(
            "all cluster nodes to know each other",
            Duration::from_secs(30),
            || {
                for n in &self.nodes {
                    let nodes = n.cmd(&["CLUSTER", "NODES"])?.text().unwrap_or_default();
                    let known = nodes
                        .lines()
                        .filter(|l| !l.contains("handshake") && !l.contains("noaddr"))
                        .count();
                    if known < 6 {
                        return Err(Error::new(format!("{} knows {known} of 6 nodes", n.name)));
                    }
                }
                Ok(true)
            },
        )?;
        for i in 3..6 {
            let primary_id = &ids[i - 3];
            poll(
                "replica to accept CLUSTER REPLICATE",
                Duration::from_secs(10),
                || match self.nodes[i]
                    .conn()?
                    .cmd(&["CLUSTER", "REPLICATE", primary_id])?
                {
                    Reply::Error(e) => Err(Error::new(e)),
                    _ => Ok(true),
                },
            )?;
        }
        self.wait_cluster_ready(Duration::from_secs(60))
    }

    /// Waits until every reachable cluster node reports `cluster_state:ok`, all 16384 slots are
    /// served, every replica's link is up and every node's `CLUSTER SLOTS` lists a replica for
    /// each range.
    pub fn wait_cluster_ready(&self, timeout: Duration) -> Result<()> {
        poll(
            "cluster state ok with every replica attached",
            timeout,
            || {
                for n in self.data_nodes().filter(|n| n.is_up()) {
                    let mut c = n.conn()?;
                    let info = crate::resp::parse_info(
                        &c.ok(&["CLUSTER", "INFO"])?.text().unwrap_or_default(),
                    );
                    let get = |k: &str| {
                        info.iter()
                            .find(|(f, _)| f == k)
                            .map(|(_, v)| v.as_str())
                            .unwrap_or("")
                            .to_string()
                    };
                    if get("cluster_state") != "ok" || get("cluster_slots_ok") != "16384" {
                        return Err(Error::new(format!(
                            "{}: cluster_state {} slots_ok {}",
                            n.name,
                            get("cluster_state"),
                            get("cluster_slots_ok")
                        )));
                    }
                    let slots = c.ok(&["CLUSTER", "SLOTS"])?;
                    if slots.items().iter().any(|r| r.items().len() < 4) {
                        return Err(Error::new(format!(
                            "{}: a slot range has no replica yet",
                            n.name
                        )));
                    }
                }
                self.replicas_linked()
            },
        )
        .map(|_| ())
    }

    /// Current primaries, from the first reachable data node's `CLUSTER SLOTS` (cluster) or
    /// the single current primary otherwise.
    pub fn primaries(&self) -> Result<Vec<&Node>> {
        if self.spec.kind != Kind::Cluster {
            return Ok(vec![self.current_primary()?]);
        }
        let slots = self.cluster_slots()?;
        let mut out: Vec<&Node> = Vec::new();
        for (_, _, primary) in slots {
            let n = self.node_at(primary)?;
            if !out.iter().any(|o| o.name == n.name) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// `(first_slot, last_slot, primary)` ranges as the first reachable node sees them.
    pub fn cluster_slots(&self) -> Result<Vec<(u16, u16, SocketAddr)>> {
        let mut last = Error::new("no cluster node answered");
        for n in self.data_nodes() {
            let reply = match n.conn().and_then(|mut c| {
                c.set_timeout(Duration::from_millis(500));
                c.ok(&["CLUSTER", "SLOTS"])
            }) {
                Ok(r) => r,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let mut out = Vec::new();
            for range in reply.items() {
                let it = range.items();
                let (Some(a), Some(b), Some(p)) = (
                    it.first().and_then(Reply::int),
                    it.get(1).and_then(Reply::int),
                    it.get(2),
                ) else {
                    continue;
                };
                let (Some(ip), Some(port)) = (
                    p.items().first().and_then(Reply::text),
                    p.items().get(1).and_then(Reply::int),
                ) else {
                    continue;
                };
                if let Ok(addr) = format!("{ip}:{port}").parse() {
                    out.push((a as u16, b as u16, addr));
                }
            }
            return Ok(out);
        }
        Err(last)
    }

    /// The node that currently serves `key` (cluster) or the current primary.
    pub fn primary_for_key(&self, key: &str) -> Result<&Node> {
        if self.spec.kind != Kind::Cluster {
            return self.current_primary();
        }
        let slot = self
            .data_nodes()
            .find_map(|n| n.cmd(&["CLUSTER", "KEYSLOT", key]).ok())
            .and_then(|r| r.int())
            .ok_or_else(|| Error::new("no cluster node answered CLUSTER KEYSLOT"))?;
        let (_, _, addr) = self
            .cluster_slots()?
            .into_iter()
            .find(|(a, b, _)| (*a as i64..=*b as i64).contains(&slot))
            .ok_or_else(|| Error::new(format!("slot {slot} is not served")))?;
        self.node_at(addr)
    }

    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on a replica; waits until it is a primary.
    pub fn cluster_failover(
        &self,
        replica: &Node,
        mode: Option<&str>,
        timeout: Duration,
    ) -> Result<Duration> {
        let info = replica.conn()?.info("replication")?;
        let get = |k: &str| {
            info.iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let old: SocketAddr = format!("{}:{}", get("master_host"), get("master_port"))
            .parse()
            .map_err(|e| Error::new(format!("{} is not a replica: {e}", replica.name)))?;
        let start = Instant::now();
        let mut args = vec!["CLUSTER", "FAILOVER"];
        args.extend(mode);
        replica.cmd(&args)?;
        poll("replica to become primary", timeout, || {
            Ok(replica
                .conn()?
                .info_field("replication", "role")?
                .as_deref()
                == Some("master"))
        })?;
        // Every node must agree before clients are asked to follow.
        self.wait_for_slot_takeover(old, timeout)?;
        Ok(start.elapsed())
    }

    /// Polls until the slots served by `old` are served by another node and the cluster is ok
    /// again (as seen from the other nodes); returns the time waited.
    pub fn wait_for_slot_takeover(&self, old: SocketAddr, timeout: Duration) -> Result<Duration> {
        poll(
            "a replica to take over the failed primary's slots",
            timeout,
            || {
                for n in self.data_nodes().filter(|n| n.addr != old) {
                    let mut c = match n.conn() {
                        Ok(c) => c,
                        Err(_) => continue,
                    };
                    let slots = c.ok(&["CLUSTER", "SLOTS"])?;
                    let owners_old = slots.items().iter().any(|r| {
                        r.items().get(2).is_some_and(|p| {
                            p.items().get(1).and_then(Reply::int) == Some(old.port() as i64)
                                && p.items().first().and_then(Reply::text)
                                    == Some(old.ip().to_string())
                        })
                    });
                    let state = crate::resp::parse_info(
                        &c.ok(&["CLUSTER", "INFO"])?.text().unwrap_or_default(),
                    );
                    let ok = state.iter().any(|(k, v)| k == "cluster_state" && v == "ok");
                    if owners_old || !ok {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
    }
}
