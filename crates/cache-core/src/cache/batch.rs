//! Batches: [`Cache::get_many`] (one `MGET` per cluster slot) and [`Cache::set_many`].

use std::collections::HashMap;
use std::time::Duration;

use fred::bytes::Bytes;
use fred::prelude::*;
use fred::types::Expiration;
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument;

use super::config::Lookup;
use super::inner::Cache;
use super::stats::{bump, bump_by};
use crate::envelope::Envelope;
use crate::error::{Error, refused};

impl Cache {
    /// Looks up many keys at once: one `MGET` (on a cluster, one per slot, all in parallel, since
    /// a multi-key command must stay within one slot).
    pub async fn get_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Lookup<T>>, Error> {
        let c = &self.inner.counters;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.inner.redis.pool();
        let span = tracing::debug_span!("cache.get_many", keys = keys.len());
        self.admit().inspect_err(|_| bump(&c.redis_errors))?;
        let replies: Result<Vec<Option<Bytes>>, fred::error::Error> =
            if !self.inner.redis.is_cluster() {
                // One MGET for everything; keys are moved into fred, not copied.
                let names: Vec<fred::types::Key> = keys
                    .iter()
                    .map(|k| fred::types::Key::from(self.redis_key(k)))
                    .collect();
                async {
                    if names.len() == 1 {
                        Ok(vec![pool.get(names[0].clone()).await?])
                    } else {
                        pool.mget(names).await
                    }
                }
                .instrument(span)
                .await
            } else {
                // A multi-key MGET must stay within one slot: one per slot, all in parallel.
                let mut groups: HashMap<u16, (Vec<usize>, Vec<fred::types::Key>)> = HashMap::new();
                for (i, k) in keys.iter().enumerate() {
                    let full = self.redis_key(k);
                    let group = groups
                        .entry(redis_conn::keys::slot(full.as_bytes()))
                        .or_default();
                    group.0.push(i);
                    group.1.push(full.into());
                }
                let calls = groups.into_values().map(|(at, names)| async move {
                    let values: Vec<Option<Bytes>> = if names.len() == 1 {
                        vec![pool.get(names[0].clone()).await?]
                    } else {
                        pool.mget(names).await?
                    };
                    Ok::<_, fred::error::Error>(at.into_iter().zip(values).collect::<Vec<_>>())
                });
                futures::future::try_join_all(calls)
                    .instrument(span)
                    .await
                    .map(|groups| {
                        let mut ordered: Vec<Option<Bytes>> = vec![None; keys.len()];
                        for (i, v) in groups.into_iter().flatten() {
                            if let Some(slot) = ordered.get_mut(i) {
                                *slot = v;
                            }
                        }
                        ordered
                    })
            };
        let replies = replies.map_err(redis_conn::Error::from);
        self.settle(&replies);
        let replies = replies
            .map_err(|e| {
                refused(e, || {
                    format!(
                        "MGET of {} keys under {}:",
                        keys.len(),
                        self.inner.ns.prefix()
                    )
                })
            })
            .inspect_err(|_| bump(&c.redis_errors))?;
        let (mut hits, mut null_hits, mut misses, mut bad) = (0u64, 0u64, 0u64, 0u64);
        let out = replies
            .into_iter()
            .map(|bytes| {
                let found = match bytes.map(Envelope::decode_bytes) {
                    None => Lookup::Miss,
                    Some(Err(_)) => {
                        bad += 1;
                        Lookup::Miss
                    }
                    Some(Ok(e)) if e.null => Lookup::NotFound,
                    Some(Ok(e)) => {
                        e.codec
                            .decode(&e.payload)
                            .map(Lookup::Hit)
                            .unwrap_or_else(|_| {
                                bad += 1;
                                Lookup::Miss
                            })
                    }
                };
                match &found {
                    Lookup::Hit(_) => hits += 1,
                    Lookup::NotFound => null_hits += 1,
                    Lookup::Miss => misses += 1,
                }
                found
            })
            .collect();
        bump_by(&c.hits, hits);
        bump_by(&c.null_hits, null_hits);
        bump_by(&c.misses, misses);
        bump_by(&c.decode_errors, bad);
        Ok(out)
    }

    /// Stores many values in one pipeline (fred routes each `SET` to its node), each with its
    /// own jittered TTL.
    pub async fn set_many<T: Serialize>(
        &self,
        items: &[(&str, &T)],
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let ttl = ttl.unwrap_or(self.inner.cfg.default_ttl);
        let mut encoded = Vec::with_capacity(items.len());
        for (k, v) in items {
            let mut env = self.envelope(
                Some(self.inner.cfg.codec.encode(*v)?.into()),
                Duration::ZERO,
            );
            let (redis_ttl, soft) = self.lifetimes(ttl);
            env.soft_expiry_ms = soft;
            let px = i64::try_from(redis_ttl.as_millis()).unwrap_or(i64::MAX);
            encoded.push((self.redis_key(k), env.encode(), px));
        }
        let written: Vec<String> = encoded.iter().map(|(k, _, _)| k.clone()).collect();
        let client = self.inner.redis.next();
        self.guarded(async {
            let pipe = client.pipeline();
            for (k, v, px) in encoded {
                let _: () = pipe
                    .set(k, v, Some(Expiration::PX(px)), None, false)
                    .await?;
            }
            let _: Vec<Value> = pipe.all().await?;
            Ok(())
        })
        .instrument(tracing::debug_span!("cache.set_many", keys = items.len()))
        .await
        .map_err(|e| {
            refused(e, || {
                format!(
                    "SET of {} keys under {}:",
                    items.len(),
                    self.inner.ns.prefix()
                )
            })
        })
        .inspect_err(|_| bump(&self.inner.counters.redis_errors))?;
        for k in &written {
            self.forget(k);
        }
        Ok(())
    }
}
