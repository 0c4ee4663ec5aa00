//! Every Lua script of the locks (`src/lua/*.lua`), loaded once per server by SHA, and the
//! timings the fair scripts are given. (The fenced write's script lives with
//! [`crate::fenced_set`].)

use redis_conn::Script;

/// Grants a mutex hold (or re-enters it), or answers the holder's remaining lease.
pub(crate) static ACQUIRE: Script = Script::new("dlock_acquire", include_str!("lua/acquire.lua"));
/// Removes one mutex hold; frees the lock and wakes a waiter when it was the last.
pub(crate) static RELEASE: Script = Script::new("dlock_release", include_str!("lua/release.lua"));
/// Grants a fair mutex hold to the first live waiter in line, or keeps the caller in line.
pub(crate) static FAIR_ACQUIRE: Script =
    Script::new("dlock_fair_acquire", include_str!("lua/fair_acquire.lua"));
/// Removes a fair hold and hands the lock straight to the first live waiter.
pub(crate) static FAIR_RELEASE: Script =
    Script::new("dlock_fair_release", include_str!("lua/fair_release.lua"));
/// Takes a fair waiter out of the line (and tells whether it was handed the lock meanwhile).
pub(crate) static FAIR_CANCEL: Script =
    Script::new("dlock_fair_cancel", include_str!("lua/fair_cancel.lua"));
/// Renews a batch of holds of any kind, never re-creating one that is gone.
pub(crate) static RENEW: Script = Script::new("dlock_renew", include_str!("lua/renew.lua"));
/// Releases a semaphore permit or a read hold (zset member).
pub(crate) static ZSET_RELEASE: Script =
    Script::new("dlock_zset_release", include_str!("lua/zset_release.lua"));
/// Releases a write hold (string key holding the hold id).
pub(crate) static STRING_RELEASE: Script = Script::new(
    "dlock_string_release",
    include_str!("lua/string_release.lua"),
);
/// Grants a semaphore permit while fewer than the permits are held.
pub(crate) static SEM_ACQUIRE: Script =
    Script::new("dlock_sem_acquire", include_str!("lua/sem_acquire.lua"));
/// Grants a read hold while no writer holds or waits.
pub(crate) static RW_READ: Script = Script::new("dlock_rw_read", include_str!("lua/rw_read.lua"));
/// Grants the write hold, or records the writer's intent so new readers wait.
pub(crate) static RW_WRITE: Script =
    Script::new("dlock_rw_write", include_str!("lua/rw_write.lua"));

/// How long a fair waiter's place in line lasts without a refresh (waiters refresh it well
/// before): a waiter that died leaves the line after this.
pub(crate) const QUEUE_ENTRY_MS: u64 = 2000;
/// Lease of a hand-off until the new holder's first renewal (sent at once): a waiter that died
/// just before its turn holds the lock at most this long.
pub(crate) const CLAIM_MS: u64 = 2000;

/// Reads every key of one lock name (mutex, semaphore, read-write lock) for operators.
pub(crate) static INSPECT: Script = Script::new("dlock_inspect", include_str!("lua/inspect.lua"));
/// Frees a mutex whoever holds it, waking or handing off to its waiters (fence kept).
pub(crate) static FORCE_RELEASE: Script =
    Script::new("dlock_force_release", include_str!("lua/force_release.lua"));
