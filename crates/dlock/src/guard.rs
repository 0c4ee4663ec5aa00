//! Holds and their guards: release, extension and the lease-loss signal.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use crate::client::{
    LockClient, RELEASE, ReleaseJob, fair_release, lock, micros_since, next_hold_id,
};
use crate::error::{Error, LostReason};

/// A hold's life as the guard, the watchdog and lease-loss futures see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Held,
    Lost(LostReason),
    Released,
}

/// What a hold is, which decides how it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A mutex hold (hash field).
    Lock,
    /// A fair mutex hold: released by the hand-off script.
    FairLock,
    /// A semaphore permit or a read hold (zset member with its expiry as score).
    Zset,
    /// A write hold (string key holding the hold id).
    Writer,
}

/// Everything that names a hold in Redis.
#[derive(Debug, Clone)]
pub(crate) struct HoldSpec {
    /// The user's name for it (lock, semaphore or rwlock name).
    pub(crate) name: String,
    pub(crate) key: String,
    /// The renewal member: `h:<id>` (lock), `z:<id>` (zset member), `s:<id>` (writer).
    pub(crate) field: String,
    pub(crate) lease: Duration,
    pub(crate) kind: Kind,
    /// The "someone waits" flag a release checks before publishing.
    pub(crate) flag: String,
    /// The wake-up message a release publishes.
    pub(crate) wake: String,
    /// The owner's only possible hold (a mutex request without an explicit owner): its release
    /// removes the whole lock without counting the owner's other holds.
    pub(crate) sole: bool,
}

impl HoldSpec {
    /// The id inside `field` (without its kind prefix).
    pub(crate) fn id(&self) -> &str {
        self.field.get(2..).unwrap_or_default()
    }
}

/// The local hand-offs made under one Redis hold of a mutex (lock cohorting): a holder passes
/// the lock to the next waiter of the same client without a Redis round trip, up to
/// [`crate::LockConfig::local_handoffs`] times in a row; the release that finally goes to Redis
/// settles what they changed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cohort {
    /// Local hand-offs so far under this Redis hold.
    pub(crate) streak: u32,
    /// The largest token handed out locally (0: none): the release raises the counter to it.
    pub(crate) floor: u64,
    /// Fair waiters that took the lock locally: the release takes them out of the Redis line.
    pub(crate) left_line: Vec<String>,
}

/// One hold of a lock, shared by its guard and the watchdog.
#[derive(Debug)]
pub(crate) struct Hold {
    pub(crate) id: u64,
    pub(crate) spec: HoldSpec,
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) field: String,
    pub(crate) lease: Duration,
    epoch: Instant,
    /// When the next renewal is due (µs since `epoch`): a third of the lease after the last
    /// confirmed grant or renewal was sent.
    renew_due: AtomicU64,
    /// Local deadline of the lease (µs since `epoch`).
    valid_until: AtomicU64,
    state: watch::Sender<State>,
    /// Whether the hold may be passed to a local waiter: a mutex hold of an anonymous owner
    /// (nobody else can hold it re-entrantly).
    pub(crate) passable: bool,
    pub(crate) cohort: Mutex<Cohort>,
}

impl Hold {
    pub(crate) fn new(spec: HoldSpec, epoch: Instant, sent: Instant, valid_until: Instant) -> Hold {
        let first_renewal = crate::client::later(sent, spec.lease / 3);
        Hold {
            id: next_hold_id(),
            name: spec.name.clone(),
            key: spec.key.clone(),
            field: spec.field.clone(),
            lease: spec.lease,
            spec,
            epoch,
            renew_due: AtomicU64::new(micros_since(epoch, first_renewal)),
            valid_until: AtomicU64::new(micros_since(epoch, valid_until)),
            state: watch::Sender::new(State::Held),
            passable: false,
            cohort: Mutex::new(Cohort::default()),
        }
    }

    /// Marks a mutex hold of an anonymous owner as passable to local waiters.
    pub(crate) fn passable(mut self, passable: bool) -> Hold {
        self.passable = passable;
        self
    }

    /// The same Redis hold, for the next local holder: same lease deadline and renewal schedule.
    pub(crate) fn successor(&self, cohort: Cohort) -> Hold {
        Hold {
            id: next_hold_id(),
            spec: self.spec.clone(),
            name: self.name.clone(),
            key: self.key.clone(),
            field: self.field.clone(),
            lease: self.lease,
            epoch: self.epoch,
            renew_due: AtomicU64::new(self.renew_due.load(Ordering::Acquire)),
            valid_until: AtomicU64::new(self.valid_until.load(Ordering::Acquire)),
            state: watch::Sender::new(State::Held),
            passable: true,
            cohort: Mutex::new(cohort),
        }
    }

    fn at(&self, micros: u64) -> Instant {
        self.epoch + Duration::from_micros(micros)
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.at(self.valid_until.load(Ordering::Acquire))
    }

    /// When the next renewal is due.
    pub(crate) fn renew_at(&self) -> Instant {
        self.at(self.renew_due.load(Ordering::Acquire))
    }

    /// Makes the next renewal due `after` from now (instead of a third of the lease).
    pub(crate) fn renew_in(&self, after: Duration) {
        self.renew_due.store(
            micros_since(self.epoch, crate::client::later(Instant::now(), after)),
            Ordering::Release,
        );
    }

    /// Records a confirmed renewal sent at `sent`, trusted until `valid_until`.
    pub(crate) fn renewed(&self, sent: Instant, valid_until: Instant) {
        self.renew_due.fetch_max(
            micros_since(self.epoch, crate::client::later(sent, self.lease / 3)),
            Ordering::AcqRel,
        );
        self.valid_until
            .fetch_max(micros_since(self.epoch, valid_until), Ordering::AcqRel);
    }

    pub(crate) fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Marks the lease lost (once; a released hold stays released). Returns whether it changed.
    pub(crate) fn lose(&self, reason: LostReason) -> bool {
        self.state.send_if_modified(|s| {
            if *s == State::Held {
                *s = State::Lost(reason);
                true
            } else {
                false
            }
        })
    }

    /// Marks a held hold released, atomically with checking that it is still held (not lost
    /// meanwhile); returns whether it was.
    pub(crate) fn release_if_held(&self) -> bool {
        self.state.send_if_modified(|s| {
            if *s == State::Held {
                *s = State::Released;
                true
            } else {
                false
            }
        })
    }

    pub(crate) fn released(&self) {
        self.state.send_if_modified(|s| {
            let changed = *s != State::Released;
            *s = State::Released;
            changed
        });
    }
}

/// How a release ended.
///
/// ```
/// assert_ne!(dlock::Released::Free, dlock::Released::AlreadyExpired);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Released {
    /// The lock is free now (waiters were woken).
    Free,
    /// The lock went straight to the next waiter: a waiter of the same client (no Redis round
    /// trip, see [`crate::LockConfig::local_handoffs`]) or, fair mode, the first in line.
    HandedOff,
    /// This hold is released; the same owner still has this many re-entrant holds.
    StillHeld(u32),
    /// The hold was no longer in Redis (its lease ran out, or it was released before):
    /// someone else may have held the lock meanwhile.
    AlreadyExpired,
}

/// A held lock. Release it with [`Guard::release`]; dropping it releases in the background
/// (through the client's janitor task: no blocking, no task spawned per guard). While held,
/// the client's watchdog renews the lease every third of it.
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// let guard = locks.lock("stock:42").acquire().await?;
/// let fence = guard.fence();
/// tokio::select! {
///     reason = guard.lost() => eprintln!("lease lost: {reason}"),
///     _ = async { /* critical section, writes carry `fence` */ } => {}
/// }
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "dropping a guard releases the lock at once"]
pub struct Guard {
    client: LockClient,
    hold: Arc<Hold>,
    fence: u64,
    done: bool,
}

impl Guard {
    pub(crate) fn new(client: LockClient, hold: Arc<Hold>, fence: u64) -> Guard {
        Guard {
            client,
            hold,
            fence,
            done: false,
        }
    }

    /// The lock's name.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert_eq!(g.name(), "a");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.hold.name
    }

    /// The fencing token of this grant: larger than every token granted before for this lock
    /// name (re-entrant holds share their first hold's token). Pass it with every write the
    /// lock protects and have the resource reject smaller ones (see [`crate::fenced_set`]).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let a = locks.lock("a").acquire().await?;
    /// let first = a.fence();
    /// a.release().await?;
    /// assert!(locks.lock("a").acquire().await?.fence() > first);
    /// # Ok(()) }
    /// ```
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// The local lease deadline: the lease (minus the drift allowance) since the last renewal
    /// Redis confirmed. Past it, the lease counts as lost.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert!(g.deadline() > std::time::Instant::now());
    /// # Ok(()) }
    /// ```
    pub fn deadline(&self) -> Instant {
        self.hold.deadline()
    }

    /// Whether the lease is known lost (renewal refused or deadline passed).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert!(!g.is_lost());
    /// # Ok(()) }
    /// ```
    pub fn is_lost(&self) -> bool {
        match self.hold.state() {
            State::Lost(_) => true,
            State::Held => Instant::now() >= self.hold.deadline(),
            State::Released => false,
        }
    }

    /// A future that completes when the lease is lost: a renewal found the hold gone, or the
    /// local deadline passed without a confirmed renewal. It never completes once the guard
    /// is released. `'static`: hand it to a spawned task or a `select!`.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// let lost = g.lost();
    /// tokio::spawn(async move { eprintln!("lost: {}", lost.await) });
    /// # Ok(()) }
    /// ```
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static {
        lost(self.hold.clone())
    }

    /// Renews the lease now (the watchdog also does this every third of the lease).
    /// Never re-creates a lock that is gone: then the lease is marked lost and
    /// [`Error::LeaseLost`] is returned.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// g.extend().await?;
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self) -> Result<(), Error> {
        let sent = Instant::now();
        let hold = &self.hold;
        if let State::Lost(reason) = hold.state() {
            return Err(Error::LeaseLost {
                name: hold.name.clone(),
                reason,
            });
        }
        let ok = crate::watchdog::renew_one(&self.client, hold)
            .instrument(tracing::debug_span!("dlock.extend", lock = %hold.name))
            .await?;
        if ok {
            hold.renewed(sent, self.client.valid_until(sent, hold.lease));
            Ok(())
        } else {
            hold.lose(LostReason::Refused);
            Err(Error::LeaseLost {
                name: hold.name.clone(),
                reason: LostReason::Refused,
            })
        }
    }

    /// Releases this hold: renewal stops first, then one script removes the hold (idempotent:
    /// a retried release cannot remove another hold) and, if it was the last, frees the lock
    /// and wakes waiters.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let g = locks.lock("a").acquire().await?;
    /// assert_eq!(g.release().await?, dlock::Released::Free);
    /// # Ok(()) }
    /// ```
    pub async fn release(mut self) -> Result<Released, Error> {
        // `done` is set only once Redis answered: if this future is dropped before, `Drop`
        // hands the (idempotent) release to the janitor.
        let client = self.client.clone();
        match crate::local::pass(&client, self.hold.clone(), self.fence) {
            Ok(()) => {
                self.done = true;
                client.inner.metrics.released(false);
                return Ok(Released::HandedOff);
            }
            // The hold to release may be a successor a cancelled local waiter left behind.
            Err((hold, fence)) => (self.hold, self.fence) = (hold, fence),
        }
        let hold = self.hold.clone();
        let line = crate::local::returning(&client, &hold);
        client.inner.watchdog.unregister(hold.id);
        hold.released();
        let channel = client.inner.channel.as_str();
        let cohort = lock(&hold.cohort).clone();
        let left: Result<i64, redis_conn::Error> =
            release_hold(&client.inner.redis, channel, &hold.spec, &cohort)
                .instrument(tracing::debug_span!("dlock.release", lock = %hold.name))
                .await
                .inspect_err(|_| {
                    // Unknown outcome: make sure it is given back (idempotent).
                    client.janitor_release(job_of(&hold))
                });
        crate::local::retry(line);
        self.done = true;
        let left = left?;
        client.inner.metrics.released(left == -1);
        Ok(match left {
            0 => Released::Free,
            -2 => Released::HandedOff,
            n if n > 0 => Released::StillHeld(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => Released::AlreadyExpired,
        })
    }

    /// The guard's hold.
    pub(crate) fn hold(&self) -> &Arc<Hold> {
        &self.hold
    }

    /// Takes the hold out of the guard without releasing it.
    pub(crate) fn into_parts(mut self) -> (Arc<Hold>, u64) {
        self.done = true;
        (self.hold.clone(), self.fence)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let hold = match crate::local::pass(&self.client, self.hold.clone(), self.fence) {
            Ok(()) => return,
            Err((hold, _)) => hold,
        };
        crate::local::returned(&self.client, &hold);
        self.client.inner.watchdog.unregister(hold.id);
        hold.released();
        self.client.janitor_release(job_of(&hold));
    }
}

fn job_of(hold: &Hold) -> ReleaseJob {
    ReleaseJob {
        spec: hold.spec.clone(),
        waiter: None,
        cohort: lock(&hold.cohort).clone(),
    }
}

static ZSET_RELEASE: redis_conn::Script =
    redis_conn::Script::new("dlock_zset_release", include_str!("lua/zset_release.lua"));
static STRING_RELEASE: redis_conn::Script = redis_conn::Script::new(
    "dlock_string_release",
    include_str!("lua/string_release.lua"),
);

/// Releases one hold of any kind (settling its local hand-offs): -1 not there, 0 free,
/// n > 0 holds left, -2 handed off.
pub(crate) async fn release_hold(
    redis: &redis_conn::RedisClient,
    channel: &str,
    spec: &HoldSpec,
    cohort: &Cohort,
) -> Result<i64, redis_conn::Error> {
    let keys = vec![spec.key.as_str(), spec.flag.as_str()];
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
                    crate::client::conn(redis, &spec.key),
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
                    crate::client::conn(redis, &spec.key),
                    keys,
                    vec![spec.id(), channel, spec.wake.as_str()],
                )
                .await
        }
        Kind::Writer => {
            STRING_RELEASE
                .run(
                    crate::client::conn(redis, &spec.key),
                    keys,
                    vec![spec.id(), channel, spec.wake.as_str()],
                )
                .await
        }
    }
}

/// Completes when the hold stops being held: lost (also by its deadline passing) or released.
pub(crate) async fn settled(hold: &Hold) -> State {
    let mut rx = hold.state.subscribe();
    loop {
        let state = *rx.borrow_and_update();
        if state != State::Held {
            return state;
        }
        let deadline = hold.deadline();
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return hold.state();
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                if Instant::now() >= hold.deadline() && hold.lose(LostReason::Deadline) {
                    tracing::warn!(lock = %hold.name, "lease deadline passed without a confirmed renewal");
                }
            }
        }
    }
}

async fn lost(hold: Arc<Hold>) -> LostReason {
    match settled(&hold).await {
        State::Lost(reason) => reason,
        // Released: the lease is never lost any more.
        _ => std::future::pending().await,
    }
}
