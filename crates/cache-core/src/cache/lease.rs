//! The cross-process rebuild lease: taken with `SET NX PX`, filled or given back by one
//! script that also wakes the waiters of every process over pub/sub.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Expiration;
use fred::types::SetOptions;
use redis_conn::{RedisClient, Script};
use tokio::sync::Notify;

use super::flight::lock;
use super::inner::{Cache, Waiters};
use super::stats::bump;
use crate::envelope::Envelope;
use crate::error::refused;

/// A rebuild lease taken (or being taken) by this caller. Dropped while armed — the call was
/// cancelled at an `.await`, or its builder panicked — it is given back at once by a spawned
/// task over the pooled connection that took it (so the give-back cannot overtake the `SET NX`),
/// and the release script wakes the waiters of every process.
pub(super) struct LeaseGuard {
    pub(super) cache: Cache,
    pub(super) full: String,
    pub(super) lease: String,
    pub(super) token: String,
    pub(super) armed: bool,
}

impl LeaseGuard {
    /// Gives the lease back now (a failed build, or a value found already filled).
    pub(super) async fn give_back(mut self) {
        self.cache
            .release(&self.full, &self.lease, &self.token)
            .await;
        self.armed = false;
    }

    /// The lease was consumed by the fill script, or never granted: nothing to give back.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime to send it on: the lease expires by itself.
            return;
        };
        let cache = self.cache.clone();
        let (full, lease, token) = (
            std::mem::take(&mut self.full),
            std::mem::take(&mut self.lease),
            std::mem::take(&mut self.token),
        );
        tracing::debug!(key = %full, "giving back the rebuild lease of an abandoned build");
        rt.spawn(async move { cache.release(&full, &lease, &token).await });
    }
}

pub(super) static FILL: Script = Script::new("cache_fill", include_str!("../fill.lua"));

pub(super) static RELEASE: Script = Script::new("cache_release", include_str!("../release.lua"));

/// What the cross-process step decided for an in-process leader.
pub(super) enum Acquire {
    /// Another process filled the key meanwhile.
    Filled(Envelope),
    /// Refreshing a still-servable value, and another process is already at it.
    Busy,
    /// Build now; `Some(lease)` when holding the rebuild lease, `None` when building without one
    /// (Redis unavailable, waited too long, or a key whose lease cannot share its slot).
    Build(Option<LeaseGuard>),
}

/// The rebuild-lease key of a value key, in the same cluster slot: it reuses the value key's
/// hash tag, or makes the whole value key its tag.
pub(super) fn lease_key(full: &str) -> Option<String> {
    redis_conn::keys::sibling(full, "rebuild")
}

impl Cache {
    /// Takes the cross-process rebuild lease, or waits (woken by pub/sub, bounded by the
    /// lease's remaining time) for the process that holds it.
    /// With `refreshing = Some(created_ms)` the caller holds a still-servable value: it never
    /// waits (another refresher means [`Acquire::Busy`]) and only a newer entry counts as filled.
    /// A caller whose `deadline` (default: `max_wait` from now) has passed builds without the
    /// lease rather than wait.
    pub(super) async fn acquire(
        &self,
        full: &str,
        refreshing: Option<u64>,
        deadline: Option<Instant>,
    ) -> Acquire {
        let newer = |env: &Envelope| refreshing.is_none_or(|created| env.created_ms > created);
        let Some(lease) = lease_key(full) else {
            return Acquire::Build(None);
        };
        let c = &self.inner.counters;
        let cfg = &self.inner.cfg;
        // The lease's calls all go over one pooled connection, so a give-back sent after a
        // cancelled `SET NX` is run after it.
        let conn = self.inner.redis.for_key(&lease);
        let deadline = deadline.unwrap_or_else(|| Instant::now() + cfg.max_wait);
        // Whether this call waited here (a caller that already waited for a build of its own
        // process was counted there).
        let mut waited = false;
        loop {
            if let Err(err) = self.admit() {
                // The breaker is open: nothing is sent, so there is nothing to give back.
                bump(&c.redis_errors);
                tracing::warn!(key = %full, error = %err, "rebuild lease unavailable; building without it");
                return Acquire::Build(None);
            }
            // Armed before the SET is sent: a call dropped while it is in flight gives back
            // whatever it may have been granted.
            let guard = LeaseGuard {
                cache: self.clone(),
                full: full.to_string(),
                lease: lease.clone(),
                token: format!("{:032x}", fastrand::u128(..)),
                armed: true,
            };
            let px = i64::try_from(cfg.rebuild_lease.as_millis()).unwrap_or(i64::MAX);
            let taken: Result<Option<String>, redis_conn::Error> = conn
                .set(
                    &lease,
                    guard.token.as_str(),
                    Some(Expiration::PX(px)),
                    Some(SetOptions::NX),
                    false,
                )
                .await
                .map_err(Into::into);
            self.settle(&taken);
            match taken {
                Err(err @ redis_conn::Error::NoPermission(_)) => {
                    // Refused: nothing was set, so there is nothing to give back.
                    guard.disarm();
                    let err = refused(err, || format!("SET {lease} NX PX"));
                    bump(&c.redis_errors);
                    tracing::warn!(key = %full, error = %err, "rebuild lease refused; building without it");
                    return Acquire::Build(None);
                }
                Err(err) => {
                    // The SET may still have landed (a timeout): `guard` gives it back.
                    bump(&c.redis_errors);
                    tracing::warn!(key = %full, error = %err, "rebuild lease unavailable; building without it");
                    return Acquire::Build(None);
                }
                Ok(Some(_)) => {
                    // Double check: the value may have landed between our miss and the lease.
                    if let Ok(Some(env)) = self.recheck(full).await
                        && newer(&env)
                    {
                        guard.give_back().await;
                        return Acquire::Filled(env);
                    }
                    return Acquire::Build(Some(guard));
                }
                Ok(None) if refreshing.is_some() => {
                    guard.disarm();
                    return Acquire::Busy;
                }
                Ok(None) => {
                    guard.disarm();
                    if Instant::now() >= deadline {
                        if let Ok(Some(env)) = self.recheck(full).await {
                            return Acquire::Filled(env);
                        }
                        if waited {
                            tracing::warn!(key = %full, "waited max_wait for another process's build; building here");
                            bump(&c.wait_timeouts);
                        }
                        return Acquire::Build(None);
                    }
                    bump(&c.lease_waits);
                    waited = true;
                    let notify = self.waiter(full).await;
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if let Ok(Some(env)) = self.recheck(full).await {
                        return Acquire::Filled(env);
                    }
                    let remaining: i64 = self
                        .guarded(async { Ok(conn.pttl(&lease).await?) })
                        .await
                        .unwrap_or(50);
                    if remaining > 0 {
                        let wait = Duration::from_millis(remaining as u64)
                            .min(deadline.saturating_duration_since(Instant::now()))
                            .max(Duration::from_millis(1));
                        if tokio::time::timeout(wait, notified).await.is_ok() {
                            bump(&c.woken);
                        }
                        if let Ok(Some(env)) = self.recheck(full).await {
                            return Acquire::Filled(env);
                        }
                    }
                }
            }
        }
    }

    /// Writes a built value and releases the lease in one script. `Ok(true)`: done. `Ok(false)`:
    /// the script was refused (the ACL user may not run scripts or publish wake-ups), so the
    /// value was written with a plain `SET` and the lease is still held: give it back.
    pub(super) async fn fill(
        &self,
        full: &str,
        lease: &str,
        env: &Envelope,
        ttl: Duration,
        token: &str,
    ) -> Result<bool, redis_conn::Error> {
        let ttl_ms = ttl.as_millis().to_string();
        let args: Vec<fred::types::Value> = vec![
            fred::types::Value::Bytes(env.encode().into()),
            ttl_ms.into(),
            token.into(),
            self.inner.channel.as_str().into(),
            full.into(),
        ];
        let conn = self.inner.redis.for_key(lease);
        match self
            .guarded(FILL.run::<i64, _, _, _>(conn, vec![full, lease], args))
            .await
        {
            Ok(_) => Ok(true),
            Err(err @ redis_conn::Error::NoPermission(_)) => {
                // The script changed nothing (a refused PUBLISH is checked first; a refused
                // EVALSHA never ran it): cache the value without it.
                let err = refused(err, || {
                    format!(
                        "script {} (SET, GET, DEL on {full} and {lease}, PUBLISH on {})",
                        FILL.name(),
                        self.inner.channel
                    )
                });
                bump(&self.inner.counters.redis_errors);
                tracing::warn!(key = %full, error = %err, "fill script refused; writing the value without it");
                self.write(full, env, ttl).await.map(|()| false)
            }
            Err(err) => Err(err),
        }
    }

    /// Gives a lease back and wakes its waiters. Sent whatever the circuit breaker says (its
    /// outcome still counts there): a lease kept because the breaker had opened meanwhile
    /// would stall every process's callers for the whole lease. If the ACL user may not run
    /// the script, the lease is deleted without it ([`Cache::release_unscripted`]).
    pub(super) async fn release(&self, full: &str, lease: &str, token: &str) {
        let args = vec![token, self.inner.channel.as_str(), full];
        let released = RELEASE
            .run::<i64, _, _, _>(self.inner.redis.for_key(lease), vec![lease], args)
            .await;
        self.settle(&released);
        match released {
            Ok(_) => {}
            Err(err @ redis_conn::Error::NoPermission(_)) => {
                let err = refused(err, || {
                    format!(
                        "script {} (GET, DEL on {lease}, PUBLISH on {})",
                        RELEASE.name(),
                        self.inner.channel
                    )
                });
                bump(&self.inner.counters.redis_errors);
                tracing::warn!(key = %full, error = %err, "release script refused; releasing the lease without it");
                self.release_unscripted(full, lease, token).await;
            }
            Err(err) => {
                bump(&self.inner.counters.redis_errors);
                tracing::warn!(key = %full, error = %err, "could not release the rebuild lease; it expires by itself");
            }
        }
    }

    /// Deletes our lease without a script: `PTTL`, then `GET` (still our token?), then `DEL`,
    /// only while enough of the lease is left that it cannot have expired and been taken by
    /// another process before the `DEL` lands (a lease is never extended, so its expiry is
    /// known from the `PTTL`). Otherwise it is left to expire, which it soon does.
    async fn release_unscripted(&self, full: &str, lease: &str, token: &str) {
        const MARGIN: Duration = Duration::from_millis(200);
        let conn = self.inner.redis.for_key(lease);
        let asked = Instant::now();
        let checked: Result<(i64, Option<String>), fred::error::Error> = async {
            let left: i64 = conn.pttl(lease).await?;
            let holder: Option<String> = conn.get(lease).await?;
            Ok((left, holder))
        }
        .await;
        let outcome: Result<bool, fred::error::Error> = match checked {
            Ok((left, Some(holder))) if holder == token && left > 0 => {
                let expires = asked + Duration::from_millis(left.unsigned_abs());
                if Instant::now() + MARGIN < expires {
                    conn.del::<i64, _>(lease).await.map(|n| n == 1)
                } else {
                    Ok(false)
                }
            }
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        if let Err(err) = outcome {
            let err = refused(err.into(), || format!("PTTL, GET, DEL {lease}"));
            bump(&self.inner.counters.redis_errors);
            tracing::warn!(key = %full, error = %err, "could not release the rebuild lease; it expires by itself");
        }
    }

    /// The local wake-up handle for a value key; starts the shared subscriber on first use.
    /// Without a subscriber (pub/sub unavailable), waits fall back to the lease timeout.
    pub(super) async fn waiter(&self, full: &str) -> Arc<Notify> {
        let inner = &self.inner;
        inner
            .subscriber
            .get_or_init(|| async {
                match start_subscriber(&inner.redis, &inner.channel, Arc::downgrade(&inner.waiters)).await {
                    Ok(sub) => Some(sub),
                    Err(err) => {
                        let err = refused(err, || format!("SUBSCRIBE {}", inner.channel));
                        tracing::warn!(error = %err, "cache wake-up subscriber unavailable; waits end by timeout");
                        None
                    }
                }
            })
            .await;
        let mut map = lock(&inner.waiters);
        if let Some(n) = map.get(full).and_then(Weak::upgrade) {
            return n;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let n = Arc::new(Notify::new());
        map.insert(full.to_string(), Arc::downgrade(&n));
        n
    }
}

pub(super) async fn start_subscriber(
    redis: &RedisClient,
    channel: &str,
    waiters: Weak<Waiters>,
) -> Result<SubscriberClient, redis_conn::Error> {
    redis
        .listen(channel, move |delivery| {
            let Some(waiters) = waiters.upgrade() else {
                return std::ops::ControlFlow::Break(());
            };
            let map = lock(&waiters);
            match delivery {
                redis_conn::Delivery::Message(key) => {
                    if let Some(n) = map.get(key).and_then(Weak::upgrade) {
                        n.notify_waiters();
                    }
                }
                // Missed messages: wake everyone, they re-check.
                redis_conn::Delivery::Missed => map
                    .values()
                    .filter_map(Weak::upgrade)
                    .for_each(|n| n.notify_waiters()),
            }
            std::ops::ControlFlow::Continue(())
        })
        .await
}
