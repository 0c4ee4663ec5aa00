//! Counters reach the `metrics` facade with the cache's namespace as a label.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cache_core::{Cache, CacheConfig};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use redis_conn::{RedisClient, RedisConfig};

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    fn absolute(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, v: f64) {
        self.0.store(v as u64, Ordering::Relaxed);
    }
}

/// Records every counter as `name{labels}` -> value.
#[derive(Default, Clone)]
struct TestRecorder(Arc<Mutex<HashMap<String, Arc<Cell>>>>);

impl TestRecorder {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0
            .lock()
            .expect("lock")
            .entry(name)
            .or_default()
            .clone()
    }

    fn value(&self, name: &str) -> u64 {
        self.0
            .lock()
            .expect("lock")
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_misses_and_builds_are_exported_per_namespace() {
    let recorder = TestRecorder::default();
    metrics::set_global_recorder(recorder.clone()).expect("first recorder");
    let topo = tokio::task::block_in_place(|| testkit::shared(testkit::Kind::Standalone))
        .unwrap_or_else(|e| panic!("{e}"));
    // As a user with only the cache's documented rights (on a secure shared topology).
    let rule = cache_core::acl_rule(&CacheConfig::new("t:metrics:*")).to_string();
    let url = topo
        .url_for("cache-core-metrics", &rule)
        .unwrap_or_else(|e| panic!("metrics user: {e}"));
    let redis = RedisClient::connect(RedisConfig::from_url(&url).expect("url"))
        .await
        .expect("connect");
    let ns = format!("t:metrics:{}", std::process::id());
    let cache = Cache::new(redis, CacheConfig::new(ns.clone())).expect("cache");
    for _ in 0..3 {
        let _: Option<u32> = cache
            .get_or_set("k", None, || async {
                Ok::<_, std::convert::Infallible>(Some(1))
            })
            .await
            .expect("value");
    }
    let label = format!("namespace={ns}");
    assert_eq!(
        recorder.value(&format!("redkit_cache_builds_total{{{label}}}")),
        1
    );
    assert_eq!(
        recorder.value(&format!("redkit_cache_misses_total{{{label}}}")),
        1
    );
    assert_eq!(
        recorder.value(&format!("redkit_cache_hits_total{{{label}}}")),
        2
    );
    assert_eq!(
        recorder.value(&format!("redkit_cache_breaker_open{{{label}}}")),
        0
    );
    cache.delete(&["k"]).await.expect("delete");
}
