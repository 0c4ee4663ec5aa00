//! A worker started on a backlog of 1,000,000 ready messages plus 100,000 delayed ones already
//! due: it drains them all, and each claim does bounded work (apalis-redis 1.0's worker fails
//! outright at 8,000 queued jobs because one script unpacks them all).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rqueue::{Queue, QueueConfig, Worker, WorkerConfig};
use testkit::Kind;

mod common;
use common::shared;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_drains_a_backlog_of_a_million_ready_and_100k_due_messages() {
    const READY: u64 = 1_000_000;
    const DUE: u64 = 100_000;
    let (redis, _t) = shared(Kind::Standalone).await;
    let mut cfg = QueueConfig::new(testkit::unique_name("backlog"));
    cfg.namespace = "t:rq".into();
    let q: Queue<u64> = Queue::new(redis.clone(), cfg).expect("queue");
    let started = Instant::now();
    // Delayed first (1 ms: due by the time the worker starts), then the ready ones, four
    // producers at a time.
    let delayed: Vec<u64> = (READY..READY + DUE).collect();
    for chunk in delayed.chunks(1000) {
        let items: Vec<_> = chunk
            .iter()
            .map(|n| q.message(n).delay(Duration::from_millis(1)))
            .collect();
        q.send_batch(&items).await.expect("enqueue delayed");
    }
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let q = q.clone();
            tokio::spawn(async move {
                let mine: Vec<u64> = (p * READY / 4..(p + 1) * READY / 4).collect();
                for chunk in mine.chunks(1000) {
                    q.enqueue_batch(chunk).await.expect("enqueue");
                }
            })
        })
        .collect();
    for p in producers {
        p.await.expect("producer");
    }
    let filled = started.elapsed();
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.delayed), (READY, DUE), "{s:?}");

    // One claim promotes at most `promote_limit` due messages and returns at most what it
    // was asked for, whatever the backlog.
    let first = q.claim(10).await.expect("claim");
    assert_eq!(first.len(), 10);
    let s = q.stats().await.expect("stats");
    let limit = u64::from(q.config().promote_limit);
    assert_eq!(s.delayed, DUE - limit, "one claim promoted {limit}: {s:?}");
    let mut by_hand = 0;
    for d in first {
        by_hand += *d.message();
        d.ack().await.expect("ack");
    }

    let done = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let (counted, summed) = (done.clone(), sum.clone());
    let mut wcfg = WorkerConfig::default();
    wcfg.concurrency = 50;
    let drain = Instant::now();
    let watch = done.clone();
    let report = Worker::new(q.clone(), wcfg)
        .run(
            move |n: u64, _job| {
                let (counted, summed) = (counted.clone(), summed.clone());
                async move {
                    counted.fetch_add(1, Ordering::Relaxed);
                    summed.fetch_add(n, Ordering::Relaxed);
                    Ok::<_, String>(())
                }
            },
            async move {
                let deadline = Instant::now() + Duration::from_secs(600);
                while watch.load(Ordering::Relaxed) < READY + DUE - 10 && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        )
        .await
        .expect("worker");
    let drained = drain.elapsed();
    let total = READY + DUE;
    assert_eq!(done.load(Ordering::Relaxed), total - 10, "{report:?}");
    // Every message once: the count and the sum of all numbers but the 10 claimed by hand.
    let all: u64 = (0..total).sum();
    assert_eq!(sum.load(Ordering::Relaxed), all - by_hand);
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.ready, s.delayed, s.in_flight, s.dead, s.acked),
        (0, 0, 0, 0, total),
        "{s:?}"
    );
    eprintln!(
        "backlog: {READY} ready + {DUE} due enqueued in {filled:.1?}; drained at concurrency 50 in {drained:.1?} ({:.0}/s)",
        (total - 10) as f64 / drained.as_secs_f64()
    );
}
