//! Finding every node of a topology, and connecting to one node at a time.

use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::{CustomCommand, Value};
use redis_conn::{Dedicated, Endpoint, Mode, RedisConfig};

use crate::error::Error;
use crate::options::Options;
use crate::report::{Finding, NodeSummary, Severity};

/// What a node is in its topology.
///
/// ```
/// assert_eq!(redis_diag::NodeRole::Sentinel.name(), "sentinel");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// A data node that accepts writes.
    Primary,
    /// A replica.
    Replica,
    /// A Sentinel process.
    Sentinel,
    /// Not known before asking it (standalone mode).
    Unknown,
}

impl NodeRole {
    /// `primary`, `replica`, `sentinel` or `unknown`.
    ///
    /// ```
    /// assert_eq!(redis_diag::NodeRole::Replica.name(), "replica");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            NodeRole::Primary => "primary",
            NodeRole::Replica => "replica",
            NodeRole::Sentinel => "sentinel",
            NodeRole::Unknown => "unknown",
        }
    }
}

/// A node to check.
///
/// ```
/// # fn show(t: &redis_diag::Target) { println!("{} ({})", t.addr(), t.role.name()); }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where it listens.
    pub endpoint: Endpoint,
    /// Its role as the topology reports it.
    pub role: NodeRole,
    /// The cluster (or sentinel) marks it as failed.
    pub marked_failed: bool,
}

impl Target {
    /// `host:port`.
    ///
    /// ```
    /// let t = redis_diag::Target { endpoint: redis_conn::Endpoint { host: "10.0.0.1".into(), port: 6379 }, role: redis_diag::NodeRole::Primary, marked_failed: false };
    /// assert_eq!(t.addr(), "10.0.0.1:6379");
    /// ```
    pub fn addr(&self) -> String {
        self.endpoint.to_string()
    }
}

/// Sends one command (read-only probes only).
pub(crate) async fn call(
    client: &Client,
    name: &'static str,
    args: Vec<String>,
) -> Result<Value, fred::error::Error> {
    client
        .custom::<Value, _>(CustomCommand::new_static(name, None, false), args)
        .await
}

/// Why a node could not be checked. Messages never contain a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectFailure {
    /// It answered but refused the credentials (`WRONGPASS`, `NOAUTH`, a disabled user).
    #[error("{0}")]
    Auth(String),
    /// It did not answer: connection refused, closed or timed out, or the client could not
    /// be set up for it.
    #[error("{0}")]
    Unreachable(String),
}

impl ConnectFailure {
    /// The one finding that stands for the node: `node.auth` or `node.reachable`, critical.
    pub(crate) fn finding(&self, target: &Target) -> Finding {
        let mut f = match self {
            ConnectFailure::Auth(e) => Finding::new(
                "node.auth",
                Severity::Critical,
                &target.addr(),
                "authentication failed: the node refused the credentials, nothing could be checked",
            )
            .evidence(e.clone())
            .fix(if target.role == NodeRole::Sentinel {
                "check the sentinel username and password (sentinel credentials in the URL, or REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD)"
            } else {
                "check the username and password (URL userinfo, or REDIS_USERNAME / REDIS_PASSWORD) and that the ACL user is on"
            }),
            ConnectFailure::Unreachable(e) => Finding::new(
                "node.reachable",
                Severity::Critical,
                &target.addr(),
                "the node does not answer",
            )
            .evidence(e.clone())
            .fix("check that the process runs and the address is reachable from here"),
        };
        f.role = target.role.name().into();
        f
    }

    /// The node as the report lists it: not reachable (nothing was checked), and whether it
    /// refused the credentials.
    pub(crate) fn summary(&self, target: &Target) -> NodeSummary {
        NodeSummary {
            addr: target.addr(),
            role: target.role.name().into(),
            reachable: false,
            auth_failed: matches!(self, ConnectFailure::Auth(_)),
            version: None,
        }
    }
}

/// Sorts a connection error: refused credentials apart from everything else.
fn failure(e: fred::error::Error) -> ConnectFailure {
    match redis_conn::Error::from(e) {
        e @ redis_conn::Error::Auth(_) => ConnectFailure::Auth(e.to_string()),
        e => ConnectFailure::Unreachable(e.to_string()),
    }
}

/// A client for exactly this node (no topology following), failing fast.
///
/// Without a password the connection itself succeeds on a server that requires one; the
/// `PING` after it tells (`NOAUTH`), so a missing password is an authentication failure too,
/// not a node that answers nothing.
pub(crate) async fn connect(
    base: &RedisConfig,
    endpoint: &Endpoint,
    sentinel: bool,
    timeout: Duration,
) -> Result<Client, ConnectFailure> {
    let mut cfg = base.clone();
    if let Mode::Sentinel {
        sentinel_username,
        sentinel_password,
        ..
    } = &base.mode
        && sentinel
    {
        cfg.username = sentinel_username.clone();
        cfg.password = sentinel_password.clone();
        cfg.database = None;
    }
    cfg.mode = Mode::Standalone {
        server: endpoint.clone(),
    };
    cfg.connect_timeout = timeout;
    cfg.command_timeout = timeout;
    let client = redis_conn::builder(&cfg, Dedicated::Plain)
        .and_then(|b| b.build().map_err(redis_conn::Error::from))
        .map_err(|e| ConnectFailure::Unreachable(e.to_string()))?;
    match tokio::time::timeout(timeout, client.init()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(failure(e)),
        Err(_) => {
            return Err(ConnectFailure::Unreachable(format!(
                "no answer within {timeout:?}"
            )));
        }
    }
    // Only NOAUTH means "not authenticated": a PING denied by the ACL (NOPERM) still came
    // from a node we are logged in to.
    if let Err(e) = call(&client, "PING", vec![]).await
        && e.details().starts_with("NOAUTH")
    {
        let _ = client.quit().await;
        return Err(failure(e));
    }
    Ok(client)
}

fn endpoint(host: &str, port: &str) -> Option<Endpoint> {
    Some(Endpoint {
        host: host.to_string(),
        port: port.parse().ok()?,
    })
}

/// `ip:port@bus,hostname` → endpoint.
fn cluster_addr(field: &str) -> Option<Endpoint> {
    let addr = field.split(['@', ',']).next()?;
    let (host, port) = addr.rsplit_once(':')?;
    endpoint(host.trim_start_matches('[').trim_end_matches(']'), port)
}

/// Parses `CLUSTER NODES` into targets.
pub(crate) fn parse_cluster_nodes(text: &str, seed: &Endpoint) -> Vec<Target> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let Some(mut ep) = cluster_addr(f[1]) else {
            continue;
        };
        // A node that never met another lists itself without an address.
        if ep.host.is_empty() {
            ep.host = seed.host.clone();
        }
        if ep.port == 0 {
            continue; // a node without an address (handshake or forgotten)
        }
        let flags: Vec<&str> = f[2].split(',').collect();
        let role = if flags.contains(&"master") {
            NodeRole::Primary
        } else if flags.contains(&"slave") {
            NodeRole::Replica
        } else {
            NodeRole::Unknown
        };
        out.push(Target {
            endpoint: ep,
            role,
            // `fail?` is one node's suspicion (PFAIL), not the cluster's verdict.
            marked_failed: flags.contains(&"fail"),
        });
    }
    out.sort_by_key(|a| a.addr());
    out
}

/// Field `name` of a Sentinel reply entry (a flat [k, v, …] array or a map).
fn entry_field(entry: &Value, name: &str) -> Option<String> {
    match entry {
        Value::Array(items) => items
            .chunks(2)
            .find(|kv| kv[0].as_string().as_deref() == Some(name))
            .and_then(|kv| kv.get(1))
            .and_then(Value::as_string),
        Value::Map(map) => map
            .clone()
            .inner()
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .and_then(|(_, v)| v.as_string()),
        _ => None,
    }
}

/// Why no seed (or sentinel) told us the topology: an authentication failure wins over an
/// unreachable seed, so that a wrong password is reported as such (exit code 4) even when
/// another seed is down; a seed that was logged in to but gave no usable answer wins over
/// both.
struct DiscoveryFailure {
    last: String,
    auth: Option<String>,
    answered: Option<String>,
}

impl DiscoveryFailure {
    fn new(nothing: &str) -> DiscoveryFailure {
        DiscoveryFailure {
            last: nothing.into(),
            auth: None,
            answered: None,
        }
    }

    fn connect(&mut self, seed: &Endpoint, e: ConnectFailure) {
        match e {
            ConnectFailure::Auth(m) => self.auth = Some(format!("{seed}: {m}")),
            ConnectFailure::Unreachable(m) => self.last = format!("{seed}: {m}"),
        }
    }

    fn answered(&mut self, why: String) {
        self.answered = Some(why);
    }

    fn into_error(self) -> Error {
        match (self.answered, self.auth) {
            (Some(why), _) => Error::Discovery(why),
            (None, Some(why)) => Error::Auth(why),
            (None, None) => Error::Discovery(self.last),
        }
    }
}

/// Every node of the deployment.
pub(crate) async fn discover(config: &RedisConfig, opts: &Options) -> Result<Vec<Target>, Error> {
    match &config.mode {
        Mode::Standalone { server } => Ok(vec![Target {
            endpoint: server.clone(),
            role: NodeRole::Unknown,
            marked_failed: false,
        }]),
        Mode::Cluster { seeds } => {
            let mut failed = DiscoveryFailure::new("no seed configured");
            for seed in seeds {
                match connect(config, seed, false, opts.probe_timeout).await {
                    Ok(c) => {
                        let nodes = call(&c, "CLUSTER", vec!["NODES".into()]).await;
                        let _ = c.quit().await;
                        match nodes.map(|v| v.as_string()) {
                            Ok(Some(text)) => return Ok(parse_cluster_nodes(&text, seed)),
                            Ok(None) => {
                                failed.answered(format!("{seed}: CLUSTER NODES gave no text"))
                            }
                            Err(e) => failed.answered(format!("{seed}: {e}")),
                        }
                    }
                    Err(e) => failed.connect(seed, e),
                }
            }
            Err(failed.into_error())
        }
        Mode::Sentinel {
            sentinels,
            service_name,
            ..
        } => {
            let mut targets: Vec<Target> = sentinels
                .iter()
                .map(|s| Target {
                    endpoint: s.clone(),
                    role: NodeRole::Sentinel,
                    marked_failed: false,
                })
                .collect();
            let mut failed = DiscoveryFailure::new("no sentinel configured");
            for s in sentinels {
                let c = match connect(config, s, true, opts.probe_timeout).await {
                    Ok(c) => c,
                    Err(e) => {
                        failed.connect(s, e);
                        continue;
                    }
                };
                let name = service_name.clone();
                let primary = call(
                    &c,
                    "SENTINEL",
                    vec!["GET-MASTER-ADDR-BY-NAME".into(), name.clone()],
                )
                .await;
                let replicas = call(&c, "SENTINEL", vec!["REPLICAS".into(), name.clone()]).await;
                let others = call(&c, "SENTINEL", vec!["SENTINELS".into(), name.clone()]).await;
                let _ = c.quit().await;
                let primary = match primary {
                    Ok(Value::Array(a)) if a.len() == 2 => {
                        let host = a[0].as_string().unwrap_or_default();
                        let port = a[1].as_string().unwrap_or_default();
                        endpoint(&host, &port)
                    }
                    Ok(other) => {
                        failed.answered(format!("{s}: no primary named {name:?} ({other:?})"));
                        continue;
                    }
                    Err(e) => {
                        failed.answered(format!("{s}: {e}"));
                        continue;
                    }
                };
                if let Some(p) = primary {
                    targets.push(Target {
                        endpoint: p,
                        role: NodeRole::Primary,
                        marked_failed: false,
                    });
                }
                if let Ok(Value::Array(list)) = replicas {
                    for r in &list {
                        let (Some(ip), Some(port)) = (entry_field(r, "ip"), entry_field(r, "port"))
                        else {
                            continue;
                        };
                        let flags = entry_field(r, "flags").unwrap_or_default();
                        if let Some(ep) = endpoint(&ip, &port) {
                            targets.push(Target {
                                endpoint: ep,
                                role: NodeRole::Replica,
                                marked_failed: flags.contains("s_down") || flags.contains("o_down"),
                            });
                        }
                    }
                }
                if let Ok(Value::Array(list)) = others {
                    for o in &list {
                        if let (Some(ip), Some(port)) =
                            (entry_field(o, "ip"), entry_field(o, "port"))
                            && let Some(ep) = endpoint(&ip, &port)
                            && !targets.iter().any(|t| t.endpoint == ep)
                        {
                            targets.push(Target {
                                endpoint: ep,
                                role: NodeRole::Sentinel,
                                marked_failed: false,
                            });
                        }
                    }
                }
                return Ok(targets);
            }
            Err(failed.into_error())
        }
        other => Err(Error::Discovery(format!(
            "mode {} is not supported",
            other.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_are_parsed_with_roles_and_failures() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,host-b master - 0 1426238316232 2 connected 5461-10922
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
6ec2 127.0.0.1:30005@40005 master,fail - 1426238316232 1426238316232 5 disconnected
";
        let seed = Endpoint {
            host: "127.0.0.1".into(),
            port: 30001,
        };
        let t = parse_cluster_nodes(text, &seed);
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].addr(), "127.0.0.1:30001");
        assert_eq!(t[0].role, NodeRole::Primary);
        let failed: Vec<String> = t
            .iter()
            .filter(|t| t.marked_failed)
            .map(Target::addr)
            .collect();
        assert_eq!(failed, vec!["127.0.0.1:30005"]);
        assert_eq!(t[2].role, NodeRole::Replica);
    }
}
