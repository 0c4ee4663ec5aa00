//! rqueue beside raw list commands, in the same run and runtime: single and batch (100)
//! enqueue vs `LPUSH`; end to end (a producer enqueuing while a worker at concurrency 1 or 50
//! claims, runs no-op jobs and acknowledges) vs raw `LPUSH` + `RPOP` (which has no lease, no
//! retry, no priority: the floor, not a peer); claiming a batch of 10 from a deep queue and
//! acknowledging it with no flow control, with a rate limit and with a concurrency limit that
//! never bind (the price of the checks in the claim and ack scripts) vs raw `ZPOPMIN` of 10 +
//! `ZADD` of them (no lease, no ack: the floor), plus an interleaved section that prints the
//! three claims' medians and ratios; one ack with 100 vs 100,000 in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fred::prelude::*;
use futures::TryStreamExt;
use rqueue::{Delivery, Queue, QueueConfig, RateLimit, Worker, WorkerConfig};

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

/// Messages a claim bench takes (and acknowledges) per iteration.
const CLAIM_BATCH: usize = 10;
/// Ready messages each claim bench's queue keeps beneath what a sample takes: the queue is
/// topped up by what the sample will claim before it starts (untimed), so claims always find
/// a full batch at about this depth.
const CLAIM_DEPTH: u64 = 20_000;

/// Enqueues `n` messages in batches of 1000.
async fn fill(q: &Queue<u64>, n: u64) {
    let supply: Vec<u64> = (0..n).collect();
    for batch in supply.chunks(1000) {
        q.enqueue_batch(batch).await.expect("enqueue");
    }
}

/// Claims a full batch and acknowledges it (the acks at once).
async fn claim_ack(q: &Queue<u64>) {
    let batch = q.claim(CLAIM_BATCH).await.expect("claim");
    assert_eq!(batch.len(), CLAIM_BATCH, "the queue ran dry");
    futures::future::try_join_all(batch.into_iter().map(Delivery::ack))
        .await
        .expect("ack");
}

/// Rounds of the interleaved claim section (each claims once from every queue).
const CLAIM_ROUNDS: usize = 3000;

/// Claim a batch of 10 from a deep queue and acknowledge it (the 10 acks at once), plain and
/// under flow control that never binds, so the difference is the checks' own cost: the rate
/// limit's sliding log (trimmed and appended on every claim; at a 1 s window it holds the last
/// second's claims, tens of thousands here, far below its 1,000,000 bound) and the concurrency
/// limit's in-flight count (plus the wake-up an ack pushes under a concurrency limit while
/// messages wait). Beside them the raw floor: `ZPOPMIN` of 10 from a sorted set, then `ZADD`
/// of them back at its end (one round trip each, no lease, no payload, no ack). Then an
/// interleaved section alternates the three rqueue claims and prints medians and ratios.
/// Runs after the end-to-end group, which so runs as it did before this group existed.
fn claim(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let raw_key = "bench:rq:raw-claim";
    let plain = queue(&redis, "claim-plain");
    let rate = queue(&redis, "claim-rate");
    let conc = queue(&redis, "claim-conc");
    rt.block_on(async {
        rate.set_rate_limit(Some(
            RateLimit::new(RateLimit::MAX, Duration::from_secs(1)).expect("rate limit"),
        ))
        .await
        .expect("set_rate_limit");
        conc.set_concurrency_limit(Some(1_000_000))
            .await
            .expect("set_concurrency_limit");
        for q in [&plain, &rate, &conc] {
            fill(q, CLAIM_DEPTH).await;
        }
        let _: i64 = redis.pool().del(raw_key).await.expect("DEL");
        for start in (0..CLAIM_DEPTH).step_by(1000) {
            let members: Vec<(f64, String)> = (start..start + 1000)
                .map(|i| (i as f64, i.to_string()))
                .collect();
            let _: i64 = redis
                .pool()
                .zadd(raw_key, None, None, false, false, members)
                .await
                .expect("ZADD");
        }
    });
    let mut g = c.benchmark_group("queue/claim");
    g.measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    let next_score = AtomicU64::new(CLAIM_DEPTH);
    g.bench_function(
        format!("raw ZPOPMIN {CLAIM_BATCH} + ZADD {CLAIM_BATCH}"),
        |b| {
            b.to_async(&rt).iter(|| async {
                let popped: Vec<(String, f64)> = redis
                    .pool()
                    .zpopmin(raw_key, Some(CLAIM_BATCH))
                    .await
                    .expect("ZPOPMIN");
                assert_eq!(popped.len(), CLAIM_BATCH, "the raw set ran dry");
                let back: Vec<(f64, String)> = popped
                    .into_iter()
                    .map(|(m, _)| (next_score.fetch_add(1, Ordering::Relaxed) as f64, m))
                    .collect();
                let _: i64 = redis
                    .pool()
                    .zadd(raw_key, None, None, false, false, back)
                    .await
                    .expect("ZADD");
            })
        },
    );
    for (label, q) in [
        ("", &plain),
        (", rate limit 1,000,000 per 1 s (never binds)", &rate),
        (", concurrency limit 1,000,000 (never binds)", &conc),
    ] {
        g.bench_function(
            format!("rqueue claim({CLAIM_BATCH}) + {CLAIM_BATCH} acks{label}"),
            |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let q = q.clone();
                    async move {
                        fill(&q, iters * CLAIM_BATCH as u64).await;
                        let started = Instant::now();
                        for _ in 0..iters {
                            claim_ack(&q).await;
                        }
                        started.elapsed()
                    }
                })
            },
        );
    }
    g.finish();
    // Interleaved: criterion times the three one after the other while the machine's speed
    // drifts; here they alternate over the same seconds (median of one claim + acks each).
    let queues = [&plain, &rate, &conc];
    let mut times: [Vec<Duration>; 3] = Default::default();
    rt.block_on(async {
        for q in queues {
            fill(q, (CLAIM_ROUNDS * CLAIM_BATCH) as u64).await;
        }
        for round in 0..CLAIM_ROUNDS {
            for k in 0..3 {
                let which = (round + k) % 3;
                let started = Instant::now();
                claim_ack(queues[which]).await;
                if round >= CLAIM_ROUNDS / 10 {
                    times[which].push(started.elapsed());
                }
            }
        }
    });
    let [plain_t, rate_t, conc_t] = times.map(|mut t| {
        t.sort();
        t[t.len() / 2]
    });
    eprintln!(
        "queue/claim/interleaved: claim({CLAIM_BATCH}) + {CLAIM_BATCH} acks, plain {plain_t:?}, \
         rate limit {rate_t:?} ({:.3}x), concurrency limit {conc_t:?} ({:.3}x) (medians)",
        rate_t.as_secs_f64() / plain_t.as_secs_f64(),
        conc_t.as_secs_f64() / plain_t.as_secs_f64(),
    );
    // Leave no deep queues behind for the groups that follow.
    rt.block_on(async {
        let _: i64 = redis.pool().del(raw_key).await.expect("DEL");
        for q in [&plain, &rate, &conc] {
            let pattern = format!("bench:rq:{{{}}}:*", q.config().name);
            let pages: Vec<Vec<fred::types::Key>> = redis_conn::scan_keys(&redis, &pattern, 100)
                .try_collect()
                .await
                .expect("SCAN");
            for keys in pages.into_iter().filter(|k| !k.is_empty()) {
                let _: i64 = redis.pool().del(keys).await.expect("DEL");
            }
        }
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

criterion_group!(benches, enqueue, end_to_end, claim, ack_cost);
criterion_main!(benches);
