//! Releasing a hold in Redis: one script call per kind of hold (settling the local hand-offs
//! made under it), the fair hand-off to the next waiter, and the work items of the client's
//! release janitor.

use redis_conn::RedisClient;
use tokio::sync::oneshot;

use crate::hold::{Cohort, Hold, HoldSpec, Kind};
use crate::keys::{conn, queue_keys};
use crate::scripts::{CLAIM_MS, FAIR_CANCEL, FAIR_RELEASE, RELEASE, STRING_RELEASE, ZSET_RELEASE};
use crate::sync::lock;

/// A release the janitor performs for a guard that was dropped (or an acquire that was
/// cancelled after its request may have been granted).
pub(crate) struct ReleaseJob {
    pub(crate) spec: HoldSpec,
    /// `Some(waiter id)` for a fair request that may still be in line: leave it first.
    pub(crate) waiter: Option<String>,
    /// Local hand-offs made under the hold, settled by the release.
    pub(crate) cohort: Cohort,
}

impl ReleaseJob {
    pub(crate) fn new(spec: HoldSpec, waiter: Option<String>) -> ReleaseJob {
        ReleaseJob {
            spec,
            waiter,
            cohort: Cohort::default(),
        }
    }
}

/// Work for the janitor task, in order.
pub(crate) enum Job {
    Release(ReleaseJob),
    /// Answered once every job sent before it is done.
    Flush(oneshot::Sender<()>),
}

/// The janitor's release of a hold whose guard is gone (no fair line to leave).
pub(crate) fn job_of(hold: &Hold) -> ReleaseJob {
    ReleaseJob {
        spec: hold.spec.clone(),
        waiter: None,
        cohort: lock(&hold.cohort).clone(),
    }
}

/// Releases one hold of any kind (settling its local hand-offs): -1 not there, 0 free,
/// n > 0 holds left, -2 handed off.
pub(crate) async fn release_hold(
    redis: &RedisClient,
    channel: &str,
    spec: &HoldSpec,
    cohort: &Cohort,
) -> Result<i64, redis_conn::Error> {
    let keys = [spec.key.as_str(), spec.flag.as_str()];
    match spec.kind {
        Kind::Lock => {
            let fence_key = format!("{}:fence", spec.key);
            let floor = cohort.floor.to_string();
            let sole = if spec.sole { "1" } else { "0" };
            let args = vec![
                spec.field.as_str(),
                channel,
                spec.wake.as_str(),
                floor.as_str(),
                sole,
            ];
            RELEASE
                .run(
                    conn(redis, &spec.key),
                    vec![spec.key.as_str(), spec.flag.as_str(), fence_key.as_str()],
                    args,
                )
                .await
        }
        Kind::FairLock => {
            fair_release(redis, channel, &spec.key, &spec.field, &spec.name, cohort).await
        }
        Kind::Zset => {
            ZSET_RELEASE
                .run(
                    conn(redis, &spec.key),
                    keys.to_vec(),
                    vec![spec.id(), channel, spec.wake.as_str()],
                )
                .await
        }
        Kind::Writer => {
            STRING_RELEASE
                .run(
                    conn(redis, &spec.key),
                    keys.to_vec(),
                    vec![spec.id(), channel, spec.wake.as_str()],
                )
                .await
        }
    }
}

/// The fair release script for one hold (hands off to the next live waiter).
pub(crate) async fn fair_release(
    redis: &RedisClient,
    channel: &str,
    key: &str,
    field: &str,
    name: &str,
    cohort: &Cohort,
) -> Result<i64, redis_conn::Error> {
    let fence_key = format!("{key}:fence");
    let (queue, queue_ttl) = queue_keys(key);
    let (claim, floor) = (CLAIM_MS.to_string(), cohort.floor.to_string());
    let mut args = vec![field, channel, name, claim.as_str(), floor.as_str()];
    args.extend(cohort.left_line.iter().map(String::as_str));
    FAIR_RELEASE
        .run(
            conn(redis, key),
            vec![key, fence_key.as_str(), queue.as_str(), queue_ttl.as_str()],
            args,
        )
        .await
}

/// The janitor's work for a fair lock: leave the line if still in it, and release (handing off)
/// if the lock was granted meanwhile.
pub(crate) async fn fair_give_back(
    redis: &RedisClient,
    channel: &str,
    job: &ReleaseJob,
    waiter: &str,
) -> Result<i64, redis_conn::Error> {
    let spec = &job.spec;
    let (queue, queue_ttl) = queue_keys(&spec.key);
    let held: Vec<i64> = FAIR_CANCEL
        .run(
            conn(redis, &spec.key),
            vec![spec.key.as_str(), queue.as_str(), queue_ttl.as_str()],
            vec![spec.field.as_str(), waiter],
        )
        .await?;
    if held.first() != Some(&1) {
        return Ok(-1);
    }
    fair_release(
        redis,
        channel,
        &spec.key,
        &spec.field,
        &spec.name,
        &job.cohort,
    )
    .await
}
