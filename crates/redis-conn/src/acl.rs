//! Least-privilege ACL rules: [`AclRule`] collects the key patterns, channels and commands a
//! component needs and prints them in the form `ACL SETUSER` takes; [`AclRule::connection`] is
//! what every redis-conn client needs just to connect and stay connected. Each redkit crate
//! adds its own needs on top (`cache_core::acl_rule`, `dlock::acl_rule`, ...).

use std::fmt;

/// A set of ACL rights: key patterns (`~`), channel patterns (`&`) and commands (`+`), with
/// everything else denied. `Display` gives the rule text to paste after
/// `ACL SETUSER <user> on ><password>` (or into a `user` line of an ACL file).
///
/// ```
/// use redis_conn::AclRule;
/// let rule = AclRule::connection()
///     .keys("app:*")
///     .channels("app:*")
///     .commands(["get", "set"]);
/// let text = rule.to_string();
/// assert!(text.starts_with("resetkeys resetchannels -@all"));
/// assert!(text.contains("~app:*") && text.contains("&app:*") && text.contains("+get"));
/// assert!(!rule.clone().without_command("get").to_string().contains("+get"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclRule {
    keys: Vec<String>,
    read_keys: Vec<String>,
    channels: Vec<String>,
    commands: Vec<String>,
}

impl AclRule {
    /// No rights at all.
    pub fn new() -> AclRule {
        AclRule::default()
    }

    /// What a redis-conn client sends on its own on any topology: `PING` (health checks),
    /// `INFO` (the topology check at connect and `health`), `ROLE` (Sentinel: fred checks the
    /// node it was given is the primary), `CLUSTER SLOTS` / `CLUSTER INFO` / `CLUSTER NODES` (Cluster
    /// discovery, the one-node check, [`health`](crate::health)), `ASKING` (keys of a slot
    /// being migrated during a resharding), `SELECT` (a database other than 0), `CLIENT SETNAME` / `CLIENT ID`
    /// (named connections, tracking set-up), `QUIT` (clean shutdown), `SCRIPT LOAD`, `EVALSHA`
    /// and `EVAL` ([`Script`](crate::Script)). `AUTH` and `HELLO` need no right.
    ///
    /// ```
    /// assert!(redis_conn::AclRule::connection().to_string().contains("+evalsha"));
    /// ```
    pub fn connection() -> AclRule {
        AclRule::new().commands([
            "ping",
            "info",
            "role",
            "cluster|slots",
            "cluster|info",
            "cluster|nodes",
            "asking",
            "select",
            "client|setname",
            "client|id",
            "quit",
            "script|load",
            "evalsha",
            "eval",
        ])
    }

    /// Adds a key pattern (`~pattern`).
    pub fn keys(mut self, pattern: impl Into<String>) -> AclRule {
        push(&mut self.keys, pattern.into());
        self
    }

    /// Adds a key pattern the user may only read (`%R~pattern`, Redis 7+).
    ///
    /// ```
    /// assert!(redis_conn::AclRule::new().read_keys("*").to_string().contains("%R~*"));
    /// ```
    pub fn read_keys(mut self, pattern: impl Into<String>) -> AclRule {
        push(&mut self.read_keys, pattern.into());
        self
    }

    /// Adds a channel pattern (`&pattern`).
    pub fn channels(mut self, pattern: impl Into<String>) -> AclRule {
        push(&mut self.channels, pattern.into());
        self
    }

    /// Adds commands (`+name`, or `+name|subcommand`), lower case.
    pub fn commands<I, S>(mut self, commands: I) -> AclRule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for c in commands {
            push(&mut self.commands, c.into().to_ascii_lowercase());
        }
        self
    }

    /// Everything `other` allows too.
    pub fn merge(mut self, other: &AclRule) -> AclRule {
        for k in &other.keys {
            push(&mut self.keys, k.clone());
        }
        for k in &other.read_keys {
            push(&mut self.read_keys, k.clone());
        }
        for c in &other.channels {
            push(&mut self.channels, c.clone());
        }
        for c in &other.commands {
            push(&mut self.commands, c.clone());
        }
        self
    }

    /// The same rule without `command` (for checking that a right is really needed).
    pub fn without_command(mut self, command: &str) -> AclRule {
        let command = command.to_ascii_lowercase();
        self.commands.retain(|c| *c != command);
        self
    }

    /// The same rule without the key pattern `pattern`.
    pub fn without_keys(mut self, pattern: &str) -> AclRule {
        self.keys.retain(|k| k != pattern);
        self
    }

    /// The same rule without the channel pattern `pattern`.
    pub fn without_channels(mut self, pattern: &str) -> AclRule {
        self.channels.retain(|c| c != pattern);
        self
    }

    /// The commands allowed, lower case, in the order added.
    pub fn allowed_commands(&self) -> &[String] {
        &self.commands
    }

    /// The key patterns allowed.
    pub fn key_patterns(&self) -> &[String] {
        &self.keys
    }

    /// The channel patterns allowed.
    pub fn channel_patterns(&self) -> &[String] {
        &self.channels
    }

    /// The rule as separate `ACL SETUSER` arguments.
    ///
    /// ```
    /// let args = redis_conn::AclRule::new().keys("a:*").commands(["get"]).args();
    /// assert_eq!(args, ["resetkeys", "resetchannels", "-@all", "+get", "~a:*"]);
    /// ```
    pub fn args(&self) -> Vec<String> {
        let mut out: Vec<String> = ["resetkeys", "resetchannels", "-@all"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        out.extend(self.commands.iter().map(|c| format!("+{c}")));
        out.extend(self.keys.iter().map(|k| format!("~{k}")));
        out.extend(self.read_keys.iter().map(|k| format!("%R~{k}")));
        out.extend(self.channels.iter().map(|c| format!("&{c}")));
        out
    }
}

fn push(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

impl fmt::Display for AclRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.args().join(" "))
    }
}
