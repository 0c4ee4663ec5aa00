//! The optional in-process near cache (L1, moka; feature `near-cache`), kept coherent with Redis by client-side
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{
    ClientInterface, ClientLike, ClusterInterface, EventInterface, TrackingInterface,
};
use fred::prelude::FredResult;
use redis_conn::{Dedicated, RedisClient};
use tokio::sync::{Notify, OnceCell};

use crate::envelope::now_ms;
use crate::error::refused;
use crate::near_config::NearConfig;

#[derive(Clone)]
struct Entry {
    value: Option<Arc<dyn Any + Send + Sync>>,
    soft_expiry_ms: u64,
}

/// Bit 0 of [`Shared::state`]: tracking is confirmed on every connection that serves keys.
const ON: u64 = 1;

/// What the near cache and its background tasks share.
struct Shared {
    l1: moka::sync::Cache<String, Entry>,
    /// Bumped by every invalidation; an entry read before a bump is not stored.
    generation: AtomicU64,
    /// `losses << 1 | ON`: each loss of tracking adds 2 and clears `ON`; the repair task sets
    /// `ON` only if no loss happened while it was re-enabling (compare-and-swap).
    state: AtomicU64,
    prefix: String,
    repair: Notify,
    closed: AtomicBool,
}

impl Shared {
    fn is_on(&self) -> bool {
        self.state.load(Ordering::Acquire) & ON == ON
    }

    /// Tracking may be off (reconnect, error, topology change): stop serving and storing,
    /// flush, and ask the repair task to turn it on again.
    fn lost(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some((s + 2) & !ON));
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.l1.invalidate_all();
        self.repair.notify_one();
    }

    fn invalidated(&self, key: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.l1
            .invalidate(key.strip_prefix(self.prefix.as_str()).unwrap_or(key));
    }
}

/// Entries are keyed by the cache key without the namespace prefix, so a lookup needs no
/// allocation; invalidations (full Redis keys) are mapped back with [`Near::short`].
pub(crate) struct Near {
    shared: Arc<Shared>,
    tracking: OnceCell<Option<Client>>,
}

impl Near {
    pub(crate) fn new(cfg: &NearConfig, prefix: String) -> Near {
        Near {
            shared: Arc::new(Shared {
                l1: moka::sync::Cache::builder()
                    .max_capacity(cfg.max_entries)
                    .time_to_live(cfg.ttl)
                    .build(),
                generation: AtomicU64::new(0),
                state: AtomicU64::new(0),
                prefix,
                repair: Notify::new(),
                closed: AtomicBool::new(false),
            }),
            tracking: OnceCell::new(),
        }
    }

    /// Starts tracking on first use; `false` (L1 off) when it cannot be started or is being
    /// repaired.
    pub(crate) async fn ready(&self, redis: &RedisClient) -> bool {
        self.tracking
            .get_or_init(|| async {
                match self.start(redis).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let e = refused(e, || {
                            format!("CLIENT TRACKING ON BCAST PREFIX {}", self.shared.prefix)
                        });
                        tracing::warn!(error = %e, "near cache disabled: client tracking unavailable");
                        None
                    }
                }
            })
            .await
            .is_some()
            && self.shared.is_on()
    }

    async fn start(&self, redis: &RedisClient) -> Result<Client, redis_conn::Error> {
        let client = redis.dedicated(Dedicated::Tracking).await?;
        let shared = self.shared.clone();
        let mut rx = client.invalidation_rx();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match rx.recv().await {
                    // FLUSHALL / FLUSHDB
                    Ok(inv) if inv.keys.is_empty() => {
                        shared.generation.fetch_add(1, Ordering::SeqCst);
                        shared.l1.invalidate_all();
                    }
                    Ok(inv) => {
                        for k in inv.keys {
                            match k.as_str() {
                                Some(k) => shared.invalidated(k),
                                None => shared.lost(),
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => shared.lost(),
                    Err(RecvError::Closed) => break,
                }
            }
        });
        // Tracking is per connection: after a reconnect, an error or a cluster topology change
        // it may be off somewhere and invalidations sent meanwhile are lost. Stop serving,
        // flush, and let the repair task turn it on again on every primary.
        let shared = self.shared.clone();
        client.on_reconnect(move |_| {
            shared.lost();
            async { Ok(()) }
        });
        let shared = self.shared.clone();
        client.on_cluster_change(move |_| {
            shared.lost();
            async { Ok(()) }
        });
        let shared = self.shared.clone();
        client.on_error(move |_| {
            shared.lost();
            async { Ok(()) }
        });
        let before = self.shared.state.load(Ordering::Acquire) & !ON;
        enable_tracking(&client, &self.shared.prefix).await?;
        let _ = self.shared.state.compare_exchange(
            before,
            before | ON,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        tokio::spawn(repair(self.shared.clone(), client.clone()));
        Ok(client)
    }

    /// Whether the L1 may serve: tracking started and confirmed on every primary.
    pub(crate) fn is_ready(&self) -> bool {
        self.tracking.get().is_some_and(Option::is_some) && self.shared.is_on()
    }

    /// The current invalidation generation; take it before reading Redis.
    pub(crate) fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    /// The L1 key of a full Redis key: without the namespace prefix.
    pub(crate) fn short<'k>(&self, full: &'k str) -> &'k str {
        full.strip_prefix(self.shared.prefix.as_str())
            .unwrap_or(full)
    }

    /// `Some(value)` on an L1 hit (`Some(None)`: cached "not found"); `key` is a short key.
    pub(crate) fn get<T: Clone + 'static>(&self, key: &str) -> Option<Option<T>> {
        let e = self.shared.l1.get(key)?;
        if e.soft_expiry_ms != 0 && now_ms() >= e.soft_expiry_ms {
            return None;
        }
        match e.value {
            None => Some(None),
            Some(v) => v.downcast_ref::<T>().map(|t| Some(t.clone())),
        }
    }

    /// Stores an entry unless an invalidation arrived since `generation` was taken (checked
    /// again after the insert: one that lands in between removes the entry).
    pub(crate) fn insert<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: Option<T>,
        soft_expiry_ms: u64,
        generation: u64,
    ) {
        if self.generation() != generation || !self.shared.is_on() {
            return;
        }
        self.shared.l1.insert(
            key.to_string(),
            Entry {
                value: value.map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>),
                soft_expiry_ms,
            },
        );
        if self.generation() != generation {
            self.shared.l1.invalidate(key);
        }
    }

    pub(crate) fn invalidate(&self, key: &str) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        self.shared.l1.invalidate(key);
    }

    pub(crate) fn clear(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        self.shared.l1.invalidate_all();
    }

    /// Entries currently held (approximate).
    pub(crate) fn len(&self) -> u64 {
        self.shared.l1.run_pending_tasks();
        self.shared.l1.entry_count()
    }

    pub(crate) fn quit(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.repair.notify_one();
        if let (Some(Some(c)), Ok(rt)) =
            (self.tracking.get(), tokio::runtime::Handle::try_current())
        {
            let c = c.clone();
            rt.spawn(async move { c.quit().await.ok() });
        }
    }
}

/// Turns tracking on again after each loss, retrying (with a fresh cluster map) until every
/// primary confirms; only then may the L1 serve again.
async fn repair(shared: Arc<Shared>, client: Client) {
    loop {
        shared.repair.notified().await;
        let mut attempt = 0u32;
        loop {
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            let before = shared.state.load(Ordering::Acquire) & !ON;
            match enable_tracking(&client, &shared.prefix).await {
                Ok(()) => {
                    if shared
                        .state
                        .compare_exchange(before, before | ON, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        tracing::debug!(attempt, "near cache: client tracking on again");
                        break;
                    }
                    // Lost again meanwhile: go round once more.
                }
                Err(e) => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "near cache: tracking not on yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if client.is_clustered() {
                        let _ = client.sync_cluster().await;
                    }
                }
            }
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
        if primaries.is_empty() {
            return Err(fred::error::Error::new(
                fred::error::ErrorKind::Cluster,
                "no cluster primaries known",
            ));
        }
        let mut first_error = None;
        for server in primaries {
            let on: FredResult<()> = client
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
                .await;
            if let Err(e) = already_on_is_ok(on) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    } else {
        already_on_is_ok(
            client
                .start_tracking(vec![prefix.to_string()], true, false, false, false)
                .await,
        )
    }
}

/// Re-enabling tracking on a connection where it is still on is refused by Redis ("Prefix ...
/// overlaps with an existing prefix"); this connection only ever tracks our one prefix, so
/// that reply means it is on.
fn already_on_is_ok(result: FredResult<()>) -> FredResult<()> {
    match result {
        Err(e) if e.details().contains("overlaps with an existing prefix") => Ok(()),
        other => other,
    }
}
