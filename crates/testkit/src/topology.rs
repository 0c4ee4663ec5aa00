//! Starting, inspecting, breaking and tearing down whole topologies.

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::node::{Node, Role, Runtime};
use crate::resp::Reply;
use crate::{Error, Result, docker};

/// The shape of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// One server.
    Standalone,
    /// One primary, two replicas, three sentinels (quorum 2).
    Sentinel,
    /// Three primaries with one replica each.
    Cluster,
}

impl Kind {
    /// All kinds, in the order the test matrix runs them.
    pub const ALL: [Kind; 3] = [Kind::Standalone, Kind::Sentinel, Kind::Cluster];

    /// Lower-case name (`standalone`, `sentinel`, `cluster`).
    ///
    /// ```
    /// assert_eq!(testkit::Kind::Cluster.name(), "cluster");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Kind::Standalone => "standalone",
            Kind::Sentinel => "sentinel",
            Kind::Cluster => "cluster",
        }
    }

    /// The environment variable that points tests at a running topology of this kind.
    ///
    /// ```
    /// assert_eq!(testkit::Kind::Sentinel.url_var(), "REDKIT_SENTINEL_URL");
    /// ```
    pub fn url_var(self) -> &'static str {
        match self {
            Kind::Standalone => "REDKIT_STANDALONE_URL",
            Kind::Sentinel => "REDKIT_SENTINEL_URL",
            Kind::Cluster => "REDKIT_CLUSTER_URL",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::new(format!(
                    "unknown topology {s:?}: expected standalone, sentinel or cluster"
                ))
            })
    }
}

/// How servers are run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// `redis-server` processes on 127.0.0.1.
    Process,
    /// Containers on a private bridge network; `image` defaults to one built from the local
    /// `redis-server` ([`docker::ensure_image`]).
    Docker {
        /// A ready local image to use instead.
        image: Option<String>,
    },
}

impl Backend {
    /// The backend named by `REDKIT_BACKEND` (`process` when unset) and `REDKIT_DOCKER_IMAGE`.
    ///
    /// ```
    /// // With REDKIT_BACKEND unset:
    /// # unsafe { std::env::remove_var("REDKIT_BACKEND") };
    /// assert_eq!(testkit::Backend::from_env().unwrap(), testkit::Backend::Process);
    /// ```
    pub fn from_env() -> Result<Backend> {
        let image = std::env::var("REDKIT_DOCKER_IMAGE")
            .ok()
            .filter(|s| !s.is_empty());
        match std::env::var("REDKIT_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("process") => Ok(Backend::Process),
            Ok("docker") => Ok(Backend::Docker { image }),
            Ok(other) => Err(Error::new(format!(
                "REDKIT_BACKEND={other:?} is not supported: expected `process` or `docker`"
            ))),
        }
    }

    /// `process` or `docker`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Process => "process",
            Backend::Docker { .. } => "docker",
        }
    }
}

/// Credentials every data node requires (Sentinels stay open, as is common).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// An ACL user (`None`: the `default` user with `requirepass`).
    pub username: Option<String>,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Topology shape.
    pub kind: Kind,
    /// Processes or containers.
    pub backend: Backend,
    /// Optional password / ACL user on the data nodes.
    pub auth: Option<Auth>,
    /// Sentinel `down-after-milliseconds` (default 1000 ms).
    pub sentinel_down_after: Duration,
    /// Cluster `cluster-node-timeout` (default 2000 ms).
    pub cluster_node_timeout: Duration,
    /// Sentinel service name (default `mymaster`).
    pub master_name: String,
}

impl Spec {
    /// A process-backed topology of `kind` with test-friendly timings.
    ///
    /// ```
    /// let spec = testkit::Spec::new(testkit::Kind::Cluster);
    /// assert_eq!(spec.backend, testkit::Backend::Process);
    /// ```
    pub fn new(kind: Kind) -> Spec {
        Spec {
            kind,
            backend: Backend::Process,
            auth: None,
            sentinel_down_after: Duration::from_millis(1000),
            cluster_node_timeout: Duration::from_millis(2000),
            master_name: "mymaster".into(),
        }
    }

    /// Like [`Spec::new`] with the backend from the environment ([`Backend::from_env`]).
    pub fn from_env(kind: Kind) -> Result<Spec> {
        Ok(Spec::new(kind).backend(Backend::from_env()?))
    }

    /// Sets the backend.
    pub fn backend(mut self, backend: Backend) -> Spec {
        self.backend = backend;
        self
    }

    /// Requires a password (and an ACL user when `username` is `Some`) on every data node.
    pub fn auth(mut self, username: Option<&str>, password: &str) -> Spec {
        self.auth = Some(Auth {
            username: username.map(str::to_string),
            password: password.to_string(),
        });
        self
    }
}

/// What `xtask up` leaves behind so `down`, `status` and `env` can find a running topology.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    /// Topology shape.
    pub kind: Kind,
    /// Backend name.
    pub backend: String,
    /// Connection URL, with the password when auth is on (the state file stays under
    /// `target/`, on the developer's machine).
    pub url: String,
    /// Run identifier (container labels, network name).
    pub run_id: String,
    /// Run directory with node dirs and logs.
    pub dir: PathBuf,
    /// The nodes.
    pub nodes: Vec<Node>,
}

/// A running topology. Dropping it stops every server and removes its files (logs are printed
/// and kept when the thread is panicking, i.e. a test failed).
#[derive(Debug)]
pub struct Topology {
    spec: Spec,
    run_id: String,
    dir: PathBuf,
    nodes: Vec<Node>,
    watchdog: Option<Child>,
    detached: bool,
}

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `redis-server` binary: `REDKIT_REDIS_SERVER` or the first on `PATH`.
pub(crate) fn redis_server_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("REDKIT_REDIS_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::new(format!(
                "REDKIT_REDIS_SERVER={} does not exist",
                p.display()
            )))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::new(
                "redis-server was not found on PATH. Install it (Debian/Ubuntu: `apt-get update && \
                 apt-get install -y redis-server`), set REDKIT_REDIS_SERVER to the binary, or point the \
                 tests at running servers with REDKIT_STANDALONE_URL / REDKIT_SENTINEL_URL / \
                 REDKIT_CLUSTER_URL (`cargo xtask up <topology>` then `cargo xtask env`)",
            )
        })
}

/// A free loopback port below 55535 whose cluster bus port (+10000) is free too.
fn free_port() -> Result<u16> {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::new(format!("bind: {e}")))?;
        let port = l
            .local_addr()
            .map_err(|e| Error::new(e.to_string()))?
            .port();
        if port < 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::new("no free loopback port below 55535"))
}

fn unique_run_id(kind: Kind) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}-{:x}",
        kind.name(),
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 0xfffff
    )
}

/// Polls `check` every 25 ms until it returns `Ok(true)` or `timeout` passes; the error names
/// `what` and the last reason the check gave.
pub(crate) fn poll(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = String::from("condition not met");
    loop {
        match check() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(e) => {
                if std::env::var_os("REDKIT_DEBUG").is_some() && e.to_string() != last {
                    eprintln!("[testkit {:?}] waiting for {what}: {e}", start.elapsed());
                }
                last = e.to_string()
            }
        }
        if start.elapsed() > timeout {
            return Err(Error::new(format!(
                "timed out after {timeout:?} waiting for {what}: {last}"
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

impl Topology {
    /// Starts a topology and returns once it is fully ready (replication links up, sentinels in
    /// quorum and aware of every replica, cluster state ok with every replica attached).
    pub fn start(spec: Spec) -> Result<Topology> {
        let run_id = unique_run_id(spec.kind);
        let dir = std::env::temp_dir().join(format!("redkit-{run_id}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
        let mut topo = Topology {
            spec,
            run_id,
            dir,
            nodes: Vec::new(),
            watchdog: None,
            detached: false,
        };
        topo.write_cleanup_script()?;
        topo.watchdog = Some(topo.start_watchdog()?);
        let image = match &topo.spec.backend {
            Backend::Process => {
                redis_server_bin()?;
                None
            }
            Backend::Docker { image } => Some(docker::ensure_image(image.as_deref())?),
        };
        let network = match image {
            Some(ref _img) => Some(docker::create_network(&topo.run_id)?),
            None => None,
        };
        let launcher = Launcher {
            image,
            network,
            next_ip: 11,
        };
        let result = match topo.spec.kind {
            Kind::Standalone => topo.start_standalone(launcher),
            Kind::Sentinel => topo.start_sentinel(launcher),
            Kind::Cluster => topo.start_cluster(launcher),
        };
        match result {
            Ok(()) => Ok(topo),
            Err(e) => Err(Error::new(format!(
                "starting a {} topology ({} backend) failed: {e}\n{}",
                topo.spec.kind,
                topo.spec.backend.name(),
                topo.log_report(20)
            ))),
        }
    }

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

    // ---------------------------------------------------------------- start-up

    fn auth_args(&self) -> Vec<String> {
        match &self.spec.auth {
            None => vec![],
            Some(Auth {
                username: None,
                password,
            }) => vec![
                "--requirepass".into(),
                password.clone(),
                "--masterauth".into(),
                password.clone(),
            ],
            Some(Auth {
                username: Some(user),
                password,
            }) => vec![
                "--user".into(),
                "default".into(),
                "off".into(),
                "--user".into(),
                user.clone(),
                "on".into(),
                format!(">{password}"),
                "~*".into(),
                "&*".into(),
                "+@all".into(),
                "--masteruser".into(),
                user.clone(),
                "--masterauth".into(),
                password.clone(),
            ],
        }
    }

    fn launch(
        &mut self,
        l: &mut Launcher,
        name: &str,
        role: Role,
        args: impl Fn(u16) -> Vec<String>,
        sentinel_conf: Option<&dyn Fn(u16) -> String>,
    ) -> Result<usize> {
        let node_dir = self.dir.join(name);
        std::fs::create_dir_all(&node_dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", node_dir.display())))?;
        let auth = self.spec.auth.as_ref().map(|a| {
            (
                a.username.clone().unwrap_or_else(|| "default".into()),
                a.password.clone(),
            )
        });
        let node = match (&l.image, &l.network) {
            (Some(image), Some((net, prefix))) => {
                let port = if role == Role::Sentinel { 26379 } else { 6379 };
                let ip = format!("{prefix}.{}", l.next_ip);
                l.next_ip += 1;
                let mut argv = args(port);
                if let Some(conf) = sentinel_conf {
                    write_file(&node_dir.join("sentinel.conf"), &conf(port))?;
                    argv = vec!["/data/sentinel.conf".into(), "--sentinel".into()];
                }
                let container = format!("redkit-{}-{name}", self.run_id);
                docker::run_container(image, &container, &self.run_id, net, &ip, &node_dir, &argv)?;
                let addr: SocketAddr = format!("{ip}:{port}")
                    .parse()
                    .map_err(|e| Error::new(format!("bad address {ip}:{port}: {e}")))?;
                let mut node = Node::container(name, role, addr, &node_dir, container);
                node.auth = auth;
                node.wait_up(Duration::from_secs(20))?;
                node
            }
            _ => {
                let bin = redis_server_bin()?.display().to_string();
                // Ports are probed free, then bound by redis-server: another process can take one
                // in between, so a node that dies at start-up is retried on a new port.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let port = free_port()?;
                    let mut argv = vec![bin.clone()];
                    match sentinel_conf {
                        Some(conf) => {
                            let path = node_dir.join("sentinel.conf");
                            write_file(&path, &conf(port))?;
                            argv.push(path.display().to_string());
                            argv.push("--sentinel".into());
                        }
                        None => argv.extend(args(port)),
                    }
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    let mut node = Node::spawn_process(name, role, addr, &node_dir, argv)?;
                    node.auth = auth.clone();
                    match node.wait_up(Duration::from_secs(10)) {
                        Ok(()) => break node,
                        Err(e) if attempt >= 3 => return Err(e),
                        Err(_) => node.stop(),
                    }
                }
            }
        };
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn start_standalone(&mut self, mut l: Launcher) -> Result<()> {
        self.launch_data(&mut l, "standalone", Role::Primary, vec![])?;
        Ok(())
    }

    fn start_sentinel(&mut self, mut l: Launcher) -> Result<()> {
        let pi = self.launch_data(&mut l, "primary", Role::Primary, vec![])?;
        let primary = self.nodes[pi].addr;
        for i in 1..=2 {
            self.launch_data(
                &mut l,
                &format!("replica-{i}"),
                Role::Replica,
                vec![
                    "--replicaof".into(),
                    primary.ip().to_string(),
                    primary.port().to_string(),
                ],
            )?;
        }
        // Sentinels discover replicas from the primary's INFO: start them once the replicas
        // are linked, so they know both at their first look.
        poll(
            "replicas linked to the primary",
            Duration::from_secs(30),
            || self.replicas_linked(),
        )?;
        let spec = self.spec.clone();
        let sentinel_conf = move |port: u16, bind: &str, dir: &str| {
            let mut c = format!(
                "port {port}\nbind {bind}\nprotected-mode no\ndir {dir}\nlogfile log\n\
                 sentinel monitor {m} {ip} {pp} 2\n\
                 sentinel down-after-milliseconds {m} {down}\n\
                 sentinel failover-timeout {m} 10000\n\
                 sentinel parallel-syncs {m} 1\n",
                m = spec.master_name,
                ip = primary.ip(),
                pp = primary.port(),
                down = spec.sentinel_down_after.as_millis(),
            );
            if let Some(a) = &spec.auth {
                c.push_str(&format!(
                    "sentinel auth-pass {} {}\n",
                    spec.master_name, a.password
                ));
                if let Some(u) = &a.username {
                    c.push_str(&format!("sentinel auth-user {} {u}\n", spec.master_name));
                }
            }
            c
        };
        let docker = l.image.is_some();
        for i in 1..=3 {
            let name = format!("sentinel-{i}");
            let dir = if docker {
                "/data".to_string()
            } else {
                self.dir.join(&name).display().to_string()
            };
            let bind = if docker { "0.0.0.0" } else { "127.0.0.1" };
            let conf = |port: u16| sentinel_conf(port, bind, &dir);
            self.launch(&mut l, &name, Role::Sentinel, |_| vec![], Some(&conf))?;
        }
        self.wait_sentinels_ready(Duration::from_secs(60))
    }

    fn launch_data(
        &mut self,
        l: &mut Launcher,
        name: &str,
        role: Role,
        extra: Vec<String>,
    ) -> Result<usize> {
        let base = self.data_args_builder(l);
        self.launch(l, name, role, |p| base(p, &extra), None)
    }

    /// A closure producing data-node arguments without borrowing `self` mutably.
    fn data_args_builder(&self, l: &Launcher) -> impl Fn(u16, &[String]) -> Vec<String> + use<> {
        let auth = self.auth_args();
        let docker = l.image.is_some();
        move |port, extra| {
            let mut a: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                if docker { "0.0.0.0" } else { "127.0.0.1" },
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                if docker { "/data" } else { "." },
                "--logfile",
                "log",
                "--daemonize",
                "no",
                "--repl-diskless-sync-delay",
                "0",
                "--enable-debug-command",
                "yes",
                // Redis 7 leaves a replica out of CLUSTER SLOTS until its offset moves; with an
                // empty dataset only the primary's pings move it (every 10 s by default).
                "--repl-ping-replica-period",
                "1",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.extend(auth.iter().cloned());
            a.extend_from_slice(extra);
            a
        }
    }

    fn start_cluster(&mut self, mut l: Launcher) -> Result<()> {
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

    // ---------------------------------------------------------------- readiness

    fn replicas_linked(&self) -> Result<bool> {
        for n in self.data_nodes() {
            let role = n.conn()?.info_field("replication", "role")?;
            if role.as_deref() == Some("slave")
                && n.conn()?
                    .info_field("replication", "master_link_status")?
                    .as_deref()
                    != Some("up")
            {
                return Err(Error::new(format!(
                    "{}: master_link_status is not up",
                    n.name
                )));
            }
        }
        Ok(true)
    }

    fn wait_sentinels_ready(&self, timeout: Duration) -> Result<()> {
        let m = self.spec.master_name.clone();
        poll(
            "sentinels in quorum and aware of all replicas",
            timeout,
            || {
                for s in self.sentinels() {
                    let mut c = s.conn()?;
                    if let Reply::Error(e) = c.cmd(&["SENTINEL", "CKQUORUM", &m])? {
                        return Err(Error::new(format!("{}: CKQUORUM: {e}", s.name)));
                    }
                    let info = c.ok(&["SENTINEL", "MASTER", &m])?;
                    let field = |k: &str| {
                        info.items()
                            .chunks(2)
                            .find(|kv| kv[0].text().as_deref() == Some(k))
                            .and_then(|kv| kv.get(1).and_then(Reply::text))
                            .unwrap_or_default()
                    };
                    if field("num-slaves") != "2" || field("num-other-sentinels") != "2" {
                        return Err(Error::new(format!(
                            "{} sees {} replicas and {} other sentinels",
                            s.name,
                            field("num-slaves"),
                            field("num-other-sentinels")
                        )));
                    }
                    if field("flags") != "master" {
                        return Err(Error::new(format!(
                            "{}: master flags {}",
                            s.name,
                            field("flags")
                        )));
                    }
                }
                Ok(true)
            },
        )
        .map(|_| ())
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

    // ---------------------------------------------------------------- inspection

    fn node_at(&self, addr: SocketAddr) -> Result<&Node> {
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

    /// What the first answering sentinel says the primary's address is.
    pub fn sentinel_master_addr(&self) -> Result<SocketAddr> {
        let mut last = Error::new("no sentinel answered");
        for s in self.sentinels() {
            match s.cmd(&[
                "SENTINEL",
                "GET-MASTER-ADDR-BY-NAME",
                &self.spec.master_name,
            ]) {
                Ok(r) => {
                    let items = r.items();
                    if let (Some(ip), Some(port)) = (
                        items.first().and_then(Reply::text),
                        items.get(1).and_then(Reply::text),
                    ) {
                        return format!("{ip}:{port}")
                            .parse()
                            .map_err(|e| Error::new(format!("bad address {ip}:{port}: {e}")));
                    }
                }
                Err(e) => last = e,
            }
        }
        Err(last)
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

    // ---------------------------------------------------------------- faults

    /// Kills a node with SIGKILL (`docker kill`).
    pub fn kill(&self, node: &Node) -> Result<()> {
        node.kill()
    }

    /// Freezes a node (SIGSTOP / `docker pause`).
    pub fn pause(&self, node: &Node) -> Result<()> {
        node.pause()
    }

    /// Resumes a frozen node.
    pub fn resume(&self, node: &Node) -> Result<()> {
        node.resume()
    }

    /// Restarts a killed node with its original configuration.
    pub fn restart(&self, node: &Node) -> Result<()> {
        node.restart()
    }

    /// `CLIENT PAUSE <ms> WRITE|ALL` on a node.
    pub fn client_pause(&self, node: &Node, duration: Duration, writes_only: bool) -> Result<()> {
        let mode = if writes_only { "WRITE" } else { "ALL" };
        node.cmd(&["CLIENT", "PAUSE", &duration.as_millis().to_string(), mode])
            .map(|_| ())
    }

    /// `DEBUG SLEEP` on a node, sent from a background thread (the node answers only after).
    pub fn debug_sleep(
        &self,
        node: &Node,
        duration: Duration,
    ) -> Result<std::thread::JoinHandle<()>> {
        let mut conn = node.conn()?;
        let secs = format!("{:.3}", duration.as_secs_f64());
        conn.send(&["DEBUG", "SLEEP", &secs])?;
        Ok(std::thread::spawn(move || {
            conn.set_timeout(duration + Duration::from_secs(5));
            conn.read().ok();
        }))
    }

    /// Asks the sentinels for a failover (`SENTINEL FAILOVER`) and waits until a new primary
    /// serves writes; returns how long that took.
    pub fn sentinel_failover(&self, timeout: Duration) -> Result<Duration> {
        let old = self.sentinel_master_addr()?;
        let start = Instant::now();
        let s = self
            .sentinels()
            .next()
            .ok_or_else(|| Error::new("not a sentinel topology"))?;
        s.cmd(&["SENTINEL", "FAILOVER", &self.spec.master_name])?;
        self.wait_for_new_primary(old, timeout)?;
        Ok(start.elapsed())
    }

    /// Polls until the sentinels name a primary other than `old` and it reports `role:master`;
    /// returns the time waited.
    pub fn wait_for_new_primary(&self, old: SocketAddr, timeout: Duration) -> Result<Duration> {
        poll("sentinels to promote a new primary", timeout, || {
            let now = self.sentinel_master_addr()?;
            if now == old {
                return Ok(false);
            }
            let role = self
                .node_at(now)?
                .conn()?
                .info_field("replication", "role")?;
            Ok(role.as_deref() == Some("master"))
        })
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

    // ---------------------------------------------------------------- logs and teardown

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

    /// Leaves the servers running after this value is gone (for `xtask up`) and returns what is
    /// needed to find and stop them later.
    pub fn detach(mut self) -> State {
        self.detached = true;
        if let Some(mut w) = self.watchdog.take() {
            w.kill().ok();
            w.wait().ok();
        }
        for n in &self.nodes {
            n.detach();
        }
        State {
            kind: self.spec.kind,
            backend: self.spec.backend.name().to_string(),
            url: self.url(),
            run_id: self.run_id.clone(),
            dir: self.dir.clone(),
            nodes: std::mem::take(&mut self.nodes),
        }
    }

    /// Stops the servers described by a [`State`] (from `xtask up`) and removes their files.
    pub fn stop_detached(state: &State) {
        for n in &state.nodes {
            n.stop();
        }
        docker::remove_run(&state.run_id);
        std::fs::remove_dir_all(&state.dir).ok();
    }

    fn write_cleanup_script(&self) -> Result<()> {
        let dir = self.dir.display();
        let script = format!(
            "#!/bin/sh\n# Written by testkit: stops everything run {id} started.\n\
             DIR='{dir}'\n\
             if [ -f \"$DIR/pids\" ]; then for p in $(cat \"$DIR/pids\"); do\n\
             \x20 if grep -q redis \"/proc/$p/cmdline\" 2>/dev/null; then kill -CONT \"$p\"; kill -KILL \"$p\"; fi\n\
             done; fi\n\
             if command -v docker >/dev/null 2>&1; then\n\
             \x20 ids=$(docker ps -aq --filter label=redkit.run={id} 2>/dev/null)\n\
             \x20 [ -n \"$ids\" ] && docker rm --force --volumes $ids >/dev/null 2>&1\n\
             \x20 nets=$(docker network ls -q --filter label=redkit.run={id} 2>/dev/null)\n\
             \x20 [ -n \"$nets\" ] && docker network rm $nets >/dev/null 2>&1\n\
             fi\n\
             [ -e \"$DIR/keep\" ] || rm -rf \"$DIR\"\n",
            id = self.run_id
        );
        write_file(&self.dir.join("cleanup.sh"), &script)
    }

    /// A process that runs the cleanup script when our end of its stdin closes, i.e. when this
    /// process exits for any reason (even SIGKILL). Own process group: Ctrl-C must not stop it.
    fn start_watchdog(&self) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .args(["-c", "read _ignored; exec sh \"$0\""])
            .arg(self.dir.join("cleanup.sh"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::new(format!("cannot start the watchdog shell: {e}")))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        let keep = std::thread::panicking() || std::env::var_os("REDKIT_KEEP_LOGS").is_some();
        if keep {
            if std::thread::panicking() {
                eprintln!("{}", self.log_report(40));
            }
            write_file(&self.dir.join("keep"), "").ok();
        }
        for n in &self.nodes {
            n.stop();
        }
        if matches!(self.spec.backend, Backend::Docker { .. }) {
            docker::remove_run(&self.run_id);
        }
        if !keep {
            std::fs::remove_dir_all(&self.dir).ok();
        }
        if let Some(mut w) = self.watchdog.take() {
            drop(w.stdin.take());
            w.wait().ok();
        }
    }
}

struct Launcher {
    image: Option<String>,
    network: Option<(String, String)>,
    next_ip: u8,
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))
}

impl Node {
    /// Whether this node belongs to a container backend.
    pub fn is_container(&self) -> bool {
        matches!(self.runtime, Runtime::Container { .. })
    }
}
