//! redis-conn on every topology (standalone, sentinel, cluster), on shared servers.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fred::prelude::*;
use futures::TryStreamExt;
use redis_conn::{Dedicated, Error, Namespace, RedisClient, RedisConfig, Script};
use testkit::{Kind, SharedTopology};

use common::shared;

testkit::topology_tests!(
    commands_round_trip,
    scripts_run_on_every_primary_and_survive_script_flush,
    scan_finds_keys_on_every_primary,
    health_describes_the_topology,
    server_errors_are_classified,
    blocking_client_outwaits_the_command_timeout,
    subscriber_receives_published_messages,
    tracking_client_is_told_when_a_read_key_changes,
);

async fn commands_round_trip(redis: RedisClient, _topo: &SharedTopology) {
    let ns = Namespace::new(common::prefix("rt")).expect("ns");
    let key = ns.key("greeting");
    let _: () = redis
        .pool()
        .set(&key, "hello", Some(Expiration::EX(60)), None, false)
        .await
        .expect("SET");
    let v: String = redis.pool().get(&key).await.expect("GET");
    assert_eq!(v, "hello");
    let n: i64 = redis.pool().incr(ns.key("n")).await.expect("INCR");
    assert_eq!(n, 1);
}

static ADD_TO_BOTH: Script = Script::new(
    "add_to_both",
    // KEYS[1], KEYS[2]: counters of one group; ARGV[1]: amount. Returns the sum.
    "local a = redis.call('INCRBY', KEYS[1], ARGV[1]) \
     local b = redis.call('INCRBY', KEYS[2], ARGV[1]) \
     return a + b",
);

async fn scripts_run_on_every_primary_and_survive_script_flush(
    redis: RedisClient,
    topo: &SharedTopology,
) {
    let ns = Namespace::new(common::prefix("script")).expect("ns");
    // 64 tags spread over every slot range, hence every primary of a cluster.
    let groups: Vec<_> = (0..64)
        .map(|i| ns.tagged(&format!("g{i}")).expect("tag"))
        .collect();
    let slots: HashSet<u16> = groups.iter().map(|g| g.slot() / 5462).collect();
    assert_eq!(slots.len(), 3, "groups cover all three slot ranges");
    for round in 1..=2 {
        for g in &groups {
            let sum: i64 = ADD_TO_BOTH
                .run(redis.pool(), vec![g.key("a"), g.key("b")], vec![1])
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(sum, 2 * round);
        }
        // Empty every script cache: the next round must reload transparently.
        flush_scripts(&redis, topo).await;
    }
    let err = ADD_TO_BOTH
        .run::<i64, _, _, _>(redis.pool(), vec![ns.key("x"), ns.key("y")], vec![1])
        .await
        .expect_err("keys in different slots");
    assert!(matches!(err, Error::CrossSlot(_)), "{err:?}");
}

async fn flush_scripts(redis: &RedisClient, _topo: &SharedTopology) {
    if redis.is_cluster() {
        redis
            .next()
            .script_flush_cluster(false)
            .await
            .expect("SCRIPT FLUSH on every primary");
    } else {
        redis
            .next()
            .script_flush(false)
            .await
            .expect("SCRIPT FLUSH");
    }
}

async fn scan_finds_keys_on_every_primary(redis: RedisClient, _topo: &SharedTopology) {
    let ns = Namespace::new(common::prefix("scan")).expect("ns");
    let written: HashSet<String> = (0..300).map(|i| ns.key(&format!("k{i}"))).collect();
    for k in &written {
        let _: () = redis
            .pool()
            .set(k, 1, Some(Expiration::EX(120)), None, false)
            .await
            .expect("SET");
    }
    if redis.is_cluster() {
        let state = redis.next().cached_cluster_state().expect("slot map");
        let owners: HashSet<String> = written
            .iter()
            .filter_map(|k| state.get_server(redis_conn::keys::slot(k.as_bytes())))
            .map(|s| s.to_string())
            .collect();
        assert_eq!(owners.len(), 3, "test keys live on all three primaries");
    }
    let mut found = HashSet::new();
    let mut pages = std::pin::pin!(redis_conn::scan_keys(&redis, &ns.pattern(), 50));
    while let Some(page) = pages.try_next().await.expect("scan page") {
        for k in page {
            found.insert(k.as_str().expect("utf8 key").to_string());
        }
    }
    assert_eq!(found, written);
}

async fn health_describes_the_topology(redis: RedisClient, topo: &SharedTopology) {
    let h = redis_conn::health(&redis).await.expect("health");
    let (primaries, replicas) = match topo.kind {
        Kind::Standalone => (1, 0),
        Kind::Sentinel => (1, 2),
        Kind::Cluster => (3, 3),
    };
    assert_eq!(h.primaries().count(), primaries, "{h:?}");
    assert!(h.replicas().count() >= replicas, "{h:?}");
    assert!(h.primaries().all(|p| p.latency.is_some() && p.ok), "{h:?}");
    assert!(h.replicas().all(|r| r.primary.is_some()), "{h:?}");
    eprintln!("{}: max primary latency {:?}", topo.kind, h.max_latency());
}

async fn server_errors_are_classified(redis: RedisClient, _topo: &SharedTopology) {
    let ns = Namespace::new(common::prefix("errs")).expect("ns");
    let key = ns.key("s");
    let _: () = redis
        .pool()
        .set(&key, "x", Some(Expiration::EX(60)), None, false)
        .await
        .expect("SET");
    let err: Error = redis
        .pool()
        .lpush::<i64, _, _>(&key, "y")
        .await
        .expect_err("wrong type")
        .into();
    assert!(matches!(err, Error::WrongType(_)), "{err:?}");

    let err: Error = redis
        .pool()
        .evalsha::<Value, _, _, _>(
            "0000000000000000000000000000000000000000",
            vec![key.clone()],
            (),
        )
        .await
        .expect_err("unknown sha")
        .into();
    assert!(matches!(err, Error::NoScript(_)), "{err:?}");

    let stream = ns.key("stream");
    let _: () = redis
        .pool()
        .xgroup_create(&stream, "g", "$", true)
        .await
        .expect("XGROUP CREATE");
    let err: Error = redis
        .pool()
        .xgroup_create::<(), _, _, _>(&stream, "g", "$", true)
        .await
        .expect_err("exists")
        .into();
    assert!(matches!(err, Error::BusyGroup(_)), "{err:?}");
    let _: i64 = redis.pool().del(&stream).await.expect("DEL");
}

async fn blocking_client_outwaits_the_command_timeout(_redis: RedisClient, topo: &SharedTopology) {
    let mut config = RedisConfig::from_url(topo.url()).expect("url");
    config.command_timeout = Duration::from_millis(300);
    let redis = RedisClient::connect(config).await.expect("connect");
    let blocking = redis
        .dedicated(Dedicated::Blocking)
        .await
        .expect("dedicated");
    let key = Namespace::new(common::prefix("blk"))
        .expect("ns")
        .key("list");
    // The value arrives after 700 ms, past the 300 ms default command timeout.
    let pusher = {
        let (redis, key) = (redis.clone(), key.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let _: i64 = redis.pool().rpush(&key, "job").await.expect("RPUSH");
        })
    };
    let start = Instant::now();
    let popped: Option<(String, String)> = blocking
        .blpop(&key, 5.0)
        .await
        .unwrap_or_else(|e| panic!("BLPOP after {:?}: {e:?}", start.elapsed()));
    assert_eq!(popped, Some((key.clone(), "job".to_string())));
    assert!(start.elapsed() >= Duration::from_millis(600));
    pusher.await.expect("pusher");
    // A pooled client gives up at its 300 ms default instead of waiting for the server.
    let start = Instant::now();
    let err: Error = redis
        .pool()
        .blpop::<Option<(String, String)>, _>(&key, 3.0)
        .await
        .expect_err("pool times out")
        .into();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

async fn subscriber_receives_published_messages(redis: RedisClient, _topo: &SharedTopology) {
    let sub = redis.subscriber().await.expect("subscriber");
    let channel = common::prefix("chan");
    let mut rx = sub.message_rx();
    sub.subscribe(&channel).await.expect("SUBSCRIBE");
    let received = tokio::spawn(async move {
        let mut got = HashMap::new();
        while got.len() < 3 {
            let m = rx.recv().await.expect("message");
            got.insert(m.value.as_string().unwrap_or_default(), ());
        }
        got.len()
    });
    // Pub/sub is at-most-once (on a loaded cluster the bus may drop a message): this checks
    // that messages get through, so each one is published again until the subscriber has it.
    let publisher = {
        let (redis, channel) = (redis.clone(), channel.clone());
        tokio::spawn(async move {
            loop {
                for i in 0..3 {
                    let _: Result<i64, _> = redis.next().publish(&channel, format!("m{i}")).await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let n = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .expect("delivered")
        .expect("task");
    publisher.abort();
    assert_eq!(n, 3);
}

async fn tracking_client_is_told_when_a_read_key_changes(
    redis: RedisClient,
    _topo: &SharedTopology,
) {
    let tracker = redis
        .dedicated(Dedicated::Tracking)
        .await
        .expect("RESP3 client");
    let mut rx = tracker.invalidation_rx();
    tracker
        .start_tracking(Vec::<String>::new(), false, false, false, false)
        .await
        .expect("CLIENT TRACKING on");
    let key = Namespace::new(common::prefix("track"))
        .expect("ns")
        .key("k");
    let _: () = redis
        .pool()
        .set(&key, "v1", Some(Expiration::EX(60)), None, false)
        .await
        .expect("SET");
    let v: String = tracker.get(&key).await.expect("tracked read");
    assert_eq!(v, "v1");
    let _: () = redis
        .pool()
        .set(&key, "v2", Some(Expiration::EX(60)), None, false)
        .await
        .expect("SET");
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let inv = rx.recv().await.expect("invalidation channel open");
            if inv.keys.iter().any(|k| k.as_str() == Some(key.as_str())) {
                return inv;
            }
        }
    })
    .await
    .expect("invalidation delivered within 5 s");
    assert!(got.keys.iter().any(|k| k.as_str() == Some(key.as_str())));
    tracker.quit().await.ok();
}
