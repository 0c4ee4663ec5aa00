//! Starting a topology: the run directory and watchdog, the backend (processes or containers),
//! and launching one node with the arguments every data node shares. The Sentinel and Cluster
//! set-up that follows lives in `sentinel.rs` and `cluster.rs`.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::handle::Topology;
use super::spec::{Auth, Backend, Kind, Spec};
use crate::docker;
use crate::error::{Error, Result};
use crate::host::{redis_server_bin, write_file};
use crate::node::{Node, Role};
use crate::tls::{self, Authority, HarnessTls, TEST_DOMAIN, TlsFiles, Validity};

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

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

/// The backend resources nodes are launched on: the container image and network (none for
/// processes) and the next container address.
pub(super) struct Launcher {
    pub(super) image: Option<String>,
    pub(super) network: Option<(String, String)>,
    pub(super) next_ip: u8,
}

impl Topology {
    /// Starts a topology and returns once it is fully ready (replication links up, sentinels in
    /// quorum and aware of every replica, cluster state ok with every replica attached).
    pub fn start(spec: Spec) -> Result<Topology> {
        if !spec.users.is_empty() && spec.auth.as_ref().is_none_or(|a| a.username.is_none()) {
            return Err(Error::new(
                "ACL users need an admin user for the harness (and the default user off): add .auth(Some(\"admin\"), password)",
            ));
        }
        let run_id = unique_run_id(spec.kind);
        let dir = std::env::temp_dir().join(format!("redkit-{run_id}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
        let authority = match &spec.tls {
            Some(_) => Some(Authority::create(&dir, &run_id)?),
            None => None,
        };
        let mut topo = Topology {
            spec,
            run_id,
            dir,
            nodes: Vec::new(),
            watchdog: None,
            detached: false,
            authority,
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

    fn auth_args(&self) -> Vec<String> {
        let mut args = self.admin_args();
        for u in &self.spec.users {
            args.extend(["--user".to_string(), u.name.clone(), "on".into()]);
            args.push(format!(">{}", u.password));
            args.extend(u.rules.split_whitespace().map(str::to_string));
        }
        args
    }

    fn admin_args(&self) -> Vec<String> {
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

    pub(super) fn launch(
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
        let auth = match role {
            Role::Sentinel => self.spec.sentinel_auth.as_ref(),
            _ => self.spec.auth.as_ref(),
        };
        let auth = auth.map(|a| {
            (
                a.username.clone().unwrap_or_else(|| "default".into()),
                a.password.clone(),
            )
        });
        let harness_tls = self.spec.tls.as_ref().map(|t| HarnessTls {
            files: self
                .authority
                .as_ref()
                .map(|a| a.files.clone())
                .unwrap_or_else(|| TlsFiles {
                    ca: PathBuf::new(),
                    client_cert: PathBuf::new(),
                    client_key: PathBuf::new(),
                }),
            server_name: (!t.ip_sans).then(|| format!("{name}.{TEST_DOMAIN}")),
        });
        let node_certs = |ip: IpAddr| -> Result<()> {
            match (&self.authority, &self.spec.tls) {
                (Some(a), Some(t)) => {
                    a.node_files(&node_dir, name, ip, t, Validity::For(t.valid_for))
                }
                _ => Ok(()),
            }
        };
        let node = match (&l.image, &l.network) {
            (Some(image), Some((net, prefix))) => {
                let port = if role == Role::Sentinel { 26379 } else { 6379 };
                let ip = format!("{prefix}.{}", l.next_ip);
                l.next_ip += 1;
                let ip_addr: IpAddr = ip
                    .parse()
                    .map_err(|e| Error::new(format!("bad address {ip}: {e}")))?;
                node_certs(ip_addr)?;
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
                node.tls = harness_tls;
                node.wait_up(Duration::from_secs(20))?;
                node
            }
            _ => {
                let bin = redis_server_bin()?.display().to_string();
                node_certs(IpAddr::from([127, 0, 0, 1]))?;
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
                    node.tls = harness_tls.clone();
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

    pub(super) fn launch_data(
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
        let tls = self.spec.tls.clone();
        move |port, extra| {
            let mut a: Vec<String> = match &tls {
                None => vec!["--port".into(), port.to_string()],
                Some(t) => {
                    let mut a: Vec<String> =
                        tls::server_settings(port, if docker { "/data/tls" } else { "tls" }, t)
                            .into_iter()
                            .flat_map(|(k, v)| [format!("--{k}"), v])
                            .collect();
                    a.extend(["--tls-cluster".into(), "yes".into()]);
                    a
                }
            };
            a.extend(
                [
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
                .map(|s| s.to_string()),
            );
            a.extend(auth.iter().cloned());
            a.extend_from_slice(extra);
            a
        }
    }
}
