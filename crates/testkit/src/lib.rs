#![doc = include_str!("../README.md")]

pub mod docker;
mod error;
mod external;
mod host;
mod node;
pub mod promtool;
#[cfg(feature = "proptest")]
mod properties;
pub mod proxy;
pub mod resp;
mod shared;
pub mod tls;
mod topology;

pub use error::{Error, Result};
pub use node::{Node, Role};
#[cfg(feature = "proptest")]
pub use properties::{SEED as PROPTEST_SEED, proptest_config};
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
