//! Reads and writes that never build: [`Cache::get`], [`Cache::set`], [`Cache::delete`].

use std::time::Duration;

use fred::prelude::*;
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument;

use super::config::Lookup;
use super::inner::Cache;
use super::stats::bump;
use crate::error::{Error, refused};

impl Cache {
    /// Looks a key up without building.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Lookup<T>, Error> {
        let full = self.redis_key(key);
        let span = tracing::debug_span!("cache.get", key = %full);
        async {
            let c = &self.inner.counters;
            let env = self
                .read(&full)
                .await
                .map_err(|e| refused(e, || format!("GET {full}")))
                .inspect_err(|_| bump(&c.redis_errors))?;
            Ok(match env {
                Some(e) if e.null => {
                    bump(&c.null_hits);
                    Lookup::NotFound
                }
                Some(e) => match e.codec.decode(&e.payload) {
                    Ok(v) => {
                        bump(&c.hits);
                        Lookup::Hit(v)
                    }
                    Err(err) => {
                        bump(&c.decode_errors);
                        tracing::warn!(key = %full, error = %err, "cached value does not decode as the requested type");
                        bump(&c.misses);
                        Lookup::Miss
                    }
                },
                None => {
                    bump(&c.misses);
                    Lookup::Miss
                }
            })
        }
        .instrument(span)
        .await
    }

    /// Stores a value for `ttl` (default TTL when `None`), with jitter.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let payload = self.inner.cfg.codec.encode(value)?;
        let (ttl, soft) = self.lifetimes(ttl.unwrap_or(self.inner.cfg.default_ttl));
        let mut env = self.envelope(Some(payload.into()), Duration::ZERO);
        env.soft_expiry_ms = soft;
        let full = self.redis_key(key);
        let written = self
            .write(&full, &env, ttl)
            .instrument(tracing::debug_span!("cache.set", key))
            .await;
        self.forget(&full);
        written
            .map_err(|e| refused(e, || format!("SET {full}")))
            .inspect_err(|_| bump(&self.inner.counters.redis_errors))?;
        Ok(())
    }

    /// Removes keys; returns how many existed.
    pub async fn delete(&self, keys: &[&str]) -> Result<u64, Error> {
        let mut removed = 0;
        // One UNLINK per key: keys of a cache need not share a cluster slot.
        for key in keys {
            let full = self.redis_key(key);
            let n: Result<u64, _> = self.inner.redis.pool().unlink(&full).await;
            self.forget(&full);
            removed += n.map_err(|e| refused(e.into(), || format!("UNLINK {full}")))?;
        }
        Ok(removed)
    }
}
