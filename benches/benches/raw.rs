//! Raw fred baselines every redkit bench compares against, on a throwaway standalone server
//! (or `REDKIT_STANDALONE_URL`): GET, SET, 100 pipelined GETs, EVALSHA of a trivial script,
//! each at concurrency 1 and 50.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fred::prelude::*;
use redis_conn::Script;

static TRIVIAL: Script = Script::new("trivial", "return redis.call('GET', KEYS[1])");

use benches::{rounds, runtime, standalone_client};

fn raw(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let key = "bench:raw:key";
    rt.block_on(async {
        let _: () = redis
            .pool()
            .set(key, "x".repeat(64), None, None, false)
            .await
            .expect("SET");
        let _: Option<String> = TRIVIAL
            .run(redis.pool(), vec![key], ())
            .await
            .expect("load script");
    });

    for concurrency in [1usize, 50] {
        let mut g = c.benchmark_group(format!("raw/c{concurrency}"));
        g.measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_secs(1));
        g.bench_function("GET", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |_| async {
                    let _: Option<String> = redis.pool().get(key).await.expect("GET");
                })
            })
        });
        g.bench_function("SET", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |_| async {
                    let _: () = redis
                        .pool()
                        .set(key, "y".repeat(64), None, None, false)
                        .await
                        .expect("SET");
                })
            })
        });
        g.bench_function("pipelined GET x100", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |_| async {
                    let pipe = redis.next().pipeline();
                    for _ in 0..100 {
                        let _: () = pipe.get(key).await.expect("queue GET");
                    }
                    let _: Vec<Option<String>> = pipe.all().await.expect("pipeline");
                })
            })
        });
        g.bench_function("EVALSHA trivial (raw fred)", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |_| async {
                    let _: Option<String> = redis
                        .pool()
                        .evalsha(TRIVIAL.sha1(), vec![key], ())
                        .await
                        .expect("EVALSHA");
                })
            })
        });
        g.bench_function("Script::run trivial (redis-conn)", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |_| async {
                    let _: Option<String> = TRIVIAL
                        .run(redis.pool(), vec![key], ())
                        .await
                        .expect("script");
                })
            })
        });
        g.finish();
    }
    rt.block_on(redis.quit()).ok();
}

criterion_group!(benches, raw);
criterion_main!(benches);
