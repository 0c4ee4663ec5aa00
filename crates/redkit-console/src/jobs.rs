//! One job as the console shows it ([`JobView`]): by queue and id, or looked up in every
//! queue by id alone.

use futures::{StreamExt, TryStreamExt};
use rqueue::JobState;
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;
use crate::history::{self, AttemptError};
use crate::millis::{ms, opt_ms};
use crate::payload::Payload;
use crate::queue_ref::QueueRef;
use crate::queues::CONCURRENCY;

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
        errors: history::errors(&job),
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
}
