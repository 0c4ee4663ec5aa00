//! Opt-in Redlock: one lock over N independent Redis servers (not replicas of each other),
//! granted when a majority grants it fast enough to leave a useful validity.
//!
//! Read Martin Kleppmann's critique before choosing it: Redlock assumes bounded clock drift,
//! network delay and process pauses. It adds availability (a minority of servers may be down),
//! not correctness beyond a single server: keep using fencing tokens for writes.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use redis_conn::RedisClient;

use crate::clock::{drift, later};
use crate::config::LockConfig;
use crate::error::{Error, LostReason};
use crate::guard::Released;
use crate::state::{Guard, LockClient};

/// A lock over N independent servers.
///
/// ```no_run
/// # async fn demo(a: redis_conn::RedisClient, b: redis_conn::RedisClient, c: redis_conn::RedisClient) -> Result<(), dlock::Error> {
/// let redlock = dlock::Redlock::new(vec![a, b, c], dlock::LockConfig::new("locks"))?;
/// let guard = redlock.acquire("billing-run").await?;
/// println!("valid for {:?}", guard.validity());
/// guard.release().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Redlock {
    servers: Vec<LockClient>,
    cfg: LockConfig,
}

/// A lock granted by a majority of servers. Each server's hold is renewed by that server's
/// watchdog; the lease counts as lost when fewer than a majority remain.
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock on every server"]
pub struct RedlockGuard {
    name: String,
    guards: Vec<Guard>,
    quorum: usize,
    valid_until: Instant,
}

impl Redlock {
    /// A Redlock over `servers` (at least 3, independent deployments).
    ///
    /// ```no_run
    /// # fn demo(servers: Vec<redis_conn::RedisClient>) -> Result<(), dlock::Error> {
    /// let redlock = dlock::Redlock::new(servers, dlock::LockConfig::new("locks"))?;
    /// assert_eq!(redlock.quorum(), 2);
    /// # Ok(()) }
    /// ```
    pub fn new(servers: Vec<RedisClient>, config: LockConfig) -> Result<Redlock, Error> {
        if servers.len() < 3 {
            return Err(Error::Config(format!(
                "Redlock needs at least 3 independent servers, got {}",
                servers.len()
            )));
        }
        if config.fair || config.replication.is_some() {
            return Err(Error::Config(
                "Redlock does not combine with fair mode or replication WAIT".into(),
            ));
        }
        let servers = servers
            .into_iter()
            .map(|r| LockClient::new(r, config.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redlock {
            servers,
            cfg: config,
        })
    }

    /// Grants needed: a majority of the servers.
    ///
    /// ```no_run
    /// # fn demo(redlock: dlock::Redlock) {
    /// assert!(redlock.quorum() >= 2);
    /// # }
    /// ```
    pub fn quorum(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    /// Time allowed for one server's answer in an attempt: 5 % of the lease, within
    /// [20 ms, 500 ms]. A slow or dead server costs at most this much per attempt.
    fn per_server(&self) -> Duration {
        self.cfg
            .lease
            .mul_f64(0.05)
            .clamp(Duration::from_millis(20), Duration::from_millis(500))
    }

    /// One attempt on every server at once.
    async fn attempt(
        &self,
        name: &str,
    ) -> Result<Result<RedlockGuard, (usize, Option<Error>)>, Error> {
        let started = Instant::now();
        let per_server = self.per_server();
        let replies = futures::future::join_all(self.servers.iter().map(|s| async move {
            match tokio::time::timeout(per_server, s.lock(name).try_acquire()).await {
                Ok(r) => r,
                Err(_) => Err(Error::Unavailable(redis_conn::Error::Timeout(format!(
                    "no answer within {per_server:?}"
                )))),
            }
        }))
        .await;
        let mut granted = Vec::new();
        let mut last_error = None;
        for r in replies {
            match r {
                Ok(Some(g)) => granted.push(g),
                Ok(None) => {}
                Err(e @ Error::Config(_)) => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        let lease = self.cfg.lease;
        let drift = drift(lease, self.cfg.drift_ratio);
        let validity = lease
            .checked_sub(started.elapsed())
            .and_then(|v| v.checked_sub(drift));
        match validity {
            Some(v) if granted.len() >= self.quorum() && !v.is_zero() => Ok(Ok(RedlockGuard {
                name: name.to_string(),
                guards: granted,
                quorum: self.quorum(),
                valid_until: later(started, v),
            })),
            _ => {
                let n = granted.len();
                futures::future::join_all(granted.into_iter().map(Guard::release)).await;
                Ok(Err((n, last_error)))
            }
        }
    }

    /// One attempt: `Ok(None)` when no majority granted it (the minority grants are given
    /// back at once).
    ///
    /// ```no_run
    /// # async fn demo(redlock: dlock::Redlock) -> Result<(), dlock::Error> {
    /// if let Some(g) = redlock.try_acquire("job").await? {
    ///     g.release().await;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_acquire(&self, name: &str) -> Result<Option<RedlockGuard>, Error> {
        Ok(self.attempt(name).await?.ok())
    }

    /// Retries (with a random 10–60 ms pause) until a majority grants the lock or the wait is
    /// over. Errors: [`Error::NoQuorum`] when servers failed (e.g. a majority is down),
    /// [`Error::Timeout`] when they answered but the lock stayed held.
    ///
    /// ```no_run
    /// # async fn demo(redlock: dlock::Redlock) -> Result<(), dlock::Error> {
    /// let g = redlock.acquire("job").await?;
    /// g.release().await;
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self, name: &str) -> Result<RedlockGuard, Error> {
        let started = Instant::now();
        let deadline = later(started, self.cfg.wait);
        loop {
            let (granted, error) = match self.attempt(name).await? {
                Ok(g) => return Ok(g),
                Err(failed) => failed,
            };
            if Instant::now() >= deadline {
                return Err(match error {
                    Some(_) => Error::NoQuorum {
                        name: name.to_string(),
                        granted,
                        servers: self.servers.len(),
                        quorum: self.quorum(),
                    },
                    None => Error::Timeout {
                        name: name.to_string(),
                        waited: started.elapsed(),
                    },
                });
            }
            let pause = Duration::from_millis(fastrand::u64(10..60));
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
}

impl RedlockGuard {
    /// How long the grant is trusted from the acquisition alone (renewals extend each
    /// server's hold; see [`RedlockGuard::lost`]).
    ///
    /// ```no_run
    /// # async fn demo(redlock: dlock::Redlock) -> Result<(), dlock::Error> {
    /// let g = redlock.acquire("x").await?;
    /// assert!(!g.validity().is_zero());
    /// # Ok(()) }
    /// ```
    pub fn validity(&self) -> Duration {
        self.valid_until.saturating_duration_since(Instant::now())
    }

    /// Servers that granted it.
    ///
    /// ```no_run
    /// # async fn demo(redlock: dlock::Redlock) -> Result<(), dlock::Error> {
    /// let g = redlock.acquire("x").await?;
    /// assert!(g.granted() >= redlock.quorum());
    /// # Ok(()) }
    /// ```
    pub fn granted(&self) -> usize {
        self.guards.len()
    }

    /// The largest fencing token among the granting servers. Each server's tokens increase
    /// and start from server time in µs, so this grows from grant to grant as long as the
    /// servers' clocks do; it is not a consensus-grade token (see Kleppmann).
    ///
    /// ```no_run
    /// # async fn demo(redlock: dlock::Redlock) -> Result<(), dlock::Error> {
    /// let g = redlock.acquire("x").await?;
    /// println!("{}", g.fence());
    /// # Ok(()) }
    /// ```
    pub fn fence(&self) -> u64 {
        self.guards.iter().map(Guard::fence).max().unwrap_or(0)
    }

    /// Completes when fewer than a majority of the servers' holds remain (each renewed by its
    /// server's watchdog).
    ///
    /// ```no_run
    /// # async fn demo(redlock: dlock::Redlock) -> Result<(), dlock::Error> {
    /// let g = redlock.acquire("x").await?;
    /// let lost = g.lost();
    /// tokio::spawn(async move { eprintln!("{}", lost.await) });
    /// # Ok(()) }
    /// ```
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static {
        let mut pending: FuturesUnordered<_> = self.guards.iter().map(Guard::lost).collect();
        let (held, quorum) = (self.guards.len(), self.quorum);
        async move {
            let mut lost = 0;
            let mut last = LostReason::Refused;
            while let Some(reason) = pending.next().await {
                lost += 1;
                last = reason;
                if held - lost < quorum {
                    return last;
                }
            }
            std::future::pending::<()>().await;
            last
        }
    }

    /// Releases the lock on every server that granted it; returns how many still held it.
    ///
    /// ```no_run
    /// # async fn demo(redlock: dlock::Redlock) -> Result<(), dlock::Error> {
    /// let g = redlock.acquire("x").await?;
    /// assert!(g.release().await >= redlock.quorum());
    /// # Ok(()) }
    /// ```
    pub async fn release(self) -> usize {
        let name = self.name;
        futures::future::join_all(self.guards.into_iter().map(Guard::release))
            .await
            .into_iter()
            .filter(|r| match r {
                Ok(Released::Free | Released::StillHeld(_) | Released::HandedOff) => true,
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(lock = %name, error = %e, "Redlock release failed on one server; its lease expires by itself");
                    false
                }
            })
            .count()
    }
}
