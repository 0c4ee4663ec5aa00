//! The optional in-process near cache (L1, moka), kept coherent with Redis by client-side
//! caching: a dedicated RESP3 connection with `CLIENT TRACKING ON BCAST PREFIX <namespace>:`
//! receives an invalidation for every change under the namespace, from any client.
//!
//! Safety rules (from Redis's client-side caching guide): the L1 is flushed when the tracking
//! connection reconnects or reports an error, and when invalidations were missed (a lagging
//! channel); entries are bounded in number and age; an entry read from Redis is only stored if
//! no invalidation arrived while it was being read (a generation counter), so a late insert can
//! never resurrect a value that changed meanwhile.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{
    ClientInterface, ClientLike, ClusterInterface, EventInterface, TrackingInterface,
};
use redis_conn::{Dedicated, RedisClient};
use tokio::sync::OnceCell;

use crate::envelope::now_ms;

/// Near-cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearConfig {
    /// Most entries kept in memory.
    pub max_entries: u64,
    /// Longest an entry is served from memory, whatever Redis says.
    pub ttl: Duration,
}

impl NearConfig {
    /// A near cache of `max_entries` entries, each kept at most `ttl`.
    ///
    /// ```
    /// let near = cache_core::NearConfig::new(10_000, std::time::Duration::from_secs(30));
    /// assert_eq!(near.max_entries, 10_000);
    /// ```
    pub fn new(max_entries: u64, ttl: Duration) -> NearConfig {
        NearConfig { max_entries, ttl }
    }
}

#[derive(Clone)]
struct Entry {
    value: Option<Arc<dyn Any + Send + Sync>>,
    soft_expiry_ms: u64,
}

/// Entries are keyed by the cache key without the namespace prefix, so a lookup needs no
/// allocation; invalidations (full Redis keys) are mapped back with [`Near::short`].
pub(crate) struct Near {
    l1: moka::sync::Cache<String, Entry>,
    generation: Arc<AtomicU64>,
    prefix: String,
    tracking: OnceCell<Option<Client>>,
}

impl Near {
    pub(crate) fn new(cfg: &NearConfig, prefix: String) -> Near {
        Near {
            l1: moka::sync::Cache::builder()
                .max_capacity(cfg.max_entries)
                .time_to_live(cfg.ttl)
                .build(),
            generation: Arc::new(AtomicU64::new(0)),
            prefix,
            tracking: OnceCell::new(),
        }
    }

    /// Starts tracking on first use; `false` (L1 off) when it cannot be started.
    pub(crate) async fn ready(&self, redis: &RedisClient) -> bool {
        self.tracking
            .get_or_init(|| async {
                match self.start(redis).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "near cache disabled: client tracking unavailable");
                        None
                    }
                }
            })
            .await
            .is_some()
    }

    async fn start(&self, redis: &RedisClient) -> Result<Client, redis_conn::Error> {
        let client = redis.dedicated(Dedicated::Tracking).await?;
        let (l1, generation, prefix) = (
            self.l1.clone(),
            self.generation.clone(),
            self.prefix.clone(),
        );
        let mut rx = client.invalidation_rx();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let msg = rx.recv().await;
                generation.fetch_add(1, Ordering::SeqCst);
                match msg {
                    Ok(inv) if inv.keys.is_empty() => l1.invalidate_all(), // FLUSHALL / FLUSHDB
                    Ok(inv) => {
                        for k in inv.keys {
                            if let Some(k) = k.as_str() {
                                l1.invalidate(k.strip_prefix(prefix.as_str()).unwrap_or(k));
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => l1.invalidate_all(),
                    Err(RecvError::Closed) => break,
                }
            }
        });
        // Tracking is per connection: after a reconnect (or a cluster topology change) it is off
        // and invalidations sent meanwhile are lost, so flush and turn it on again.
        let (l1, generation, prefix, c) = (
            self.l1.clone(),
            self.generation.clone(),
            self.prefix.clone(),
            client.clone(),
        );
        client.on_reconnect(move |_server| {
            generation.fetch_add(1, Ordering::SeqCst);
            l1.invalidate_all();
            let (c, prefix) = (c.clone(), prefix.clone());
            async move { enable_tracking(&c, &prefix).await }
        });
        let (l1, generation, prefix, c) = (
            self.l1.clone(),
            self.generation.clone(),
            self.prefix.clone(),
            client.clone(),
        );
        client.on_cluster_change(move |_changes| {
            generation.fetch_add(1, Ordering::SeqCst);
            l1.invalidate_all();
            let (c, prefix) = (c.clone(), prefix.clone());
            async move { enable_tracking(&c, &prefix).await }
        });
        let (l1, generation) = (self.l1.clone(), self.generation.clone());
        client.on_error(move |_| {
            generation.fetch_add(1, Ordering::SeqCst);
            l1.invalidate_all();
            async { Ok(()) }
        });
        enable_tracking(&client, &self.prefix).await?;
        Ok(client)
    }

    /// Whether tracking is on (after the first `ready`).
    pub(crate) fn is_ready(&self) -> bool {
        self.tracking.get().is_some_and(Option::is_some)
    }

    /// The current invalidation generation; take it before reading Redis.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The L1 key of a full Redis key: without the namespace prefix.
    pub(crate) fn short<'k>(&self, full: &'k str) -> &'k str {
        full.strip_prefix(self.prefix.as_str()).unwrap_or(full)
    }

    /// `Some(value)` on an L1 hit (`Some(None)`: cached "not found"); `key` is a short key.
    pub(crate) fn get<T: Clone + 'static>(&self, key: &str) -> Option<Option<T>> {
        let e = self.l1.get(key)?;
        if e.soft_expiry_ms != 0 && now_ms() >= e.soft_expiry_ms {
            return None;
        }
        match e.value {
            None => Some(None),
            Some(v) => v.downcast_ref::<T>().map(|t| Some(t.clone())),
        }
    }

    /// Stores an entry unless an invalidation arrived since `generation` was taken.
    pub(crate) fn insert<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: Option<T>,
        soft_expiry_ms: u64,
        generation: u64,
    ) {
        if self.generation() != generation {
            return;
        }
        self.l1.insert(
            key.to_string(),
            Entry {
                value: value.map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>),
                soft_expiry_ms,
            },
        );
    }

    pub(crate) fn invalidate(&self, key: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.l1.invalidate(key);
    }

    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.l1.invalidate_all();
    }

    /// Entries currently held (approximate).
    pub(crate) fn len(&self) -> u64 {
        self.l1.run_pending_tasks();
        self.l1.entry_count()
    }

    pub(crate) fn quit(&self) {
        if let (Some(Some(c)), Ok(rt)) =
            (self.tracking.get(), tokio::runtime::Handle::try_current())
        {
            let c = c.clone();
            rt.spawn(async move { c.quit().await.ok() });
        }
    }
}

/// `CLIENT TRACKING ON BCAST PREFIX <prefix>` on every connection that serves keys: each primary
/// of a cluster sends invalidations only for its own keys. (fred's `start_tracking` sends a
/// BCAST request to a single cluster node, so it is not used on clusters.)
async fn enable_tracking(client: &Client, prefix: &str) -> fred::prelude::FredResult<()> {
    if client.is_clustered() {
        let primaries = client
            .cached_cluster_state()
            .map(|s| s.unique_primary_nodes())
            .unwrap_or_default();
        for server in primaries {
            let _: () = client
                .with_cluster_node(server)
                .client_tracking(
                    "on",
                    None,
                    vec![prefix.to_string()],
                    true,
                    false,
                    false,
                    false,
                )
                .await?;
        }
        Ok(())
    } else {
        client
            .start_tracking(vec![prefix.to_string()], true, false, false, false)
            .await
    }
}
