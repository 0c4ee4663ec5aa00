//! The seed's e-commerce service, for real: product details served cache-aside
//! ([`cache_core`]), orders placed under a per-product lock ([`dlock`]) with the stock checked
//! and decremented atomically in the store and fenced with the lock's token, orders processed
//! by a queue worker ([`rqueue`]) exactly once in effect, and each user's order list cached.
//!
//! **The store is Redis itself** (hashes), so the demo needs nothing but Redis. Every write
//! that must be atomic is one Lua script over keys of ONE product (they share the hash tag
//! `{p<id>}`, so it works on Cluster): the product hash `{stock, fence, …}`, its orders
//! (`…:order:<id>` hashes) and its pending orders (a sorted set). A user's order index
//! (`{u<id>}:orders`) lives in another slot and is updated right after, idempotently. In a
//! real service the system of record would usually be a SQL database: the same fenced write is
//! `UPDATE products SET stock = stock - $qty, fence = $token WHERE id = $id AND fence <= $token
//! AND stock >= $qty` (see the `dlock` fence docs).
//!
//! ```no_run
//! # async fn demo(redis: redis_conn::RedisClient) -> Result<(), examples::shop::ShopError> {
//! use examples::shop::{Placed, Product, Shop};
//! let shop = Shop::new(redis, "shop")?;
//! shop.add_product(&Product { id: 123, name: "Teapot".into(), price_cents: 2599, stock: 100 }).await?;
//! if let Placed::Accepted(order) = shop.place_order(1001, 123, 2).await? {
//!     println!("order {order} accepted");
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::{Cache, CacheConfig};
use dlock::{LockClient, LockConfig};
use fred::interfaces::{HashesInterface, SortedSetsInterface};
use fred::types::Value;
use redis_conn::{RedisClient, Script};
use rqueue::{Queue, QueueConfig, Worker, WorkerConfig, WorkerReport};
use serde::{Deserialize, Serialize};

static RESERVE: Script = Script::new(
    "shop_reserve",
    r#"
-- KEYS[1] product hash, KEYS[2] pending orders (zset), KEYS[3] the new order's hash
-- ARGV[1] fence token, ARGV[2] qty, ARGV[3] order id, ARGV[4] user, ARGV[5] product id
-- Returns {1, stock left} accepted, {0, stock} out of stock, {-1, stock} a newer lock holder
-- already wrote (this holder's lease was lost), {-2, 0} no such product.
local stock = redis.call('HGET', KEYS[1], 'stock')
if not stock then return {-2, 0} end
stock = tonumber(stock)
local fence = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if fence > tonumber(ARGV[1]) then return {-1, stock} end
redis.call('HSET', KEYS[1], 'fence', ARGV[1])
local qty = tonumber(ARGV[2])
if stock < qty then return {0, stock} end
redis.call('HINCRBY', KEYS[1], 'stock', -qty)
local t = redis.call('TIME')
redis.call('HSET', KEYS[3], 'user', ARGV[4], 'product', ARGV[5], 'qty', ARGV[2],
  'status', 'accepted', 'processed', 0, 'placed_ms', t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('ZADD', KEYS[2], t[1], ARGV[3])
return {1, stock - qty}
"#,
);

static MARK_PROCESSED: Script = Script::new(
    "shop_mark_processed",
    r#"
-- KEYS[1] order hash, KEYS[2] pending orders, KEYS[3] product hash; ARGV[1] order id
-- Returns 1 processed now, 0 already processed (a redelivery: nothing changes), -1 unknown.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'processed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'processed')
redis.call('HINCRBY', KEYS[1], 'processed', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'processed_orders', 1)
return 1
"#,
);

/// Commands the shop's own store sends, outside the three crates: the product, order and
/// pending-order keys (`HSET`, `HGET`, `HGETALL`, `HINCRBY`, `ZADD`, `ZREM`, `ZRANGEBYSCORE`,
/// and `TIME` in the reserve script) and the users' order indexes (`ZADD`, `ZRANGE`).
const STORE_COMMANDS: [&str; 9] = [
    "hset",
    "hget",
    "hgetall",
    "hincrby",
    "zadd",
    "zrem",
    "zrange",
    "zrangebyscore",
    "time",
];

/// The smallest ACL rule a [`Shop`] with namespace `ns` runs with: the rules of its two
/// caches ([`cache_core::acl_rule`] for `<ns>:cache:product` and `<ns>:cache:orders`), its
/// lock client ([`dlock::acl_rule`] for `<ns>:lock`) and its order queue
/// ([`rqueue::acl_rule_in`]`(ns, "orders")`), plus its own store: the keys of each product
/// (`<ns>:{p<id>}:*`: the product hash, its orders and pending orders) and each user's order
/// index (`<ns>:{u<id>}:orders`) with the commands [`Shop`] sends to them. `ns` is taken
/// literally (glob characters are escaped by each crate): give each shop its own user. Left
/// out, as in [`rqueue::acl_rule_in`]: `CONFIG GET`, with which the order worker's durability
/// check at start reads the RDB setting (without it, that part is reported unknown).
///
/// ```
/// let rule = examples::shop::acl_rule("shop");
/// let text = rule.to_string();
/// for part in [
///     "~shop:cache:product:*",
///     "~{shop:cache:orders:*}:rebuild",
///     "&shop:lock:__released__",
///     "~shop:{orders}:*",
///     "~shop:{p*}:*",
///     "~shop:{u*}:orders",
///     "+zrangebyscore",
/// ] {
///     assert!(text.contains(part), "{part}");
/// }
/// ```
pub fn acl_rule(ns: &str) -> redis_conn::AclRule {
    let glob: String = ns
        .chars()
        .flat_map(|c| {
            let escape = matches!(c, '*' | '?' | '[' | ']' | '\\');
            escape.then_some('\\').into_iter().chain([c])
        })
        .collect();
    let store = redis_conn::AclRule::connection()
        .commands(STORE_COMMANDS)
        .keys(format!("{glob}:{{p*}}:*"))
        .keys(format!("{glob}:{{u*}}:orders"));
    cache_core::acl_rule(&CacheConfig::new(format!("{ns}:cache:product")))
        .merge(&cache_core::acl_rule(&CacheConfig::new(format!(
            "{ns}:cache:orders"
        ))))
        .merge(&dlock::acl_rule(&format!("{ns}:lock")))
        .merge(&rqueue::acl_rule_in(ns, QUEUE))
        .merge(&store)
}

/// The order queue's name (in the shop's namespace).
const QUEUE: &str = "orders";

/// What can go wrong in the shop.
///
/// ```
/// let e = examples::shop::ShopError::NoSuchProduct(7);
/// assert!(e.to_string().contains("7"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShopError {
    /// Redis failed.
    #[error(transparent)]
    Redis(#[from] redis_conn::Error),
    /// The product lock could not be taken (timeout, Redis down) or was lost.
    #[error(transparent)]
    Lock(#[from] dlock::Error),
    /// The order queue failed.
    #[error(transparent)]
    Queue(#[from] rqueue::Error),
    /// The cache failed to build a value.
    #[error("cache: {0}")]
    Cache(String),
    /// The product does not exist.
    #[error("no product {0}")]
    NoSuchProduct(u64),
    /// The lock's lease was lost and a newer holder already wrote: nothing was changed.
    #[error("the lock on product {0} was lost before the write; nothing changed")]
    Fenced(u64),
    /// The store holds something this code does not understand.
    #[error("bad data in the store: {0}")]
    Data(String),
}

impl From<fred::error::Error> for ShopError {
    fn from(e: fred::error::Error) -> ShopError {
        ShopError::Redis(e.into())
    }
}

/// A product.
///
/// ```
/// let p = examples::shop::Product { id: 1, name: "Mug".into(), price_cents: 900, stock: 5 };
/// assert_eq!(p.stock, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Price in cents.
    pub price_cents: u64,
    /// Units in stock (as stored when the details were read; stock itself is never cached).
    pub stock: i64,
}

/// An order.
///
/// ```
/// # fn show(o: &examples::shop::Order) { println!("{} ×{} of {}: {}", o.id, o.qty, o.product, o.status); }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: String,
    /// Who ordered.
    pub user: u64,
    /// What.
    pub product: u64,
    /// How many.
    pub qty: u32,
    /// `accepted`, then `processed` once the worker handled it.
    pub status: String,
}

/// The outcome of [`Shop::place_order`].
///
/// ```
/// # fn show(p: examples::shop::Placed) {
/// match p {
///     examples::shop::Placed::Accepted(id) => println!("order {id}"),
///     examples::shop::Placed::OutOfStock { left } => println!("only {left} left"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Stock was reserved and the order enqueued; its id.
    Accepted(String),
    /// Not enough stock; how much is left.
    OutOfStock {
        /// Units left.
        left: i64,
    },
}

/// The message the order queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMessage {
    /// The order id.
    pub order: String,
    /// Its product.
    pub product: u64,
    /// Its user.
    pub user: u64,
}

/// Lock waits seen by [`Shop::place_order`].
///
/// ```
/// let w = examples::shop::LockWaits::default();
/// assert_eq!(w.count, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockWaits {
    /// Locks taken.
    pub count: u64,
    /// Total time spent waiting, µs.
    pub total_us: u64,
    /// Longest wait, µs.
    pub max_us: u64,
}

#[derive(Default)]
struct WaitCounters {
    count: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

/// The shop service: one per process (cheap to clone).
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), examples::shop::ShopError> {
/// let shop = examples::shop::Shop::new(redis, "shop")?;
/// let orders = shop.get_user_orders(1001).await?;
/// # drop(orders); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Shop {
    redis: RedisClient,
    ns: String,
    products: Cache,
    user_orders: Cache,
    locks: LockClient,
    queue: Queue<OrderMessage>,
    waits: Arc<WaitCounters>,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("ns", &self.ns)
            .finish_non_exhaustive()
    }
}

/// How long product details and order lists stay cached.
const PRODUCT_TTL: Duration = Duration::from_secs(300);
const ORDERS_TTL: Duration = Duration::from_secs(600);

impl Shop {
    /// A shop whose keys all start with `ns`.
    ///
    /// ```no_run
    /// # fn demo(redis: redis_conn::RedisClient) -> Result<(), examples::shop::ShopError> {
    /// let shop = examples::shop::Shop::new(redis, "shop")?;
    /// # drop(shop); Ok(()) }
    /// ```
    pub fn new(redis: RedisClient, ns: &str) -> Result<Shop, ShopError> {
        let products = Cache::new(
            redis.clone(),
            CacheConfig::new(format!("{ns}:cache:product")),
        )
        .map_err(|e| ShopError::Cache(e.to_string()))?;
        let user_orders = Cache::new(
            redis.clone(),
            CacheConfig::new(format!("{ns}:cache:orders")),
        )
        .map_err(|e| ShopError::Cache(e.to_string()))?;
        let mut lock_cfg = LockConfig::new(format!("{ns}:lock"));
        lock_cfg.lease = Duration::from_secs(5);
        let locks = LockClient::new(redis.clone(), lock_cfg)?;
        let mut qcfg = QueueConfig::new(QUEUE);
        qcfg.namespace = ns.to_string();
        qcfg.lease = Duration::from_secs(10);
        qcfg.backoff.base = Duration::from_millis(100);
        let queue = Queue::new(redis.clone(), qcfg)?;
        Ok(Shop {
            redis,
            ns: ns.to_string(),
            products,
            user_orders,
            locks,
            queue,
            waits: Arc::default(),
        })
    }

    fn product_key(&self, id: u64) -> String {
        format!("{}:{{p{id}}}:product", self.ns)
    }

    fn pending_key(&self, id: u64) -> String {
        format!("{}:{{p{id}}}:pending", self.ns)
    }

    fn order_key(&self, product: u64, order: &str) -> String {
        format!("{}:{{p{product}}}:order:{order}", self.ns)
    }

    fn user_index_key(&self, user: u64) -> String {
        format!("{}:{{u{user}}}:orders", self.ns)
    }

    /// Adds (or replaces) a product in the store and drops its cached details.
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// shop.add_product(&examples::shop::Product { id: 1, name: "Mug".into(), price_cents: 900, stock: 5 }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_product(&self, p: &Product) -> Result<(), ShopError> {
        let _: () = self
            .redis
            .pool()
            .hset(
                self.product_key(p.id),
                [
                    ("name", Value::from(p.name.as_str())),
                    ("price_cents", Value::from(p.price_cents as i64)),
                    ("stock", Value::from(p.stock)),
                    ("processed_orders", Value::from(0)),
                ],
            )
            .await?;
        self.products
            .delete(&[&p.id.to_string()])
            .await
            .map_err(|e| ShopError::Cache(e.to_string()))?;
        Ok(())
    }

    /// Product details, cache-aside (stampede-protected by cache-core: concurrent misses
    /// build once).
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// let teapot = shop.get_product(123).await?;
    /// # drop(teapot); Ok(()) }
    /// ```
    pub async fn get_product(&self, id: u64) -> Result<Option<Product>, ShopError> {
        let redis = self.redis.clone();
        let key = self.product_key(id);
        self.products
            .get_or_set(&id.to_string(), Some(PRODUCT_TTL), || async move {
                let fields: std::collections::HashMap<String, String> =
                    redis.pool().hgetall(&key).await.map_err(ShopError::from)?;
                if fields.is_empty() {
                    return Ok(None);
                }
                let num = |f: &str| -> Result<i64, ShopError> {
                    fields
                        .get(f)
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| ShopError::Data(format!("{key}: field {f}")))
                };
                Ok::<_, ShopError>(Some(Product {
                    id,
                    name: fields.get("name").cloned().unwrap_or_default(),
                    price_cents: u64::try_from(num("price_cents")?).unwrap_or(0),
                    stock: num("stock")?,
                }))
            })
            .await
            .map_err(|e| ShopError::Cache(e.to_string()))
    }

    /// The product's stock, read from the store (never cached).
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// println!("{} left", shop.stock(123).await?);
    /// # Ok(()) }
    /// ```
    pub async fn stock(&self, product: u64) -> Result<i64, ShopError> {
        let v: Option<i64> = self
            .redis
            .pool()
            .hget(self.product_key(product), "stock")
            .await?;
        v.ok_or(ShopError::NoSuchProduct(product))
    }

    /// Places an order: under the product's lock, the stock is checked and decremented and the
    /// order recorded in one script fenced with the lock's token (a holder whose lease was lost
    /// cannot write after a newer one); then the order is enqueued (dedup key = order id) and
    /// indexed for the user, whose cached order list is dropped.
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// let placed = shop.place_order(1001, 123, 2).await?;
    /// # drop(placed); Ok(()) }
    /// ```
    pub async fn place_order(
        &self,
        user: u64,
        product: u64,
        qty: u32,
    ) -> Result<Placed, ShopError> {
        let started = Instant::now();
        let guard = self
            .locks
            .lock(&format!("product:{product}"))
            .wait(Duration::from_secs(10))
            .acquire()
            .await?;
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.waits.count.fetch_add(1, Ordering::Relaxed);
        self.waits.total_us.fetch_add(waited, Ordering::Relaxed);
        self.waits.max_us.fetch_max(waited, Ordering::Relaxed);
        let order = uuid::Uuid::new_v4().simple().to_string();
        let reply: Vec<i64> = RESERVE
            .run(
                self.redis.pool(),
                vec![
                    self.product_key(product),
                    self.pending_key(product),
                    self.order_key(product, &order),
                ],
                vec![
                    Value::from(guard.fence().to_string()),
                    Value::from(i64::from(qty)),
                    Value::from(order.as_str()),
                    Value::from(user.to_string()),
                    Value::from(product.to_string()),
                ],
            )
            .await?;
        // The stock write is done: the lock is not needed for what follows.
        if let Err(e) = guard.release().await {
            tracing::debug!(error = %e, "lock release failed; it expires with its lease");
        }
        match reply.as_slice() {
            [1, _] => {}
            [0, left] => return Ok(Placed::OutOfStock { left: *left }),
            [-1, _] => return Err(ShopError::Fenced(product)),
            [-2, _] => return Err(ShopError::NoSuchProduct(product)),
            other => return Err(ShopError::Data(format!("reserve reply {other:?}"))),
        }
        self.enqueue(&order, product, user).await?;
        let _: i64 = self
            .redis
            .pool()
            .zadd(
                self.user_index_key(user),
                None,
                None,
                false,
                false,
                (now_ms() as f64, format!("{product}:{order}")),
            )
            .await?;
        self.forget_user_orders(user).await;
        Ok(Placed::Accepted(order))
    }

    async fn enqueue(&self, order: &str, product: u64, user: u64) -> Result<(), ShopError> {
        let msg = OrderMessage {
            order: order.to_string(),
            product,
            user,
        };
        self.queue
            .message(&msg)
            .dedup(format!("order:{order}"), Duration::from_secs(86_400))
            .send()
            .await?;
        Ok(())
    }

    async fn forget_user_orders(&self, user: u64) {
        if let Err(e) = self.user_orders.delete(&[&user.to_string()]).await {
            tracing::warn!(user, error = %e, "could not drop the cached order list");
        }
    }

    /// A user's orders (cached; dropped when an order is placed or processed).
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// for o in shop.get_user_orders(1001).await? { println!("{}: {}", o.id, o.status); }
    /// # Ok(()) }
    /// ```
    pub async fn get_user_orders(&self, user: u64) -> Result<Vec<Order>, ShopError> {
        let shop = self.clone();
        let got = self
            .user_orders
            .get_or_set(&user.to_string(), Some(ORDERS_TTL), || async move {
                shop.load_user_orders(user).await.map(Some)
            })
            .await
            .map_err(|e| ShopError::Cache(e.to_string()))?;
        Ok(got.unwrap_or_default())
    }

    async fn load_user_orders(&self, user: u64) -> Result<Vec<Order>, ShopError> {
        let members: Vec<String> = self
            .redis
            .pool()
            .zrange(self.user_index_key(user), 0, -1, None, false, None, false)
            .await?;
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let Some((product, order)) = m.split_once(':') else {
                return Err(ShopError::Data(format!("user index entry {m:?}")));
            };
            let product: u64 = product
                .parse()
                .map_err(|_| ShopError::Data(format!("user index entry {m:?}")))?;
            let fields: std::collections::HashMap<String, String> = self
                .redis
                .pool()
                .hgetall(self.order_key(product, order))
                .await?;
            out.push(Order {
                id: order.to_string(),
                user,
                product,
                qty: fields.get("qty").and_then(|q| q.parse().ok()).unwrap_or(0),
                status: fields.get("status").cloned().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Handles one order message: marks the order processed in the store, once — a
    /// redelivered message finds it processed and changes nothing. Returns whether this call
    /// processed it.
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop, m: examples::shop::OrderMessage) -> Result<(), examples::shop::ShopError> {
    /// let first_time = shop.process_order(&m).await?;
    /// # let _ = first_time; Ok(()) }
    /// ```
    pub async fn process_order(&self, m: &OrderMessage) -> Result<bool, ShopError> {
        let r: i64 = MARK_PROCESSED
            .run(
                self.redis.pool(),
                vec![
                    self.order_key(m.product, &m.order),
                    self.pending_key(m.product),
                    self.product_key(m.product),
                ],
                vec![m.order.as_str()],
            )
            .await?;
        match r {
            1 => {
                self.forget_user_orders(m.user).await;
                Ok(true)
            }
            0 => Ok(false),
            _ => Err(ShopError::Data(format!("unknown order {}", m.order))),
        }
    }

    /// Runs an order worker (retries with backoff, then the dead set) until `shutdown`.
    /// `duplicates` counts redelivered messages that found their order already processed.
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// let dups = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    /// shop.run_worker(8, dups, std::future::pending()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_worker(
        &self,
        concurrency: usize,
        duplicates: Arc<AtomicU64>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<WorkerReport, ShopError> {
        let mut cfg = WorkerConfig::default();
        cfg.concurrency = concurrency;
        let shop = self.clone();
        Ok(Worker::new(self.queue.clone(), cfg)
            .run(
                move |m: OrderMessage, _job| {
                    let (shop, duplicates) = (shop.clone(), duplicates.clone());
                    async move {
                        if !shop.process_order(&m).await? {
                            duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok::<_, ShopError>(())
                    }
                },
                shutdown,
            )
            .await?)
    }

    /// Re-enqueues orders accepted more than `older_than` ago and still not processed (a
    /// process that died between reserving stock and enqueueing): their dedup key makes
    /// this harmless for orders whose message still exists. Returns how many were sent.
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// shop.requeue_stale_orders(123, std::time::Duration::from_secs(60)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn requeue_stale_orders(
        &self,
        product: u64,
        older_than: Duration,
    ) -> Result<u64, ShopError> {
        let cutoff = (now_ms().saturating_sub(older_than.as_millis() as u64) / 1000) as f64;
        let stale: Vec<String> = self
            .redis
            .pool()
            .zrangebyscore(
                self.pending_key(product),
                f64::NEG_INFINITY,
                cutoff,
                false,
                None,
            )
            .await?;
        let mut sent = 0;
        for order in stale {
            let user: Option<u64> = self
                .redis
                .pool()
                .hget(self.order_key(product, &order), "user")
                .await?;
            if let Some(user) = user {
                self.enqueue(&order, product, user).await?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// How many orders of `product` the worker processed (each counted once).
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// println!("{}", shop.processed_orders(123).await?);
    /// # Ok(()) }
    /// ```
    pub async fn processed_orders(&self, product: u64) -> Result<u64, ShopError> {
        let v: Option<u64> = self
            .redis
            .pool()
            .hget(self.product_key(product), "processed_orders")
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// How many times the order was processed (1 once the worker handled it; never more).
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// assert!(shop.times_processed(123, "abc").await? <= 1);
    /// # Ok(()) }
    /// ```
    pub async fn times_processed(&self, product: u64, order: &str) -> Result<u64, ShopError> {
        let v: Option<u64> = self
            .redis
            .pool()
            .hget(self.order_key(product, order), "processed")
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// The order queue (stats, dead letters).
    ///
    /// ```no_run
    /// # async fn demo(shop: examples::shop::Shop) -> Result<(), examples::shop::ShopError> {
    /// println!("{:?}", shop.queue().stats().await?);
    /// # Ok(()) }
    /// ```
    pub fn queue(&self) -> &Queue<OrderMessage> {
        &self.queue
    }

    /// Product-details cache counters.
    ///
    /// ```no_run
    /// # fn demo(shop: examples::shop::Shop) { println!("{:?}", shop.product_cache_stats()); }
    /// ```
    pub fn product_cache_stats(&self) -> cache_core::CacheStats {
        self.products.stats()
    }

    /// Order-list cache counters.
    ///
    /// ```no_run
    /// # fn demo(shop: examples::shop::Shop) { println!("{:?}", shop.order_cache_stats()); }
    /// ```
    pub fn order_cache_stats(&self) -> cache_core::CacheStats {
        self.user_orders.stats()
    }

    /// Lock waits of [`Shop::place_order`] in this instance.
    ///
    /// ```no_run
    /// # fn demo(shop: examples::shop::Shop) { println!("{:?}", shop.lock_waits()); }
    /// ```
    pub fn lock_waits(&self) -> LockWaits {
        LockWaits {
            count: self.waits.count.load(Ordering::Relaxed),
            total_us: self.waits.total_us.load(Ordering::Relaxed),
            max_us: self.waits.max_us.load(Ordering::Relaxed),
        }
    }

    /// The lock client (its stats).
    ///
    /// ```no_run
    /// # fn demo(shop: examples::shop::Shop) { println!("{:?}", shop.locks().stats()); }
    /// ```
    pub fn locks(&self) -> &LockClient {
        &self.locks
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
