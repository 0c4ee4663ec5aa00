//! Faults on single nodes: kill, pause and resume, restart, `CLIENT PAUSE` and `DEBUG SLEEP`.
//! Failovers are in `sentinel.rs` and `cluster.rs`.

use std::time::Duration;

use super::handle::Topology;
use crate::error::Result;
use crate::node::Node;

impl Topology {
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
}
