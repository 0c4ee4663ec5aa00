//! The exit codes of the `redis-diag` binary (see the [crate docs](crate#exit-codes)).
//!
//! ```
//! assert_eq!(redis_diag::exit::AUTH_FAILED, 4);
//! ```

/// The worst finding is ok or info.
pub const OK: i32 = 0;
/// The worst finding is a warning.
pub const WARNING: i32 = 1;
/// The worst finding is critical.
pub const CRITICAL: i32 = 2;
/// Nothing could be checked: no node answered, or the topology could not be discovered.
pub const UNREACHABLE: i32 = 3;
/// Nothing could be checked: every node that answered refused the credentials.
pub const AUTH_FAILED: i32 = 4;
/// Invalid configuration or command-line arguments.
pub const USAGE: i32 = 5;
