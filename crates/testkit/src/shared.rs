//! Topologies shared by the tests of one process: taken from the environment when
//! `REDKIT_<KIND>_URL` is set, otherwise started on first use and stopped when the process
//! exits (by the topology's watchdog); per-test names that keep the tests' data apart; and the
//! wrapper that prints server logs when a test body panics.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use futures::FutureExt;

use crate::error::{Error, Result};
use crate::topology::{Kind, Spec, Topology};

/// A topology tests may share: never break it on purpose (start your own [`Topology`] for
/// faults) and isolate data with per-test key prefixes.
#[derive(Debug)]
pub struct SharedTopology {
    /// Its kind.
    pub kind: Kind,
    url: String,
    topology: Option<Topology>,
}

impl SharedTopology {
    /// The connection URL.
    pub fn url(&self) -> &str {
        &self.url
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
                });
            }
            let topology = Topology::start(Spec::from_env(kind)?).map_err(|e| {
                Error::new(format!(
                    "no {kind} topology for this test: {e}\n\
                     Fix: install redis-server (`apt-get install -y redis-server`), or set {} to a running \
                     {kind} deployment, or run the suite with `cargo xtask test`.",
                    kind.url_var()
                ))
            })?;
            Ok(SharedTopology { kind, url: topology.url(), topology: Some(topology) })
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
