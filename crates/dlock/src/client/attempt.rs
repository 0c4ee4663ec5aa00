//! One acquire attempt of a mutex: the ids of a request, how its hold is named in Redis, the
//! acquire script (fair, plain, or followed by `WAIT` for replication) and what its reply
//! means. The waiting loops around it are in `acquire` and `fair`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::interfaces::{ClientLike, ClusterInterface};
use fred::types::Value;

use super::request::LockRequest;
use crate::config::Replication;
use crate::error::Error;
use crate::hold::{Hold, HoldSpec, Kind};
use crate::janitor::PendingGrant;
use crate::keys::{conn, queue_keys, waiting_key};
use crate::release::ReleaseJob;
use crate::scripts::{ACQUIRE, FAIR_ACQUIRE, QUEUE_ENTRY_MS, RELEASE};
use crate::state::{Guard, LockClient};

/// The ids of one acquire call: its owner and its hold field (and, fair, its place in line).
pub(super) struct Ids {
    pub(super) owner: String,
    pub(super) field: String,
    pub(super) waiter: String,
}

/// What one attempt found.
pub(super) enum Attempt {
    Granted(Guard),
    /// Held by another owner for about this much longer.
    Held(Duration),
}

impl LockClient {
    /// How a mutex hold is named in Redis.
    pub(super) fn lock_spec(&self, req: &LockRequest<'_>, key: &str, field: &str) -> HoldSpec {
        HoldSpec {
            name: req.name.clone(),
            key: key.to_string(),
            field: field.to_string(),
            lease: req.lease,
            kind: if req.fair { Kind::FairLock } else { Kind::Lock },
            flag: waiting_key(key),
            wake: format!("l:{}", req.name),
            sole: req.owner.is_none(),
        }
    }

    /// One acquire attempt.
    pub(super) fn ids(&self, req: &LockRequest<'_>) -> Ids {
        let owner = match &req.owner {
            Some(o) => o.id.clone(),
            None => format!("{:032x}", fastrand::u128(..)),
        };
        // Hold ids only need to be unique, not secret: a fast generator will do.
        let field = format!("h:{:032x}", fastrand::u128(..));
        let lease_ms = u64::try_from(req.lease.as_millis()).unwrap_or(u64::MAX);
        let waiter = if req.fair {
            format!("{owner}|{field}|{lease_ms}")
        } else {
            String::new()
        };
        Ids {
            owner,
            field,
            waiter,
        }
    }

    /// One acquire attempt.
    pub(super) async fn attempt(&self, req: &LockRequest<'_>, ids: &Ids) -> Result<Attempt, Error> {
        let key = self.key(&req.name);
        let fence_key = self.fence_key(&req.name);
        let (owner, field) = (ids.owner.clone(), ids.field.clone());
        let lease_ms = u64::try_from(req.lease.as_millis()).unwrap_or(u64::MAX);
        self.ensure_janitor();
        let mut pending = PendingGrant {
            client: self,
            job: Some(ReleaseJob::new(
                self.lock_spec(req, &key, &field),
                req.fair.then(|| ids.waiter.clone()),
            )),
        };
        let sent = Instant::now();
        let reply: Vec<i64> = if req.fair {
            let (queue, queue_ttl) = queue_keys(&key);
            FAIR_ACQUIRE
                .run(
                    conn(&self.inner.redis, &key),
                    [
                        key.as_str(),
                        fence_key.as_str(),
                        queue.as_str(),
                        queue_ttl.as_str(),
                    ]
                    .to_vec(),
                    vec![
                        owner.clone(),
                        field.clone(),
                        lease_ms.to_string(),
                        ids.waiter.clone(),
                        QUEUE_ENTRY_MS.to_string(),
                    ],
                )
                .await?
        } else if let Some(rep) = self.inner.cfg.replication {
            // Boxed, like every rarely taken branch that awaits fred directly: its ~7 KB future
            // would otherwise be copied by the common path's futures too.
            Box::pin(
                self.acquire_replicated(&req.name, &key, &fence_key, &owner, &field, lease_ms, rep),
            )
            .await?
        } else {
            ACQUIRE
                .run(
                    conn(&self.inner.redis, &key),
                    vec![key.as_str(), fence_key.as_str(), waiting_key(&key).as_str()],
                    vec![owner.clone(), field.clone(), lease_ms.to_string()],
                )
                .await?
        };
        match reply.as_slice() {
            [1, fence, ..] => {
                // A token that is not a u64 is garbage: the grant is given back (janitor).
                let fence = u64::try_from(*fence).map_err(|_| {
                    Error::Unavailable(redis_conn::Error::Client(format!(
                        "lock {:?}: negative fencing token {fence}",
                        req.name
                    )))
                })?;
                let Some(job) = pending.job.take() else {
                    return Err(Error::Unavailable(redis_conn::Error::Client(
                        "grant without a pending hold".into(),
                    )));
                };
                let hold = Arc::new(
                    Hold::new(
                        job.spec,
                        self.inner.epoch,
                        sent,
                        self.valid_until(sent, req.lease),
                    )
                    .passable(req.owner.is_none()),
                );
                if hold.passable {
                    crate::local::held(self, &hold);
                }
                self.inner.watchdog.register(hold.clone());
                Ok(Attempt::Granted(Guard::new(self.clone(), hold, fence)))
            }
            [0, pttl, ..] => {
                pending.job = None;
                // -1: no expiry (someone else's key); -2: just gone. Retry soon in both cases.
                let left = u64::try_from(*pttl).unwrap_or(10).max(1);
                Ok(Attempt::Held(Duration::from_millis(left)))
            }
            other => Err(Error::Unavailable(redis_conn::Error::Client(format!(
                "unexpected acquire reply {other:?}"
            )))),
        }
    }

    /// The acquire script then `WAIT` on the same connection; a grant too few replicas
    /// acknowledged is given back.
    #[allow(clippy::too_many_arguments)]
    async fn acquire_replicated(
        &self,
        name: &str,
        key: &str,
        fence_key: &str,
        owner: &str,
        field: &str,
        lease_ms: u64,
        rep: Replication,
    ) -> Result<Vec<i64>, Error> {
        let client = conn(&self.inner.redis, key);
        let waiting = waiting_key(key);
        let reply: Vec<i64> = ACQUIRE
            .run(
                client,
                vec![key, fence_key, waiting.as_str()],
                vec![owner.to_string(), field.to_string(), lease_ms.to_string()],
            )
            .await?;
        if reply.first() != Some(&1) {
            return Ok(reply);
        }
        let timeout_ms = i64::try_from(rep.timeout.as_millis()).unwrap_or(i64::MAX);
        let args = vec![
            Value::from(i64::from(rep.replicas)),
            Value::from(timeout_ms),
        ];
        let acked: Result<i64, fred::error::Error> = if client.is_clustered() {
            let slot = redis_conn::keys::slot(key.as_bytes());
            match client
                .cached_cluster_state()
                .and_then(|s| s.get_server(slot).cloned())
            {
                Some(server) => {
                    client
                        .with_cluster_node(server)
                        .custom(
                            fred::types::CustomCommand::new_static("WAIT", None, false),
                            args,
                        )
                        .await
                }
                None => Err(fred::error::Error::new(
                    fred::error::ErrorKind::Cluster,
                    "no node known for the lock's slot",
                )),
            }
        } else {
            client
                .custom(
                    fred::types::CustomCommand::new_static("WAIT", None, false),
                    args,
                )
                .await
        };
        let acked = match acked {
            Ok(n) => u32::try_from(n).unwrap_or(0),
            Err(e) => {
                self.janitor_release(ReleaseJob::new(
                    HoldSpec {
                        name: name.to_string(),
                        key: key.to_string(),
                        field: field.to_string(),
                        lease: Duration::from_millis(lease_ms),
                        kind: Kind::Lock,
                        flag: waiting_key(key),
                        wake: format!("l:{name}"),
                        sole: false,
                    },
                    None,
                ));
                return Err(redis_conn::Error::from(e).into());
            }
        };
        if acked < rep.replicas {
            let _: Result<i64, _> = RELEASE
                .run(
                    client,
                    vec![key, waiting.as_str(), fence_key],
                    vec![
                        field,
                        self.inner.channel.as_str(),
                        &format!("l:{name}"),
                        "0",
                        "0",
                    ],
                )
                .await;
            return Err(Error::NotReplicated {
                name: name.to_string(),
                acked,
                wanted: rep.replicas,
            });
        }
        Ok(reply)
    }
}
