//! Lock namespaces as the console sees them: discovery ([`Console::lock_namespaces`]), the
//! locks held in one ([`Console::held_locks`]), one lock ([`Console::lock`]) and freeing a
//! stuck one ([`Console::force_release`]). Everything is read through dlock's own inspection
//! (`LockClient::inspect`, one script per lock), so the console never parses lock keys.

use dlock::{LockClient, LockConfig, LockInfo, LockKind};
use futures::TryStreamExt;
use redis_conn::registry::{self, Kind};
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;

/// Keys examined at most by the fallback scan for lock namespaces written before the
/// registry, and by the existence check of a namespace the registry does not list.
const SCAN_BUDGET: usize = 200_000;

/// A lock namespace: registered by a `LockClient` when it was created, or found by the
/// fallback scan (then `registered_ms` is `None`).
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// for ns in c.lock_namespaces().await? { println!("{}", ns.namespace); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LockNamespace {
    /// The namespace (every lock's key starts with it).
    pub namespace: String,
    /// When it was first registered (Unix ms); `None` when found by scanning.
    pub registered_ms: Option<u64>,
    /// The registering client's settings (lease, wait, fair).
    pub settings: Vec<(String, String)>,
}

/// One held lock as Redis has it.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// let l = c.lock("shop:locks", "product:42").await?;
/// println!("{} held by {:?}, fence {:?}, {} waiting", l.name, l.owners, l.fence, l.waiters);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LockView {
    /// The namespace.
    pub namespace: String,
    /// The lock's name.
    pub name: String,
    /// `lock`, `semaphore`, `rwlock`, or `unknown` (a key of the lock's shape holding
    /// something dlock never writes: see `problem`).
    pub kind: String,
    /// Who holds it: the mutex's owner, the writer, or the live readers or permits.
    pub owners: Vec<String>,
    /// The current fencing token (mutex, or a read-write lock's writer).
    pub fence: Option<u64>,
    /// Lease left (ms).
    pub ttl_left_ms: Option<u64>,
    /// How long it has been held (ms), when the fence tells (it is the grant's server time).
    pub held_for_ms: Option<u64>,
    /// Re-entrant holds, live readers or permits.
    pub holds: u32,
    /// Fair waiters in line.
    pub waiters: usize,
    /// The fair line, first in line first (at most 1,000 entries).
    pub fair_line: Vec<String>,
    /// Whether a non-fair waiter announced itself.
    pub waiting: bool,
    /// What is wrong with the lock's key, for kind `unknown`.
    pub problem: Option<String>,
}

/// The locks held in one namespace ([`Console::held_locks`]).
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// let held = c.held_locks("shop:locks", 100).await?;
/// if !held.complete { println!("more than {} held", held.locks.len()); }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HeldLocksView {
    /// The namespace.
    pub namespace: String,
    /// Held locks, sorted by name.
    pub locks: Vec<LockView>,
    /// False when the listing stopped early (the limit, or 100,000 keys looked at).
    pub complete: bool,
    /// Keys the scan looked at.
    pub scanned: usize,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn view(namespace: &str, i: LockInfo) -> LockView {
    let problem = match &i.kind {
        LockKind::Unknown(why) => Some(why.clone()),
        _ => None,
    };
    LockView {
        namespace: namespace.to_string(),
        kind: i.kind.name().to_string(),
        waiters: i.fair_line.len(),
        name: i.name,
        owners: i.owners,
        fence: i.fence,
        ttl_left_ms: i.ttl_left.map(millis),
        held_for_ms: i.held_for.map(millis),
        holds: i.holds,
        fair_line: i.fair_line,
        waiting: i.waiting,
        problem,
    }
}

impl From<dlock::Error> for Error {
    fn from(e: dlock::Error) -> Error {
        match e {
            dlock::Error::Unavailable(r) | dlock::Error::NoPermission(r) => r.into(),
            dlock::Error::Config(m) => Error::Usage(m),
            other => Error::Refused(other.to_string()),
        }
    }
}

/// The namespace of a dlock fence counter key (`<ns>:{<name>}:fence`).
fn namespace_of_fence(key: &str) -> Option<&str> {
    let rest = key.strip_suffix(":fence")?;
    let open = rest.find(":{")?;
    (rest.ends_with('}') && open > 0).then(|| &rest[..open])
}

impl Console {
    /// Every lock namespace: the registry, or — when it lists none (data written before it
    /// existed) — a bounded scan for dlock's fence counters (`*:{*}:fence`).
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let n = c.lock_namespaces().await?.len();
    /// # Ok(()) }
    /// ```
    pub async fn lock_namespaces(&self) -> Result<Vec<LockNamespace>, Error> {
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Locks)).await?;
        let mut out: Vec<LockNamespace> = entries
            .into_iter()
            .map(|e| LockNamespace {
                namespace: e.prefix,
                registered_ms: Some(e.registered_ms),
                settings: e.settings,
            })
            .collect();
        if out.is_empty() {
            let mut pages = std::pin::pin!(redis_conn::scan_keys(&self.redis, "*:{*}:fence", 1000));
            let mut seen = 0usize;
            while let Some(keys) = pages.try_next().await? {
                seen += keys.len().max(1);
                for k in &keys {
                    if let Some(ns) = k.as_str().and_then(namespace_of_fence)
                        && !out.iter().any(|n| n.namespace == ns)
                    {
                        out.push(LockNamespace {
                            namespace: ns.to_string(),
                            registered_ms: None,
                            settings: Vec::new(),
                        });
                    }
                }
                if seen >= SCAN_BUDGET {
                    break;
                }
            }
        }
        out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        Ok(out)
    }

    /// A dlock client for inspecting `namespace`, or [`Error::NotFound`] when the namespace
    /// is neither registered nor has a key (so a mistyped name registers nothing).
    async fn lock_client(&self, namespace: &str) -> Result<LockClient, Error> {
        let ns = redis_conn::Namespace::new(namespace).map_err(|e| Error::Usage(e.to_string()))?;
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Locks)).await?;
        let known = entries.iter().any(|e| e.prefix == ns.prefix()) || {
            let mut pages = std::pin::pin!(redis_conn::scan_keys(&self.redis, &ns.pattern(), 1000));
            let mut seen = 0usize;
            let mut any = false;
            while let Some(keys) = pages.try_next().await? {
                if !keys.is_empty() {
                    any = true;
                    break;
                }
                seen += 1000;
                if seen >= SCAN_BUDGET {
                    break;
                }
            }
            any
        };
        if !known {
            return Err(Error::NotFound {
                kind: "lock namespace",
                name: namespace.to_string(),
            });
        }
        Ok(LockClient::new(
            self.redis.clone(),
            LockConfig::new(ns.prefix()),
        )?)
    }

    /// The locks held in `namespace` (at most `limit`), read by dlock's inspection;
    /// [`Error::NotFound`] for an unknown namespace.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// for l in c.held_locks("shop:locks", 100).await?.locks {
    ///     println!("{} {:?} {:?}", l.name, l.owners, l.ttl_left_ms);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn held_locks(&self, namespace: &str, limit: usize) -> Result<HeldLocksView, Error> {
        let client = self.lock_client(namespace).await?;
        let held = client.held_locks(limit.max(1)).await?;
        Ok(HeldLocksView {
            namespace: namespace.to_string(),
            locks: held.locks.into_iter().map(|i| view(namespace, i)).collect(),
            complete: held.complete,
            scanned: held.scanned,
        })
    }

    /// One lock; [`Error::NotFound`] when the namespace is unknown or the lock is not held.
    /// A key of the lock's shape that holds something else comes back with kind `unknown`
    /// and `problem` set.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let l = c.lock("shop:locks", "product:42").await?;
    /// # drop(l); Ok(()) }
    /// ```
    pub async fn lock(&self, namespace: &str, name: &str) -> Result<LockView, Error> {
        let client = self.lock_client(namespace).await?;
        match client.inspect(name).await? {
            Some(i) => Ok(view(namespace, i)),
            None => Err(Error::NotFound {
                kind: "held lock",
                name: format!("{namespace}/{name}"),
            }),
        }
    }

    /// Frees the mutex `name` whoever holds it (dlock's `force_release`: the fence counter is
    /// kept, the next waiter is woken or handed the lock). [`Error::NotFound`] when it was not
    /// held.
    ///
    /// **The freed holder may still be running**: until its next renewal finds the hold gone
    /// it believes it holds the lock while the next holder does too. Only fencing tokens
    /// checked by the protected resource keep that safe.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// c.force_release("shop:locks", "stuck-job").await?;
    /// # Ok(()) }
    /// ```
    pub async fn force_release(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let client = self.lock_client(namespace).await?;
        if client.force_release(name).await? {
            tracing::warn!(namespace, name, "console force-released a lock");
            Ok(())
        } else {
            Err(Error::NotFound {
                kind: "held lock",
                name: format!("{namespace}/{name}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_keys_name_their_namespace() {
        assert_eq!(
            namespace_of_fence("shop:locks:{product:42}:fence"),
            Some("shop:locks")
        );
        assert_eq!(namespace_of_fence("a:{b}:fence"), Some("a"));
        assert_eq!(namespace_of_fence(":{b}:fence"), None);
        assert_eq!(namespace_of_fence("a:{b}"), None);
        assert_eq!(namespace_of_fence("rq:{emails}:stats"), None);
    }
}
