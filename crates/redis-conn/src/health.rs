//! Health: round-trip latency, roles and the shape of the deployment as the client sees it.

use std::time::{Duration, Instant};

use fred::interfaces::{ClientLike, ClusterInterface};
use fred::types::InfoKind;

use tracing::Instrument;

use crate::client::RedisClient;
use crate::error::Result;

/// One node as seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeHealth {
    /// `host:port`.
    pub addr: String,
    /// `primary` or `replica`.
    pub role: String,
    /// `PING` round trip (measured for the node(s) the client sends commands to; `None` for
    /// replicas it does not use).
    pub latency: Option<Duration>,
    /// For a replica: its primary's address.
    pub primary: Option<String>,
    /// Whether the node is reachable / its replication link is up, as far as known.
    pub ok: bool,
}

/// The deployment as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// `standalone`, `sentinel` or `cluster`.
    pub mode: &'static str,
    /// Primaries first, then replicas.
    pub nodes: Vec<NodeHealth>,
}

impl Health {
    /// The primaries.
    pub fn primaries(&self) -> impl Iterator<Item = &NodeHealth> {
        self.nodes.iter().filter(|n| n.role == "primary")
    }

    /// The replicas.
    pub fn replicas(&self) -> impl Iterator<Item = &NodeHealth> {
        self.nodes.iter().filter(|n| n.role == "replica")
    }

    /// The slowest primary round trip.
    pub fn max_latency(&self) -> Option<Duration> {
        self.nodes.iter().filter_map(|n| n.latency).max()
    }
}

/// Pings every primary and describes the topology.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
/// let h = redis_conn::health(&redis).await?;
/// for n in &h.nodes {
///     println!("{} {} {:?}", n.addr, n.role, n.latency);
/// }
/// # Ok(()) }
/// ```
pub async fn health(client: &RedisClient) -> Result<Health> {
    health_inner(client)
        .instrument(tracing::debug_span!("redis.health"))
        .await
}

async fn health_inner(client: &RedisClient) -> Result<Health> {
    let c = client.next();
    let mode = client.config().mode.name();
    let mut nodes = Vec::new();
    if client.is_cluster() {
        // Primaries as fred routes to them (its slot map), so a ping goes where commands go.
        let primaries = c
            .cached_cluster_state()
            .map(|s| s.unique_primary_nodes())
            .unwrap_or_default();
        let mut by_addr = std::collections::HashMap::new();
        for server in primaries {
            let addr = format!("{}:{}", server.host, server.port);
            let start = Instant::now();
            let r: std::result::Result<String, _> = c.with_cluster_node(server).ping(None).await;
            let latency = r.ok().map(|_| start.elapsed());
            by_addr.insert(addr.clone(), nodes.len());
            nodes.push(NodeHealth {
                ok: latency.is_some(),
                addr,
                role: "primary".into(),
                latency,
                primary: None,
            });
        }
        // Replicas and link states from CLUSTER NODES:
        // <id> <ip:port@cport[,hostname]> <flags> <primary id> <ping> <pong> <epoch> <link> [slots]
        let text: String = c.cluster_nodes().await?;
        let mut ids = std::collections::HashMap::new();
        let mut replicas = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let addr = f[1].split('@').next().unwrap_or(f[1]).to_string();
            ids.insert(f[0].to_string(), addr.clone());
            let failed = f[2].split(',').any(|flag| flag == "fail");
            let ok = !failed && f[7] == "connected";
            if f[2].contains("slave") {
                replicas.push((addr, f[3].to_string(), ok));
            } else if let Some(&i) = by_addr.get(&addr) {
                nodes[i].ok &= ok;
            }
        }
        for (addr, pid, ok) in replicas {
            nodes.push(NodeHealth {
                addr,
                role: "replica".into(),
                latency: None,
                primary: ids.get(&pid).cloned(),
                ok,
            });
        }
    } else {
        let start = Instant::now();
        let _: String = c.ping(None).await?;
        let latency = start.elapsed();
        let addr = c
            .active_connections()
            .first()
            .map(|s| format!("{}:{}", s.host, s.port))
            .unwrap_or_default();
        let info: String = c.info(Some(InfoKind::Replication)).await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix(name)
                        .and_then(|r| r.strip_prefix(':'))
                })
                .map(str::to_string)
        };
        let is_replica = field("role").as_deref() == Some("slave");
        nodes.push(NodeHealth {
            addr: addr.clone(),
            role: if is_replica { "replica" } else { "primary" }.into(),
            latency: Some(latency),
            primary: is_replica
                .then(|| {
                    Some(format!(
                        "{}:{}",
                        field("master_host")?,
                        field("master_port")?
                    ))
                })
                .flatten(),
            ok: !is_replica || field("master_link_status").as_deref() == Some("up"),
        });
        for line in info.lines() {
            // slave0:ip=127.0.0.1,port=7202,state=online,offset=123,lag=0
            let Some((k, v)) = line.trim().split_once(':') else {
                continue;
            };
            if !k.starts_with("slave") || !k[5..].chars().all(|ch| ch.is_ascii_digit()) {
                continue;
            }
            let field = |name: &str| {
                v.split(',')
                    .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                    .unwrap_or("")
            };
            nodes.push(NodeHealth {
                addr: format!("{}:{}", field("ip"), field("port")),
                role: "replica".into(),
                latency: None,
                primary: Some(addr.clone()),
                ok: field("state") == "online",
            });
        }
    }
    Ok(Health { mode, nodes })
}
