//! Shared helpers for redis-conn's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology, Topology};

/// Connects to the shared topology of `kind` (from `REDKIT_<KIND>_URL` or started now).
/// Fails, never skips, when no topology can be had.
pub async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    let config = RedisConfig::from_url(topo.url()).expect("harness URLs parse");
    let client = RedisClient::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", topo.url()));
    (client, topo)
}

/// A key prefix unique to this test run, so tests can share servers.
pub fn prefix(test: &str) -> String {
    testkit::unique_name(&format!("t:{test}"))
}

/// Starts a topology this test owns (for faults), on the backend `REDKIT_BACKEND` names.
pub fn own(kind: Kind) -> Topology {
    own_spec(testkit::Spec::from_env(kind).expect("valid REDKIT_BACKEND"))
}

pub fn own_spec(spec: testkit::Spec) -> Topology {
    tokio::task::block_in_place(|| Topology::start(spec)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs blocking harness work without stalling the runtime.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// What a stream of INCRs saw.
#[derive(Debug, Default)]
pub struct IncrLog {
    pub acked: Vec<i64>,
    pub errors: usize,
    /// Longest time without a successful INCR (the outage as the application saw it).
    pub longest_gap: Duration,
}

impl IncrLog {
    /// Every acknowledged value exceeds the one before: an acknowledged INCR that was lost would
    /// make a later INCR return a value already handed out.
    pub fn assert_no_acknowledged_write_lost(&self, final_value: i64) {
        for w in self.acked.windows(2) {
            assert!(
                w[1] > w[0],
                "acknowledged INCR lost: value {} came after {}",
                w[1],
                w[0]
            );
        }
        let last = self.acked.last().copied().unwrap_or(0);
        assert!(
            final_value >= last,
            "final value {final_value} < last acknowledged {last}"
        );
        assert!(
            final_value >= self.acked.len() as i64,
            "final value {final_value} < {} acknowledged INCRs",
            self.acked.len()
        );
    }

    pub fn summary(&self, final_value: i64) -> String {
        format!(
            "{} INCRs acknowledged, {} failed, final value {final_value} ({} applied but not acknowledged), longest outage {:?}",
            self.acked.len(),
            self.errors,
            final_value - self.acked.len() as i64,
            self.longest_gap
        )
    }
}

/// Issues one INCR every `every` until `stop` resolves; sequential, so values must increase.
pub async fn incr_stream(
    client: RedisClient,
    key: String,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> IncrLog {
    let mut log = IncrLog::default();
    let mut last_ok = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        match client.pool().incr::<i64, _>(&key).await {
            Ok(v) => {
                log.longest_gap = log.longest_gap.max(last_ok.elapsed());
                last_ok = Instant::now();
                log.acked.push(v);
            }
            Err(_) => log.errors += 1,
        }
    }
    log
}

/// Reads an integer key, retrying through a failover in progress.
pub async fn read_int(client: &RedisClient, key: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.pool().get::<Option<i64>, _>(key).await {
            Ok(v) => return v.unwrap_or(0),
            Err(e) if Instant::now() < deadline => {
                eprintln!("read {key}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot read {key}: {e}"),
        }
    }
}
