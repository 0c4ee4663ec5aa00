//! Invalidation beyond single keys: by pattern (`SCAN` on every primary) and by tag.

use std::collections::HashMap;
use std::time::Duration;

use fred::prelude::*;
use futures::TryStreamExt;
use serde::Serialize;

use super::inner::Cache;
use crate::error::Error;

impl Cache {
    /// Removes every entry whose key (without the namespace) matches the glob `pattern`, on
    /// every primary, by `SCAN` + batched `UNLINK` (never `KEYS`). Returns how many were removed.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64, Error> {
        let full = self.inner.ns.glob(pattern);
        self.forget_all();
        let redis = &self.inner.redis;
        let mut pages = std::pin::pin!(redis_conn::scan_keys(redis, &full, 500));
        let mut removed = 0u64;
        while let Some(keys) = pages.try_next().await? {
            // Group by slot: a multi-key UNLINK must stay within one slot on a cluster.
            let mut by_slot: HashMap<u16, Vec<fred::types::Key>> = HashMap::new();
            for k in keys {
                by_slot
                    .entry(redis_conn::keys::slot(k.as_bytes()))
                    .or_default()
                    .push(k);
            }
            for (_, group) in by_slot {
                let n: u64 = redis
                    .pool()
                    .unlink(group)
                    .await
                    .map_err(redis_conn::Error::from)?;
                removed += n;
            }
        }
        Ok(removed)
    }

    /// Stores a value and records its key under each tag, so [`Cache::invalidate_tag`] can remove
    /// everything tagged at once. A tag set lives as long as its longest-lived entry.
    pub async fn set_tagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        tags: &[&str],
    ) -> Result<(), Error> {
        let ttl = ttl.unwrap_or(self.inner.cfg.default_ttl);
        self.set(key, value, Some(ttl)).await?;
        let full = self.redis_key(key);
        let secs = i64::try_from(ttl.as_secs() + 60).unwrap_or(i64::MAX);
        for tag in tags {
            let tag_key = self.tag_key(tag);
            self.guarded(async {
                let _: i64 = self
                    .inner
                    .redis
                    .pool()
                    .sadd(&tag_key, full.as_str())
                    .await?;
                // NX then GT: set an expiry on a new set, only ever extend an existing one.
                let _: i64 = self
                    .inner
                    .redis
                    .pool()
                    .expire(&tag_key, secs, Some(fred::types::ExpireOptions::NX))
                    .await?;
                let _: i64 = self
                    .inner
                    .redis
                    .pool()
                    .expire(&tag_key, secs, Some(fred::types::ExpireOptions::GT))
                    .await?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Removes every entry stored with `tag`; returns how many existed. Entries written with
    /// the tag while this runs may survive (there is no cross-slot atomicity on a cluster).
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64, Error> {
        let tag_key = self.tag_key(tag);
        let pool = self.inner.redis.pool();
        let members: Vec<String> = pool
            .smembers(&tag_key)
            .await
            .map_err(redis_conn::Error::from)?;
        let mut by_slot: HashMap<u16, Vec<String>> = HashMap::new();
        for k in members {
            by_slot
                .entry(redis_conn::keys::slot(k.as_bytes()))
                .or_default()
                .push(k);
        }
        let mut removed = 0;
        for (_, group) in by_slot {
            let n: u64 = pool.unlink(group).await.map_err(redis_conn::Error::from)?;
            removed += n;
        }
        let _: i64 = pool.del(&tag_key).await.map_err(redis_conn::Error::from)?;
        self.forget_all();
        Ok(removed)
    }

    pub(super) fn tag_key(&self, tag: &str) -> String {
        self.inner.ns.key(&format!("__tag__:{tag}"))
    }
}
