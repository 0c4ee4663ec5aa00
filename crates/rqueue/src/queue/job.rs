//! Jobs by id: where a job is ([`Queue::job`] → [`Job`], [`JobState`]), its progress
//! ([`Progress`], [`Delivery::progress`]) and kept result ([`Queue::wait_result`]), and
//! cancelling or removing it ([`Queue::cancel`], [`Queue::remove`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::attempts::{self, AttemptError};
use super::core::{Inner, Queue, script_keys};
use super::delivery::Delivery;
use crate::error::Error;

static JOB: Script = Script::new("rqueue_job", include_str!("../lua/job.lua"));
static PROGRESS: Script = Script::new("rqueue_progress", include_str!("../lua/progress.lua"));
static REMOVE: Script = Script::new("rqueue_remove", include_str!("../lua/remove.lua"));

/// Longest progress message kept (bytes; longer ones are cut at a character boundary).
const MAX_PROGRESS_MESSAGE: usize = 1024;

/// Where a job is now.
///
/// ```
/// let s = rqueue::JobState::Waiting;
/// assert_eq!(s.name(), "waiting");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobState {
    /// Ready: it is handed out by the next claims, in priority then FIFO order.
    Waiting,
    /// Waiting for its due time (a delay, or the backoff before a retry).
    Delayed {
        /// When it becomes ready (server clock).
        due: SystemTime,
    },
    /// Leased to a worker.
    Active {
        /// The claiming client's worker name (`<host>-<pid>-<random>`).
        worker: String,
        /// When this delivery was claimed (server clock).
        claimed_at: SystemTime,
        /// When the lease runs out unless renewed (server clock).
        lease_deadline: SystemTime,
    },
    /// Acknowledged; known while its record is kept
    /// ([`QueueConfig::keep_results`](crate::QueueConfig::keep_results) or
    /// [`QueueConfig::keep_completed`](crate::QueueConfig::keep_completed)).
    Completed {
        /// When it was acknowledged (server clock).
        finished_at: SystemTime,
    },
    /// In the dead set.
    Dead {
        /// When it died (server clock).
        died_at: SystemTime,
        /// Why: the last error, `stalled`, or `decode: …`.
        reason: String,
    },
}

impl JobState {
    /// The state's name: `waiting`, `delayed`, `active`, `completed` or `dead`.
    ///
    /// ```
    /// assert_eq!(rqueue::JobState::Waiting.name(), "waiting");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Delayed { .. } => "delayed",
            JobState::Active { .. } => "active",
            JobState::Completed { .. } => "completed",
            JobState::Dead { .. } => "dead",
        }
    }
}

/// A progress report of a running job: a number (a percentage, a count: the handler's
/// choice) and a short message.
///
/// ```
/// let p = rqueue::Progress { value: 40.0, message: "resizing".into() };
/// assert_eq!(p.value, 40.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The number reported.
    pub value: f64,
    /// The message reported (at most 1 KiB).
    pub message: String,
}

impl Progress {
    pub(super) fn parse(s: &str) -> Option<Progress> {
        let (value, message) = s.split_once('|')?;
        Some(Progress {
            value: value.parse().ok()?,
            message: message.to_string(),
        })
    }
}

/// The schedule tick that enqueued a job ([`Scheduler`](crate::Scheduler)).
///
/// ```
/// # fn show(t: &rqueue::ScheduleTick) {
/// println!("{} at {:?}", t.schedule, t.tick);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTick {
    /// The schedule's name.
    pub schedule: String,
    /// The tick's time.
    pub tick: SystemTime,
}

/// What a queue knows about one job ([`Queue::job`]).
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<String>, id: &str) -> Result<(), rqueue::Error> {
/// let job = q.job(id).await?;
/// println!("{} is {}, {} failed attempts", job.id, job.state.name(), job.failures);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Job<T> {
    /// The id.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// The message, while it is stored (not for a completed job whose payload was deleted)
    /// and decodes as `T` (`None` otherwise: a payload that does not decode as `T` does not
    /// fail [`Queue::job`]).
    pub message: Option<T>,
    /// When it was enqueued (server clock; from the id).
    pub enqueued_at: Option<SystemTime>,
    /// Its priority.
    pub priority: i32,
    /// Failed attempts so far (stalls not counted).
    pub failures: u32,
    /// Failures after which it dies.
    pub max_attempts: u32,
    /// Times its lease ran out (worker died or stalled).
    pub stalls: u32,
    /// The last error of a failed attempt (or the reason it died): the newest of
    /// [`Job::errors`].
    pub last_error: Option<String>,
    /// The errors of its failed attempts, newest first (the last 10, at most 8 KiB in all):
    /// handler errors, `stalled` for an expired lease, the reason it died. Empty once it
    /// completed, and after a replay.
    pub errors: Vec<AttemptError>,
    /// When its current (active) or last (completed) delivery was claimed.
    pub started_at: Option<SystemTime>,
    /// When it completed.
    pub finished_at: Option<SystemTime>,
    /// Its latest progress report.
    pub progress: Option<Progress>,
    /// The schedule tick that enqueued it, if one did.
    pub schedule: Option<ScheduleTick>,
    /// Its result as kept (MessagePack), for a completed job with
    /// [`QueueConfig::keep_results`](crate::QueueConfig::keep_results).
    pub result: Option<Vec<u8>>,
}

impl<T> Job<T> {
    /// The kept result decoded as `R`: `None` when none is kept, [`Error::Protocol`] when it
    /// does not decode as `R`.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>, id: &str) -> Result<(), rqueue::Error> {
    /// let square: Option<u64> = q.job(id).await?.result_as()?;
    /// # Ok(()) }
    /// ```
    pub fn result_as<R: DeserializeOwned>(&self) -> Result<Option<R>, Error> {
        self.result
            .as_deref()
            .map(|b| {
                rmp_serde::from_slice(b).map_err(|e| {
                    Error::Protocol(format!(
                        "the result of job {} does not decode: {e}",
                        self.id
                    ))
                })
            })
            .transpose()
    }
}

fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn value_ms(v: &Value) -> Option<SystemTime> {
    v.as_u64()
        .or_else(|| {
            v.as_string()
                .and_then(|s| s.parse::<f64>().ok().map(|f| f as u64))
        })
        .map(at_ms)
}

/// The enqueue time an id carries (`<13-digit ms>-<seq>`).
pub(crate) fn id_time(id: &str) -> Option<SystemTime> {
    id.split('-').next()?.parse().ok().map(at_ms)
}

/// A delivery token's parts: worker name, claim time (`<claimer>:<delivery>:<serial>:<ms>`).
pub(crate) fn token_parts(token: &str) -> Option<(&str, SystemTime)> {
    let mut parts = token.split(':');
    let worker = parts.next()?;
    let ms = parts.nth(2)?.parse().ok()?;
    Some((worker, at_ms(ms)))
}

pub(super) fn check_id(id: &str) -> Result<(), Error> {
    let mut parts = id.split('-');
    let ok = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(ms), Some(seq), None)
            if ms.len() == 13 && seq.len() == 6
                && ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
    );
    if ok {
        Ok(())
    } else {
        Err(Error::UnknownJob { id: id.to_string() })
    }
}

/// A job from the reply of `lua/job.lua` (`[state, score, payload, meta, errors, progress,
/// origin, token, server ms, result record pairs…]`). Anything a reply may hold — a field of
/// another type, a short reply, foreign data in the meta — gives defaults or
/// [`Error::Protocol`], never a panic.
pub(super) fn job_from_reply<T: DeserializeOwned>(
    id: &str,
    reply: &[Value],
) -> Result<Job<T>, Error> {
    let text = |i: usize| {
        reply
            .get(i)
            .and_then(Value::as_string)
            .filter(|s| !s.is_empty())
    };
    let score = reply.get(1).and_then(value_ms);
    let mut record = std::collections::HashMap::new();
    for pair in reply.get(9..).unwrap_or_default().chunks(2) {
        if let [name, value] = pair
            && let Some(name) = name.as_string()
        {
            record.insert(name, value.clone());
        }
    }
    let rec_text = |name: &str| {
        record
            .get(name)
            .and_then(Value::as_string)
            .filter(|s| !s.is_empty())
    };
    let rec_ms = |name: &str| record.get(name).and_then(value_ms);
    let token = text(7);
    let token_info = token.as_deref().and_then(token_parts);
    let errors = attempts::parse(text(4).as_deref().unwrap_or_default());
    let last_error = errors.first().map(|e| e.error.clone());
    let state = match (text(0).as_deref(), score) {
        (Some("waiting"), _) => JobState::Waiting,
        (Some("delayed"), Some(due)) => JobState::Delayed { due },
        (Some("active"), Some(lease_deadline)) => {
            let (worker, claimed_at) = token_info
                .map(|(w, at)| (w.to_string(), at))
                .unwrap_or_else(|| (String::new(), lease_deadline));
            JobState::Active {
                worker,
                claimed_at,
                lease_deadline,
            }
        }
        (Some("dead"), Some(died_at)) => JobState::Dead {
            died_at,
            reason: last_error.clone().unwrap_or_default(),
        },
        (Some("completed"), finished) => match finished.or_else(|| rec_ms("finished")) {
            Some(finished_at) => JobState::Completed { finished_at },
            None => {
                return Err(Error::Protocol(format!(
                    "job {id}: completed without a time"
                )));
            }
        },
        (Some("unknown"), _) => return Err(Error::UnknownJob { id: id.to_string() }),
        (state, _) => {
            return Err(Error::Protocol(format!(
                "job {id}: state {state:?} without a time"
            )));
        }
    };
    let meta = text(3).unwrap_or_default();
    let mut m = meta.split('|');
    let mut num = || m.next().and_then(|v| v.parse::<i64>().ok());
    let priority = num().and_then(|v| i32::try_from(v).ok()).unwrap_or(0);
    let mut failures = num().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let max_attempts = num().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let stalls = num().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    if meta.is_empty() {
        failures = rec_text("failures")
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
    }
    let message = reply
        .get(2)
        .and_then(Value::as_bytes)
        .filter(|b| !b.is_empty())
        .and_then(|b| rmp_serde::from_slice(b).ok());
    let started_at = match &state {
        JobState::Active { claimed_at, .. } => Some(*claimed_at),
        JobState::Completed { .. } => rec_ms("claimed"),
        _ => None,
    };
    let finished_at = match &state {
        JobState::Completed { finished_at } => Some(*finished_at),
        _ => None,
    };
    let progress = text(5)
        .or_else(|| rec_text("progress"))
        .as_deref()
        .and_then(Progress::parse);
    let schedule = text(6)
        .or_else(|| rec_text("origin"))
        .as_deref()
        .and_then(|o| {
            let (tick, name) = o.split_once('|')?;
            Some(ScheduleTick {
                schedule: name.to_string(),
                tick: at_ms(tick.parse().ok()?),
            })
        });
    let result = match &state {
        JobState::Completed { .. } => record
            .get("result")
            .and_then(Value::as_bytes)
            .filter(|b| !b.is_empty())
            .map(<[u8]>::to_vec),
        _ => None,
    };
    Ok(Job {
        id: id.to_string(),
        state,
        message,
        enqueued_at: id_time(id),
        priority,
        failures,
        max_attempts,
        stalls,
        last_error,
        errors,
        started_at,
        finished_at,
        progress,
        schedule,
        result,
    })
}

/// Stores a progress report for a delivery (token-checked).
async fn report_progress(
    inner: &Inner,
    id: &str,
    token: &str,
    value: f64,
    message: &str,
) -> Result<(), Error> {
    if !value.is_finite() {
        return Err(Error::Config(format!(
            "progress must be a finite number, not {value}"
        )));
    }
    let mut cut = message.len().min(MAX_PROGRESS_MESSAGE);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let k = &inner.keys;
    let stored: i64 = PROGRESS
        .run(
            inner.redis.pool(),
            script_keys!(k; lease, progress),
            vec![
                id.to_string(),
                token.to_string(),
                format!("{value}|{}", &message[..cut]),
            ],
        )
        .instrument(tracing::debug_span!("rqueue.progress", queue = %inner.cfg.name, id))
        .await?;
    if stored == 1 {
        Ok(())
    } else {
        Err(Error::LeaseLost { id: id.to_string() })
    }
}

/// A running job's handle for progress reports, given to worker handlers in
/// [`JobInfo`](crate::JobInfo).
#[derive(Clone)]
pub(crate) struct Reporter {
    inner: Arc<Inner>,
    token: String,
}

impl Reporter {
    /// Stores a progress report for job `id` (this reporter's delivery).
    pub(crate) async fn report(&self, id: &str, value: f64, message: &str) -> Result<(), Error> {
        report_progress(&self.inner, id, &self.token, value, message).await
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Delivery<T> {
    /// Reports progress (a number and a short message, cut at 1 KiB), visible to every
    /// client through [`Queue::job`] at once. [`Error::LeaseLost`] when the lease was lost;
    /// [`Error::Config`] for a NaN or infinite number (nothing stored).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? {
    ///     d.progress(50.0, "half way").await?;
    ///     d.ack().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn progress(&self, value: f64, message: &str) -> Result<(), Error> {
        report_progress(&self.queue.inner, &self.id, &self.token, value, message).await
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// A progress handle for the delivery holding `token`.
    pub(crate) fn reporter(&self, token: &str) -> Reporter {
        Reporter {
            inner: self.inner.clone(),
            token: token.to_string(),
        }
    }

    /// Where the job `id` is and what is known about it, in one round trip.
    /// [`Error::UnknownJob`] when the queue has no such job (never had it, or it completed
    /// and no record is kept, or it was removed), also for a malformed id.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
    /// let id = q.enqueue(&"hello".to_string()).await?;
    /// assert_eq!(q.job(&id).await?.state, rqueue::JobState::Waiting);
    /// # Ok(()) }
    /// ```
    pub async fn job(&self, id: &str) -> Result<Job<T>, Error> {
        check_id(id)?;
        let k = &self.inner.keys;
        let result_key = k.result(id);
        let mut keys = script_keys!(
            k; jobs, meta, ready, delayed, inflight, lease, dead, reasons, completed, progress,
            origin
        );
        keys.push(result_key.as_str());
        let reply: Vec<Value> = JOB
            .run(self.inner.redis.pool(), keys, vec![id])
            .instrument(tracing::debug_span!("rqueue.job", queue = %self.inner.cfg.name, id))
            .await?;
        job_from_reply(id, &reply)
    }

    async fn remove_as(&self, id: &str, mode: &str) -> Result<String, Error> {
        check_id(id)?;
        let k = &self.inner.keys;
        let result_key = k.result(id);
        let mut keys = script_keys!(
            k; jobs, meta, ready, delayed, inflight, dead, reasons, completed, progress, origin
        );
        keys.push(result_key.as_str());
        keys.push(k.stats.as_str());
        let from: String = REMOVE
            .run(self.inner.redis.pool(), keys, vec![id, mode])
            .instrument(
                tracing::debug_span!("rqueue.remove", queue = %self.inner.cfg.name, id, mode),
            )
            .await?;
        match from.as_str() {
            "unknown" | "not-dead" => Err(Error::UnknownJob { id: id.to_string() }),
            "active" => Err(Error::JobActive { id: id.to_string() }),
            kept if kept.starts_with("kept:") => Err(Error::NotCancellable {
                id: id.to_string(),
                state: kept.trim_start_matches("kept:").to_string(),
            }),
            _ => Ok(from),
        }
    }

    /// Cancels a waiting or delayed job: it is deleted and will never run. Returns the state
    /// it was in (`waiting` or `delayed`). [`Error::JobActive`] when a worker holds it (it is
    /// left alone), [`Error::NotCancellable`] when it is dead or completed (see
    /// [`Queue::remove`]), [`Error::UnknownJob`] when there is no such job.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
    /// let id = q.message(&"later".to_string()).delay(std::time::Duration::from_secs(60)).send().await?;
    /// assert_eq!(q.cancel(&id).await?, "delayed");
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, id: &str) -> Result<String, Error> {
        self.remove_as(id, "cancel").await
    }

    /// Deletes a job that is waiting, delayed, dead or completed (its kept record included).
    /// Returns the state it was in. [`Error::JobActive`] when a worker holds it (it is left
    /// alone), [`Error::UnknownJob`] when there is no such job.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<String>, id: &str) -> Result<(), rqueue::Error> {
    /// let was = q.remove(id).await?;
    /// println!("removed a {was} job");
    /// # Ok(()) }
    /// ```
    pub async fn remove(&self, id: &str) -> Result<String, Error> {
        self.remove_as(id, "remove").await
    }

    /// Deletes dead messages for good, each in one script that removes it only if it is
    /// still in the dead set (a message replayed meanwhile is left alone). Returns how many
    /// were deleted; ids that are not dead (or not known) are skipped.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
    /// let n = q.delete_dead(&["0001764064000123-000000"]).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn delete_dead(&self, ids: &[&str]) -> Result<u64, Error> {
        let mut n = 0;
        for id in ids {
            match self.remove_as(id, "dead").await {
                Ok(_) => n += 1,
                Err(Error::UnknownJob { .. } | Error::JobActive { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Waits up to `timeout` for job `id` to finish and returns its result (what the handler
    /// returned, or what [`Delivery::ack_with`] was given) decoded as `R`: request / response
    /// over the queue. Event-driven: the ack (or the death) of a job is announced on the
    /// queue's channel `<namespace>:{<name>}:done`, which one subscriber connection per
    /// [`Queue`] handle listens to; a missed message (reconnect) makes every waiter re-check.
    ///
    /// Needs [`QueueConfig::keep_results`](crate::QueueConfig::keep_results) (else
    /// [`Error::Config`]). [`Error::JobDead`] when the job died, [`Error::WaitTimeout`] when
    /// it did not finish in time (it keeps running), [`Error::UnknownJob`] when there is no
    /// such job (or its record expired), [`Error::NoResult`] when it completed without a
    /// kept result.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let id = q.enqueue(&7).await?;
    /// let square: u64 = q.wait_result(&id, std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_result<R: DeserializeOwned>(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<R, Error> {
        if self.inner.cfg.keep_results.is_none() {
            return Err(Error::Config(
                "wait_result needs QueueConfig::keep_results (results are not kept)".into(),
            ));
        }
        check_id(id)?;
        let deadline = Instant::now() + timeout;
        let mut rx = self.done_events().await?;
        loop {
            let job = self.job(id).await?;
            match &job.state {
                JobState::Completed { .. } => {
                    return match job.result_as::<R>()? {
                        Some(r) => Ok(r),
                        None => Err(Error::NoResult { id: id.to_string() }),
                    };
                }
                JobState::Dead { reason, .. } => {
                    return Err(Error::JobDead {
                        id: id.to_string(),
                        reason: reason.clone(),
                    });
                }
                _ => {}
            }
            // Until our id (or a "re-check") is announced, or the time is up.
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::WaitTimeout { id: id.to_string() });
                }
                match tokio::time::timeout(left, rx.recv()).await {
                    Err(_) => return Err(Error::WaitTimeout { id: id.to_string() }),
                    Ok(Ok(ids)) if &*ids != "*" && !ids.split(' ').any(|i| i == id) => continue,
                    Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        break;
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                        // The listener ended: fall back to re-checking now and then.
                        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
                        break;
                    }
                }
            }
        }
    }

    /// The announcements of finished jobs (ids, space-separated; `*` after a possible loss),
    /// from this handle's one listener, started on first use.
    async fn done_events(&self) -> Result<tokio::sync::broadcast::Receiver<Arc<str>>, Error> {
        let inner = &self.inner;
        let (_, tx) = inner
            .done
            .get_or_try_init(|| async {
                let (tx, _) = tokio::sync::broadcast::channel::<Arc<str>>(1024);
                let sender = tx.clone();
                let sub = inner
                    .redis
                    .listen(&inner.keys.done, move |d| {
                        let msg: Arc<str> = match d {
                            redis_conn::Delivery::Message(m) => Arc::from(m),
                            redis_conn::Delivery::Missed => Arc::from("*"),
                        };
                        let _ = sender.send(msg);
                        std::ops::ControlFlow::Continue(())
                    })
                    .await?;
                Ok::<_, Error>((sub, tx))
            })
            .await?;
        Ok(tx.subscribe())
    }
}
