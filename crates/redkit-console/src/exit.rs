//! The `redkit` CLI's exit codes.
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | done |
//! | 1 | the action failed, or the doctor found a warning (`redkit doctor`) |
//! | 2 | usage error: bad arguments, URL or `REDIS_*` variable (also the doctor: critical) |
//! | 3 | Redis could not be reached or answered an error |
//! | 4 | no such queue, lock, cache, job or message |
//! | 5 | refused: a destructive action without `--yes`, or data that must not be touched |

/// Done.
pub const OK: u8 = 0;
/// The action failed (data could not be read), or the doctor's worst finding is a warning.
pub const FAILED: u8 = 1;
/// Usage error (also the doctor's "critical").
pub const USAGE: u8 = 2;
/// Redis could not be reached or answered an error.
pub const REDIS: u8 = 3;
/// No such queue, lock, cache, job or message.
pub const NOT_FOUND: u8 = 4;
/// Refused: a destructive action without `--yes`, a running job, ...
pub const REFUSED: u8 = 5;
