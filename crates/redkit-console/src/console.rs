//! [`Console`]: one Redis connection and what the console reads through it.

use redis_conn::{RedisClient, RedisConfig};

use crate::error::Error;

/// The console's handle on one deployment: a Redis client (any topology) plus the
/// configuration the doctor needs. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), redkit_console::Error> {
/// let config = redis_conn::RedisConfig::from_url("redis://127.0.0.1:6379").map_err(|e| redkit_console::Error::Usage(e.to_string()))?;
/// let console = redkit_console::Console::connect(config).await?;
/// for q in console.queues().await? {
///     println!("{}: {} ready", q.queue, q.ready);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Console {
    pub(crate) redis: RedisClient,
    pub(crate) config: RedisConfig,
}

impl Console {
    /// Connects to the deployment `config` describes.
    ///
    /// ```no_run
    /// # async fn demo(config: redis_conn::RedisConfig) -> Result<(), redkit_console::Error> {
    /// let console = redkit_console::Console::connect(config).await?;
    /// # drop(console); Ok(()) }
    /// ```
    pub async fn connect(config: RedisConfig) -> Result<Console, Error> {
        let redis = RedisClient::connect(config.clone()).await?;
        Ok(Console { redis, config })
    }

    /// A console over an existing client (a service embedding the console reuses its own).
    ///
    /// ```no_run
    /// # fn demo(redis: redis_conn::RedisClient) {
    /// let console = redkit_console::Console::new(redis);
    /// # drop(console); }
    /// ```
    pub fn new(redis: RedisClient) -> Console {
        let config = redis.config().clone();
        Console { redis, config }
    }

    /// The Redis client.
    ///
    /// ```no_run
    /// # fn demo(c: redkit_console::Console) {
    /// let _ = c.redis().is_cluster();
    /// # }
    /// ```
    pub fn redis(&self) -> &RedisClient {
        &self.redis
    }

    /// The doctor's findings (redis-diag's checks on every node).
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let report = c.doctor().await?;
    /// println!("worst: {:?}", report.worst());
    /// # Ok(()) }
    /// ```
    pub async fn doctor(&self) -> Result<redis_diag::Report, Error> {
        redis_diag::diagnose(
            &self.config,
            redis_diag::Scope::All,
            &redis_diag::Options::default(),
        )
        .await
        .map_err(|e| Error::Redis(e.to_string()))
    }
}
