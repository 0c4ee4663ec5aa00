//! The release janitor: one task per client performs, in order, the releases that `Drop`
//! cannot await (dropped guards, cancelled or failed acquires), over the connection the lock's
//! other calls use. [`PendingGrant`] arms such a give-back while a grant is in flight.

use tokio::sync::mpsc;

use crate::hold::HoldSpec;
use crate::release::{Job, ReleaseJob, fair_give_back, release_hold};
use crate::state::LockClient;

/// Releases a hold whose grant is in flight if the acquire future is dropped before it
/// completes (the request may have been granted): the janitor gives it back by its hold id.
pub(crate) struct PendingGrant<'a> {
    pub(crate) client: &'a LockClient,
    pub(crate) job: Option<ReleaseJob>,
}

impl<'a> PendingGrant<'a> {
    /// Arms a give-back of `spec` (starting the janitor if needed).
    pub(crate) fn new(client: &'a LockClient, spec: HoldSpec) -> PendingGrant<'a> {
        client.ensure_janitor();
        PendingGrant {
            client,
            job: Some(ReleaseJob::new(spec, None)),
        }
    }

    /// The request was answered: nothing to give back.
    pub(crate) fn disarm(&mut self) {
        self.job = None;
    }
}

impl Drop for PendingGrant<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            self.client.janitor_release(job);
        }
    }
}

impl LockClient {
    /// Hands a release to the background janitor (from `Drop`, which cannot await).
    pub(crate) fn janitor_release(&self, job: ReleaseJob) {
        match self.inner.janitor.get() {
            Some(tx) => {
                let _ = tx.send(Job::Release(job));
            }
            None => tracing::warn!(
                lock = %job.spec.name,
                "no janitor running: the hold is given back when its lease expires"
            ),
        }
    }

    /// Starts the janitor (once, from async context).
    pub(crate) fn ensure_janitor(&self) {
        if self.inner.janitor.get().is_some() {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        if self.inner.janitor.set(tx).is_err() {
            return; // someone else started it
        }
        let (redis, channel) = (self.inner.redis.clone(), self.inner.channel.clone());
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let job = match job {
                    Job::Release(job) => job,
                    Job::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
                let r: Result<i64, _> = match &job.waiter {
                    None => release_hold(&redis, &channel, &job.spec, &job.cohort).await,
                    Some(waiter) => fair_give_back(&redis, &channel, &job, waiter).await,
                };
                if let Err(e) = r {
                    tracing::warn!(lock = %job.spec.name, error = %e, "background release failed; the lease expires by itself");
                }
            }
        });
    }
}
