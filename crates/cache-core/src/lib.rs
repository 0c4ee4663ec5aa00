//! Cache-aside on Redis for async services: [`Cache::get_or_set`] returns a cached value or
//! builds it once, with the protections production caches need.
//!
//! ```no_run
//! use std::time::Duration;
//! use cache_core::{Cache, CacheConfig, Codec};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = redis_conn::RedisClient::connect(redis_conn::RedisConfig::from_env()?).await?;
//! let mut config = CacheConfig::new("shop:product");
//! config.codec = Codec::MessagePack;
//! let cache = Cache::new(redis, config)?;
//! let name: Option<String> = cache
//!     .get_or_set("42", Some(Duration::from_secs(300)), || async {
//!         Ok::<_, std::io::Error>(Some("Rusty teapot".to_string()))
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees (this release)
//!
//! | threat | protection |
//! |---|---|
//! | stampede within a process | concurrent calls for one key share one Redis read and at most one build (single-flight); followers get the leader's value or error (measured: 200 concurrent hits on a key → 1 `GET`), and give each build they follow `max_wait`, after which one of them leads a successor build and the others follow it (a hung builder costs one extra build, not one per waiter); a leader whose call is dropped (a caller's timeout) hands the flight to a follower at once; a leader whose builder panics gives its followers [`BuildError::Panicked`] while the panic goes on in the leader's own call; a lookup that started before a write through the same `Cache` is never shared with calls made after that write (read-your-writes within the process) |
//! | stampede across processes | the first process to miss takes a short rebuild lease (`SET NX PX`); the others wait and are woken by pub/sub when the value lands (one subscriber connection per cache); the value write, lease release and wake-up are one Lua script; a builder that fails, panics or is cancelled at any `.await` gives the lease back at once (a drop guard sends the release over the connection that took the lease, so it cannot overtake the `SET NX`) and wakes every process's waiters; only a builder whose process dies leaves its lease to expire; waits never exceed `max_wait` |
//! | penetration (ids that do not exist) | `Ok(None)` from the builder is cached as "not found" for `null_ttl`; opt-in [`BloomFilter`] (plain Redis bitmap, check/add in one script, parameters verified on every call) answers never-added ids without touching cache or builder (`get_or_set_filtered`; measured FP 1.02% at a 1% target) |
//! | avalanche (keys written together expiring together) | every TTL is jittered by `1 ± jitter` |
//! | Redis down or slow | `get_or_set` returns the builder's value; errors are counted, never returned; after `breaker_failures` consecutive connection errors a circuit breaker skips Redis for `breaker_open_for` (measured: p99 50 µs per call while open, instead of a command timeout), then one probe call decides whether it closes |
//! | garbage or foreign values under a key | treated as a miss, rebuilt, counted |
//! | hot keys expiring under load | XFetch (Vattani et al., VLDB 2015): each hit refreshes early with probability `exp(−remaining / (β·build time))`, using the build time stored in the envelope; one caller refreshes, the rest keep the current value; if another process is already refreshing, nobody waits |
//! | slow rebuilds | `get_or_refresh` serves a due value at once and refreshes it in a background task (logical expiry: with `stale_for` readers of a hot key never wait); `stale_for`: values outlive their TTL by a grace period in Redis; past the logical expiry one caller refreshes while everyone else gets the stale value at once; a failed refresh keeps serving the stale value |
//! | invalidation | by key; by pattern with `SCAN` on every primary + `UNLINK` (never `KEYS`); by tag (`set_tagged` / `invalidate_tag`) |
//! | near cache (opt-in `near`) | moka L1, coherent through RESP3 `CLIENT TRACKING BCAST PREFIX <namespace>:` on a dedicated connection (on every primary of a cluster); flushed on reconnect, tracking errors, cluster changes and missed invalidations; bounded in size and age; a read that raced an invalidation is never stored (generation check — in a namespace with constant writes this keeps the L1 mostly empty) |
//! | batch | `get_many` (one `MGET` per cluster slot, slots in parallel), `set_many` (one pipeline) |
//! | function results | `cached(function, &args, ttl, f)`: key from canonical JSON of the arguments (SHA-1), stable across processes |
//! | counters across processes | each cache instance adds its counters to `<namespace>:__stats__` from a background task (one script per `shared_stats` interval, default 1 s, only when something changed, plus a 5 s heartbeat); [`SharedStats::load`] reads the sums and each instance's breaker state and last report in one round trip; a failed flush is retried with the same totals and the script adds each increment once (a lost reply is neither lost nor counted twice); the hot path is unchanged (the same atomics); the cache keys `__stats__` and `__tag__:*` are reserved |
//! | observability | counters in [`Cache::stats`] and through the `metrics` facade (`redkit_cache_{hits,l1_hits,misses,null_hits,builds,build_errors,coalesced,redis_errors,decode_errors,lease_waits,woken,wait_timeouts,short_circuited,filtered,refreshes}_total{namespace}`, gauge `redkit_cache_breaker_open`); `tracing` spans on Redis round trips |
//!
//! Not guaranteed: a value written to a primary that fails over before replicating is lost
//! (the next reader rebuilds it); tag and pattern invalidation are not atomic across cluster
//! slots (an entry written during the invalidation may survive); Redis TTLs and logical expiry
//! use the writer's clock; a build that started before a `set` of the same key can overwrite
//! that `set` when it lands (cache-aside's classic race: prefer `delete` on writes, and TTLs
//! that bound how long a stale value can live).

//! # Least privilege
//!
//! [`acl_rule`] gives the smallest ACL rule a cache runs with (and [`bloom_acl_rule`] a
//! [`BloomFilter`]'s). For `CacheConfig::new("shop:product")` it is:
//!
//! ```
//! let rule = cache_core::acl_rule(&cache_core::CacheConfig::new("shop:product"));
//! assert_eq!(
//!     rule.to_string(),
//!     "resetkeys resetchannels -@all +ping +info +role +cluster|slots +cluster|info \
//!      +cluster|nodes +asking +select +client|setname +client|id +quit +script|load +evalsha +eval \
//!      +get +mget +set +pttl +del +unlink +publish +subscribe +sadd +expire +smembers +scan \
//!      +hget +hincrby +hset +hgetall +hdel +pexpire +time +hsetnx \
//!      ~shop:product:* ~{shop:product:*}:rebuild ~redkit:registry &shop:product:__filled__"
//! );
//! ```
//!
//! ```text
//! ACL SETUSER shop-cache on >secret resetkeys resetchannels -@all +ping +info +role +cluster|slots +cluster|info +cluster|nodes +asking +select +client|setname +client|id +quit +script|load +evalsha +eval +get +mget +set +pttl +del +unlink +publish +subscribe +sadd +expire +smembers +scan +hget +hincrby +hset +hgetall +hdel +pexpire +time +hsetnx ~shop:product:* ~{shop:product:*}:rebuild ~redkit:registry &shop:product:__filled__
//! ```
//!
//! | right | what needs it |
//! |---|---|
//! | `+ping +info +role +cluster\|slots +cluster\|info +cluster\|nodes +select +client\|setname +client\|id +quit` | redis-conn itself ([`redis_conn::AclRule::connection`]) |
//! | `+script\|load +evalsha +eval` | the rebuild lease's fill and release scripts; [`BloomFilter`] |
//! | `+get +mget` | `get`, every lookup, lease re-checks, `get_many` |
//! | `+set` | `set`, built values, `set_many`, taking the lease (`SET NX PX`) |
//! | `+pttl` | a caller waiting for another process's build |
//! | `+del` | the fill / release scripts, `invalidate_tag` |
//! | `+unlink` | `delete`, `invalidate_pattern`, `invalidate_tag` |
//! | `+publish +subscribe` | wake-ups: sent from the scripts, received by the cache's subscriber |
//! | `+sadd +expire +smembers` | `set_tagged`, `invalidate_tag` |
//! | `+scan` | `invalidate_pattern` (on every primary) |
//! | `+hget +hincrby +hset +hgetall +hdel +pexpire +time` | the shared stats: the flush script (every `shared_stats` interval, from a background task) and [`SharedStats::load`] |
//! | `+hsetnx ~redkit:registry` | the registry entry the console lists caches by (once per process and namespace; refused: logged once, nothing else changes) |
//! | `+client\|tracking` | the near cache, only when `config.near` is set |
//! | `~<namespace>:*` | values, tag sets (`<namespace>:__tag__:<tag>`), the shared stats hash (`<namespace>:__stats__`), Bloom filters opened with the cache's namespace |
//! | `~{<namespace>:*}:rebuild` | rebuild leases |
//! | `&<namespace>:__filled__` | the wake-up channel |
//! | `+hget +hset +getbit +setbit +del ~<namespace>:{bloom:*` | a [`BloomFilter`] ([`bloom_acl_rule`]) |
//!
//! A namespace ending in `*` gives a family: `acl_rule(&CacheConfig::new("shop:tenant:*"))`
//! covers every cache whose namespace starts with `shop:tenant:`.
//!
//! With a right missing, `get`, `set`, `delete`, `get_many`, `set_many`, `set_tagged`,
//! `invalidate_*` and the [`BloomFilter`] calls fail with
//! `Error::Redis(redis_conn::Error::NoPermission(message))`: the message is Redis's reply
//! (which names a refused command, but not a key or channel) followed by what cache-core was
//! doing, naming the command and its keys or channel. The lookups that build
//! (`get_or_set`, `get_or_refresh`, `get_or_set_filtered`, `cached`) never fail for Redis
//! reasons, refusals included: they return the builder's value, count the refusal in
//! [`CacheStats::redis_errors`] (`redkit_cache_redis_errors_total`) and log it with the same
//! message; nothing is left behind. Without the scripts or the channel, a built value is still
//! cached (plain `SET`) and the lease is deleted without the script (if its token is still
//! ours and enough of it is left); waiters in other processes are then not woken and re-check
//! when the lease runs out. Without `SUBSCRIBE`, waits end by timeout. Without the lease's
//! key pattern, builds run without the cross-process lease. Without `CLIENT TRACKING`, the
//! near cache stays off and every read goes to Redis.
//!
//! # How this crate is laid out
//!
//! One concept per module; each imports only modules listed before it, so read them in this
//! order. Building blocks: `codec` (JSON / MessagePack), `envelope` (what is stored under a
//! key: payload, expiry, build time), `error` ([`Error`], [`BuildError`]), `breaker` (the
//! circuit breaker), `near` (the tracked in-process L1), `bloom` ([`BloomFilter`]). Then the
//! `cache` folder, bottom up: `cache/config.rs` ([`CacheConfig`], [`Lookup`]),
//! `cache/stats.rs` ([`CacheStats`] and the `metrics` counters), `cache/shared.rs`
//! ([`SharedStats`]: the counters summed across processes in Redis), `cache/flight.rs`
//! (in-process single-flight: leaders, followers, shared outcomes), `cache/inner.rs` (the
//! [`Cache`] handle, its shared state and the Redis helpers every path uses),
//! `cache/lease.rs` (the cross-process rebuild lease, its give-back guard and pub/sub
//! wake-ups), and the operations: `cache/plain.rs` (`get` / `set` / `delete`),
//! `cache/lookup.rs` (`get_or_set`, `get_or_refresh`, `get_or_set_filtered`: the leader's
//! read, lease, build and write), `cache/batch.rs`, `cache/invalidate.rs` (patterns, tags)
//! and `cache/function.rs` (`cached`). Last, `acl` ([`acl_rule`], [`bloom_acl_rule`]: what
//! all of the above sends, as an ACL rule). `lib.rs` only declares and re-exports.

mod acl;
mod bloom;
mod breaker;
mod cache;
mod codec;
mod envelope;
mod error;
mod near;

pub use acl::{acl_rule, bloom_acl_rule};
pub use bloom::BloomFilter;
pub use breaker::BreakerState;
pub use cache::{Cache, CacheConfig, CacheStats, Lookup, ProcessReport, SharedStats};
pub use codec::{Codec, CodecError};
pub use envelope::{Envelope, EnvelopeError};
pub use error::{BuildError, Error};
pub use near::NearConfig;
