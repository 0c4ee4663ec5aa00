//! Topologies shared by the tests of one process: taken from the environment when
//! `REDKIT_<KIND>_URL` is set, otherwise started on first use and stopped when the process
//! exits (by the topology's watchdog); per-test names that keep the tests' data apart; and the
//! wrapper that prints server logs when a test body panics.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use futures::FutureExt;

use crate::error::{Error, Result};
use crate::tls::TlsSpec;
use crate::topology::{Kind, Spec, Topology};

/// A topology tests may share: never break it on purpose (start your own [`Topology`] for
/// faults) and isolate data with per-test key prefixes.
#[derive(Debug)]
pub struct SharedTopology {
    /// Its kind.
    pub kind: Kind,
    url: String,
    topology: Option<Topology>,
    users: std::sync::Mutex<Vec<(String, String, String)>>,
}

/// FNV-1a, for passwords derived from a user name (a test harness's, not a secret's).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The admin user of secure shared topologies.
const ADMIN: &str = "redkit-admin";

/// Whether `REDKIT_SECURE` asks for secure shared topologies: TLS only (mutual TLS, node
/// certificates that name host names only), the default user off, an admin user, and one ACL
/// user per suite ([`SharedTopology::url_for`]).
///
/// ```
/// # unsafe { std::env::remove_var("REDKIT_SECURE") };
/// assert!(!testkit::secure());
/// ```
pub fn secure() -> bool {
    matches!(
        std::env::var("REDKIT_SECURE").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// `spec` made secure as [`secure`] describes: TLS only with mutual TLS and certificates that
/// name host names only, the default user off and an admin user (`redkit-admin`) with a
/// generated password on the data nodes, and sentinels that require their own user
/// (`redkit-sentinel`).
///
/// ```
/// let spec = testkit::secure_spec(testkit::Spec::new(testkit::Kind::Cluster));
/// assert!(spec.tls.is_some() && spec.auth.is_some());
/// ```
pub fn secure_spec(spec: Spec) -> Spec {
    let password = format!("admin-{:x}", std::process::id() as u64 * 104_729 + 17);
    let sentinel_password = format!("watch-{:x}", std::process::id() as u64 * 7_901 + 3);
    spec.tls(TlsSpec {
        ip_sans: false,
        ..TlsSpec::mutual()
    })
    .auth(Some(ADMIN), &password)
    .sentinel_auth("redkit-sentinel", &sentinel_password)
}

impl SharedTopology {
    /// The connection URL, with full rights (the admin user on secure topologies).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this topology is secure (TLS + ACL, see [`secure`]).
    pub fn is_secure(&self) -> bool {
        match &self.topology {
            Some(t) => t.spec().tls.is_some() && t.spec().auth.is_some(),
            None => secure() && self.url.starts_with("rediss"),
        }
    }

    /// The URL a suite should run as: on a secure topology, ACL user `user` with `rules`
    /// (created on every data node at the first call, the same rules every time); otherwise
    /// [`SharedTopology::url`].
    ///
    /// ```no_run
    /// let topo = testkit::shared(testkit::Kind::Cluster).unwrap();
    /// let url = topo.url_for("cache-tests", "resetchannels ~t:* &t:* -@all +@read +@write +evalsha").unwrap();
    /// ```
    pub fn url_for(&self, user: &str, rules: &str) -> Result<String> {
        if !self.is_secure() {
            return Ok(self.url.clone());
        }
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, r, url)) = users.iter().find(|(u, _, _)| u == user) {
            if r != rules {
                return Err(Error::new(format!(
                    "ACL user {user} was created with other rules ({r:?}): one set of rules per user name"
                )));
            }
            return Ok(url.clone());
        }
        // The same password for the same user in every process: nextest runs each test in a
        // process of its own, and a second process re-creating the user must not lock out
        // the first one's connections.
        let password = format!("{user}-{:016x}", fnv1a(&format!("{user}\n{}", self.url)));
        let url = match &self.topology {
            Some(t) => t.create_user(user, &password, rules)?,
            None => crate::external::create_user(&self.url, user, &password, rules)?,
        };
        users.push((user.to_string(), rules.to_string(), url.clone()));
        Ok(url)
    }

    /// The topology, when this process started it (not when it came from the environment).
    pub fn topology(&self) -> Option<&Topology> {
        self.topology.as_ref()
    }
}

static SHARED: [OnceLock<Result<SharedTopology>>; 3] =
    [OnceLock::new(), OnceLock::new(), OnceLock::new()];

/// The shared topology of `kind`: from `REDKIT_<KIND>_URL` when set, else started now (once
/// per process) on the backend `REDKIT_BACKEND` names. The error says how to fix a machine
/// where nothing can start; tests must fail on it, never skip.
///
/// ```no_run
/// let topo = testkit::shared(testkit::Kind::Standalone).unwrap();
/// println!("{}", topo.url());
/// ```
pub fn shared(kind: Kind) -> Result<&'static SharedTopology> {
    let idx = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    SHARED[idx]
        .get_or_init(|| {
            if let Some(url) = std::env::var(kind.url_var()).ok().filter(|u| !u.is_empty()) {
                return Ok(SharedTopology {
                    kind,
                    url,
                    topology: None,
                    users: Default::default(),
                });
            }
            let mut spec = Spec::from_env(kind)?;
            if secure() {
                spec = secure_spec(spec);
            }
            let topology = Topology::start(spec).map_err(|e| {
                Error::new(format!(
                    "no {kind} topology for this test: {e}\n\
                     Fix: install redis-server (`apt-get install -y redis-server`), or set {} to a running \
                     {kind} deployment, or run the suite with `cargo xtask test`.",
                    kind.url_var()
                ))
            })?;
            Ok(SharedTopology {
                kind,
                url: topology.url(),
                topology: Some(topology),
                users: Default::default(),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A name unique to this process and call (a per-test key prefix), so tests can share servers.
///
/// ```
/// assert_ne!(testkit::unique_name("t:cache"), testkit::unique_name("t:cache"));
/// ```
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}:{}:{}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_007
    )
}

/// Runs a test body; if it panics, prints the server logs of `topology` (when this process
/// started it) before the panic continues.
pub async fn run_logged<F: Future<Output = ()>>(topology: Option<&Topology>, body: F) {
    if let Err(panic) = AssertUnwindSafe(body).catch_unwind().await {
        if let Some(t) = topology {
            eprintln!("{}", t.log_report(30));
        }
        std::panic::resume_unwind(panic);
    }
}
