//! Distributed locks on Redis for async services: leases renewed by one watchdog per client,
//! fencing tokens, a lease-loss signal per hold, event-driven waiting, explicit reentrancy.
//!
//! ```no_run
//! use dlock::{LockClient, LockConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = redis_conn::RedisClient::connect(redis_conn::RedisConfig::from_env()?).await?;
//! let locks = LockClient::new(redis, LockConfig::new("shop:locks"))?;
//! let guard = locks.lock("product:42").acquire().await?;
//! // Writes carry guard.fence(); the resource refuses tokens older than one it has seen.
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees and limits (this release)
//!
//! | topic | behaviour |
//! |---|---|
//! | mutual exclusion | one Lua script grants a lock (`<ns>:{name}` hash: owner, fence, one field per hold), all keys of a lock share the hash tag `{name}` (Cluster-safe) |
//! | leases | every hold has a lease (default 30 s); one watchdog task per client renews all held leases in batched scripts a third of a lease after their last confirmed renewal; renewal stops before the release is sent; a renewal never re-creates a lock that is gone |
//! | lease loss | [`Guard::lost`] completes when a renewal finds the hold gone, or when the local deadline (lease − 1 % − 2 ms after the last confirmed request was *sent*) passes — e.g. a stalled process or an unreachable Redis; [`LockClient::with_lock`] cancels its body then |
//! | fencing | every grant returns a token larger than all earlier ones for that name: `max(counter + 1, server time in µs)`, the counter outlives the lock key; [`fenced_set`] and the SQL pattern in [`fence`] reject stale writers |
//! | waiting | releases `PUBLISH` the lock name on one channel per namespace; each client has one subscriber connection for all locks; a waiter registers before retrying and keeps a timer equal to the holder's remaining lease, so a lost message only costs latency |
//! | release | idempotent (a hold is a hash field: removing it twice changes nothing); reports [`Released::AlreadyExpired`] when the lease ran out first; dropping a guard releases through one janitor task per client (no blocking, no spawn per guard); an acquire cancelled in flight is given back the same way, over the connection the attempt used (every call about one lock goes over the pooled connection its hash slot picks), so the give-back cannot overtake the attempt |
//! | reentrancy | explicit [`Owner`] handles (no thread identity in async Rust); each hold is released on its own |
//! | replication | optional `WAIT n` after each grant ([`LockConfig::replication`]); a grant too few replicas acknowledged is released and reported as [`Error::NotReplicated`] |
//! | fairness | default: no order (a releasing task may barge ahead; measured with 8 workers on 2 clients: shares between 0.4× and 1.6× of fair across runs, waits up to ~200 ms). [`LockRequest::fair`]: a FIFO line in Redis (entries expire unless refreshed, so a dead waiter leaves it within 2 s); release hands the lock straight to the first live waiter with one message naming it and its token (measured: every worker within 4 % of its share, longest wait 6.7 ms) |
//! | local hand-offs | a holder that releases while another request *of the same client* waits (same lease and mode, no explicit [`Owner`]) passes the Redis hold to it without a round trip: the next fencing token, the same lease deadline, renewed by the same watchdog; requests arriving while such a run has room wait locally without asking Redis. At most [`LockConfig::local_handoffs`] (16) in a row, then the lock goes back through Redis (in fair mode to the first in the Redis line, so another client waits at most one run). The release that ends a run raises the token counter past every token handed out locally and takes locally served fair waiters out of the Redis line; if the process dies mid-run, that release never comes, but the next grant is a lease later and takes `max(counter + 1, server µs)`, past the run's few extra tokens — unless the server clock is behind the counter (a failover to a primary with a slower clock), where only `local_handoffs = 0` keeps tokens strictly increasing. 0 turns it off |
//! | semaphore | [`LockClient::semaphore`]: permits are leases in a sorted set scored by their server-time expiry, renewed by the watchdog; a dead holder's permit returns within its lease |
//! | read-write lock | [`LockClient::rwlock`]: many readers or one writer; a waiting writer blocks new readers (writer-preferring), its intent lapses 2 s after it stops waiting; writers get fencing tokens |
//! | Redlock | [`Redlock`]: N ≥ 3 independent servers, parallel attempts each bounded by 5 % of the lease, majority plus validity (lease − elapsed − drift); lost when fewer than a majority of holds remain |
//! | inspection | [`LockClient::inspect`] reads every key of a name in one script (owner, fence, lease left, holds, the live fair line, how long held); [`LockClient::held_locks`] scans the namespace on every primary, bounded by a limit and 100,000 keys; [`LockClient::force_release`] frees a mutex whoever holds it and wakes or hands off to its waiters, keeping the fence counter (the freed holder may still run: only fencing protects the resource) |
//! | failover (tested on Sentinel) | with `WAIT 1`: a grant no replica acknowledged fails closed; an acknowledged one survived a primary SIGKILL and its holder kept renewing it. Without `WAIT`: a grant the replicas never received died with the primary, a second owner acquired, the first holder's [`Guard::lost`] fired (renewal refused) and its token was still smaller, so [`fenced_set`] refused its write |
//!
//! Not guaranteed: Redis replication is asynchronous. Without `WAIT`, a primary that fails
//! over right after a grant can lose it, and the new primary grants the lock again while the
//! first holder still runs: only fencing protects the resource then. With `WAIT n` the grant
//! reached n replicas, but Sentinel or Cluster may still promote one that did not have it.
//! Leases are measured with Redis's clock (TTLs) and checked locally with a monotonic clock
//! and a drift allowance; a paused holder cannot notice its lease ended until it runs again,
//! which is what fencing tokens are for. A lock name is used either fair or not, never both.
//! Redlock adds availability across independent servers, not consensus: its fence is the
//! largest of the granting servers' tokens.
//!
//! # Least privilege
//!
//! [`acl_rule`] gives the smallest ACL rule a lock client of one namespace needs: its keys
//! (`<namespace>:*`: lock hashes, fence counters, "someone waits" flags, fair lines,
//! semaphores, read-write locks), its wake-up channel (`<namespace>:__released__`: wake-ups
//! and fair hand-offs) and the commands sent directly or by the scripts in `src/lua`, on top of
//! [`redis_conn::AclRule::connection`]. For the namespace `shop:locks`:
//!
//! ```text
//! ACL SETUSER shop-locks on >password resetkeys resetchannels -@all +ping +info +role
//!   +cluster|slots +cluster|info +cluster|nodes +asking +select +client|setname +client|id +quit
//!   +script|load +evalsha +eval +hget +hset +hdel +hexists +hlen +get +set +del +exists
//!   +pexpire +pttl +time +lindex +lpop +rpush +lrem +zadd +zrem +zscore +zrangebyscore +zcard
//!   +zrange +zremrangebyscore +publish +subscribe +wait +type +hgetall +lrange +scan +hsetnx
//!   ~shop:locks:* ~redkit:registry &shop:locks:__released__
//! ```
//!
//! (one line; `acl_rule("shop:locks").to_string()` is the text after the password). A
//! trailing `*` grants a family of namespaces: `acl_rule("t:dlock:*")` ends in
//! `~t:dlock:*:* ~redkit:registry &t:dlock:*:__released__`.
//!
//! | feature | rights it needs besides the keys, `+evalsha +eval` and the mutex commands |
//! |---|---|
//! | waiting ([`LockRequest::acquire`] on a held lock, semaphores, read-write locks) | `+subscribe`, `&<namespace>:__released__`, and `+publish` for the releases that wake waiters (a lock that is free at once needs none of them) |
//! | fair locks ([`LockRequest::fair`]) | the channel, `+subscribe +publish` always, and `+lindex +lpop +rpush +lrem +zadd +zrem +zscore +zrangebyscore` |
//! | semaphores, read-write locks | `+zadd +zrem +zscore +zcard +zrange +zremrangebyscore` |
//! | replication ([`LockConfig::replication`]) | `+wait` (drop it with `.without_command("wait")` otherwise) |
//! | inspection ([`LockClient::inspect`], [`LockClient::held_locks`], [`LockClient::force_release`]) | `+type +hgetall +lrange` (the inspect script), `+scan` (`held_locks`, every primary) |
//! | the registry entry the console lists namespaces by | `+hsetnx ~redkit:registry` (refused: logged once, nothing else changes) |
//! | [`Redlock`] | the same rule on every server |
//! | [`fenced_set`] | `+get +set` on the resource's own keys and `<key>:fence`: add `~<resource pattern>` |
//! | `dlock-hold` (the CLI) | `acl_rule(<namespace>)` |
//!
//! A missing right fails the operation with [`Error::NoPermission`], whose message names the
//! refused command, keys or channel, before anything is written: Redis checks a script's
//! command and keys before running it, the release scripts check the channel (with
//! `redis.acl_check_cmd`, Redis 7+) before they write, and the wake-up subscriber is started
//! before a waiter joins a fair line. Take the rule whole: Redis does not undo a script that
//! stops half-way, so a rule without a command the scripts call (`+pexpire`, say) can leave a
//! grant without its expiry.
//!
//! ```
//! assert_eq!(
//!     dlock::acl_rule("shop:locks").to_string(),
//!     "resetkeys resetchannels -@all +ping +info +role +cluster|slots +cluster|info \
//!      +cluster|nodes +asking +select +client|setname +client|id +quit +script|load +evalsha +eval \
//!      +hget +hset +hdel +hexists +hlen +get +set +del +exists +pexpire +pttl +time +lindex \
//!      +lpop +rpush +lrem +zadd +zrem +zscore +zrangebyscore +zcard +zrange +zremrangebyscore \
//!      +publish +subscribe +wait +type +hgetall +lrange +scan +hsetnx ~shop:locks:* \
//!      ~redkit:registry &shop:locks:__released__"
//! );
//! ```
//!
//! # How this crate is laid out
//!
//! Read it bottom-up: a module imports only modules of earlier items in this list (and
//! `client` its own children).
//!
//! 1. Vocabulary: `error` ([`Error`], [`LostReason`]), `config` ([`LockConfig`],
//!    [`Replication`]), `stats` ([`Stats`] and the exported metrics).
//! 2. Helpers: `clock` (drift allowance, local lease deadlines), `keys` (name checks, the keys
//!    beside a lock's key, the per-lock pooled connection), `sync` (the mutex helper),
//!    `scripts` (the locks' Lua scripts; the fenced write keeps its own in `fence`), `acl`
//!    ([`acl_rule`], the rights those scripts and the client need).
//! 3. `hold`: a single hold — how it is named in Redis, its kind, lease schedule and state,
//!    and the local hand-offs made under it.
//! 4. `release`: releasing a hold of any kind in Redis, the fair hand-off, the janitor's jobs.
//! 5. `watchdog`: the one task per client that renews every hold.
//! 6. `state`: the shared state behind [`LockClient`], [`Guard`] and the local lines, declared
//!    together because they point at one another.
//! 7. `janitor` (the releases `Drop` cannot await) and `wakeup` (the one subscriber
//!    connection: wake-ups and fair hand-off messages).
//! 8. `local`: local hand-offs (lock cohorting) between requests of one client.
//! 9. `guard`: what a [`Guard`] does — token, lease loss, extension, release, drop — and
//!    [`Released`].
//! 10. `client`: [`LockClient`]'s public methods and the mutex's acquire paths, in reading
//!     order `client::request` ([`LockRequest`], [`Owner`]), `client::attempt` (one acquire
//!     script call), `client::acquire` (waiting), `client::fair` (the FIFO line) and
//!     `client::inspect` ([`LockInfo`], [`HeldLocks`]: inspection and force release for
//!     operators).
//! 11. `shared` ([`Semaphore`], [`RwLock`]), `redlock` ([`Redlock`], [`RedlockGuard`]) and the
//!     public module [`fence`] (fenced writes, the resource side).

mod acl;
mod client;
mod clock;
mod config;
mod error;
pub mod fence;
mod guard;
mod hold;
mod janitor;
mod keys;
mod local;
mod redlock;
mod release;
mod scripts;
mod shared;
mod state;
mod stats;
mod sync;
mod wakeup;
mod watchdog;

pub use acl::acl_rule;
pub use client::{HeldLocks, LockInfo, LockKind, LockRequest, Owner};
pub use config::{LockConfig, Replication};
pub use error::{Error, LostReason};
pub use fence::{Fenced, fenced_set};
pub use guard::Released;
pub use redlock::{Redlock, RedlockGuard};
pub use shared::{RwLock, Semaphore};
pub use state::{Guard, LockClient};
pub use stats::Stats;
