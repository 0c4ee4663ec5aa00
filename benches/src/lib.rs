//! Shared helpers for the criterion benches in `benches/`.

use std::time::{Duration, Instant};

/// A 2-worker tokio runtime (the machine has 2 cores).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Times `iters` rounds of `op` run by `concurrency` tasks at once (each round = `concurrency`
/// ops; `op` gets the task's index in its round), for criterion's `iter_custom`.
pub async fn rounds<F, Fut>(iters: u64, concurrency: usize, op: F) -> Duration
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..iters {
        futures::future::join_all((0..concurrency).map(&op)).await;
    }
    start.elapsed()
}

/// A client for the shared throwaway standalone server (`REDKIT_STANDALONE_URL`, or one started
/// for this process), plus its URL.
pub fn standalone_client(rt: &tokio::runtime::Runtime) -> (redis_conn::RedisClient, &'static str) {
    let topo = testkit::shared(testkit::Kind::Standalone).unwrap_or_else(|e| panic!("{e}"));
    let config = redis_conn::RedisConfig::from_url(topo.url()).expect("harness URL");
    let redis = rt
        .block_on(redis_conn::RedisClient::connect(config))
        .expect("connect");
    (redis, topo.url())
}
