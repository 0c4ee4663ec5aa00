//! The [`Scheduler`]: stores schedules ([`Scheduler::add`], [`Scheduler::remove`],
//! [`Scheduler::list`]) and enqueues their ticks ([`Scheduler::run`]), each tick exactly once
//! however many schedulers run.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;

use super::def::{Schedule, time_of};
use crate::error::Error;
use crate::queue::Queue;

static LOAD: Script = Script::new(
    "rqueue_schedule_load",
    include_str!("../lua/schedule_load.lua"),
);
static ADD: Script = Script::new(
    "rqueue_schedule_add",
    include_str!("../lua/schedule_add.lua"),
);
static REMOVE: Script = Script::new(
    "rqueue_schedule_remove",
    include_str!("../lua/schedule_remove.lua"),
);
/// ids.lua (message ids) is prepended, as for the enqueue script.
static TICK: Script = Script::new(
    "rqueue_tick",
    concat!(
        include_str!("../lua/ids.lua"),
        include_str!("../lua/tick.lua")
    ),
);

/// Jobs per tick script call (the script's limit).
const TICK_BATCH: usize = 1000;

/// Pause after a failed Redis call before the scheduler tries again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Settings of a [`Scheduler`].
///
/// ```
/// use std::time::Duration;
/// let mut cfg = rqueue::SchedulerConfig::default();
/// cfg.grace = Duration::from_secs(5);
/// assert_eq!(cfg.reload, Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerConfig {
    /// Longest time [`Scheduler::run`] sleeps before reading the schedules again (to pick up
    /// added, replaced and removed ones); it also wakes for every tick it knows of. At least
    /// 1 ms. Default 500 ms. Keep it below [`SchedulerConfig::grace`]: a schedule added while
    /// the schedulers sleep is seen up to `reload` later, and a first tick found later than
    /// `grace` counts as missed.
    pub reload: Duration,
    /// How late a tick may be found and still count as on time: a tick found more than
    /// `grace` after its time is *missed* and follows the schedule's [`Missed`](crate::Missed)
    /// policy. Default 1 s.
    pub grace: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> SchedulerConfig {
        SchedulerConfig {
            reload: Duration::from_millis(500),
            grace: Duration::from_secs(1),
        }
    }
}

/// One stored schedule, as [`Scheduler::list`] reports it.
///
/// ```no_run
/// # async fn demo(s: rqueue::Scheduler<String>) -> Result<(), rqueue::Error> {
/// for info in s.list().await? {
///     match &info.schedule {
///         Ok(schedule) => println!("{}: {schedule}, next tick {:?}", info.name, info.next_tick),
///         Err(why) => println!("{}: not runnable: {why}", info.name),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScheduleInfo<T> {
    /// The schedule's name.
    pub name: String,
    /// The schedule, or why its stored definition could not be read (another format or
    /// version, or a payload that is not a `T`): [`Scheduler::run`] skips such an entry.
    pub schedule: Result<Schedule, String>,
    /// The payload of its jobs (`None` when the definition could not be read).
    pub payload: Option<T>,
    /// The newest tick handled (enqueued or skipped); until the first one, when the schedule
    /// was added (both by the Redis server's clock). `None` when Redis holds no such record
    /// (a scheduler then starts the schedule from its next pass).
    pub last_handled: Option<SystemTime>,
    /// The first tick after `last_handled`: the next one to handle (in the past while every
    /// scheduler is down).
    pub next_tick: Option<SystemTime>,
}

/// What [`Scheduler::run`] did.
///
/// ```
/// let r = rqueue::SchedulerReport::default();
/// assert_eq!(r.enqueued + r.skipped + r.refused, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulerReport {
    /// Jobs this scheduler enqueued (one per tick, or one for a group of missed ticks with
    /// [`Missed::RunOnce`](crate::Missed::RunOnce)).
    pub enqueued: u64,
    /// Missed ticks this scheduler skipped (not enqueued, per the schedule's policy).
    pub skipped: u64,
    /// Tick calls refused because the schedule's state had changed since this scheduler
    /// read it: another scheduler handled the tick first, or the schedule was replaced or
    /// removed. Nothing was enqueued by them.
    pub refused: u64,
}

/// Keys of the queue the scripts use, all under its hash tag.
struct Keys {
    jobs: String,
    meta: String,
    ready: String,
    seq: String,
    stats: String,
    signal: String,
    ctl: String,
    schedules: String,
    sched_last: String,
    origin: String,
}

/// Periodic jobs for a queue: schedules stored in Redis next to the queue, and a loop
/// ([`Scheduler::run`]) that enqueues their ticks. Any number of schedulers (threads,
/// processes, hosts) may run over the same queue: each tick is enqueued by one script that
/// first compares-and-sets the schedule's last handled tick, so exactly one of them enqueues
/// it, and a scheduler dying at any moment neither loses nor doubles a tick. Cheap to clone.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), rqueue::Error> {
/// use std::time::Duration;
/// use rqueue::{Missed, Queue, QueueConfig, Schedule, Scheduler};
/// let reports: Queue<String> = Queue::new(redis, QueueConfig::new("reports"))?;
/// let scheduler = Scheduler::new(reports);
/// scheduler
///     .add("nightly", &Schedule::cron("0 0 3 * * *")?.missed(Missed::RunOnce), &"full".to_string())
///     .await?;
/// scheduler
///     .add("heartbeat", &Schedule::every(Duration::from_secs(10)), &"ping".to_string())
///     .await?;
/// let report = scheduler.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// println!("{} enqueued, {} skipped", report.enqueued, report.skipped);
/// # Ok(()) }
/// ```
pub struct Scheduler<T> {
    queue: Queue<T>,
    cfg: SchedulerConfig,
    keys: std::sync::Arc<Keys>,
}

impl<T> Clone for Scheduler<T> {
    fn clone(&self) -> Scheduler<T> {
        Scheduler {
            queue: self.queue.clone(),
            cfg: self.cfg.clone(),
            keys: self.keys.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Scheduler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("queue", &self.queue)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// What the load script read.
struct Snapshot {
    now: u64,
    definitions: Vec<(String, Vec<u8>)>,
    last: HashMap<String, u64>,
}

/// A definition as the run loop keeps it: its stored bytes and what they decode to.
struct Entry<T> {
    raw: Vec<u8>,
    decoded: Result<(Schedule, T, Vec<u8>), String>,
}

/// Whether the Redis ACL refused the call.
fn denied(e: &Error) -> bool {
    matches!(e, Error::Redis(redis_conn::Error::NoPermission(_)))
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains(['{', '}']) {
        return Err(Error::InvalidSchedule {
            name: Some(name.to_string()),
            reason: "a schedule name must be non-empty and free of braces".into(),
        });
    }
    Ok(())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn text(v: &Value) -> Option<String> {
    v.as_bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(str::to_string)
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Scheduler<T> {
    /// A scheduler for `queue` with the default [`SchedulerConfig`].
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<String>) {
    /// let scheduler = rqueue::Scheduler::new(q);
    /// # let _ = scheduler; }
    /// ```
    pub fn new(queue: Queue<T>) -> Scheduler<T> {
        let base = queue.base_key().to_string();
        let k = |s: &str| format!("{base}:{s}");
        let keys = Keys {
            jobs: k("jobs"),
            meta: k("meta"),
            ready: k("ready"),
            seq: k("seq"),
            stats: k("stats"),
            signal: k("signal"),
            ctl: k("ctl"),
            schedules: k("schedules"),
            sched_last: k("sched_last"),
            origin: k("origin"),
        };
        Scheduler {
            queue,
            cfg: SchedulerConfig::default(),
            keys: std::sync::Arc::new(keys),
        }
    }

    /// A scheduler for `queue` with settings `cfg`.
    ///
    /// Errors: [`Error::Config`] when `cfg.reload` is below 1 ms.
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
    /// let mut cfg = rqueue::SchedulerConfig::default();
    /// cfg.grace = std::time::Duration::from_secs(30);
    /// let scheduler = rqueue::Scheduler::with_config(q, cfg)?;
    /// # let _ = scheduler; Ok(()) }
    /// ```
    pub fn with_config(queue: Queue<T>, cfg: SchedulerConfig) -> Result<Scheduler<T>, Error> {
        if cfg.reload < Duration::from_millis(1) {
            return Err(Error::Config(
                "scheduler reload period must be at least 1 ms".into(),
            ));
        }
        let mut s = Scheduler::new(queue);
        s.cfg = cfg;
        Ok(s)
    }

    /// The queue the ticks are enqueued into.
    ///
    /// ```no_run
    /// # fn demo(s: rqueue::Scheduler<String>) {
    /// println!("{}", s.queue().config().name);
    /// # }
    /// ```
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    /// Stores the schedule `name`: `schedule` enqueues `payload` (with the schedule's
    /// priority and the queue's `max_attempts`) at each tick. A new schedule, or one whose
    /// definition (schedule or payload) differs from the stored one, replaces it and starts
    /// from now: its first tick is the first one after this call (server clock). Storing
    /// the same definition again changes nothing (its ticks go on as before), so every
    /// process of an application may add its schedules when it starts.
    ///
    /// Errors, with nothing stored: [`Error::InvalidSchedule`] for an empty name or one with
    /// braces, an interval below 1 ms, or `Missed::CatchUp(0)` (or above 10,000);
    /// [`Error::Encode`] when the payload cannot be encoded.
    ///
    /// ```no_run
    /// # async fn demo(s: rqueue::Scheduler<String>) -> Result<(), rqueue::Error> {
    /// let every_5s = rqueue::Schedule::cron("*/5 * * * * *")?;
    /// s.add("poll", &every_5s, &"poll the feed".to_string()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add(&self, name: &str, schedule: &Schedule, payload: &T) -> Result<(), Error> {
        check_name(name)?;
        schedule.check().map_err(|reason| Error::InvalidSchedule {
            name: Some(name.to_string()),
            reason,
        })?;
        let payload = rmp_serde::to_vec(payload).map_err(|e| Error::Encode(e.to_string()))?;
        let def = schedule.encode(&payload);
        let k = &self.keys;
        let reply: Vec<Value> = ADD
            .run(
                self.queue.redis().pool(),
                vec![k.schedules.as_str(), k.sched_last.as_str()],
                vec![Value::from(name), Value::Bytes(def.into())],
            )
            .instrument(tracing::debug_span!("rqueue.schedule_add", queue = %self.queue.config().name, schedule = %name))
            .await?;
        match reply.first().and_then(Value::as_i64) {
            Some(0 | 1) => Ok(()),
            _ => Err(Error::Protocol(format!("schedule add reply {reply:?}"))),
        }
    }

    /// Removes the schedule `name`; whether it existed. Jobs it already enqueued stay.
    ///
    /// ```no_run
    /// # async fn demo(s: rqueue::Scheduler<String>) -> Result<(), rqueue::Error> {
    /// if s.remove("poll").await? {
    ///     println!("no more polling");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn remove(&self, name: &str) -> Result<bool, Error> {
        let k = &self.keys;
        let n: i64 = REMOVE
            .run(
                self.queue.redis().pool(),
                vec![k.schedules.as_str(), k.sched_last.as_str()],
                vec![name],
            )
            .instrument(tracing::debug_span!("rqueue.schedule_remove", queue = %self.queue.config().name, schedule = %name))
            .await?;
        Ok(n > 0)
    }

    /// The stored schedules, by name: each with its last handled tick and the next one. A
    /// definition this version cannot read is listed with the reason in
    /// [`ScheduleInfo::schedule`].
    ///
    /// ```no_run
    /// # async fn demo(s: rqueue::Scheduler<String>) -> Result<(), rqueue::Error> {
    /// for info in s.list().await? {
    ///     println!("{} next at {:?}", info.name, info.next_tick);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self) -> Result<Vec<ScheduleInfo<T>>, Error> {
        let snap = self.load().await?;
        let mut out = Vec::with_capacity(snap.definitions.len());
        for (name, raw) in snap.definitions {
            let last = snap.last.get(&name).copied();
            let (schedule, payload) = match decode::<T>(&raw) {
                Ok((s, p, _)) => (Ok(s), Some(p)),
                Err(e) => (Err(e), None),
            };
            let next_tick = match (&schedule, last) {
                (Ok(s), Some(l)) => s.next_after_ms(l).map(time_of),
                _ => None,
            };
            out.push(ScheduleInfo {
                name,
                schedule,
                payload,
                last_handled: last.map(time_of),
                next_tick,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Enqueues the ticks of the stored schedules until `shutdown` completes; what this
    /// scheduler did. Run as many as you like (for availability): each tick is enqueued
    /// once.
    ///
    /// Each pass reads the schedules, their last handled ticks and the Redis server's time
    /// (one script), computes the due ticks of each schedule from that time — the ones
    /// found more than [`SchedulerConfig::grace`] late follow the schedule's
    /// [`Missed`](crate::Missed) policy — and hands them to the tick script, which enqueues
    /// them only if the schedule's last handled tick is still the one read (else another
    /// scheduler came first, counted in [`SchedulerReport::refused`]). Then it sleeps until
    /// the next tick it knows of, or [`SchedulerConfig::reload`], whichever is sooner.
    ///
    /// Redis errors are logged and retried (after 200 ms) until `shutdown`; a refusal by the
    /// Redis ACL ([`redis_conn::Error::NoPermission`]) ends the run with that error. A
    /// stored definition this version cannot read is skipped (with a warning once). A
    /// script call in flight when `shutdown` completes is awaited, never abandoned half-way.
    ///
    /// ```no_run
    /// # async fn demo(s: rqueue::Scheduler<String>) -> Result<(), rqueue::Error> {
    /// let report = s.run(tokio::time::sleep(std::time::Duration::from_secs(60))).await?;
    /// println!("{report:?}");
    /// # Ok(()) }
    /// ```
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<SchedulerReport, Error> {
        tokio::pin!(shutdown);
        let name = self.queue.config().name.clone();
        let grace = ms(self.cfg.grace);
        let mut report = SchedulerReport::default();
        let mut entries: HashMap<String, Entry<T>> = HashMap::new();
        loop {
            let snap = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                r = self.load() => r,
            };
            let snap = match snap {
                Ok(s) => s,
                Err(e) if denied(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(queue = %name, error = %e, "reading the schedules failed; retrying");
                    tokio::select! {
                        biased;
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(RETRY_PAUSE) => continue,
                    }
                }
            };
            let loaded_at = Instant::now();
            let now = snap.now;
            refresh(&mut entries, snap.definitions, &name);
            // The earliest next tick (server ms), and whether to go again at once (more due
            // ticks than one call takes, or a refusal: the state changed, read it again), or
            // after a pause (a failed call).
            let mut wake: Option<u64> = None;
            let mut again = false;
            let mut failed = false;
            let mut names: Vec<&String> = entries.keys().collect();
            names.sort();
            for sched_name in names {
                let Some(entry) = entries.get(sched_name) else {
                    continue;
                };
                let Ok((schedule, _, payload)) = &entry.decoded else {
                    continue;
                };
                let seen = snap.last.get(sched_name).copied();
                let plan = match seen {
                    Some(last) => schedule.plan(last, now, grace, TICK_BATCH),
                    // No record of its last tick (deleted by hand): start it from now.
                    None => Some(super::def::Plan {
                        jobs: Vec::new(),
                        skipped: 0,
                        new_last: now,
                        more: false,
                    }),
                };
                let mut last = seen;
                if let Some(plan) = plan {
                    match self
                        .tick(sched_name, &entry.raw, seen, schedule, payload, &plan)
                        .await
                    {
                        Ok(true) => {
                            report.enqueued += plan.jobs.len() as u64;
                            report.skipped += plan.skipped;
                            let labels = [
                                ("queue", name.clone()),
                                ("schedule", sched_name.to_string()),
                            ];
                            redis_conn::telemetry::counter!(
                                "redkit_rqueue_scheduler_ticks_enqueued_total",
                                &labels
                            )
                            .increment(plan.jobs.len() as u64);
                            redis_conn::telemetry::counter!(
                                "redkit_rqueue_scheduler_ticks_skipped_total",
                                &labels
                            )
                            .increment(plan.skipped);
                            if plan.skipped > 0 {
                                tracing::info!(queue = %name, schedule = %sched_name, skipped = plan.skipped, "missed ticks skipped");
                            }
                            again |= plan.more;
                            last = Some(plan.new_last);
                        }
                        Ok(false) => {
                            report.refused += 1;
                            again = true;
                            continue;
                        }
                        Err(e) if denied(&e) => return Err(e),
                        Err(e) => {
                            tracing::warn!(queue = %name, schedule = %sched_name, error = %e, "tick failed; retrying");
                            failed = true;
                            continue;
                        }
                    }
                }
                if let Some(next) = last.and_then(|l| schedule.next_after_ms(l)) {
                    wake = Some(wake.map_or(next, |w| w.min(next)));
                }
            }
            let pause = if failed {
                RETRY_PAUSE
            } else if again {
                // Another scheduler moved first: read again after a moment's jitter, so the
                // losers of a race do not stay in step.
                Duration::from_millis(fastrand::u64(0..=3))
            } else {
                // Wake 1 ms after the tick so that the server sees it due.
                let until_tick = wake.map_or(self.cfg.reload, |w| {
                    Duration::from_millis(w.saturating_sub(now).saturating_add(1))
                });
                until_tick.min(self.cfg.reload)
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = tokio::time::sleep_until(loaded_at + pause) => {}
            }
        }
        Ok(report)
    }

    /// The server's time, the stored definitions and their last handled ticks.
    async fn load(&self) -> Result<Snapshot, Error> {
        let k = &self.keys;
        let reply: Vec<Value> = LOAD
            .run(
                self.queue.redis().pool(),
                vec![k.schedules.as_str(), k.sched_last.as_str()],
                Vec::<Value>::new(),
            )
            .instrument(
                tracing::debug_span!("rqueue.schedule_load", queue = %self.queue.config().name),
            )
            .await?;
        let bad = || Error::Protocol(format!("schedule load reply {reply:?}"));
        let [secs, micros, defs, lasts] = reply.as_slice() else {
            return Err(bad());
        };
        let secs = text(secs).and_then(|s| s.parse::<u64>().ok());
        let micros = text(micros).and_then(|s| s.parse::<u64>().ok());
        let (Some(secs), Some(micros)) = (secs, micros) else {
            return Err(bad());
        };
        let now = secs.saturating_mul(1000).saturating_add(micros / 1000);
        let pairs = |v: &Value| -> Result<Vec<(String, Vec<u8>)>, Error> {
            let Value::Array(items) = v else {
                return Err(bad());
            };
            let mut out = Vec::with_capacity(items.len() / 2);
            for pair in items.chunks(2) {
                let [k, v] = pair else { return Err(bad()) };
                let (Some(k), Some(v)) = (text(k), v.as_bytes()) else {
                    return Err(bad());
                };
                out.push((k, v.to_vec()));
            }
            Ok(out)
        };
        let definitions = pairs(defs)?;
        let mut last = HashMap::new();
        for (name, v) in pairs(lasts)? {
            // A value that is not a number counts as no record (the schedule restarts).
            if let Some(ms) = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()) {
                last.insert(name, ms);
            }
        }
        Ok(Snapshot {
            now,
            definitions,
            last,
        })
    }

    /// Runs the tick script for one plan; `Ok(false)` when it was refused (the state
    /// changed since `seen` was read).
    async fn tick(
        &self,
        name: &str,
        raw: &[u8],
        seen: Option<u64>,
        schedule: &Schedule,
        payload: &[u8],
        plan: &super::def::Plan,
    ) -> Result<bool, Error> {
        let k = &self.keys;
        let keys = vec![
            k.jobs.as_str(),
            k.meta.as_str(),
            k.ready.as_str(),
            k.seq.as_str(),
            k.stats.as_str(),
            k.signal.as_str(),
            k.ctl.as_str(),
            k.schedules.as_str(),
            k.sched_last.as_str(),
            k.origin.as_str(),
        ];
        let mut args: Vec<Value> = Vec::with_capacity(8 + plan.jobs.len());
        args.push(Value::from(name));
        args.push(Value::from(seen.map(|l| l.to_string()).unwrap_or_default()));
        args.push(Value::Bytes(raw.to_vec().into()));
        args.push(Value::from(plan.new_last.to_string()));
        args.push(Value::from(plan.skipped.to_string()));
        args.push(Value::from(i64::from(schedule.job_priority())));
        args.push(Value::from(i64::from(
            self.queue.config().max_attempts.max(1),
        )));
        args.push(Value::Bytes(payload.to_vec().into()));
        for t in &plan.jobs {
            args.push(Value::from(t.to_string()));
        }
        let reply: Vec<Value> = TICK
            .run(self.queue.redis().pool(), keys, args)
            .instrument(tracing::debug_span!(
                "rqueue.tick",
                queue = %self.queue.config().name,
                schedule = %name,
                jobs = plan.jobs.len(),
                skipped = plan.skipped,
                tick = plan.new_last,
            ))
            .await?;
        match reply.first().and_then(Value::as_i64) {
            Some(1) if reply.len() == plan.jobs.len() + 1 => {
                self.queue
                    .metrics()
                    .enqueued
                    .increment(plan.jobs.len() as u64);
                Ok(true)
            }
            Some(0 | 2) => Ok(false),
            _ => Err(Error::Protocol(format!("tick reply {reply:?}"))),
        }
    }
}

/// A stored definition read as a schedule with a payload of type `T` (and its bytes).
fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<(Schedule, T, Vec<u8>), String> {
    let (schedule, payload) = Schedule::decode(raw)?;
    let value: T = rmp_serde::from_slice(payload)
        .map_err(|e| format!("the payload is not a {}: {e}", std::any::type_name::<T>()))?;
    Ok((schedule, value, payload.to_vec()))
}

/// Brings the run loop's decoded definitions up to date with what was read (decoding only
/// new or changed ones, and warning once about each one that cannot be run).
fn refresh<T: DeserializeOwned>(
    entries: &mut HashMap<String, Entry<T>>,
    definitions: Vec<(String, Vec<u8>)>,
    queue: &str,
) {
    let mut seen: HashMap<String, Vec<u8>> = definitions.into_iter().collect();
    entries.retain(|name, e| seen.get(name).is_some_and(|raw| *raw == e.raw));
    for (name, raw) in seen.drain() {
        if entries.contains_key(&name) {
            continue;
        }
        let decoded = decode::<T>(&raw);
        if let Err(why) = &decoded {
            tracing::warn!(queue = %queue, schedule = %name, reason = %why, "skipping a schedule this scheduler cannot run");
        }
        entries.insert(name, Entry { raw, decoded });
    }
}
