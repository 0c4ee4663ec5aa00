//! Event-driven waiting: one subscriber connection per client hears every release announced on
//! the namespace's channel and wakes the local waiters of that lock, all waiters of a
//! semaphore or read-write lock, or hands a fair waiter of this client its fencing token.

use std::ops::ControlFlow;
use std::sync::{Arc, Weak};

use fred::clients::SubscriberClient;
use redis_conn::{Delivery, RedisClient};
use tokio::sync::Notify;

use crate::error::Error;
use crate::state::{Handoffs, LockClient, Waiters};
use crate::sync::lock;

impl LockClient {
    /// The local wake-up handle for a lock; starts the shared subscriber on first use. A
    /// subscriber Redis refuses for lack of a right (the wake-up channel, `SUBSCRIBE`) fails
    /// the wait with [`Error::NoPermission`] (and is tried again by the next wait); any other
    /// failure leaves the waiters on their timers.
    pub(crate) async fn waiter(&self, name: &str) -> Result<Arc<Notify>, Error> {
        let inner = &self.inner;
        inner
            .subscriber
            .get_or_try_init(|| async {
                // listen() reports a refused SUBSCRIBE (fred alone would not).
                let sub = start_subscriber(
                    &inner.redis,
                    &inner.channel,
                    Arc::downgrade(&inner.waiters),
                    Arc::downgrade(&inner.handoffs),
                )
                .await;
                if let Err(e @ redis_conn::Error::NoPermission(_)) = sub {
                    return Err(Error::from(e));
                }
                match sub {
                    Ok(sub) => Ok(Some(sub)),
                    Err(e) => {
                        tracing::warn!(error = %e, "lock wake-up subscriber unavailable; waiters fall back to timers");
                        Ok(None)
                    }
                }
            })
            .await?;
        let mut map = lock(&inner.waiters);
        if let Some(n) = map.get(name).and_then(Weak::upgrade) {
            return Ok(n);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let n = Arc::new(Notify::new());
        map.insert(name.to_string(), Arc::downgrade(&n));
        Ok(n)
    }
}

async fn start_subscriber(
    redis: &RedisClient,
    channel: &str,
    waiters: Weak<Waiters>,
    handoffs: Weak<Handoffs>,
) -> Result<SubscriberClient, redis_conn::Error> {
    redis
        .listen(channel, move |delivery| {
            let Some(waiters) = waiters.upgrade() else {
                return ControlFlow::Break(());
            };
            let text = match delivery {
                Delivery::Message(text) => text,
                // Missed messages: wake every waiter, they re-check.
                Delivery::Missed => {
                    lock(&waiters)
                        .values()
                        .filter_map(Weak::upgrade)
                        .for_each(|n| n.notify_waiters());
                    return ControlFlow::Continue(());
                }
            };
            if let Some((_name, rest)) = text.split_once('\n') {
                // A fair hand-off: "<name>\n<waiter id>\n<fence>", for one waiter somewhere.
                if let (Some((waiter, fence)), Some(handoffs)) =
                    (rest.rsplit_once('\n'), handoffs.upgrade())
                    && let Ok(fence) = fence.parse::<u64>()
                    && let Some(tx) = lock(&handoffs).remove(waiter)
                {
                    let _ = tx.send(fence);
                }
            } else if let Some(all) = text.strip_prefix('*') {
                // Semaphores and read-write locks: several waiters may fit now.
                if let Some(n) = lock(&waiters).get(all).and_then(Weak::upgrade) {
                    n.notify_waiters();
                }
            } else if let Some(n) = lock(&waiters).get(text).and_then(Weak::upgrade) {
                // One local waiter per release: the others stay asleep instead of stampeding
                // on a lock only one of them can get.
                n.notify_one();
            }
            ControlFlow::Continue(())
        })
        .await
}
