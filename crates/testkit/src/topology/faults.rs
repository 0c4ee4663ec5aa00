//! Faults on single nodes: kill, pause and resume, restart, `CLIENT PAUSE` and `DEBUG SLEEP`,
//! and a node certificate swapped for an expiring or expired one.
//! Failovers are in `sentinel.rs` and `cluster.rs`.

use std::time::Duration;

use super::handle::Topology;
use crate::error::{Error, Result};
use crate::node::Node;
use crate::tls::Validity;

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

impl Topology {
    /// Gives data node `node` a new certificate from the topology's CA, valid as `valid` says
    /// (e.g. three days, or expired), and makes the server load it (`CONFIG SET
    /// tls-cert-file`): new connections see it at once.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let topo = testkit::Topology::start(testkit::Spec::new(testkit::Kind::Standalone).tls(Default::default())).unwrap();
    /// topo.reissue_certificate(&topo.nodes()[0], testkit::Validity::For(Duration::from_secs(3 * 86_400))).unwrap();
    /// ```
    pub fn reissue_certificate(&self, node: &Node, valid: Validity) -> Result<()> {
        let (Some(authority), Some(tls)) = (&self.authority, &self.spec.tls) else {
            return Err(Error::new("not a TLS topology"));
        };
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (cert, key) = (format!("server-{n}.crt"), format!("server-{n}.key"));
        authority.node_file_pair(
            &node.dir,
            &node.name,
            node.addr.ip(),
            tls,
            valid,
            &cert,
            &key,
        )?;
        let seen = if node.is_container() {
            "/data/tls".to_string()
        } else {
            node.dir.join("tls").display().to_string()
        };
        node.cmd(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &format!("{seen}/{cert}"),
            "tls-key-file",
            &format!("{seen}/{key}"),
        ])?;
        Ok(())
    }
}
