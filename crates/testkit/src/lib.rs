//! Real Redis topologies for redkit's tests, benches and `cargo xtask`: standalone, Sentinel
//! (1 primary, 2 replicas, 3 sentinels, quorum 2) and Cluster (3 primaries + 3 replicas), run as
//! local `redis-server` processes on loopback or as containers on a private bridge network,
//! with faults to inject (kill -9, pause, restart, failovers, `CLIENT PAUSE`, a TCP fault proxy).
//!
//! Readiness is always decided by polling the servers (`PING`, `INFO replication`,
//! `CLUSTER INFO`, `SENTINEL CKQUORUM`), never by sleeping a fixed time. Every topology a test
//! starts is torn down when it is dropped, and by a watchdog process if the test process dies.
//!
//! ```no_run
//! use testkit::{Kind, Spec, Topology};
//!
//! let topo = Topology::start(Spec::new(Kind::Sentinel)).expect("redis-server is installed");
//! println!("connect to {}", topo.url());
//! let primary = topo.current_primary().unwrap();
//! topo.kill(&primary).unwrap(); // Sentinel promotes a replica
//! ```
//!
//! # Environment contract
//!
//! | variable | meaning |
//! |---|---|
//! | `REDKIT_STANDALONE_URL`, `REDKIT_SENTINEL_URL`, `REDKIT_CLUSTER_URL` | a running topology that [`shared`] returns instead of starting one |
//! | `REDKIT_BACKEND` | `process` (default) or `docker`: how [`shared`] and [`Spec::from_env`] start servers |
//! | `REDKIT_DOCKER_IMAGE` | a ready image (e.g. `redis:7.2`) instead of one built from the local `redis-server` |
//! | `REDKIT_REDIS_SERVER` | path of the `redis-server` binary (default: found on `PATH`) |
//! | `REDKIT_KEEP_LOGS` | keep node directories and logs after a topology is dropped |
//! | `REDKIT_SECURE` | `1`: [`shared`] topologies are TLS only (mutual TLS, certificates naming host names only) with ACL users ([`SharedTopology::url_for`]) |
//!
//! # How this crate is laid out
//!
//! Read it bottom up. `error` holds [`Error`] and [`Result`]; `host` runs host programs and
//! finds the `redis-server` binary; [`resp`] is the small blocking RESP client the harness
//! probes servers with; `node` is one server ([`Node`], [`Role`]) and how to start, stop and
//! break it; [`docker`] is the container backend (image, network, containers). `topology` puts
//! nodes together into a [`Topology`]: `topology/spec` ([`Kind`], [`Backend`], [`Auth`],
//! [`Spec`]), `topology/handle` (the running value and its accessors), `topology/ready`
//! (polling), `topology/launch` (starting nodes), `topology/sentinel` and `topology/cluster`
//! (each kind's set-up, inspection and failovers), `topology/faults` (single-node faults) and
//! `topology/teardown` (drop, watchdog, [`State`] for `xtask up`). On top, `shared` gives tests
//! one [`SharedTopology`] per kind, [`unique_name`] and [`run_logged`]; [`proxy`] is the TCP
//! fault proxy ([`FaultProxy`]); the [`topology_tests!`] macro below declares one test per kind.

pub mod docker;
mod error;
mod external;
mod host;
mod node;
pub mod proxy;
pub mod resp;
mod shared;
pub mod tls;
mod topology;

pub use error::{Error, Result};
pub use node::{Node, Role};
pub use proxy::{FaultProxy, ProxyMode};
pub use shared::{SharedTopology, run_logged, secure, secure_spec, shared, unique_name};
pub use tls::{ClientAuth, TlsFiles, TlsSpec, Validity};
pub use topology::{AclRefusal, AclUser, Auth, Backend, Kind, Spec, State, Topology};

/// Declares each listed `async fn(client, &SharedTopology)` test body as one
/// `#[tokio::test]` per topology, in modules `standalone`, `sentinel` and `cluster`. The
/// invoking module must define `async fn shared(kind: testkit::Kind) -> (Client,
/// &'static testkit::SharedTopology)`; a failing body prints the topology's logs.
///
/// ```ignore
/// async fn shared(kind: testkit::Kind) -> (MyClient, &'static testkit::SharedTopology) { /* ... */ }
/// async fn round_trips(client: MyClient, topo: &testkit::SharedTopology) { /* ... */ }
/// testkit::topology_tests!(round_trips);
/// ```
#[macro_export]
macro_rules! topology_tests {
    ($($name:ident),* $(,)?) => {
        $crate::topology_tests!(@kind standalone, Standalone, $($name),*);
        $crate::topology_tests!(@kind sentinel, Sentinel, $($name),*);
        $crate::topology_tests!(@kind cluster, Cluster, $($name),*);
    };
    (@kind $module:ident, $kind:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (client, topo) = super::shared($crate::Kind::$kind).await;
                    $crate::run_logged(topo.topology(), super::$name(client, topo)).await;
                }
            )*
        }
    };
}
