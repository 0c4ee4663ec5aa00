//! cache-core beside the raw fred commands it is built from, in the same run and runtime:
//! cache hit vs GET (one hot key, and one key per concurrent call), a hit with shared stats on
//! vs off (interleaved, beside the raw GET), get_many(100) vs MGET, a 1,000-caller stampede vs the builder alone, and
//! the cost per call while Redis is dead and the breaker is open vs the builder alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache_core::{BreakerState, Cache, CacheConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};

use benches::{rounds, runtime, standalone_client};

fn hits(c: &mut Criterion) {
    let rt = runtime();
    let (redis, url) = standalone_client(&rt);
    let mut cfg = CacheConfig::new("bench:cache");
    cfg.xfetch_beta = 0.0;
    let cache = Cache::new(redis.clone(), cfg).expect("cache");
    let value = "x".repeat(64);
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    rt.block_on(async {
        cache
            .set("hot", &value, Some(Duration::from_secs(3600)))
            .await
            .expect("set");
        for k in &keys {
            cache
                .set(k, &value, Some(Duration::from_secs(3600)))
                .await
                .expect("set");
        }
    });
    let raw_key = cache.redis_key("hot");
    let full_keys: Vec<String> = keys.iter().map(|k| cache.redis_key(k)).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();

    for concurrency in [1usize, 50] {
        let mut g = c.benchmark_group(format!("cache/c{concurrency}"));
        g.measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_secs(1));
        g.bench_function("raw GET", |b| {
            b.to_async(&rt)
                .iter_custom(|iters| rounds(iters, concurrency, |_| raw_get(&redis, &raw_key)))
        });
        g.bench_function("cache hit (get_or_set)", |b| {
            b.to_async(&rt)
                .iter_custom(|iters| rounds(iters, concurrency, |_| hot_hit(&cache)))
        });
        // The same with every concurrent call on its own key: no two calls of a round can share
        // a lookup, so this is the cache's own cost per call.
        g.bench_function("raw GET, distinct keys", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |i| {
                    let (key, redis) = (&full_keys[i % full_keys.len()], &redis);
                    async move {
                        let _: Option<Vec<u8>> = redis.pool().get(key).await.expect("GET");
                    }
                })
            })
        });
        g.bench_function("cache hit (get_or_set), distinct keys", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |i| {
                    let key = key_refs[i % key_refs.len()];
                    let cache = &cache;
                    async move {
                        let v: Option<String> = cache
                            .get_or_set(key, None, || async {
                                Ok::<_, std::convert::Infallible>(None)
                            })
                            .await
                            .expect("hit");
                        assert!(v.is_some());
                    }
                })
            })
        });
        g.bench_function("raw MGET x100", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |_| async {
                    let _: Vec<Option<Vec<u8>>> =
                        redis.pool().mget(full_keys.clone()).await.expect("MGET");
                })
            })
        });
        g.bench_function("get_many x100", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                rounds(iters, concurrency, |_| async {
                    let _ = cache.get_many::<String>(&key_refs).await.expect("get_many");
                })
            })
        });
        g.finish();
    }

    // The machine's speed drifts between criterion's benches: the hit and the raw GET,
    // interleaved (alternating order) over the same seconds, give the steadier ratio.
    if criterion_filter_matches("cache/interleaved") {
        for (concurrency, n) in [(1usize, 6000usize), (50, 1500)] {
            let mut times: [Vec<Duration>; 2] = Default::default();
            rt.block_on(async {
                for round in 0..n {
                    for k in 0..2 {
                        let which = (round + k) % 2;
                        let took = if which == 0 {
                            rounds(1, concurrency, |_| raw_get(&redis, &raw_key)).await
                        } else {
                            rounds(1, concurrency, |_| hot_hit(&cache)).await
                        };
                        if round >= n / 10 {
                            times[which].push(took);
                        }
                    }
                }
            });
            let [raw, hit] = times.map(|mut t| {
                t.sort();
                t[t.len() / 2]
            });
            eprintln!(
                "cache/interleaved/c{concurrency}: raw GET {raw:?}, cache hit {hit:?} (median per round of {concurrency}; hit = {:.2}x raw's time)",
                hit.as_secs_f64() / raw.as_secs_f64()
            );
        }
    }

    // Shared stats (a background flush per second) against none: the hit path is the same
    // atomics either way; interleaved with the raw GET over the same seconds.
    if criterion_filter_matches("cache/shared-stats") {
        let mut off_cfg = CacheConfig::new("bench:cache");
        off_cfg.xfetch_beta = 0.0;
        off_cfg.shared_stats = None;
        let mut on_cfg = off_cfg.clone();
        on_cfg.shared_stats = Some(Duration::from_secs(1));
        let (off, on) = rt.block_on(async {
            (
                Cache::new(redis.clone(), off_cfg).expect("cache"),
                Cache::new(redis.clone(), on_cfg).expect("cache"),
            )
        });
        for (concurrency, n) in [(1usize, 6000usize), (50, 1500)] {
            let mut times: [Vec<Duration>; 3] = Default::default();
            rt.block_on(async {
                for round in 0..n {
                    for k in 0..3 {
                        let which = (round + k) % 3;
                        let took = match which {
                            0 => rounds(1, concurrency, |_| raw_get(&redis, &raw_key)).await,
                            1 => rounds(1, concurrency, |_| hot_hit(&off)).await,
                            _ => rounds(1, concurrency, |_| hot_hit(&on)).await,
                        };
                        if round >= n / 10 {
                            times[which].push(took);
                        }
                    }
                }
            });
            let [raw, off_t, on_t] = times.map(|mut t| {
                t.sort();
                t[t.len() / 2]
            });
            eprintln!(
                "cache/shared-stats/c{concurrency}: raw GET {raw:?}, hit shared_stats=None {off_t:?}, hit shared_stats=1s {on_t:?} (medians per round of {concurrency}; on/off = {:.3}, on/raw = {:.2}x)",
                on_t.as_secs_f64() / off_t.as_secs_f64(),
                on_t.as_secs_f64() / raw.as_secs_f64()
            );
        }
        assert!(on.stats().hits > 0 && off.stats().hits > 0);
    }

    // Stampede: 1,000 callers over 4 independent clients on a fresh key, 20 ms builder.
    let clients: Vec<Cache> = (0..4)
        .map(|_| {
            let r = rt
                .block_on(RedisClient::connect(
                    RedisConfig::from_url(url).expect("url"),
                ))
                .expect("connect");
            Cache::new(r, CacheConfig::new("bench:stampede")).expect("cache")
        })
        .collect();
    let round = AtomicUsize::new(0);
    let mut g = c.benchmark_group("stampede");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    g.bench_function("builder alone (20 ms)", |b| {
        b.to_async(&rt)
            .iter(|| tokio::time::sleep(Duration::from_millis(20)))
    });
    g.bench_function("1000 callers x 4 clients, slowest caller", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let clients = &clients;
            let round = &round;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let key = format!("r{}", round.fetch_add(1, Ordering::Relaxed));
                    let builds = Arc::new(AtomicUsize::new(0));
                    let start = Instant::now();
                    futures::future::join_all((0..1000).map(|i| {
                        let (cache, key, builds) = (&clients[i % 4], &key, builds.clone());
                        async move {
                            let _: Option<u32> = cache
                                .get_or_set(key, Some(Duration::from_secs(60)), || async move {
                                    builds.fetch_add(1, Ordering::SeqCst);
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    Ok::<_, std::convert::Infallible>(Some(1))
                                })
                                .await
                                .expect("value");
                        }
                    }))
                    .await;
                    total += start.elapsed();
                    assert_eq!(builds.load(Ordering::SeqCst), 1);
                }
                total
            }
        })
    });
    g.finish();
    rt.block_on(async {
        let _ = cache.invalidate_pattern("*").await;
        let _ = clients[0].invalidate_pattern("*").await;
    });
}

fn breaker_open(c: &mut Criterion) {
    let rt = runtime();
    let topo = testkit::Topology::start(testkit::Spec::new(testkit::Kind::Standalone))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut rcfg = RedisConfig::from_url(&topo.url()).expect("url");
    rcfg.command_timeout = Duration::from_millis(200);
    let redis = rt.block_on(RedisClient::connect(rcfg)).expect("connect");
    let mut cfg = CacheConfig::new("bench:dead");
    cfg.breaker_failures = 1;
    cfg.breaker_open_for = Duration::from_secs(3600);
    let cache = Cache::new(redis, cfg).expect("cache");
    topo.kill(&topo.nodes()[0]).expect("kill -9");
    rt.block_on(async {
        let _: Option<u32> = cache
            .get_or_set("k", None, || async {
                Ok::<_, std::convert::Infallible>(Some(1))
            })
            .await
            .expect("built");
    });
    assert_eq!(cache.breaker_state(), BreakerState::Open);
    let mut g = c.benchmark_group("redis-down");
    g.bench_function("builder alone", |b| {
        b.to_async(&rt)
            .iter(|| async { Ok::<_, std::convert::Infallible>(Some(1u32)) })
    });
    g.bench_function("get_or_set, breaker open", |b| {
        b.to_async(&rt).iter(|| async {
            let _: Option<u32> = cache
                .get_or_set("k", None, || async {
                    Ok::<_, std::convert::Infallible>(Some(1))
                })
                .await
                .expect("built");
        })
    });
    g.finish();
}

fn near_hits(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (redis, _) = standalone_client(&rt);
    let mut cfg = CacheConfig::new("bench:near");
    cfg.near = Some(cache_core::NearConfig::new(
        10_000,
        Duration::from_secs(3600),
    ));
    let cache = Cache::new(redis, cfg).expect("cache");
    let build = || async { Ok::<_, std::convert::Infallible>(Some("x".repeat(64))) };
    rt.block_on(async {
        // Build, let our own write's invalidation pass, then read it into the L1.
        let _: Option<String> = cache
            .get_or_set("hot", Some(Duration::from_secs(3600)), build)
            .await
            .expect("value");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _: Option<String> = cache
            .get_or_set("hot", Some(Duration::from_secs(3600)), build)
            .await
            .expect("value");
    });
    let before = cache.stats().l1_hits;
    let mut ran = false;
    let mut g = c.benchmark_group("near");
    g.bench_function("L1 hit (get_or_set, one core)", |b| {
        ran = true;
        b.to_async(&rt).iter(|| async {
            let v: Option<String> = cache.get_or_set("hot", None, build).await.expect("value");
            std::hint::black_box(v);
        })
    });
    g.finish();
    let s = cache.stats();
    assert!(
        !ran || (s.l1_hits > before && s.hits == 1),
        "the bench measured L1 hits: {s:?}"
    );
}

criterion_group!(benches, hits, breaker_open, near_hits);
criterion_main!(benches);

/// One `GET` of the hot key's full Redis name.
async fn raw_get(redis: &RedisClient, key: &str) {
    let _: Option<Vec<u8>> = redis.pool().get(key).await.expect("GET");
}

/// One cache hit on the hot key.
async fn hot_hit(cache: &Cache) {
    let v: Option<String> = cache
        .get_or_set("hot", None, || async {
            Ok::<_, std::convert::Infallible>(None)
        })
        .await
        .expect("hit");
    assert!(v.is_some());
}

/// Whether criterion's name filter (the first free argument) lets `group` run.
fn criterion_filter_matches(group: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_none_or(|f| group.contains(&f) || f.contains(group))
}
