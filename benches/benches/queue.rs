//! rqueue beside raw list commands, in the same run and runtime: single and batch (100)
//! enqueue vs `LPUSH`; a worker draining 2,000 no-op messages at concurrency 1 and 50 vs raw
//! `LPUSH` + `RPOP` (which has no lease, no retry, no priority: the floor, not a peer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fred::prelude::*;
use rqueue::{Queue, QueueConfig, Worker, WorkerConfig};

use benches::{rounds, runtime, standalone_client};

fn queue(redis: &redis_conn::RedisClient, name: &str) -> Queue<u64> {
    let mut cfg = QueueConfig::new(format!("{name}-{:x}", fastrand_id()));
    cfg.namespace = "bench:rq".into();
    Queue::new(redis.clone(), cfg).expect("queue")
}

fn fastrand_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn enqueue(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let q = queue(&redis, "enqueue");
    let batch: Vec<u64> = (0..100).collect();
    let mut g = c.benchmark_group("queue/enqueue");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("raw LPUSH", |b| {
        b.to_async(&rt).iter(|| async {
            let _: i64 = redis
                .pool()
                .lpush("bench:rq:raw", 7u64)
                .await
                .expect("LPUSH");
        })
    });
    g.bench_function("rqueue enqueue", |b| {
        b.to_async(&rt)
            .iter(|| async { q.enqueue(&7).await.expect("enqueue") })
    });
    g.bench_function("raw LPUSH of 100 values", |b| {
        b.to_async(&rt).iter(|| async {
            let _: i64 = redis
                .pool()
                .lpush("bench:rq:raw", batch.clone())
                .await
                .expect("LPUSH");
        })
    });
    g.bench_function("rqueue enqueue_batch(100)", |b| {
        b.to_async(&rt)
            .iter(|| async { q.enqueue_batch(&batch).await.expect("enqueue") })
    });
    g.finish();
    rt.block_on(async {
        let _: i64 = redis.pool().del("bench:rq:raw").await.expect("DEL");
    });
}

/// Messages per drain.
const DRAIN: u64 = 2000;

fn end_to_end(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let mut g = c.benchmark_group("queue/end-to-end");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for concurrency in [1usize, 50] {
        let q = queue(&redis, &format!("e2e{concurrency}"));
        g.bench_function(
            format!("rqueue worker c{concurrency}: drain {DRAIN} no-op messages"),
            |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let q = q.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let batch: Vec<u64> = (0..100).collect();
                            for _ in 0..DRAIN / 100 {
                                q.enqueue_batch(&batch).await.expect("enqueue");
                            }
                            let done = Arc::new(AtomicU64::new(0));
                            let counted = done.clone();
                            let mut cfg = WorkerConfig::default();
                            cfg.concurrency = concurrency;
                            let started = Instant::now();
                            Worker::new(q.clone(), cfg)
                                .run(
                                    move |_n: u64, _job| {
                                        let counted = counted.clone();
                                        async move {
                                            counted.fetch_add(1, Ordering::Relaxed);
                                            Ok::<_, String>(())
                                        }
                                    },
                                    async move {
                                        while done.load(Ordering::Relaxed) < DRAIN {
                                            tokio::time::sleep(Duration::from_micros(200)).await;
                                        }
                                    },
                                )
                                .await
                                .expect("worker");
                            total += started.elapsed();
                        }
                        total
                    }
                })
            },
        );
        g.bench_function(
            format!("raw LPUSH + RPOP c{concurrency}: {DRAIN} messages"),
            |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let redis = redis.clone();
                    async move {
                        let per_task = DRAIN / concurrency as u64;
                        let started = Instant::now();
                        let redis = &redis;
                        let _ = rounds(iters, concurrency, |_| async move {
                            for i in 0..per_task {
                                let _: i64 = redis
                                    .pool()
                                    .lpush("bench:rq:raw-e2e", i)
                                    .await
                                    .expect("LPUSH");
                                let _: Option<u64> = redis
                                    .pool()
                                    .rpop("bench:rq:raw-e2e", None)
                                    .await
                                    .expect("RPOP");
                            }
                        })
                        .await;
                        started.elapsed()
                    }
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, enqueue, end_to_end);
criterion_main!(benches);
