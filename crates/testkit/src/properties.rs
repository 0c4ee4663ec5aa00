//! The configuration every redkit property test runs with (feature `proptest`): at least
//! 2,000 cases (more with `PROPTEST_CASES`), a fixed seed so CI runs the same cases every time
//! (another with `PROPTEST_RNG_SEED`), and failures kept next to the test's source file as
//! `<file>.proptest-regressions`, to be checked in and re-run first.

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// The seed used unless `PROPTEST_RNG_SEED` names another (`testkit::PROPTEST_SEED`).
///
/// ```
/// assert_eq!(testkit::PROPTEST_SEED, 0x5eed_2026);
/// ```
pub const SEED: u64 = 0x5eed_2026;

/// The property-test configuration described in this module.
///
/// ```
/// let c = testkit::proptest_config();
/// assert!(c.cases >= 2000);
/// ```
pub fn proptest_config() -> Config {
    let default = Config::default();
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    Config {
        cases: default.cases.max(2000),
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..default
    }
}
