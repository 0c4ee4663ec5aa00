//! Inspection for operators: what Redis holds about one lock ([`LockClient::inspect`]), the
//! locks held in the namespace ([`LockClient::held_locks`]) and freeing a lock whoever holds
//! it ([`LockClient::force_release`]).

use std::collections::HashSet;
use std::time::Duration;

use fred::types::Value;
use futures::{StreamExt, TryStreamExt};
use tracing::Instrument;

use crate::error::Error;
use crate::keys::{check_name, conn, queue_keys, waiting_key};
use crate::scripts::{CLAIM_MS, FORCE_RELEASE, INSPECT};
use crate::state::LockClient;

/// Fair-line entries [`LockClient::inspect`] returns at most.
const MAX_LINE: usize = 1000;
/// Keys [`LockClient::held_locks`] looks at, at most, before it stops (and says so).
const MAX_SCANNED: usize = 100_000;
/// Locks [`LockClient::held_locks`] inspects at once.
const CONCURRENT_INSPECTS: usize = 16;
/// A fence is taken for the grant's server time (µs) when it is within this of now.
const FENCE_AS_TIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What kind of lock a name holds.
///
/// ```
/// assert_eq!(dlock::LockKind::Semaphore.name(), "semaphore");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockKind {
    /// A mutex ([`LockClient::lock`]), fair or not.
    Lock,
    /// A semaphore ([`LockClient::semaphore`]).
    Semaphore,
    /// A read-write lock ([`LockClient::rwlock`]).
    RwLock,
    /// A key of the lock's shape holds a type dlock never writes there: the text names the
    /// key and its type (someone else's key under the namespace).
    Unknown(String),
}

impl LockKind {
    /// `lock`, `semaphore`, `rwlock` or `unknown`.
    ///
    /// ```
    /// assert_eq!(dlock::LockKind::Unknown("x".into()).name(), "unknown");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            LockKind::Lock => "lock",
            LockKind::Semaphore => "semaphore",
            LockKind::RwLock => "rwlock",
            LockKind::Unknown(_) => "unknown",
        }
    }
}

/// One held lock as Redis has it ([`LockClient::inspect`]).
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// if let Some(info) = locks.inspect("product:42").await? {
///     println!("{} held by {:?} for {:?}, {} waiting", info.name, info.owners, info.held_for, info.fair_line.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    /// The lock's name.
    pub name: String,
    /// What it is.
    pub kind: LockKind,
    /// Who holds it: the mutex's owner id, the writer's hold id, or the live readers' or
    /// permits' ids.
    pub owners: Vec<String>,
    /// The current fencing token (mutex, or a read-write lock's writer).
    pub fence: Option<u64>,
    /// Lease left (a mutex's or writer's key TTL; for readers and permits, until the last
    /// one ends).
    pub ttl_left: Option<Duration>,
    /// Holds: a mutex's re-entrant holds, live readers or permits, 1 for a writer.
    pub holds: u32,
    /// Fair waiters in line order (ids `<owner>|<hold field>|<lease ms>`, live entries only,
    /// at most 1,000); for a read-write lock, the waiting writer's hold id.
    pub fair_line: Vec<String>,
    /// Whether a non-fair waiter announced itself (a release then publishes a wake-up).
    pub waiting: bool,
    /// Server time minus the fence's grant time, when the fence is a time (it is the server
    /// time in µs at the grant, unless tokens ran ahead of the clock).
    pub held_for: Option<Duration>,
}

/// What [`LockClient::held_locks`] found.
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// let held = locks.held_locks(100).await?;
/// if !held.complete { println!("more than shown"); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldLocks {
    /// Held locks, sorted by name.
    pub locks: Vec<LockInfo>,
    /// False when the scan stopped early: `limit` locks found, or 100,000 keys looked at.
    pub complete: bool,
    /// Keys the scan looked at.
    pub scanned: usize,
}

/// A lock name and the kind its key says, from a key of the namespace (`None`: a sibling key
/// such as `:fence` or `:queue`, or a foreign key).
fn classify(rest: &str) -> Option<(&str, LockKind)> {
    fn inner(s: &str) -> Option<&str> {
        let n = s.strip_prefix('{')?.strip_suffix('}')?;
        (!n.is_empty() && !n.contains(['{', '}'])).then_some(n)
    }
    if let Some(n) = inner(rest) {
        return Some((n, LockKind::Lock));
    }
    if let Some(n) = rest.strip_prefix("sem:").and_then(inner) {
        return Some((n, LockKind::Semaphore));
    }
    let rw = rest.strip_prefix("rw:")?;
    let body = rw.strip_suffix(":w").or_else(|| rw.strip_suffix(":r"))?;
    inner(body).map(|n| (n, LockKind::RwLock))
}

fn decode(what: &str, reason: &str) -> Error {
    Error::Unavailable(redis_conn::Error::Parse(format!("{what}: {reason}")))
}

impl LockClient {
    /// Every key of the name, in the order `inspect.lua` reads them.
    fn inspect_keys(&self, name: &str) -> Vec<String> {
        let key = self.key(name);
        let (queue, queue_ttl) = queue_keys(&key);
        let p = self.inner.ns.prefix();
        let sem = format!("{p}:sem:{{{name}}}");
        let rw = |part: &str| format!("{p}:rw:{{{name}}}{part}");
        let sem_waiting = waiting_key(&sem);
        vec![
            key.clone(),
            self.fence_key(name),
            waiting_key(&key),
            queue,
            queue_ttl,
            sem,
            sem_waiting,
            rw(":w"),
            rw(":r"),
            rw(":intent"),
            rw(":waiting"),
            rw(":fence"),
        ]
    }

    /// What Redis holds about the lock `name` (mutex, semaphore or read-write lock), read in
    /// one script over all its keys (one hash tag); `None` when it is not held. A key of the
    /// lock's shape holding another type gives [`LockKind::Unknown`] naming it.
    ///
    /// Errors: [`Error::Config`] for an invalid name; [`Error::NoPermission`] /
    /// [`Error::Unavailable`] from Redis.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let guard = locks.lock("report").acquire().await?;
    /// let info = locks.inspect("report").await?.expect("held");
    /// assert_eq!(info.fence, Some(guard.fence()));
    /// # Ok(()) }
    /// ```
    pub async fn inspect(&self, name: &str) -> Result<Option<LockInfo>, Error> {
        check_name(name)?;
        let keys = self.inspect_keys(name);
        let span = tracing::debug_span!("dlock.inspect", name);
        let reply: Value = INSPECT
            .run(
                conn(&self.inner.redis, &keys[0]),
                keys.clone(),
                vec![MAX_LINE.to_string()],
            )
            .instrument(span)
            .await?;
        parse_info(name, reply)
    }

    /// The locks held in this client's namespace (mutexes, semaphores, read-write locks),
    /// found by `SCAN` over the namespace on every primary and read with [`LockClient::inspect`]
    /// (16 at a time). Sibling keys (fence counters, flags, fair lines) are skipped, and so
    /// are keys of the lock's shape holding other types. Bounded: it stops at `limit` locks or
    /// after looking at 100,000 keys, and says so in [`HeldLocks::complete`].
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// for l in locks.held_locks(500).await?.locks {
    ///     println!("{} {:?} {:?}", l.name, l.owners, l.ttl_left);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn held_locks(&self, limit: usize) -> Result<HeldLocks, Error> {
        let prefix = format!("{}:", self.inner.ns.prefix());
        let pattern = self.inner.ns.pattern();
        let span = tracing::debug_span!("dlock.held_locks", %pattern, limit);
        async move {
            let mut pages = std::pin::pin!(redis_conn::scan_keys(&self.inner.redis, &pattern, 500));
            let mut names: Vec<String> = Vec::new();
            let mut seen = HashSet::new();
            let (mut scanned, mut complete) = (0usize, true);
            let mut locks = Vec::new();
            while let Some(page) = pages.try_next().await? {
                scanned += page.len();
                for k in page {
                    let key = String::from_utf8_lossy(k.as_bytes()).into_owned();
                    if let Some((name, _)) = key.strip_prefix(&prefix).and_then(classify)
                        && seen.insert(name.to_string())
                    {
                        names.push(name.to_string());
                    }
                }
                let found: Vec<Option<LockInfo>> = futures::stream::iter(names.drain(..))
                    .map(|n| async move { self.inspect(&n).await })
                    .buffered(CONCURRENT_INSPECTS)
                    .try_collect()
                    .await?;
                locks.extend(
                    found
                        .into_iter()
                        .flatten()
                        .filter(|i| !matches!(i.kind, LockKind::Unknown(_))),
                );
                if locks.len() >= limit || scanned >= MAX_SCANNED {
                    complete = false;
                    break;
                }
            }
            locks.sort_by(|a, b| a.name.cmp(&b.name));
            if locks.len() > limit {
                locks.truncate(limit);
                complete = false;
            }
            Ok(HeldLocks {
                locks,
                complete,
                scanned,
            })
        }
        .instrument(span)
        .await
    }

    /// Frees the mutex `name` whoever holds it, with every re-entrant hold: the lock hash is
    /// deleted in one script that then wakes waiters as the last release does (fair line: the
    /// first live waiter is handed the lock, with a fresh token; otherwise a wake-up is
    /// published when someone waits). The fence counter is kept, so every later token is
    /// larger than the freed holder's. `Ok(false)` when the lock was not held (semaphores and
    /// read-write locks are not freed by this).
    ///
    /// **The freed holder may still be running.** Nothing stops it: its next renewal finds
    /// the hold gone and fires its [`Guard::lost`](crate::Guard::lost), and until then (up to a
    /// third of its lease, or longer if it is stalled) it believes it holds the lock while the
    /// next holder does too. Only fencing protects the resource then: writes must carry
    /// [`Guard::fence`](crate::Guard::fence) and the resource must refuse smaller tokens
    /// ([`fenced_set`](crate::fenced_set)). If the freed holder's client was handing the lock
    /// on locally, its latest local tokens may be above the counter; the next grant still
    /// takes `max(counter + 1, server µs)`, which passes them unless the server clock is behind.
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// if locks.force_release("stuck-job").await? {
    ///     println!("freed; the old holder's writes are refused by fence");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn force_release(&self, name: &str) -> Result<bool, Error> {
        check_name(name)?;
        let key = self.key(name);
        let (queue, queue_ttl) = queue_keys(&key);
        let fence = self.fence_key(name);
        let waiting = waiting_key(&key);
        let span = tracing::warn_span!("dlock.force_release", name);
        let freed: i64 = FORCE_RELEASE
            .run(
                conn(&self.inner.redis, &key),
                vec![
                    key.as_str(),
                    fence.as_str(),
                    waiting.as_str(),
                    queue.as_str(),
                    queue_ttl.as_str(),
                ],
                vec![
                    self.inner.channel.clone(),
                    name.to_string(),
                    CLAIM_MS.to_string(),
                ],
            )
            .instrument(span)
            .await?;
        if freed > 0 {
            tracing::warn!(name, handed_off = freed == 2, "lock force-released");
        }
        Ok(freed > 0)
    }
}

/// The inspect script's reply.
fn parse_info(name: &str, reply: Value) -> Result<Option<LockInfo>, Error> {
    let what = format!("inspect {name:?}");
    let Value::Array(items) = reply else {
        return Err(decode(&what, "not an array"));
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_string);
    let kind = match text(items.first()).as_deref() {
        Some("none") => return Ok(None),
        Some("lock") => LockKind::Lock,
        Some("semaphore") => LockKind::Semaphore,
        Some("rwlock") => LockKind::RwLock,
        Some("unknown") => {
            let key = text(items.get(1)).unwrap_or_default();
            let ty = text(items.get(2)).unwrap_or_default();
            return Ok(Some(LockInfo {
                name: name.to_string(),
                kind: LockKind::Unknown(format!("key {key} is a {ty}")),
                owners: Vec::new(),
                fence: None,
                ttl_left: None,
                holds: 0,
                fair_line: Vec::new(),
                waiting: false,
                held_for: None,
            }));
        }
        other => return Err(decode(&what, &format!("unknown kind {other:?}"))),
    };
    let list = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_string).collect(),
            _ => Vec::new(),
        }
    };
    let int = |v: Option<&Value>| v.and_then(Value::as_i64);
    let fence = text(items.get(2)).and_then(|f| f.parse::<u64>().ok());
    let ttl_left = int(items.get(3))
        .filter(|ms| *ms >= 0)
        .map(|ms| Duration::from_millis(ms.unsigned_abs()));
    let now_us = text(items.get(7))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| decode(&what, "no server time"))?;
    let held_for = fence.and_then(|f| {
        let ago = Duration::from_micros(now_us.checked_sub(f)?);
        (ago < FENCE_AS_TIME).then_some(ago)
    });
    Ok(Some(LockInfo {
        name: name.to_string(),
        kind,
        owners: list(items.get(1)),
        fence,
        ttl_left,
        holds: int(items.get(4))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        fair_line: list(items.get(5)),
        waiting: int(items.get(6)) == Some(1),
        held_for,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lock_keys_are_classified() {
        assert_eq!(classify("{a:b}"), Some(("a:b", LockKind::Lock)));
        assert_eq!(classify("sem:{s}"), Some(("s", LockKind::Semaphore)));
        assert_eq!(classify("rw:{r}:w"), Some(("r", LockKind::RwLock)));
        assert_eq!(classify("rw:{r}:r"), Some(("r", LockKind::RwLock)));
        for sibling in [
            "{a}:fence",
            "{a}:waiting",
            "{a}:queue",
            "{a}:queue:ttl",
            "sem:{s}:waiting",
            "rw:{r}:intent",
            "rw:{r}:fence",
            "__released__",
            "{}",
            "plain",
        ] {
            assert_eq!(classify(sibling), None, "{sibling}");
        }
    }

    #[test]
    fn replies_of_every_shape_parse_without_panicking() {
        let s = |v: &str| Value::String(v.into());
        let held = Value::Array(vec![
            s("lock"),
            Value::Array(vec![s("owner-1")]),
            s("1700000000000000"),
            Value::Integer(2500),
            Value::Integer(2),
            Value::Array(vec![s("o2|h:x|3000")]),
            Value::Integer(1),
            s("1700000001500000"),
        ]);
        let info = parse_info("n", held).expect("parses").expect("held");
        assert_eq!(info.owners, ["owner-1"]);
        assert_eq!(info.holds, 2);
        assert_eq!(info.held_for, Some(Duration::from_millis(1500)));
        assert_eq!(info.ttl_left, Some(Duration::from_millis(2500)));
        assert!(info.waiting);
        assert_eq!(
            parse_info("n", Value::Array(vec![s("none")])).expect("ok"),
            None
        );
        let odd = parse_info("n", Value::Array(vec![s("unknown"), s("k"), s("list")]));
        assert!(matches!(
            odd,
            Ok(Some(LockInfo {
                kind: LockKind::Unknown(_),
                ..
            }))
        ));
        assert!(parse_info("n", Value::Null).is_err());
        assert!(parse_info("n", Value::Array(vec![s("lock")])).is_err());
    }
}
