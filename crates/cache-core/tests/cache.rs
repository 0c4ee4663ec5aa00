//! cache-core on real servers: every topology for the core paths, own servers for faults.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_core::{BloomFilter, BuildError, Cache, CacheConfig, Codec, Lookup, NearConfig};
use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology};

async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    (connect_as_suite(topo).await, topo)
}

/// The suite's least-privilege rule: the documented rules for every test namespace
/// (`t:cache:<test>:...`), with the near cache and Bloom filters. On a secure shared topology
/// (`REDKIT_SECURE=1`) every client of the suite runs as a user with exactly this rule.
fn suite_rule() -> String {
    let mut cfg = CacheConfig::new("t:cache:*");
    cfg.near = Some(NearConfig::new(1, Duration::from_secs(1)));
    cache_core::acl_rule(&cfg)
        .merge(&cache_core::bloom_acl_rule("t:cache:*"))
        .to_string()
}

/// A new client of the shared topology, as the suite's user (see [`suite_rule`]).
async fn connect_as_suite(t: &SharedTopology) -> RedisClient {
    // One user per test process: testkit gives a user a password derived from the process
    // id and resets it on each creation, so processes sharing one user name (nextest runs
    // each test in its own) would lock each other out.
    let user = format!("cache-core-suite-{}", std::process::id());
    let url = t
        .url_for(&user, &suite_rule())
        .unwrap_or_else(|e| panic!("suite user: {e}"));
    RedisClient::connect(RedisConfig::from_url(&url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect as the suite user ({}): {e}", t.kind))
}

fn namespace(test: &str) -> String {
    testkit::unique_name(&format!("t:cache:{test}"))
}

fn cache(redis: &RedisClient, test: &str, codec: Codec) -> Cache {
    let mut cfg = CacheConfig::new(namespace(test));
    cfg.codec = codec;
    Cache::new(redis.clone(), cfg).expect("valid config")
}

testkit::topology_tests!(
    builds_once_then_serves_hits,
    a_thousand_concurrent_misses_share_one_build,
    missing_ids_are_built_once_per_null_ttl,
    ttls_are_spread_by_jitter,
    undecodable_entries_are_rebuilt_and_counted,
    builder_errors_reach_every_waiter_and_are_not_cached,
    pattern_invalidation_removes_matching_keys_on_every_primary,
    a_thousand_callers_on_four_clients_share_one_build,
    a_builder_that_died_holding_the_lease_is_taken_over_after_the_lease,
    bloom_false_positive_rate_is_within_one_and_a_half_times_the_target,
    bloom_filtered_lookups_reach_the_builder_only_for_false_positives,
    a_bloom_filter_reopened_with_other_parameters_is_refused,
    batch_get_and_set_span_every_slot,
    wrapped_functions_are_cached_per_argument_value,
    tag_invalidation_removes_every_tagged_entry,
    stale_values_are_served_while_one_caller_refreshes,
    xfetch_refreshes_a_hot_key_before_it_expires,
    a_failed_refresh_keeps_serving_the_stale_value,
    near_cache_entries_are_invalidated_by_another_clients_write,
    background_refresh_never_makes_a_reader_wait,
    concurrent_hits_share_one_read,
    a_write_is_seen_by_the_next_call_while_a_lookup_is_in_flight,
    a_cancelled_leader_gives_its_lease_back_at_once,
    a_panicking_leader_gives_its_lease_back_and_its_waiters_a_typed_error,
    a_hung_leader_holds_no_waiter_past_max_wait,
    a_panicking_background_refresh_gives_its_lease_back,
    lookups_aborted_at_any_moment_leave_no_lease_behind,
    waiters_of_a_hung_build_share_one_successor,
);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Product {
    id: u32,
    name: String,
    price_cents: u64,
}

async fn builds_once_then_serves_hits(redis: RedisClient, _t: &SharedTopology) {
    for codec in [Codec::Json, Codec::MessagePack] {
        let cache = cache(&redis, "once", codec);
        let builds = AtomicUsize::new(0);
        for _ in 0..5 {
            let p: Option<Product> = cache
                .get_or_set("p1", None, || async {
                    builds.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::convert::Infallible>(Some(Product {
                        id: 1,
                        name: "teapot".into(),
                        price_cents: 1999,
                    }))
                })
                .await
                .expect("value");
            assert_eq!(p.map(|p| p.price_cents), Some(1999));
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "{codec:?}");
        assert!(matches!(
            cache.get::<Product>("p1").await.expect("get"),
            Lookup::Hit(_)
        ));
        let s = cache.stats();
        assert_eq!((s.builds, s.hits), (1, 5), "{s:?}");
    }
}

async fn a_thousand_concurrent_misses_share_one_build(redis: RedisClient, _t: &SharedTopology) {
    let cache = cache(&redis, "stampede", Codec::Json);
    let builds = Arc::new(AtomicUsize::new(0));
    let calls = (0..1000).map(|_| {
        let (cache, builds) = (cache.clone(), builds.clone());
        tokio::spawn(async move {
            cache
                .get_or_set("cold", None, || async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, std::convert::Infallible>(Some("built".to_string()))
                })
                .await
                .expect("value")
        })
    });
    let values = futures::future::join_all(calls).await;
    assert!(
        values
            .iter()
            .all(|v| v.as_ref().expect("task").as_deref() == Some("built"))
    );
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    eprintln!("stampede (one process): {:?}", cache.stats());
}

async fn concurrent_hits_share_one_read(redis: RedisClient, _t: &SharedTopology) {
    let cache = cache(&redis, "read-coalescing", Codec::Json);
    cache.set("hot", &7u32, None).await.expect("set");
    let mut calls: Vec<_> = (0..200)
        .map(|_| {
            Box::pin(futures::future::maybe_done(cache.get_or_set(
                "hot",
                None,
                || async { Ok::<_, std::convert::Infallible>(Some(0u32)) },
            )))
        })
        .collect();
    // Start every call before any can finish: `join_all` polls a large set in batches and
    // yields between them, and tokio's cooperative budget makes later first polls return early,
    // so on a loaded machine the first read could complete before the last calls started (and
    // those would rightly read again).
    tokio::task::unconstrained(async {
        for call in calls.iter_mut() {
            let _ = futures::poll!(call.as_mut());
        }
        futures::future::join_all(calls.iter_mut().map(|c| c.as_mut())).await;
    })
    .await;
    let values: Vec<_> = calls
        .iter_mut()
        .filter_map(|c| c.as_mut().take_output())
        .collect();
    assert_eq!(values.len(), 200);
    assert!(values.iter().all(|v| matches!(v, Ok(Some(7)))));
    let s = cache.stats();
    assert_eq!(s.hits + s.coalesced, 200, "{s:?}");
    // One read in practice; a CPU-starved run (two busy loops beside the suite) saw up to 9.
    // Without sharing it would be 200.
    assert!(
        s.hits <= 20,
        "200 concurrent hits on one key share their GETs: {s:?}"
    );
    assert_eq!(s.builds, 0, "{s:?}");
}

/// A lookup in flight (here: a slow build) is not shared with calls made after a write through
/// the same cache: they see the write at once.
async fn a_write_is_seen_by_the_next_call_while_a_lookup_is_in_flight(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let cache = cache(&redis, "read-your-writes", Codec::Json);
    let slow = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set("k", None, || async {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    Ok::<_, std::convert::Infallible>(Some(1u32))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    cache.set("k", &2u32, None).await.expect("set");
    let start = std::time::Instant::now();
    let v = cache
        .get_or_set("k", None, || async {
            Ok::<_, std::convert::Infallible>(Some(3u32))
        })
        .await
        .expect("value");
    assert_eq!(v, Some(2), "the call after the write sees the write");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "it did not wait for the build that started before the write ({:?})",
        start.elapsed()
    );
    assert_eq!(slow.await.expect("task").expect("built"), Some(1));
}

async fn missing_ids_are_built_once_per_null_ttl(redis: RedisClient, _t: &SharedTopology) {
    let cache = cache(&redis, "penetration", Codec::Json);
    let builds = Arc::new(AtomicUsize::new(0));
    for round in 0..100 {
        let lookups = (0..100).map(|id| {
            let (cache, builds) = (cache.clone(), builds.clone());
            async move {
                let v: Option<Product> = cache
                    .get_or_set(&format!("missing:{id}"), None, || async move {
                        builds.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(None)
                    })
                    .await
                    .expect("lookup");
                assert_eq!(v, None, "round {round}");
            }
        });
        futures::future::join_all(lookups).await;
    }
    assert_eq!(
        builds.load(Ordering::SeqCst),
        100,
        "10,000 lookups over 100 missing ids"
    );
    assert_eq!(
        cache.get::<Product>("missing:7").await.expect("get"),
        Lookup::NotFound
    );
}

async fn ttls_are_spread_by_jitter(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = CacheConfig::new(namespace("jitter"));
    cfg.jitter = 0.15;
    let cache = Cache::new(redis.clone(), cfg).expect("config");
    let ttl = Duration::from_secs(600);
    // TTLs shrink while we write and read them back: allow for the time that took.
    let started = std::time::Instant::now();
    for chunk in (0..10_000).collect::<Vec<_>>().chunks(500) {
        futures::future::join_all(chunk.iter().map(|i| {
            let cache = &cache;
            async move { cache.set(&format!("k{i}"), i, Some(ttl)).await }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("SET");
    }
    let mut ttls = Vec::with_capacity(10_000);
    for chunk in (0..10_000).collect::<Vec<_>>().chunks(500) {
        let got = futures::future::join_all(chunk.iter().map(|i| {
            redis
                .pool()
                .pttl::<i64, _>(cache.redis_key(&format!("k{i}")))
        }))
        .await;
        ttls.extend(got.into_iter().map(|r| r.expect("PTTL")));
    }
    let (min, max) = (
        *ttls.iter().min().expect("ttls"),
        *ttls.iter().max().expect("ttls"),
    );
    assert!(
        min <= 540_000 && max >= 659_000,
        "TTLs span {min}..{max} ms, want beyond ±10% of 600 s"
    );
    let elapsed = i64::try_from(started.elapsed().as_millis()).expect("ms");
    assert!(
        min >= 510_000 - elapsed - 10 && max <= 690_000,
        "TTLs stay within ±15%: {min}..{max} ({elapsed} ms to write and read them)"
    );
    cache.invalidate_pattern("k*").await.expect("cleanup");
}

async fn undecodable_entries_are_rebuilt_and_counted(redis: RedisClient, _t: &SharedTopology) {
    let cache = cache(&redis, "garbage", Codec::MessagePack);
    let _: () = redis
        .pool()
        .set(cache.redis_key("g"), "{not an envelope}", None, None, false)
        .await
        .expect("SET");
    let v: Option<u32> = cache
        .get_or_set("g", None, || async {
            Ok::<_, std::convert::Infallible>(Some(7))
        })
        .await
        .expect("rebuilt");
    assert_eq!(v, Some(7));
    assert_eq!(cache.stats().decode_errors, 1);
    assert_eq!(cache.get::<u32>("g").await.expect("get"), Lookup::Hit(7));
    // A value of another type under the key is a miss for this type, not a crash.
    assert_eq!(cache.get::<Product>("g").await.expect("get"), Lookup::Miss);
}

#[derive(Debug, PartialEq)]
struct DbDown;

async fn builder_errors_reach_every_waiter_and_are_not_cached(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let cache = cache(&redis, "errors", Codec::Json);
    let calls = (0..20).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set::<String, _, _, _>("e", None, || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(DbDown)
                })
                .await
        })
    });
    for r in futures::future::join_all(calls).await {
        match r.expect("task") {
            Err(BuildError::Builder(e)) => assert_eq!(*e, DbDown),
            other => panic!("expected the builder's error, got {other:?}"),
        }
    }
    assert_eq!(cache.stats().build_errors, 1);
    assert_eq!(
        cache.get::<String>("e").await.expect("get"),
        Lookup::Miss,
        "errors are not cached"
    );
}

async fn pattern_invalidation_removes_matching_keys_on_every_primary(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let cache = cache(&redis, "pattern", Codec::Json);
    for i in 0..200 {
        cache
            .set(&format!("user:{i}:profile"), &i, None)
            .await
            .expect("set");
        cache
            .set(&format!("order:{i}"), &i, None)
            .await
            .expect("set");
    }
    if t.kind == Kind::Cluster {
        let state = redis.next().cached_cluster_state().expect("slot map");
        let owners: HashSet<String> = (0..200)
            .filter_map(|i| {
                state.get_server(redis_conn::keys::slot(
                    cache.redis_key(&format!("user:{i}:profile")).as_bytes(),
                ))
            })
            .map(|s| s.to_string())
            .collect();
        assert_eq!(owners.len(), 3, "matching keys live on every primary");
    }
    assert_eq!(
        cache
            .invalidate_pattern("user:*")
            .await
            .expect("invalidate"),
        200
    );
    for i in 0..200 {
        assert_eq!(
            cache
                .get::<i32>(&format!("user:{i}:profile"))
                .await
                .expect("get"),
            Lookup::Miss
        );
    }
    assert_eq!(
        cache.get::<i32>("order:5").await.expect("get"),
        Lookup::Hit(5),
        "non-matching keys stay"
    );
}

/// Redis killed mid-run: callers keep getting built values; once it is back, caching resumes
/// without restarting anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_still_serves_built_values_and_caching_resumes() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Standalone).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = RedisConfig::from_url(&topo.url()).expect("url");
    cfg.command_timeout = Duration::from_millis(300);
    let redis = RedisClient::connect(cfg).await.expect("connect");
    let mut cfg = CacheConfig::new(namespace("dead"));
    cfg.breaker_failures = 3;
    cfg.breaker_open_for = Duration::from_millis(500);
    let cache = Cache::new(redis.clone(), cfg).expect("config");
    let build = |v: u32| move || async move { Ok::<_, std::convert::Infallible>(Some(v)) };
    assert_eq!(
        cache.get_or_set("k", None, build(1)).await.expect("cached"),
        Some(1)
    );

    let node = &topo.nodes()[0];
    tokio::task::block_in_place(|| topo.kill(node)).expect("kill -9");
    // Until the breaker opens, each call pays the 300 ms command timeout...
    for i in 0..3 {
        let v = cache
            .get_or_set("other", None, build(10 + i))
            .await
            .expect("built despite Redis being down");
        assert_eq!(v, Some(10 + i), "no cache: every call builds");
    }
    assert_eq!(
        cache.breaker_state(),
        cache_core::BreakerState::Open,
        "{:?}",
        cache.stats()
    );
    // ...then calls skip Redis at once.
    let mut lat = Vec::new();
    for i in 0..200 {
        let t = std::time::Instant::now();
        let v = cache
            .get_or_set("other", None, build(100 + i))
            .await
            .expect("built");
        lat.push(t.elapsed());
        assert_eq!(v, Some(100 + i));
    }
    lat.sort();
    eprintln!(
        "breaker open: per-call p50 {:?}, p99 {:?}, max {:?}; {:?}",
        lat[100],
        lat[198],
        lat[199],
        cache.stats()
    );
    assert!(
        lat[198] < Duration::from_millis(50),
        "an open breaker must not cost a timeout per call: p99 {:?}",
        lat[198]
    );
    assert!(cache.stats().short_circuited >= 150);

    tokio::task::block_in_place(|| topo.restart(node)).expect("restart");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let _ = cache
            .get_or_set("after", None, build(99))
            .await
            .expect("value");
        if cache.get::<u32>("after").await.ok() == Some(Lookup::Hit(99)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "caching did not resume: {:?}",
            cache.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stampede bar: 1,000 concurrent calls spread over 4 independent clients (separate
/// connections, separate caches, as in 4 processes) on a cold key with a 100 ms builder.
async fn a_thousand_callers_on_four_clients_share_one_build(
    _redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("stampede4");
    let mut caches = Vec::new();
    for _ in 0..4 {
        let redis = connect_as_suite(t).await;
        caches.push(Cache::new(redis, CacheConfig::new(ns.clone())).expect("cache"));
    }
    let builds = Arc::new(AtomicUsize::new(0));
    let start = std::time::Instant::now();
    let calls = (0..1000).map(|i| {
        let (cache, builds) = (caches[i % 4].clone(), builds.clone());
        tokio::spawn(async move {
            let v = cache
                .get_or_set("cold", None, || async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, std::convert::Infallible>(Some(42u64))
                })
                .await
                .expect("value");
            (v, start.elapsed())
        })
    });
    let mut waits = Vec::new();
    for r in futures::future::join_all(calls).await {
        let (v, waited) = r.expect("task");
        assert_eq!(v, Some(42));
        waits.push(waited);
    }
    assert_eq!(
        builds.load(Ordering::SeqCst),
        1,
        "exactly one build across 4 clients"
    );
    waits.sort();
    let stats: Vec<_> = caches.iter().map(|c| c.stats()).collect();
    eprintln!(
        "{}: 1000 callers / 4 clients: p50 {:?}, p99 {:?}, max {:?}; lease waits {}, woken {}",
        t.kind,
        waits[500],
        waits[990],
        waits[999],
        stats.iter().map(|s| s.lease_waits).sum::<u64>(),
        stats.iter().map(|s| s.woken).sum::<u64>()
    );
}

async fn a_builder_that_died_holding_the_lease_is_taken_over_after_the_lease(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let cache = cache(&redis, "orphan-lease", Codec::Json);
    // A "crashed" builder: its lease is held and will never be released or filled.
    let lease = format!("{{{}}}:rebuild", cache.redis_key("k"));
    let _: () = redis
        .pool()
        .set(
            &lease,
            "dead-builder",
            Some(Expiration::PX(600)),
            None,
            false,
        )
        .await
        .expect("SET lease");
    let start = std::time::Instant::now();
    let v: Option<u32> = cache
        .get_or_set("k", None, || async {
            Ok::<_, std::convert::Infallible>(Some(5))
        })
        .await
        .expect("value");
    let waited = start.elapsed();
    assert_eq!(v, Some(5));
    assert!(
        waited >= Duration::from_millis(400),
        "waited for the lease ({waited:?})"
    );
    assert!(
        waited < Duration::from_secs(5),
        "took over soon after the lease expired ({waited:?})"
    );
    assert_eq!(cache.stats().builds, 1);
    assert_eq!(cache.stats().lease_waits, 1);
}

async fn bloom_false_positive_rate_is_within_one_and_a_half_times_the_target(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let filter =
        BloomFilter::new(redis, &namespace("bloomfp"), "ids", 10_000, 0.01).expect("filter");
    let present: Vec<String> = (0..10_000).map(|i| format!("present:{i}")).collect();
    let refs: Vec<&str> = present.iter().map(String::as_str).collect();
    filter.add_many(&refs).await.expect("add");
    assert!(
        filter
            .contains_many(&refs)
            .await
            .expect("check")
            .iter()
            .all(|p| *p),
        "no false negatives"
    );
    let absent: Vec<String> = (0..100_000).map(|i| format!("absent:{i}")).collect();
    let refs: Vec<&str> = absent.iter().map(String::as_str).collect();
    let hits = filter
        .contains_many(&refs)
        .await
        .expect("check")
        .iter()
        .filter(|p| **p)
        .count();
    let rate = hits as f64 / 100_000.0;
    eprintln!(
        "{}: bloom {:?} measured false-positive rate {rate:.4} (target 0.01)",
        t.kind,
        filter.params()
    );
    assert!(rate <= 0.015, "false-positive rate {rate} exceeds 1.5 × 1%");
    filter.clear().await.expect("clear");
}

async fn bloom_filtered_lookups_reach_the_builder_only_for_false_positives(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let ns = namespace("bloompen");
    let cache = Cache::new(redis.clone(), CacheConfig::new(ns.clone())).expect("cache");
    let filter = BloomFilter::new(redis, &ns, "ids", 1_000, 0.01).expect("filter");
    let existing: Vec<String> = (0..1_000).map(|i| format!("product:{i}")).collect();
    filter
        .add_many(&existing.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .expect("add");
    let missing: Vec<String> = (0..100).map(|i| format!("ghost:{i}")).collect();
    let false_positives = filter
        .contains_many(&missing.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .expect("check")
        .iter()
        .filter(|p| **p)
        .count();
    let builds = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        for id in &missing {
            let builds = builds.clone();
            let v: Option<u32> = cache
                .get_or_set_filtered(&filter, id, None, || async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::convert::Infallible>(None)
                })
                .await
                .expect("lookup");
            assert_eq!(v, None);
        }
    }
    assert_eq!(
        builds.load(Ordering::SeqCst),
        false_positives,
        "only false positives reach the builder, once each"
    );
    assert_eq!(
        cache.stats().filtered as usize,
        (100 - false_positives) * 100
    );
}

async fn a_bloom_filter_reopened_with_other_parameters_is_refused(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let ns = namespace("bloomcfg");
    let a = BloomFilter::new(redis.clone(), &ns, "f", 1_000, 0.01).expect("filter");
    a.add("x").await.expect("add");
    let b = BloomFilter::new(redis, &ns, "f", 50_000, 0.001).expect("filter");
    let err = b.contains("x").await.expect_err("different parameters");
    assert!(err.to_string().contains("was created with"), "{err}");
}

async fn batch_get_and_set_span_every_slot(redis: RedisClient, _t: &SharedTopology) {
    let cache = cache(&redis, "batch", Codec::MessagePack);
    let keys: Vec<String> = (0..100).map(|i| format!("item:{i}")).collect();
    let values: Vec<u32> = (0..100).collect();
    let items: Vec<(&str, &u32)> = keys
        .iter()
        .map(String::as_str)
        .zip(values.iter())
        .take(80)
        .collect();
    cache.set_many(&items, None).await.expect("set_many");
    let _: Option<u32> = cache
        .get_or_set("item:90", None, || async {
            Ok::<_, std::convert::Infallible>(None)
        })
        .await
        .expect("negative entry");
    let got = cache
        .get_many::<u32>(&keys.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .expect("get_many");
    for (i, lookup) in got.iter().enumerate() {
        let want = match i {
            0..80 => Lookup::Hit(i as u32),
            90 => Lookup::NotFound,
            _ => Lookup::Miss,
        };
        assert_eq!(*lookup, want, "item {i}");
    }
}

async fn wrapped_functions_are_cached_per_argument_value(redis: RedisClient, _t: &SharedTopology) {
    #[derive(serde::Serialize)]
    struct Query {
        user: u64,
        page: u32,
    }
    let cache = cache(&redis, "wrap", Codec::Json);
    let calls = AtomicUsize::new(0);
    let user_orders = |user: u64, page: u32| {
        let (cache, calls) = (&cache, &calls);
        async move {
            cache
                .cached("user_orders", &Query { user, page }, None, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::convert::Infallible>(vec![user * 10, u64::from(page)])
                })
                .await
                .expect("result")
        }
    };
    assert_eq!(user_orders(7, 1).await, vec![70, 1]);
    assert_eq!(user_orders(7, 1).await, vec![70, 1]);
    assert_eq!(user_orders(7, 2).await, vec![70, 2]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "same arguments hit the cache, new ones build"
    );
    // Another instance (another process) finds the same key.
    let other = Cache::new(
        redis.clone(),
        CacheConfig::new(cache.redis_key("").trim_end_matches(':').to_string()),
    )
    .expect("cache");
    let again: Vec<u64> = other
        .cached("user_orders", &Query { user: 7, page: 1 }, None, || async {
            Ok::<_, std::convert::Infallible>(vec![])
        })
        .await
        .expect("cached");
    assert_eq!(again, vec![70, 1]);
}

async fn tag_invalidation_removes_every_tagged_entry(redis: RedisClient, _t: &SharedTopology) {
    let cache = cache(&redis, "tags", Codec::Json);
    for i in 0..50 {
        let tags: &[&str] = if i % 2 == 0 {
            &["user:7", "even"]
        } else {
            &["user:7"]
        };
        cache
            .set_tagged(&format!("order:{i}"), &i, None, tags)
            .await
            .expect("set_tagged");
    }
    cache.set("order:untagged", &1, None).await.expect("set");
    assert_eq!(cache.invalidate_tag("even").await.expect("invalidate"), 25);
    assert_eq!(
        cache.get::<i32>("order:2").await.expect("get"),
        Lookup::Miss
    );
    assert_eq!(
        cache.get::<i32>("order:3").await.expect("get"),
        Lookup::Hit(3)
    );
    assert_eq!(
        cache.invalidate_tag("user:7").await.expect("invalidate"),
        25,
        "the rest"
    );
    assert_eq!(
        cache.get::<i32>("order:untagged").await.expect("get"),
        Lookup::Hit(1)
    );
}

async fn stale_values_are_served_while_one_caller_refreshes(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("swr");
    let mut caches = Vec::new();
    for _ in 0..2 {
        let redis = connect_as_suite(t).await;
        let mut cfg = CacheConfig::new(ns.clone());
        cfg.stale_for = Duration::from_secs(30);
        cfg.xfetch_beta = 0.0;
        caches.push(Cache::new(redis, cfg).expect("cache"));
    }
    let _ = redis;
    let v1: Option<u32> = caches[0]
        .get_or_set("k", Some(Duration::from_millis(300)), || async {
            Ok::<_, std::convert::Infallible>(Some(1))
        })
        .await
        .expect("v1");
    assert_eq!(v1, Some(1));
    tokio::time::sleep(Duration::from_millis(450)).await;
    let builds = Arc::new(AtomicUsize::new(0));
    let calls = (0..20).map(|i| {
        let (cache, builds) = (caches[i % 2].clone(), builds.clone());
        tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            let v = cache
                .get_or_set("k", Some(Duration::from_secs(60)), || async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, std::convert::Infallible>(Some(2u32))
                })
                .await
                .expect("value");
            (v, t0.elapsed())
        })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert_eq!(
        builds.load(Ordering::SeqCst),
        1,
        "one refresh across both clients"
    );
    let fresh = results.iter().filter(|(v, _)| *v == Some(2)).count();
    let stale_fast = results
        .iter()
        .filter(|(v, d)| *v == Some(1) && *d < Duration::from_millis(250))
        .count();
    assert_eq!(
        fresh, 1,
        "only the refresher waits for the new value: {results:?}"
    );
    assert_eq!(
        stale_fast, 19,
        "everyone else gets the stale value at once: {results:?}"
    );
    assert_eq!(
        caches[1].get::<u32>("k").await.expect("get"),
        Lookup::Hit(2)
    );
}

async fn xfetch_refreshes_a_hot_key_before_it_expires(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = CacheConfig::new(namespace("xfetch"));
    cfg.xfetch_beta = 3.0;
    cfg.jitter = 0.0;
    let cache = Cache::new(redis, cfg).expect("cache");
    let version = Arc::new(AtomicUsize::new(0));
    let ttl = Duration::from_secs(3);
    let start = std::time::Instant::now();
    let mut refreshed_at = None;
    while start.elapsed() < Duration::from_millis(2_800) {
        let version = version.clone();
        let v: Option<usize> = cache
            .get_or_set("hot", Some(ttl), || async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, std::convert::Infallible>(Some(version.fetch_add(1, Ordering::SeqCst) + 1))
            })
            .await
            .expect("value");
        if v == Some(2) && refreshed_at.is_none() {
            refreshed_at = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = refreshed_at.expect("XFetch refreshed the key before its 3 s TTL ran out");
    let s = cache.stats();
    assert_eq!(s.misses, 1, "readers never saw the key expire: {s:?}");
    assert!(s.refreshes >= 1, "{s:?}");
    eprintln!("xfetch (beta 3, build 300 ms, ttl 3 s): refreshed at {at:?}; {s:?}");
}

async fn a_failed_refresh_keeps_serving_the_stale_value(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = CacheConfig::new(namespace("swr-fail"));
    cfg.stale_for = Duration::from_secs(30);
    cfg.xfetch_beta = 0.0;
    let cache = Cache::new(redis, cfg).expect("cache");
    let _: Option<u32> = cache
        .get_or_set("k", Some(Duration::from_millis(200)), || async {
            Ok::<_, DbDown>(Some(1))
        })
        .await
        .expect("v1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = cache
        .get_or_set::<u32, _, _, _>("k", Some(Duration::from_millis(200)), || async {
            Err(DbDown)
        })
        .await
        .expect("stale value instead of the builder's error");
    assert_eq!(v, Some(1));
    assert_eq!(cache.stats().build_errors, 1);
}

fn near_cache(redis: &RedisClient, ns: &str) -> Cache {
    let mut cfg = CacheConfig::new(ns.to_string());
    cfg.near = Some(NearConfig::new(1_000, Duration::from_secs(60)));
    cfg.xfetch_beta = 0.0;
    Cache::new(redis.clone(), cfg).expect("cache")
}

async fn get_v(cache: &Cache, key: &str) -> Option<String> {
    cache
        .get_or_set(key, None, || async {
            Ok::<_, std::convert::Infallible>(Some("built".to_string()))
        })
        .await
        .expect("value")
}

async fn near_cache_entries_are_invalidated_by_another_clients_write(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("near");
    let cache = near_cache(&redis, &ns);
    // Another process: its own connections, no near cache.
    let other_redis = connect_as_suite(t).await;
    let other = Cache::new(other_redis, CacheConfig::new(ns.clone())).expect("cache");
    // 30 keys: on a cluster they live on every primary, each of which must send invalidations.
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for k in &keys {
        other.set(k, &"v1".to_string(), None).await.expect("set");
    }
    for k in &keys {
        assert_eq!(get_v(&cache, k).await.as_deref(), Some("v1"));
    }
    let before = cache.stats().l1_hits;
    for k in &keys {
        assert_eq!(get_v(&cache, k).await.as_deref(), Some("v1"));
    }
    assert_eq!(
        cache.stats().l1_hits,
        before + 30,
        "second reads served from memory"
    );

    for k in &keys {
        other
            .set(k, &"v2".to_string(), None)
            .await
            .expect("set by another client");
    }
    let start = std::time::Instant::now();
    for k in &keys {
        loop {
            if get_v(&cache, k).await.as_deref() == Some("v2") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "L1 still stale for {k} after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    eprintln!(
        "{}: near cache saw another client's 30 writes after {:?}",
        t.kind,
        start.elapsed()
    );
}

/// After Redis restarts, the tracking connection reconnects and the near cache starts empty
/// (invalidations sent while disconnected are lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_cache_is_emptied_when_redis_restarts() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Standalone).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let redis = RedisClient::connect(RedisConfig::from_url(&topo.url()).expect("url"))
        .await
        .expect("connect");
    let cache = near_cache(&redis, &namespace("near-restart"));
    for i in 0..20 {
        get_v(&cache, &format!("k{i}")).await; // builds; our own write's invalidation evicts it
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20 {
        get_v(&cache, &format!("k{i}")).await; // read from Redis into L1
    }
    assert!(cache.near_len() >= 20, "L1 filled: {}", cache.near_len());
    let node = &topo.nodes()[0];
    tokio::task::block_in_place(|| topo.kill(node)).expect("kill");
    tokio::task::block_in_place(|| topo.restart(node)).expect("restart");
    let start = std::time::Instant::now();
    while cache.near_len() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "L1 not flushed after the restart: {}",
            cache.near_len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("near cache flushed {:?} after the restart", start.elapsed());
}

/// A build in progress when the primary dies: the rebuild lease may die with it (async
/// replication). Callers in both processes still get a value, nobody hangs past `max_wait`,
/// and at most one extra build runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_in_progress_survives_a_sentinel_failover() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Sentinel).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace("lease-failover");
    let mut caches = Vec::new();
    for _ in 0..2 {
        let redis = RedisClient::connect(RedisConfig::from_url(&topo.url()).expect("url"))
            .await
            .expect("connect");
        let mut cfg = CacheConfig::new(ns.clone());
        cfg.rebuild_lease = Duration::from_secs(4);
        cfg.max_wait = Duration::from_secs(15);
        caches.push(Cache::new(redis, cfg).expect("cache"));
    }
    let builds = Arc::new(AtomicUsize::new(0));
    let start = std::time::Instant::now();
    let calls = (0..40).map(|i| {
        let (cache, builds) = (caches[i % 2].clone(), builds.clone());
        tokio::spawn(async move {
            cache
                .get_or_set("k", None, || async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2_000)).await;
                    Ok::<_, std::convert::Infallible>(Some(42u32))
                })
                .await
                .expect("value")
        })
    });
    let calls: Vec<_> = calls.collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let node = topo.current_primary().expect("primary");
    let old = node.addr;
    tokio::task::block_in_place(|| topo.kill(node)).expect("kill -9");
    let failover =
        tokio::task::block_in_place(|| topo.wait_for_new_primary(old, Duration::from_secs(30)))
            .expect("failover");
    for c in calls {
        assert_eq!(c.await.expect("task"), Some(42));
    }
    let took = start.elapsed();
    let n = builds.load(Ordering::SeqCst);
    assert!((1..=2).contains(&n), "builds: {n}");
    assert!(took < Duration::from_secs(20), "callers waited {took:?}");
    eprintln!(
        "build across a sentinel failover ({failover:?}): {n} build(s), every caller served after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_cache_stays_coherent_across_a_cluster_failover() {
    near_cache_stays_coherent_across_a_failover(Kind::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_cache_stays_coherent_across_a_sentinel_failover() {
    near_cache_stays_coherent_across_a_failover(Kind::Sentinel).await;
}

/// Tracking is per connection: when the primary dies, the near cache must not keep serving
/// values that change on the replica that took over. After the failover the reader fills its
/// L1 again, then another client rewrites every key; the reader must see all new values (its
/// L1 entries live an hour, so only invalidations or a flush can get them out).
async fn near_cache_stays_coherent_across_a_failover(kind: Kind) {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(kind).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let connect = || async {
        RedisClient::connect(RedisConfig::from_url(&topo.url()).expect("url"))
            .await
            .expect("connect")
    };
    let ns = namespace("near-failover");
    let mut cfg = CacheConfig::new(ns.clone());
    cfg.near = Some(NearConfig::new(1_000, Duration::from_secs(3600)));
    cfg.xfetch_beta = 0.0;
    let reader = Cache::new(connect().await, cfg).expect("cache");
    let writer = Cache::new(connect().await, CacheConfig::new(ns)).expect("cache");
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for k in &keys {
        writer.set(k, "v1", None).await.expect("set v1");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for k in &keys {
        assert_eq!(get_v(&reader, k).await.as_deref(), Some("v1"));
    }
    assert!(reader.near_len() >= 30, "L1 filled: {}", reader.near_len());

    let victim = topo
        .primary_for_key(&reader.redis_key("k0"))
        .expect("primary");
    let victim_addr = victim.addr;
    tokio::task::block_in_place(|| topo.kill(victim)).expect("kill -9");
    let took = tokio::task::block_in_place(|| match kind {
        Kind::Cluster => topo.wait_for_slot_takeover(victim_addr, Duration::from_secs(30)),
        _ => topo.wait_for_new_primary(victim_addr, Duration::from_secs(30)),
    })
    .expect("failover");
    // The writer follows the failover; retry each write until it lands.
    let start = std::time::Instant::now();
    let write_all = |value: &'static str| {
        let (writer, keys) = (&writer, &keys);
        async move {
            for k in keys {
                while let Err(e) = writer.set(k, value, None).await {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "writes never resumed: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    write_all("v1").await;
    let written = start.elapsed();
    // The reader fills its L1 again, now from the promoted replica (for k0's slots).
    let start = std::time::Instant::now();
    loop {
        let mut values = HashSet::new();
        for k in &keys {
            values.insert(get_v(&reader, k).await);
        }
        if values.len() == 1 && values.contains(&Some("v1".to_string())) && reader.near_len() >= 30
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the reader never settled on v1 from its L1: {values:?}, {} entries",
            reader.near_len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Changes on every primary, the promoted one included, must reach the reader's L1.
    write_all("v2").await;
    let start = std::time::Instant::now();
    loop {
        let mut stale = Vec::new();
        for k in &keys {
            if get_v(&reader, k).await.as_deref() != Some("v2") {
                stale.push(k.clone());
            }
        }
        if stale.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the near cache still serves old values after the failover: {stale:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "near cache across a {kind:?} failover: takeover {took:?}, writes back after {written:?}, \
         reader saw every new value {:?} later",
        start.elapsed()
    );
}

async fn background_refresh_never_makes_a_reader_wait(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = CacheConfig::new(namespace("bg"));
    cfg.stale_for = Duration::from_secs(30);
    cfg.xfetch_beta = 0.0;
    let cache = Cache::new(redis, cfg).expect("cache");
    let ttl = Some(Duration::from_millis(200));
    let v: Option<u32> = cache
        .get_or_refresh("k", ttl, || async {
            Ok::<_, std::convert::Infallible>(Some(1))
        })
        .await
        .expect("v1");
    assert_eq!(v, Some(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    let v: Option<u32> = cache
        .get_or_refresh("k", ttl, || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, std::convert::Infallible>(Some(2))
        })
        .await
        .expect("stale value");
    assert_eq!(v, Some(1), "the stale value comes back at once");
    assert!(
        t0.elapsed() < Duration::from_millis(200),
        "reader waited {:?}",
        t0.elapsed()
    );
    let start = std::time::Instant::now();
    while cache.get::<u32>("k").await.expect("get") != Lookup::Hit(2) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "background refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache.stats().builds, 2);
}

// ---- A bad leader (cancelled, panicking, hung) must not stall the key -------------------------

/// A second client of the same topology (its own connections and cache, as in another process).
async fn second_client(t: &SharedTopology, cfg: CacheConfig) -> Cache {
    let redis = connect_as_suite(t).await;
    Cache::new(redis, cfg).expect("cache")
}

/// The rebuild lease of `key`, as the cache names it (the value key's sibling in its slot).
fn lease_of(cache: &Cache, key: &str) -> String {
    redis_conn::keys::sibling(&cache.redis_key(key), "rebuild").expect("lease key")
}

/// Waits (bounded) until the key's rebuild lease is gone from Redis.
async fn lease_gone_within(redis: &RedisClient, lease: &str, bound: Duration) -> Duration {
    let start = std::time::Instant::now();
    loop {
        // PTTL rather than EXISTS: the suite's user has only the cache's rights (-2: no key).
        let left: i64 = redis.pool().pttl(lease).await.expect("PTTL");
        if left == -2 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < bound,
            "the rebuild lease {lease} is still held {:?} later",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a call answered, and when.
type Answer = (
    Result<Option<u32>, BuildError<std::io::Error>>,
    std::time::Instant,
);

/// The bound: a waiter answers well under a second (500 ms) after the leader went
/// away (dropped or panicked), not when its 10 s lease expires.
fn answered_soon_after(
    t: &SharedTopology,
    who: &str,
    at: std::time::Instant,
    gone: std::time::Instant,
    what: &str,
) {
    let late = at.saturating_duration_since(gone);
    eprintln!("{}: {who} answered {late:?} after {what}", t.kind);
    assert!(
        late < Duration::from_millis(500),
        "{who} waited {late:?} after {what} (the lease was not given back)"
    );
}

/// Starts a lookup of `key` whose builder never finishes (60 s) and returns once that builder
/// runs, i.e. once the lookup leads the key's flight and holds its rebuild lease.
async fn hung_build(
    cache: &Cache,
    key: &'static str,
) -> tokio::task::JoinHandle<Result<Option<u32>, BuildError<std::io::Error>>> {
    let started = Arc::new(tokio::sync::Notify::new());
    let hung = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_or_set(key, None, || async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(Some(1))
                })
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .expect("the hung builder starts");
    hung
}

/// A call for `key` whose builder answers `value` at once; returns the value and when it came
/// back.
fn quick_call(
    cache: &Cache,
    key: &'static str,
    value: u32,
    builds: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Answer> {
    let (cache, builds) = (cache.clone(), builds.clone());
    tokio::spawn(async move {
        let r = cache
            .get_or_set(key, None, || async move {
                builds.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(Some(value))
            })
            .await;
        (r, std::time::Instant::now())
    })
}

/// The measurement: a caller's timeout drops the leader mid-build (100 ms into a 500 ms
/// build). A caller of the same process and one of another client, both arriving 30 ms in, got
/// their values only after the 10 s lease expired; they must get them right after the drop.
async fn a_cancelled_leader_gives_its_lease_back_at_once(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("cancelled-leader");
    let here = Cache::new(redis.clone(), CacheConfig::new(ns.clone())).expect("cache");
    let there = second_client(t, CacheConfig::new(ns)).await;
    let builds = Arc::new(AtomicUsize::new(0));
    let leader = {
        let here = here.clone();
        tokio::spawn(async move {
            let call = here.get_or_set("k", None, || async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok::<_, std::io::Error>(Some(1u32))
            });
            let r = tokio::time::timeout(Duration::from_millis(100), call).await;
            assert!(r.is_err(), "the leader's call is cut by its timeout");
            std::time::Instant::now()
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let same_process = quick_call(&here, "k", 2, &builds);
    let other_client = quick_call(&there, "k", 3, &builds);
    let gone = leader.await.expect("leader task");
    for (who, call) in [
        ("same process", same_process),
        ("second client", other_client),
    ] {
        let (value, at) = call.await.expect("task");
        let value = value.expect("a value");
        assert!(matches!(value, Some(2 | 3)), "{who}: {value:?}");
        answered_soon_after(t, who, at, gone, "the leader was dropped");
    }
    lease_gone_within(&redis, &lease_of(&here, "k"), Duration::from_secs(1)).await;
    assert!(builds.load(Ordering::SeqCst) >= 1);
}

/// A builder that panics 200 ms in: the waiters of its process get `BuildError::Panicked` (not
/// the panic, not a 10 s wait); a caller of another client builds right away; the panic goes on
/// in the leader's own call; nothing is left held.
async fn a_panicking_leader_gives_its_lease_back_and_its_waiters_a_typed_error(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("panicking-leader");
    let here = Cache::new(redis.clone(), CacheConfig::new(ns.clone())).expect("cache");
    let there = second_client(t, CacheConfig::new(ns)).await;
    let builds = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (here2, there2, started) = (here.clone(), there.clone(), started.clone());
        let watched = here.clone();
        tokio::spawn(async move {
            here2
                .get_or_set::<u32, std::io::Error, _, _>("k", None, || async move {
                    // Holding the flight and the lease: let the others line up first.
                    started.notify_one();
                    let t0 = std::time::Instant::now();
                    while (watched.stats().coalesced < 10 || there2.stats().lease_waits < 1)
                        && t0.elapsed() < Duration::from_secs(5)
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    panic!("the database driver blew up");
                })
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .expect("the leader's builder starts");
    let followers: Vec<_> = (0..10)
        .map(|i| quick_call(&here, "k", 10 + i, &builds))
        .collect();
    let other_client = quick_call(&there, "k", 3, &builds);
    let joined = leader.await;
    let gone = std::time::Instant::now();
    let panic = joined.expect_err("the leader's own call panics");
    assert!(panic.is_panic(), "the leader's panic resumes in its call");
    for f in followers {
        let (r, at) = f
            .await
            .expect("follower task (the panic is not re-raised in it)");
        match r {
            Err(BuildError::Panicked(msg)) => {
                assert!(msg.contains("database driver blew up"), "{msg}")
            }
            other => panic!("a waiter of the panicked build got {other:?}"),
        }
        answered_soon_after(t, "a waiter", at, gone, "the panic");
    }
    let (r, at) = other_client.await.expect("task");
    assert_eq!(r.expect("the second client builds"), Some(3));
    answered_soon_after(t, "the second client", at, gone, "the panic");
    lease_gone_within(&redis, &lease_of(&here, "k"), Duration::from_secs(1)).await;
    assert_eq!(here.stats().build_errors, 1);
    // The key works as usual afterwards.
    let t0 = std::time::Instant::now();
    let (r, _) = quick_call(&here, "k", 4, &builds).await.expect("task");
    assert_eq!(
        r.expect("value"),
        Some(3),
        "the second client's value is cached"
    );
    assert!(t0.elapsed() < Duration::from_millis(500));
}

/// A builder that hangs: callers of its process and of another client stop waiting after
/// `max_wait` and build for themselves; aborting the hung call gives its lease back.
async fn a_hung_leader_holds_no_waiter_past_max_wait(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("hung-leader");
    let mut cfg = CacheConfig::new(ns);
    cfg.max_wait = Duration::from_secs(1);
    let here = Cache::new(redis.clone(), cfg.clone()).expect("cache");
    let there = second_client(t, cfg).await;
    let builds = Arc::new(AtomicUsize::new(0));
    let hung = hung_build(&here, "k").await;
    let asked = std::time::Instant::now();
    let same_process = quick_call(&here, "k", 2, &builds);
    let other_client = quick_call(&there, "k", 3, &builds);
    for (who, call, own) in [
        ("same process", same_process, 2),
        ("second client", other_client, 3),
    ] {
        let (value, at) = call.await.expect("task");
        let waited = at.saturating_duration_since(asked);
        eprintln!("{}: {who} answered after {waited:?} (max_wait 1 s)", t.kind);
        // Its own value, or the other waiter's if that one filled the key first.
        assert!(matches!(value.expect("value"), Some(v) if v == own || v == 5 - own));
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_millis(1500),
            "{who} answered after {waited:?}; max_wait is 1 s"
        );
    }
    // The waiter of this process timed out; the other client's either timed out too or found
    // that waiter's value as its wait ended.
    assert_eq!(here.stats().wait_timeouts, 1);
    assert!(there.stats().wait_timeouts <= 1);
    // The hung call is aborted (as a service's timeout would): its lease goes at once.
    hung.abort();
    let took = lease_gone_within(&redis, &lease_of(&here, "k"), Duration::from_secs(1)).await;
    eprintln!(
        "{}: lease of the aborted hung build gone after {took:?}",
        t.kind
    );
}

/// A background refresh whose builder panics gives its lease back (the next refresh starts at
/// once) and the stale value keeps being served.
async fn a_panicking_background_refresh_gives_its_lease_back(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let mut cfg = CacheConfig::new(namespace("bg-panic"));
    cfg.stale_for = Duration::from_secs(30);
    cfg.xfetch_beta = 0.0;
    let cache = Cache::new(redis.clone(), cfg).expect("cache");
    let ttl = Some(Duration::from_millis(200));
    let v: Option<u32> = cache
        .get_or_refresh("k", ttl, || async { Ok::<_, std::io::Error>(Some(1)) })
        .await
        .expect("v1");
    assert_eq!(v, Some(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v: Option<u32> = cache
        .get_or_refresh::<u32, std::io::Error, _, _>("k", ttl, || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            panic!("refresh blew up");
        })
        .await
        .expect("the stale value");
    assert_eq!(v, Some(1));
    let lease = lease_of(&cache, "k");
    let start = std::time::Instant::now();
    while cache.stats().build_errors == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the refresh never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lease_gone_within(&redis, &lease, Duration::from_millis(500)).await;
    let v: Option<u32> = cache
        .get_or_refresh("k", ttl, || async { Ok::<_, std::io::Error>(Some(2)) })
        .await
        .expect("still the stale value");
    assert_eq!(v, Some(1));
    let start = std::time::Instant::now();
    while cache.get::<u32>("k").await.expect("get") != Lookup::Hit(2) {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the refresh after the panicked one never landed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lookups aborted after a random spin (a service's timeout can fire at any `.await`: before,
/// during or after the `SET NX`, in the build, during the fill): none leaves its rebuild lease
/// behind for longer than it takes the give-back to run.
async fn lookups_aborted_at_any_moment_leave_no_lease_behind(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let cache = cache(&redis, "aborted", Codec::Json);
    let (mut finished, mut cut) = (0, 0);
    let mut spin_us = 2_000u64;
    for i in 0..150u32 {
        let key = format!("k{i}");
        let call = {
            let (cache, key) = (cache.clone(), key.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set(&key, None, || async {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        Ok::<_, std::io::Error>(Some(i))
                    })
                    .await
            })
        };
        let spin = Duration::from_micros(fastrand::u64(0..spin_us));
        let t0 = std::time::Instant::now();
        while t0.elapsed() < spin {
            std::hint::spin_loop();
        }
        call.abort();
        match call.await {
            Ok(_) => {
                finished += 1;
                // Cut earlier next time.
                spin_us = (spin_us * 9 / 10).max(100);
            }
            Err(_) => {
                cut += 1;
                spin_us = (spin_us * 11 / 10).min(20_000);
            }
        }
        lease_gone_within(&redis, &lease_of(&cache, &key), Duration::from_millis(500)).await;
    }
    eprintln!(
        "{}: {cut} lookups cut, {finished} finished; no lease left behind",
        t.kind
    );
    assert!(
        cut >= 20,
        "too few lookups were cut ({cut}) to say anything"
    );
}

/// Ten waiters of a hung build in one process: after max_wait one of them builds (a successor
/// flight) and the others take its value — one extra build, not ten.
async fn waiters_of_a_hung_build_share_one_successor(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = CacheConfig::new(namespace("hung-successor"));
    cfg.max_wait = Duration::from_millis(500);
    let cache = Cache::new(redis, cfg).expect("cache");
    let hung = hung_build(&cache, "k").await;
    let builds = Arc::new(AtomicUsize::new(0));
    let asked = std::time::Instant::now();
    let waiters: Vec<_> = (0..10u32)
        .map(|i| {
            let (cache, builds) = (cache.clone(), builds.clone());
            tokio::spawn(async move {
                cache
                    .get_or_set("k", None, || async move {
                        builds.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, std::io::Error>(Some(100 + i))
                    })
                    .await
            })
        })
        .collect();
    let mut values = HashSet::new();
    for w in waiters {
        values.insert(w.await.expect("task").expect("value"));
    }
    let took = asked.elapsed();
    assert_eq!(builds.load(Ordering::SeqCst), 1, "one successor build");
    assert_eq!(
        values.len(),
        1,
        "every waiter got the successor's value: {values:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?} (max_wait 500 ms)"
    );
    hung.abort();
}
