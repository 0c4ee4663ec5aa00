#![doc = include_str!("../README.md")]

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
#[cfg(feature = "bloom")]
mod bloom;
mod breaker;
mod cache;
mod codec;
mod envelope;
mod error;
#[cfg(feature = "near-cache")]
mod near;
#[cfg(not(feature = "near-cache"))]
#[path = "near_off.rs"]
mod near;
mod near_config;

pub use acl::acl_rule;
#[cfg(feature = "bloom")]
pub use acl::bloom_acl_rule;
#[cfg(feature = "bloom")]
pub use bloom::BloomFilter;
pub use breaker::BreakerState;
#[cfg(feature = "json")]
pub use cache::function_key;
pub use cache::{Cache, CacheConfig, CacheStats, Lookup, ProcessReport, SharedStats};
pub use codec::{Codec, CodecError};
pub use envelope::{Envelope, EnvelopeError};
pub use error::{BuildError, Error};
pub use near_config::NearConfig;
