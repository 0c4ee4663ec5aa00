//! Lock namespaces as the console sees them.

use redis_conn::registry::{self, Kind};
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;

/// A registered lock namespace.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// for ns in c.lock_namespaces().await? { println!("{}", ns.namespace); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LockNamespace {
    /// The namespace (every lock's key starts with it).
    pub namespace: String,
    /// When it was first registered (Unix ms).
    pub registered_ms: u64,
}

impl Console {
    /// Every registered lock namespace.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let n = c.lock_namespaces().await?.len();
    /// # Ok(()) }
    /// ```
    pub async fn lock_namespaces(&self) -> Result<Vec<LockNamespace>, Error> {
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Locks)).await?;
        Ok(entries
            .into_iter()
            .map(|e| LockNamespace {
                namespace: e.namespace,
                registered_ms: e.registered_ms,
            })
            .collect())
    }
}

/// The lock series of `/metrics`; returns the sections that failed.
pub(crate) async fn metrics(_console: &Console, _out: &mut String, _up: &mut f64) -> u64 {
    0
}
