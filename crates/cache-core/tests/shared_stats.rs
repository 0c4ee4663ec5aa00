//! Cross-process counters on real servers (every topology): two cache instances on two
//! clients (two processes) add up in `SharedStats::load`; a failed flush loses nothing and a
//! flush sent twice counts once; dropping the cache sends a last flush and ends its task.

use std::time::{Duration, Instant};

use cache_core::{BreakerState, Cache, CacheConfig, SharedStats};
use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology};

async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    (connect_as_suite(topo).await, topo)
}

/// On a secure shared topology, a user with exactly the documented rule for `t:cache:*`.
async fn connect_as_suite(t: &SharedTopology) -> RedisClient {
    let user = format!("cache-core-stats-{}", std::process::id());
    let rule = cache_core::acl_rule(&CacheConfig::new("t:cache:*")).to_string();
    let url = tokio::task::block_in_place(|| t.url_for(&user, &rule))
        .unwrap_or_else(|e| panic!("suite user: {e}"));
    connect(&url).await
}

async fn connect(url: &str) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

fn config(test: &str, every: Duration) -> CacheConfig {
    let mut cfg = CacheConfig::new(testkit::unique_name(&format!("t:cache:stats:{test}")));
    cfg.shared_stats = Some(every);
    cfg.xfetch_beta = 0.0;
    cfg
}

async fn hits(cache: &Cache, n: usize) {
    for _ in 0..n {
        let v: Option<String> = cache
            .get_or_set("k", None, || async {
                Ok::<_, std::convert::Infallible>(Some("built".into()))
            })
            .await
            .expect("value");
        assert!(v.is_some());
    }
}

/// Polls the shared stats until `done` holds, for at most `within`.
async fn shared_until(
    redis: &RedisClient,
    ns: &str,
    within: Duration,
    done: impl Fn(&SharedStats) -> bool,
) -> (SharedStats, Duration) {
    let start = Instant::now();
    loop {
        let s = SharedStats::load(redis, ns).await.expect("load");
        if done(&s) {
            return (s, start.elapsed());
        }
        assert!(
            start.elapsed() < within,
            "not reached within {within:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

testkit::topology_tests!(
    two_processes_hits_add_up_within_two_seconds,
    a_failed_flush_loses_nothing_and_a_flush_sent_twice_counts_once,
    dropping_the_cache_flushes_once_more_and_ends_its_task,
);

async fn two_processes_hits_add_up_within_two_seconds(redis: RedisClient, t: &SharedTopology) {
    let cfg = config("sum", Duration::from_secs(1));
    let ns = cfg.namespace.clone();
    let a = Cache::new(redis.clone(), cfg.clone()).expect("cache a");
    let b = Cache::new(connect_as_suite(t).await, cfg).expect("cache b");
    a.set("k", &"v", None).await.expect("set");
    hits(&a, 30).await;
    hits(&b, 20).await;
    let (s, took) =
        shared_until(&redis, &ns, Duration::from_secs(2), |s| s.totals.hits == 50).await;
    eprintln!(
        "{}: 50 hits of two processes summed {took:?} after the last hit",
        t.kind
    );
    assert_eq!((s.totals.builds, s.totals.misses), (0, 0), "{s:?}");
    let ids = [a.shared_stats_id(), b.shared_stats_id()].map(|i| i.expect("on").to_string());
    assert_ne!(ids[0], ids[1]);
    for (id, n) in ids.iter().zip([30, 20]) {
        let p = s
            .processes
            .iter()
            .find(|p| &p.id == id)
            .unwrap_or_else(|| panic!("{id} reported: {s:?}"));
        assert_eq!(p.totals.hits, n, "{p:?}");
        assert_eq!(p.breaker, Some(BreakerState::Closed));
        assert!(p.age < Duration::from_secs(2), "{p:?}");
    }
    assert_eq!(s.live_processes(Duration::from_secs(10)), 2);
    assert_eq!(s.breakers_open(Duration::from_secs(10)), 0);
}

async fn a_failed_flush_loses_nothing_and_a_flush_sent_twice_counts_once(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let admin = connect(t.url()).await;
    // Flushes only when asked (the task's first tick aside).
    let cfg = config("outage", Duration::from_secs(3600));
    let ns = cfg.namespace.clone();
    let key = format!("{ns}:__stats__");
    let aside = format!("{{{key}}}:aside");
    let cache = Cache::new(redis.clone(), cfg).expect("cache");
    cache.set("k", &"v", None).await.expect("set");
    tokio::time::sleep(Duration::from_millis(100)).await;
    hits(&cache, 10).await;
    assert!(cache.flush_shared_stats().await.expect("flush"));
    assert_eq!(
        SharedStats::load(&redis, &ns)
            .await
            .expect("load")
            .totals
            .hits,
        10
    );

    // The hash is out of reach (another type under its name): flushes fail, and nothing of
    // what they carried is lost.
    let c = admin.for_key(&key);
    let _: () = c.rename(&key, &aside).await.expect("RENAME");
    let _: () = c
        .set(&key, "not a hash", None, None, false)
        .await
        .expect("SET");
    hits(&cache, 5).await;
    for _ in 0..2 {
        let err = cache.flush_shared_stats().await.expect_err("WRONGTYPE");
        eprintln!("{}: refused flush: {err}", t.kind);
        hits(&cache, 1).await;
    }
    let _: i64 = c.del(&key).await.expect("DEL");
    let _: () = c.rename(&aside, &key).await.expect("RENAME back");
    assert!(
        cache
            .flush_shared_stats()
            .await
            .expect("flush after recovery")
    );
    assert!(cache.flush_shared_stats().await.expect("flush again"));
    let s = SharedStats::load(&redis, &ns).await.expect("load");
    assert_eq!(s.totals.hits, 17, "nothing lost, nothing twice: {s:?}");
    assert_eq!(cache.stats().hits, 17);

    // A flush whose reply was lost is sent again with the same totals: the script adds it once,
    // and an older flush arriving late adds nothing.
    let field = "proc:test-resent";
    for total in ["7", "7", "5"] {
        let _: i64 = c
            .eval(
                include_str!("../src/stats_flush.lua"),
                vec![key.as_str()],
                vec![field, "closed", "60000", "0", "hits", "0", total],
            )
            .await
            .expect("flush script");
    }
    let s = SharedStats::load(&redis, &ns).await.expect("load");
    assert_eq!(s.totals.hits, 24, "{s:?}");
    let _: i64 = c.del(&key).await.expect("DEL");
}

async fn dropping_the_cache_flushes_once_more_and_ends_its_task(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let cfg = config("drop", Duration::from_millis(100));
    let ns = cfg.namespace.clone();
    let cache = Cache::new(redis.clone(), cfg.clone()).expect("cache");
    let id = cache.shared_stats_id().expect("on").to_string();
    cache.set("k", &"v", None).await.expect("set");
    hits(&cache, 3).await;
    drop(cache);
    shared_until(&redis, &ns, Duration::from_secs(2), |s| s.totals.hits == 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = |s: &SharedStats| s.processes.iter().find(|p| p.id == id).map(|p| p.last_seen);
    let before = seen(&SharedStats::load(&redis, &ns).await.expect("load")).expect("reported");
    // A live task would send its 5 s heartbeat in this time.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let after = seen(&SharedStats::load(&redis, &ns).await.expect("load"));
    assert_eq!(after, Some(before), "no flush after the cache was dropped");

    // And with a last flush: counts made just before the drop arrive.
    let mut slow = cfg;
    slow.shared_stats = Some(Duration::from_secs(3600));
    let cache = Cache::new(redis.clone(), slow).expect("cache");
    tokio::time::sleep(Duration::from_millis(200)).await;
    hits(&cache, 4).await;
    drop(cache);
    shared_until(&redis, &ns, Duration::from_secs(2), |s| s.totals.hits == 7).await;
}
