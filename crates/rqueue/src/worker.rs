//! The worker runtime: claims in batches, runs an async handler with bounded concurrency and an
//! optional per-job timeout, renews every running job's lease in one batched call, reclaims
//! expired leases, and shuts down gracefully.

use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::queue::claim::Held;
use crate::queue::core::Queue;
use crate::queue::delivery::{Delivery, Finished};

/// Settings of a [`Worker`].
///
/// ```
/// let mut cfg = rqueue::WorkerConfig::default();
/// cfg.concurrency = 32;
/// assert!(cfg.job_timeout.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Jobs run at once. Default 8.
    pub concurrency: usize,
    /// A job running longer is cancelled and counts as a failure. Default none.
    pub job_timeout: Option<Duration>,
    /// At shutdown, how long running jobs may finish; the rest are cancelled and their
    /// messages put back to ready (not counted as failures). Default 30 s.
    pub shutdown_grace: Duration,
    /// How often expired leases (of workers that died) are reclaimed. Default: a third of the
    /// queue's lease.
    pub reclaim_every: Option<Duration>,
    /// Most messages claimed ahead of a free slot, so short jobs do not wait a round trip
    /// each. The worker holds only as many as it expects to start within
    /// about 20 ms (measured from recent job durations), so slow jobs are not hoarded; held
    /// messages are leased and renewed like running ones and given back at shutdown. 0 turns
    /// prefetching off. Default 64.
    pub prefetch: usize,
}

/// How far ahead prefetched messages may reach: at most this long a wait in the worker.
const PREFETCH_HORIZON: Duration = Duration::from_millis(20);

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            concurrency: 8,
            job_timeout: None,
            shutdown_grace: Duration::from_secs(30),
            reclaim_every: None,
            prefetch: 64,
        }
    }
}

/// What a job's handler is told besides its message, and its handle for progress reports.
///
/// ```
/// fn log(job: &rqueue::JobInfo) { println!("{} (delivery {})", job.id, job.delivery); }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct JobInfo {
    /// The message id.
    pub id: String,
    /// Which delivery this is (1 for the first).
    pub delivery: u32,
    /// When this delivery was claimed (server clock).
    pub claimed_at: Option<std::time::SystemTime>,
    reporter: Option<crate::queue::Reporter>,
}

impl std::fmt::Debug for JobInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobInfo")
            .field("id", &self.id)
            .field("delivery", &self.delivery)
            .field("claimed_at", &self.claimed_at)
            .finish_non_exhaustive()
    }
}

impl JobInfo {
    /// Reports the job's progress (a number and a short message, cut at 1 KiB), seen by
    /// every client through [`Queue::job`](crate::Queue::job) at once and kept with its
    /// result. [`Error::LeaseLost`] when the lease was lost (stop working: someone else may
    /// run the job); [`Error::Config`] for a NaN or infinite number.
    ///
    /// ```no_run
    /// # async fn demo(w: rqueue::Worker<Vec<String>>) -> Result<(), rqueue::Error> {
    /// w.run(
    ///     |files: Vec<String>, job| async move {
    ///         for (i, f) in files.iter().enumerate() {
    ///             let pct = 100.0 * i as f64 / files.len() as f64;
    ///             job.progress(pct, f).await.map_err(|e| e.to_string())?;
    ///         }
    ///         Ok::<_, String>(files.len())
    ///     },
    ///     std::future::pending(),
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn progress(&self, value: f64, message: &str) -> Result<(), Error> {
        match &self.reporter {
            Some(r) => r.report(&self.id, value, message).await,
            None => Err(Error::LeaseLost {
                id: self.id.clone(),
            }),
        }
    }
}

/// Counts of one worker run.
///
/// ```no_run
/// # async fn demo(w: rqueue::Worker<u64>) -> Result<(), rqueue::Error> {
/// let report = w
///     .run(|n: u64, _job| async move { Ok::<_, String>(()) }, std::future::pending())
///     .await?;
/// println!("{} acked", report.acked);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// Jobs that succeeded and were acknowledged.
    pub acked: u64,
    /// Jobs that failed (error, panic or timeout) and were given back for a retry.
    pub retried: u64,
    /// Jobs that failed for the last time (moved to the dead set).
    pub dead: u64,
    /// Jobs whose lease was lost before they finished (someone else may run them).
    pub lost: u64,
    /// Messages put back to ready at shutdown: jobs cancelled after the grace period and
    /// prefetched messages that had not started.
    pub released: u64,
}

#[derive(Default)]
struct Counts {
    acked: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    lost: AtomicU64,
    released: AtomicU64,
}

/// Runs a handler over a queue's messages. See [`Worker::run`].
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), rqueue::Error> {
/// let q: rqueue::Queue<String> = rqueue::Queue::new(redis, rqueue::QueueConfig::new("mail"))?;
/// let worker = rqueue::Worker::new(q, rqueue::WorkerConfig::default());
/// let shutdown = async { tokio::signal::ctrl_c().await.ok(); };
/// worker
///     .run(|to: String, _job| async move { send_mail(&to).await }, shutdown)
///     .await?;
/// # Ok(()) }
/// # async fn send_mail(_to: &str) -> Result<(), String> { Ok(()) }
/// ```
#[derive(Debug)]
pub struct Worker<T> {
    queue: Queue<T>,
    cfg: WorkerConfig,
}

/// The messages this worker holds: id → (delivery token, the handler task once it runs).
/// Their leases are renewed together; running handlers are cancelled together at the end of
/// a shutdown's grace period.
type Running = Arc<Mutex<HashMap<String, (String, Option<tokio::task::AbortHandle>)>>>;

/// Drops the entry of `id` only if it still belongs to the delivery `token` (a message
/// reclaimed and claimed again by this worker has a newer entry that must stay).
fn forget(running: &Running, id: &str, token: &str) {
    let mut map = lock(running);
    if map.get(id).is_some_and(|(t, _)| t == token) {
        map.remove(id);
    }
}

/// Aborts its task when dropped (also when `run` itself is dropped mid-way).
struct AbortOnDrop<R>(tokio::task::JoinHandle<R>);

impl<R> Drop for AbortOnDrop<R> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Most messages one claim may take ahead of free slots, whatever the configuration says.
const MAX_PREFETCH: usize = 10_000;

/// What the worker's tasks share.
struct Shared {
    counts: Arc<Counts>,
    /// Recent mean handler duration in µs (0 before the first job): sizes the prefetch.
    mean_job_us: AtomicU64,
    /// Finished jobs whose acknowledgement is due; one task sends them in batches.
    acks: tokio::sync::mpsc::UnboundedSender<Finished>,
    /// Turns true when the shutdown's grace period ends: running handlers are cancelled.
    cancel: tokio::sync::watch::Receiver<bool>,
}

/// How a handler ended.
enum Outcome {
    /// Succeeded, with its encoded result (empty when results are not kept).
    Done(Vec<u8>),
    Failed(String),
    /// Cancelled at shutdown: the message goes back unfinished, not as a failure.
    Cancelled,
}

/// Whether the Redis ACL refused the call.
fn denied(e: &Error) -> bool {
    matches!(e, Error::Redis(redis_conn::Error::NoPermission(_)))
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Worker<T> {
    /// A worker for `queue`.
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) {
    /// let w = rqueue::Worker::new(q, rqueue::WorkerConfig::default());
    /// # drop(w); }
    /// ```
    pub fn new(queue: Queue<T>, cfg: WorkerConfig) -> Worker<T> {
        Worker { queue, cfg }
    }

    /// Runs until `shutdown` completes (first logging what [`Queue::check_durability`]
    /// finds): claims as many messages as there are free slots
    /// (waiting without polling when the queue is empty), runs `handler` for each in its own
    /// task, acknowledges on `Ok`, and gives the message back on `Err`, on a panic (the panic
    /// message is the error) or on a timeout — to be retried after the message's backoff (its own or the queue's), or
    /// dead after its last attempt. Undecodable payloads never reach the handler: they go to
    /// the dead set with reason `decode: …`. While jobs run, one call per 500 jobs renews
    /// their leases every third of the lease; expired leases of dead workers are reclaimed
    /// periodically. At shutdown no new message is claimed; running jobs get
    /// `shutdown_grace` to finish, then are cancelled and their messages put back to ready.
    /// When the Redis ACL refuses a claim or the wake-up wait (a missing right does not heal by
    /// retrying), the worker shuts down the same way and returns that error:
    /// [`Error::Redis`] with [`redis_conn::Error::NoPermission`] naming the right.
    ///
    /// ```no_run
    /// # async fn demo(w: rqueue::Worker<u64>) -> Result<(), rqueue::Error> {
    /// let report = w
    ///     .run(
    ///         |n: u64, job| async move {
    ///             if n == 0 { return Err(format!("{}: zero", job.id)) }
    ///             Ok(())
    ///         },
    ///         tokio::time::sleep(std::time::Duration::from_secs(60)),
    ///     )
    ///     .await?;
    /// # let _ = report; Ok(()) }
    /// ```
    pub async fn run<H, Fut, R, E>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<WorkerReport, Error>
    where
        H: Fn(T, JobInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize + Send + 'static,
        E: Display + Send + 'static,
    {
        let Worker { queue, cfg } = self;
        // Best effort: warnings (eviction policy, persistence) are logged by the check.
        if let Err(e) = queue.check_durability().await {
            tracing::debug!(queue = %queue.config().name, error = %e, "durability check failed");
        }
        let handler = Arc::new(handler);
        let concurrency = cfg.concurrency.clamp(1, Semaphore::MAX_PERMITS);
        let slots = Arc::new(Semaphore::new(concurrency));
        let running: Running = Arc::default();
        let (acks, ack_rx) = tokio::sync::mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            counts: counts.clone(),
            mean_job_us: AtomicU64::new(0),
            acks,
            cancel,
        });
        let lease = queue.config().lease;
        // The acker is not aborted if `run` is dropped: it flushes what it was given, then
        // ends with the last sender. The heartbeat is: leases of abandoned messages must run
        // out so that they are reclaimed.
        let acker = tokio::spawn(acknowledge(
            queue.clone(),
            ack_rx,
            counts.clone(),
            running.clone(),
            lease,
        ));
        let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            queue.clone(),
            running.clone(),
            lease / 3,
        )));
        let reclaim_every = cfg.reclaim_every.unwrap_or(lease / 3);
        let mut last_reclaim = Instant::now();
        let mut jobs: JoinSet<()> = JoinSet::new();
        // Claimed, not started yet (prefetched).
        let mut held: VecDeque<Delivery<T>> = VecDeque::new();
        // A refusal by the Redis ACL (claims or the wake-up wait): retrying cannot help, so
        // the worker shuts down as if told to and reports it.
        let mut fatal: Option<Error> = None;
        tokio::pin!(shutdown);
        loop {
            // A free slot first (or the end).
            let permit = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            while jobs.try_join_next().is_some() {}
            if held.is_empty() {
                if last_reclaim.elapsed() >= reclaim_every {
                    last_reclaim = Instant::now();
                    if let Err(e) = queue.reclaim(1000).await {
                        tracing::warn!(queue = %queue.config().name, error = %e, "reclaim failed");
                    }
                }
                // The claim itself is never cancelled (its messages would stay in flight
                // until their lease ends); only the wait between claims is.
                let ahead = prefetch_room(
                    cfg.prefetch.min(MAX_PREFETCH),
                    concurrency,
                    &shared.mean_job_us,
                );
                let want = slots
                    .available_permits()
                    .saturating_add(1)
                    .saturating_add(ahead);
                let crate::queue::claim::Claimed {
                    deliveries: got,
                    next_due,
                    held: held_back,
                } = match queue.claim_some(want).await {
                    Ok(r) => r,
                    Err(e) if denied(&e) => {
                        drop(permit);
                        fatal = Some(e);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(queue = %queue.config().name, error = %e, "claim failed; retrying");
                        drop(permit);
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                        }
                    }
                };
                if got.is_empty() {
                    drop(permit);
                    let wait = next_due
                        .unwrap_or(Duration::from_secs(2))
                        .min(reclaim_every)
                        .max(Duration::from_millis(1));
                    if let Held::Rate(free_in) = held_back {
                        // The rate limit's next slot is known: sleep until then (a wake-up
                        // would only be refused again).
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(wait.min(free_in)) => {}
                        }
                        continue;
                    }
                    tokio::select! {
                        _ = &mut shutdown => break,
                        r = queue.wait_signal(wait) => if let Err(e) = r {
                            if denied(&e) {
                                fatal = Some(e);
                                break;
                            }
                            // No wake-up connection (yet): wait out the same time instead.
                            tracing::warn!(queue = %queue.config().name, error = %e, "wake-up wait failed");
                            tokio::select! {
                                _ = &mut shutdown => break,
                                _ = tokio::time::sleep(wait.min(Duration::from_millis(200))) => {}
                            }
                        },
                    }
                    continue;
                }
                let mut map = lock(&running);
                for d in got {
                    map.insert(d.id().to_string(), (d.token().to_string(), None));
                    held.push_back(d);
                }
            }
            // Start as many as there are free slots; the rest wait for the next one.
            let mut permit = Some(permit);
            while !held.is_empty() {
                let p = match permit.take() {
                    Some(p) => p,
                    None => match slots.clone().try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let Some(d) = held.pop_front() else { break };
                let (handler, running, shared) = (handler.clone(), running.clone(), shared.clone());
                let timeout = cfg.job_timeout;
                jobs.spawn(async move {
                    run_job(d, handler, timeout, running, shared).await;
                    drop(p);
                });
            }
        }
        // Shutdown: prefetched messages go straight back; running jobs may finish within the
        // grace period, then the handlers still running are cancelled and their jobs put
        // the messages back (not as failures).
        for d in held.drain(..) {
            let (queue, id, token, _, _) = d.into_parts();
            let result = queue.release(&id, &token).await;
            forget(&running, &id, &token);
            match result {
                Ok(()) => {
                    shared.counts.released.fetch_add(1, Ordering::Relaxed);
                }
                Err(Error::LeaseLost { .. }) => {
                    shared.counts.lost.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(queue = %queue.config().name, id, error = %e, "could not give back a prefetched message; it returns when its lease ends")
                }
            }
        }
        let grace = tokio::time::sleep(cfg.shutdown_grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = jobs.join_next() => if next.is_none() { break },
                _ = &mut grace => {
                    // Every job, registered or just starting, sees this and cancels its
                    // handler.
                    let _ = cancel_tx.send(true);
                    while jobs.join_next().await.is_some() {}
                    break;
                }
            }
        }
        drop(heartbeat);
        // The last acknowledgements: the acker ends once every sender is gone (the jobs,
        // holding the other copies, have all ended).
        drop(shared);
        if let Err(e) = acker.await {
            tracing::warn!(queue = %queue.config().name, error = %e, "acknowledgement task failed");
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Ok(WorkerReport {
            acked: r(&counts.acked),
            retried: r(&counts.retried),
            dead: r(&counts.dead),
            lost: r(&counts.lost),
            released: r(&counts.released),
        })
    }
}

/// How many messages to claim ahead of free slots: as many as start within
/// [`PREFETCH_HORIZON`] at the recent job duration, at most `max` (none before a job ran).
fn prefetch_room(max: usize, concurrency: usize, mean_job_us: &AtomicU64) -> usize {
    let mean = mean_job_us.load(Ordering::Relaxed);
    if max == 0 || mean == 0 {
        return 0;
    }
    let horizon = PREFETCH_HORIZON.as_micros() as u64;
    let per_slot = horizon / mean;
    usize::try_from(per_slot.saturating_mul(concurrency as u64))
        .unwrap_or(usize::MAX)
        .min(max)
}

/// Sends the acknowledgements of finished jobs, batching those that finish while a call is
/// in flight. Ends when every sender is gone.
/// Finished jobs stay in `running` (their leases renewed) until their ack is answered; a
/// failed call is retried for up to `give_up_after` (a lease), then they are left to be
/// delivered again.
async fn acknowledge<T>(
    queue: Queue<T>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Finished>,
    counts: Arc<Counts>,
    running: Running,
    give_up_after: Duration,
) where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 500).await > 0 {
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match queue.ack_many(&batch).await {
                Ok(ok) => {
                    for ((id, _, _), ok) in batch.iter().zip(ok) {
                        if ok {
                            counts.acked.fetch_add(1, Ordering::Relaxed);
                        } else {
                            counts.lost.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(queue = %queue.config().name, id, "job finished after its lease was lost");
                        }
                    }
                    break;
                }
                Err(e) if started.elapsed() < give_up_after => {
                    tracing::warn!(queue = %queue.config().name, n = batch.len(), error = %e, "acknowledgement failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::warn!(queue = %queue.config().name, n = batch.len(), error = %e, "could not acknowledge finished jobs; they will be delivered again");
                    break;
                }
            }
        }
        for (id, token, _) in &batch {
            forget(&running, id, token);
        }
        batch.clear();
    }
}

/// One job: the handler in its own task (so a panic is caught), bounded by the timeout, then
/// ack or give back.
async fn run_job<T, H, Fut, R, E>(
    d: Delivery<T>,
    handler: Arc<H>,
    timeout: Option<Duration>,
    running: Running,
    shared: Arc<Shared>,
) where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    H: Fn(T, JobInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Serialize + Send + 'static,
    E: Display + Send + 'static,
{
    let backoff = d.backoff();
    let failures = d.failures();
    let (queue, id, token, delivery, message) = d.into_parts();
    let keep = queue.config().keep_results.is_some();
    let info = JobInfo {
        id: id.clone(),
        delivery,
        claimed_at: crate::queue::token_parts(&token).map(|(_, at)| at),
        reporter: Some(queue.reporter(&token)),
    };
    let started = Instant::now();
    // The error is turned into text inside the task: a panicking `Display` is a panic there.
    let fut = handler(message, info);
    // The result is encoded inside the task too (only when results are kept): a value that
    // cannot be encoded is the handler's failure.
    let mut task = AbortOnDrop(tokio::spawn(async move {
        let value = fut.await.map_err(|e| e.to_string())?;
        if keep {
            rmp_serde::to_vec_named(&value)
                .map_err(|e| format!("the job's result could not be encoded: {e}"))
        } else {
            Ok(Vec::new())
        }
    }));
    lock(&running).insert(id.clone(), (token.clone(), Some(task.0.abort_handle())));
    let mut cancel = shared.cancel.clone();
    let mut outcome = tokio::select! {
        o = wait_job(&mut task.0, timeout) => o,
        _ = async {
            if cancel.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        } => Outcome::Cancelled,
    };
    task.0.abort();
    let elapsed = started.elapsed();
    queue.metrics().job_seconds.record(elapsed.as_secs_f64());
    // A running mean (7/8 old, 1/8 new; racy updates only blur it), at least 1 µs.
    let took = u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let old = shared.mean_job_us.load(Ordering::Relaxed);
    let mean = if old == 0 {
        took
    } else {
        old - old / 8 + took / 8
    };
    shared.mean_job_us.store(mean.max(1), Ordering::Relaxed);
    let counts = &shared.counts;
    let result = match &mut outcome {
        // The acker forgets the entry once the ack is answered.
        Outcome::Done(result) => match shared.acks.send((id, token, std::mem::take(result))) {
            Ok(()) => return,
            // The acknowledging task is gone (cannot happen while `shared` lives): ack here.
            Err(tokio::sync::mpsc::error::SendError((id, token, result))) => {
                let r = queue
                    .ack_one(&id, &token, result)
                    .await
                    .map(|()| &counts.acked);
                forget(&running, &id, &token);
                return record(&queue, &id, r, counts);
            }
        },
        Outcome::Cancelled => queue.release(&id, &token).await.map(|()| &counts.released),
        Outcome::Failed(error) => {
            let delay = backoff.delay(failures + 1);
            queue
                .give_back(&id, &token, delay, error, false)
                .await
                .map(|r| {
                    if r == 2 {
                        &counts.dead
                    } else {
                        &counts.retried
                    }
                })
        }
    };
    forget(&running, &id, &token);
    record(&queue, &id, result, counts);
}

/// Waits for a handler task, bounded by the job timeout.
async fn wait_job(
    task: &mut tokio::task::JoinHandle<Result<Vec<u8>, String>>,
    timeout: Option<Duration>,
) -> Outcome {
    match timeout {
        Some(t) => match tokio::time::timeout(t, &mut *task).await {
            Ok(joined) => joined_outcome(joined),
            Err(_) => Outcome::Failed(format!("timed out after {t:?}")),
        },
        None => joined_outcome(task.await),
    }
}

/// Counts a job's recorded result.
fn record<T>(queue: &Queue<T>, id: &str, result: Result<&AtomicU64, Error>, counts: &Counts)
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    match result {
        Ok(counter) => {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Err(Error::LeaseLost { .. }) => {
            counts.lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(queue = %queue.config().name, id, "job finished after its lease was lost");
        }
        Err(e) => {
            tracing::warn!(queue = %queue.config().name, id, error = %e, "could not record the job's result; it will be delivered again");
        }
    }
}

fn joined_outcome(joined: Result<Result<Vec<u8>, String>, tokio::task::JoinError>) -> Outcome {
    match joined {
        Ok(Ok(result)) => Outcome::Done(result),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-text panic".into());
            Outcome::Failed(format!("panic: {text}"))
        }
        Err(_) => Outcome::Cancelled,
    }
}

/// Renews the leases of all running jobs every `every`, in batched calls.
async fn heartbeat<T>(queue: Queue<T>, running: Running, every: Duration)
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(5)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let held: Vec<(String, String)> = lock(&running)
            .iter()
            .map(|(id, (token, _))| (id.clone(), token.clone()))
            .collect();
        if held.is_empty() {
            continue;
        }
        match queue.extend_many(&held).await {
            Ok(ok) => {
                for ((id, token), ok) in held.iter().zip(ok) {
                    // Not a loss when the job was acknowledged meanwhile.
                    let still_held = lock(&running).get(id).is_some_and(|(t, _)| t == token);
                    if !ok && still_held {
                        tracing::warn!(queue = %queue.config().name, id, "lease lost while the job runs");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(queue = %queue.config().name, error = %e, "lease renewal failed; retrying")
            }
        }
    }
}
