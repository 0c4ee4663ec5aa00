//! Queues as the console sees them: discovery ([`Console::queue_refs`]), summaries
//! ([`QueueSummary`]), lists of messages ([`MessageRow`]) and jobs ([`JobView`]).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::interfaces::{KeysInterface, SortedSetsInterface};
use fred::types::Value;
use futures::{StreamExt, TryStreamExt};
use redis_conn::registry::{self, Kind};
use rqueue::{JobState, Queue, QueueConfig};
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;
use crate::payload::Payload;

/// Queue summaries read at once by [`Console::queues`].
const CONCURRENCY: usize = 64;
/// Keys examined at most by the fallback scan for queues written before the registry.
const SCAN_BUDGET: usize = 200_000;

/// A queue's identity: namespace and name (its keys are `<namespace>:{<name>}:*`).
///
/// ```
/// let q = redkit_console::QueueRef::parse("emails").unwrap();
/// assert_eq!((q.namespace.as_str(), q.name.as_str()), ("rq", "emails"));
/// assert_eq!(q.to_string(), "rq/emails");
/// assert_eq!(redkit_console::QueueRef::parse("shop/orders").unwrap().base(), "shop:{orders}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct QueueRef {
    /// The namespace (`rq` unless the queue's config says otherwise).
    pub namespace: String,
    /// The queue's name.
    pub name: String,
}

impl QueueRef {
    /// A queue of `namespace`.
    ///
    /// ```
    /// let q = redkit_console::QueueRef::new("rq", "emails");
    /// assert_eq!(q.base(), "rq:{emails}");
    /// ```
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> QueueRef {
        QueueRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `name` (namespace `rq`) or `namespace/name`.
    ///
    /// ```
    /// assert!(redkit_console::QueueRef::parse("rq/{bad}").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<QueueRef, Error> {
        let (ns, name) = s.split_once('/').unwrap_or(("rq", s));
        let r = QueueRef::new(ns, name);
        r.check()?;
        Ok(r)
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.name.is_empty()
            || self.namespace.is_empty()
            || self.name.contains(['{', '}'])
            || self.namespace.contains(['{', '}'])
        {
            return Err(Error::Usage(format!(
                "{self:?} is not a queue name: namespace and name must be non-empty and free of braces"
            )));
        }
        Ok(())
    }

    /// The queue's key prefix, `<namespace>:{<name>}`.
    ///
    /// ```
    /// assert_eq!(redkit_console::QueueRef::new("a", "b").base(), "a:{b}");
    /// ```
    pub fn base(&self) -> String {
        format!("{}:{{{}}}", self.namespace, self.name)
    }

    /// Parses a queue's key prefix (`ns:{name}`) or one of its keys (`ns:{name}:stats`).
    fn from_key(key: &str) -> Option<QueueRef> {
        let open = key.find(":{")?;
        let close = key[open + 2..].find('}')? + open + 2;
        let r = QueueRef::new(&key[..open], &key[open + 2..close]);
        r.check().ok().map(|()| r)
    }
}

impl fmt::Display for QueueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Processed and failed deliveries of one minute.
///
/// ```
/// let m = redkit_console::Minute { minute_ms: 0, processed: 3, failed: 1 };
/// assert_eq!(m.processed + m.failed, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Minute {
    /// The minute's start (Unix ms, server clock).
    pub minute_ms: u64,
    /// Deliveries acknowledged in it.
    pub processed: u64,
    /// Failed attempts in it (retries and deaths).
    pub failed: u64,
}

/// One queue's depths, counters, controls and last hour, as the overview shows it. A queue
/// whose keys cannot be read (a key of another type, foreign data) comes back with `error`
/// set and zero counts, so one bad queue never breaks a listing.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// let s = c.queue(&redkit_console::QueueRef::parse("emails")?).await?;
/// println!("{} ready, {} dead, paused: {}", s.ready, s.dead, s.paused);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct QueueSummary {
    /// `namespace/name`.
    pub queue: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// Messages ready now.
    pub ready: u64,
    /// Messages waiting for their due time.
    pub delayed: u64,
    /// Messages leased to workers.
    pub in_flight: u64,
    /// Messages in the dead set.
    pub dead: u64,
    /// Age of the message served next (ms), when one is ready.
    pub oldest_ready_age_ms: Option<u64>,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Since when (Unix ms), while paused.
    pub paused_since_ms: Option<u64>,
    /// The rate limit (`max` per `window_ms`), if set.
    pub rate_limit: Option<(u64, u64)>,
    /// The concurrency limit, if set.
    pub concurrency_limit: Option<u64>,
    /// Messages enqueued so far.
    pub enqueued: u64,
    /// Deliveries made.
    pub claimed: u64,
    /// Deliveries acknowledged.
    pub processed: u64,
    /// Failed attempts (retried + died).
    pub failed: u64,
    /// Messages moved to the dead set.
    pub died: u64,
    /// Dead messages replayed.
    pub replayed: u64,
    /// Dead messages purged.
    pub purged: u64,
    /// Expired leases taken back.
    pub reclaimed: u64,
    /// Processed and failed per minute, oldest first (the last hour; empty when unknown).
    pub per_minute: Vec<Minute>,
    /// Why the queue could not be read, when it could not.
    pub error: Option<String>,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn opt_ms(t: Option<SystemTime>) -> Option<u64> {
    t.map(ms)
}

/// Which messages of a queue to list ([`Console::messages`]).
///
/// ```
/// assert_eq!("dead".parse::<redkit_console::List>().unwrap(), redkit_console::List::Dead);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum List {
    /// Ready, in the order they are served.
    Ready,
    /// Waiting for their due time, soonest first.
    Delayed,
    /// Leased to workers, oldest lease deadline first.
    InFlight,
    /// The dead set, oldest first.
    Dead,
    /// Recently completed (when the queue keeps them), newest first.
    Completed,
}

impl List {
    /// Every list, in display order.
    pub const ALL: [List; 5] = [
        List::Ready,
        List::Delayed,
        List::InFlight,
        List::Dead,
        List::Completed,
    ];

    /// The list's name in URLs and the CLI.
    ///
    /// ```
    /// assert_eq!(redkit_console::List::InFlight.name(), "in_flight");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            List::Ready => "ready",
            List::Delayed => "delayed",
            List::InFlight => "in_flight",
            List::Dead => "dead",
            List::Completed => "completed",
        }
    }
}

impl std::str::FromStr for List {
    type Err = Error;
    fn from_str(s: &str) -> Result<List, Error> {
        List::ALL
            .into_iter()
            .find(|l| l.name() == s || (s == "in-flight" && *l == List::InFlight))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown list {s:?}: ready, delayed, in_flight, dead or completed"
                ))
            })
    }
}

/// One message of a list.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
/// for m in c.messages(&q, redkit_console::List::Dead, 0, 20).await? {
///     println!("{} {}", m.id, m.reason.unwrap_or_default());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MessageRow {
    /// The message id.
    pub id: String,
    /// Its state (`waiting`, `delayed`, `active`, `completed`, `dead`), `gone` when it left
    /// the list while it was read.
    pub state: String,
    /// The list's time: enqueued (ready), due (delayed), lease deadline (in flight), died,
    /// completed (Unix ms).
    pub at_ms: Option<u64>,
    /// Failed attempts so far.
    pub failures: u32,
    /// Why it died or last failed.
    pub reason: Option<String>,
    /// The payload as JSON (`None` when it does not decode: see `payload_error`).
    pub payload: Option<serde_json::Value>,
    /// Why the payload does not decode, when it does not.
    pub payload_error: Option<String>,
}

fn payload_fields(
    p: Result<serde_json::Value, String>,
) -> (Option<serde_json::Value>, Option<String>) {
    match p {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

/// Everything known about one job, as JSON-friendly values ([`Console::job`]).
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
/// let j = c.job(&q, "1764064000123-000001").await?;
/// println!("{} is {} after {} attempts", j.id, j.state, j.failures);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobView {
    /// `namespace/name` of its queue.
    pub queue: String,
    /// The id.
    pub id: String,
    /// `waiting`, `delayed`, `active`, `completed` or `dead`.
    pub state: String,
    /// When it becomes ready (delayed).
    pub due_ms: Option<u64>,
    /// The worker holding it (active).
    pub worker: Option<String>,
    /// When its lease runs out (active).
    pub lease_deadline_ms: Option<u64>,
    /// When it died (dead).
    pub died_ms: Option<u64>,
    /// The payload as JSON (`None` once deleted, e.g. completed).
    pub payload: Option<serde_json::Value>,
    /// When it was enqueued.
    pub enqueued_ms: Option<u64>,
    /// Its priority.
    pub priority: i32,
    /// Failed attempts so far.
    pub failures: u32,
    /// Failures after which it dies.
    pub max_attempts: u32,
    /// Times its lease ran out.
    pub stalls: u32,
    /// Every recorded attempt's error, newest first.
    pub errors: Vec<AttemptError>,
    /// When its current or last delivery was claimed.
    pub started_ms: Option<u64>,
    /// When it completed.
    pub finished_ms: Option<u64>,
    /// Its latest progress (`value`, `message`).
    pub progress: Option<(f64, String)>,
    /// The schedule that enqueued it.
    pub schedule: Option<String>,
    /// Its kept result, as JSON.
    pub result: Option<serde_json::Value>,
}

/// One failed attempt's error ([`JobView::errors`]).
///
/// ```
/// let e = redkit_console::AttemptError { at_ms: None, attempt: 1, error: "timeout".into() };
/// assert_eq!(e.attempt, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptError {
    /// When it failed (Unix ms), when recorded.
    pub at_ms: Option<u64>,
    /// Which attempt (1 = the first).
    pub attempt: u32,
    /// The error text.
    pub error: String,
}

fn view(queue: &QueueRef, job: rqueue::Job<Payload>) -> JobView {
    let mut v = JobView {
        queue: queue.to_string(),
        id: job.id.clone(),
        state: job.state.name().to_string(),
        due_ms: None,
        worker: None,
        lease_deadline_ms: None,
        died_ms: None,
        payload: job.message.as_ref().map(Payload::to_json),
        enqueued_ms: opt_ms(job.enqueued_at),
        priority: job.priority,
        failures: job.failures,
        max_attempts: job.max_attempts,
        stalls: job.stalls,
        errors: crate::history::errors(&job),
        started_ms: opt_ms(job.started_at),
        finished_ms: opt_ms(job.finished_at),
        progress: job.progress.as_ref().map(|p| (p.value, p.message.clone())),
        schedule: job.schedule.as_ref().map(|s| s.schedule.clone()),
        result: job
            .result_as::<Payload>()
            .ok()
            .flatten()
            .map(|p| p.to_json()),
    };
    match &job.state {
        JobState::Delayed { due } => v.due_ms = Some(ms(*due)),
        JobState::Active {
            worker,
            lease_deadline,
            ..
        } => {
            v.worker = Some(worker.clone());
            v.lease_deadline_ms = Some(ms(*lease_deadline));
        }
        JobState::Dead { died_at, .. } => v.died_ms = Some(ms(*died_at)),
        _ => {}
    }
    v
}

impl Console {
    /// An untyped handle on a queue (payloads read as [`Payload`]).
    pub(crate) fn handle(&self, q: &QueueRef) -> Result<Queue<Payload>, Error> {
        let mut cfg = QueueConfig::new(q.name.clone());
        cfg.namespace = q.namespace.clone();
        Ok(Queue::new(self.redis.clone(), cfg)?)
    }

    /// Every known queue: the registry, or — when the registry lists no queue (data written
    /// before it existed) — a bounded scan for keys shaped like a queue's (`*:{*}:stats`).
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let names: Vec<String> = c.queue_refs().await?.iter().map(|q| q.to_string()).collect();
    /// # Ok(()) }
    /// ```
    pub async fn queue_refs(&self) -> Result<Vec<QueueRef>, Error> {
        let (entries, _bad) = registry::registered(&self.redis, Some(Kind::Queue)).await?;
        let mut refs: Vec<QueueRef> = entries
            .into_iter()
            .filter_map(|e| {
                let r = QueueRef::new(e.namespace, e.name);
                r.check().ok().map(|()| r)
            })
            .collect();
        if refs.is_empty() {
            refs = self.scan_queue_refs(SCAN_BUDGET).await?;
        }
        refs.sort();
        refs.dedup();
        Ok(refs)
    }

    /// Queues found by scanning for their `stats` keys, examining at most `budget` keys.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let found = c.scan_queue_refs(100_000).await?;
    /// # drop(found); Ok(()) }
    /// ```
    pub async fn scan_queue_refs(&self, budget: usize) -> Result<Vec<QueueRef>, Error> {
        let mut pages = std::pin::pin!(redis_conn::scan_keys(&self.redis, "*:{*}:stats", 1000));
        let mut out = Vec::new();
        let mut seen = 0usize;
        while let Some(keys) = pages.try_next().await? {
            seen += keys.len().max(1);
            out.extend(
                keys.iter()
                    .filter_map(|k| k.as_str().and_then(QueueRef::from_key)),
            );
            if seen >= budget {
                break;
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Whether the queue has any key (or a registry entry).
    pub(crate) async fn queue_exists(&self, q: &QueueRef) -> Result<bool, Error> {
        q.check()?;
        let base = q.base();
        let keys: Vec<String> = [
            "stats", "jobs", "ready", "delayed", "inflight", "dead", "ctl",
        ]
        .iter()
        .map(|s| format!("{base}:{s}"))
        .collect();
        let n: u64 = self.redis.for_key(&base).exists(keys).await?;
        if n > 0 {
            return Ok(true);
        }
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Queue)).await?;
        Ok(entries.iter().any(|e| e.prefix == base))
    }

    /// The queue, or [`Error::NotFound`].
    pub(crate) async fn existing(&self, q: &QueueRef) -> Result<Queue<Payload>, Error> {
        if !self.queue_exists(q).await? {
            return Err(Error::NotFound {
                kind: "queue",
                name: q.to_string(),
            });
        }
        self.handle(q)
    }

    /// Every known queue's summary, sorted by name. A queue that cannot be read has `error`
    /// set; Redis being unreachable is an error of the whole call.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let dead: u64 = c.queues().await?.iter().map(|q| q.dead).sum();
    /// # Ok(()) }
    /// ```
    pub async fn queues(&self) -> Result<Vec<QueueSummary>, Error> {
        let refs = self.queue_refs().await?;
        let mut out: Vec<QueueSummary> = futures::stream::iter(refs)
            .map(|r| async move { self.summary(&r).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(out)
    }

    /// One queue's summary, or [`Error::NotFound`].
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let s = c.queue(&redkit_console::QueueRef::parse("emails")?).await?;
    /// # drop(s); Ok(()) }
    /// ```
    pub async fn queue(&self, q: &QueueRef) -> Result<QueueSummary, Error> {
        self.existing(q).await?;
        let s = self.summary(q).await?;
        match &s.error {
            Some(e) => Err(Error::Unreadable(format!("queue {q}: {e}"))),
            None => Ok(s),
        }
    }

    /// A summary; `Err` only when Redis itself failed.
    async fn summary(&self, q: &QueueRef) -> Result<QueueSummary, Error> {
        let mut out = QueueSummary {
            queue: q.to_string(),
            namespace: q.namespace.clone(),
            name: q.name.clone(),
            ..QueueSummary::default()
        };
        let queue = self.handle(q)?;
        let (stats, minutes) =
            futures::join!(queue.stats(), crate::history::per_minute(&queue, 60));
        let s = match stats {
            Ok(s) => s,
            Err(e) => {
                let e = Error::from(e);
                if e.is_redis() {
                    return Err(e);
                }
                out.error = Some(e.to_string());
                return Ok(out);
            }
        };
        out.ready = s.ready;
        out.delayed = s.delayed;
        out.in_flight = s.in_flight;
        out.dead = s.dead;
        out.oldest_ready_age_ms = s
            .head_age
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        out.paused = s.paused;
        out.paused_since_ms = opt_ms(s.paused_since);
        out.rate_limit = s.rate_limit.map(|r| {
            (
                r.max(),
                u64::try_from(r.window().as_millis()).unwrap_or(u64::MAX),
            )
        });
        out.concurrency_limit = s.concurrency_limit;
        out.enqueued = s.enqueued;
        out.claimed = s.claimed;
        out.processed = s.acked;
        out.failed = s.retried + s.died;
        out.died = s.died;
        out.replayed = s.replayed;
        out.purged = s.purged;
        out.reclaimed = s.reclaimed;
        match minutes {
            Ok(m) => out.per_minute = m,
            Err(e) => {
                let e = Error::from(e);
                if e.is_redis() {
                    return Err(e);
                }
                out.error = Some(e.to_string());
            }
        }
        Ok(out)
    }

    /// A page of one list of a queue.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let ready = c.messages(&q, redkit_console::List::Ready, 0, 50).await?;
    /// # drop(ready); Ok(()) }
    /// ```
    pub async fn messages(
        &self,
        q: &QueueRef,
        list: List,
        offset: usize,
        count: usize,
    ) -> Result<Vec<MessageRow>, Error> {
        let queue = self.existing(q).await?;
        let count = count.clamp(1, 1000);
        match list {
            List::Dead => Ok(queue
                .dead_letters(offset, count)
                .await?
                .into_iter()
                .map(|d| {
                    let (payload, payload_error) = payload_fields(d.message.map(|p| p.to_json()));
                    MessageRow {
                        id: d.id,
                        state: "dead".into(),
                        at_ms: Some(ms(d.died_at)),
                        failures: 0,
                        reason: Some(d.reason),
                        payload,
                        payload_error,
                    }
                })
                .collect()),
            List::Completed => Ok(queue
                .completed(offset, count)
                .await?
                .into_iter()
                .map(|d| {
                    let (payload, payload_error) = payload_fields(d.message.map(|p| p.to_json()));
                    MessageRow {
                        id: d.id,
                        state: "completed".into(),
                        at_ms: Some(ms(d.completed_at)),
                        failures: 0,
                        reason: None,
                        payload,
                        payload_error,
                    }
                })
                .collect()),
            List::Ready | List::Delayed | List::InFlight => {
                let key = format!(
                    "{}:{}",
                    q.base(),
                    match list {
                        List::Ready => "ready",
                        List::Delayed => "delayed",
                        _ => "inflight",
                    }
                );
                let start = i64::try_from(offset).unwrap_or(i64::MAX);
                let stop = start.saturating_add(i64::try_from(count).unwrap_or(1000) - 1);
                let ids: Vec<Value> = self
                    .redis
                    .for_key(&key)
                    .zrange(&key, start, stop, None, false, None, true)
                    .await?;
                let pairs: Vec<(String, f64)> = ids
                    .chunks(2)
                    .filter_map(|c| {
                        let id = c.first()?.as_string()?;
                        let score = c.get(1)?.as_f64().unwrap_or(0.0);
                        Some((id, score))
                    })
                    .collect();
                let rows = futures::stream::iter(pairs)
                    .map(|(id, score)| {
                        let queue = queue.clone();
                        async move { (queue.job(&id).await, id, score) }
                    })
                    .buffered(16)
                    .collect::<Vec<_>>()
                    .await;
                let mut out = Vec::new();
                for (job, id, score) in rows {
                    let at = match list {
                        List::Ready => rqueue_id_ms(&id),
                        _ => Some(score.max(0.0) as u64),
                    };
                    out.push(match job {
                        Ok(j) => MessageRow {
                            id,
                            state: j.state.name().into(),
                            at_ms: at,
                            failures: j.failures,
                            reason: j.last_error.clone(),
                            payload_error: j
                                .message
                                .is_none()
                                .then(|| "payload missing or not MessagePack".to_string()),
                            payload: j.message.as_ref().map(Payload::to_json),
                        },
                        Err(rqueue::Error::UnknownJob { .. }) => MessageRow {
                            id,
                            state: "gone".into(),
                            at_ms: at,
                            failures: 0,
                            reason: None,
                            payload: None,
                            payload_error: Some("left the list while it was read".into()),
                        },
                        Err(e) => return Err(e.into()),
                    });
                }
                Ok(out)
            }
        }
    }

    /// One job, or [`Error::NotFound`] for the queue or the job.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// println!("{}", serde_json::to_string_pretty(&c.job(&q, "1764064000123-000001").await?).unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub async fn job(&self, q: &QueueRef, id: &str) -> Result<JobView, Error> {
        let queue = self.existing(q).await?;
        let job = queue.job(id.trim()).await?;
        Ok(view(q, job))
    }

    /// Looks for a job id in every known queue (ids are unique per queue; the same id in two
    /// queues lists both).
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// for j in c.find_job("1764064000123-000001").await? { println!("{} in {}", j.state, j.queue); }
    /// # Ok(()) }
    /// ```
    pub async fn find_job(&self, id: &str) -> Result<Vec<JobView>, Error> {
        let id = id.trim().to_string();
        let refs = self.queue_refs().await?;
        let found: Vec<Option<JobView>> = futures::stream::iter(refs)
            .map(|r| {
                let id = id.clone();
                async move {
                    let queue = self.handle(&r)?;
                    match queue.job(&id).await {
                        Ok(j) => Ok(Some(view(&r, j))),
                        Err(rqueue::Error::UnknownJob { .. }) => Ok(None),
                        Err(e) => {
                            let e = Error::from(e);
                            if e.is_redis() { Err(e) } else { Ok(None) }
                        }
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Moves the given dead messages back to ready; returns how many were dead.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let n = c.replay(&q, &["1764064000123-000001".to_string()]).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn replay(&self, q: &QueueRef, ids: &[String]) -> Result<u64, Error> {
        let queue = self.existing(q).await?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok(queue.replay(&ids).await?)
    }

    /// Replays the whole dead set, in atomic batches of up to 1,000, calling `progress` with
    /// the running total after each batch; returns the total.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let n = c.replay_all(&q, |done| eprintln!("{done} replayed")).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn replay_all(
        &self,
        q: &QueueRef,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<u64, Error> {
        let queue = self.existing(q).await?;
        let mut total = 0;
        loop {
            let page = queue.dead_letters(0, 1000).await?;
            if page.is_empty() {
                return Ok(total);
            }
            let ids: Vec<&str> = page.iter().map(|d| d.id.as_str()).collect();
            let n = queue.replay(&ids).await?;
            total += n;
            progress(total);
            if n == 0 {
                // Someone else replayed or removed them meanwhile; the next page decides.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Replays every dead message of every known queue; returns (queue, replayed) pairs for
    /// the queues that had any.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// for (q, n) in c.replay_everything().await? { println!("{q}: {n}"); }
    /// # Ok(()) }
    /// ```
    pub async fn replay_everything(&self) -> Result<Vec<(String, u64)>, Error> {
        let mut out = Vec::new();
        for r in self.queue_refs().await? {
            let n = self.replay_all(&r, |_| {}).await?;
            if n > 0 {
                out.push((r.to_string(), n));
            }
        }
        Ok(out)
    }

    /// Deletes the given dead messages for good; returns how many were deleted. Messages that
    /// are not dead are left alone (they count as not deleted).
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// c.delete_dead(&q, &["1764064000123-000001".to_string()]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_dead(&self, q: &QueueRef, ids: &[String]) -> Result<u64, Error> {
        let queue = self.existing(q).await?;
        let mut n = 0;
        for id in ids {
            match queue.job(id).await {
                Ok(j) if matches!(j.state, JobState::Dead { .. }) => {
                    queue.remove(id).await?;
                    n += 1;
                }
                Ok(_) | Err(rqueue::Error::UnknownJob { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Deletes the whole dead set; returns how many messages were deleted.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let n = c.purge_dead(&q).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn purge_dead(&self, q: &QueueRef) -> Result<u64, Error> {
        Ok(self.existing(q).await?.purge_dead().await?)
    }

    /// Pauses (`true`) or resumes (`false`) a queue.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// c.set_paused(&q, true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_paused(&self, q: &QueueRef, paused: bool) -> Result<(), Error> {
        let queue = self.existing(q).await?;
        if paused {
            queue.pause().await?;
        } else {
            queue.resume().await?;
        }
        Ok(())
    }
}

fn rqueue_id_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_from_names_and_keys() {
        assert_eq!(
            QueueRef::from_key("rq:{emails}:stats"),
            Some(QueueRef::new("rq", "emails"))
        );
        assert_eq!(
            QueueRef::from_key("a:b:{c:d}:stats"),
            Some(QueueRef::new("a:b", "c:d"))
        );
        assert_eq!(QueueRef::from_key("plain:key"), None);
        assert_eq!(QueueRef::from_key(":{x}:stats"), None);
        assert!(QueueRef::parse("").is_err());
        assert_eq!(
            QueueRef::parse("ns/a/b").ok(),
            Some(QueueRef::new("ns", "a/b"))
        );
    }
}
