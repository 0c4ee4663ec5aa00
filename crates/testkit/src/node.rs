//! One server of a topology (a Redis node or a Sentinel) and how to start, stop and break it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::run_quiet;
use crate::resp::{Conn, Reply};
use crate::tls::HarnessTls;

/// What a node was started as. Roles change on failover: ask the topology for the current
/// primary instead of trusting this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A data node started as primary.
    Primary,
    /// A data node started as replica.
    Replica,
    /// A Sentinel.
    Sentinel,
}

/// How a node runs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Runtime {
    /// A local `redis-server` process.
    Process {
        /// Binary and arguments, to restart it identically (not persisted: they may hold a
        /// password).
        #[serde(skip)]
        argv: Vec<String>,
        /// Current pid.
        pid: Mutex<u32>,
        /// The child handle while this process owns it (not after a detach).
        #[serde(skip)]
        child: Mutex<Option<Child>>,
    },
    /// A container (name as given to `docker run --name`).
    Container { name: String },
}

/// One server of a topology.
#[derive(Debug, Serialize, Deserialize)]
pub struct Node {
    /// Unique within its topology: `standalone`, `primary`, `replica-1`, `sentinel-2`, `node-4`.
    pub name: String,
    /// Role at start.
    pub role: Role,
    /// Address reachable from this host.
    pub addr: SocketAddr,
    /// The node's directory on this host (config, data, `log`).
    pub dir: PathBuf,
    pub(crate) runtime: Runtime,
    /// `(username, password)` when the node requires them (data nodes with auth, sentinels
    /// with sentinel auth).
    #[serde(skip)]
    pub(crate) auth: Option<(String, String)>,
    /// How the harness reaches a TLS node (`None`: plaintext).
    #[serde(default)]
    pub(crate) tls: Option<HarnessTls>,
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    run_quiet(Command::new("kill").args([sig, &pid.to_string()])).map(|_| ())
}

impl Node {
    pub(crate) fn spawn_process(
        name: &str,
        role: Role,
        addr: SocketAddr,
        dir: &Path,
        argv: Vec<String>,
    ) -> Result<Node> {
        let child = spawn(&argv, dir)?;
        Ok(Node {
            name: name.to_string(),
            role,
            addr,
            dir: dir.to_path_buf(),
            runtime: Runtime::Process {
                argv,
                pid: Mutex::new(child.id()),
                child: Mutex::new(Some(child)),
            },
            auth: None,
            tls: None,
        })
    }

    pub(crate) fn container(
        name: &str,
        role: Role,
        addr: SocketAddr,
        dir: &Path,
        container: String,
    ) -> Node {
        Node {
            name: name.to_string(),
            role,
            addr,
            dir: dir.to_path_buf(),
            runtime: Runtime::Container { name: container },
            auth: None,
            tls: None,
        }
    }

    /// The pid of a process node (`None` for a container).
    pub fn pid(&self) -> Option<u32> {
        match &self.runtime {
            Runtime::Process { pid, .. } => Some(*lock(pid)),
            Runtime::Container { .. } => None,
        }
    }

    /// The container name of a docker node (`None` for a process).
    pub fn container_name(&self) -> Option<&str> {
        match &self.runtime {
            Runtime::Container { name } => Some(name),
            Runtime::Process { .. } => None,
        }
    }

    /// Whether this node belongs to a container backend.
    pub fn is_container(&self) -> bool {
        matches!(self.runtime, Runtime::Container { .. })
    }

    /// Opens a harness connection to this node (authenticated for data nodes).
    pub fn conn(&self) -> Result<Conn> {
        let auth = self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let tls = match &self.tls {
            Some(t) => Some(t.conn_tls(self.addr.ip())?),
            None => None,
        };
        Conn::connect_tls(self.addr, Duration::from_secs(2), auth, tls.as_ref())
            .map_err(|e| Error::new(format!("node {}: {e}", self.name)))
    }

    /// Runs one command on this node and fails on a server error.
    pub fn cmd(&self, args: &[&str]) -> Result<Reply> {
        self.conn()?.ok(args)
    }

    /// Whether anything answers on the node's port (over TLS when the node uses it), even a
    /// refusal such as `NOAUTH` (for `xtask status`, which has no credentials).
    pub fn answers(&self) -> bool {
        let tls = self
            .tls
            .as_ref()
            .and_then(|t| t.conn_tls(self.addr.ip()).ok());
        Conn::connect_tls(self.addr, Duration::from_millis(500), None, tls.as_ref())
            .and_then(|mut c| c.cmd(&["PING"]))
            .map(|r| matches!(r, Reply::Status(_) | Reply::Error(_)))
            .unwrap_or(false)
    }

    /// Whether the node answers `PING` right now.
    pub fn is_up(&self) -> bool {
        self.conn()
            .and_then(|mut c| {
                c.set_timeout(Duration::from_millis(500));
                c.ok(&["PING"])
            })
            .is_ok()
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills the node with SIGKILL (`docker kill`): no shutdown, no save.
    pub fn kill(&self) -> Result<()> {
        match &self.runtime {
            Runtime::Process { pid, child, .. } => {
                signal(*lock(pid), "-KILL")?;
                if let Some(mut c) = lock(child).take() {
                    c.wait().ok();
                }
                Ok(())
            }
            Runtime::Container { name } => {
                run_quiet(Command::new("docker").args(["kill", "--signal", "KILL", name]))
                    .map(|_| ())
            }
        }
    }

    /// Freezes the node (SIGSTOP / `docker pause`): sockets stay open, nothing answers.
    pub fn pause(&self) -> Result<()> {
        match &self.runtime {
            Runtime::Process { pid, .. } => signal(*lock(pid), "-STOP"),
            Runtime::Container { name } => {
                run_quiet(Command::new("docker").args(["pause", name])).map(|_| ())
            }
        }
    }

    /// Resumes a paused node (SIGCONT / `docker unpause`).
    pub fn resume(&self) -> Result<()> {
        match &self.runtime {
            Runtime::Process { pid, .. } => signal(*lock(pid), "-CONT"),
            Runtime::Container { name } => {
                run_quiet(Command::new("docker").args(["unpause", name])).map(|_| ())
            }
        }
    }

    /// Starts a killed node again with its original configuration and waits until it answers.
    pub fn restart(&self) -> Result<()> {
        match &self.runtime {
            Runtime::Process { argv, pid, child } => {
                if let Some(mut c) = lock(child).take() {
                    c.kill().ok();
                    c.wait().ok();
                }
                let c = spawn(argv, &self.dir)?;
                *lock(pid) = c.id();
                record_pid(&self.dir, c.id());
                *lock(child) = Some(c);
            }
            Runtime::Container { name } => {
                run_quiet(Command::new("docker").args(["start", name]))?;
            }
        }
        self.wait_up(Duration::from_secs(20))
    }

    /// Polls `PING` until the node answers or `timeout` passes.
    pub fn wait_up(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if self.is_up() {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(Error::new(format!(
                    "node {} ({}) exited with {status} while starting; log:\n{}",
                    self.name,
                    self.addr,
                    self.log_tail(15)
                )));
            }
            if start.elapsed() > timeout {
                return Err(Error::new(format!(
                    "node {} ({}) did not answer PING within {timeout:?}; log:\n{}",
                    self.name,
                    self.addr,
                    self.log_tail(15)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status if this process node has exited on its own.
    fn exited(&self) -> Option<String> {
        match &self.runtime {
            Runtime::Process { child, .. } => lock(child)
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .map(|s| s.to_string()),
            Runtime::Container { .. } => None,
        }
    }

    /// Stops the node for good (used on teardown).
    pub(crate) fn stop(&self) {
        match &self.runtime {
            Runtime::Process { pid, child, .. } => {
                if let Some(mut c) = lock(child).take() {
                    c.kill().ok();
                    c.wait().ok();
                } else {
                    // Killed and reaped already, or detached (xtask up): the pid may have been
                    // reused since, so only signal a process that is still a redis-server.
                    let p = *lock(pid);
                    if is_redis_process(p) {
                        signal(p, "-CONT").ok();
                        signal(p, "-KILL").ok();
                    }
                }
            }
            Runtime::Container { name } => {
                run_quiet(Command::new("docker").args(["rm", "--force", "--volumes", name])).ok();
            }
        }
    }

    /// Forgets the child handle so the process outlives this one (xtask up).
    pub(crate) fn detach(&self) {
        if let Runtime::Process { child, .. } = &self.runtime {
            lock(child).take();
        }
    }
}

/// Whether `pid` is a live `redis-server` process (not a zombie, not a reused pid).
fn is_redis_process(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains("redis") && !stat.contains(") Z ")
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Appends a pid to the run's pid list read by the watchdog.
pub(crate) fn record_pid(node_dir: &Path, pid: u32) {
    if let Some(run_dir) = node_dir.parent() {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join("pids"))
        {
            writeln!(f, "{pid}").ok();
        }
    }
}

fn spawn(argv: &[String], dir: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let (bin, args) = argv
        .split_first()
        .ok_or_else(|| Error::new("empty command line"))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr"))
                .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?,
        ));
    // Own process group: a Ctrl-C meant for the test runner must not kill servers mid-test;
    // the watchdog or `xtask down` stops them.
    cmd.process_group(0);
    let child = cmd.spawn().map_err(|e| {
        Error::new(format!(
            "cannot start {bin}: {e}. Install Redis (Debian/Ubuntu: `apt-get install -y redis-server`) \
             or set REDKIT_REDIS_SERVER to the redis-server binary"
        ))
    })?;
    record_pid(dir, child.id());
    Ok(child)
}
