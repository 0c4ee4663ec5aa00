//! The worker runtime on real servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_conn::RedisClient;
use rqueue::{Queue, QueueConfig, Worker, WorkerConfig};
use testkit::SharedTopology;

mod common;
use common::shared;

fn queue(redis: &RedisClient, test: &str, tune: impl FnOnce(&mut QueueConfig)) -> Queue<u32> {
    let mut cfg = QueueConfig::new(testkit::unique_name(&format!("t-{test}")));
    cfg.namespace = "t:rq".into();
    tune(&mut cfg);
    Queue::new(redis.clone(), cfg).expect("config")
}

fn workers(concurrency: usize, tune: impl FnOnce(&mut WorkerConfig)) -> WorkerConfig {
    let mut cfg = WorkerConfig::default();
    cfg.concurrency = concurrency;
    tune(&mut cfg);
    cfg
}

/// Resolves once `counter` reaches `n` (or after 20 s, so a broken test ends).
async fn when(counter: Arc<AtomicUsize>, n: usize) {
    let started = Instant::now();
    while counter.load(Ordering::SeqCst) < n && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

testkit::topology_tests!(
    a_worker_processes_everything_and_retries_failures,
    a_panicking_handler_is_retried_with_its_panic_message,
    a_job_over_its_timeout_fails,
    shutdown_waits_for_running_jobs_within_the_grace,
    shutdown_puts_unfinished_jobs_back,
    undecodable_payloads_among_good_ones_go_to_the_dead_set_and_the_worker_carries_on,
);

/// 100 payloads of the wrong type among 10,000 good ones: exactly those 100 dead with reason
/// "decode", every good one handled, the worker still running at the end.
async fn undecodable_payloads_among_good_ones_go_to_the_dead_set_and_the_worker_carries_on(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "decode-many", |_| {});
    let wrong: Queue<String> = Queue::new(redis.clone(), q.config().clone()).expect("queue");
    let mut bad_ids = Vec::new();
    for round in 0..100u32 {
        let good: Vec<u32> = (round * 100..round * 100 + 100).collect();
        q.enqueue_batch(&good).await.expect("enqueue");
        bad_ids.push(
            wrong
                .enqueue(&format!("not a number #{round}"))
                .await
                .expect("enqueue"),
        );
    }
    let done = Arc::new(AtomicUsize::new(0));
    let handled = done.clone();
    let report = Worker::new(q.clone(), workers(16, |_| {}))
        .run(
            move |_n: u32, _job| {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(())
                }
            },
            when(done.clone(), 10_000),
        )
        .await
        .expect("run");
    assert_eq!(done.load(Ordering::SeqCst), 10_000);
    assert_eq!((report.acked, report.dead), (10_000, 0), "{report:?}");
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.dead, s.ready, s.in_flight, s.acked),
        (100, 0, 0, 10_000),
        "{s:?}"
    );
    let dead = q.dead_letters(0, 200).await.expect("dead letters");
    let mut dead_ids: Vec<String> = dead.iter().map(|d| d.id.clone()).collect();
    dead_ids.sort();
    bad_ids.sort();
    assert_eq!(dead_ids, bad_ids, "exactly the undecodable ones");
    assert!(
        dead.iter()
            .all(|d| d.reason.starts_with("decode") && d.message.is_err()),
        "{:?}",
        dead.first()
    );
}

async fn a_worker_processes_everything_and_retries_failures(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "worker", |c| {
        c.backoff.base = Duration::from_millis(20);
        c.backoff.jitter = false;
    });
    let messages: Vec<u32> = (0..200).collect();
    q.enqueue_batch(&messages).await.expect("enqueue");
    let done = Arc::new(AtomicUsize::new(0));
    let handled = done.clone();
    let report = Worker::new(q.clone(), workers(8, |_| {}))
        .run(
            move |n: u32, job| {
                let handled = handled.clone();
                async move {
                    if n.is_multiple_of(10) && job.delivery == 1 {
                        return Err(format!("{n} fails once"));
                    }
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            },
            when(done.clone(), 200),
        )
        .await
        .expect("run");
    assert_eq!(
        (report.acked, report.retried, report.dead),
        (200, 20, 0),
        "{report:?}"
    );
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.ready, s.delayed, s.in_flight, s.dead),
        (0, 0, 0, 0),
        "{s:?}"
    );
}

async fn a_panicking_handler_is_retried_with_its_panic_message(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "panic", |c| c.max_attempts = 1);
    q.enqueue_batch(&[1, 2, 3]).await.expect("enqueue");
    let done = Arc::new(AtomicUsize::new(0));
    let seen = done.clone();
    let report = Worker::new(q.clone(), workers(2, |_| {}))
        .run(
            move |n: u32, _job| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    if n == 2 {
                        panic!("kaboom {n}");
                    }
                    Ok::<_, String>(())
                }
            },
            when(done.clone(), 3),
        )
        .await
        .expect("run");
    assert_eq!((report.acked, report.dead), (2, 1), "{report:?}");
    let dead = q.dead_letters(0, 10).await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message, Ok(2));
    assert!(
        dead[0].reason.contains("panic: kaboom 2"),
        "{:?}",
        dead[0].reason
    );
}

async fn a_job_over_its_timeout_fails(redis: RedisClient, _t: &SharedTopology) {
    let q = queue(&redis, "timeout", |c| c.max_attempts = 1);
    q.enqueue(&1).await.expect("enqueue");
    let report = Worker::new(
        q.clone(),
        workers(1, |c| c.job_timeout = Some(Duration::from_millis(100))),
    )
    .run(
        |_n: u32, _job| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, String>(())
        },
        tokio::time::sleep(Duration::from_millis(600)),
    )
    .await
    .expect("run");
    assert_eq!(report.dead, 1, "{report:?}");
    let dead = q.dead_letters(0, 1).await.expect("dead");
    assert!(
        dead[0].reason.starts_with("timed out"),
        "{:?}",
        dead[0].reason
    );
}

async fn shutdown_waits_for_running_jobs_within_the_grace(redis: RedisClient, _t: &SharedTopology) {
    let q = queue(&redis, "graceful", |_| {});
    q.enqueue_batch(&[1, 2, 3, 4]).await.expect("enqueue");
    let started = Arc::new(AtomicUsize::new(0));
    let begun = started.clone();
    let report = Worker::new(q.clone(), workers(4, |_| {}))
        .run(
            move |_n: u32, _job| {
                let begun = begun.clone();
                async move {
                    begun.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    Ok::<_, String>(())
                }
            },
            when(started.clone(), 4),
        )
        .await
        .expect("run");
    assert_eq!((report.acked, report.released), (4, 0), "{report:?}");
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.in_flight, s.acked), (0, 0, 4), "{s:?}");
}

async fn shutdown_puts_unfinished_jobs_back(redis: RedisClient, _t: &SharedTopology) {
    let q = queue(&redis, "release", |_| {});
    q.enqueue_batch(&[1, 2, 3, 4, 5, 6]).await.expect("enqueue");
    let started = Arc::new(AtomicUsize::new(0));
    let begun = started.clone();
    let t0 = Instant::now();
    let report = Worker::new(
        q.clone(),
        workers(4, |c| c.shutdown_grace = Duration::from_millis(200)),
    )
    .run(
        move |_n: u32, _job| {
            let begun = begun.clone();
            async move {
                begun.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, String>(())
            }
        },
        when(started.clone(), 4),
    )
    .await
    .expect("run");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        (report.acked, report.released, report.retried),
        (0, 4, 0),
        "{report:?}"
    );
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.ready, s.in_flight, s.released, s.retried),
        (6, 0, 4, 0),
        "{s:?}"
    );
    // Released, not failed: the next delivery is still the first.
    let again = q.claim(10).await.expect("claim");
    assert!(again.iter().all(|d| d.delivery() == 1));
    for d in again {
        d.ack().await.expect("ack");
    }
}

/// Counts counters by name (histograms and gauges are dropped).
#[derive(Default)]
struct Counting(
    std::sync::Mutex<std::collections::HashMap<String, Arc<std::sync::atomic::AtomicU64>>>,
);

impl metrics::Recorder for Counting {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let c = map.entry(key.name().to_string()).or_default().clone();
        metrics::Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

impl Counting {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }
}

/// The metrics facade sees what the worker did: enqueued, claimed, acked, retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_facade_counts_the_work() {
    let (redis, _t) = shared(testkit::Kind::Standalone).await;
    let recorder = Counting::default();
    let q = metrics::with_local_recorder(&recorder, || {
        queue(&redis, "metrics", |c| {
            c.backoff.base = Duration::from_millis(1)
        })
    });
    let messages: Vec<u32> = (0..50).collect();
    q.enqueue_batch(&messages).await.expect("enqueue");
    let done = Arc::new(AtomicUsize::new(0));
    let handled = done.clone();
    let report = Worker::new(q.clone(), workers(4, |_| {}))
        .run(
            move |n: u32, job| {
                let handled = handled.clone();
                async move {
                    if n < 5 && job.delivery == 1 {
                        return Err("first try fails");
                    }
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            },
            when(done.clone(), 50),
        )
        .await
        .expect("run");
    assert_eq!((report.acked, report.retried), (50, 5));
    let counted: Vec<u64> = [
        "redkit_rqueue_enqueued_total",
        "redkit_rqueue_claimed_total",
        "redkit_rqueue_acked_total",
        "redkit_rqueue_retried_total",
    ]
    .iter()
    .map(|n| recorder.get(n))
    .collect();
    assert_eq!(counted, vec![50, 55, 50, 5]);
}
