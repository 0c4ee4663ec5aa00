//! What the console's test files share: topologies, seeded queues, the `redkit` binary.
#![allow(dead_code, unreachable_pub)]

pub mod browser;

use std::process::Command;
use std::time::Duration;

use redis_conn::{RedisClient, RedisConfig};
use rqueue::{Queue, QueueConfig};
use testkit::{Kind, SharedTopology};

/// An admin client for the shared topology of `kind` (started on first use).
pub async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    let redis = RedisClient::connect(RedisConfig::from_url(topo.url()).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", topo.url()));
    (redis, topo)
}

/// The namespace every test queue lives in.
pub const NS: &str = "t:console";

/// A typed test message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub id: u64,
    pub note: String,
}

/// A fresh queue in [`NS`].
pub fn queue(redis: &RedisClient, test: &str) -> Queue<Order> {
    let mut cfg = QueueConfig::new(testkit::unique_name(test));
    cfg.namespace = NS.into();
    cfg.max_attempts = 1;
    Queue::new(redis.clone(), cfg).expect("queue")
}

/// `namespace/name` of a queue.
pub fn qname(q: &Queue<Order>) -> String {
    format!("{}/{}", q.config().namespace, q.config().name)
}

/// Seeds `ready` ready, `delayed` delayed, `in_flight` leased and `dead` dead messages;
/// returns the dead ids.
pub async fn seed(
    q: &Queue<Order>,
    ready: u64,
    delayed: u64,
    in_flight: u64,
    dead: u64,
) -> Vec<String> {
    let order = |i: u64| Order {
        id: i,
        note: format!("order {i}"),
    };
    for i in 0..dead {
        q.enqueue(&order(1000 + i)).await.expect("enqueue");
    }
    let mut dead_ids = Vec::new();
    for d in q.claim(dead as usize).await.expect("claim") {
        dead_ids.push(d.id().to_string());
        let reason = format!("bad order {}", d.message().id);
        d.dead(&reason).await.expect("dead");
    }
    for i in 0..in_flight {
        q.enqueue(&order(2000 + i)).await.expect("enqueue");
    }
    let leased = q.claim(in_flight as usize).await.expect("claim");
    assert_eq!(leased.len() as u64, in_flight);
    // Kept leased (not acked) until the queue's lease runs out.
    std::mem::forget(leased);
    for i in 0..delayed {
        q.message(&order(3000 + i))
            .delay(Duration::from_secs(600))
            .send()
            .await
            .expect("delayed");
    }
    for i in 0..ready {
        q.enqueue(&order(i)).await.expect("enqueue");
    }
    dead_ids
}

/// Waits until the registry lists the queue (registration runs in the background).
pub async fn registered(redis: &RedisClient, q: &Queue<Order>) {
    registered_prefix(
        redis,
        &format!("{}:{{{}}}", q.config().namespace, q.config().name),
    )
    .await;
}

/// Waits until the registry lists an entry with this prefix (a queue's, a lock namespace's or
/// a cache's).
pub async fn registered_prefix(redis: &RedisClient, prefix: &str) {
    for _ in 0..100 {
        let (all, _) = redis_conn::registry::registered(redis, None)
            .await
            .expect("registry");
        if all.iter().any(|e| e.prefix == prefix) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{prefix} was not registered within 2 s");
}

/// A lock client of `ns` with a 3 s lease (a freed holder learns it within a second).
pub fn lock_client(redis: &RedisClient, ns: &str) -> dlock::LockClient {
    let mut cfg = dlock::LockConfig::new(ns.to_string());
    cfg.lease = Duration::from_secs(3);
    cfg.wait = Duration::from_secs(10);
    dlock::LockClient::new(redis.clone(), cfg).expect("lock client")
}

/// A cache of `ns` flushing its counters every second, without early refresh.
pub fn cache_config(ns: &str) -> cache_core::CacheConfig {
    let mut cfg = cache_core::CacheConfig::new(ns.to_string());
    cfg.shared_stats = Some(Duration::from_secs(1));
    cfg.xfetch_beta = 0.0;
    cfg
}

/// Each test of the list as `standalone::<name>` and `cluster::<name>`, on the shared
/// topologies, with the servers' logs shown when it fails.
#[macro_export]
macro_rules! two_topologies {
    ($($name:ident),* $(,)?) => {
        mod standalone { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (c, t) = $crate::common::shared(testkit::Kind::Standalone).await;
                testkit::run_logged(t.topology(), super::$name(c, t)).await;
            }
        )* }
        mod cluster { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (c, t) = $crate::common::shared(testkit::Kind::Cluster).await;
                testkit::run_logged(t.topology(), super::$name(c, t)).await;
            }
        )* }
    };
}

/// Runs the `redkit` binary against `url`; returns (exit code, stdout, stderr).
pub fn redkit(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redkit"))
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("REDIS_URL")
        .output()
        .expect("run redkit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `redkit --format json ARGS`, asserts exit 0 and parses stdout.
pub fn redkit_json(url: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = redkit(url, &all);
    assert_eq!(code, 0, "redkit {args:?} failed: {err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("redkit {args:?}: not JSON ({e}): {out}"))
}
