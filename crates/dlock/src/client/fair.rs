//! Fair (FIFO) acquiring: the request waits in a line kept in Redis, refreshes its place while
//! it waits, and is handed the lock by a release (a message naming it and its token), by a
//! holder of this client (a local hand-off) or by its own retry; a waiter that gives up or is
//! dropped leaves the line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::attempt::{Attempt, Ids};
use super::request::LockRequest;
use crate::clock::later;
use crate::error::Error;
use crate::hold::Hold;
use crate::keys::{conn, queue_keys};
use crate::local::LocalSlot;
use crate::release::ReleaseJob;
use crate::scripts::{CLAIM_MS, FAIR_CANCEL, QUEUE_ENTRY_MS};
use crate::state::{Guard, LockClient, Passed};
use crate::sync::lock;

/// A fair waiter's place in line: if the acquire future is dropped while waiting, the janitor
/// takes it out of the line (and releases the lock if it was handed over meanwhile).
struct InLine<'a> {
    client: &'a LockClient,
    waiter: String,
    job: Option<ReleaseJob>,
}

impl InLine<'_> {
    fn done(&mut self) {
        self.job = None;
        lock(&self.client.inner.handoffs).remove(&self.waiter);
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            lock(&self.client.inner.handoffs).remove(&self.waiter);
            self.client.janitor_release(job);
        }
    }
}

impl LockClient {
    pub(super) async fn acquire_fair(
        &self,
        req: &LockRequest<'_>,
        ids: &Ids,
        started: Instant,
        mut slot: Option<LocalSlot<'_>>,
    ) -> Result<Guard, Error> {
        let deadline = later(started, req.wait);
        let key = self.key(&req.name);
        // Hand-offs arrive through the subscriber: start it and register before the first try.
        self.waiter(&format!("l:{}", req.name)).await?;
        let (tx, mut handed) = oneshot::channel::<u64>();
        lock(&self.inner.handoffs).insert(ids.waiter.clone(), tx);
        let mut line = InLine {
            client: self,
            waiter: ids.waiter.clone(),
            job: Some(ReleaseJob::new(
                self.lock_spec(req, &key, &ids.field),
                Some(ids.waiter.clone()),
            )),
        };
        let mut listening = true;
        let refresh = Duration::from_millis(QUEUE_ENTRY_MS / 3);
        loop {
            if let Some(s) = slot.as_mut() {
                s.join(&ids.waiter);
            }
            match self.attempt(req, ids).await? {
                Attempt::Granted(g) => {
                    line.done();
                    let waited = started.elapsed();
                    self.inner
                        .metrics
                        .acquired(waited, waited, !waited.is_zero());
                    return Ok(g);
                }
                Attempt::Held(left) => {
                    let now = Instant::now();
                    if now >= deadline {
                        // On an error the line guard hands the clean-up to the janitor.
                        let got = self.leave_line(req, ids).await?;
                        line.done();
                        return match got {
                            Some(g) => Ok(g),
                            None => {
                                self.inner.metrics.timed_out();
                                Err(Error::Timeout {
                                    name: req.name.clone(),
                                    waited: started.elapsed(),
                                })
                            }
                        };
                    }
                    // Retry (refreshing the place in line) before it lapses, or when the
                    // holder's lease would end.
                    let wait = if left.is_zero() {
                        refresh
                    } else {
                        left.min(refresh)
                    };
                    let wait = wait.min(deadline - now);
                    tokio::select! {
                        passed = LocalSlot::passed(&mut slot) => {
                            // Our place in the Redis line is removed by the release that ends
                            // the local hand-offs.
                            if let Passed::Guard(g) = passed {
                                line.done();
                                self.inner.metrics.acquired_after_wait(started);
                                return Ok(g);
                            }
                        }
                        fence = &mut handed, if listening => match fence {
                            Ok(fence) => {
                                line.done();
                                self.inner.metrics.acquired_after_wait(started);
                                return Ok(self.handed_over(req, ids, key, fence));
                            }
                            Err(_) => listening = false,
                        },
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// The guard of a lock handed over by a fair release. It was granted with a short claim
    /// lease (so a waiter that died just before its turn blocks the line briefly): the
    /// watchdog renews it to the full lease a third of the claim later, and until then it is
    /// trusted for half the claim (the hand-off message's delay is unknown).
    fn handed_over(&self, req: &LockRequest<'_>, ids: &Ids, key: String, fence: u64) -> Guard {
        let now = Instant::now();
        // The hand-off lives min(lease, claim) in Redis from when the release ran, which was
        // before the message arrived: trust half of it (minus drift), renew at a third.
        let claim = req.lease.min(Duration::from_millis(CLAIM_MS));
        let hold = Arc::new(
            Hold::new(
                self.lock_spec(req, &key, &ids.field),
                self.inner.epoch,
                now,
                later(now, (claim / 2).saturating_sub(self.drift(claim))),
            )
            .passable(req.owner.is_none()),
        );
        if hold.passable {
            crate::local::held(self, &hold);
        }
        hold.renew_in(claim / 3);
        self.inner.watchdog.register(hold.clone());
        Guard::new(self.clone(), hold, fence)
    }

    /// Leaves a fair line; `Some(guard)` when the lock was handed over meanwhile.
    pub(super) async fn leave_line(
        &self,
        req: &LockRequest<'_>,
        ids: &Ids,
    ) -> Result<Option<Guard>, Error> {
        let key = self.key(&req.name);
        let (queue, queue_ttl) = queue_keys(&key);
        let reply: Vec<i64> = FAIR_CANCEL
            .run(
                conn(&self.inner.redis, &key),
                vec![key.as_str(), queue.as_str(), queue_ttl.as_str()],
                vec![ids.field.as_str(), ids.waiter.as_str()],
            )
            .await?;
        lock(&self.inner.handoffs).remove(&ids.waiter);
        Ok(match reply.as_slice() {
            [1, fence, ..] => {
                Some(self.handed_over(req, ids, key, u64::try_from(*fence).unwrap_or(0)))
            }
            _ => None,
        })
    }
}
