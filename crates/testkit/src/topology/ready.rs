//! Waiting for conditions by polling the servers (never by sleeping a fixed time), and the
//! replication check every kind's readiness shares.

use std::time::{Duration, Instant};

use super::handle::Topology;
use crate::error::{Error, Result};

/// Polls `check` every 25 ms until it returns `Ok(true)` or `timeout` passes; the error names
/// `what` and the last reason the check gave.
pub(super) fn poll(
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
    pub(super) fn replicas_linked(&self) -> Result<bool> {
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
}
