//! Acquiring a mutex: one attempt ([`LockRequest::try_acquire`]) or the event-driven wait
//! ([`LockRequest::acquire`]): first behind a holder of this client whose run of local
//! hand-offs has room, then through Redis, woken by releases, passed the lock by a local
//! holder, or in fair mode in the Redis line (`fair`).

use std::time::{Duration, Instant};

use tracing::Instrument;

use super::attempt::Attempt;
use super::request::LockRequest;
use crate::clock::later;
use crate::error::Error;
use crate::local::LocalSlot;
use crate::release::ReleaseJob;
use crate::state::{Guard, Passed};

impl<'a> LockRequest<'a> {
    /// One attempt: `Ok(None)` when another owner holds the lock.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// match locks.lock("cron").try_acquire().await? {
    ///     Some(guard) => guard.release().await.map(|_| ())?,
    ///     None => println!("another instance runs it"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_acquire(self) -> Result<Option<Guard>, Error> {
        self.check()?;
        let span = tracing::debug_span!("dlock.try_acquire", lock = %self.name);
        let started = Instant::now();
        let client = self.client;
        let ids = client.ids(&self);
        let attempt = client.attempt(&self, &ids).instrument(span).await?;
        let guard = match attempt {
            Attempt::Granted(g) => Some(g),
            // A fair attempt joined the line: leave it again (unless handed the lock meanwhile).
            Attempt::Held(_) if self.fair => {
                let left = Box::pin(client.leave_line(&self, &ids)).await;
                if left.is_err() {
                    // Unknown whether we are still in line (or were handed the lock): the
                    // janitor leaves the line and gives back whatever it finds.
                    client.janitor_release(ReleaseJob::new(
                        client.lock_spec(&self, &client.key(&self.name), &ids.field),
                        Some(ids.waiter.clone()),
                    ));
                }
                left?
            }
            Attempt::Held(_) => None,
        };
        if guard.is_some() {
            client
                .inner
                .metrics
                .acquired(started.elapsed(), Duration::ZERO, false);
        }
        Ok(guard)
    }

    /// Waits up to the request's wait for the lock. Waiting is event-driven: a release
    /// anywhere wakes a waiter through the client's one subscriber connection (fair requests
    /// are handed the lock directly); a timer equal to the holder's remaining lease covers lost
    /// wake-ups.
    ///
    /// Errors: [`Error::Timeout`] when still held at the end of the wait; [`Error::Unavailable`]
    /// when Redis fails.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let guard = locks.lock("invoice:9").acquire().await?;
    /// println!("fence {}", guard.fence());
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn acquire(self) -> Result<Guard, Error> {
        self.check()?;
        let span = tracing::debug_span!("dlock.acquire", lock = %self.name);
        async {
            let client = self.client;
            let started = Instant::now();
            let deadline = later(started, self.wait);
            let anonymous = self.owner.is_none();
            let mut slot = LocalSlot::new(client, &self.name, self.lease, self.fair, anonymous);
            // Behind a holder of this client whose run of local hand-offs has room for us: the
            // lock comes here without asking Redis (or we are told to retry there).
            if let Some(holder) = slot.as_mut().and_then(|s| s.join_behind_holder()) {
                tokio::select! {
                    passed = LocalSlot::passed(&mut slot) => {
                        if let Passed::Guard(g) = passed {
                            client.inner.metrics.acquired_after_wait(started);
                            return Ok(g);
                        }
                    }
                    // A holder that lost its lease (renewal refused, or its deadline passed)
                    // but keeps its guard never passes it on: leave the local line (it is
                    // re-joined with our place in the Redis line, if any) and ask Redis.
                    _ = crate::local::holder_lost(client, &self.name, holder) => {
                        slot = LocalSlot::new(client, &self.name, self.lease, self.fair, anonymous);
                    }
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
            let ids = client.ids(&self);
            if self.fair {
                return Box::pin(client.acquire_fair(&self, &ids, started, slot)).await;
            }
            // Fast path: uncontended locks never touch the subscriber.
            if let Attempt::Granted(g) = client.attempt(&self, &ids).await? {
                client
                    .inner
                    .metrics
                    .acquired(started.elapsed(), Duration::ZERO, false);
                return Ok(g);
            }
            let notify = Box::pin(client.waiter(&format!("l:{}", self.name))).await?;
            loop {
                // Join the local line and register for the wake-up before trying, so a release
                // between the attempt and the wait is not missed.
                if let Some(s) = slot.as_mut() {
                    s.join("");
                }
                let notified = notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match client.attempt(&self, &ids).await? {
                    Attempt::Granted(g) => {
                        client.inner.metrics.acquired_after_wait(started);
                        return Ok(g);
                    }
                    Attempt::Held(left) => {
                        let now = Instant::now();
                        if now >= deadline {
                            client.inner.metrics.timed_out();
                            return Err(Error::Timeout {
                                name: self.name.clone(),
                                waited: started.elapsed(),
                            });
                        }
                        // At most 60 s: the "someone waits" flag lives that long past the
                        // holder's lease, and the next attempt refreshes it.
                        let wait = left.min(Duration::from_secs(60)).min(deadline - now);
                        tokio::select! {
                            passed = LocalSlot::passed(&mut slot) => {
                                if let Passed::Guard(g) = passed {
                                    client.inner.metrics.acquired_after_wait(started);
                                    return Ok(g);
                                }
                            }
                            _ = tokio::time::timeout(wait, notified) => {}
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }
}
