//! rqueue beside raw list commands, in the same run and runtime: single and batch (100)
//! enqueue vs `LPUSH`; end to end (a producer enqueuing while a worker at concurrency 1 or 50
//! claims, runs no-op jobs and acknowledges) vs raw `LPUSH` + `RPOP` (which has no lease, no
//! retry, no priority: the floor, not a peer); one ack with 100 vs 100,000 in flight.

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

/// Messages per end-to-end run.
const DRAIN: u64 = 5000;

fn end_to_end(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let mut g = c.benchmark_group("queue/end-to-end");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for concurrency in [1usize, 50] {
        let q = queue(&redis, &format!("e2e{concurrency}"));
        // Timed from the first enqueue to the last message handled: a producer enqueues in
        // batches of 100 while the worker (default settings but the concurrency) claims,
        // runs no-op jobs and acknowledges.
        g.bench_function(
            format!("rqueue enqueue_batch(100) + worker c{concurrency}: {DRAIN} no-op messages"),
            |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let q = q.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let done = Arc::new(AtomicU64::new(0));
                            let counted = done.clone();
                            let mut cfg = WorkerConfig::default();
                            cfg.concurrency = concurrency;
                            let started = Instant::now();
                            let producer = {
                                let q = q.clone();
                                tokio::spawn(async move {
                                    let batch: Vec<u64> = (0..100).collect();
                                    for _ in 0..DRAIN / 100 {
                                        q.enqueue_batch(&batch).await.expect("enqueue");
                                    }
                                })
                            };
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
                            producer.await.expect("producer");
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

/// One ack (token check, removal of the message and its lease) with 100 and with 100,000
/// other deliveries in flight: the in-flight set is a sorted set, so the cost should barely
/// move (the Python original's ack took 0.27 ms at 100 and 39 ms at 10,000).
fn ack_cost(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let mut g = c.benchmark_group("queue/ack");
    g.measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for in_flight in [100u64, 100_000] {
        let q = queue(&redis, &format!("ack{in_flight}"));
        rt.block_on(async {
            // The deliveries left in flight, then a supply to claim one at a time.
            let all: Vec<u64> = (0..1000).collect();
            for _ in 0..in_flight / 1000 {
                q.enqueue_batch(&all).await.expect("enqueue");
            }
            q.enqueue_batch(&all[..(in_flight % 1000) as usize])
                .await
                .expect("enqueue");
            let mut held = 0;
            while held < in_flight {
                let got = q.claim(1000).await.expect("claim");
                held += got.len() as u64;
                // Dropped without an ack: they stay in flight (the lease is 30 s).
            }
            for _ in 0..200 {
                q.enqueue_batch(&all).await.expect("enqueue");
            }
        });
        g.bench_function(format!("ack with {in_flight} in flight"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let q = q.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let d = q.claim(1).await.expect("claim").pop().expect("a message");
                        let started = Instant::now();
                        d.ack().await.expect("ack");
                        total += started.elapsed();
                    }
                    total
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, enqueue, end_to_end, ack_cost);
criterion_main!(benches);
