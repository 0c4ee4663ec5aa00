//! What to start: the topology's shape ([`Kind`]), how its servers run ([`Backend`]), optional
//! credentials ([`Auth`]) and timings ([`Spec`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tls::TlsSpec;

/// The shape of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// One server.
    Standalone,
    /// One primary, two replicas, three sentinels (quorum 2).
    Sentinel,
    /// Three primaries with one replica each.
    Cluster,
}

impl Kind {
    /// All kinds, in the order the test matrix runs them.
    pub const ALL: [Kind; 3] = [Kind::Standalone, Kind::Sentinel, Kind::Cluster];

    /// Lower-case name (`standalone`, `sentinel`, `cluster`).
    ///
    /// ```
    /// assert_eq!(testkit::Kind::Cluster.name(), "cluster");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Kind::Standalone => "standalone",
            Kind::Sentinel => "sentinel",
            Kind::Cluster => "cluster",
        }
    }

    /// The environment variable that points tests at a running topology of this kind.
    ///
    /// ```
    /// assert_eq!(testkit::Kind::Sentinel.url_var(), "REDKIT_SENTINEL_URL");
    /// ```
    pub fn url_var(self) -> &'static str {
        match self {
            Kind::Standalone => "REDKIT_STANDALONE_URL",
            Kind::Sentinel => "REDKIT_SENTINEL_URL",
            Kind::Cluster => "REDKIT_CLUSTER_URL",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::new(format!(
                    "unknown topology {s:?}: expected standalone, sentinel or cluster"
                ))
            })
    }
}

/// How servers are run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// `redis-server` processes on 127.0.0.1.
    Process,
    /// Containers on a private bridge network; `image` defaults to one built from the local
    /// `redis-server` ([`docker::ensure_image`](crate::docker::ensure_image)).
    Docker {
        /// A ready local image to use instead.
        image: Option<String>,
    },
}

impl Backend {
    /// The backend named by `REDKIT_BACKEND` (`process` when unset) and `REDKIT_DOCKER_IMAGE`.
    ///
    /// ```
    /// // With REDKIT_BACKEND unset:
    /// # unsafe { std::env::remove_var("REDKIT_BACKEND") };
    /// assert_eq!(testkit::Backend::from_env().unwrap(), testkit::Backend::Process);
    /// ```
    pub fn from_env() -> Result<Backend> {
        let image = std::env::var("REDKIT_DOCKER_IMAGE")
            .ok()
            .filter(|s| !s.is_empty());
        match std::env::var("REDKIT_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("process") => Ok(Backend::Process),
            Ok("docker") => Ok(Backend::Docker { image }),
            Ok(other) => Err(Error::new(format!(
                "REDKIT_BACKEND={other:?} is not supported: expected `process` or `docker`"
            ))),
        }
    }

    /// `process` or `docker`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Process => "process",
            Backend::Docker { .. } => "docker",
        }
    }
}

/// Credentials every data node requires (Sentinels stay open, as is common).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// An ACL user (`None`: the `default` user with `requirepass`).
    pub username: Option<String>,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An ACL user created on every data node at start (`--user name on >password rules...`), so
/// it survives restarts of a node.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclUser {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
    /// ACL rules, space separated (`~app:* &app:* -@all +get +set`).
    pub rules: String,
}

impl fmt::Debug for AclUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AclUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("rules", &self.rules)
            .finish()
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Topology shape.
    pub kind: Kind,
    /// Processes or containers.
    pub backend: Backend,
    /// Optional password / ACL user on the data nodes.
    pub auth: Option<Auth>,
    /// Sentinel `down-after-milliseconds` (default 1000 ms).
    pub sentinel_down_after: Duration,
    /// Cluster `cluster-node-timeout` (default 2000 ms).
    pub cluster_node_timeout: Duration,
    /// Sentinel service name (default `mymaster`).
    pub master_name: String,
    /// TLS on every server (data nodes and sentinels), `None` for plaintext.
    pub tls: Option<TlsSpec>,
    /// ACL users besides [`Spec::auth`]'s, on every data node.
    pub users: Vec<AclUser>,
    /// A user the sentinels require (the default user is then off on them; sentinels
    /// authenticate to each other with it too). `None`: sentinels are open.
    pub sentinel_auth: Option<Auth>,
}

impl Spec {
    /// A process-backed topology of `kind` with test-friendly timings.
    ///
    /// ```
    /// let spec = testkit::Spec::new(testkit::Kind::Cluster);
    /// assert_eq!(spec.backend, testkit::Backend::Process);
    /// ```
    pub fn new(kind: Kind) -> Spec {
        Spec {
            kind,
            backend: Backend::Process,
            auth: None,
            sentinel_down_after: Duration::from_millis(1000),
            cluster_node_timeout: Duration::from_millis(2000),
            master_name: "mymaster".into(),
            tls: None,
            users: Vec::new(),
            sentinel_auth: None,
        }
    }

    /// Like [`Spec::new`] with the backend from the environment ([`Backend::from_env`]).
    pub fn from_env(kind: Kind) -> Result<Spec> {
        Ok(Spec::new(kind).backend(Backend::from_env()?))
    }

    /// Sets the backend.
    pub fn backend(mut self, backend: Backend) -> Spec {
        self.backend = backend;
        self
    }

    /// Serves TLS only, with certificates from a throwaway CA made at start.
    ///
    /// ```
    /// let spec = testkit::Spec::new(testkit::Kind::Cluster).tls(testkit::TlsSpec::mutual());
    /// assert!(spec.tls.is_some());
    /// ```
    pub fn tls(mut self, tls: TlsSpec) -> Spec {
        self.tls = Some(tls);
        self
    }

    /// Adds an ACL user with `rules` (space separated) on every data node. Needs an admin user
    /// ([`Spec::auth`] with a user name), which also turns the default user off.
    ///
    /// ```
    /// let spec = testkit::Spec::new(testkit::Kind::Standalone)
    ///     .auth(Some("admin"), "admin-pw")
    ///     .user("app", "app-pw", "~app:* -@all +get +set");
    /// assert_eq!(spec.users.len(), 1);
    /// ```
    pub fn user(mut self, name: &str, password: &str, rules: &str) -> Spec {
        self.users.push(AclUser {
            name: name.into(),
            password: password.into(),
            rules: rules.into(),
        });
        self
    }

    /// Makes the sentinels require ACL user `username` with `password`.
    ///
    /// ```
    /// let spec = testkit::Spec::new(testkit::Kind::Sentinel).sentinel_auth("watcher", "w-pw");
    /// assert!(spec.sentinel_auth.is_some());
    /// ```
    pub fn sentinel_auth(mut self, username: &str, password: &str) -> Spec {
        self.sentinel_auth = Some(Auth {
            username: Some(username.to_string()),
            password: password.to_string(),
        });
        self
    }

    /// Requires a password (and an ACL user when `username` is `Some`) on every data node.
    pub fn auth(mut self, username: Option<&str>, password: &str) -> Spec {
        self.auth = Some(Auth {
            username: username.map(str::to_string),
            password: password.to_string(),
        });
        self
    }
}
