//! Least privilege: the ACL rule a cache's Redis user needs ([`acl_rule`]) and the one a
//! [`BloomFilter`](crate::BloomFilter)'s needs ([`bloom_acl_rule`]), as
//! [`redis_conn::AclRule`]s whose text pastes into `ACL SETUSER <user> on >password <rule>`.

use redis_conn::AclRule;

use crate::cache::CacheConfig;

/// Commands a cache sends itself or from its scripts, besides what any redis-conn client needs
/// ([`AclRule::connection`]: `PING`, `INFO`, ..., `EVALSHA`, `EVAL`).
const CACHE_COMMANDS: [&str; 19] = [
    // Reads: `get`, lookups, lease re-checks, `get_many`.
    "get",
    "mget",
    // Writes: `set`, built values, `set_many`, and the lease (`SET NX PX`).
    "set",
    // How long a lease has left (a waiting caller).
    "pttl",
    // The fill and release scripts, tag invalidation, `BloomFilter::clear`.
    "del",
    // `delete`, pattern and tag invalidation.
    "unlink",
    // Wake-ups: sent from the scripts, and received by the cache's subscriber.
    "publish",
    "subscribe",
    // Tags: `set_tagged`, `invalidate_tag`.
    "sadd",
    "expire",
    "smembers",
    // Pattern invalidation, on every primary.
    "scan",
    // Shared stats: the flush script (`hget`, `hincrby`, `hset`, `pexpire`, `time`, and
    // `hgetall` + `hdel` to prune) and the reader (`hgetall`, `time`).
    "hget",
    "hincrby",
    "hset",
    "hgetall",
    "hdel",
    "pexpire",
    "time",
];

/// The registry entry (`HSETNX redkit:registry`), sent once per process and namespace.
const REGISTRY_COMMANDS: [&str; 1] = ["hsetnx"];

/// Commands a Bloom filter sends from its script (`HGET`, `HSET`, `GETBIT`, `SETBIT`) and to
/// clear it (`DEL`).
#[cfg(feature = "bloom")]
const BLOOM_COMMANDS: [&str; 5] = ["hget", "hset", "getbit", "setbit", "del"];

/// The smallest ACL rule a [`Cache`](crate::Cache) with `config` runs with: what redis-conn
/// needs ([`AclRule::connection`]), the commands of every cache operation, the keys of the
/// namespace (values, tag sets and the shared stats hash `<namespace>:*`, rebuild leases
/// `{<namespace>:*}:rebuild`), the wake-up channel `<namespace>:__filled__` and the registry
/// entry (`+hsetnx ~redkit:registry`); plus `CLIENT TRACKING` when `config.near` is set.
///
/// `~redkit:registry` lets the user's other commands touch that key too (`DEL` would empty
/// the console's list): drop it with `.without_keys("redkit:registry")` where that matters;
/// the cache then logs the refused registration once and the console finds it by scanning. A namespace that ends in `*` (`"shop:cache:*"`) gives the rights of
/// every namespace it matches; glob characters elsewhere in it are escaped.
///
/// A [`BloomFilter`](crate::BloomFilter) under the same namespace also needs
/// [`bloom_acl_rule`]'s commands (its keys are already covered).
///
/// ```
/// use cache_core::{CacheConfig, NearConfig, acl_rule};
/// use std::time::Duration;
///
/// let rule = acl_rule(&CacheConfig::new("shop:product"));
/// let text = rule.to_string();
/// assert!(text.contains("~shop:product:* ~{shop:product:*}:rebuild ~redkit:registry &shop:product:__filled__"));
/// assert!(!text.contains("tracking"));
///
/// let mut near = CacheConfig::new("shop:product");
/// near.near = Some(NearConfig::new(10_000, Duration::from_secs(30)));
/// assert!(acl_rule(&near).to_string().contains("+client|tracking"));
///
/// // A family of namespaces, e.g. one per tenant:
/// let tenants = acl_rule(&CacheConfig::new("shop:tenant:*")).to_string();
/// assert!(tenants.contains("~shop:tenant:*:*"));
/// ```
pub fn acl_rule(config: &CacheConfig) -> AclRule {
    let prefix = glob_prefix(&config.namespace);
    let rule = AclRule::connection()
        .commands(CACHE_COMMANDS)
        .commands(REGISTRY_COMMANDS)
        .keys(format!("{prefix}:*"))
        .keys(format!("{{{prefix}:*}}:rebuild"))
        .keys(redis_conn::registry::REGISTRY_KEY)
        .channels(format!("{prefix}:__filled__"));
    if config.near.is_some() {
        rule.commands(["client|tracking"])
    } else {
        rule
    }
}

/// The smallest ACL rule a [`BloomFilter`](crate::BloomFilter) opened with `namespace` runs
/// with: what redis-conn needs (its script runs by `EVALSHA` / `EVAL`), the commands of its
/// script and of `clear`, and its keys `<namespace>:{bloom:<name>}:*` for any name. A
/// namespace ending in `*` works as in [`acl_rule`].
///
/// ```
/// let rule = cache_core::bloom_acl_rule("shop");
/// assert!(rule.to_string().ends_with("+setbit +del ~shop:{bloom:*"));
/// // A cache and its filter in one user:
/// let both = cache_core::acl_rule(&cache_core::CacheConfig::new("shop:product"))
///     .merge(&cache_core::bloom_acl_rule("shop"));
/// assert!(both.to_string().contains("+getbit"));
/// ```
#[cfg(feature = "bloom")]
pub fn bloom_acl_rule(namespace: &str) -> AclRule {
    AclRule::connection()
        .commands(BLOOM_COMMANDS)
        .keys(format!("{}:{{bloom:*", glob_prefix(namespace)))
}

/// `namespace` as a glob: `*`, `?`, `[`, `]` and `\` escaped, except a trailing `*` (a family
/// of namespaces).
fn glob_prefix(namespace: &str) -> String {
    let (literal, family) = match namespace.strip_suffix('*') {
        Some(head) => (head, true),
        None => (namespace, false),
    };
    let mut out = String::with_capacity(namespace.len() + 4);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    if family {
        out.push('*');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_escaped_except_a_trailing_star() {
        assert_eq!(glob_prefix("shop"), "shop");
        assert_eq!(glob_prefix("a?b[1]"), "a\\?b\\[1\\]");
        assert_eq!(glob_prefix("t:cache:*"), "t:cache:*");
        assert_eq!(glob_prefix("a*b*"), "a\\*b*");
    }

    /// Every `redis.call('X', ...)` (and `redis.pcall`) of a script source, lower case.
    fn called(source: &str) -> Vec<String> {
        source
            .split("call(")
            .skip(1)
            .filter_map(|rest| {
                let name: String = rest
                    .trim_start_matches(['\'', '"'])
                    .chars()
                    .take_while(char::is_ascii_alphabetic)
                    .collect();
                (!name.is_empty()).then(|| name.to_ascii_lowercase())
            })
            .collect()
    }

    #[test]
    fn the_rules_allow_every_command_the_scripts_call() {
        let cache = acl_rule(&CacheConfig::new("x"));
        for (script, source) in [
            ("fill", include_str!("fill.lua")),
            ("release", include_str!("release.lua")),
            ("stats_flush", include_str!("stats_flush.lua")),
            ("stats_read", include_str!("stats_read.lua")),
        ] {
            let calls = called(source);
            assert!(
                calls.contains(&"publish".to_string()) || script.starts_with("stats"),
                "{script}: {calls:?}"
            );
            for c in calls {
                assert!(cache.allowed_commands().contains(&c), "{script} calls {c}");
            }
        }
        let bloom = bloom_acl_rule("x");
        let calls = called(include_str!("bloom.lua"));
        assert!(calls.len() >= 4, "{calls:?}");
        for c in calls {
            assert!(bloom.allowed_commands().contains(&c), "bloom calls {c}");
        }
    }

    #[test]
    fn every_command_appears_once() {
        let rule = acl_rule(&CacheConfig::new("x"));
        for c in CACHE_COMMANDS {
            let n = rule.allowed_commands().iter().filter(|a| *a == c).count();
            assert_eq!(n, 1, "{c}: {rule}");
        }
    }
}
