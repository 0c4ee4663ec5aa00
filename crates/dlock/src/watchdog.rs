//! One watchdog task per client renews every held lease, in batches, a third of a lease after
//! its last confirmed renewal; a refused renewal or a missed deadline marks the hold lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis_conn::RedisClient;
use tokio::sync::Notify;

use crate::clock::{micros_since, trusted_until};
use crate::config::LockConfig;
use crate::error::{Error, LostReason};
use crate::hold::{Hold, State};
use crate::scripts::{CLAIM_MS, RENEW};
use crate::stats::Metrics;
use crate::sync::lock;

/// Most holds renewed by one script call.
const BATCH: usize = 200;

struct Shared {
    holds: Mutex<HashMap<u64, Arc<Hold>>>,
    wake: Notify,
    closed: AtomicBool,
    epoch: Instant,
    /// When the task plans to wake next (µs since `epoch`; 0 while it is computing): a new
    /// hold only wakes it when it is due earlier, so an acquire rarely costs a task wake-up.
    planned: AtomicU64,
}

pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    started: AtomicBool,
    /// The client's Redis, counters and drift ratio, for the task and [`Watchdog::renew_all`].
    redis: RedisClient,
    metrics: Metrics,
    drift_ratio: f64,
    /// Hand-offs are first renewed a third of their claim after they arrive: an idle
    /// tick no longer than that lets them register without waking this task.
    idle_tick: Duration,
}

impl Watchdog {
    pub(crate) fn new(
        epoch: Instant,
        redis: RedisClient,
        metrics: Metrics,
        cfg: &LockConfig,
    ) -> Watchdog {
        Watchdog {
            shared: Arc::new(Shared {
                holds: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                closed: AtomicBool::new(false),
                epoch,
                planned: AtomicU64::new(0),
            }),
            started: AtomicBool::new(false),
            redis,
            metrics,
            drift_ratio: cfg.drift_ratio,
            idle_tick: cfg.lease.min(Duration::from_millis(CLAIM_MS)) / 3,
        }
    }

    /// Starts renewing `hold` (before its acquire returns).
    pub(crate) fn register(&self, hold: Arc<Hold>) {
        let due = micros_since(self.shared.epoch, hold.renew_at());
        lock(&self.shared.holds).insert(hold.id, hold);
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(run(
                Arc::downgrade(&self.shared),
                self.redis.clone(),
                self.metrics.clone(),
                self.drift_ratio,
                self.idle_tick,
            ));
        }
        let planned = self.shared.planned.load(Ordering::Acquire);
        if planned == 0 || due < planned {
            self.shared.wake.notify_one();
        }
    }

    /// Stops renewing a hold (before its release is sent).
    pub(crate) fn unregister(&self, id: u64) {
        lock(&self.shared.holds).remove(&id);
    }

    /// Renews every registered hold now, in the watchdog's batches; how many were confirmed.
    pub(crate) async fn renew_all(&self) -> Result<usize, Error> {
        let due: Vec<(Arc<Hold>, Instant)> = lock(&self.shared.holds)
            .values()
            .map(|h| (h.clone(), h.renew_at()))
            .collect();
        let before = self.metrics.snapshot(0).renewals;
        if renew(
            &self.shared,
            &self.redis,
            &self.metrics,
            self.drift_ratio,
            due,
        )
        .await
        {
            return Err(Error::Unavailable(redis_conn::Error::Client(
                "some renewals failed; the watchdog retries them".into(),
            )));
        }
        Ok(usize::try_from(self.metrics.snapshot(0).renewals - before).unwrap_or(usize::MAX))
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.shared.holds).len()
    }

    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

async fn run(
    shared: Weak<Shared>,
    redis: RedisClient,
    metrics: Metrics,
    drift_ratio: f64,
    idle_tick: Duration,
) {
    let mut backoff_until: Option<Instant> = None;
    loop {
        let Some(s) = shared.upgrade() else { return };
        if s.closed.load(Ordering::Acquire) {
            return;
        }
        s.planned.store(0, Ordering::Release);
        let now = Instant::now();
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        {
            let mut holds = lock(&s.holds);
            holds.retain(|_, h| {
                // Lost (told to its holder) or released: never renew it again.
                if h.state() != State::Held {
                    return false;
                }
                if now >= h.deadline() {
                    if h.lose(LostReason::Deadline) {
                        metrics.lost();
                        tracing::warn!(lock = %h.name, "lease deadline passed without a confirmed renewal");
                    }
                    return false;
                }
                let at = h.renew_at();
                // Holds due a little later join this round: fewer, larger batches.
                if at <= now + h.lease / 12 && backoff_until.is_none_or(|b| now >= b) {
                    due.push((h.clone(), at));
                } else {
                    let at = backoff_until.map_or(at, |b| at.max(b));
                    next = Some(next.map_or(at, |n: Instant| n.min(at)));
                }
                // The deadline itself is a wake-up too.
                next = Some(next.map_or(h.deadline(), |n| n.min(h.deadline())));
                true
            });
        }
        if !due.is_empty() {
            let failed = renew(&s, &redis, &metrics, drift_ratio, due).await;
            backoff_until = failed.then(|| Instant::now() + Duration::from_millis(100));
            continue;
        }
        let notified = s.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Idle, it still looks again every third of the default lease: holds registered
        // meanwhile with that lease are not due before then, so registering needs no wake-up.
        let at = next.unwrap_or_else(|| Instant::now() + idle_tick);
        s.planned
            .store(micros_since(s.epoch, at).max(1), Ordering::Release);
        // `close()` (the client was dropped) wakes this wait; the loop then ends.
        let _ = tokio::time::timeout_at(at.into(), notified).await;
    }
}

/// Renews `due` holds (grouped by cluster slot, in batches); returns whether any call failed.
async fn renew(
    shared: &Shared,
    redis: &RedisClient,
    metrics: &Metrics,
    drift_ratio: f64,
    due: Vec<(Arc<Hold>, Instant)>,
) -> bool {
    let cluster = redis.is_cluster();
    let mut groups: HashMap<u16, Vec<(Arc<Hold>, Instant)>> = HashMap::new();
    for (h, at) in due {
        let slot = if cluster {
            redis_conn::keys::slot(h.key.as_bytes())
        } else {
            0
        };
        groups.entry(slot).or_default().push((h, at));
    }
    let calls = groups
        .into_values()
        .flat_map(|g| {
            g.chunks(BATCH)
                .map(<[(Arc<Hold>, Instant)]>::to_vec)
                .collect::<Vec<_>>()
        })
        .map(|batch| async move {
            let sent = Instant::now();
            for (_, at) in &batch {
                metrics.renewal_lateness(sent.saturating_duration_since(*at));
            }
            let keys: Vec<&str> = batch.iter().map(|(h, _)| h.key.as_str()).collect();
            let mut args = Vec::with_capacity(batch.len() + 1);
            args.push(batch[0].0.lease.as_millis().to_string());
            args.extend(batch.iter().map(|(h, _)| h.field.clone()));
            // Holds of one batch may have different leases: renew each with its own by
            // running one call per distinct lease (rare; usually all share the default).
            let same_lease = batch.iter().all(|(h, _)| h.lease == batch[0].0.lease);
            // One slow node must not hold up every other renewal past their leases.
            let shortest = batch.iter().map(|(h, _)| h.lease).min().unwrap_or_default();
            let limit = (shortest / 6).max(Duration::from_millis(50));
            let call = async {
            let reply: Result<Vec<i64>, redis_conn::Error> = if same_lease {
                if cluster {
                    RENEW.run(redis.pool(), keys, args).await
                } else {
                    RENEW.run_any_slots(redis.pool(), keys, args).await
                }
            } else {
                let mut out = Vec::with_capacity(batch.len());
                let mut err = None;
                for (h, _) in &batch {
                    match RENEW
                        .run::<Vec<i64>, _, _, _>(
                            redis.pool(),
                            vec![h.key.as_str()],
                            vec![h.lease.as_millis().to_string(), h.field.clone()],
                        )
                        .await
                    {
                        Ok(v) => out.push(v.first().copied().unwrap_or(0)),
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None => Ok(out),
                }
            };
            reply
            };
            let reply = match tokio::time::timeout(limit, call).await {
                Ok(r) => r,
                Err(_) => Err(redis_conn::Error::Timeout(format!(
                    "renewal took longer than {limit:?}"
                ))),
            };
            match reply {
                Ok(results) => {
                    for ((h, _), ok) in batch.iter().zip(results) {
                        if ok == 1 {
                            h.renewed(sent, trusted_until(sent, h.lease, drift_ratio));
                            metrics.renewed();
                        } else {
                            shared_lost(shared, metrics, h, LostReason::Refused);
                        }
                    }
                    false
                }
                Err(e) => {
                    metrics.renewal_failed();
                    tracing::warn!(error = %e, holds = batch.len(), "lease renewal failed; retrying");
                    true
                }
            }
        });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .any(|failed| failed)
}

fn shared_lost(shared: &Shared, metrics: &Metrics, h: &Hold, reason: LostReason) {
    lock(&shared.holds).remove(&h.id);
    if h.lose(reason) {
        metrics.lost();
        tracing::warn!(lock = %h.name, %reason, "lease lost");
    }
}

/// One renewal of one hold, for [`crate::Guard::extend`]: `Ok(false)` when the hold is gone.
pub(crate) async fn renew_one(redis: &RedisClient, hold: &Hold) -> Result<bool, Error> {
    let reply: Vec<i64> = RENEW
        .run(
            redis.pool(),
            vec![hold.key.as_str()],
            vec![hold.lease.as_millis().to_string(), hold.field.clone()],
        )
        .await?;
    Ok(reply.first() == Some(&1))
}
