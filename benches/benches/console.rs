//! The console's overview with 1,000 queues (each holding a few ready, delayed and dead
//! messages), beside the least a page over 1,000 queues must read: one `HGETALL` of each
//! queue's stats hash, 64 at a time (the console also reads the depths and the last hour).
//! Three figures in one run: `Console::queues()` (every summary), `GET /` over HTTP (the
//! summaries rendered as HTML), and the raw reads.
//!
//! Before it runs, the registry entries of earlier runs of this bench are removed, so the
//! console lists exactly this run's 1,000 queues plus whatever else the server holds (the
//! bench prints the count); afterwards its keys and registry entries are removed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fred::prelude::*;
use futures::StreamExt;
use redis_conn::registry::REGISTRY_KEY;
use rqueue::{Queue, QueueConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use benches::{runtime, standalone_client};

const QUEUES: usize = 1000;
const NS: &str = "bench:console";

async fn forget_earlier_runs(redis: &redis_conn::RedisClient) {
    let fields: Vec<String> = redis
        .pool()
        .hkeys(REGISTRY_KEY)
        .await
        .expect("HKEYS registry");
    let ours: Vec<String> = fields
        .into_iter()
        .filter(|f| f.starts_with(&format!("queue|{NS}:")))
        .collect();
    for chunk in ours.chunks(500) {
        let _: i64 = redis
            .pool()
            .hdel(REGISTRY_KEY, chunk.to_vec())
            .await
            .expect("HDEL");
    }
}

async fn seed(redis: &redis_conn::RedisClient) -> Vec<Queue<u64>> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let queues: Vec<Queue<u64>> = (0..QUEUES)
        .map(|i| {
            let mut cfg = QueueConfig::new(format!("q{i:04}-{run}"));
            cfg.namespace = NS.into();
            cfg.max_attempts = 1;
            Queue::new(redis.clone(), cfg).expect("queue")
        })
        .collect();
    futures::stream::iter(queues.iter())
        .for_each_concurrent(64, |q| async move {
            q.enqueue_batch(&[1, 2, 3, 4, 5]).await.expect("enqueue");
            q.message(&6)
                .delay(Duration::from_secs(3600))
                .send()
                .await
                .expect("delayed");
            for d in q.claim(2).await.expect("claim") {
                d.dead("bench").await.expect("dead");
            }
        })
        .await;
    // Registration runs in the background: wait for all of them.
    let want = queues.len();
    for _ in 0..500 {
        let (all, _) =
            redis_conn::registry::registered(redis, Some(redis_conn::registry::Kind::Queue))
                .await
                .expect("registry");
        if all.iter().filter(|e| e.namespace == NS).count() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    queues
}

async fn cleanup(redis: &redis_conn::RedisClient, queues: &[Queue<u64>]) {
    forget_earlier_runs(redis).await;
    futures::stream::iter(queues.iter())
        .for_each_concurrent(64, |q| async move {
            let base = format!("{NS}:{{{}}}", q.config().name);
            let keys: Vec<String> = redis_conn::scan_keys(redis, &format!("{base}:*"), 100)
                .map(|page| page.unwrap_or_default())
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .flatten()
                .filter_map(|k| k.into_string())
                .collect();
            if !keys.is_empty() {
                let _: i64 = redis.pool().del(keys).await.unwrap_or(0);
            }
        })
        .await;
}

async fn get_page(addr: SocketAddr) -> usize {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    assert!(out.starts_with(b"HTTP/1.1 200"), "the overview answers 200");
    out.len()
}

fn overview(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    rt.block_on(forget_earlier_runs(&redis));
    let queues = rt.block_on(seed(&redis));
    let console = redkit_console::Console::new(redis.clone());
    let listed = rt.block_on(console.queues()).expect("queues").len();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = redkit_console::web::router(console.clone(), Default::default());
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let bytes = rt.block_on(get_page(addr));
    eprintln!("console overview: {listed} queues listed, page of {bytes} bytes");
    let stats_keys: Vec<String> = queues
        .iter()
        .map(|q| format!("{NS}:{{{}}}:stats", q.config().name))
        .collect();

    let mut g = c.benchmark_group("console/overview");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function(
        format!("raw HGETALL of {QUEUES} stats hashes, 64 at a time"),
        |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (redis, keys) = (redis.clone(), stats_keys.clone());
                async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        futures::stream::iter(keys.iter())
                            .for_each_concurrent(64, |k| {
                                let redis = redis.clone();
                                async move {
                                    let _: std::collections::HashMap<String, String> =
                                        redis.pool().hgetall(k).await.expect("HGETALL");
                                }
                            })
                            .await;
                    }
                    started.elapsed()
                }
            })
        },
    );
    g.bench_function(format!("Console::queues() over {listed} queues"), |b| {
        b.to_async(&rt).iter(|| {
            let console = console.clone();
            async move { console.queues().await.expect("queues").len() }
        })
    });
    g.bench_function(format!("GET / over HTTP, {listed} queues"), |b| {
        b.to_async(&rt).iter(|| get_page(addr))
    });
    g.finish();
    rt.block_on(cleanup(&redis, &queues));
}

criterion_group!(benches, overview);
criterion_main!(benches);
