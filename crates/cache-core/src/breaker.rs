//! A circuit breaker in front of Redis: after `failures` consecutive connection-level errors
//! it opens for `open_for`, during which cache calls skip Redis at once (a dead Redis then costs
//! no timeout per call); then one probe call is let through (half-open) and its outcome closes
//! or re-opens the breaker.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Redis calls go through.
    Closed,
    /// Redis calls are skipped until the cool-down ends.
    Open,
    /// One probe call is in flight; the others are skipped.
    HalfOpen,
}

impl BreakerState {
    /// The state's name: `closed`, `open` or `half-open`.
    ///
    /// ```
    /// assert_eq!(cache_core::BreakerState::HalfOpen.name(), "half-open");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// The state a [`BreakerState::name`] names.
    ///
    /// ```
    /// use cache_core::BreakerState;
    /// assert_eq!(BreakerState::from_name("open"), Some(BreakerState::Open));
    /// assert_eq!(BreakerState::from_name("ajar"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<BreakerState> {
        [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<Inner>,
    /// Mirrors `state == Closed { failures: 0 }`, so the healthy path (every call while Redis
    /// answers) reads one shared atomic instead of taking the lock twice per call.
    healthy: AtomicBool,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker {
            state: Mutex::new(Inner::Closed { failures: 0 }),
            healthy: AtomicBool::new(true),
            threshold: threshold.max(1),
            open_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may go to Redis now; an open breaker whose cool-down ended lets exactly
    /// one probe through.
    pub(crate) fn allow(&self) -> bool {
        if self.healthy.load(Ordering::Acquire) {
            return true;
        }
        let mut s = self.lock();
        match *s {
            Inner::Closed { .. } => true,
            Inner::HalfOpen => false,
            Inner::Open { until } if Instant::now() >= until => {
                *s = Inner::HalfOpen;
                true
            }
            Inner::Open { .. } => false,
        }
    }

    /// Records a call's outcome; `failed` only for connection-level failures.
    pub(crate) fn record(&self, failed: bool) -> Option<BreakerState> {
        if !failed && self.healthy.load(Ordering::Acquire) {
            return None;
        }
        let mut s = self.lock();
        let before = std::mem::discriminant(&*s);
        *s = match (&*s, failed) {
            (_, false) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, true) if failures + 1 < self.threshold => Inner::Closed {
                failures: failures + 1,
            },
            (_, true) => Inner::Open {
                until: Instant::now() + self.open_for,
            },
        };
        self.healthy.store(
            matches!(*s, Inner::Closed { failures: 0 }),
            Ordering::Release,
        );
        (std::mem::discriminant(&*s) != before).then(|| match *s {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_once_and_closes_on_success() {
        let b = Breaker::new(3, Duration::from_millis(30));
        assert!(b.allow());
        b.record(true);
        b.record(true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.record(true), Some(BreakerState::Open));
        assert!(!b.allow(), "open: calls skipped");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "cool-down over: one probe");
        assert!(!b.allow(), "only one probe at a time");
        assert_eq!(
            b.record(true),
            Some(BreakerState::Open),
            "failed probe re-opens"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        assert_eq!(b.record(false), Some(BreakerState::Closed));
        assert!(b.allow());
    }
}
