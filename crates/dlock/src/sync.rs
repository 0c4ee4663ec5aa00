//! The crate's one mutex helper.

use std::sync::Mutex;

/// Locks `m`, ignoring poisoning: the data behind every lock of this crate stays consistent
/// even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
