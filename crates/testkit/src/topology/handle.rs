//! The running [`Topology`] value: its fields (shared by the sibling modules that start,
//! inspect, break and tear it down), accessors, URL, node lookup and log report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;

use super::spec::{Kind, Spec};
use crate::error::{Error, Result};
use crate::node::{Node, Role};
use crate::tls::{Authority, TEST_DOMAIN, TlsFiles};

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
    /// The CA that signed the node certificates (TLS topologies).
    pub(super) authority: Option<Authority>,
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
    /// `redis-cluster://n1,n2,...`, with `user:password@` when auth is on. TLS topologies give
    /// `rediss...` URLs whose query names the CA and the client certificate
    /// (`?tls_ca=...&tls_cert=...&tls_key=...`), plus `tls_hosts=ip=name,...` when node
    /// certificates name no IP.
    pub fn url(&self) -> String {
        match &self.spec.auth {
            None => self.url_with(None),
            Some(a) => self.url_with(Some((a.username.as_deref().unwrap_or(""), &a.password))),
        }
    }

    /// The URL for ACL user `user` with `password` (see [`Topology::url`]).
    ///
    /// ```no_run
    /// let topo = testkit::Topology::start(
    ///     testkit::Spec::new(testkit::Kind::Standalone).auth(Some("admin"), "pw").user("app", "app-pw", "~app:* +@all"),
    /// ).unwrap();
    /// let url = topo.url_as("app", "app-pw");
    /// ```
    pub fn url_as(&self, user: &str, password: &str) -> String {
        self.url_with(Some((user, password)))
    }

    /// The URL without credentials and without the client certificate (for tests of refusals).
    pub fn url_anonymous(&self, with_client_cert: bool) -> String {
        let mut url = self.url_with(None);
        if let Some(files) = self.tls_files().filter(|_| !with_client_cert) {
            let full = files.query(true);
            url = url.replace(&full, &files.query(false));
        }
        url
    }

    fn url_with(&self, creds: Option<(&str, &str)>) -> String {
        let creds = match creds {
            None => String::new(),
            Some((u, p)) => format!("{u}:{}@", encode(p)),
        };
        let join = |nodes: &mut dyn Iterator<Item = &Node>| {
            nodes
                .map(|n| n.addr.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let s = if self.spec.tls.is_some() { "s" } else { "" };
        let mut url = match self.spec.kind {
            Kind::Standalone => format!("redis{s}://{creds}{}", self.nodes[0].addr),
            Kind::Sentinel => format!(
                "redis{s}-sentinel://{creds}{}/{}",
                join(&mut self.sentinels()),
                self.spec.master_name
            ),
            Kind::Cluster => format!("redis{s}-cluster://{creds}{}", join(&mut self.data_nodes())),
        };
        let mut query: Vec<String> = self.tls_query().into_iter().collect();
        if let (Kind::Sentinel, Some(a)) = (self.spec.kind, &self.spec.sentinel_auth) {
            query.push(format!(
                "sentinel_username={}&sentinel_password={}",
                a.username.as_deref().unwrap_or("default"),
                encode(&a.password)
            ));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }

    /// The CA and client certificate files of a TLS topology.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.authority.as_ref().map(|a| &a.files)
    }

    /// The TLS part of [`Topology::url`]'s query, `None` for plaintext topologies.
    pub fn tls_query(&self) -> Option<String> {
        let files = self.tls_files()?;
        let mut q = files.query(true);
        if self.spec.tls.as_ref().is_some_and(|t| !t.ip_sans) {
            q.push_str("&tls_hosts=");
            q.push_str(&self.host_map());
        }
        Some(q)
    }

    /// `ip=name,...`: the host name each node's certificate names, by address (on the process
    /// backend every node is `127.0.0.1`, so all map to `nodes.redkit.test`).
    pub fn host_map(&self) -> String {
        let mut pairs: Vec<String> = Vec::new();
        for n in &self.nodes {
            let ip = n.addr.ip();
            let name = if ip.is_loopback() {
                format!("nodes.{TEST_DOMAIN}")
            } else {
                format!("{}.{TEST_DOMAIN}", n.name)
            };
            let pair = format!("{ip}={name}");
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        pairs.join(",")
    }

    /// Creates (or replaces) ACL user `name` on every data node with `rules` (space separated)
    /// and `password`, and returns its URL. Users made this way are lost when a node restarts:
    /// use [`Spec::user`](crate::Spec::user) for topologies that are broken on purpose.
    pub fn create_user(&self, name: &str, password: &str, rules: &str) -> Result<String> {
        for n in self.data_nodes() {
            let mut args = vec!["ACL", "SETUSER", name, "reset", "on"];
            let pw = format!(">{password}");
            args.push(&pw);
            args.extend(rules.split_whitespace());
            n.cmd(&args)?;
        }
        Ok(self.url_as(name, password))
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

/// Percent-encodes what a URL's userinfo cannot hold literally.
pub(crate) fn encode(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' | '~' => c.to_string(),
            c => {
                let mut b = [0u8; 4];
                c.encode_utf8(&mut b)
                    .bytes()
                    .map(|x| format!("%{x:02X}"))
                    .collect()
            }
        })
        .collect()
}

/// One entry of a data node's `ACL LOG`: something the ACL refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRefusal {
    /// The node that logged it.
    pub node: String,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: String,
    /// The refused command, key or channel.
    pub object: String,
    /// The ACL user.
    pub username: String,
    /// Every field as `name value` pairs, for messages.
    pub text: String,
}

impl Topology {
    /// What the ACL refused user `user` on any data node (`ACL LOG`), oldest entries included:
    /// a suite run as a least-privilege user checks this is empty.
    ///
    /// ```no_run
    /// # let topo: testkit::Topology = unimplemented!();
    /// assert!(topo.acl_refusals("app").unwrap().is_empty());
    /// ```
    pub fn acl_refusals(&self, user: &str) -> Result<Vec<AclRefusal>> {
        let mut out = Vec::new();
        for node in self.data_nodes() {
            let log = node.cmd(&["ACL", "LOG", "1000"])?;
            for entry in log.items() {
                let fields: Vec<String> = entry
                    .items()
                    .iter()
                    .map(|f| f.text().unwrap_or_default())
                    .collect();
                let of = |name: &str| {
                    fields
                        .chunks(2)
                        .find(|kv| kv[0] == name)
                        .and_then(|kv| kv.get(1).cloned())
                        .unwrap_or_default()
                };
                if of("username") == user {
                    out.push(AclRefusal {
                        node: node.name.clone(),
                        reason: of("reason"),
                        object: of("object"),
                        username: of("username"),
                        text: fields.join(" "),
                    });
                }
            }
        }
        Ok(out)
    }
}
