//! `redkit locks`, `redkit lock`, `redkit caches` and `redkit cache` against live Redis, on
//! standalone and Cluster: the JSON matches what dlock and cache-core themselves report;
//! force-release frees exactly the lock it names (its holder learns it lost the lease, the
//! next fence is larger); unknown names exit 4; the hits of two separate processes add up in
//! `redkit cache NAME` within 2 s.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cache_core::Cache;
use fred::interfaces::KeysInterface;
use redis_conn::{RedisClient, RedisConfig};
use redkit_console::exit;
use testkit::{Kind, SharedTopology};

mod common;
use common::{cache_config, lock_client, redkit, redkit_json, registered_prefix, shared};

two_topologies!(
    locks_and_lock_json_match_what_dlock_holds,
    force_release_frees_exactly_that_lock_and_the_next_fence_is_larger,
    caches_and_cache_json_match_the_shared_stats,
    a_foreign_key_is_an_error_row_not_a_broken_listing,
);

fn u(v: &serde_json::Value, k: &str) -> u64 {
    v.get(k)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no {k} in {v}"))
}

async fn locks_and_lock_json_match_what_dlock_holds(redis: RedisClient, t: &SharedTopology) {
    let ns = testkit::unique_name("t:console:locks");
    let locks = lock_client(&redis, &ns);
    let a = locks.lock("report:a").acquire().await.expect("a");
    let b = locks.lock("report:b").acquire().await.expect("b");
    registered_prefix(&redis, &ns).await;

    let all = redkit_json(t.url(), &["locks"]);
    assert!(
        all.as_array()
            .expect("array")
            .iter()
            .any(|n| n.get("namespace").and_then(|v| v.as_str()) == Some(ns.as_str())),
        "{ns} not listed: {all}"
    );
    let held = redkit_json(t.url(), &["locks", &ns]);
    assert_eq!(
        held.get("complete"),
        Some(&serde_json::json!(true)),
        "{held}"
    );
    let rows = held.get("locks").and_then(|v| v.as_array()).expect("locks");
    assert_eq!(rows.len(), 2, "{held}");
    for (row, guard) in rows.iter().zip([&a, &b]) {
        let info = locks
            .inspect(guard.name())
            .await
            .expect("inspect")
            .expect("held");
        assert_eq!(row.get("name").and_then(|v| v.as_str()), Some(guard.name()));
        assert_eq!(row.get("kind").and_then(|v| v.as_str()), Some("lock"));
        assert_eq!(u(row, "fence"), guard.fence());
        assert_eq!(
            row.get("owners"),
            Some(&serde_json::json!(info.owners)),
            "{row}"
        );
        let ttl = u(row, "ttl_left_ms");
        assert!(ttl > 0 && ttl <= 3000, "{row}");
    }
    let one = redkit_json(t.url(), &["lock", &ns, "report:a"]);
    assert_eq!(u(&one, "fence"), a.fence());
    assert_eq!(u(&one, "holds"), 1);

    // Unknown names: exit 4 with a message naming them.
    let (code, _, err) = redkit(t.url(), &["lock", &ns, "not-held"]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    assert!(err.contains("not-held"), "{err}");
    let missing = testkit::unique_name("t:console:no-such-locks");
    let (code, _, err) = redkit(t.url(), &["locks", &missing]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    // Looking at an unknown namespace registers nothing.
    let (all, _) = redis_conn::registry::registered(&redis, None)
        .await
        .expect("registry");
    assert!(
        all.iter().all(|e| e.prefix != missing),
        "{missing} registered"
    );
    a.release().await.expect("release a");
    b.release().await.expect("release b");
    let held = redkit_json(t.url(), &["locks", &ns]);
    assert_eq!(
        held.get("locks").and_then(|v| v.as_array()).map(Vec::len),
        Some(0),
        "{held}"
    );
}

async fn force_release_frees_exactly_that_lock_and_the_next_fence_is_larger(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = testkit::unique_name("t:console:force");
    let locks = lock_client(&redis, &ns);
    let stuck = locks.lock("stuck").acquire().await.expect("stuck");
    let other = locks.lock("other").acquire().await.expect("other");
    let old_fence = stuck.fence();
    registered_prefix(&redis, &ns).await;

    // Without --yes: refused, with the fencing warning, and nothing changes.
    let (code, _, err) = redkit(t.url(), &["lock", &ns, "stuck", "force-release"]);
    assert_eq!(code, i32::from(exit::REFUSED), "{err}");
    assert!(err.contains("fencing"), "{err}");
    assert!(locks.inspect("stuck").await.expect("inspect").is_some());

    let out = redkit_json(t.url(), &["lock", &ns, "stuck", "force-release", "--yes"]);
    let released = out.get("released").expect("released");
    assert_eq!(u(released, "fence"), old_fence, "{out}");
    assert_eq!(locks.inspect("stuck").await.expect("inspect"), None);
    assert!(
        locks.inspect("other").await.expect("inspect").is_some(),
        "only the named lock is freed"
    );
    // The freed holder learns it lost the lease (at its next renewal).
    tokio::time::timeout(Duration::from_secs(5), stuck.lost())
        .await
        .expect("the freed holder is told within a lease");
    let next = locks.lock("stuck").acquire().await.expect("next holder");
    assert!(next.fence() > old_fence, "{} > {old_fence}", next.fence());
    // Force-releasing a lock that is not held: exit 4.
    next.release().await.expect("release");
    let (code, _, err) = redkit(t.url(), &["lock", &ns, "stuck", "force-release", "--yes"]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    other.release().await.expect("release other");
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

async fn caches_and_cache_json_match_the_shared_stats(redis: RedisClient, t: &SharedTopology) {
    let ns = testkit::unique_name("t:console:cache");
    let cache = Cache::new(redis.clone(), cache_config(&ns)).expect("cache");
    hits(&cache, 1).await; // a miss and a build
    hits(&cache, 9).await;
    assert!(cache.flush_shared_stats().await.expect("flush"));
    registered_prefix(&redis, &ns).await;
    let shared = cache_core::SharedStats::load(&redis, &ns)
        .await
        .expect("load");
    let one = redkit_json(t.url(), &["cache", &ns]);
    let t_ = shared.totals;
    assert_eq!(
        u(&one, "hits"),
        t_.hits + t_.null_hits + t_.l1_hits,
        "{one}"
    );
    assert_eq!(u(&one, "hits"), 9, "{one}");
    assert_eq!(u(&one, "misses"), t_.misses);
    assert_eq!(u(&one, "builds"), 1);
    assert_eq!(u(&one, "live_processes"), 1);
    assert_eq!(u(&one, "breakers_open"), 0);
    let ratio = one
        .get("hit_ratio")
        .and_then(serde_json::Value::as_f64)
        .expect("ratio");
    assert!((ratio - 0.9).abs() < 1e-9, "{one}");
    let all = redkit_json(t.url(), &["caches"]);
    let row = all
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c.get("namespace").and_then(|v| v.as_str()) == Some(ns.as_str()))
        .unwrap_or_else(|| panic!("{ns} not listed: {all}"));
    assert_eq!(u(row, "hits"), 9);
    // Unknown cache: exit 4.
    let (code, _, err) = redkit(t.url(), &["cache", "t:console:no-such-cache"]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    assert!(err.contains("no cache"), "{err}");
}

async fn a_foreign_key_is_an_error_row_not_a_broken_listing(
    redis: RedisClient,
    t: &SharedTopology,
) {
    // A cache whose stats key someone overwrote with a string, and a queue whose stats key
    // is a list: both listings still answer, with an error for that one entry.
    let ns = testkit::unique_name("t:console:foreign");
    let cache = Cache::new(redis.clone(), cache_config(&ns)).expect("cache");
    registered_prefix(&redis, &ns).await;
    drop(cache);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = format!("{ns}:__stats__");
    let _: () = redis
        .pool()
        .set(&stats, "not a hash", None, None, false)
        .await
        .expect("set");
    let all = redkit_json(t.url(), &["caches"]);
    let row = all
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c.get("namespace").and_then(|v| v.as_str()) == Some(ns.as_str()))
        .unwrap_or_else(|| panic!("{ns} not listed: {all}"));
    assert!(row.get("error").and_then(|e| e.as_str()).is_some(), "{row}");
    let (code, _, err) = redkit(t.url(), &["cache", &ns]);
    assert_eq!(code, i32::from(exit::FAILED), "{err}");

    let q = common::queue(&redis, "foreign");
    common::registered(&redis, &q).await;
    let base = format!("{}:{{{}}}", q.config().namespace, q.config().name);
    let _: () = redis
        .pool()
        .set(format!("{base}:stats"), "not a hash", None, None, false)
        .await
        .expect("set");
    let all = redkit_json(t.url(), &["queues"]);
    let row = all
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r.get("queue").and_then(|v| v.as_str()) == Some(common::qname(&q).as_str()))
        .unwrap_or_else(|| panic!("not listed: {all}"));
    assert!(row.get("error").and_then(|e| e.as_str()).is_some(), "{row}");
}

/// One child process of [`hits_of_two_processes_add_up_in_redkit_cache`]: `n` hits on the
/// cache, then "done" on stdout, then it keeps running (its periodic flush sends the
/// counters) until the parent kills it.
async fn child(url: &str, ns: &str, n: usize) {
    let redis = RedisClient::connect(RedisConfig::from_url(url).expect("url"))
        .await
        .expect("connect");
    let cache = Cache::new(redis, cache_config(ns)).expect("cache");
    hits(&cache, n).await;
    println!("done {}", cache.shared_stats_id().unwrap_or_default());
    tokio::time::sleep(Duration::from_secs(60)).await;
}

const CHILD_ENV: &str = "REDKIT_TEST_CACHE_CHILD";

// The caller kills and waits for the child it is handed.
#[allow(clippy::zombie_processes)]
fn spawn_child(url: &str, ns: &str, n: usize) -> (Child, String) {
    let mut c = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "hits_of_two_processes_add_up_in_redkit_cache",
            "--nocapture",
        ])
        .env(CHILD_ENV, format!("{url} {ns} {n}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let out = c.stdout.take().expect("stdout");
    let mut line = String::new();
    let mut r = BufReader::new(out);
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            let status = c.wait();
            panic!("child exited before its hits were done: {status:?}");
        }
        if let Some(id) = line.trim().strip_prefix("done ") {
            return (c, id.to_string());
        }
    }
}

/// Two separate processes hit one cache; `redkit cache NAME` shows their sum within 2 s of
/// the last hit, and both processes, on standalone and on Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_of_two_processes_add_up_in_redkit_cache() {
    if let Ok(args) = std::env::var(CHILD_ENV) {
        let mut it = args.split(' ');
        let (url, ns, n) = (
            it.next().expect("url"),
            it.next().expect("ns"),
            it.next().and_then(|n| n.parse().ok()).expect("n"),
        );
        return child(url, ns, n).await;
    }
    for kind in [Kind::Standalone, Kind::Cluster] {
        let (redis, t) = shared(kind).await;
        let ns = testkit::unique_name("t:console:procs");
        // The entry is there before either process starts (a build to leave only hits).
        let seed = Cache::new(redis.clone(), cache_config(&ns)).expect("cache");
        seed.set("k", &"built".to_string(), None)
            .await
            .expect("set");
        drop(seed);
        let (mut a, id_a) = tokio::task::block_in_place(|| spawn_child(t.url(), &ns, 30));
        let (mut b, id_b) = tokio::task::block_in_place(|| spawn_child(t.url(), &ns, 20));
        let last_hit = Instant::now();
        let view = loop {
            let v = redkit_json(t.url(), &["cache", &ns]);
            if u(&v, "hits") == 50 {
                break v;
            }
            assert!(
                last_hit.elapsed() < Duration::from_secs(2),
                "{kind}: not summed within 2 s: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!(
            "{kind}: 30 + 20 hits of two processes shown by `redkit cache` {:?} after the last hit",
            last_hit.elapsed()
        );
        let procs = view
            .get("processes")
            .and_then(|v| v.as_array())
            .expect("processes");
        for (id, n) in [(&id_a, 30), (&id_b, 20)] {
            let p = procs
                .iter()
                .find(|p| p.get("id").and_then(|v| v.as_str()) == Some(id.as_str()))
                .unwrap_or_else(|| panic!("{id} not listed: {view}"));
            assert_eq!(u(p, "hits"), n, "{p}");
            assert_eq!(p.get("breaker").and_then(|v| v.as_str()), Some("closed"));
        }
        assert!(u(&view, "live_processes") >= 2, "{view}");
        for c in [&mut a, &mut b] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
