//! Tearing a topology down: on drop, by the watchdog process if the owner dies, or later from a
//! [`State`] when `xtask up` detached it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

use super::handle::Topology;
use super::spec::{Backend, Kind};
use crate::docker;
use crate::error::{Error, Result};
use crate::host::write_file;
use crate::node::Node;

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

impl Topology {
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

    pub(super) fn write_cleanup_script(&self) -> Result<()> {
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
    pub(super) fn start_watchdog(&self) -> Result<Child> {
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
