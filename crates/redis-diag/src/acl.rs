//! The least-privilege ACL rules the doctor runs with (see the [crate docs](crate#least-privilege)):
//! [`acl_rule`] for the data nodes, [`sentinel_acl_rule`] for the sentinels (they have an ACL
//! of their own) and [`big_keys_acl_rule`] for the opt-in key sampling.

use redis_conn::AclRule;

/// What [`diagnose`](crate::diagnose) (and the exporter, which runs it) sends to a data node:
/// every command is read-only, no key and no channel is needed.
///
/// | right | used for | without it |
/// | --- | --- | --- |
/// | `+ping` | `latency.ping`; the connection check of a client without a password | `latency.ping` is info "needs +ping" |
/// | `+client\|id` | the client library (fred) asks for its connection's id at connect | nothing is lost, but every connection leaves an `ACL LOG` entry |
/// | `+info` | memory, persistence, replication, pressure, hit ratio, roles (fred also asks `INFO server` at connect) | `info.unavailable` |
/// | `+config\|get` | configuration and TLS checks, `requirepass` | `config.unavailable`, `tls.protocols` and `tls.auth-clients` are info "needs +config\|get" |
/// | `+acl\|whoami` | who the checks run as | `acl.unavailable` names it |
/// | `+acl\|list` | `auth.nopass`, `auth.weak-password`, `acl.broad-user` | `acl.unavailable` names it |
/// | `+acl\|dryrun` | `commands.dangerous` (never runs them) | `commands.dangerous` is info naming it |
/// | `+command\|list`, `+command\|info` | renamed vs disabled dangerous commands | the `commands.dangerous` evidence names it |
/// | `+slowlog\|get` | `slowlog` | `slowlog` is info naming it |
/// | `+latency\|latest` | `latency.monitor` (when the monitor is on) | `latency.monitor` is info naming it |
/// | `+cluster\|info` | `cluster.state` | `cluster.state` is info naming it |
/// | `+cluster\|nodes` | finding a cluster's nodes | the diagnosis stops with [`Error::Redis`](crate::Error::Redis)([`NoPermission`](redis_conn::Error::NoPermission)) naming it |
///
/// `ACL LIST` shows every user's rules and password hashes (never plaintext): leave out
/// `+acl|list` if the diagnosing user must not see them, and the user audit is skipped. Add
/// `+select` if the URL names a database other than 0. The certificate probe
/// (`tls.certificate-expiry`) needs no right: it is a TLS handshake of its own.
///
/// ```
/// let rule = redis_diag::acl_rule().to_string();
/// // The text the crate docs show, to paste after `ACL SETUSER redis-diag on >secret`:
/// assert_eq!(
///     rule,
///     "resetkeys resetchannels -@all +ping +client|id +info +config|get +acl|whoami +acl|list \
///      +acl|dryrun +command|list +command|info +slowlog|get +latency|latest +cluster|info +cluster|nodes"
/// );
/// ```
pub fn acl_rule() -> AclRule {
    AclRule::new().commands([
        "ping",
        "client|id",
        "info",
        "config|get",
        "acl|whoami",
        "acl|list",
        "acl|dryrun",
        "command|list",
        "command|info",
        "slowlog|get",
        "latency|latest",
        "cluster|info",
        "cluster|nodes",
    ])
}

/// What the doctor sends to a sentinel (sentinels have their own ACL, set with `ACL SETUSER`
/// on each sentinel or `user` lines in sentinel.conf, and credentials of their own:
/// `sentinel_username` / `sentinel_password` in the URL, `REDIS_SENTINEL_USERNAME` /
/// `REDIS_SENTINEL_PASSWORD`). Without `+sentinel|get-master-addr-by-name` the topology cannot
/// be discovered (typed error naming it); without `+sentinel|replicas` or
/// `+sentinel|sentinels` the replicas or the other sentinels are not found (a
/// `topology.discovery` warning names the right); without `+sentinel|ckquorum`,
/// `sentinel.quorum` is info naming it.
///
/// ```
/// assert_eq!(
///     redis_diag::sentinel_acl_rule().to_string(),
///     "resetkeys resetchannels -@all +ping +client|id +info +acl|whoami +acl|list \
///      +sentinel|get-master-addr-by-name +sentinel|replicas +sentinel|sentinels +sentinel|ckquorum"
/// );
/// ```
pub fn sentinel_acl_rule() -> AclRule {
    AclRule::new().commands([
        "ping",
        "client|id",
        "info",
        "acl|whoami",
        "acl|list",
        "sentinel|get-master-addr-by-name",
        "sentinel|replicas",
        "sentinel|sentinels",
        "sentinel|ckquorum",
    ])
}

/// What [`big_keys`](crate::big_keys) (opt-in) sends: `SCAN`, `TYPE` and `MEMORY USAGE` on
/// every key (`~*`; on Redis 7 `%R~*`, read-only key access, is enough: edit the text), plus
/// `PING`, `CLIENT ID` and `INFO` (the client library asks for both at connect, see
/// [`acl_rule`]) and `CLUSTER NODES` to find the primaries. Merge it with [`acl_rule`] for a user that
/// runs both. Without `+type` or `+memory|usage` the sampling stops with a `keys.sampled`
/// warning naming the right.
///
/// ```
/// assert_eq!(
///     redis_diag::big_keys_acl_rule().to_string(),
///     "resetkeys resetchannels -@all +ping +client|id +info +cluster|nodes +scan +type +memory|usage ~*"
/// );
/// let both = redis_diag::big_keys_acl_rule().merge(&redis_diag::acl_rule());
/// assert!(both.to_string().contains("+memory|usage") && both.to_string().contains("+config|get"));
/// ```
pub fn big_keys_acl_rule() -> AclRule {
    AclRule::new()
        .commands([
            "ping",
            "client|id",
            "info",
            "cluster|nodes",
            "scan",
            "type",
            "memory|usage",
        ])
        .keys("*")
}
