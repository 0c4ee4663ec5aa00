//! Connected clients with production defaults: a pool for ordinary traffic and a factory for
//! dedicated clients (blocking commands, pub/sub, RESP3 client tracking).

use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, Pool, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface};
use fred::prelude::{ReconnectPolicy, Server, ServerConfig};
use fred::types::config::{
    Blocking, ClusterDiscoveryPolicy, Config, ConnectionConfig, PerformanceConfig, ReconnectError,
    UnresponsiveConfig,
};
use fred::types::{Builder, RespVersion};
use tracing::Instrument;

use crate::config::{Endpoint, Mode, RedisConfig};
use crate::error::{Error, Result};

/// What a [`RedisClient::listen`] handler is given.
///
/// ```
/// assert_ne!(redis_conn::Delivery::Message("x"), redis_conn::Delivery::Missed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// A message published on the channel.
    Message(&'a str),
    /// Messages may have been missed (lag or reconnect): re-check what they would announce.
    Missed,
}

/// A connected pool plus the settings to open dedicated clients, for any topology.
///
/// Cloning is cheap and shares the connections.
///
/// ```no_run
/// # async fn demo() -> redis_conn::Result<()> {
/// use fred::prelude::*;
/// let redis = redis_conn::RedisClient::connect(redis_conn::RedisConfig::from_env()?).await?;
/// let _: () = redis.pool().set("greeting", "hello", None, None, false).await?;
/// let v: String = redis.pool().get("greeting").await?;
/// assert_eq!(v, "hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    pool: Pool,
}

impl Drop for Inner {
    /// The last handle going away closes the pool's connections (fred clients otherwise keep
    /// reconnecting forever).
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            rt.spawn(async move { pool.quit().await.ok() });
        }
    }
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("target", &self.inner.config.target())
            .field("pool_size", &self.inner.pool.size())
            .finish()
    }
}

/// What a dedicated client is for; each gets settings that suit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dedicated {
    /// Same settings as the pool, own connections (e.g. WATCH / MULTI, long scripts).
    Plain,
    /// For blocking commands (`BLPOP`, `BZPOPMIN`, `XREADGROUP BLOCK`, `WAIT`): no default
    /// command timeout, since the server legitimately holds the reply; pass a per-call timeout
    /// longer than the block time.
    Blocking,
    /// RESP3, for `CLIENT TRACKING` (near caches); re-enable tracking in `on_reconnect`.
    Tracking,
}

impl RedisClient {
    /// Connects a pool of `config.pool_size` clients and returns once all are connected.
    ///
    /// Fails fast: the error names the address(es) tried (never the password) and why. A
    /// `redis://` URL that reaches a Sentinel or a Cluster node is refused with
    /// [`Error::WrongTopology`], whose hint gives the `redis-sentinel://` / `redis-cluster://`
    /// URL to use (checked with one `INFO server`; skipped when the user may not run `INFO`).
    ///
    /// ```no_run
    /// # async fn demo() -> redis_conn::Result<()> {
    /// use redis_conn::{Error, RedisClient, RedisConfig};
    /// match RedisClient::connect(RedisConfig::from_url("redis://127.0.0.1:26379")?).await {
    ///     Err(Error::WrongTopology { hint, .. }) => eprintln!("{hint}"),
    ///     other => { other?; }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: RedisConfig) -> Result<RedisClient> {
        let span = tracing::info_span!("redis.connect", target = %config.target(), mode = config.mode.name());
        // Boxed: fred's pool start-up future is large, and every caller awaits this one.
        Box::pin(
            async move {
                let pool = builder(&config, Dedicated::Plain)?
                    .build_pool(config.pool_size)
                    .map_err(|e| connect_error(&config, e.into()))?;
                if let Err(e) = init(&config, pool.init()).await {
                    // fred's router tasks outlive a dropped init future; stop them, or a late
                    // success would leave a reconnect-forever pool nobody owns.
                    let pool = pool.clone();
                    tokio::spawn(async move { pool.quit().await.ok() });
                    return Err(e);
                }
                if let Err(e) = check_standalone(&config, pool.next()).await {
                    let pool = pool.clone();
                    tokio::spawn(async move { pool.quit().await.ok() });
                    return Err(e);
                }
                for c in pool.clients() {
                    watch_events(c);
                }
                tracing::debug!("connected");
                Ok(RedisClient {
                    inner: Arc::new(Inner { config, pool }),
                })
            }
            .instrument(span),
        )
        .await
    }

    /// The settings this client was built from.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The pool for ordinary (non-blocking) commands; fred pipelines concurrent callers.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// One client of the pool (round robin), for APIs that need a `Client`.
    pub fn next(&self) -> &Client {
        self.inner.pool.next()
    }

    /// The pooled client that every call about `key` should go through, chosen by the key's
    /// hash slot. Redis runs one connection's commands in order, so a clean-up sent after an
    /// attempt over the same client can never overtake the attempt, even when the attempt's
    /// future was dropped (cancelled) after sending; over another pooled client it could.
    ///
    /// ```no_run
    /// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
    /// use fred::prelude::*;
    /// let lease = "app:{job:7}:lease";
    /// let taken: Option<String> = redis
    ///     .for_key(lease)
    ///     .set(lease, "me", Some(fred::types::Expiration::PX(5_000)), Some(fred::types::SetOptions::NX), false)
    ///     .await?;
    /// // ... a give-back sent through `redis.for_key(lease)` is run after that SET
    /// # Ok(()) }
    /// ```
    pub fn for_key(&self, key: &str) -> &Client {
        let clients = self.inner.pool.clients();
        let i = usize::from(crate::keys::slot(key.as_bytes())) % clients.len().max(1);
        clients.get(i).unwrap_or_else(|| self.inner.pool.next())
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.config.mode, Mode::Cluster { .. })
    }

    /// A new connected client with its own connections, configured for `purpose`. The caller
    /// owns it: call `quit()` when done (fred clients keep reconnecting until then).
    ///
    /// ```no_run
    /// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
    /// use fred::prelude::*;
    /// let blocking = redis.dedicated(redis_conn::Dedicated::Blocking).await?;
    /// let popped: Option<(String, String)> = blocking.blpop("jobs", 1.0).await?;
    /// # Ok(()) }
    /// ```
    pub async fn dedicated(&self, purpose: Dedicated) -> Result<Client> {
        let config = &self.inner.config;
        let client = builder(config, purpose)?
            .build()
            .map_err(|e| connect_error(config, e.into()))?;
        if let Err(e) = init(config, client.init()).await {
            let client = client.clone();
            tokio::spawn(async move { client.quit().await.ok() });
            return Err(e);
        }
        watch_events(&client);
        Ok(client)
    }

    /// A connected pub/sub client that re-subscribes to its channels after every reconnect.
    ///
    /// ```no_run
    /// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
    /// use fred::prelude::*;
    /// let sub = redis.subscriber().await?;
    /// let mut rx = sub.message_rx();
    /// sub.subscribe("events").await?;
    /// # Ok(()) }
    /// ```
    pub async fn subscriber(&self) -> Result<SubscriberClient> {
        let config = &self.inner.config;
        let client = builder(config, Dedicated::Plain)?
            .build_subscriber_client()
            .map_err(|e| connect_error(config, e.into()))?;
        if let Err(e) = init(config, client.init()).await {
            let client = client.clone();
            tokio::spawn(async move { client.quit().await.ok() });
            return Err(e);
        }
        client.manage_subscriptions();
        Ok(client)
    }

    /// Subscribes a new managed subscriber to `channel` and calls `handler` for each message,
    /// and with [`Delivery::Missed`] whenever messages may have been lost (the subscriber fell
    /// behind, or reconnected: pub/sub is at-most-once), so waiters can re-check. The handler
    /// runs on one background task; returning `ControlFlow::Break` stops it.
    ///
    /// ```no_run
    /// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
    /// use std::ops::ControlFlow;
    /// use redis_conn::Delivery;
    /// let sub = redis
    ///     .listen("jobs:ready", |d| {
    ///         match d {
    ///             Delivery::Message(m) => println!("ready: {m}"),
    ///             Delivery::Missed => println!("re-check everything"),
    ///         }
    ///         ControlFlow::Continue(())
    ///     })
    ///     .await?;
    /// # drop(sub); Ok(()) }
    /// ```
    pub async fn listen<F>(&self, channel: &str, handler: F) -> Result<SubscriberClient>
    where
        F: Fn(Delivery<'_>) -> std::ops::ControlFlow<()> + Send + Sync + 'static,
    {
        use fred::interfaces::PubsubInterface;
        use tokio::sync::broadcast::error::RecvError;
        // The server's refusal of a SUBSCRIBE does not reach fred's caller: ask first.
        if !self.may_subscribe(channel).await? {
            return Err(Error::NoPermission(format!(
                "this user may not SUBSCRIBE to channel {channel}: grant +subscribe and &{channel}"
            )));
        }
        let sub = self.subscriber().await?;
        let mut rx = sub.message_rx();
        if let Err(e) = sub.subscribe(channel).await {
            let sub = sub.clone();
            tokio::spawn(async move { sub.quit().await.ok() });
            return Err(e.into());
        }
        let handler = Arc::new(handler);
        let on_reconnect = handler.clone();
        sub.on_reconnect(move |_| {
            let _ = on_reconnect(Delivery::Missed);
            async { Ok(()) }
        });
        tokio::spawn(async move {
            loop {
                let flow = match rx.recv().await {
                    Ok(m) => handler(Delivery::Message(&m.value.as_string().unwrap_or_default())),
                    Err(RecvError::Lagged(_)) => handler(Delivery::Missed),
                    Err(RecvError::Closed) => break,
                };
                if flow.is_break() {
                    break;
                }
            }
        });
        Ok(sub)
    }

    /// Whether this client's ACL user may `SUBSCRIBE` to `channel` (one `EVAL` of
    /// `redis.acl_check_cmd`). A refused `SUBSCRIBE` is otherwise silent: fred reports success
    /// and no message ever arrives. `true` when the server cannot tell (Redis before 7.0) or
    /// the user may not run scripts either.
    ///
    /// ```no_run
    /// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
    /// if !redis.may_subscribe("orders:ready").await? {
    ///     eprintln!("grant +subscribe &orders:ready to this user");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn may_subscribe(&self, channel: &str) -> Result<bool> {
        static CHECK: crate::script::Script = crate::script::Script::new(
            "may_subscribe",
            "if not redis.acl_check_cmd then return 1 end \
             if redis.acl_check_cmd('SUBSCRIBE', ARGV[1]) then return 1 end return 0",
        );
        match CHECK
            .run::<i64, _, _, _>(self.pool(), Vec::<String>::new(), vec![channel])
            .await
        {
            Ok(v) => Ok(v == 1),
            Err(Error::NoPermission(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Closes every pooled connection.
    pub async fn quit(&self) -> Result<()> {
        self.inner.pool.quit().await.map_err(Into::into)
    }
}

async fn init(
    config: &RedisConfig,
    fut: impl std::future::Future<Output = Result<fred::types::ConnectHandle, fred::error::Error>>,
) -> Result<()> {
    // fred's own connect timeout covers each attempt; this bounds the whole start-up (Sentinel
    // probing and cluster discovery included) so a black-holed address cannot hang it.
    // fred tries Sentinel and cluster seeds one after another, each within connect_timeout.
    let endpoints = match &config.mode {
        Mode::Standalone { .. } => 1,
        Mode::Sentinel { sentinels, .. } => sentinels.len() + 1,
        Mode::Cluster { seeds } => seeds.len() + 1,
    } as u32;
    let limit = config.connect_timeout * (endpoints + 2) + Duration::from_secs(1);
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(_handle)) => Ok(()),
        Ok(Err(e)) => {
            let e: Error = e.into();
            // fred says only that every sentinel failed: ask the first one why.
            if let Mode::Sentinel { sentinels, .. } = &config.mode
                && e.to_string().contains("all sentinel nodes")
                && let Some(first) = sentinels.first()
                && let Some(why) = probe_sentinel(config, first).await
            {
                return Err(why);
            }
            Err(connect_error(config, e))
        }
        Err(_) => Err(Error::Connect {
            target: config.target(),
            reason: format!("no connection within {limit:?} (is the address reachable?)"),
        }),
    }
}

/// Why the sentinel at `first` refuses us: connects to it alone, with the sentinel
/// credentials and the same TLS settings, and returns that failure (naming the sentinel), or
/// `None` when it accepts.
async fn probe_sentinel(config: &RedisConfig, first: &Endpoint) -> Option<Error> {
    let Mode::Sentinel {
        sentinel_username,
        sentinel_password,
        ..
    } = &config.mode
    else {
        return None;
    };
    let mut probe = config.clone();
    probe.mode = Mode::Standalone {
        server: first.clone(),
    };
    probe.username = sentinel_username.clone();
    probe.password = sentinel_password.clone();
    probe.database = None;
    let client = builder(&probe, Dedicated::Plain).ok()?.build().ok()?;
    let outcome = tokio::time::timeout(config.connect_timeout * 2, client.init()).await;
    let client2 = client.clone();
    tokio::spawn(async move { client2.quit().await.ok() });
    let e: Error = match outcome {
        Ok(Ok(_)) => return None,
        Ok(Err(e)) => e.into(),
        Err(_) => Error::Timeout(format!("no answer within {:?}", config.connect_timeout * 2)),
    };
    Some(match connect_error(&probe, e) {
        Error::Tls { reason, .. } => Error::Tls {
            target: config.target(),
            reason: format!("sentinel {first}: {reason}"),
        },
        Error::Connect { reason, .. } => Error::Connect {
            target: config.target(),
            reason: format!("sentinel {first}: {reason}"),
        },
        other => other,
    })
}

/// A `redis://` URL pointed at a Sentinel or a Cluster node connects without complaint (both
/// answer `AUTH` and `PING`), and then every command fails (Sentinel) or every key of another
/// node's slots does (Cluster). One `INFO server` at connect tells them apart; when the user may
/// not run `INFO`, nothing is checked.
async fn check_standalone(config: &RedisConfig, client: &Client) -> Result<()> {
    let Mode::Standalone { server } = &config.mode else {
        return Ok(());
    };
    let info: String = match client.info(Some(fred::types::InfoKind::Server)).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e.details(), "INFO server refused: the server's mode is not checked");
            return Ok(());
        }
    };
    // Valkey also reports `server_mode`.
    let mode = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("redis_mode:")
                .or_else(|| l.strip_prefix("server_mode:"))
        })
        .map(str::trim);
    let s = if config.tls.is_some() { "s" } else { "" };
    let hint = match mode {
        Some("sentinel") => {
            // Name the primaries it monitors, when it says.
            let names = sentinel_masters(client).await;
            let service = match names.as_slice() {
                [one] => one.clone(),
                _ => "<service>".to_string(),
            };
            let known = if names.is_empty() {
                String::new()
            } else {
                format!(" (it monitors: {})", names.join(", "))
            };
            format!("connect through it with redis{s}-sentinel://{server}/{service}{known}")
        }
        Some("cluster") if serves_every_slot(client).await => {
            // A one-shard cluster (a dev server with cluster-enabled, a single-shard managed
            // cluster) answers every key from this node: it works behind redis://.
            tracing::info!(%server, "a one-node cluster behind redis://: redis-cluster:// would follow its changes");
            return Ok(());
        }
        Some("cluster") => {
            format!("use redis{s}-cluster://{server} (the other nodes are discovered from it)")
        }
        _ => return Ok(()),
    };
    Err(Error::WrongTopology {
        target: config.target(),
        found: mode.unwrap_or_default().to_string(),
        hint,
    })
}

/// Whether this cluster node is a primary that owns all 16,384 slots (`CLUSTER INFO`: one
/// shard, every slot assigned; `INFO replication`: this node is that shard's primary).
async fn serves_every_slot(client: &Client) -> bool {
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let (Ok(cluster), Ok(replication)) = (
        client
            .custom::<String, _>(fred::cmd!("CLUSTER"), vec!["INFO"])
            .await,
        client
            .info::<String>(Some(fred::types::InfoKind::Replication))
            .await,
    ) else {
        return false;
    };
    field(&cluster, "cluster_size:").as_deref() == Some("1")
        && field(&cluster, "cluster_slots_assigned:").as_deref() == Some("16384")
        && field(&replication, "role:").as_deref() == Some("master")
}

/// The primary names a sentinel monitors (`SENTINEL MASTERS`), or none if it does not say.
async fn sentinel_masters(client: &Client) -> Vec<String> {
    use fred::types::Value;
    let reply: Value = match client.custom(fred::cmd!("SENTINEL"), vec!["MASTERS"]).await {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    let Value::Array(masters) = reply else {
        return Vec::new();
    };
    masters
        .iter()
        .filter_map(|m| match m {
            Value::Array(fields) => fields
                .chunks(2)
                .find(|kv| kv.first().and_then(Value::as_str).as_deref() == Some("name"))
                .and_then(|kv| kv.get(1).and_then(Value::as_string)),
            _ => None,
        })
        .collect()
}

fn connect_error(config: &RedisConfig, e: Error) -> Error {
    if let Some(reason) = tls_failure(config, &e) {
        return Error::Tls {
            target: config.target(),
            reason,
        };
    }
    let reason = match (e, &config.mode) {
        (Error::Auth(m), _) => {
            format!("authentication failed ({m}): check the username and password")
        }
        (other, Mode::Sentinel { service_name, .. })
            if other.to_string().contains("Missing primary address") =>
        {
            format!(
                "the sentinels know no primary named {service_name:?}: check the service name \
                 (REDIS_SENTINEL_MASTER, or the URL path) against `sentinel monitor` in sentinel.conf"
            )
        }
        (other, _) => other.to_string(),
    };
    Error::Connect {
        target: config.target(),
        reason,
    }
}

/// A connect failure that is the TLS layer's, explained; `None` for any other failure.
fn tls_failure(config: &RedisConfig, e: &Error) -> Option<String> {
    let details = e.to_string();
    match &config.tls {
        Some(options) => {
            if let Some(why) = crate::tls_failure::explain_tls_failure(&details, options) {
                return Some(format!("{why} ({details})"));
            }
            match e {
                // A plaintext port reads the ClientHello as a garbled command and waits for the
                // rest of it: nothing comes back before the timeout.
                Error::Timeout(_) => Some(format!(
                    "no TLS handshake within {:?}: is this a plaintext port? use redis:// (or the server's tls-port) ({details})",
                    config.connect_timeout
                )),
                _ => None,
            }
        }
        None => {
            // A TLS-only port closes (resets) the connection on the first plaintext bytes; a
            // refused connection is something else (nothing listens).
            let closed = !details.contains("refused")
                && (details.contains("ConnectionReset")
                    || details.contains("reset by peer")
                    || details.contains("UnexpectedEof")
                    || details.contains("closed")
                    || details.contains("Broken pipe"));
            closed.then(|| {
                format!(
                    "the server closed the connection during set-up: if it only accepts TLS, use rediss:// (or REDIS_TLS=true) ({details})"
                )
            })
        }
    }
}

fn server(e: &Endpoint, tls: bool) -> Server {
    #[cfg(feature = "tls")]
    if tls {
        return Server::new_with_tls(e.host.clone(), e.port, Some(e.host.clone()));
    }
    // Without the `tls` feature a TLS config is refused before any server is dialled.
    let _ = tls;
    Server::new(e.host.clone(), e.port)
}

/// The fred [`Builder`] with redkit's production defaults for `config` (exposed for callers
/// who need a fred client type redis-conn does not wrap).
///
/// * a reconnect policy is always set (without one fred never reconnects): exponential with
///   jitter from `reconnect_min_delay` to `reconnect_max_delay`, retrying forever;
/// * unresponsive-connection detection (`unresponsive_timeout`), so a paused or black-holed
///   primary is abandoned and Sentinel / the cluster is asked again instead of queueing writes
///   that would be lost when it is demoted;
/// * a default command timeout, and `READONLY`, `LOADING`, `CLUSTERDOWN` and `MASTERDOWN`
///   replies trigger a reconnect (a demoted primary answers `READONLY`);
/// * fail-fast start-up, cluster discovery from the configured endpoints.
///
/// ```
/// let cfg = redis_conn::RedisConfig::from_url("redis://127.0.0.1:6379").unwrap();
/// let builder = redis_conn::builder(&cfg, redis_conn::Dedicated::Plain).unwrap();
/// ```
pub fn builder(config: &RedisConfig, purpose: Dedicated) -> Result<Builder> {
    let server = match &config.mode {
        Mode::Standalone { server: s } => ServerConfig::Centralized {
            server: server(s, config.tls.is_some()),
        },
        Mode::Sentinel {
            sentinels,
            service_name,
            sentinel_username,
            sentinel_password,
        } => ServerConfig::Sentinel {
            hosts: sentinels
                .iter()
                .map(|s| server(s, config.tls.is_some()))
                .collect(),
            service_name: service_name.clone(),
            username: sentinel_username.clone(),
            password: sentinel_password.as_ref().map(|p| p.expose().to_string()),
        },
        Mode::Cluster { seeds } => ServerConfig::Clustered {
            hosts: seeds
                .iter()
                .map(|s| server(s, config.tls.is_some()))
                .collect(),
            policy: ClusterDiscoveryPolicy::ConfigEndpoint,
        },
    };
    #[cfg(feature = "tls")]
    let tls = match &config.tls {
        Some(options) => Some(crate::tls::fred_tls(config, options)?),
        None => None,
    };
    #[cfg(not(feature = "tls"))]
    if config.tls.is_some() {
        return Err(Error::config(
            "TLS",
            "this build of redis-conn has no TLS: enable its `tls` feature (on by default)",
        ));
    }
    // Feature-gated fields (tracing, mocks) come from the default when those features are on.
    #[allow(clippy::needless_update)]
    let fred_config = Config {
        fail_fast: true,
        blocking: Blocking::Block,
        username: config.username.clone(),
        password: config.password.as_ref().map(|p| p.expose().to_string()),
        server,
        version: if purpose == Dedicated::Tracking {
            RespVersion::RESP3
        } else {
            RespVersion::RESP2
        },
        database: config.database,
        #[cfg(feature = "tls")]
        tls,
        ..Config::default()
    };
    let unresponsive = config.unresponsive_timeout;
    let connection = ConnectionConfig {
        connection_timeout: config.connect_timeout,
        internal_command_timeout: config.connect_timeout,
        max_command_attempts: 3,
        unresponsive: UnresponsiveConfig {
            max_timeout: Some(unresponsive),
            interval: (unresponsive / 4).max(Duration::from_millis(10)),
        },
        reconnect_errors: vec![
            ReconnectError::ClusterDown,
            ReconnectError::Loading,
            ReconnectError::ReadOnly,
            ReconnectError::MasterDown,
        ],
        ..ConnectionConfig::default()
    };
    let performance = PerformanceConfig {
        default_command_timeout: match purpose {
            Dedicated::Blocking => Duration::ZERO,
            _ => config.command_timeout,
        },
        ..PerformanceConfig::default()
    };
    let mut b = Builder::from_config(fred_config);
    b.set_connection_config(connection);
    b.set_performance_config(performance);
    b.set_policy(ReconnectPolicy::new_exponential(
        0,
        config.reconnect_min_delay.as_millis() as u32,
        config.reconnect_max_delay.as_millis() as u32,
        2,
    ));
    Ok(b)
}

/// Logs reconnects and connection errors of a client through `tracing` (fred itself logs via
/// the `log` crate).
pub(crate) fn watch_events(client: &Client) {
    client.on_reconnect(|server| async move {
        tracing::info!(%server, "redis reconnected");
        Ok(())
    });
    client.on_error(|(error, server)| async move {
        tracing::warn!(server = ?server, error = %error.details(), "redis connection error");
        Ok(())
    });
}
