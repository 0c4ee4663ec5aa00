//! The lookups that build on a miss: [`Cache::get_or_set`], [`Cache::get_or_refresh`] and
//! [`Cache::get_or_set_filtered`] — the flight leader's read, lease, build and write.

use std::any::{Any, TypeId};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fred::bytes::Bytes;
use fred::prelude::*;
use futures::FutureExt;
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument;

use super::flight::{Join, Leader, Panicked, decode_flight, follow, panic_message};
use super::inner::Cache;
use super::lease::Acquire;
use super::stats::bump;
#[cfg(feature = "bloom")]
use crate::bloom::BloomFilter;
use crate::codec::Codec;
use crate::envelope::Envelope;
use crate::error::{BuildError, refused};

impl Cache {
    /// Like [`Cache::get_or_set`], but a value due for refresh (past its logical expiry within
    /// the `stale_for` grace, or drawn early by XFetch) is returned at once and refreshed in a
    /// background task, so with `stale_for` set readers never wait for a rebuild of a key that
    /// is read at least once per grace period. Misses still build in the foreground.
    ///
    /// ```no_run
    /// # async fn demo(cache: cache_core::Cache) -> Result<(), Box<dyn std::error::Error>> {
    /// let price: Option<u64> = cache
    ///     .get_or_refresh("price:42", None, || async { Ok::<_, std::io::Error>(Some(1999)) })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_or_refresh<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        builder: F,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<T>, E>> + Send + 'static,
    {
        if let Some(v) = self.l1_hit::<T>(key) {
            return Ok(v);
        }
        let full = self.redis_key(key);
        if let Ok(Some(e)) = self.recheck(&full).await
            && !e.null
            && let Ok(v) = e.codec.decode::<T>(&e.payload)
        {
            bump(&self.inner.counters.hits);
            if !self.needs_refresh(&e) {
                return Ok(Some(v));
            }
            bump(&self.inner.counters.refreshes);
            let this = self.clone();
            tokio::spawn(
                async move {
                    // Nobody awaits this task: a panicking builder is logged here (its lease
                    // was given back as it unwound), not re-raised into the runtime.
                    match AssertUnwindSafe(this.lookup(full, ttl, builder, true))
                        .catch_unwind()
                        .await
                    {
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err_kind(&err), "background refresh failed; the current value stays")
                        }
                        Err(panic) => {
                            tracing::error!(panic = %panic_message(&*panic), "background refresh panicked; the current value stays")
                        }
                    }
                }
                .instrument(tracing::debug_span!("cache.refresh", key)),
            );
            return Ok(Some(v));
        }
        let span = tracing::debug_span!("cache.get_or_refresh", key = %full);
        self.lookup(full, ttl, builder, false)
            .instrument(span)
            .await
    }

    /// Like [`Cache::get_or_set`], but ids the Bloom filter has never seen are answered
    /// `Ok(None)` at once, without reading the cache or running the builder (penetration guard
    /// for ids that cannot exist). If the filter cannot be read, the call proceeds as
    /// `get_or_set` (fail open).
    #[cfg(feature = "bloom")]
    pub async fn get_or_set_filtered<T, E, F, Fut>(
        &self,
        filter: &BloomFilter,
        key: &str,
        ttl: Option<Duration>,
        builder: F,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let known = self
            .guarded(async {
                filter.contains(key).await.map_err(|e| match e {
                    crate::error::Error::Redis(r) => r,
                    other => redis_conn::Error::Client(other.to_string()),
                })
            })
            .await;
        match known {
            Ok(false) => {
                bump(&self.inner.counters.filtered);
                Ok(None)
            }
            Ok(true) => self.get_or_set(key, ttl, builder).await,
            Err(err) => {
                bump(&self.inner.counters.redis_errors);
                tracing::warn!(key, error = %err, "bloom filter unavailable; looking up without it");
                self.get_or_set(key, ttl, builder).await
            }
        }
    }

    /// Returns the cached value, or builds it once and caches it.
    ///
    /// * Concurrent calls for the same key in this process share one lookup and at most one
    ///   build (single-flight): the first caller reads Redis (and builds on a miss), the others
    ///   wait for its outcome instead of sending their own `GET`. Writes made through this
    ///   cache (`set`, `delete`, invalidation) are never hidden by a lookup that started before
    ///   them: a lookup started before a write is not shared with calls made after it.
    /// * `Ok(None)` from the builder is cached as "not found" for `null_ttl`.
    /// * Redis errors are absorbed: the builder's value is returned (and counted in
    ///   [`CacheStats::redis_errors`](crate::CacheStats::redis_errors)).
    /// * An undecodable entry is a miss: rebuilt, overwritten, counted.
    pub async fn get_or_set<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        builder: F,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        // Near-cache hits skip the span and the async machinery below: they are the hot path.
        if let Some(v) = self.l1_hit::<T>(key) {
            return Ok(v);
        }
        self.lookup(self.redis_key(key), ttl, builder, false).await
    }

    /// Joins the key's flight in this process, or leads it: reads Redis and, on a miss, builds.
    pub(super) async fn lookup<T, E, F, Fut>(
        &self,
        full: String,
        ttl: Option<Duration>,
        builder: F,
        force_refresh: bool,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let c = &self.inner.counters;
        let mut full = full;
        let max_wait = self.inner.cfg.max_wait;
        // When this caller stops waiting for another process's build: `max_wait` after its
        // first wait, so a caller that already waited for a build of this process does not
        // wait again for the lease that build holds.
        let mut deadline: Option<Instant> = None;
        loop {
            let leader = match self.join::<(T, E)>(full) {
                Join::Follow(rx, key, id) => {
                    bump(&c.coalesced);
                    // Each build this caller follows gets max_wait.
                    let until = Instant::now() + max_wait;
                    deadline.get_or_insert(until);
                    match tokio::time::timeout_at(until.into(), follow(rx)).await {
                        Ok(Some(result)) => return decode_flight::<T, E>(result),
                        // The leader was cancelled before it finished: lead or follow anew.
                        Ok(None) => {
                            full = key;
                            continue;
                        }
                        Err(_) => {
                            // The leader's build outlasted max_wait (hung?): end that flight,
                            // so this caller leads a successor (building at once, as a caller
                            // of another process would) and the other followers follow it.
                            bump(&c.wait_timeouts);
                            tracing::warn!(key = %key, "waited max_wait for this process's build of the key; building here");
                            let flight = (key, TypeId::of::<(T, E)>());
                            super::flight::abandon(&self.inner.flights, &flight, id);
                            full = flight.0;
                            continue;
                        }
                    }
                }
                Join::Lead(leader) => leader,
            };
            // Without a near cache, a plain Redis hit is answered here with a small future; the
            // (large) miss/refresh machinery is boxed and only entered when needed.
            let (mut first, mut refresh) = (None, force_refresh);
            if self.inner.near.is_none() && !force_refresh {
                // The GET is awaited right here rather than through `read`: each async layer
                // around fred's ~7 KB future costs a copy of it on every call.
                let read = match self.admit() {
                    Ok(()) => {
                        let reply = self.inner.redis.pool().get(leader.full()).await;
                        self.envelope_of(leader.full(), reply, false)
                    }
                    Err(e) => Err(e),
                };
                if let Ok(Some(e)) = &read {
                    if e.null {
                        bump(&c.null_hits);
                        leader.finish(|| Ok(None));
                        return Ok(None);
                    }
                    // Draw once: the boxed path must not re-draw an XFetch decision.
                    refresh = self.needs_refresh(e);
                    if !refresh && let Ok(v) = e.codec.decode::<T>(&e.payload) {
                        bump(&c.hits);
                        leader.finish(|| Ok(Some((e.codec, e.payload.clone()))));
                        return Ok(Some(v));
                    }
                }
                first = Some(read);
            }
            let span = tracing::debug_span!("cache.get_or_set", key = %leader.full());
            return Box::pin(
                self.lead(leader, ttl, builder, refresh, first, deadline)
                    .instrument(span),
            )
            .await;
        }
    }

    /// Follows the key's flight in progress, or registers a new one led by the caller. A flight
    /// that started before this cache's last write is not joined: it is replaced.
    pub(super) fn join<K: 'static>(&self, full: String) -> Join<'_> {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        super::flight::join::<K>(&self.inner.flights, epoch, full)
    }

    /// The flight leader's work after a miss, an undecodable entry, a value due for refresh or
    /// a failed read: take the cross-process lease, build, write, share with the followers.
    pub(super) async fn lead<T, E, F, Fut>(
        &self,
        mut leader: Leader<'_>,
        ttl: Option<Duration>,
        builder: F,
        force_refresh: bool,
        first_read: Option<Result<Option<Envelope>, redis_conn::Error>>,
        deadline: Option<Instant>,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let c = &self.inner.counters;
        let codec = self.inner.cfg.codec;
        let full = leader.full().to_string();
        let mut degraded = false;
        let mut stale: Option<(T, u64, Codec, Bytes)> = None;
        let generation = match &self.inner.near {
            Some(near) if near.ready(&self.inner.redis).await => {
                if !force_refresh && let Some(v) = near.get::<T>(near.short(&full)) {
                    bump(&c.l1_hits);
                    let shared = v.as_ref().map(|v| codec.encode(v)).transpose()?;
                    leader.finish(|| Ok(shared.map(|p| (codec, Bytes::from(p)))));
                    return Ok(v);
                }
                Some(near.generation())
            }
            _ => None,
        };
        let read = match first_read {
            Some(r) => r,
            None => self.read(&full).await,
        };
        match read {
            Ok(Some(e)) if e.null => {
                bump(&c.null_hits);
                self.remember::<T>(&full, None, 0, generation);
                leader.finish(|| Ok(None));
                return Ok(None);
            }
            Ok(Some(e)) => match e.codec.decode::<T>(&e.payload) {
                Ok(v) => {
                    bump(&c.hits);
                    if !force_refresh && !self.needs_refresh(&e) {
                        self.remember(&full, Some(v.clone()), e.soft_expiry_ms, generation);
                        leader.finish(|| Ok(Some((e.codec, e.payload.clone()))));
                        return Ok(Some(v));
                    }
                    // Stale (past its logical expiry) or drawn for early refresh (XFetch): this
                    // caller refreshes; everyone else is served this value meanwhile.
                    bump(&c.refreshes);
                    leader.share(Ok(Some((e.codec, e.payload.clone()))));
                    stale = Some((v, e.created_ms, e.codec, e.payload));
                }
                Err(err) => {
                    bump(&c.decode_errors);
                    tracing::warn!(key = %full, error = %err, "cached value does not decode; rebuilding");
                }
            },
            Ok(None) => {}
            Err(err) => {
                let err = refused(err, || format!("GET {full}"));
                bump(&c.redis_errors);
                degraded = true;
                tracing::warn!(key = %full, error = %err, "cache read failed; building without the cache");
            }
        }
        if stale.is_none() {
            bump(&c.misses);
        }

        let lease = if degraded {
            Acquire::Build(None)
        } else {
            self.acquire(&full, stale.as_ref().map(|s| s.1), deadline)
                .await
        };
        let lease = match lease {
            Acquire::Busy => {
                // Another process is refreshing: serve what we have.
                if let Some((value, _, vcodec, payload)) = stale {
                    leader.finish(|| Ok(Some((vcodec, payload))));
                    return Ok(Some(value));
                }
                None
            }
            Acquire::Filled(env) => {
                // Another process built it.
                let value: Option<T> = if env.null {
                    None
                } else {
                    Some(env.codec.decode(&env.payload)?)
                };
                self.remember(&full, value.clone(), env.soft_expiry_ms, generation);
                leader.finish(|| Ok((!env.null).then(|| (env.codec, env.payload.clone()))));
                return Ok(value);
            }
            Acquire::Build(lease) => lease,
        };
        bump(&c.builds);
        let started = Instant::now();
        let built = match AssertUnwindSafe(async { builder().await })
            .catch_unwind()
            .await
        {
            Ok(built) => built,
            Err(panic) => {
                bump(&c.build_errors);
                let message = panic_message(&*panic);
                tracing::error!(key = %full, panic = %message, "cache builder panicked; the rebuild lease is given back");
                match stale {
                    // Waiters were already served the value we have; they keep it.
                    Some((_, _, vcodec, payload)) => leader.finish(|| Ok(Some((vcodec, payload)))),
                    None => leader.finish(|| Err(Arc::new(Panicked(message)))),
                }
                drop(lease);
                std::panic::resume_unwind(panic);
            }
        };
        let took = started.elapsed();
        match built {
            Ok(value) => {
                let payload = match &value {
                    Some(v) => Some(Bytes::from(codec.encode(v)?)),
                    None => None,
                };
                if !degraded {
                    let mut env = self.envelope(payload.clone(), took);
                    let ttl = match payload {
                        Some(_) => {
                            let (redis_ttl, soft) =
                                self.lifetimes(ttl.unwrap_or(self.inner.cfg.default_ttl));
                            env.soft_expiry_ms = soft;
                            redis_ttl
                        }
                        None => self.jittered(self.inner.cfg.null_ttl),
                    };
                    let written = match &lease {
                        Some(l) => self.fill(&full, &l.lease, &env, ttl, &l.token).await,
                        None => self.write(&full, &env, ttl).await.map(|()| false),
                    };
                    match written {
                        Ok(released) => {
                            match lease {
                                // The fill script deleted the lease.
                                Some(lease) if released => lease.disarm(),
                                // Written without the script: the lease is still ours.
                                Some(lease) => lease.give_back().await,
                                None => {}
                            }
                            self.remember(&full, value.clone(), env.soft_expiry_ms, generation)
                        }
                        // The lease (if any) is given back when `lease` drops, below.
                        Err(err) => {
                            let err = refused(err, || format!("SET {full}"));
                            bump(&c.redis_errors);
                            tracing::warn!(key = %full, error = %err, "cache write failed; value returned uncached");
                        }
                    }
                }
                leader.finish(|| Ok(payload.map(|p| (codec, p))));
                Ok(value)
            }
            Err(e) => {
                bump(&c.build_errors);
                if let Some(lease) = lease {
                    lease.give_back().await;
                }
                if let Some((value, _, vcodec, payload)) = stale {
                    // A failed refresh keeps serving the value we have.
                    tracing::warn!(key = %full, "refresh failed; serving the cached value");
                    leader.finish(|| Ok(Some((vcodec, payload))));
                    return Ok(Some(value));
                }
                let e = Arc::new(e);
                let shared: Arc<dyn Any + Send + Sync> = e.clone();
                leader.finish(|| Err(shared));
                Err(BuildError::Builder(e))
            }
        }
    }
}

pub(super) fn err_kind<E>(e: &BuildError<E>) -> &'static str {
    match e {
        BuildError::Builder(_) => "builder error",
        BuildError::Codec(_) => "codec error",
        BuildError::Panicked(_) => "builder panicked",
    }
}
