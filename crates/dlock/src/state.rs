//! A client's shared state and the handles that point back at it. A [`LockClient`] is an
//! `Arc<Inner>`: settings, the watchdog, the janitor's queue, the wake-up maps and the local
//! lines. A [`Guard`] holds its client, and a local line holds the guards being passed to
//! its waiters, so these types are declared together, below everything that works with them:
//! the acquire paths (`client`), the guard's release (`guard`), local hand-offs (`local`),
//! the janitor and the wake-up subscriber.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use fred::clients::SubscriberClient;
use fred::interfaces::ClientLike;
use redis_conn::{Namespace, RedisClient};
use tokio::sync::{Notify, OnceCell, mpsc, oneshot};

use crate::clock::{drift, trusted_until};
use crate::config::LockConfig;
use crate::hold::Hold;
use crate::release::Job;
use crate::stats::Metrics;
use crate::watchdog::Watchdog;

pub(crate) type Waiters = Mutex<HashMap<String, Weak<Notify>>>;
/// Fair waiters of this client by waiter id, told their fencing token on hand-off.
pub(crate) type Handoffs = Mutex<HashMap<String, oneshot::Sender<u64>>>;

pub(crate) struct Inner {
    pub(crate) redis: RedisClient,
    pub(crate) ns: Namespace,
    pub(crate) cfg: LockConfig,
    /// Pub/sub channel on which releases are announced (message: the lock name).
    pub(crate) channel: String,
    pub(crate) epoch: Instant,
    pub(crate) waiters: Arc<Waiters>,
    pub(crate) handoffs: Arc<Handoffs>,
    pub(crate) lines: Lines,
    pub(crate) subscriber: OnceCell<Option<SubscriberClient>>,
    pub(crate) watchdog: Watchdog,
    pub(crate) janitor: OnceLock<mpsc::UnboundedSender<Job>>,
    pub(crate) metrics: Metrics,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.watchdog.close();
        if let (Some(Some(sub)), Ok(rt)) =
            (self.subscriber.get(), tokio::runtime::Handle::try_current())
        {
            let sub = sub.clone();
            rt.spawn(async move { sub.quit().await.ok() });
        }
    }
}

/// A distributed-lock client over a redis-conn client. Cheap to clone; clones share one
/// watchdog, one wake-up subscriber connection and one release janitor.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), dlock::Error> {
/// use dlock::{LockClient, LockConfig};
/// let locks = LockClient::new(redis, LockConfig::new("shop:locks"))?;
/// let guard = locks.lock("product:42").acquire().await?;
/// // ... the critical section; pass guard.fence() along with every write ...
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for LockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockClient")
            .field("namespace", &self.inner.cfg.namespace)
            .finish_non_exhaustive()
    }
}

/// A held lock. Release it with [`Guard::release`]; dropping it releases in the background
/// (through the client's janitor task: no blocking, no task spawned per guard). While held,
/// the client's watchdog renews the lease every third of it.
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// let guard = locks.lock("stock:42").acquire().await?;
/// let fence = guard.fence();
/// tokio::select! {
///     reason = guard.lost() => eprintln!("lease lost: {reason}"),
///     _ = async { /* critical section, writes carry `fence` */ } => {}
/// }
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "dropping a guard releases the lock at once"]
pub struct Guard {
    pub(crate) client: LockClient,
    pub(crate) hold: Arc<Hold>,
    pub(crate) fence: u64,
    /// Set once the hold is released, passed on or taken out: `Drop` does nothing then.
    pub(crate) done: bool,
}

/// What a waiter in the local line is told.
pub(crate) enum Passed {
    /// The lock, passed by the previous holder of this client.
    Guard(Guard),
    /// The hold went back to Redis: try there.
    Retry,
}

/// A request of this client waiting in the local line of a mutex.
pub(crate) struct LocalWaiter {
    pub(crate) id: u64,
    pub(crate) lease: Duration,
    pub(crate) fair: bool,
    /// The fair waiter id (its entry in the Redis line); empty when it has none.
    pub(crate) waiter: String,
    pub(crate) tx: oneshot::Sender<Passed>,
}

/// One mutex's local line in a client.
#[derive(Default)]
pub(crate) struct Line {
    pub(crate) waiters: VecDeque<LocalWaiter>,
    /// This client's passable hold of the lock, from its grant until its release goes to Redis.
    pub(crate) holder: Option<Arc<Hold>>,
}

/// Local lines by lock name.
pub(crate) type Lines = Mutex<HashMap<String, Line>>;

impl LockClient {
    /// The lock's hash key.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}:{{{name}}}", self.inner.ns.prefix())
    }

    pub(crate) fn fence_key(&self, name: &str) -> String {
        format!("{}:{{{name}}}:fence", self.inner.ns.prefix())
    }

    /// The local deadline of a lease confirmed by a request sent at `sent`.
    pub(crate) fn valid_until(&self, sent: Instant, lease: Duration) -> Instant {
        trusted_until(sent, lease, self.inner.cfg.drift_ratio)
    }

    /// The clock-drift allowance for a lease.
    pub(crate) fn drift(&self, lease: Duration) -> Duration {
        drift(lease, self.inner.cfg.drift_ratio)
    }
}
