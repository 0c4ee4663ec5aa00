//! The start-up check: can the server lose queue keys?

use fred::interfaces::{ClientLike, ClusterInterface};
use fred::types::{CustomCommand, InfoKind, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::queue::core::Queue;

/// What [`Queue::check_durability`] found on the node that holds the queue.
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
/// let d = q.check_durability().await?;
/// for w in &d.warnings {
///     eprintln!("queue durability: {w}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Durability {
    /// `maxmemory-policy` (from `INFO memory`).
    pub maxmemory_policy: Option<String>,
    /// Whether AOF is on (from `INFO persistence`).
    pub aof: Option<bool>,
    /// Whether RDB snapshots are configured (`CONFIG GET save`; `None` when `CONFIG` is not
    /// allowed).
    pub rdb: Option<bool>,
    /// What can lose messages, in plain words (empty: nothing found).
    pub warnings: Vec<String>,
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Judges a server's settings for a queue.
pub(crate) fn judge(policy: Option<&str>, aof: Option<bool>, rdb: Option<bool>) -> Vec<String> {
    let mut warnings = Vec::new();
    // Queue keys carry no TTL, so only allkeys-* policies can evict them.
    if let Some(p) = policy.filter(|p| p.starts_with("allkeys")) {
        warnings.push(format!(
            "maxmemory-policy is {p}: under memory pressure Redis evicts queue keys and messages vanish; use noeviction (writes then fail loudly instead)"
        ));
    }
    match (aof, rdb) {
        (Some(false), Some(false)) => warnings.push(
            "persistence is off (no AOF, no RDB snapshots): a restart loses every message".into(),
        ),
        (Some(false), _) => warnings.push(
            "AOF is off: a crash loses the messages written since the last RDB snapshot; appendonly yes (appendfsync everysec) bounds the loss to about a second".into(),
        ),
        _ => {}
    }
    warnings
}

/// The eviction policy, AOF and RDB settings of the node `client` talks to.
async fn settings<C: ClientLike>(
    client: &C,
) -> Result<(Option<String>, Option<bool>, Option<bool>), Error> {
    let memory: String = client.info(Some(InfoKind::Memory)).await?;
    let persistence: String = client.info(Some(InfoKind::Persistence)).await?;
    let policy = field(&memory, "maxmemory_policy").map(str::to_string);
    let aof = field(&persistence, "aof_enabled").map(|v| v == "1");
    let config = CustomCommand::new_static("CONFIG", None, false);
    let rdb = match client
        .custom::<Vec<Value>, _>(config, vec!["GET", "save"])
        .await
    {
        Ok(kv) => kv
            .get(1)
            .and_then(Value::as_string)
            .map(|v| !v.trim().is_empty()),
        Err(_) => None,
    };
    Ok((policy, aof, rdb))
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// Checks, best effort, whether the server holding the queue can lose its keys: an
    /// `allkeys-*` eviction policy, AOF off, no persistence at all. Warnings are also logged.
    /// Read-only (`INFO`, `CONFIG GET`); a server that denies `CONFIG` still gets the `INFO`
    /// part.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// assert!(q.check_durability().await?.maxmemory_policy.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn check_durability(&self) -> Result<Durability, Error> {
        let pool_client = self.redis().pool().next();
        // On a cluster, ask the primary that owns the queue's slot.
        let node = pool_client
            .is_clustered()
            .then(|| {
                let slot = redis_conn::keys::slot(self.base_key().as_bytes());
                pool_client
                    .cached_cluster_state()
                    .and_then(|s| s.get_server(slot).cloned())
            })
            .flatten();
        let (policy, aof, rdb) = match node {
            Some(server) => settings(&pool_client.with_cluster_node(server)).await?,
            None => settings(pool_client).await?,
        };
        let warnings = judge(policy.as_deref(), aof, rdb);
        for w in &warnings {
            tracing::warn!(queue = %self.config().name, "{w}");
        }
        Ok(Durability {
            maxmemory_policy: policy,
            aof,
            rdb,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_persistence_are_judged() {
        assert!(judge(Some("noeviction"), Some(true), Some(true)).is_empty());
        assert!(judge(Some("volatile-lru"), Some(true), None).is_empty());
        let w = judge(Some("allkeys-lru"), Some(true), Some(true));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("allkeys-lru"));
        assert!(
            judge(Some("noeviction"), Some(false), Some(false))[0].contains("persistence is off")
        );
        assert!(judge(Some("noeviction"), Some(false), Some(true))[0].contains("AOF is off"));
        assert_eq!(
            field(
                "# Memory\r\nmaxmemory_policy:noeviction\r\n",
                "maxmemory_policy"
            ),
            Some("noeviction")
        );
    }
}
