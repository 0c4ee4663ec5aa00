//! What a guard does: its fencing token, the lease-loss signal, extension, release (passing
//! the hold to a local waiter first, when one fits) and the release in the background when it
//! is dropped. The guard type itself is declared in `state`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use crate::error::{Error, LostReason};
use crate::hold::{Hold, State, settled};
use crate::release::{job_of, release_hold};
use crate::state::{Guard, LockClient};
use crate::sync::lock;
use crate::watchdog::renew_one;

/// How a release ended.
///
/// ```
/// assert_ne!(dlock::Released::Free, dlock::Released::AlreadyExpired);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Released {
    /// The lock is free now (waiters were woken).
    Free,
    /// The lock went straight to the next waiter: a waiter of the same client (no Redis round
    /// trip, see [`crate::LockConfig::local_handoffs`]) or, fair mode, the first in line.
    HandedOff,
    /// This hold is released; the same owner still has this many re-entrant holds.
    StillHeld(u32),
    /// The hold was no longer in Redis (its lease ran out, or it was released before):
    /// someone else may have held the lock meanwhile.
    AlreadyExpired,
}

impl Guard {
    pub(crate) fn new(client: LockClient, hold: Arc<Hold>, fence: u64) -> Guard {
        Guard {
            client,
            hold,
            fence,
            done: false,
        }
    }

    /// The lock's name.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert_eq!(g.name(), "a");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.hold.name
    }

    /// The fencing token of this grant: larger than every token granted before for this lock
    /// name (re-entrant holds share their first hold's token). Pass it with every write the
    /// lock protects and have the resource reject smaller ones (see [`crate::fenced_set`]).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let a = locks.lock("a").acquire().await?;
    /// let first = a.fence();
    /// a.release().await?;
    /// assert!(locks.lock("a").acquire().await?.fence() > first);
    /// # Ok(()) }
    /// ```
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// The local lease deadline: the lease (minus the drift allowance) since the last renewal
    /// Redis confirmed. Past it, the lease counts as lost.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert!(g.deadline() > std::time::Instant::now());
    /// # Ok(()) }
    /// ```
    pub fn deadline(&self) -> Instant {
        self.hold.deadline()
    }

    /// Whether the lease is known lost (renewal refused or deadline passed).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert!(!g.is_lost());
    /// # Ok(()) }
    /// ```
    pub fn is_lost(&self) -> bool {
        match self.hold.state() {
            State::Lost(_) => true,
            State::Held => Instant::now() >= self.hold.deadline(),
            State::Released => false,
        }
    }

    /// A future that completes when the lease is lost: a renewal found the hold gone, or the
    /// local deadline passed without a confirmed renewal. It never completes once the guard
    /// is released. `'static`: hand it to a spawned task or a `select!`.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// let lost = g.lost();
    /// tokio::spawn(async move { eprintln!("lost: {}", lost.await) });
    /// # Ok(()) }
    /// ```
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static {
        lost(self.hold.clone())
    }

    /// Renews the lease now (the watchdog also does this every third of the lease).
    /// Never re-creates a lock that is gone: then the lease is marked lost and
    /// [`Error::LeaseLost`] is returned.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// g.extend().await?;
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self) -> Result<(), Error> {
        let sent = Instant::now();
        let hold = &self.hold;
        if let State::Lost(reason) = hold.state() {
            return Err(Error::LeaseLost {
                name: hold.name.clone(),
                reason,
            });
        }
        let ok = renew_one(&self.client.inner.redis, hold)
            .instrument(tracing::debug_span!("dlock.extend", lock = %hold.name))
            .await?;
        if ok {
            hold.renewed(sent, self.client.valid_until(sent, hold.lease));
            Ok(())
        } else {
            hold.lose(LostReason::Refused);
            Err(Error::LeaseLost {
                name: hold.name.clone(),
                reason: LostReason::Refused,
            })
        }
    }

    /// Releases this hold: renewal stops first, then one script removes the hold (idempotent:
    /// a retried release cannot remove another hold) and, if it was the last, frees the lock
    /// and wakes waiters.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert_eq!(g.release().await?, dlock::Released::Free);
    /// # Ok(()) }
    /// ```
    pub async fn release(mut self) -> Result<Released, Error> {
        // `done` is set only once Redis answered: if this future is dropped before, `Drop`
        // hands the (idempotent) release to the janitor.
        let client = self.client.clone();
        match crate::local::pass(&client, self.hold.clone(), self.fence) {
            Ok(()) => {
                self.done = true;
                client.inner.metrics.released(false);
                return Ok(Released::HandedOff);
            }
            // The hold to release may be a successor a cancelled local waiter left behind.
            Err((hold, fence)) => (self.hold, self.fence) = (hold, fence),
        }
        let hold = self.hold.clone();
        let line = crate::local::returning(&client, &hold);
        client.inner.watchdog.unregister(hold.id);
        hold.released();
        let channel = client.inner.channel.as_str();
        let cohort = lock(&hold.cohort).clone();
        let left: Result<i64, redis_conn::Error> =
            release_hold(&client.inner.redis, channel, &hold.spec, &cohort)
                .instrument(tracing::debug_span!("dlock.release", lock = %hold.name))
                .await
                .inspect_err(|_| {
                    // Unknown outcome: make sure it is given back (idempotent).
                    client.janitor_release(job_of(&hold))
                });
        crate::local::retry(line);
        self.done = true;
        let left = left?;
        client.inner.metrics.released(left == -1);
        Ok(match left {
            0 => Released::Free,
            -2 => Released::HandedOff,
            n if n > 0 => Released::StillHeld(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => Released::AlreadyExpired,
        })
    }

    /// The guard's hold.
    pub(crate) fn hold(&self) -> &Arc<Hold> {
        &self.hold
    }

    /// Takes the hold out of the guard without releasing it.
    pub(crate) fn into_parts(mut self) -> (Arc<Hold>, u64) {
        self.done = true;
        (self.hold.clone(), self.fence)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let hold = match crate::local::pass(&self.client, self.hold.clone(), self.fence) {
            Ok(()) => return,
            Err((hold, _)) => hold,
        };
        crate::local::returned(&self.client, &hold);
        self.client.inner.watchdog.unregister(hold.id);
        hold.released();
        self.client.janitor_release(job_of(&hold));
    }
}

async fn lost(hold: Arc<Hold>) -> LostReason {
    match settled(&hold).await {
        State::Lost(reason) => reason,
        // Released: the lease is never lost any more.
        _ => std::future::pending().await,
    }
}
