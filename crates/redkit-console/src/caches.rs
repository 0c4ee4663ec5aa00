//! Caches as the console sees them.

use redis_conn::registry::{self, Kind};
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;

/// A registered cache.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// for cache in c.caches().await? { println!("{}", cache.namespace); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CacheEntry {
    /// The cache's namespace.
    pub namespace: String,
    /// Its registered settings.
    pub settings: Vec<(String, String)>,
}

impl Console {
    /// Every registered cache.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let n = c.caches().await?.len();
    /// # Ok(()) }
    /// ```
    pub async fn caches(&self) -> Result<Vec<CacheEntry>, Error> {
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Cache)).await?;
        Ok(entries
            .into_iter()
            .map(|e| CacheEntry {
                namespace: e.namespace,
                settings: e.settings,
            })
            .collect())
    }
}

/// The cache series of `/metrics`; returns the sections that failed.
pub(crate) async fn metrics(_console: &Console, _out: &mut String, _up: &mut f64) -> u64 {
    0
}
