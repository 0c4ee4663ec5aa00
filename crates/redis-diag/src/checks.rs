//! The checks. Each looks at what one node answers (or the topology as a whole) and returns
//! findings; the judging parts are pure functions, tested without a server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::Value;
use redis_conn::{Mode, RedisConfig};

use crate::node::{self, NodeRole, Target, call};
use crate::passwords::{self, Weakness};
use crate::{Finding, NodeSummary, Options, Scope, Severity};

/// Commands a checker must know the reach of, with the arguments `ACL DRYRUN` needs to judge
/// them (never executed).
const DANGEROUS: &[(&str, &[&str])] = &[
    ("flushall", &[]),
    ("flushdb", &[]),
    ("keys", &["*"]),
    ("config", &["SET", "dir", "/tmp"]),
    ("shutdown", &[]),
    ("debug", &["SLEEP", "0"]),
    ("module", &["LIST"]),
    ("monitor", &[]),
    ("replicaof", &["NO", "ONE"]),
    ("slaveof", &["NO", "ONE"]),
    ("save", &[]),
    ("bgsave", &[]),
    ("acl", &["SETUSER", "redis-diag-probe"]),
];

/// `INFO` text → fields.
pub(crate) fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One node's answers, gathered once for all checks.
struct Probe<'a> {
    client: &'a Client,
    addr: String,
    role: String,
    info: HashMap<String, String>,
    /// `CONFIG GET` results (`None` when CONFIG is renamed, disabled or denied).
    config: Option<HashMap<String, String>>,
    config_error: Option<String>,
    /// We connected without sending a password.
    password_less: bool,
    /// The password we connected with is a well-known one (the password itself is not kept).
    password_well_known: bool,
}

impl Probe<'_> {
    fn info_u64(&self, k: &str) -> Option<u64> {
        self.info.get(k).and_then(|v| v.parse().ok())
    }

    fn info_f64(&self, k: &str) -> Option<f64> {
        self.info.get(k).and_then(|v| v.parse().ok())
    }

    fn conf(&self, k: &str) -> Option<&str> {
        self.config.as_ref()?.get(k).map(String::as_str)
    }

    fn finding(&self, check: &str, severity: Severity, title: impl Into<String>) -> Finding {
        let mut f = Finding::new(check, severity, &self.addr, title);
        f.role = self.role.clone();
        f
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_string()
}

/// `CONFIG GET` of many parameters (one call each pattern keeps replies small).
async fn config_get(client: &Client, names: &[&str]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for n in names {
        let v = call(client, "CONFIG", vec!["GET".into(), (*n).into()])
            .await
            .map_err(|e| e.to_string())?;
        let pairs: Vec<String> = match v {
            Value::Array(a) => a.iter().filter_map(text).collect(),
            Value::Map(m) => m
                .inner()
                .iter()
                .flat_map(|(k, v)| [k.as_str().map(|s| s.to_string()), text(v)])
                .flatten()
                .collect(),
            _ => Vec::new(),
        };
        for kv in pairs.chunks(2) {
            if let [k, v] = kv {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(out)
}

/// Runs the node's checks; a node that does not answer, or refuses the credentials, is one
/// critical finding (`node.reachable`, `node.auth`).
pub(crate) async fn run_node(
    config: &RedisConfig,
    target: &Target,
    scope: Scope,
    opts: &Options,
) -> (NodeSummary, Vec<Finding>, Option<HashMap<String, String>>) {
    let addr = target.addr();
    let sentinel = target.role == NodeRole::Sentinel;
    let client = match node::connect(config, &target.endpoint, sentinel, opts.probe_timeout).await {
        Ok(c) => c,
        Err(e) => return (e.summary(target), vec![e.finding(target)], None),
    };
    let info = match call(&client, "INFO", vec!["everything".into()]).await {
        Ok(v) => parse_info(&text(&v).unwrap_or_default()),
        Err(_) => match call(&client, "INFO", vec![]).await {
            Ok(v) => parse_info(&text(&v).unwrap_or_default()),
            Err(_) => HashMap::new(),
        },
    };
    let role = match (target.role, info.get("role").map(String::as_str)) {
        (NodeRole::Sentinel, _) => "sentinel",
        (_, Some("master")) => "primary",
        (_, Some("slave")) => "replica",
        (r, _) => r.name(),
    }
    .to_string();
    let (config_map, config_error) = if sentinel {
        (None, None)
    } else {
        match config_get(
            &client,
            &[
                "protected-mode",
                "bind",
                "port",
                "tls-port",
                "maxmemory",
                "maxmemory-policy",
                "save",
                "appendonly",
                "appendfsync",
                "maxclients",
                "replica-read-only",
                "dir",
                "dbfilename",
                "enable-debug-command",
                "enable-module-command",
                "enable-protected-configs",
                "latency-monitor-threshold",
                "slowlog-log-slower-than",
            ],
        )
        .await
        {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        }
    };
    let probe = Probe {
        client: &client,
        addr: addr.clone(),
        role: role.clone(),
        info,
        config: config_map,
        config_error,
        password_less: config.password.is_none(),
        password_well_known: config
            .password
            .as_ref()
            .is_some_and(|p| passwords::is_well_known(p.expose())),
    };
    let mut found = Vec::new();
    if probe.info.is_empty() {
        found.push(
            probe
                .finding(
                    "info.unavailable",
                    Severity::Info,
                    "INFO cannot be run by this user: memory, persistence and replication checks are skipped",
                )
                .fix("give the diagnosing user +info (INFO is in the @dangerous category)"),
        );
    }
    if let Some(e) = &probe.config_error {
        found.push(
            probe
                .finding(
                    "config.unavailable",
                    Severity::Info,
                    "CONFIG cannot be read: configuration checks use INFO only",
                )
                .evidence(e.clone()),
        );
    }
    if sentinel {
        if scope != Scope::Health {
            // A sentinel without a password lets anyone reconfigure or fail over the service.
            let audit = acl_audit(&probe).await;
            found.extend(weak_passwords(&probe, &audit, None));
            found.extend(audit.findings);
        }
        if scope != Scope::Security {
            found.extend(sentinel_checks(&probe, config).await);
        }
    } else {
        if scope != Scope::Health {
            found.extend(security_checks(&probe).await);
        }
        if scope != Scope::Security {
            found.extend(health_checks(&probe, opts).await);
        }
    }
    let summary = NodeSummary {
        addr,
        role,
        reachable: true,
        auth_failed: false,
        version: probe.info.get("redis_version").cloned(),
    };
    let _ = client.quit().await;
    let Probe { info, .. } = probe;
    (summary, found, (!info.is_empty()).then_some(info))
}

// ---------------------------------------------------------------------------------------
// Security

/// Whether every address in a `bind` value is loopback (an empty value means all
/// interfaces).
pub(crate) fn loopback_only(bind: &str) -> bool {
    let addrs: Vec<&str> = bind.split_whitespace().collect();
    !addrs.is_empty()
        && addrs.iter().all(|a| {
            let a = a.trim_start_matches('-');
            a == "localhost" || a == "::1" || a.starts_with("127.")
        })
}

/// A `dir` / `dbfilename` an attacker would pick to plant files through `CONFIG SET`.
pub(crate) fn suspicious_path(dir: &str, file: &str) -> bool {
    let dir = dir.trim_end_matches('/').to_ascii_lowercase();
    let file = file.to_ascii_lowercase();
    let under = |root: &str| dir == root || dir.starts_with(&format!("{root}/"));
    let dir_bad = dir.split('/').any(|c| c == ".ssh")
        || [
            "/etc",
            "/var/spool/cron",
            "/var/www",
            "/usr/share/nginx",
            "/root",
            "/boot",
        ]
        .iter()
        .any(|r| under(r));
    let file_bad = file == "authorized_keys"
        || file == "root"
        || file.starts_with("crontab")
        || [".php", ".jsp", ".sh", ".py"]
            .iter()
            .any(|e| file.ends_with(e));
    dir_bad || file_bad
}

/// How a dangerous command stands for the connected user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Usable,
    Renamed,
    Disabled,
    /// Renamed or disabled (COMMAND LIST unavailable to tell which).
    Absent,
    Denied,
    /// Allowed by ACL, refused by the server's enable-*-command guard.
    Protected,
    Unknown,
}

impl Reach {
    fn name(self) -> &'static str {
        match self {
            Reach::Usable => "usable",
            Reach::Renamed => "renamed",
            Reach::Disabled => "disabled",
            Reach::Absent => "renamed-or-disabled",
            Reach::Denied => "denied",
            Reach::Protected => "protected",
            Reach::Unknown => "unknown",
        }
    }
}

/// Renamed vs disabled: `COMMAND INFO` looks the live table up by name; `COMMAND LIST` prints
/// original names, renamed ones included.
pub(crate) fn classify(live: bool, listed: bool) -> Reach {
    match (live, listed) {
        (true, _) => Reach::Usable,
        (false, true) => Reach::Renamed,
        (false, false) => Reach::Disabled,
    }
}

/// What the user audit found out.
struct AclAudit {
    findings: Vec<Finding>,
    /// The default user is on and needs no password.
    default_nopass: bool,
    /// The user we are connected as.
    whoami: String,
    /// Each enabled user and the SHA-256 hashes of its passwords (`None`: ACL unreadable).
    hashes: Option<Vec<(String, Vec<String>)>>,
}

/// The user audit (`ACL LIST`): findings about users without a password or with broad
/// rights, and what the weak-password check needs.
async fn acl_audit(p: &Probe<'_>) -> AclAudit {
    let mut out = Vec::new();
    // Who are we, and what does the default user allow?
    let whoami = call(p.client, "ACL", vec!["WHOAMI".into()])
        .await
        .ok()
        .and_then(|v| text(&v))
        .unwrap_or_else(|| "default".into());
    let users: Option<Vec<String>> = match call(p.client, "ACL", vec!["LIST".into()]).await {
        Ok(Value::Array(a)) => Some(a.iter().filter_map(text).collect()),
        _ => None,
    };
    let mut default_nopass = false;
    let mut hashes = Vec::new();
    match &users {
        Some(users) => {
            for rule in users {
                let all: Vec<&str> = rule.split_whitespace().collect();
                let name = all.get(1).copied().unwrap_or("?");
                // Rules only: a user may be called "nopass" or "on".
                let words = all.get(2..).unwrap_or_default();
                let on = words.contains(&"on");
                let nopass = words.contains(&"nopass");
                let all_cmds = words.contains(&"+@all") || words.contains(&"allcommands");
                let minus_dangerous = words.contains(&"-@dangerous");
                let all_keys = words.contains(&"~*") || words.contains(&"allkeys");
                if !on {
                    continue;
                }
                hashes.push((
                    name.to_string(),
                    words
                        .iter()
                        .filter_map(|w| w.strip_prefix('#'))
                        .map(str::to_string)
                        .collect(),
                ));
                if nopass {
                    if name == "default" {
                        default_nopass = true;
                    }
                    out.push(
                        p.finding(
                            "auth.nopass",
                            Severity::Critical,
                            format!("user {name:?} needs no password"),
                        )
                        .evidence(format!("ACL user {name} is on with nopass (anyone who connects is {name})"))
                        .fix("set a password (ACL SETUSER <user> resetpass >secret) or `requirepass`; disable unused users"),
                    );
                } else if all_cmds && all_keys && !minus_dangerous {
                    out.push(
                        p.finding(
                            "acl.broad-user",
                            Severity::Warning,
                            format!("user {name:?} may run every command on every key"),
                        )
                        .evidence(format!("ACL user {name}: +@all ~* without -@dangerous"))
                        .fix(
                            "grant applications only what they need, e.g. +@all -@dangerous ~app:*",
                        ),
                    );
                }
            }
            if !out.iter().any(|f| f.check == "auth.nopass") {
                out.push(p.finding(
                    "auth.nopass",
                    Severity::Ok,
                    "every enabled user needs a password",
                ));
            }
        }
        None => out.push(
            p.finding(
                "acl.unavailable",
                Severity::Info,
                "the ACL cannot be read by this user: users were not audited",
            )
            .evidence(format!("ACL LIST refused for {whoami}")),
        ),
    }
    AclAudit {
        findings: out,
        default_nopass,
        whoami,
        hashes: users.is_some().then_some(hashes),
    }
}

/// `auth.weak-password`: well-known passwords (critical: scanners try them first, so they are
/// as good as none) among the enabled users' password hashes, in `requirepass` and in the
/// password this diagnosis was given (when the ACL cannot be read); a `requirepass` shorter
/// than [`passwords::MIN_LENGTH`] (warning). Evidence says what matched, never the password.
fn weak_passwords(
    p: &Probe<'_>,
    audit: &AclAudit,
    requirepass: Option<Option<Weakness>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut compared = 0;
    let mut default_flagged = false;
    for (user, hashes) in audit.hashes.iter().flatten() {
        if hashes.is_empty() {
            continue;
        }
        compared += 1;
        if hashes.iter().any(|h| passwords::is_well_known_hash(h)) {
            default_flagged |= user == "default";
            out.push(
                p.finding(
                    "auth.weak-password",
                    Severity::Critical,
                    format!("user {user:?} has a well-known password"),
                )
                .evidence(format!(
                    "a password of ACL user {user} matches a well-known password (compared by its SHA-256 hash)"
                ))
                .fix(if user == "default" {
                    "set requirepass (or ACL SETUSER default resetpass >…) to a long random password, e.g. from `openssl rand -base64 32`, and update the clients".to_string()
                } else {
                    format!("ACL SETUSER {user} resetpass >… with a long random password, e.g. from `openssl rand -base64 32`, and update its clients")
                }),
            );
        }
    }
    match requirepass {
        Some(Some(Weakness::WellKnown)) if !default_flagged => out.push(
            p.finding(
                "auth.weak-password",
                Severity::Critical,
                "requirepass is a well-known password",
            )
            .evidence("requirepass matches a well-known password")
            .fix("set requirepass to a long random password (e.g. from `openssl rand -base64 32`) and update the clients"),
        ),
        Some(Some(Weakness::Short(n))) => out.push(
            p.finding(
                "auth.weak-password",
                Severity::Warning,
                "requirepass is short enough to be brute-forced",
            )
            .evidence(format!(
                "requirepass is {n} characters long (under {})",
                passwords::MIN_LENGTH
            ))
            .fix("set requirepass to a long random password (e.g. from `openssl rand -base64 32`) and update the clients"),
        ),
        _ => {}
    }
    if requirepass.is_some() {
        compared += 1;
    }
    if audit.hashes.is_none() && p.password_well_known {
        compared += 1;
        out.push(
            p.finding(
                "auth.weak-password",
                Severity::Critical,
                format!("user {:?} has a well-known password", audit.whoami),
            )
            .evidence(format!(
                "the password this diagnosis logged in with (user {}) matches a well-known password",
                audit.whoami
            ))
            .fix("give the user a long random password (e.g. from `openssl rand -base64 32`) and update its clients"),
        );
    }
    if out.is_empty() && compared > 0 {
        out.push(
            p.finding(
                "auth.weak-password",
                Severity::Ok,
                "no well-known or short password found",
            )
            .evidence(format!(
                "{} password sources compared with {} well-known passwords",
                compared,
                passwords::WELL_KNOWN.len()
            )),
        );
    }
    out
}

/// `requirepass` judged: `None` when CONFIG is unreadable or it is not set, `Some(None)` when
/// it is fine. The value itself goes no further than this function.
async fn requirepass(p: &Probe<'_>) -> Option<Option<Weakness>> {
    p.config.as_ref()?;
    let pass = config_get(p.client, &["requirepass"]).await.ok()?;
    pass.get("requirepass")
        .filter(|v| !v.is_empty())
        .map(|v| passwords::judge(v))
}

async fn security_checks(p: &Probe<'_>) -> Vec<Finding> {
    let audit = acl_audit(p).await;
    let requirepass = requirepass(p).await;
    let weak = weak_passwords(p, &audit, requirepass);
    let AclAudit {
        findings: mut out,
        mut default_nopass,
        whoami,
        ..
    } = audit;
    out.extend(weak);
    // Without a readable ACL: connected without a password, as "default", means it has none.
    if p.password_less && whoami == "default" && !default_nopass {
        default_nopass = true;
        out.push(
            p.finding("auth.nopass", Severity::Critical, "connected without a password")
                .evidence("the default user accepted a connection that sent no password")
                .fix("set `requirepass` or give the default user a password (ACL SETUSER default resetpass >secret)"),
        );
    }

    // Network exposure.
    if let (Some(pm), Some(bind)) = (p.conf("protected-mode"), p.conf("bind")) {
        let exposed = !loopback_only(bind);
        if pm == "no" && exposed {
            let severity = if default_nopass {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(
                p.finding(
                    "network.protected-mode",
                    severity,
                    "protected mode is off and the server listens beyond loopback",
                )
                .evidence(format!("protected-mode no, bind {bind:?}{}", if default_nopass { ", default user without password" } else { "" }))
                .fix("turn protected-mode on, bind to the interfaces that need it, require a password, firewall the port"),
            );
        } else {
            out.push(
                p.finding(
                    "network.protected-mode",
                    Severity::Ok,
                    "not exposed by protected-mode and bind",
                )
                .evidence(format!("protected-mode {pm}, bind {bind:?}")),
            );
        }
        let tls = p.conf("tls-port").is_some_and(|t| t != "0");
        if exposed && !tls {
            out.push(
                p.finding(
                    "network.tls",
                    Severity::Warning,
                    "no TLS while listening beyond loopback: passwords and data cross the network in clear",
                )
                .evidence(format!("tls-port {}, bind {bind:?}", p.conf("tls-port").unwrap_or("0")))
                .fix("enable tls-port (and tls-replication / tls-cluster), or keep the traffic on a private network"),
            );
        }
    }

    // Debug and module commands.
    for (param, what) in [
        ("enable-debug-command", "DEBUG"),
        ("enable-module-command", "MODULE"),
    ] {
        match p.conf(param) {
            Some("yes") => out.push(
                p.finding(
                    &format!("config.{param}"),
                    Severity::Critical,
                    format!("{what} is enabled for every connection"),
                )
                .evidence(format!("{param} yes"))
                .fix(format!("set {param} no (or local) in redis.conf")),
            ),
            Some(v) => out.push(
                p.finding(
                    &format!("config.{param}"),
                    Severity::Ok,
                    format!("{what} is not enabled remotely"),
                )
                .evidence(format!("{param} {v}")),
            ),
            None => {}
        }
    }

    // CONFIG SET of protected settings (dir, dbfilename …): the classic file-planting path.
    match p.conf("enable-protected-configs") {
        Some("yes") => out.push(
            p.finding(
                "config.enable-protected-configs",
                Severity::Critical,
                "protected settings (dir, dbfilename, …) can be changed by every connection",
            )
            .evidence("enable-protected-configs yes")
            .fix("set enable-protected-configs no (or local) in redis.conf"),
        ),
        Some(v) => out.push(
            p.finding(
                "config.enable-protected-configs",
                Severity::Ok,
                "protected settings cannot be changed remotely",
            )
            .evidence(format!("enable-protected-configs {v}")),
        ),
        None => {}
    }

    // Where RDB files are written.
    if let (Some(dir), Some(file)) = (p.conf("dir"), p.conf("dbfilename"))
        && suspicious_path(dir, file)
    {
        out.push(
            p.finding(
                "files.suspicious-dir",
                Severity::Critical,
                "the RDB file is written where an attacker would plant one",
            )
            .evidence(format!("dir {dir:?}, dbfilename {file:?}"))
            .fix("restore dir / dbfilename, look for planted files (authorized_keys, crontabs), rotate credentials; deny CONFIG"),
        );
    }

    // An unexpected replication source.
    if p.role == "replica" && p.info.contains_key("master_host") {
        out.push(
            p.finding(
                "replication.source",
                Severity::Info,
                "this node replicates from another",
            )
            .evidence(format!(
                "master {}:{}",
                p.info.get("master_host").map(String::as_str).unwrap_or("?"),
                p.info.get("master_port").map(String::as_str).unwrap_or("?")
            ))
            .fix("if this node is not meant to be a replica, someone ran REPLICAOF: investigate"),
        );
    }

    out.extend(dangerous_commands(p, &whoami).await);
    out
}

async fn dangerous_commands(p: &Probe<'_>, user: &str) -> Vec<Finding> {
    // `None`: COMMAND LIST refused or unknown (Redis < 7): renamed cannot be told from
    // disabled.
    let listed: Option<Vec<String>> = match call(p.client, "COMMAND", vec!["LIST".into()]).await {
        Ok(Value::Array(a)) => Some(
            a.iter()
                .filter_map(text)
                .map(|s| s.to_lowercase())
                .collect(),
        ),
        _ => None,
    };
    let mut usable = Vec::new();
    let mut other = Vec::new();
    for (name, args) in DANGEROUS {
        // Only a nil entry means "not in the live table"; an error tells nothing.
        let live = match call(p.client, "COMMAND", vec!["INFO".into(), (*name).into()]).await {
            Ok(Value::Array(a)) => Some(a.first().is_some_and(|v| !matches!(v, Value::Null))),
            _ => None,
        };
        let mut reach = match (live, &listed) {
            (Some(false), Some(l)) => classify(false, l.iter().any(|x| x == name)),
            (Some(false), None) => Reach::Absent,
            (Some(true), _) | (None, _) => Reach::Usable,
        };
        if reach == Reach::Usable {
            let mut dry = vec!["DRYRUN".to_string(), user.to_string(), (*name).to_string()];
            dry.extend(args.iter().map(|a| a.to_string()));
            reach = match call(p.client, "ACL", dry).await {
                Ok(v) if text(&v).as_deref() == Some("OK") => Reach::Usable,
                Ok(_) => Reach::Denied,
                // DRYRUN itself refused (older server, or no ACL permission).
                Err(_) => Reach::Unknown,
            };
        }
        // ACL allows it, but the server's own guard may not.
        let guard = match *name {
            "debug" => p.conf("enable-debug-command"),
            "module" => p.conf("enable-module-command"),
            _ => None,
        };
        if reach == Reach::Usable && matches!(guard, Some("no") | Some("local")) {
            reach = Reach::Protected;
        }
        match reach {
            Reach::Usable => usable.push(name.to_uppercase()),
            r => other.push(format!("{} {}", name.to_uppercase(), r.name())),
        }
    }
    let mut out = Vec::new();
    let unknown = other.iter().filter(|o| o.ends_with(" unknown")).count();
    if usable.is_empty() && unknown > 0 {
        out.push(
            p.finding(
                "commands.dangerous",
                Severity::Info,
                format!("{unknown} dangerous commands could not be verified (ACL DRYRUN is not permitted); none is known usable"),
            )
            .evidence(other.join(", "))
            .fix("run the security check as a user allowed ACL DRYRUN for a complete answer"),
        );
    } else if usable.is_empty() {
        out.push(
            p.finding(
                "commands.dangerous",
                Severity::Ok,
                "no dangerous command is usable by this user",
            )
            .evidence(other.join(", ")),
        );
    } else {
        out.push(
            p.finding(
                "commands.dangerous",
                Severity::Warning,
                format!("{} dangerous commands are usable by {user:?}", usable.len()),
            )
            .evidence(format!(
                "usable: {}{}",
                usable.join(" "),
                if other.is_empty() { String::new() } else { format!("; {}", other.join(", ")) }
            ))
            .fix("deny them by ACL (+@all -@dangerous) for application users, or rename-command / disable them"),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// Health

/// Latency percentiles of a sample, in ms: (p50, p99, max).
pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99), at(1.0))
}

async fn health_checks(p: &Probe<'_>, opts: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    // Latency.
    let mut samples = Vec::new();
    for _ in 0..opts.pings.max(1) {
        let t = Instant::now();
        if call(p.client, "PING", vec![]).await.is_ok() {
            samples.push(t.elapsed());
        }
    }
    let answered = samples.len();
    let (p50, p99, max) = percentiles(samples);
    let severity = if answered == 0 {
        Severity::Critical
    } else if p99 > 100.0 {
        Severity::Warning
    } else {
        Severity::Ok
    };
    out.push(
        p.finding(
            "latency.ping",
            severity,
            format!("PING p50 {p50:.2} ms, p99 {p99:.2} ms"),
        )
        .evidence(format!(
            "{} pings from here: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
            opts.pings
        ))
        .fix(if severity == Severity::Ok {
            ""
        } else {
            "look for slow commands, swapping, a saturated network or CPU"
        }),
    );

    // Memory (needs INFO).
    if p.info.contains_key("used_memory") {
        let used = p.info_u64("used_memory").unwrap_or(0);
        let max_mem = p
            .info_u64("maxmemory")
            .or_else(|| p.conf("maxmemory").and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let policy = p
            .info
            .get("maxmemory_policy")
            .cloned()
            .or_else(|| p.conf("maxmemory-policy").map(str::to_string))
            .unwrap_or_default();
        if max_mem > 0 {
            let ratio = used as f64 / max_mem as f64;
            let severity = if ratio >= 0.98 {
                Severity::Critical
            } else if ratio >= 0.9 {
                Severity::Warning
            } else {
                Severity::Ok
            };
            out.push(
                p.finding("memory.maxmemory", severity, format!("memory at {:.0}% of maxmemory", ratio * 100.0))
                    .evidence(format!("used_memory {used} B, maxmemory {max_mem} B, policy {policy}"))
                    .fix(if severity == Severity::Ok {
                        ""
                    } else if policy == "noeviction" {
                        "writes fail when full: raise maxmemory, delete data, or pick an eviction policy for cache-only data"
                    } else {
                        "keys are being (or about to be) evicted: raise maxmemory or reduce the data"
                    }),
            );
        } else {
            out.push(
                p.finding(
                    "memory.maxmemory",
                    Severity::Info,
                    "no maxmemory: Redis may use all of the machine's memory",
                )
                .evidence(format!("used_memory {used} B, maxmemory 0"))
                .fix("set maxmemory below the machine's memory (leave room for forks and buffers)"),
            );
        }
        if policy.starts_with("allkeys") {
            out.push(
                p.finding(
                    "memory.eviction-policy",
                    Severity::Warning,
                    format!("{policy} may evict ANY key, including queues and locks"),
                )
                .evidence(format!("maxmemory-policy {policy}"))
                .fix("use volatile-* (only keys with a TTL) or noeviction where the data must not be evicted; keep caches on their own instance"),
            );
        }
        let frag = p.info_f64("mem_fragmentation_ratio").unwrap_or(1.0);
        let rss = p.info_u64("used_memory_rss").unwrap_or(0);
        if frag > 1.5 && rss > 100 * 1024 * 1024 {
            out.push(
                p.finding(
                    "memory.fragmentation",
                    Severity::Warning,
                    format!("memory fragmentation {frag:.2}"),
                )
                .evidence(format!(
                    "mem_fragmentation_ratio {frag}, used_memory_rss {rss} B"
                ))
                .fix("enable activedefrag, or restart the node during a quiet period"),
            );
        }
    }

    // Pressure counters.
    for (field, check, title, fix) in [
        (
            "evicted_keys",
            "stats.evictions",
            "keys were evicted",
            "raise maxmemory or reduce the data; check that evicted keys were cache-only",
        ),
        (
            "rejected_connections",
            "stats.rejected-connections",
            "connections were rejected (maxclients)",
            "raise maxclients or fix a connection leak",
        ),
    ] {
        let n = p.info_u64(field).unwrap_or(0);
        if n > 0 {
            out.push(
                p.finding(check, Severity::Warning, format!("{n} {title}"))
                    .evidence(format!("{field} {n} since start"))
                    .fix(fix),
            );
        }
    }
    out.extend(max_clients(p));
    let blocked = p.info_u64("blocked_clients").unwrap_or(0);
    if blocked > 0 {
        out.push(
            p.finding(
                "stats.blocked-clients",
                Severity::Info,
                format!("{blocked} clients blocked (BLPOP, WAIT …)"),
            )
            .evidence(format!("blocked_clients {blocked}")),
        );
    }

    // Persistence.
    let aof = p.info.get("aof_enabled").map(String::as_str) == Some("1")
        || (!p.info.contains_key("aof_enabled") && p.conf("appendonly") == Some("yes"));
    let save = p.conf("save").map(str::to_string);
    if p.info
        .get("rdb_last_bgsave_status")
        .is_some_and(|s| s != "ok")
    {
        out.push(
            p.finding(
                "persistence.rdb",
                Severity::Critical,
                "the last RDB save failed",
            )
            .evidence("rdb_last_bgsave_status err")
            .fix("check disk space and permissions of dir; see the server log"),
        );
    }
    if p.info
        .get("aof_last_write_status")
        .is_some_and(|s| s != "ok")
    {
        out.push(
            p.finding(
                "persistence.aof",
                Severity::Critical,
                "the last AOF write failed",
            )
            .evidence("aof_last_write_status err")
            .fix("check disk space; see the server log"),
        );
    }
    if aof {
        match p.conf("appendfsync") {
            Some("no") => out.push(
                p.finding(
                    "persistence.aof-fsync",
                    Severity::Warning,
                    "the AOF is never fsynced by Redis: a crash of the machine loses what the OS had not flushed yet (typically up to 30 s)",
                )
                .evidence("appendonly yes, appendfsync no")
                .fix("CONFIG SET appendfsync everysec (and in redis.conf): at most about one second of writes is lost"),
            ),
            Some(v) => out.push(
                p.finding(
                    "persistence.aof-fsync",
                    Severity::Ok,
                    format!("the AOF is fsynced ({v})"),
                )
                .evidence(format!("appendonly yes, appendfsync {v}")),
            ),
            None => {}
        }
    }
    if !p.info.contains_key("aof_enabled") || save.is_none() {
        // Not enough known to judge (INFO or CONFIG unavailable).
    } else if !aof && save.as_deref() == Some("") {
        out.push(
            p.finding(
                "persistence.off",
                Severity::Warning,
                "no persistence: a restart loses every key",
            )
            .evidence("appendonly no, save \"\"")
            .fix("enable appendonly (everysec) or RDB snapshots, unless this is a pure cache"),
        );
    } else {
        out.push(
            p.finding("persistence.off", Severity::Ok, "persistence is on")
                .evidence(format!(
                    "appendonly {}, save {:?}",
                    if aof { "yes" } else { "no" },
                    save.as_deref().unwrap_or("")
                )),
        );
    }

    // Slow log.
    let threshold_us = u64::try_from(opts.slow_command.as_micros()).unwrap_or(u64::MAX);
    if let Ok(Value::Array(entries)) =
        call(p.client, "SLOWLOG", vec!["GET".into(), "128".into()]).await
    {
        let mut by_cmd: HashMap<String, (u64, u64)> = HashMap::new();
        for e in &entries {
            let Value::Array(f) = e else { continue };
            let us = f.get(2).and_then(Value::as_u64).unwrap_or(0);
            if us < threshold_us {
                continue;
            }
            // The command (and the subcommand of container commands), never its arguments:
            // they may hold keys, values or scripts.
            let cmd = match f.get(3) {
                Some(Value::Array(args)) => {
                    let name = args
                        .first()
                        .and_then(text)
                        .unwrap_or_default()
                        .to_uppercase();
                    let container = [
                        "CONFIG", "CLIENT", "DEBUG", "SCRIPT", "CLUSTER", "OBJECT", "MEMORY",
                        "XINFO", "ACL", "COMMAND", "FUNCTION", "LATENCY", "MODULE", "SLOWLOG",
                    ];
                    match args.get(1).and_then(text) {
                        Some(sub) if container.contains(&name.as_str()) => {
                            format!("{name} {}", sub.to_uppercase())
                        }
                        _ => name,
                    }
                }
                _ => "?".into(),
            };
            let slot = by_cmd.entry(cmd).or_default();
            slot.0 += 1;
            slot.1 = slot.1.max(us);
        }
        let recorded_from: Option<i64> = p
            .conf("slowlog-log-slower-than")
            .and_then(|v| v.parse().ok());
        let blind = recorded_from.is_some_and(|us| us < 0 || us as u64 > threshold_us);
        if by_cmd.is_empty() && blind {
            out.push(
                p.finding(
                    "slowlog",
                    Severity::Info,
                    "the slow log does not record commands this slow: nothing can be said",
                )
                .evidence(match recorded_from {
                    Some(us) if us >= 0 => format!("slowlog-log-slower-than {us} µs"),
                    _ => "slowlog-log-slower-than is negative: the slow log records nothing".into(),
                })
                .fix(format!("CONFIG SET slowlog-log-slower-than {threshold_us}")),
            );
        } else if by_cmd.is_empty() {
            out.push(p.finding(
                "slowlog",
                Severity::Ok,
                format!("no command over {:?} in the slow log", opts.slow_command),
            ));
        } else {
            let mut top: Vec<(String, (u64, u64))> = by_cmd.into_iter().collect();
            top.sort_by_key(|t| std::cmp::Reverse(t.1.1));
            let n: u64 = top.iter().map(|t| t.1.0).sum();
            out.push(
                p.finding("slowlog", Severity::Warning, format!("{n} slow commands (over {:?})", opts.slow_command))
                    .evidence(
                        top.iter()
                            .take(5)
                            .map(|(c, (k, us))| format!("{c} ×{k} (max {:.1} ms)", *us as f64 / 1000.0))
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                    .fix("avoid O(N) commands on big keys (KEYS, SMEMBERS, HGETALL, LRANGE 0 -1, …); use SCAN-style iteration"),
            );
        }
    }

    // Latency monitor.
    match p.conf("latency-monitor-threshold") {
        Some("0") => out.push(
            p.finding("latency.monitor", Severity::Info, "the latency monitor is off")
                .fix("CONFIG SET latency-monitor-threshold 100 to record latency spikes (LATENCY DOCTOR)"),
        ),
        Some(_) => {
            if let Ok(Value::Array(events)) = call(p.client, "LATENCY", vec!["LATEST".into()]).await
                && !events.is_empty()
            {
                let names: Vec<String> = events
                    .iter()
                    .filter_map(|e| match e {
                        Value::Array(f) => Some(format!(
                            "{} (max {} ms)",
                            f.first().and_then(text).unwrap_or_default(),
                            f.get(3).and_then(Value::as_u64).unwrap_or(0)
                        )),
                        _ => None,
                    })
                    .collect();
                out.push(
                    p.finding("latency.monitor", Severity::Warning, "latency spikes were recorded")
                        .evidence(names.join(", "))
                        .fix("run LATENCY DOCTOR on the node for advice"),
                );
            }
        }
        None => {}
    }

    // Replication link.
    if p.role == "replica" && p.info.contains_key("master_link_status") {
        out.extend(replication_link(p));
    }
    out.extend(writable_replica(p));

    // Replicas as the primary sees them: state and lag.
    if p.role == "primary" {
        for (k, v) in p.info.iter().filter(|(k, _)| {
            k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit()) && k.len() > 5
        }) {
            let fields: HashMap<&str, &str> =
                v.split(',').filter_map(|kv| kv.split_once('=')).collect();
            let lag: u64 = fields.get("lag").and_then(|l| l.parse().ok()).unwrap_or(0);
            let state = fields.get("state").copied().unwrap_or("?");
            let who = format!(
                "{}:{}",
                fields.get("ip").copied().unwrap_or("?"),
                fields.get("port").copied().unwrap_or("?")
            );
            let severity = if state != "online" || lag > 10 {
                Severity::Warning
            } else {
                Severity::Ok
            };
            out.push(
                p.finding("replication.replica-lag", severity, format!("replica {who}: {state}, lag {lag} s"))
                    .evidence(format!("{k}: {v}"))
                    .fix(if severity == Severity::Ok { "" } else { "check the replica's load and the network; a lagging replica loses more on failover" }),
            );
        }
    }

    // Hit ratio.
    let hits = p.info_u64("keyspace_hits").unwrap_or(0);
    let misses = p.info_u64("keyspace_misses").unwrap_or(0);
    if hits + misses >= 1000 {
        let ratio = hits as f64 / (hits + misses) as f64;
        let severity = if ratio < 0.8 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        out.push(
            p.finding("keyspace.hit-ratio", severity, format!("keyspace hit ratio {:.1}%", ratio * 100.0))
                .evidence(format!("keyspace_hits {hits}, keyspace_misses {misses}"))
                .fix(if severity == Severity::Ok { "" } else { "if this is a cache: check TTLs, key design and whether misses are for ids that do not exist" }),
        );
    }

    // Cluster state, as this node sees it.
    if p.info.get("cluster_enabled").map(String::as_str) == Some("1")
        && let Ok(v) = call(p.client, "CLUSTER", vec!["INFO".into()]).await
    {
        let ci = parse_info(&text(&v).unwrap_or_default());
        let state = ci.get("cluster_state").cloned().unwrap_or_default();
        let assigned: u64 = ci
            .get("cluster_slots_assigned")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let fail: u64 = ci
            .get("cluster_slots_fail")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let pfail: u64 = ci
            .get("cluster_slots_pfail")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let severity = if state != "ok" || assigned < 16384 || fail > 0 {
            Severity::Critical
        } else if pfail > 0 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        out.push(
            p.finding("cluster.state", severity, format!("cluster state {state}"))
                .evidence(format!("cluster_state {state}, slots assigned {assigned}/16384, fail {fail}, pfail {pfail}"))
                .fix(if severity == Severity::Ok { "" } else { "bring failed nodes back or fail over to their replicas; assign uncovered slots" }),
        );
    }
    out
}

/// `clients.maxclients`: connections in use against `maxclients`. Replicas and cluster bus
/// links take slots too; this diagnosis's own connection is not counted, so the figure is
/// the node's load without us. Warning from 80 %, critical from 95 %: at 100 % new
/// connections are refused (`stats.rejected-connections` only tells once that happened).
fn max_clients(p: &Probe<'_>) -> Option<Finding> {
    let max = p
        .info_u64("maxclients")
        .or_else(|| p.conf("maxclients").and_then(|v| v.parse().ok()))
        .filter(|m| *m > 0)?;
    let clients = p.info_u64("connected_clients")?;
    let replicas = p.info_u64("connected_slaves").unwrap_or(0);
    let cluster = p.info_u64("cluster_connections").unwrap_or(0);
    let used = clients
        .saturating_sub(1)
        .saturating_add(replicas)
        .saturating_add(cluster);
    let percent = used.saturating_mul(100) / max;
    let severity = if used.saturating_mul(100) >= max.saturating_mul(95) {
        Severity::Critical
    } else if used.saturating_mul(100) >= max.saturating_mul(80) {
        Severity::Warning
    } else {
        Severity::Ok
    };
    Some(
        p.finding(
            "clients.maxclients",
            severity,
            format!("{used} of {max} connections in use ({percent}%)"),
        )
        .evidence(format!(
            "connected_clients {clients} (this diagnosis's own connection not counted), connected_slaves {replicas}, cluster_connections {cluster}, maxclients {max}"
        ))
        .fix(if severity == Severity::Ok {
            ""
        } else {
            "at maxclients new connections are refused: raise maxclients (and the process's open-file limit), or find the client that leaks connections (CLIENT LIST)"
        }),
    )
}

/// `replication.link` of a replica: up (ok, or a warning when silent for long), a sync from
/// the primary in progress (info: it is expected after a start or a failover), or down
/// (critical). Redis writes -1 for durations it does not know; they are never printed.
fn replication_link(p: &Probe<'_>) -> Option<Finding> {
    let link = p.info.get("master_link_status")?;
    let master = format!(
        "{}:{}",
        p.info.get("master_host").map(String::as_str).unwrap_or("?"),
        p.info.get("master_port").map(String::as_str).unwrap_or("?")
    );
    // -1: the link has not been up since this replica started.
    let never_up = p
        .info
        .get("master_link_down_since_seconds")
        .map(String::as_str)
        == Some("-1");
    if link == "up" {
        let io = p.info_u64("master_last_io_seconds_ago").unwrap_or(0);
        let severity = if io > 10 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        return Some(
            p.finding(
                "replication.link",
                severity,
                format!("link up, last I/O {io} s ago"),
            )
            .evidence(format!(
                "master_link_status up, master {master}, master_last_io_seconds_ago {io}"
            ))
            .fix(if severity == Severity::Ok {
                ""
            } else {
                "check the primary's load and the network between them"
            }),
        );
    }
    if p.info.get("master_sync_in_progress").map(String::as_str) == Some("1") {
        let mut seen = vec![format!(
            "master_link_status {link}, master {master}, master_sync_in_progress 1"
        )];
        match (
            p.info_u64("master_sync_read_bytes"),
            p.info_u64("master_sync_total_bytes"),
        ) {
            (Some(read), Some(total)) if total > 0 => seen.push(format!(
                "{read} of {total} bytes received ({:.0}%)",
                read as f64 * 100.0 / total as f64
            )),
            (Some(read), _) => seen.push(format!("{read} bytes received, size not known yet")),
            _ => {}
        }
        if let Some(io) = p.info_u64("master_sync_last_io_seconds_ago") {
            seen.push(format!("last transfer I/O {io} s ago"));
        }
        return Some(
            p.finding(
                "replication.link",
                Severity::Info,
                if never_up {
                    "the replica is in its first sync with its primary"
                } else {
                    "the replica is resyncing with its primary (full sync in progress)"
                },
            )
            .evidence(seen.join(", "))
            .fix("wait for the sync to finish (INFO replication: master_link_status up); reads from this replica see old or no data until then"),
        );
    }
    let down = match p.info_u64("master_link_down_since_seconds") {
        Some(s) => format!("down for {s} s"),
        None if never_up => "not up since this replica started".into(),
        None => "down for an unknown time".into(),
    };
    Some(
        p.finding(
            "replication.link",
            Severity::Critical,
            "the replica's link to its primary is down",
        )
        .evidence(format!(
            "master_link_status {link}, master {master}, {down}, no sync in progress"
        ))
        .fix("check the primary and the network between them; a failover may be needed"),
    )
}

/// `replication.writable-replica`: a replica with `replica-read-only no` accepts writes that
/// are not replicated and vanish at its next full sync — a silent data-loss path, and
/// clients that write to it by mistake never learn.
fn writable_replica(p: &Probe<'_>) -> Option<Finding> {
    if p.role != "replica" {
        return None;
    }
    let (read_only, seen) = match p.info.get("slave_read_only").map(String::as_str) {
        Some(v) => (v == "1", format!("INFO slave_read_only {v}")),
        None => {
            let v = p.conf("replica-read-only")?;
            (v == "yes", format!("replica-read-only {v}"))
        }
    };
    Some(if read_only {
        p.finding(
            "replication.writable-replica",
            Severity::Ok,
            "the replica is read-only",
        )
        .evidence(seen)
    } else {
        p.finding(
            "replication.writable-replica",
            Severity::Warning,
            "the replica accepts writes: they are not replicated and vanish at its next sync",
        )
        .evidence(format!("{seen} (replica-read-only no)"))
        .fix("CONFIG SET replica-read-only yes (and in redis.conf); send writes to the primary")
    })
}

async fn sentinel_checks(p: &Probe<'_>, config: &RedisConfig) -> Vec<Finding> {
    let Mode::Sentinel { service_name, .. } = &config.mode else {
        return Vec::new();
    };
    match call(
        p.client,
        "SENTINEL",
        vec!["CKQUORUM".into(), service_name.clone()],
    )
    .await
    {
        Ok(v) => vec![
            p.finding(
                "sentinel.quorum",
                Severity::Ok,
                format!("quorum reachable for {service_name:?}"),
            )
            .evidence(text(&v).unwrap_or_default()),
        ],
        Err(e) if e.to_string().contains("NOQUORUM") => vec![
            p.finding(
                "sentinel.quorum",
                Severity::Critical,
                format!("no usable quorum for {service_name:?}"),
            )
            .evidence(e.to_string())
            .fix("start the missing sentinels or lower the quorum; a failover cannot happen now"),
        ],
        Err(e) => vec![
            p.finding(
                "sentinel.quorum",
                Severity::Info,
                "the quorum could not be checked",
            )
            .evidence(e.to_string()),
        ],
    }
}

/// Findings about the topology as a whole (nodes it marks as failed).
pub(crate) async fn topology_checks(
    _config: &RedisConfig,
    targets: &[Target],
    _opts: &Options,
) -> Vec<Finding> {
    targets
        .iter()
        .filter(|t| t.marked_failed)
        .map(|t| {
            let mut f = Finding::new(
                "topology.failed-node",
                Severity::Critical,
                &t.addr(),
                "the topology marks this node as failed",
            )
            .evidence(format!(
                "{} flagged fail / down by its peers",
                t.role.name()
            ))
            .fix("restart it or replace it; until then it serves nothing");
            f.role = t.role.name().into();
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_are_recognised() {
        assert!(loopback_only("127.0.0.1 -::1"));
        assert!(loopback_only("127.0.0.1"));
        assert!(!loopback_only("0.0.0.0"));
        assert!(!loopback_only("* -::*"));
        assert!(!loopback_only("127.0.0.1 10.0.0.5"));
        assert!(!loopback_only(""));
    }

    #[test]
    fn suspicious_rdb_locations_are_flagged() {
        assert!(suspicious_path("/root/.ssh", "authorized_keys"));
        assert!(suspicious_path("/var/spool/cron", "root"));
        assert!(!suspicious_path("/var/lib/redis", "dump.rdb"));
        assert!(!suspicious_path("/data/shards", "dump.shard1.rdb"));
        assert!(!suspicious_path("/rootfs/redis", "dump.rdb"));
        assert!(suspicious_path("/etc", "passwd"));
        assert!(suspicious_path("/var/www/html", "x.php"));
    }

    #[test]
    fn renamed_and_disabled_commands_are_told_apart() {
        assert_eq!(classify(true, true), Reach::Usable);
        assert_eq!(classify(false, true), Reach::Renamed);
        assert_eq!(classify(false, false), Reach::Disabled);
    }

    #[test]
    fn percentiles_of_a_sample() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let (p50, p99, max) = percentiles(s);
        assert!((p50 - 50.0).abs() <= 1.0 && (p99 - 99.0).abs() <= 1.0 && max == 100.0);
    }
}
