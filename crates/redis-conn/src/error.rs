//! One error type for everything redis-conn does, with server replies classified so callers
//! can act on them (`NOSCRIPT`, `READONLY`, `BUSYGROUP`, `CLUSTERDOWN`, `LOADING`, `WRONGTYPE`,
//! `NOAUTH` / `WRONGPASS`, timeouts).

use fred::error::{Error as FredError, ErrorKind};

/// The result type of redis-conn.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Messages name the setting, address or key involved and never contain a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid: `setting` names the URL part or environment variable.
    #[error("invalid {setting}: {message}")]
    Config {
        /// The URL component or environment variable at fault (e.g. `REDIS_MODE`).
        setting: String,
        /// What is wrong and which values are accepted.
        message: String,
    },
    /// The server is not what the URL says: a `redis://` URL pointed at a Sentinel or at a
    /// Cluster node. Both accept the connection, but every command (Sentinel) or most keys
    /// (Cluster) would then fail; `hint` gives the URL form to use.
    #[error("{target} is a Redis {found}, not a standalone server: {hint}")]
    WrongTopology {
        /// The address connected to, without credentials.
        target: String,
        /// What the server says it is (`sentinel`, `cluster`), from `INFO server`.
        found: String,
        /// The URL to use instead.
        hint: String,
    },
    /// The first connection could not be made.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// The address(es) tried, without credentials.
        target: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake with a server failed: untrusted or expired certificate, a name it does
    /// not carry, a missing client certificate, or a port that does not speak TLS. `reason`
    /// says which and how to fix it.
    #[error("TLS with {target} failed: {reason}")]
    Tls {
        /// The address(es) tried, without credentials.
        target: String,
        /// What failed and what to change.
        reason: String,
    },
    /// The ACL user may not run this command, or touch this key or channel (`NOPERM`, or the
    /// same refusal inside a script). The message names the refused command; for keys and
    /// channels it names the script or command and its keys when redis-conn knows them.
    #[error("permission denied: {0}")]
    NoPermission(String),
    /// A command or connection attempt took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Authentication failed (`NOAUTH`, `WRONGPASS`, or an ACL denial at connect).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The script is not in the server's script cache (`NOSCRIPT`).
    #[error("script not loaded on the server (NOSCRIPT): {0}")]
    NoScript(String),
    /// A write reached a replica (`READONLY`): usually a failover in progress.
    #[error("the node is a read-only replica (READONLY): {0}")]
    ReadOnly(String),
    /// A consumer group already exists (`BUSYGROUP`).
    #[error("consumer group already exists (BUSYGROUP): {0}")]
    BusyGroup(String),
    /// The cluster cannot serve the slot right now (`CLUSTERDOWN`).
    #[error("cluster is down (CLUSTERDOWN): {0}")]
    ClusterDown(String),
    /// The server is loading its dataset (`LOADING`).
    #[error("server is loading its dataset (LOADING): {0}")]
    Loading(String),
    /// The key holds another type (`WRONGTYPE`).
    #[error("wrong type for key (WRONGTYPE): {0}")]
    WrongType(String),
    /// Keys of one script or transaction map to different cluster slots.
    #[error(
        "keys map to different cluster slots ({0}): give them one hash tag, e.g. `app:{{order:42}}:items`"
    )]
    CrossSlot(String),
    /// Any other error reply from the server: `code` is its first word (`ERR`, `BUSY`, ...).
    #[error("server error {code}: {message}")]
    Server {
        /// The reply's first word.
        code: String,
        /// The rest of the reply.
        message: String,
    },
    /// The connection failed or closed.
    #[error("connection error: {0}")]
    Io(String),
    /// A reply could not be converted to the requested type.
    #[error("unexpected reply: {0}")]
    Parse(String),
    /// The operation was canceled (client shutting down).
    #[error("canceled: {0}")]
    Canceled(String),
    /// Anything else fred reports.
    #[error("redis client error: {0}")]
    Client(String),
}

impl Error {
    pub(crate) fn config(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            setting: setting.into(),
            message: message.into(),
        }
    }

    /// Whether retrying the same operation later may succeed (timeouts, failover in progress,
    /// dropped connections).
    ///
    /// ```
    /// use redis_conn::Error;
    /// assert!(Error::ReadOnly("x".into()).is_transient());
    /// assert!(!Error::WrongType("x".into()).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_)
                | Error::ReadOnly(_)
                | Error::ClusterDown(_)
                | Error::Loading(_)
                | Error::Io(_)
                | Error::Canceled(_)
        ) || matches!(self, Error::Server { code, .. } if code == "TRYAGAIN" || code == "MASTERDOWN" || code == "BUSY")
    }
}

/// Classifies a server error reply by its first word.
fn classify_reply(details: &str) -> Option<Error> {
    let (code, rest) = details.split_once(' ').unwrap_or((details, ""));
    let msg = details.to_string();
    Some(match code {
        "NOSCRIPT" => Error::NoScript(msg),
        "READONLY" => Error::ReadOnly(msg),
        "BUSYGROUP" => Error::BusyGroup(msg),
        "CLUSTERDOWN" => Error::ClusterDown(msg),
        "LOADING" => Error::Loading(msg),
        "WRONGTYPE" => Error::WrongType(msg),
        "CROSSSLOT" => Error::CrossSlot(msg),
        "NOAUTH" | "WRONGPASS" => Error::Auth(msg),
        "NOPERM" => Error::NoPermission(msg),
        "ERR" if rest.starts_with("The user executing the script can't") => {
            Error::NoPermission(msg)
        }
        c if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_uppercase()) => Error::Server {
            code: c.to_string(),
            message: rest.to_string(),
        },
        _ => return None,
    })
}

impl From<FredError> for Error {
    fn from(e: FredError) -> Self {
        let details = e.details().to_string();
        match e.kind() {
            ErrorKind::Timeout => Error::Timeout(details),
            ErrorKind::Auth => classify_reply(&details).unwrap_or(Error::Auth(details)),
            ErrorKind::IO => Error::Io(details),
            ErrorKind::Canceled => Error::Canceled(details),
            ErrorKind::Parse | ErrorKind::Protocol => Error::Parse(details),
            ErrorKind::Config | ErrorKind::Url => Error::Client(details),
            #[cfg(feature = "tls")]
            ErrorKind::Tls => Error::Client(details),
            // fred reports most server replies as Unknown (NOSCRIPT, READONLY, LOADING, ...),
            // CLUSTERDOWN / MOVED as Cluster and WRONGTYPE as InvalidArgument.
            _ => classify_reply(&details).unwrap_or(Error::Client(details)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_replies_are_classified_by_first_word() {
        let cases = [
            ("NOSCRIPT No matching script. Please use EVAL.", "NoScript"),
            (
                "READONLY You can't write against a read only replica.",
                "ReadOnly",
            ),
            ("BUSYGROUP Consumer Group name already exists", "BusyGroup"),
            ("CLUSTERDOWN The cluster is down", "ClusterDown"),
            ("LOADING Redis is loading the dataset in memory", "Loading"),
            (
                "WRONGTYPE Operation against a key holding the wrong kind of value",
                "WrongType",
            ),
            ("NOAUTH Authentication required.", "Auth"),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                "Auth",
            ),
            ("ERR unknown command 'FOO'", "Server"),
            (
                "NOPERM this user has no permissions to run the 'flushall' command",
                "NoPermission",
            ),
            (
                "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: 733d, on @user_script:1.",
                "NoPermission",
            ),
        ];
        for (reply, want) in cases {
            let err: Error = FredError::new(ErrorKind::Unknown, reply).into();
            let got = format!("{err:?}");
            assert!(got.starts_with(want), "{reply} -> {got}");
        }
        let timeout: Error = FredError::new(ErrorKind::Timeout, "Request timed out.").into();
        assert!(matches!(timeout, Error::Timeout(_)));
        assert!(timeout.is_transient());
    }
}
