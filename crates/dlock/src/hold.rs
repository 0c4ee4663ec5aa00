//! One hold of a lock, semaphore or read-write lock: how it is named in Redis
//! ([`HoldSpec`], [`Kind`]), its lease schedule and life ([`Hold`], [`State`]), the local
//! hand-offs made under it ([`Cohort`]) and the process-wide hold ids.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::{later, micros_since};
use crate::error::LostReason;

pub(crate) static NEXT_HOLD: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_hold_id() -> u64 {
    NEXT_HOLD.fetch_add(1, Ordering::Relaxed)
}

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
        let first_renewal = later(sent, spec.lease / 3);
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
            micros_since(self.epoch, later(Instant::now(), after)),
            Ordering::Release,
        );
    }

    /// Records a confirmed renewal sent at `sent`, trusted until `valid_until`.
    pub(crate) fn renewed(&self, sent: Instant, valid_until: Instant) {
        self.renew_due.fetch_max(
            micros_since(self.epoch, later(sent, self.lease / 3)),
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
