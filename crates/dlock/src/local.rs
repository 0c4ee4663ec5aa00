//! Local hand-offs (lock cohorting): a holder that releases a mutex while another request of
//! the same client waits for it passes the Redis hold straight to that request — no Redis round
//! trip, the next fencing token, the same lease — up to [`crate::LockConfig::local_handoffs`]
//! times in a row. The release that finally goes to Redis settles what the run changed: it
//! raises the token counter past every token handed out and (fair mode) takes the waiters that
//! were served locally out of the Redis line.
//!
//! While this client holds a lock passably and the run has room, new requests of this client
//! for it wait in the local line without touching Redis at all; when the hold goes back to
//! Redis, everybody in the local line is told to retry through Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::hold::{Hold, Kind, State, next_hold_id, settled};
use crate::state::{Guard, Line, LocalWaiter, LockClient, Passed};
use crate::sync::lock;

/// A request's place in its client's local line: leaves it when dropped. A guard passed to it
/// just before is dropped with it, and that guard's `Drop` passes the lock on or releases it.
pub(crate) struct LocalSlot<'a> {
    client: &'a LockClient,
    name: &'a str,
    lease: Duration,
    fair: bool,
    waiter: String,
    id: u64,
    rx: Option<oneshot::Receiver<Passed>>,
}

impl<'a> LocalSlot<'a> {
    /// A slot for a request (not in line yet). Requests with an explicit owner, or a client
    /// with local hand-offs off, never join.
    pub(crate) fn new(
        client: &'a LockClient,
        name: &'a str,
        lease: Duration,
        fair: bool,
        anonymous: bool,
    ) -> Option<LocalSlot<'a>> {
        (anonymous && client.inner.cfg.local_handoffs > 0).then(|| LocalSlot {
            client,
            name,
            lease,
            fair,
            waiter: String::new(),
            id: 0,
            rx: None,
        })
    }

    /// Joins the line unless already in it; `waiter` is the request's entry in the Redis line
    /// (fair mode), removed by the release that ends a run of local hand-offs.
    pub(crate) fn join(&mut self, waiter: &str) {
        if self.rx.is_none() {
            let mut lines = lock(&self.client.inner.lines);
            let line = lines.entry(self.name.to_string()).or_default();
            self.push(line, waiter);
        }
    }

    /// Joins the line without asking Redis when this client holds the lock passably and the
    /// run has room for everybody in line plus this request: the hold will come here. Returns
    /// the holder then (if it loses its lease instead, the request should ask Redis).
    pub(crate) fn join_behind_holder(&mut self) -> Option<Arc<Hold>> {
        let cap = self.client.inner.cfg.local_handoffs as usize;
        let mut lines = lock(&self.client.inner.lines);
        let line = lines.get_mut(self.name)?;
        let h = line.holder.clone()?;
        let room = h.state() == State::Held
            && Instant::now() < h.deadline()
            && h.lease == self.lease
            && (h.spec.kind == Kind::FairLock) == self.fair
            && lock(&h.cohort).streak as usize + line.waiters.len() < cap;
        if !room {
            return None;
        }
        self.push(line, "");
        Some(h)
    }

    fn push(&mut self, line: &mut Line, waiter: &str) {
        let (tx, rx) = oneshot::channel();
        self.id = next_hold_id();
        self.waiter = waiter.to_string();
        line.waiters.push_back(LocalWaiter {
            id: self.id,
            lease: self.lease,
            fair: self.fair,
            waiter: self.waiter.clone(),
            tx,
        });
        self.rx = Some(rx);
    }

    /// What the line tells this request (pending forever while it is not in line).
    pub(crate) async fn passed(slot: &mut Option<LocalSlot<'a>>) -> Passed {
        let Some(rx) = slot.as_mut().and_then(|s| s.rx.as_mut()) else {
            return std::future::pending().await;
        };
        let passed = rx.await;
        let Some(s) = slot.as_mut() else {
            return Passed::Retry;
        };
        s.rx = None; // out of line now: whoever sent took it out
        match passed {
            // Renewed from now on (a hold nobody takes is not kept alive: it lapses).
            Ok(Passed::Guard(g)) => {
                s.client.inner.watchdog.register(g.hold().clone());
                Passed::Guard(g)
            }
            Ok(p) => p,
            // Cannot happen (senders always send); treat as "try Redis".
            Err(_) => Passed::Retry,
        }
    }
}

impl Drop for LocalSlot<'_> {
    fn drop(&mut self) {
        if self.rx.is_none() {
            return;
        }
        let mut lines = lock(&self.client.inner.lines);
        if let Some(line) = lines.get_mut(self.name) {
            line.waiters.retain(|w| w.id != self.id);
            if line.waiters.is_empty() && line.holder.is_none() {
                lines.remove(self.name);
            }
        }
    }
}

/// Completes when this client's holder of `name` (starting with `holder`, following the run
/// as it is passed on) loses its lease, or when the run is over.
pub(crate) async fn holder_lost(client: &LockClient, name: &str, mut holder: Arc<Hold>) {
    loop {
        if settled(&holder).await != State::Released {
            return;
        }
        let next = lock(&client.inner.lines)
            .get(name)
            .and_then(|l| l.holder.clone());
        match next {
            Some(h) if h.id != holder.id => holder = h,
            _ => return,
        }
    }
}

/// Records a passable grant as this client's holder of the lock.
pub(crate) fn held(client: &LockClient, hold: &Arc<Hold>) {
    if client.inner.cfg.local_handoffs > 0 {
        lock(&client.inner.lines)
            .entry(hold.name.clone())
            .or_default()
            .holder = Some(hold.clone());
    }
}

/// The hold goes back to Redis (released there, or given to the janitor): everybody in the
/// local line retries through Redis.
pub(crate) fn returned(client: &LockClient, hold: &Hold) {
    retry(returning(client, hold));
}

/// Takes the local line of a hold that goes back to Redis; tell them with [`retry`] once the
/// release is answered, so they ask Redis no sooner than waiters of other clients that the
/// release wakes (otherwise, being closer, they would always win a non-fair lock).
pub(crate) fn returning(client: &LockClient, hold: &Hold) -> Vec<oneshot::Sender<Passed>> {
    if !hold.passable {
        return Vec::new();
    }
    let mut lines = lock(&client.inner.lines);
    let Some(line) = lines.get_mut(&hold.name) else {
        return Vec::new();
    };
    if line.holder.as_ref().is_none_or(|h| h.id != hold.id) {
        return Vec::new();
    }
    let waiters = line.waiters.drain(..).map(|w| w.tx).collect();
    lines.remove(&hold.name);
    waiters
}

/// Tells waiters taken from a local line to retry through Redis.
pub(crate) fn retry(waiters: Vec<oneshot::Sender<Passed>>) {
    for tx in waiters {
        let _ = tx.send(Passed::Retry);
    }
}

/// Passes a held mutex to the first waiter of the same client in its local line: the waiter
/// gets a successor of the same Redis hold (same lease deadline, renewed by the watchdog) with
/// the next token. Refused when the hold is not passable, lost, past its deadline, has been
/// passed `local_handoffs` times in a row, or when the first waiter has another lease or mode.
/// On refusal the hold to release in Redis comes back: the given one, or a successor that a
/// waiter cancelled in the meantime left behind.
pub(crate) fn pass(
    client: &LockClient,
    mut hold: Arc<Hold>,
    mut fence: u64,
) -> Result<(), (Arc<Hold>, u64)> {
    if !hold.passable {
        return Err((hold, fence));
    }
    let fair = hold.spec.kind == Kind::FairLock;
    loop {
        let (next, successor) = {
            let mut lines = lock(&client.inner.lines);
            let Some(line) = lines.get_mut(&hold.name) else {
                return Err((hold, fence));
            };
            // Only this client's current holder passes (an older hold whose key Redis lost
            // while a newer grant came here must not start a second run), with some lease
            // left for the next holder.
            let streak = lock(&hold.cohort).streak;
            if line.holder.as_ref().is_none_or(|h| h.id != hold.id)
                || hold.state() != State::Held
                || streak >= client.inner.cfg.local_handoffs
                || Instant::now() + client.drift(hold.lease) >= hold.deadline()
            {
                return Err((hold, fence));
            }
            while line.waiters.front().is_some_and(|w| w.tx.is_closed()) {
                line.waiters.pop_front();
            }
            let next = match line.waiters.front() {
                Some(w) if w.lease == hold.lease && w.fair == fair => line.waiters.pop_front(),
                _ => None,
            };
            let Some(next) = next else {
                return Err((hold, fence));
            };
            // Checked and marked in one step: a renewal refused meanwhile wins.
            if !hold.release_if_held() {
                line.waiters.push_front(next);
                return Err((hold, fence));
            }
            let mut cohort = std::mem::take(&mut *lock(&hold.cohort));
            cohort.streak += 1;
            cohort.floor = fence + 1;
            if !next.waiter.is_empty() {
                cohort.left_line.push(next.waiter.clone());
            }
            let successor = Arc::new(hold.successor(cohort));
            line.holder = Some(successor.clone());
            (next, successor)
        };
        // The receiver registers the successor with the watchdog when it takes it.
        client.inner.watchdog.unregister(hold.id);
        match next.tx.send(Passed::Guard(Guard::new(
            client.clone(),
            successor,
            fence + 1,
        ))) {
            Ok(()) => {
                client.inner.metrics.passed_locally();
                return Ok(());
            }
            // That waiter was cancelled just now: offer the successor to the next one.
            Err(Passed::Guard(guard)) => (hold, fence) = guard.into_parts(),
            Err(Passed::Retry) => return Ok(()), // not what was sent
        }
    }
}
