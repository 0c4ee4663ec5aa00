//! The lock series of `/metrics`.

use super::text::{comment, family, labels};
use crate::console::Console;

/// Locks read per namespace, at most.
const LIMIT: usize = 1000;

/// The lock series of `/metrics`: per namespace, how many locks are held, the longest hold,
/// the waiters, and each held lock's hold time. Returns the sections that failed.
pub(crate) async fn series(console: &Console, out: &mut String, up: &mut f64) -> u64 {
    let namespaces = match console.lock_namespaces().await {
        Ok(n) => n,
        Err(e) => {
            if e.is_redis() {
                *up = 0.0;
            }
            comment(out, "locks", &e.to_string());
            return 1;
        }
    };
    let mut errors = 0;
    let (mut held, mut oldest, mut waiters, mut each) = (vec![], vec![], vec![], vec![]);
    for ns in &namespaces {
        let l = labels(&[("namespace", &ns.namespace)]);
        match console.held_locks(&ns.namespace, LIMIT).await {
            Ok(h) => {
                held.push((l.clone(), h.locks.len() as f64));
                let longest = h.locks.iter().filter_map(|x| x.held_for_ms).max();
                oldest.push((l.clone(), longest.map_or(0.0, |ms| ms as f64 / 1000.0)));
                let w: usize = h
                    .locks
                    .iter()
                    .map(|x| x.waiters + usize::from(x.waiting && x.waiters == 0))
                    .sum();
                waiters.push((l, w as f64));
                for x in &h.locks {
                    if let Some(ms) = x.held_for_ms {
                        each.push((
                            labels(&[("namespace", &ns.namespace), ("lock", &x.name)]),
                            ms as f64 / 1000.0,
                        ));
                    }
                }
            }
            Err(e) => {
                errors += 1;
                if e.is_redis() {
                    *up = 0.0;
                }
                comment(out, &format!("locks {}", ns.namespace), &e.to_string());
            }
        }
    }
    family(
        out,
        "redkit_lock_held",
        "gauge",
        "Locks held now (mutexes, semaphores, read-write locks).",
        &held,
    );
    family(
        out,
        "redkit_lock_oldest_held_seconds",
        "gauge",
        "The longest current hold of the namespace (0 when none is held).",
        &oldest,
    );
    family(
        out,
        "redkit_lock_waiters",
        "gauge",
        "Waiters: fair waiters in line, plus 1 per lock a non-fair waiter announced itself on.",
        &waiters,
    );
    family(
        out,
        "redkit_lock_held_seconds",
        "gauge",
        "How long each held lock has been held (at most 1,000 locks per namespace).",
        &each,
    );
    errors
}
