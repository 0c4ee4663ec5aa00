//! Least privilege: [`acl_rule`], the smallest Redis ACL rule a lock client of one namespace
//! (or of a family of namespaces) needs.

use redis_conn::AclRule;

/// Commands the lock scripts (`src/lua/*.lua`) call, by what needs them.
///
/// Every lock: the mutex hash, its fence counter and "someone waits" flag, renewals.
const LOCK: [&str; 12] = [
    "hget", "hset", "hdel", "hexists", "hlen", "get", "set", "del", "exists", "pexpire", "pttl",
    "time",
];
/// Fair locks: the line (a list of waiters and a zset of their entry deadlines).
const FAIR: [&str; 8] = [
    "lindex",
    "lpop",
    "rpush",
    "lrem",
    "zadd",
    "zrem",
    "zscore",
    "zrangebyscore",
];
/// Semaphores and read-write locks: zsets of leases scored by their expiry.
const SHARED: [&str; 6] = [
    "zadd",
    "zrem",
    "zscore",
    "zcard",
    "zrange",
    "zremrangebyscore",
];
/// Wake-ups and fair hand-offs: published by releases (in the scripts), heard by one
/// subscriber connection per client.
const WAKE_UPS: [&str; 2] = ["publish", "subscribe"];
/// [`LockConfig::replication`](crate::LockConfig::replication): `WAIT` after each grant.
const REPLICATION: [&str; 1] = ["wait"];
/// Inspection ([`LockClient::inspect`](crate::LockClient::inspect), `held_locks`): the
/// inspect script's reads, and `SCAN` over the namespace on every primary.
const INSPECTION: [&str; 4] = ["type", "hgetall", "lrange", "scan"];
/// The registry entry (`HSETNX redkit:registry`), once per process and namespace.
const REGISTRY: [&str; 1] = ["hsetnx"];

/// The ACL rule a [`LockClient`](crate::LockClient) with
/// [`LockConfig::namespace`](crate::LockConfig::namespace)
/// `namespace` needs, for every feature: [`AclRule::connection`] (connecting, `EVALSHA` /
/// `EVAL`), the keys `<namespace>:*`, the wake-up channel `<namespace>:__released__`, and the
/// commands the lock scripts call, `SUBSCRIBE`, `WAIT`, `SCAN` (inspection) and the registry
/// entry (`+hsetnx ~redkit:registry`: drop it with `.without_keys("redkit:registry")` to keep
/// the user off that key; the refused registration is then logged once). Paste its text after
/// `ACL SETUSER <user> on >password`. A trailing `*` grants a family of namespaces:
/// `acl_rule("t:dlock:*")` covers every namespace starting with `t:dlock:`. Other glob
/// characters (`*?[]\`) in `namespace` are escaped.
///
/// What each right is for (see the crate docs, "Least privilege"): `+wait` only for
/// [`LockConfig::replication`](crate::LockConfig::replication); `+subscribe`, `+publish` and
/// the channel for waiting (a lock that is free at once needs neither) and always for fair
/// locks; `+lindex +lpop +rpush +lrem +zrangebyscore` (and `+zadd +zrem +zscore`) for fair
/// locks; `+zadd +zrem +zscore +zcard +zrange +zremrangebyscore` for semaphores and read-write
/// locks. [`fenced_set`](crate::fenced_set) writes the
/// caller's own keys: grant those (and `<key>:fence`) with `get`/`set` separately.
///
/// ```
/// let rule = dlock::acl_rule("shop:locks");
/// let text = rule.to_string();
/// assert!(text.starts_with("resetkeys resetchannels -@all +ping"));
/// assert!(text.ends_with("~shop:locks:* ~redkit:registry &shop:locks:__released__"));
/// assert!(text.contains("+evalsha") && text.contains("+subscribe") && text.contains("+wait"));
/// let family = dlock::acl_rule("t:dlock:*").to_string();
/// assert!(family.ends_with("~t:dlock:*:* ~redkit:registry &t:dlock:*:__released__"));
/// // Without replication WAIT:
/// assert!(!rule.without_command("wait").to_string().contains("+wait"));
/// ```
pub fn acl_rule(namespace: &str) -> AclRule {
    let prefix = match namespace.strip_suffix('*') {
        Some(stem) => format!("{}*", escape(stem)),
        None => escape(namespace),
    };
    AclRule::connection()
        .commands(LOCK)
        .commands(FAIR)
        .commands(SHARED)
        .commands(WAKE_UPS)
        .commands(REPLICATION)
        .commands(INSPECTION)
        .commands(REGISTRY)
        .keys(format!("{prefix}:*"))
        .keys(redis_conn::registry::REGISTRY_KEY)
        .channels(format!("{prefix}:__released__"))
}

/// `s` with the glob characters of ACL patterns escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripts::{
        ACQUIRE, FAIR_ACQUIRE, FAIR_CANCEL, FAIR_RELEASE, FORCE_RELEASE, INSPECT, RELEASE, RENEW,
        RW_READ, RW_WRITE, SEM_ACQUIRE, STRING_RELEASE, ZSET_RELEASE,
    };

    /// Every `redis.call('X', ...)` of a script source.
    fn called(source: &str) -> Vec<String> {
        source
            .split("redis.call(")
            .skip(1)
            .filter_map(|rest| {
                let name: String = rest
                    .trim_start_matches(['\'', '"'])
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                (!name.is_empty()).then(|| name.to_ascii_lowercase())
            })
            .collect()
    }

    #[test]
    fn the_rule_allows_every_command_of_every_script() {
        let rule = acl_rule("ns");
        let allowed = rule.allowed_commands();
        let scripts = [
            &ACQUIRE,
            &RELEASE,
            &FAIR_ACQUIRE,
            &FAIR_RELEASE,
            &FAIR_CANCEL,
            &RENEW,
            &ZSET_RELEASE,
            &STRING_RELEASE,
            &SEM_ACQUIRE,
            &RW_READ,
            &RW_WRITE,
            &INSPECT,
            &FORCE_RELEASE,
        ];
        let mut used = Vec::new();
        for s in scripts {
            for c in called(s.source()) {
                assert!(
                    allowed.contains(&c),
                    "{} calls {c}, not in {rule}",
                    s.name()
                );
                used.push(c);
            }
        }
        // And nothing the scripts never call, besides what is sent directly.
        for c in allowed {
            let direct = AclRule::connection().allowed_commands().contains(c)
                || ["subscribe", "wait", "scan", "hsetnx"].contains(&c.as_str());
            assert!(direct || used.contains(c), "{c} is allowed but never used");
        }
    }

    #[test]
    fn names_are_escaped_and_a_trailing_star_is_a_family() {
        let r = acl_rule("a*b?");
        assert_eq!(r.key_patterns(), ["a\\*b\\?:*", "redkit:registry"]);
        assert_eq!(r.channel_patterns(), ["a\\*b\\?:__released__"]);
        let f = acl_rule("t:dlock:*");
        assert_eq!(f.key_patterns(), ["t:dlock:*:*", "redkit:registry"]);
        assert_eq!(f.channel_patterns(), ["t:dlock:*:__released__"]);
    }
}
