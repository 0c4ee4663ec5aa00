//! TLS vs plaintext in the same run: a raw `GET` and a cache hit (cache-core `get_or_set`
//! on a hot key) against a plaintext server and a TLS-only server (mutual TLS, certificates
//! from the harness's throwaway CA), at concurrency 1 and 50. Criterion times each; the
//! interleaved section alternates the four over the same seconds and prints medians and the
//! TLS / plaintext ratios (the machine's speed drifts between criterion's benches).

use std::time::Duration;

use cache_core::{Cache, CacheConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, Spec, TlsSpec, Topology};

use benches::{rounds, runtime, standalone_client};

struct Side {
    redis: RedisClient,
    cache: Cache,
    raw_key: String,
}

fn side(rt: &tokio::runtime::Runtime, redis: RedisClient) -> Side {
    let mut cfg = CacheConfig::new("bench:tls");
    cfg.xfetch_beta = 0.0;
    let cache = Cache::new(redis.clone(), cfg).expect("cache");
    rt.block_on(async {
        cache
            .set("hot", &"x".repeat(64), Some(Duration::from_secs(3600)))
            .await
            .expect("set");
    });
    let raw_key = cache.redis_key("hot");
    Side {
        redis,
        cache,
        raw_key,
    }
}

async fn raw_get(s: &Side) {
    let _: Option<Vec<u8>> = s.redis.pool().get(&s.raw_key).await.expect("GET");
}

async fn hot_hit(s: &Side) {
    let v: Option<String> = s
        .cache
        .get_or_set("hot", None, || async {
            Ok::<_, std::convert::Infallible>(None)
        })
        .await
        .expect("hit");
    assert!(v.is_some());
}

fn tls(c: &mut Criterion) {
    let rt = runtime();
    let (plain, _) = standalone_client(&rt);
    let topo = Topology::start(Spec::new(Kind::Standalone).tls(TlsSpec::mutual()))
        .unwrap_or_else(|e| panic!("{e}"));
    let secure = rt
        .block_on(RedisClient::connect(
            RedisConfig::from_url(&topo.url()).expect("url"),
        ))
        .expect("connect over TLS");
    let sides = [side(&rt, plain), side(&rt, secure)];
    let names = ["plaintext", "TLS"];

    for concurrency in [1usize, 50] {
        let mut g = c.benchmark_group(format!("tls/c{concurrency}"));
        g.measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        for (s, name) in sides.iter().zip(names) {
            g.bench_function(format!("GET, {name}"), |b| {
                b.to_async(&rt)
                    .iter_custom(|iters| rounds(iters, concurrency, |_| raw_get(s)))
            });
            g.bench_function(format!("cache hit, {name}"), |b| {
                b.to_async(&rt)
                    .iter_custom(|iters| rounds(iters, concurrency, |_| hot_hit(s)))
            });
        }
        g.finish();
    }

    for (concurrency, n) in [(1usize, 4000usize), (50, 1000)] {
        // [GET plain, GET TLS, hit plain, hit TLS]
        let mut times: [Vec<Duration>; 4] = Default::default();
        rt.block_on(async {
            for round in 0..n {
                for k in 0..4 {
                    let which = (round + k) % 4;
                    let s = &sides[which % 2];
                    let took = if which < 2 {
                        rounds(1, concurrency, |_| raw_get(s)).await
                    } else {
                        rounds(1, concurrency, |_| hot_hit(s)).await
                    };
                    if round >= n / 10 {
                        times[which].push(took);
                    }
                }
            }
        });
        let [get_plain, get_tls, hit_plain, hit_tls] = times.map(|mut t| {
            t.sort();
            t[t.len() / 2]
        });
        eprintln!(
            "tls/interleaved/c{concurrency}: GET plaintext {get_plain:?}, TLS {get_tls:?} ({:.2}x); \
             cache hit plaintext {hit_plain:?}, TLS {hit_tls:?} ({:.2}x) (median per round of {concurrency})",
            get_tls.as_secs_f64() / get_plain.as_secs_f64(),
            hit_tls.as_secs_f64() / hit_plain.as_secs_f64(),
        );
    }
    drop(topo);
}

criterion_group!(benches, tls);
criterion_main!(benches);
