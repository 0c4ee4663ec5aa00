//! The lock client's public face: creating a client, lock requests, owners, `with_lock`,
//! `renew_all`, `stats` and `flush`. The mutex's acquire paths live in the children, read in
//! this order: `request` (a request and its options), `attempt` (one acquire script call),
//! `acquire` (the wait: local line, wake-ups, retries) and `fair` (the FIFO line in Redis).

// `request` first: the docs then list `LockRequest`'s options before `acquire`'s methods.
mod request;

mod acquire;
mod attempt;
mod fair;
mod inspect;

pub use inspect::{HeldLocks, LockInfo, LockKind};
pub use request::{LockRequest, Owner};

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis_conn::registry::{Kind, Registration, register_in_background};
use redis_conn::{Namespace, RedisClient};
use tokio::sync::{OnceCell, oneshot};
use tracing::Instrument;

use crate::config::LockConfig;
use crate::error::{Error, LostReason};
use crate::guard::Released;
use crate::release::Job;
use crate::state::{Inner, LockClient};
use crate::stats::{Metrics, Stats};
use crate::watchdog::Watchdog;

impl LockClient {
    /// A lock client over `redis`.
    ///
    /// ```no_run
    /// # fn demo(redis: redis_conn::RedisClient) -> Result<(), dlock::Error> {
    /// let locks = dlock::LockClient::new(redis, dlock::LockConfig::new("locks"))?;
    /// # Ok(()) }
    /// ```
    pub fn new(redis: RedisClient, config: LockConfig) -> Result<LockClient, Error> {
        let ns =
            Namespace::new(config.namespace.clone()).map_err(|e| Error::Config(e.to_string()))?;
        if config.lease < Duration::from_millis(30) {
            return Err(Error::Config("lease must be at least 30 ms".into()));
        }
        if !(0.0..0.5).contains(&config.drift_ratio) {
            return Err(Error::Config(format!(
                "drift_ratio {} must be in [0, 0.5)",
                config.drift_ratio
            )));
        }
        let metrics = Metrics::new(&config.namespace);
        let epoch = Instant::now();
        register_in_background(
            &redis,
            Registration::new(Kind::Locks, ns.prefix(), ns.prefix(), ns.prefix())
                .setting("lease", format!("{:?}", config.lease))
                .setting("wait", format!("{:?}", config.wait))
                .setting("fair", config.fair),
        );
        Ok(LockClient {
            inner: Arc::new(Inner {
                channel: format!("{}:__released__", ns.prefix()),
                watchdog: Watchdog::new(epoch, redis.clone(), metrics.clone(), &config),
                redis,
                ns,
                cfg: config,
                epoch,
                waiters: Arc::new(Mutex::new(HashMap::new())),
                handoffs: Arc::new(Mutex::new(HashMap::new())),
                lines: Mutex::new(HashMap::new()),
                subscriber: OnceCell::new(),
                janitor: OnceLock::new(),
                metrics,
            }),
        })
    }

    /// A request for the lock `name` with this client's default lease and wait.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// if let Some(guard) = locks.lock("nightly-job").try_acquire().await? {
    ///     guard.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn lock(&self, name: &str) -> LockRequest<'_> {
        LockRequest {
            client: self,
            name: name.to_string(),
            lease: self.inner.cfg.lease,
            wait: self.inner.cfg.wait,
            owner: None,
            fair: self.inner.cfg.fair,
        }
    }

    /// A new owner for reentrant holds (see [`Owner`]).
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let a = locks.owner();
    /// assert_ne!(a, locks.owner());
    /// # }
    /// ```
    pub fn owner(&self) -> Owner {
        Owner {
            id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// Runs `body` under the lock `name` (default lease and wait) and releases it. If the
    /// lease is lost while `body` runs, `body` is cancelled (dropped at its next await) and
    /// [`Error::LeaseLost`] is returned. `body` gets the hold's fencing token for its writes.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let total = locks
    ///     .with_lock("ledger", |fence| async move {
    ///         // write with `WHERE fence < $fence` ...
    ///         fence
    ///     })
    ///     .await?;
    /// # let _ = total; Ok(()) }
    /// ```
    pub async fn with_lock<T, F, Fut>(&self, name: &str, body: F) -> Result<T, Error>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.lock(name).acquire().await?;
        let lost = guard.lost();
        let out = tokio::select! {
            biased;
            reason = lost => {
                drop(guard);
                return Err(Error::LeaseLost { name: name.to_string(), reason });
            }
            out = body(guard.fence()) => out,
        };
        match guard.release().await? {
            Released::AlreadyExpired => Err(Error::LeaseLost {
                name: name.to_string(),
                reason: LostReason::Refused,
            }),
            _ => Ok(out),
        }
    }

    /// Renews every lease this client holds now, in the watchdog's batches (one script per
    /// 200 holds, per slot on a cluster), instead of waiting for their schedule: e.g. right
    /// before a call that may block the runtime. Returns how many were confirmed; holds found
    /// gone are marked lost.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let renewed = locks.renew_all().await?;
    /// # let _ = renewed; Ok(()) }
    /// ```
    pub async fn renew_all(&self) -> Result<usize, Error> {
        self.inner
            .watchdog
            .renew_all()
            .instrument(tracing::debug_span!("dlock.renew_all"))
            .await
    }

    /// Counters so far.
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// println!("{} renewals", locks.stats().renewals);
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.metrics.snapshot(self.inner.watchdog.len())
    }

    /// Releases everything dropped guards left to the janitor and waits for it (bounded by
    /// `timeout`); call before exiting so other processes need not wait for leases to expire.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) {
    /// locks.flush(std::time::Duration::from_secs(1)).await;
    /// # }
    /// ```
    pub async fn flush(&self, timeout: Duration) {
        let Some(tx) = self.inner.janitor.get() else {
            return;
        };
        let (done, flushed) = oneshot::channel();
        if tx.send(Job::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(timeout, flushed).await;
        }
    }
}
