//! A reliable Redis queue: every state change of a message is one Lua script over keys that
//! share the queue's hash tag (Cluster-safe), deliveries carry leases checked by token, and
//! Redis server time decides what is due and what has expired.
//!
//! ```no_run
//! # async fn demo(redis: redis_conn::RedisClient) -> Result<(), rqueue::Error> {
//! use rqueue::{Queue, QueueConfig};
//! let orders: Queue<String> = Queue::new(redis, QueueConfig::new("orders"))?;
//! orders.enqueue(&"order 42".to_string()).await?;
//! for delivery in orders.claim(10).await? {
//!     println!("processing {}", delivery.message());
//!     delivery.ack().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Guarantees and limits (this release)
//!
//! | crash point | result |
//! |---|---|
//! | producer dies before the enqueue reply | the message may or may not exist: retry with a dedup key to get exactly one |
//! | claim | one script pops the message and records its lease: there is no moment when it is in neither the ready nor the in-flight set |
//! | worker dies after claim, before or while running | the lease runs out, [`Queue::reclaim`] puts it back (a *stall*, counted; after `max_stalls` it goes to the dead set with reason `stalled`) |
//! | worker finished but died before ack | delivered again after the lease: at-least-once, make handlers idempotent |
//! | an ack racing a reclaim | the ack carries the delivery's token; after a reclaim the token no longer matches, the ack is refused with [`Error::LeaseLost`] and changes nothing |
//! | worker gets SIGTERM / its shutdown future completes | it stops claiming, gives prefetched messages back at once, lets running jobs finish within `shutdown_grace`, then cancels the rest and puts their messages back (not counted as failures); nothing stays in flight |
//! | a job finished, its ack still in the worker's batch when the process dies | delivered again after the lease (acks are batched only while one is in flight, so this window is one round trip) |
//! | Redis restarts | whatever persistence had not written is lost: [`Queue::check_durability`] warns when AOF / RDB are off or the eviction policy can drop queue keys |
//! | Sentinel fails over | enqueues, claims and acks acknowledged by the old primary but not yet replicated are lost: a lost enqueue is a lost message; a lost claim or ack means the message runs again. Everything acknowledged by the new primary is kept. Measured by `tests/failover.rs` |
//! | the connection drops while a script is in flight | the client resends it (up to 3 attempts): a resent enqueue can add the message twice (use a dedup key for exactly one), a resent claim leaves the first claim's leases to run out (reclaimed, counted as a stall), a resent ack or nack that had already applied reports [`Error::LeaseLost`] |
//! | `Worker::run` dropped instead of shut down | its handlers are aborted, its lease renewals stop, and its messages return when their leases end (acks already handed over are still sent) |
//! | a poison message (handler panics every time) | each panic is a failure; after `max_attempts` it is dead with the panic message as reason |
//! | an undecodable payload | moved to the dead set with reason `decode: …` by the claim that met it; the worker carries on |
//! | the process that paused the queue, or set a limit, dies | nothing changes: the controls live in Redis (`<namespace>:{<queue>}:ctl`) until someone calls [`Queue::resume`] or clears the limit; they survive worker restarts, and Redis restarts with persistence |
//! | a worker dies while rate-limited or waiting for a concurrency slot | it held nothing: the claim script either leased messages (reclaimed after the lease, as above) or handed out none. Its logged claims keep counting against the window until they age out of it |
//! | a claim races `pause` | both are scripts: a claim that runs after the pause hands out nothing (tested: no claim time after the pause returned); deliveries claimed before it finish and ack normally |
//! | a worker dies after the handler returned a result, before the ack | the result is lost with the ack and the job runs again (results are written by the ack script, atomically with the ack, never before) |
//! | a scheduler process dies at any point | a tick is enqueued by one script that also advances the schedule's last tick (compare-and-set): it happened completely or not at all, and another scheduler takes the tick over. Tested with 20 SIGKILLs among 3 schedulers |
//! | every scheduler is down | ticks are missed; the first scheduler back applies each schedule's [`Missed`] policy exactly |
//! | a `wait_result` caller is dropped or times out | nothing is held: the job runs on; the local waiter is simply gone |
//! | the `done` announcement is lost (subscriber reconnect) | every waiter re-checks the job at once; pub/sub is only the wake-up, the kept record is the truth |
//!
//! Completed messages are deleted (or the newest `keep_completed` kept). Retried messages keep their id, so they run ahead of
//! younger messages of the same priority.
//!
//! # Flow control
//!
//! Queue-wide, kept in Redis and enforced inside the claim script for every worker process
//! at once (BullMQ's global rate limit and concurrency, Sidekiq Enterprise's limiters):
//!
//! | control | what claims do | what waiting workers do |
//! |---|---|---|
//! | [`Queue::pause`] / [`Queue::resume`] | nothing is handed out while paused; leases of running jobs keep being renewed; enqueues work | block on the wake-up signal (no spinning: enqueues do not push it while paused); `resume` pushes it, waking them at once |
//! | [`Queue::set_rate_limit`] ([`RateLimit`]) | at most `max` claims in any sliding `window` (a log of claim times; every window, not only aligned ones) | sleep until the time the script returns for the next slot |
//! | [`Queue::set_concurrency_limit`] | at most `m` messages in flight (claimed, not yet acked or given back) | block on the signal; acks, retries and deaths push it while messages wait |
//!
//! [`QueueStats`] shows the state (`paused`, `paused_since`, `rate_limit`,
//! `concurrency_limit`) and counts limited claims (`rate_limited`, `concurrency_limited`); the
//! metrics are `redkit_rqueue_rate_limited_total`, `redkit_rqueue_concurrency_limited_total`
//! and the gauge `redkit_rqueue_paused`. Limits per group (per tenant) are not offered: the
//! claim pops one priority-ordered set, and skipping a limited group's messages inside it
//! would make claims scan; use one queue per group instead.
//!
//! ```no_run
//! # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
//! q.set_rate_limit(Some(rqueue::RateLimit::per_second(200)?)).await?; // a partner API's limit
//! q.set_concurrency_limit(Some(5)).await?;
//! q.pause().await?; // an incident
//! q.resume().await?;
//! # Ok(()) }
//! ```
//!
//! # Jobs by id, progress and results
//!
//! [`Queue::job`] tells where a job is ([`JobState`]: waiting, delayed with its due time,
//! active with its worker, claim time and lease deadline, completed, dead with its reason) with
//! its attempts, last error, enqueue / start / finish times, [`Progress`] and the
//! [`ScheduleTick`] that enqueued it. Handlers report progress with [`JobInfo::progress`] (or
//! [`Delivery::progress`]); with [`QueueConfig::keep_results`] what a handler returns is kept
//! for that TTL (one self-expiring key per job) and [`Queue::wait_result`] waits for it
//! (request / response, woken by pub/sub, not polling). [`Queue::cancel`] deletes a waiting or
//! delayed job, [`Queue::remove`] also a dead or completed one; a running job is never touched.
//!
//! ```no_run
//! # async fn demo(redis: redis_conn::RedisClient) -> Result<(), rqueue::Error> {
//! let mut cfg = rqueue::QueueConfig::new("thumbnails");
//! cfg.keep_results = Some(std::time::Duration::from_secs(3600));
//! let q: rqueue::Queue<String> = rqueue::Queue::new(redis, cfg)?;
//! let id = q.enqueue(&"cat.png".to_string()).await?;
//! println!("{}", q.job(&id).await?.state.name());
//! let url: String = q.wait_result(&id, std::time::Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```
//!
//! # Periodic jobs
//!
//! A [`Scheduler`] stores [`Schedule`]s next to the queue (fixed intervals, or cron
//! patterns with an optional seconds field and time zone) and [`Scheduler::run`] enqueues a
//! job at each tick. Run as many schedulers as you like, in any processes: each tick is
//! enqueued by one script that compares-and-sets the schedule's last handled tick, so
//! exactly one scheduler enqueues it, and a scheduler killed at any moment neither loses nor
//! doubles a tick while another one runs. Ticks are computed from the Redis server's clock.
//!
//! ```no_run
//! # async fn demo(redis: redis_conn::RedisClient) -> Result<(), rqueue::Error> {
//! use rqueue::{Missed, Queue, QueueConfig, Schedule, Scheduler};
//! let q: Queue<String> = Queue::new(redis, QueueConfig::new("reports"))?;
//! let scheduler = Scheduler::new(q);
//! let schedule = Schedule::cron("0 0 6 * * MON-FRI")?.time_zone("Europe/Paris")?.missed(Missed::RunOnce);
//! scheduler.add("morning-report", &schedule, &"daily".to_string()).await?;
//! scheduler.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! A tick found more than [`SchedulerConfig::grace`] (default 1 s) after its time — every
//! scheduler was down or stalled — is *missed* and follows the schedule's [`Missed`] policy:
//!
//! | policy | `k` missed ticks found together enqueue | skipped |
//! |---|---|---|
//! | [`Missed::Skip`] (default) | nothing | `k` |
//! | [`Missed::RunOnce`] | one job, for the newest missed tick | `k − 1` |
//! | [`Missed::CatchUp`]`(n)` | one job per tick for the newest `min(n, k)` | the older `k − min(n, k)` |
//!
//! Ticks found on time are always enqueued, once each. Each job a schedule enqueued is
//! recorded in `<namespace>:{<queue>}:origin` (job id → `<tick ms>|<schedule name>`, shown as
//! [`Job::schedule`]); the
//! queue's stats hash counts `sched_enqueued` and `sched_skipped`, and the `metrics` facade
//! `redkit_rqueue_scheduler_ticks_enqueued_total` / `…_skipped_total` (labels `queue`,
//! `schedule`). The bin `rqueue-scheduler` runs a scheduler over a queue of strings (and
//! adds, removes and lists schedules). The scripts use the same commands as the queue's, so
//! [`acl_rule`] covers them.
//!
//! # Least privilege
//!
//! [`acl_rule`] (default namespace `rq`) and [`acl_rule_in`] give the smallest ACL rule a
//! client of one queue needs: the queue's keys (`<namespace>:{<queue>}:*`: ready, delayed,
//! in-flight and lease sets, dead set and reasons, completed list, payloads, meta, stats, id
//! sequence, dedup keys, the wake-up signal list, controls, rate log, progress, kept results,
//! per-minute counters), the commands its scripts (`src/lua`) call, `BLPOP`, `SUBSCRIBE` on the
//! channel `<namespace>:{<queue>}:done` (finished jobs are announced there when results are
//! kept), and `HSETNX` on `redkit:registry` (the queue announces itself there for the
//! console), on top of [`redis_conn::AclRule::connection`]. Blocking claims wait on the signal list, not
//! on pub/sub. For the queue `emails`:
//!
//! ```text
//! ACL SETUSER emails-worker on >password resetkeys resetchannels -@all +ping +info +role
//!   +cluster|slots +cluster|info +cluster|nodes +asking +select +client|setname +client|id +quit
//!   +script|load +evalsha +eval +time +get +set +del +exists +pexpire +hget +hmget +hset +hdel
//!   +hexists +hincrby +hgetall +hkeys +hsetnx +zadd +zrem +zcard +zscore +zrange +zrevrange
//!   +zpopmin +zremrangebyscore +lpush +ltrim +publish +blpop +subscribe ~rq:{emails}:*
//!   ~redkit:registry &rq:{emails}:done
//! ```
//!
//! (one line; `acl_rule("emails").to_string()` is the text after the password). A trailing `*`
//! grants a family: `acl_rule_in("t:rq", "*")` gives `~t:rq:{*}:*` and `&t:rq:{*}:done`.
//! `~redkit:registry` comes with the rule's other commands (no selectors); leave it out for
//! a stricter rule: the registration is then refused, logged once and harmless.
//!
//! | operation | needs besides the keys and `+evalsha +eval` |
//! |---|---|
//! | enqueue, claim, ack, nack / retry, dead, extend, reclaim, stats, dead-set pages, replay, purge | the script commands in the rule |
//! | [`Queue::claim_wait`], [`Worker`] | `+blpop` |
//! | [`Queue::new`]'s registration for the console (optional: refused, it is logged once and changes nothing else) | `+hsetnx ~redkit:registry` |
//! | [`Queue::wait_result`] | `+subscribe` and `&<namespace>:{<queue>}:done` (acks and deaths `+publish` there only when [`QueueConfig::keep_results`] is set) |
//! | [`Queue::check_durability`] (also run by [`Worker::run`]) | `+info` (in the rule); `+config\|get` only for [`Durability::rdb`] (left out: `CONFIG GET` reads any setting, so the check reports `None` instead) |
//! | `rqueue-soak-worker` (the bin) | `acl_rule_in(<namespace>, <queue>)` plus `~<record-key>` (it counts messages there with `+hincrby`, in the rule) |
//!
//! A missing right fails the operation with [`Error::Redis`] holding
//! [`redis_conn::Error::NoPermission`], whose message names the refused command (Redis), or
//! the script and its keys (redis-conn), before the script runs: the queue is as it was. A
//! worker stops with that error instead of retrying. Take the rule whole: Redis does not undo
//! a script that stops half-way, so a rule without one of the commands the scripts call can
//! leave a message half-moved.
//!
//! ```
//! assert_eq!(
//!     rqueue::acl_rule("emails").to_string(),
//!     "resetkeys resetchannels -@all +ping +info +role +cluster|slots +cluster|info \
//!      +cluster|nodes +asking +select +client|setname +client|id +quit +script|load +evalsha +eval \
//!      +time +get +set +del +exists +pexpire +hget +hmget +hset +hdel +hexists +hincrby \
//!      +hgetall +hkeys +hsetnx +zadd +zrem +zcard +zscore +zrange +zrevrange +zpopmin \
//!      +zremrangebyscore +lpush +ltrim +publish +blpop +subscribe ~rq:{emails}:* \
//!      ~redkit:registry &rq:{emails}:done"
//! );
//! ```
//!
//! # How this crate is laid out
//!
//! Every state change is a Lua script under `src/lua/`; the Rust file that runs a script holds
//! it. Read the modules in this order (each only uses the ones before it):
//!
//! 1. `error`: [`Error`].
//! 2. `queue::config`: [`QueueConfig`] and [`Backoff`], a queue's settings and retry delays.
//! 3. `queue::core`: the [`Queue`] handle and the state every operation shares (Redis
//!    client, settings, key set, metrics), with `script_keys!`, which lists a script's KEYS in
//!    the script's order.
//! 4. `queue::enqueue`: [`Queue::enqueue`], the [`Enqueue`] builder and batches.
//! 5. `queue::delivery`: a [`Delivery`] and its lease: ack, nack / retry, dead, extend, and
//!    the release and batched ack / extend calls the worker uses.
//! 6. `queue::claim`: [`Queue::claim`] and [`Queue::claim_wait`] (blocking on the queue's
//!    wake-up signal), which hand out deliveries.
//! 7. `queue::reclaim`: [`Queue::reclaim`], expired leases back to ready or to the dead set.
//! 8. `queue::stats`: [`QueueStats`] and [`Queue::stats`]; `queue::control`: pause /
//!    resume and the rate and concurrency limits; `queue::throughput`: [`Queue::throughput`]
//!    ([`MinuteCount`], processed and failed per minute); `queue::attempts`: a message's
//!    error history ([`AttemptError`]); `queue::job`: [`Queue::job`], progress, results,
//!    cancel and remove.
//! 9. `queue::page`, `queue::dead`, `queue::completed`: reading pages of stored messages; the
//!    dead set ([`DeadLetter`], replay, purge); the completed list ([`Completed`]).
//! 10. `durability`: [`Queue::check_durability`] and [`Durability`], whether the server can
//!     lose queue keys.
//! 11. `worker`: [`Worker`], which claims, runs handlers, renews leases, batches acks and
//!     shuts down without losing messages.
//! 12. `acl`: [`acl_rule`] and [`acl_rule_in`], the ACL rights all of the above need (checked
//!     against the scripts).
//! 13. `schedule`: [`Schedule`], [`Missed`] and the [`Scheduler`], periodic jobs enqueued
//!     into a queue.

mod acl;
mod durability;
mod error;
mod queue;
mod schedule;
mod worker;

pub use acl::{acl_rule, acl_rule_in};
pub use durability::Durability;
pub use error::Error;
pub use queue::{
    AttemptError, Backoff, Completed, DeadLetter, Delivery, Enqueue, Job, JobState, MinuteCount,
    Progress, Queue, QueueConfig, QueueStats, RateLimit, ScheduleTick,
};
pub use schedule::{
    MAX_CATCH_UP, Missed, Schedule, ScheduleInfo, Scheduler, SchedulerConfig, SchedulerReport,
};
pub use worker::{JobInfo, Worker, WorkerConfig, WorkerReport};
