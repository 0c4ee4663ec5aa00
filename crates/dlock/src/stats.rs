//! Counters kept locally for [`crate::LockClient::stats`] and exported through the `metrics`
//! facade (`redkit_dlock_*{namespace}`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters of one lock client since it was created.
///
/// ```no_run
/// # fn demo(locks: dlock::LockClient) {
/// let s = locks.stats();
/// println!("{} acquired, {} after waiting, {} leases lost", s.acquired, s.handoffs, s.losses);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Grants (first holds and re-entries).
    pub acquired: u64,
    /// Grants that had to wait for another holder first.
    pub handoffs: u64,
    /// Releases that passed the lock to a waiter of this client without a Redis round trip
    /// (see [`crate::LockConfig::local_handoffs`]).
    pub local_handoffs: u64,
    /// Acquires that gave up at their wait limit.
    pub timeouts: u64,
    /// Releases sent by `release()`.
    pub released: u64,
    /// Releases that found the hold already gone.
    pub released_expired: u64,
    /// Confirmed lease renewals.
    pub renewals: u64,
    /// Renewal calls that failed (Redis errors).
    pub renewal_failures: u64,
    /// Leases lost while held.
    pub losses: u64,
    /// Worst lateness of a renewal against its schedule, µs.
    pub max_renewal_lateness_us: u64,
    /// Holds the watchdog renews right now.
    pub held: u64,
}

#[derive(Default)]
struct Local {
    acquired: AtomicU64,
    handoffs: AtomicU64,
    local_handoffs: AtomicU64,
    timeouts: AtomicU64,
    released: AtomicU64,
    released_expired: AtomicU64,
    renewals: AtomicU64,
    renewal_failures: AtomicU64,
    losses: AtomicU64,
    max_lateness_us: AtomicU64,
}

#[derive(Clone)]
pub(crate) struct Metrics {
    local: Arc<Local>,
    acquire_seconds: redis_conn::telemetry::Histogram,
    wait_seconds: redis_conn::telemetry::Histogram,
    lateness_seconds: redis_conn::telemetry::Histogram,
    acquired: redis_conn::telemetry::Counter,
    handoffs: redis_conn::telemetry::Counter,
    local_handoffs: redis_conn::telemetry::Counter,
    timeouts: redis_conn::telemetry::Counter,
    renewals: redis_conn::telemetry::Counter,
    renewal_failures: redis_conn::telemetry::Counter,
    losses: redis_conn::telemetry::Counter,
}

impl Metrics {
    pub(crate) fn new(namespace: &str) -> Metrics {
        let ns = namespace.to_string();
        Metrics {
            local: Arc::new(Local::default()),
            acquire_seconds: redis_conn::telemetry::histogram!("redkit_dlock_acquire_seconds", "namespace" => ns.clone()),
            wait_seconds: redis_conn::telemetry::histogram!("redkit_dlock_wait_seconds", "namespace" => ns.clone()),
            lateness_seconds: redis_conn::telemetry::histogram!("redkit_dlock_renewal_lateness_seconds", "namespace" => ns.clone()),
            acquired: redis_conn::telemetry::counter!("redkit_dlock_acquired_total", "namespace" => ns.clone()),
            handoffs: redis_conn::telemetry::counter!("redkit_dlock_handoffs_total", "namespace" => ns.clone()),
            local_handoffs: redis_conn::telemetry::counter!("redkit_dlock_local_handoffs_total", "namespace" => ns.clone()),
            timeouts: redis_conn::telemetry::counter!("redkit_dlock_timeouts_total", "namespace" => ns.clone()),
            renewals: redis_conn::telemetry::counter!("redkit_dlock_renewals_total", "namespace" => ns.clone()),
            renewal_failures: redis_conn::telemetry::counter!("redkit_dlock_renewal_failures_total", "namespace" => ns.clone()),
            losses: redis_conn::telemetry::counter!("redkit_dlock_leases_lost_total", "namespace" => ns),
        }
    }

    pub(crate) fn acquired(&self, took: Duration, waited: Duration, handoff: bool) {
        self.local.acquired.fetch_add(1, Ordering::Relaxed);
        self.acquired.increment(1);
        self.acquire_seconds.record(took.as_secs_f64());
        if handoff {
            self.local.handoffs.fetch_add(1, Ordering::Relaxed);
            self.handoffs.increment(1);
            self.wait_seconds.record(waited.as_secs_f64());
        }
    }

    /// A grant that had to wait: it took as long as it waited, from `started` until now.
    pub(crate) fn acquired_after_wait(&self, started: Instant) {
        let waited = started.elapsed();
        self.acquired(waited, waited, true);
    }

    pub(crate) fn passed_locally(&self) {
        self.local.local_handoffs.fetch_add(1, Ordering::Relaxed);
        self.local_handoffs.increment(1);
    }

    pub(crate) fn timed_out(&self) {
        self.local.timeouts.fetch_add(1, Ordering::Relaxed);
        self.timeouts.increment(1);
    }

    pub(crate) fn released(&self, expired: bool) {
        self.local.released.fetch_add(1, Ordering::Relaxed);
        if expired {
            self.local.released_expired.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn renewed(&self) {
        self.local.renewals.fetch_add(1, Ordering::Relaxed);
        self.renewals.increment(1);
    }

    pub(crate) fn renewal_failed(&self) {
        self.local.renewal_failures.fetch_add(1, Ordering::Relaxed);
        self.renewal_failures.increment(1);
    }

    pub(crate) fn renewal_lateness(&self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.local.max_lateness_us.fetch_max(us, Ordering::Relaxed);
        self.lateness_seconds.record(late.as_secs_f64());
    }

    pub(crate) fn lost(&self) {
        self.local.losses.fetch_add(1, Ordering::Relaxed);
        self.losses.increment(1);
    }

    pub(crate) fn snapshot(&self, held: usize) -> Stats {
        let l = &self.local;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            acquired: r(&l.acquired),
            handoffs: r(&l.handoffs),
            local_handoffs: r(&l.local_handoffs),
            timeouts: r(&l.timeouts),
            released: r(&l.released),
            released_expired: r(&l.released_expired),
            renewals: r(&l.renewals),
            renewal_failures: r(&l.renewal_failures),
            losses: r(&l.losses),
            max_renewal_lateness_us: r(&l.max_lateness_us),
            held: held as u64,
        }
    }
}
