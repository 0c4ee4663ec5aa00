//! Invalidation beyond single keys: by pattern (`SCAN` on every primary) and by tag.

use std::collections::HashMap;
use std::time::Duration;

use fred::prelude::*;
use futures::TryStreamExt;
use serde::Serialize;

use super::inner::Cache;
use crate::error::{Error, refused};

impl Cache {
    /// Removes every entry whose key (without the namespace) matches the glob `pattern`, on
    /// every primary, by `SCAN` + batched `UNLINK` (never `KEYS`). Returns how many were removed.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64, Error> {
        let full = self.inner.ns.glob(pattern);
        self.forget_all();
        let redis = &self.inner.redis;
        let mut pages = std::pin::pin!(redis_conn::scan_keys(redis, &full, 500));
        let mut removed = 0u64;
        while let Some(keys) = pages
            .try_next()
            .await
            .map_err(|e| refused(e, || format!("SCAN MATCH {full}")))?
        {
            // Group by slot: a multi-key UNLINK must stay within one slot on a cluster.
            let mut by_slot: HashMap<u16, Vec<fred::types::Key>> = HashMap::new();
            for k in keys {
                by_slot
                    .entry(redis_conn::keys::slot(k.as_bytes()))
                    .or_default()
                    .push(k);
            }
            for (_, group) in by_slot {
                let n: u64 =
                    redis.pool().unlink(group).await.map_err(|e| {
                        refused(e.into(), || format!("UNLINK of keys matching {full}"))
                    })?;
                removed += n;
            }
        }
        Ok(removed)
    }

    /// Stores a value and records its key under each tag, so [`Cache::invalidate_tag`] can remove
    /// everything tagged at once. A tag set lives as long as its longest-lived entry. The tags
    /// are recorded first: a call that fails never leaves a value its tags do not know of.
    ///
    /// ```no_run
    /// # async fn demo(cache: cache_core::Cache) -> Result<(), cache_core::Error> {
    /// cache.set_tagged("product:42", &"teapot", None, &["category:7"]).await?;
    /// assert_eq!(cache.invalidate_tag("category:7").await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn set_tagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        tags: &[&str],
    ) -> Result<(), Error> {
        let ttl = ttl.unwrap_or(self.inner.cfg.default_ttl);
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
            .await
            .map_err(|e| refused(e, || format!("SADD, EXPIRE {tag_key}")))?;
        }
        self.set(key, value, Some(ttl)).await
    }

    /// Removes every entry stored with `tag`; returns how many existed. Entries written with
    /// the tag while this runs may survive (there is no cross-slot atomicity on a cluster).
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64, Error> {
        let tag_key = self.tag_key(tag);
        let pool = self.inner.redis.pool();
        let members: Vec<String> = pool
            .smembers(&tag_key)
            .await
            .map_err(|e| refused(e.into(), || format!("SMEMBERS {tag_key}")))?;
        let mut by_slot: HashMap<u16, Vec<String>> = HashMap::new();
        for k in members {
            by_slot
                .entry(redis_conn::keys::slot(k.as_bytes()))
                .or_default()
                .push(k);
        }
        let mut removed = 0;
        for (_, group) in by_slot {
            let n: u64 = pool
                .unlink(group)
                .await
                .map_err(|e| refused(e.into(), || format!("UNLINK of the keys tagged {tag}")))?;
            removed += n;
        }
        let _: i64 = pool
            .del(&tag_key)
            .await
            .map_err(|e| refused(e.into(), || format!("DEL {tag_key}")))?;
        self.forget_all();
        Ok(removed)
    }

    pub(super) fn tag_key(&self, tag: &str) -> String {
        self.inner.ns.key(&format!("__tag__:{tag}"))
    }
}
