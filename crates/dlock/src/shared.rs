//! A counting semaphore whose permits are leases, and a writer-preferring read-write lock.
//! Both keep each hold as its own lease (renewed by the client's watchdog), so the hold of a
//! process that died comes back by itself when its lease ends.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::clock::later;
use crate::error::Error;
use crate::hold::{Hold, HoldSpec, Kind};
use crate::janitor::PendingGrant;
use crate::keys::{check_name, conn};
use crate::scripts::{RW_READ, RW_WRITE, SEM_ACQUIRE};
use crate::state::{Guard, LockClient};

/// How long a waiting writer's intent blocks new readers without a refresh.
const INTENT_MS: u64 = 2000;

/// A counting semaphore: at most `permits` holders at once. Every caller must use the same
/// number of permits for a name.
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// let permit = locks.semaphore("exports", 4).acquire().await?;
/// // at most 4 exports run at once, across every process
/// permit.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a semaphore request does nothing until acquired"]
pub struct Semaphore<'a> {
    client: &'a LockClient,
    name: String,
    permits: u32,
    lease: Duration,
    wait: Duration,
}

/// A read-write lock: many readers or one writer. Writer-preferring: once a writer waits, new
/// readers wait too, so a stream of readers cannot starve writers.
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// let read = locks.rwlock("catalog").read().await?;
/// read.release().await?;
/// let write = locks.rwlock("catalog").write().await?;
/// println!("writer fence {}", write.fence());
/// write.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a read-write lock request does nothing until acquired"]
pub struct RwLock<'a> {
    client: &'a LockClient,
    name: String,
    lease: Duration,
    wait: Duration,
}

enum Try {
    Granted(Guard),
    Wait(Duration),
}

impl LockClient {
    /// The semaphore `name` with `permits` permits (default lease and wait).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// if let Some(p) = locks.semaphore("gpu", 2).try_acquire().await? {
    ///     p.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn semaphore(&self, name: &str, permits: u32) -> Semaphore<'_> {
        Semaphore {
            client: self,
            name: name.to_string(),
            permits,
            lease: self.inner.cfg.lease,
            wait: self.inner.cfg.wait,
        }
    }

    /// The read-write lock `name` (default lease and wait).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let r = locks.rwlock("settings").read().await?;
    /// # drop(r); Ok(()) }
    /// ```
    pub fn rwlock(&self, name: &str) -> RwLock<'_> {
        RwLock {
            client: self,
            name: name.to_string(),
            lease: self.inner.cfg.lease,
            wait: self.inner.cfg.wait,
        }
    }

    fn hold_key(&self, kind: &str, name: &str, part: &str) -> String {
        format!("{}:{kind}:{{{name}}}{part}", self.inner.ns.prefix())
    }

    /// A granted zset or writer hold, registered with the watchdog.
    fn granted(&self, spec: HoldSpec, sent: Instant, fence: u64) -> Guard {
        let valid = self.valid_until(sent, spec.lease);
        let hold = Arc::new(Hold::new(spec, self.inner.epoch, sent, valid));
        self.inner.watchdog.register(hold.clone());
        Guard::new(self.clone(), hold, fence)
    }

    /// Attempts until granted or `wait` is over; a release publishing `wake` wakes every local
    /// waiter of it, and a timer (the hint from the last attempt) covers lost messages.
    async fn wait_for<F, Fut>(
        &self,
        name: &str,
        wake: &str,
        wait: Duration,
        mut attempt: F,
    ) -> Result<Guard, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Try, Error>>,
    {
        let started = Instant::now();
        let deadline = later(started, wait);
        if let Try::Granted(g) = attempt().await? {
            self.inner
                .metrics
                .acquired(started.elapsed(), Duration::ZERO, false);
            return Ok(g);
        }
        let notify = self.waiter(wake).await?;
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match attempt().await? {
                Try::Granted(g) => {
                    self.inner.metrics.acquired_after_wait(started);
                    return Ok(g);
                }
                Try::Wait(hint) => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.inner.metrics.timed_out();
                        return Err(Error::Timeout {
                            name: name.to_string(),
                            waited: started.elapsed(),
                        });
                    }
                    let _ = tokio::time::timeout(hint.min(deadline - now), notified).await;
                }
            }
        }
    }
}

fn check(name: &str, lease: Duration) -> Result<(), Error> {
    if lease < Duration::from_millis(30) {
        return Err(Error::Config("lease must be at least 30 ms".into()));
    }
    check_name(name)
}

fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

fn wait_hint(left: i64) -> Duration {
    Duration::from_millis(u64::try_from(left).unwrap_or(10).clamp(1, 60_000))
}

impl<'a> Semaphore<'a> {
    /// This request's permit lease.
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let s = locks.semaphore("x", 3).lease(std::time::Duration::from_secs(5));
    /// # drop(s); }
    /// ```
    pub fn lease(mut self, lease: Duration) -> Semaphore<'a> {
        self.lease = lease;
        self
    }

    /// How long [`Semaphore::acquire`] waits.
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let s = locks.semaphore("x", 3).wait(std::time::Duration::from_secs(1));
    /// # drop(s); }
    /// ```
    pub fn wait(mut self, wait: Duration) -> Semaphore<'a> {
        self.wait = wait;
        self
    }

    fn spec(&self) -> HoldSpec {
        let key = self.client.hold_key("sem", &self.name, "");
        HoldSpec {
            sole: false,
            name: self.name.clone(),
            flag: format!("{key}:waiting"),
            key,
            field: format!("z:{}", new_id()),
            lease: self.lease,
            kind: Kind::Zset,
            wake: format!("*s:{}", self.name),
        }
    }

    async fn attempt(&self) -> Result<Try, Error> {
        let spec = self.spec();
        // Cancelled or failed in flight: the janitor gives back whatever may have been granted.
        let mut pending = PendingGrant::new(self.client, spec.clone());
        let sent = Instant::now();
        let reply: Vec<i64> = SEM_ACQUIRE
            .run(
                conn(&self.client.inner.redis, &spec.key),
                vec![spec.key.as_str(), spec.flag.as_str()],
                vec![
                    spec.id().to_string(),
                    ms(self.lease),
                    self.permits.to_string(),
                ],
            )
            .await?;
        pending.disarm();
        Ok(match reply.as_slice() {
            [1, ..] => Try::Granted(self.client.granted(spec, sent, 0)),
            [_, left, ..] => Try::Wait(wait_hint(*left)),
            _ => Try::Wait(Duration::from_millis(10)),
        })
    }

    /// One attempt: `Ok(None)` when every permit is taken.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let p = locks.semaphore("x", 1).try_acquire().await?;
    /// # drop(p); Ok(()) }
    /// ```
    pub async fn try_acquire(self) -> Result<Option<Guard>, Error> {
        check(&self.name, self.lease)?;
        if self.permits == 0 {
            return Err(Error::Config("a semaphore needs at least 1 permit".into()));
        }
        Ok(match self.attempt().await? {
            Try::Granted(g) => Some(g),
            Try::Wait(_) => None,
        })
    }

    /// Waits up to the request's wait for a permit (woken when one is given back).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let p = locks.semaphore("x", 2).acquire().await?;
    /// p.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn acquire(self) -> Result<Guard, Error> {
        check(&self.name, self.lease)?;
        if self.permits == 0 {
            return Err(Error::Config("a semaphore needs at least 1 permit".into()));
        }
        let wake = format!("s:{}", self.name);
        let span = tracing::debug_span!("dlock.semaphore", name = %self.name);
        self.client
            .wait_for(&self.name, &wake, self.wait, || self.attempt())
            .instrument(span)
            .await
    }
}

impl<'a> RwLock<'a> {
    /// This request's lease.
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let l = locks.rwlock("x").lease(std::time::Duration::from_secs(5));
    /// # drop(l); }
    /// ```
    pub fn lease(mut self, lease: Duration) -> RwLock<'a> {
        self.lease = lease;
        self
    }

    /// How long `read` / `write` wait.
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let l = locks.rwlock("x").wait(std::time::Duration::from_secs(1));
    /// # drop(l); }
    /// ```
    pub fn wait(mut self, wait: Duration) -> RwLock<'a> {
        self.wait = wait;
        self
    }

    fn keys(&self) -> [String; 5] {
        let k = |part: &str| self.client.hold_key("rw", &self.name, part);
        [k(":w"), k(":r"), k(":intent"), k(":waiting"), k(":fence")]
    }

    fn spec(&self, key: &str, flag: &str, kind: Kind, id: &str) -> HoldSpec {
        HoldSpec {
            sole: false,
            name: self.name.clone(),
            key: key.to_string(),
            field: format!("{}:{id}", if kind == Kind::Zset { "z" } else { "s" }),
            lease: self.lease,
            kind,
            flag: flag.to_string(),
            wake: format!("*w:{}", self.name),
        }
    }

    async fn attempt_read(&self) -> Result<Try, Error> {
        let [w, r, intent, waiting, _] = self.keys();
        let spec = self.spec(&r, &waiting, Kind::Zset, &new_id());
        // Cancelled or failed in flight: the janitor gives back whatever may have been granted.
        let mut pending = PendingGrant::new(self.client, spec.clone());
        let sent = Instant::now();
        let reply: Vec<i64> = RW_READ
            .run(
                conn(&self.client.inner.redis, &spec.key),
                vec![w.as_str(), r.as_str(), intent.as_str(), waiting.as_str()],
                vec![spec.id().to_string(), ms(self.lease)],
            )
            .await?;
        pending.disarm();
        Ok(match reply.as_slice() {
            [1, ..] => Try::Granted(self.client.granted(spec, sent, 0)),
            [_, left, ..] => Try::Wait(wait_hint(*left)),
            _ => Try::Wait(Duration::from_millis(10)),
        })
    }

    async fn attempt_write(&self, id: &str) -> Result<Try, Error> {
        let [w, r, intent, waiting, fence] = self.keys();
        let spec = self.spec(&w, &waiting, Kind::Writer, id);
        // Cancelled or failed in flight: the janitor gives back whatever may have been granted.
        let mut pending = PendingGrant::new(self.client, spec.clone());
        let sent = Instant::now();
        let reply: Vec<i64> = RW_WRITE
            .run(
                conn(&self.client.inner.redis, &spec.key),
                [
                    w.as_str(),
                    r.as_str(),
                    intent.as_str(),
                    waiting.as_str(),
                    fence.as_str(),
                ]
                .to_vec(),
                vec![id.to_string(), ms(self.lease), INTENT_MS.to_string()],
            )
            .await?;
        pending.disarm();
        Ok(match reply.as_slice() {
            [1, fence, ..] => Try::Granted(self.client.granted(
                spec,
                sent,
                u64::try_from(*fence).unwrap_or(0),
            )),
            // Retry before the intent lapses, so readers stay out while this writer waits.
            [_, left, ..] => Try::Wait(wait_hint(*left).min(Duration::from_millis(INTENT_MS / 3))),
            _ => Try::Wait(Duration::from_millis(10)),
        })
    }

    /// A read hold: granted while no writer holds or waits for the lock. Its fence is 0.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let r = locks.rwlock("x").read().await?;
    /// r.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn read(self) -> Result<Guard, Error> {
        check(&self.name, self.lease)?;
        let wake = format!("w:{}", self.name);
        let span = tracing::debug_span!("dlock.read", name = %self.name);
        self.client
            .wait_for(&self.name, &wake, self.wait, || self.attempt_read())
            .instrument(span)
            .await
    }

    /// The write hold: granted when no writer holds it and every reader has left; while it
    /// waits, new readers wait too. Its fence is a fencing token like a mutex's.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let w = locks.rwlock("x").write().await?;
    /// w.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn write(self) -> Result<Guard, Error> {
        check(&self.name, self.lease)?;
        let wake = format!("w:{}", self.name);
        let id = new_id();
        let span = tracing::debug_span!("dlock.write", name = %self.name);
        self.client
            .wait_for(&self.name, &wake, self.wait, || self.attempt_write(&id))
            .instrument(span)
            .await
    }

    /// One read attempt: `Ok(None)` when a writer holds or waits.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let r = locks.rwlock("x").try_read().await?;
    /// # drop(r); Ok(()) }
    /// ```
    pub async fn try_read(self) -> Result<Option<Guard>, Error> {
        check(&self.name, self.lease)?;
        Ok(match self.attempt_read().await? {
            Try::Granted(g) => Some(g),
            Try::Wait(_) => None,
        })
    }
}
