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

/// Whether a command was refused by the ACL (`NOPERM`), not failed otherwise.
pub(crate) fn is_denied(e: &fred::error::Error) -> bool {
    e.details().starts_with("NOPERM")
}

/// Why a node could not be checked. Messages never contain a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectFailure {
    /// It answered but refused the credentials (`WRONGPASS`, `NOAUTH`, a disabled user).
    #[error("{0}")]
    Auth(String),
    /// The TLS handshake failed (the same words as [`redis_conn::Error::Tls`]).
    #[error("TLS with {target} failed: {reason}")]
    Tls {
        /// The node, as a URL without credentials (`rediss://10.0.0.1:6379`).
        target: String,
        /// What failed and what to change.
        reason: String,
    },
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
            ConnectFailure::Tls { .. } => Finding::new(
                "node.tls",
                Severity::Critical,
                &target.addr(),
                "the TLS handshake failed: nothing could be checked, and clients fail the same way",
            )
            .evidence(self.to_string())
            .fix("fix what the evidence names (certificate, CA, name, client certificate); tls.certificate-expiry shows the certificate the node presents"),
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

/// Sorts a connection error: refused credentials, a failed TLS handshake, everything else.
fn failure(cfg: &RedisConfig, e: fred::error::Error) -> ConnectFailure {
    let tls = cfg
        .tls
        .as_ref()
        .and_then(|options| tls_reason(e.details(), options));
    match (redis_conn::Error::from(e), tls) {
        (e @ redis_conn::Error::Auth(_), _) => ConnectFailure::Auth(e.to_string()),
        (e, Some(why)) => ConnectFailure::Tls {
            target: cfg.target(),
            reason: format!("{why} ({e})"),
        },
        (e, None) => {
            let m = e.to_string();
            // A TLS-only port closes a plaintext connection at its first bytes.
            let closed = cfg.tls.is_none()
                && ["reset", "closed", "UnexpectedEof", "BrokenPipe"]
                    .iter()
                    .any(|w| m.contains(w));
            ConnectFailure::Unreachable(if closed {
                format!(
                    "{m}: the server closed the connection during set-up: if it only accepts TLS, use rediss:// (or REDIS_TLS=true)"
                )
            } else {
                m
            })
        }
    }
}

/// What a failed TLS handshake means and how to fix it, from the driver's message (rustls
/// errors as fred reports them); `None` when the failure is not the TLS layer's. The same
/// explanations as redis-conn gives in [`redis_conn::Error::Tls`].
pub(crate) fn tls_reason(details: &str, options: &redis_conn::TlsOptions) -> Option<String> {
    redis_conn::explain_tls_failure(details, options).or_else(|| {
        ["InvalidCertificate", "PeerIncompatible", "AlertReceived"]
            .iter()
            .any(|s| details.contains(s))
            .then(|| "the TLS handshake was refused".to_string())
    })
}

/// The settings for a client of exactly this node: its address, the sentinel credentials for
/// a sentinel, and the TLS options of `base` (CA, client certificate, names by address). A
/// cluster seed given by host name lends its name to nodes found by IP that have no name of
/// their own, as redis-conn does for a cluster.
pub(crate) fn node_config(
    base: &RedisConfig,
    endpoint: &Endpoint,
    sentinel: bool,
    timeout: Duration,
) -> RedisConfig {
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
    if let (Mode::Cluster { seeds }, Some(tls)) = (&base.mode, cfg.tls.as_mut())
        && let Some(seed) = seeds.first()
        && seed.host.parse::<std::net::IpAddr>().is_err()
        && endpoint.host.parse::<std::net::IpAddr>().is_ok()
        && tls.name_for(&endpoint.host).is_none()
    {
        tls.server_name = Some(seed.host.clone());
    }
    cfg.mode = Mode::Standalone {
        server: endpoint.clone(),
    };
    cfg.connect_timeout = timeout;
    cfg.command_timeout = timeout;
    cfg
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
    let cfg = node_config(base, endpoint, sentinel, timeout);
    let client = redis_conn::builder(&cfg, Dedicated::Plain)
        .and_then(|b| b.build().map_err(redis_conn::Error::from))
        .map_err(|e| ConnectFailure::Unreachable(e.to_string()))?;
    let result = match tokio::time::timeout(timeout, client.init()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failure(&cfg, e)),
        Err(_) => Err(ConnectFailure::Unreachable(format!(
            "no answer within {timeout:?}"
        ))),
    };
    if let Err(e) = result {
        // fred's tasks outlive a failed or dropped init: stop them.
        tokio::spawn(async move { client.quit().await.ok() });
        return Err(e);
    }
    // Only NOAUTH means "not authenticated": a PING denied by the ACL (NOPERM) still came
    // from a node we are logged in to. A server that wants a client certificate may only
    // say so after the handshake (TLS 1.3), at the first command.
    if let Err(e) = call(&client, "PING", vec![]).await {
        let tls = cfg
            .tls
            .as_ref()
            .is_some_and(|o| tls_reason(e.details(), o).is_some());
        if e.details().starts_with("NOAUTH") || (tls && !is_denied(&e)) {
            let _ = client.quit().await;
            return Err(failure(&cfg, e));
        }
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

/// Why no seed (or sentinel) told us the topology: a seed that was logged in to but refused
/// the discovery command by ACL wins (typed, naming the right), then one that gave no usable
/// answer, then an authentication failure (so that a wrong password is reported as such, exit
/// code 4, even when another seed is down), then a failed TLS handshake, then an unreachable
/// seed.
struct DiscoveryFailure {
    last: String,
    auth: Option<String>,
    tls: Option<(String, String)>,
    answered: Option<String>,
    denied: Option<String>,
}

impl DiscoveryFailure {
    fn new(nothing: &str) -> DiscoveryFailure {
        DiscoveryFailure {
            last: nothing.into(),
            auth: None,
            tls: None,
            answered: None,
            denied: None,
        }
    }

    fn connect(&mut self, seed: &Endpoint, e: ConnectFailure) {
        match e {
            ConnectFailure::Auth(m) => self.auth = Some(format!("{seed}: {m}")),
            ConnectFailure::Tls { target, reason } => self.tls = Some((target, reason)),
            ConnectFailure::Unreachable(m) => self.last = format!("{seed}: {m}"),
        }
    }

    /// A seed logged in to answered the discovery command (which needs `right`) with `e`.
    fn refused(&mut self, seed: &Endpoint, right: &str, e: &fred::error::Error) {
        if is_denied(e) {
            self.denied = Some(format!(
                "{seed}: finding the nodes needs +{right} ({})",
                e.details()
            ));
        } else {
            self.answered = Some(format!("{seed}: {e}"));
        }
    }

    fn into_error(self) -> Error {
        if let Some(why) = self.denied {
            return Error::Redis(redis_conn::Error::NoPermission(why));
        }
        match (self.answered, self.auth, self.tls) {
            (Some(why), _, _) => Error::Discovery(why),
            (None, Some(why), _) => Error::Auth(why),
            (None, None, Some((target, reason))) => {
                Error::Redis(redis_conn::Error::Tls { target, reason })
            }
            (None, None, None) => Error::Discovery(self.last),
        }
    }
}

/// A discovery query that was refused by the ACL: the nodes it would have found are not
/// checked, which the report must say.
fn discovery_denied(
    sentinel: &Endpoint,
    right: &str,
    what: &str,
    e: &fred::error::Error,
) -> Finding {
    let mut f = Finding::new(
        "topology.discovery",
        Severity::Warning,
        &sentinel.to_string(),
        format!("{what} were not found, so not checked: the sentinel user needs +{right}"),
    )
    .evidence(e.details().to_string())
    .fix(format!(
        "give the sentinel user +{right} (see redis_diag::sentinel_acl_rule())"
    ));
    f.role = NodeRole::Sentinel.name().into();
    f
}

/// Every node of the deployment, and findings about nodes that could not be discovered
/// (a refused `SENTINEL REPLICAS` / `SENTINEL SENTINELS`).
pub(crate) async fn discover(
    config: &RedisConfig,
    opts: &Options,
) -> Result<(Vec<Target>, Vec<Finding>), Error> {
    // Invalid settings (an unreadable CA or client certificate) are the user's to fix (exit
    // code 5), not a node that does not answer.
    redis_conn::builder(config, Dedicated::Plain)?;
    match &config.mode {
        Mode::Standalone { server } => Ok((
            vec![Target {
                endpoint: server.clone(),
                role: NodeRole::Unknown,
                marked_failed: false,
            }],
            Vec::new(),
        )),
        Mode::Cluster { seeds } => {
            let mut failed = DiscoveryFailure::new("no seed configured");
            for seed in seeds {
                match connect(config, seed, false, opts.probe_timeout).await {
                    Ok(c) => {
                        let nodes = call(&c, "CLUSTER", vec!["NODES".into()]).await;
                        let _ = c.quit().await;
                        match nodes.map(|v| v.as_string()) {
                            Ok(Some(text)) => {
                                return Ok((parse_cluster_nodes(&text, seed), Vec::new()));
                            }
                            Ok(None) => {
                                failed.answered =
                                    Some(format!("{seed}: CLUSTER NODES gave no text"))
                            }
                            Err(e) => failed.refused(seed, "cluster|nodes", &e),
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
                        failed.answered =
                            Some(format!("{s}: no primary named {name:?} ({other:?})"));
                        continue;
                    }
                    Err(e) => {
                        failed.refused(s, "sentinel|get-master-addr-by-name", &e);
                        continue;
                    }
                };
                let mut notes = Vec::new();
                if let Some(p) = primary {
                    targets.push(Target {
                        endpoint: p,
                        role: NodeRole::Primary,
                        marked_failed: false,
                    });
                }
                if let Err(e) = &replicas
                    && is_denied(e)
                {
                    notes.push(discovery_denied(s, "sentinel|replicas", "the replicas", e));
                }
                if let Err(e) = &others
                    && is_denied(e)
                {
                    notes.push(discovery_denied(
                        s,
                        "sentinel|sentinels",
                        "sentinels not in the URL",
                        e,
                    ));
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
                return Ok((targets, notes));
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
