//! Inspection for operators on real servers (every topology): `inspect`, `held_locks` and
//! `force_release`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dlock::{LockClient, LockConfig, LockKind};
use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology};

/// A client of the shared topology of `kind`, as the suite's least-privilege user.
async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    (connect(&suite_url(topo)).await, topo)
}

/// On a secure topology, a user with exactly `dlock::acl_rule("t:dlock:*")`.
fn suite_url(t: &SharedTopology) -> String {
    let user = format!("dlock-inspect-{}", std::process::id());
    tokio::task::block_in_place(|| t.url_for(&user, &dlock::acl_rule("t:dlock:*").to_string()))
        .unwrap_or_else(|e| panic!("suite user: {e}"))
}

async fn connect(url: &str) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

fn locks(redis: &RedisClient, ns: &str) -> LockClient {
    let mut cfg = LockConfig::new(ns.to_string());
    cfg.lease = Duration::from_secs(3);
    cfg.wait = Duration::from_secs(10);
    LockClient::new(redis.clone(), cfg).expect("config")
}

fn namespace(test: &str) -> String {
    testkit::unique_name(&format!("t:dlock:inspect:{test}"))
}

testkit::topology_tests!(
    a_held_lock_shows_owner_fence_ttl_and_holds,
    a_fair_waiter_shows_in_the_line_and_gets_the_force_released_lock,
    held_locks_lists_exactly_the_held_ones_among_foreign_keys,
    force_release_wakes_a_waiter_and_the_next_fence_is_larger,
);

async fn a_held_lock_shows_owner_fence_ttl_and_holds(redis: RedisClient, _t: &SharedTopology) {
    let locks = locks(&redis, &namespace("held"));
    assert_eq!(locks.inspect("job").await.expect("inspect"), None);
    let owner = locks.owner();
    let g1 = locks
        .lock("job")
        .owner(&owner)
        .acquire()
        .await
        .expect("hold 1");
    let g2 = locks
        .lock("job")
        .owner(&owner)
        .acquire()
        .await
        .expect("hold 2");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let info = locks.inspect("job").await.expect("inspect").expect("held");
    assert_eq!(info.kind, LockKind::Lock);
    assert_eq!(info.owners, [owner.id()]);
    assert_eq!(info.fence, Some(g1.fence()));
    assert_eq!(info.holds, 2);
    let ttl = info.ttl_left.expect("a lease");
    assert!(
        ttl > Duration::ZERO && ttl <= Duration::from_secs(3),
        "{info:?}"
    );
    let held = info.held_for.expect("the fence is a time");
    assert!(
        held >= Duration::from_millis(150) && held < Duration::from_secs(3),
        "{info:?}"
    );
    assert!(info.fair_line.is_empty() && !info.waiting, "{info:?}");
    g2.release().await.expect("release");
    assert_eq!(
        locks
            .inspect("job")
            .await
            .expect("inspect")
            .map(|i| i.holds),
        Some(1)
    );
    g1.release().await.expect("release");
    assert_eq!(locks.inspect("job").await.expect("inspect"), None);
    assert!(locks.inspect("bad{name}").await.is_err());
}

async fn a_fair_waiter_shows_in_the_line_and_gets_the_force_released_lock(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("fair");
    let holder = locks(&redis, &ns);
    let other = locks(&connect(&suite_url(t)).await, &ns);
    let held = holder
        .lock("fair")
        .fair(true)
        .acquire()
        .await
        .expect("hold");
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move { other.lock("fair").fair(true).acquire().await })
    };
    let until = Instant::now() + Duration::from_secs(5);
    let info = loop {
        let info = holder
            .inspect("fair")
            .await
            .expect("inspect")
            .expect("held");
        if !info.fair_line.is_empty() {
            break info;
        }
        assert!(Instant::now() < until, "no waiter in line: {info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info.fair_line.len(), 1, "{info:?}");
    assert!(info.fair_line[0].contains('|'), "{info:?}");

    assert!(holder.force_release("fair").await.expect("force_release"));
    let got = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the waiter is handed the lock at once")
        .expect("task")
        .expect("acquired");
    assert!(got.fence() > held.fence());
    let info = holder
        .inspect("fair")
        .await
        .expect("inspect")
        .expect("held");
    assert_eq!(info.fence, Some(got.fence()));
    assert!(info.fair_line.is_empty(), "{info:?}");
    tokio::time::timeout(Duration::from_secs(4), held.lost())
        .await
        .expect("the freed holder learns it lost the lock");
    got.release().await.expect("release");
}

async fn held_locks_lists_exactly_the_held_ones_among_foreign_keys(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("list");
    let locks = locks(&redis, &ns);
    let mut guards = Vec::new();
    for name in ["a", "b:1", "c"] {
        guards.push(locks.lock(name).acquire().await.expect("lock"));
    }
    guards.push(locks.semaphore("s", 3).acquire().await.expect("permit"));
    guards.push(locks.rwlock("w").write().await.expect("write"));
    guards.push(locks.rwlock("r").read().await.expect("read"));
    // Released: only its fence counter is left.
    locks
        .lock("gone")
        .acquire()
        .await
        .expect("lock")
        .release()
        .await
        .expect("release");

    // Someone else's keys under the namespace, some of a lock's shape but another type.
    let admin = connect(t.url()).await;
    let list = format!("{ns}:{{foreign}}");
    let _: i64 = admin.for_key(&list).rpush(&list, "x").await.expect("RPUSH");
    let sem = format!("{ns}:sem:{{odd}}");
    let _: () = admin
        .for_key(&sem)
        .set(&sem, "x", None, None, false)
        .await
        .expect("SET");
    let rw = format!("{ns}:rw:{{odd2}}:r");
    let _: i64 = admin.for_key(&rw).sadd(&rw, "x").await.expect("SADD");
    for i in 0..300 {
        let k = format!("{ns}:junk:{i}");
        let _: () = admin
            .for_key(&k)
            .set(&k, "x", None, None, false)
            .await
            .expect("SET");
    }

    let held = locks.held_locks(100).await.expect("held_locks");
    let names: BTreeSet<&str> = held.locks.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["a", "b:1", "c", "s", "w", "r"]),
        "{held:?}"
    );
    assert!(held.complete && held.scanned >= 300, "{held:?}");
    let kind = |n: &str| {
        held.locks
            .iter()
            .find(|l| l.name == n)
            .map(|l| l.kind.clone())
    };
    assert_eq!(kind("s"), Some(LockKind::Semaphore));
    assert_eq!(kind("w"), Some(LockKind::RwLock));
    assert_eq!(kind("a"), Some(LockKind::Lock));
    let reader = held.locks.iter().find(|l| l.name == "r").expect("r");
    assert_eq!((reader.holds, reader.fence), (1, None));
    assert!(reader.ttl_left.is_some(), "{reader:?}");

    let foreign = locks
        .inspect("foreign")
        .await
        .expect("inspect")
        .expect("a key");
    assert!(
        matches!(&foreign.kind, LockKind::Unknown(why) if why.contains("list")),
        "{foreign:?}"
    );
    assert!(
        locks.force_release("foreign").await.is_err(),
        "not a lock hash"
    );

    let some = locks.held_locks(2).await.expect("held_locks");
    assert!(some.locks.len() == 2 && !some.complete, "{some:?}");

    for g in guards {
        g.release().await.expect("release");
    }
    let none = locks.held_locks(100).await.expect("held_locks");
    assert!(none.locks.is_empty() && none.complete, "{none:?}");
}

async fn force_release_wakes_a_waiter_and_the_next_fence_is_larger(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("force");
    let holder = locks(&redis, &ns);
    let other = locks(&connect(&suite_url(t)).await, &ns);
    assert!(!holder.force_release("job").await.expect("not held"));
    let held = holder.lock("job").acquire().await.expect("hold");
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move { other.lock("job").acquire().await })
    };
    let until = Instant::now() + Duration::from_secs(5);
    while !holder
        .inspect("job")
        .await
        .expect("inspect")
        .expect("held")
        .waiting
    {
        assert!(Instant::now() < until, "the waiter never announced itself");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    assert!(holder.force_release("job").await.expect("force_release"));
    let got = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the waiter is woken, not left to its timer")
        .expect("task")
        .expect("acquired");
    eprintln!(
        "{}: waiter got the lock {:?} after force_release",
        t.kind,
        start.elapsed()
    );
    assert!(got.fence() > held.fence(), "fencing stays monotonic");
    tokio::time::timeout(Duration::from_secs(4), held.lost())
        .await
        .expect("the freed holder learns it lost the lock");
    let got_fence = got.fence();
    got.release().await.expect("release");
    let again = holder.lock("job").acquire().await.expect("hold");
    assert!(again.fence() > got_fence);
    again.release().await.expect("release");
}
