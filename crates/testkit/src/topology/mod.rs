//! Starting, inspecting, breaking and tearing down whole topologies.
//!
//! Bottom up: `spec` (what to start), `handle` (the running [`Topology`]: fields, accessors,
//! URL, logs), `ready` (polling), `launch` (starting nodes), `sentinel` and `cluster` (each
//! kind's set-up, inspection and failovers), `faults` (single-node faults) and `teardown`
//! (drop, watchdog, detach).

mod cluster;
mod faults;
mod handle;
mod launch;
mod ready;
mod sentinel;
mod spec;
mod teardown;

pub(crate) use handle::encode as encode_userinfo;
pub use handle::{AclRefusal, Topology};
pub use spec::{AclUser, Auth, Backend, Kind, Spec};
pub use teardown::State;
