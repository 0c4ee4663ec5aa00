//! Sentinel topologies: starting the primary, replicas and sentinels, waiting for quorum,
//! asking the sentinels for the primary, and Sentinel failovers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::handle::Topology;
use super::launch::Launcher;
use super::ready::poll;
use crate::error::{Error, Result};
use crate::node::Role;
use crate::resp::Reply;
use crate::tls;

impl Topology {
    pub(super) fn start_sentinel(&mut self, mut l: Launcher) -> Result<()> {
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
            let listen = match &spec.tls {
                None => format!("port {port}\n"),
                Some(t) => tls::server_settings(port, &format!("{dir}/tls"), t)
                    .into_iter()
                    .map(|(k, v)| format!("{k} {v}\n"))
                    .collect(),
            };
            let mut c = format!(
                "{listen}bind {bind}\nprotected-mode no\ndir {dir}\nlogfile log\n\
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
            if let Some(a) = &spec.sentinel_auth {
                let user = a.username.as_deref().unwrap_or("default");
                c.push_str(&format!(
                    "user default off\nuser {user} on >{pw} allchannels +@all\n\
                     sentinel sentinel-user {user}\nsentinel sentinel-pass {pw}\n",
                    pw = a.password
                ));
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
}
