//! dlock on real servers: every topology for the core paths, own servers for faults.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dlock::{Error, Fenced, LockClient, LockConfig, LostReason, Released, fenced_set};
use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology};

/// A client of the shared topology of `kind`, as the suite's least-privilege user.
async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    (connect(&suite_url(topo)).await, topo)
}

/// The URL the suite runs as: on a secure topology (`REDKIT_SECURE=1`) an ACL user
/// `dlock-suite-<pid>` with `dlock::acl_rule("t:dlock:*")`, which covers every test namespace
/// ([`namespace`]); otherwise the topology's URL. Checks that need other commands use
/// `t.url()` (full rights). One user per test process: `url_for` gives each process its own
/// password and resets the user's passwords, so processes sharing one name (nextest runs each
/// test in its own) would lock each other out.
fn suite_url(t: &SharedTopology) -> String {
    let user = format!("dlock-suite-{}", std::process::id());
    tokio::task::block_in_place(|| t.url_for(&user, &dlock::acl_rule("t:dlock:*").to_string()))
        .unwrap_or_else(|e| panic!("suite user: {e}"))
}

async fn connect(url: &str) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

fn namespace(test: &str) -> String {
    testkit::unique_name(&format!("t:dlock:{test}"))
}

fn locks(redis: &RedisClient, ns: &str, lease: Duration) -> LockClient {
    locks_with(redis, ns, lease, |_| {})
}

fn locks_with(
    redis: &RedisClient,
    ns: &str,
    lease: Duration,
    tune: impl FnOnce(&mut LockConfig),
) -> LockClient {
    let mut cfg = LockConfig::new(ns.to_string());
    cfg.lease = lease;
    tune(&mut cfg);
    LockClient::new(redis.clone(), cfg).expect("config")
}

testkit::topology_tests!(
    sixteen_tasks_on_four_clients_never_overlap_and_fences_increase,
    reentrant_holds_count_and_exclude_other_owners,
    a_short_reentrant_hold_never_shortens_a_long_one,
    a_waiter_is_woken_by_the_release_not_by_the_lease,
    a_dropped_guard_is_released_in_the_background,
    a_deleted_lock_fires_lease_loss_and_release_reports_it,
    with_lock_cancels_its_body_when_the_lease_is_lost,
    a_long_critical_section_keeps_its_lock,
    acquire_times_out_with_a_typed_error,
    fair_waiters_get_the_lock_in_arrival_order,
    local_handoffs_skip_redis_and_later_grants_exceed_their_tokens,
    fair_local_handoffs_leave_the_redis_line_clean,
    local_handoffs_are_capped_so_other_clients_get_their_turn,
    a_cancelled_local_waiter_is_skipped,
    a_locally_passed_hold_is_renewed_and_its_loss_is_signalled,
    a_waiter_behind_a_lost_local_holder_asks_redis,
    a_lock_passed_to_a_waiter_nobody_polls_lapses,
    fair_locks_exclude_and_fence_under_contention,
    a_handed_over_lock_outlives_its_claim,
    a_semaphore_never_has_more_holders_than_permits,
    rwlock_admits_many_readers_or_one_writer,
    a_stream_of_readers_does_not_starve_a_writer,
    acquires_cancelled_at_any_moment_leave_nothing_behind,
);

/// 16 tasks over 4 independent clients, 400 sections each: GET, a 0–2 ms pause, SET on a plain
/// key. The final count is exact, and fencing tokens grow strictly in grant order.
async fn sixteen_tasks_on_four_clients_never_overlap_and_fences_increase(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("mutex");
    let counter = format!("{ns}:counter");
    let mut clients = Vec::new();
    for _ in 0..4 {
        let r = connect(&suite_url(t)).await;
        clients.push((locks(&r, &ns, Duration::from_secs(5)), r));
    }
    let fences = Arc::new(Mutex::new(Vec::with_capacity(6400)));
    let tasks = (0..16).map(|i| {
        let (locks, r) = clients[i % 4].clone();
        let (counter, fences) = (counter.clone(), fences.clone());
        tokio::spawn(async move {
            for _ in 0..400 {
                let guard = locks
                    .lock("counter")
                    .wait(Duration::from_secs(60))
                    .acquire()
                    .await
                    .expect("acquire");
                fences.lock().expect("fences").push(guard.fence());
                let v: Option<u64> = r.pool().get(&counter).await.expect("GET");
                let pause = fastrand::u64(0..=2000);
                tokio::time::sleep(Duration::from_micros(pause)).await;
                let _: () = r
                    .pool()
                    .set(&counter, v.unwrap_or(0) + 1, None, None, false)
                    .await
                    .expect("SET");
                let released = guard.release().await.expect("release");
                assert!(
                    matches!(released, Released::Free | Released::HandedOff),
                    "{released:?}"
                );
            }
        })
    });
    let start = Instant::now();
    for t in futures::future::join_all(tasks).await {
        t.expect("task");
    }
    let took = start.elapsed();
    let v: Option<u64> = redis.pool().get(&counter).await.expect("GET");
    assert_eq!(v, Some(6400), "lost updates: the lock let sections overlap");
    let fences = fences.lock().expect("fences").clone();
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens not strictly increasing in grant order"
    );
    let handoffs: u64 = clients.iter().map(|(l, _)| l.stats().handoffs).sum();
    let local: u64 = clients.iter().map(|(l, _)| l.stats().local_handoffs).sum();
    eprintln!(
        "6400 sections over 16 tasks / 4 clients in {took:?} ({:.0}/s), {handoffs} after waiting, {local} passed locally",
        6400.0 / took.as_secs_f64()
    );
    assert!(
        local > 0,
        "four tasks per client never passed the lock locally"
    );
}

async fn reentrant_holds_count_and_exclude_other_owners(redis: RedisClient, _t: &SharedTopology) {
    let locks = locks(&redis, &namespace("reentry"), Duration::from_secs(5));
    let (me, other) = (locks.owner(), locks.owner());
    let outer = locks.lock("r").owner(&me).acquire().await.expect("outer");
    let inner = locks
        .lock("r")
        .owner(&me)
        .try_acquire()
        .await
        .expect("try")
        .expect("the same owner re-enters");
    assert_eq!(inner.fence(), outer.fence(), "one grant, one token");
    assert!(
        locks
            .lock("r")
            .owner(&other)
            .try_acquire()
            .await
            .expect("try")
            .is_none(),
        "another owner is excluded"
    );
    assert!(
        locks.lock("r").try_acquire().await.expect("try").is_none(),
        "an anonymous request is excluded"
    );
    assert_eq!(
        inner.release().await.expect("inner"),
        Released::StillHeld(1)
    );
    assert!(
        locks
            .lock("r")
            .owner(&other)
            .try_acquire()
            .await
            .expect("try")
            .is_none(),
        "still held by the outer hold"
    );
    let first_fence = outer.fence();
    assert_eq!(outer.release().await.expect("outer"), Released::Free);
    let next = locks
        .lock("r")
        .owner(&other)
        .try_acquire()
        .await
        .expect("try")
        .expect("free now");
    assert!(next.fence() > first_fence);
    next.release().await.expect("release");
}

/// An owner holds a lock with a 6 s lease and re-enters it with a 300 ms one: renewing the short
/// hold must not cut the key's TTL under the long hold (found by review).
async fn a_short_reentrant_hold_never_shortens_a_long_one(redis: RedisClient, _t: &SharedTopology) {
    let locks = locks(&redis, &namespace("reentry-ttl"), Duration::from_secs(6));
    let me = locks.owner();
    let outer = locks.lock("t").owner(&me).acquire().await.expect("outer");
    let inner = locks
        .lock("t")
        .owner(&me)
        .lease(Duration::from_millis(300))
        .acquire()
        .await
        .expect("inner");
    tokio::time::sleep(Duration::from_millis(1200)).await; // the inner hold was renewed
    assert_eq!(
        inner.release().await.expect("inner"),
        Released::StillHeld(1)
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        locks.lock("t").try_acquire().await.expect("try").is_none(),
        "another owner got the lock while the 6 s hold is still held"
    );
    assert!(!outer.is_lost());
    assert_eq!(outer.release().await.expect("outer"), Released::Free);
}

/// The holder's lease is 30 s; the waiter must get the lock right after the release, woken
/// through pub/sub, not when the lease would have run out.
async fn a_waiter_is_woken_by_the_release_not_by_the_lease(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("wake");
    let holder = locks(&redis, &ns, Duration::from_secs(30));
    let waiter = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(30));
    let guard = holder.lock("w").acquire().await.expect("holder");
    let released_at = Arc::new(Mutex::new(None::<Instant>));
    let task = {
        let (waiter, released_at) = (waiter.clone(), released_at.clone());
        tokio::spawn(async move {
            let g = waiter
                .lock("w")
                .wait(Duration::from_secs(10))
                .acquire()
                .await
                .expect("waiter");
            let at = Instant::now();
            let released = released_at.lock().expect("at").expect("released first");
            g.release().await.expect("release");
            at.duration_since(released)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    *released_at.lock().expect("at") = Some(Instant::now());
    guard.release().await.expect("release");
    let after = task.await.expect("task");
    assert!(
        after < Duration::from_secs(1),
        "the waiter got the lock {after:?} after the release"
    );
    eprintln!("waiter acquired {after:?} after the release (holder lease 30 s)");
}

async fn a_dropped_guard_is_released_in_the_background(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("drop");
    let a = locks(&redis, &ns, Duration::from_secs(30));
    let b = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(30));
    {
        let _guard = a.lock("d").acquire().await.expect("a");
    } // dropped without release()
    let start = Instant::now();
    let g = b
        .lock("d")
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .expect("free soon after the drop");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    g.release().await.expect("release");
    assert_eq!(a.stats().held, 0, "the watchdog forgot the dropped hold");
}

/// Someone deletes the lock (or it expired while Redis was unreachable): the next renewal is
/// refused, the lease-loss signal fires, and release says the hold was already gone.
async fn a_deleted_lock_fires_lease_loss_and_release_reports_it(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let ns = namespace("loss");
    let locks = locks(&redis, &ns, Duration::from_millis(600));
    let guard = locks.lock("l").acquire().await.expect("acquire");
    let lost = guard.lost();
    let _: i64 = redis.pool().del(format!("{ns}:{{l}}")).await.expect("DEL");
    let reason = tokio::time::timeout(Duration::from_secs(2), lost)
        .await
        .expect("lease loss signalled within a renewal period");
    assert_eq!(reason, LostReason::Refused);
    assert!(guard.is_lost());
    assert!(matches!(guard.extend().await, Err(Error::LeaseLost { .. })));
    assert_eq!(
        guard.release().await.expect("release"),
        Released::AlreadyExpired
    );
    assert_eq!(locks.stats().losses, 1);
}

async fn with_lock_cancels_its_body_when_the_lease_is_lost(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let ns = namespace("with-lock");
    let locks = locks(&redis, &ns, Duration::from_millis(600));
    let done = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (redis, ns) = (redis.clone(), ns.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _: i64 = redis
                .pool()
                .del(format!("{ns}:{{job}}"))
                .await
                .expect("DEL");
        })
    };
    let start = Instant::now();
    let out = locks
        .with_lock("job", |_fence| {
            let done = done.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
    killer.await.expect("killer");
    assert!(matches!(out, Err(Error::LeaseLost { .. })), "{out:?}");
    assert_eq!(done.load(Ordering::SeqCst), 0, "the body was cancelled");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let v = locks
        .with_lock("job", |fence| async move { fence })
        .await
        .expect("a normal run");
    assert!(v > 0);
}

/// A section lasting 3× the lease keeps its lock (the watchdog renews), and others are kept
/// out the whole time.
async fn a_long_critical_section_keeps_its_lock(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("long");
    let lease = Duration::from_millis(300);
    let a = locks(&redis, &ns, lease);
    let b = locks(&connect(&suite_url(t)).await, &ns, lease);
    let guard = a.lock("long").acquire().await.expect("a");
    let start = Instant::now();
    while start.elapsed() < lease * 3 {
        assert!(
            b.lock("long").try_acquire().await.expect("try").is_none(),
            "b got the lock {:?} into a's section",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!guard.is_lost());
    assert_eq!(guard.release().await.expect("release"), Released::Free);
    let s = a.stats();
    assert!(s.renewals >= 3, "{s:?}");
    assert_eq!(s.losses, 0, "{s:?}");
}

/// Five waiters queue up 50 ms apart on two clients; the holder releases; they get the lock in
/// exactly that order, each handed it by the previous holder's release (local hand-offs off:
/// strict FIFO across clients).
async fn fair_waiters_get_the_lock_in_arrival_order(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("fifo");
    let strict = |c: &mut LockConfig| c.local_handoffs = 0;
    let a = locks_with(&redis, &ns, Duration::from_secs(10), strict);
    let b = locks_with(
        &connect(&suite_url(t)).await,
        &ns,
        Duration::from_secs(10),
        strict,
    );
    let holder = a.lock("q").fair(true).acquire().await.expect("holder");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..5 {
        let (locks, order) = (
            if i % 2 == 0 { a.clone() } else { b.clone() },
            order.clone(),
        );
        waiters.push(tokio::spawn(async move {
            let g = locks
                .lock("q")
                .fair(true)
                .wait(Duration::from_secs(20))
                .acquire()
                .await
                .expect("waiter");
            order.lock().expect("order").push(i);
            tokio::time::sleep(Duration::from_millis(20)).await;
            g.release().await.expect("release")
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        holder.release().await.expect("release"),
        Released::HandedOff
    );
    let mut outcomes = Vec::new();
    for w in waiters {
        outcomes.push(w.await.expect("task"));
    }
    assert_eq!(*order.lock().expect("order"), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        outcomes,
        vec![
            Released::HandedOff,
            Released::HandedOff,
            Released::HandedOff,
            Released::HandedOff,
            Released::Free
        ]
    );
}

/// A hand-off grants a short claim; the new holder's watchdog renews it to the full lease, so
/// holding it for longer than the claim keeps it.
async fn a_handed_over_lock_outlives_its_claim(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("claim");
    let a = locks(&redis, &ns, Duration::from_secs(10));
    let b = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(10));
    let first = a.lock("c").fair(true).acquire().await.expect("first");
    let next = {
        let b = b.clone();
        tokio::spawn(async move { b.lock("c").fair(true).acquire().await.expect("next") })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(first.release().await.expect("release"), Released::HandedOff);
    let g = next.await.expect("task");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3000) {
        assert!(
            a.lock("c")
                .fair(true)
                .try_acquire()
                .await
                .expect("try")
                .is_none()
        );
        assert!(
            !g.is_lost(),
            "lost {:?} after the hand-off",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(g.release().await.expect("release"), Released::Free);
}

/// Fair mode under contention: 8 tasks over 2 clients, 100 sections each (GET, pause, SET):
/// exact count, strictly increasing fences, and nobody waits much longer than everyone's turn.
async fn fair_locks_exclude_and_fence_under_contention(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("fair-mutex");
    let counter = format!("{ns}:counter");
    let mut clients = Vec::new();
    for _ in 0..2 {
        let r = connect(&suite_url(t)).await;
        clients.push((locks(&r, &ns, Duration::from_secs(5)), r));
    }
    let fences = Arc::new(Mutex::new(Vec::new()));
    let tasks = (0..8).map(|i| {
        let (locks, r) = clients[i % 2].clone();
        let (counter, fences) = (counter.clone(), fences.clone());
        tokio::spawn(async move {
            let mut longest = Duration::ZERO;
            for _ in 0..100 {
                let asked = Instant::now();
                let guard = locks
                    .lock("counter")
                    .fair(true)
                    .wait(Duration::from_secs(60))
                    .acquire()
                    .await
                    .expect("acquire");
                longest = longest.max(asked.elapsed());
                fences.lock().expect("fences").push(guard.fence());
                let v: Option<u64> = r.pool().get(&counter).await.expect("GET");
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..=1000))).await;
                let _: () = r
                    .pool()
                    .set(&counter, v.unwrap_or(0) + 1, None, None, false)
                    .await
                    .expect("SET");
                guard.release().await.expect("release");
            }
            longest
        })
    });
    let mut longest = Duration::ZERO;
    for t in futures::future::join_all(tasks).await {
        longest = longest.max(t.expect("task"));
    }
    let v: Option<u64> = redis.pool().get(&counter).await.expect("GET");
    assert_eq!(v, Some(800));
    let fences = fences.lock().expect("fences").clone();
    assert!(fences.windows(2).all(|w| w[0] < w[1]));
    // 7 others ahead at most, each a few ms: far below the lease or a timer fallback.
    assert!(
        longest < Duration::from_millis(500),
        "longest wait {longest:?}"
    );
    eprintln!("fair: 800 sections, longest wait {longest:?}");
}

/// A fair waiter killed while in line does not block the line for long: its place lapses
/// (or its claim does) and the next waiter gets the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fair_waiter_does_not_block_the_line() {
    use std::io::BufRead;
    let (redis, t) = shared(Kind::Standalone).await;
    let ns = namespace("fair-kill");
    let locks = locks(&redis, &ns, Duration::from_secs(10));
    let holder = locks.lock("k").fair(true).acquire().await.expect("holder");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dlock-hold"))
        .args([suite_url(t).as_str(), ns.as_str(), "k", "10000", "fair"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dlock-hold");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let line = tokio::task::block_in_place(|| {
        let mut l = String::new();
        reader.read_line(&mut l).map(|_| l)
    })
    .expect("read");
    assert!(line.starts_with("WAITING"), "{line:?}");
    tokio::time::sleep(Duration::from_millis(300)).await; // it is in line now
    let next = {
        let locks = locks.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let g = locks
                .lock("k")
                .fair(true)
                .wait(Duration::from_secs(20))
                .acquire()
                .await
                .expect("the waiter behind the dead one");
            (Instant::now(), g)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let released = Instant::now();
    holder.release().await.expect("release");
    let (at, g) = next.await.expect("task");
    let took = at.duration_since(released);
    assert!(
        took < Duration::from_secs(5),
        "next waiter served {took:?} after the release"
    );
    g.release().await.expect("release");
    eprintln!("fair line with a killed waiter: next served {took:?} after the release");
}

async fn acquire_times_out_with_a_typed_error(redis: RedisClient, _t: &SharedTopology) {
    let locks = locks(&redis, &namespace("timeout"), Duration::from_secs(5));
    let g = locks.lock("t").acquire().await.expect("first");
    let start = Instant::now();
    let err = locks
        .lock("t")
        .wait(Duration::from_millis(300))
        .acquire()
        .await
        .expect_err("held");
    let waited = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1000),
        "gave up after {waited:?} for a 300 ms wait"
    );
    g.release().await.expect("release");
    assert!(matches!(
        locks.lock("bad{name}").try_acquire().await,
        Err(Error::Config(_))
    ));
}

/// A holder whose runtime stalls (a blocking call starves its watchdog) past its lease: a second
/// owner gets the lock with a larger token, the first holder's lease-loss signal fires when it
/// runs again, and its fenced write with the old token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_holder_loses_its_lease_and_its_fenced_write() {
    let (redis, t) = shared(Kind::Standalone).await;
    let ns = namespace("stall");
    let resource = format!("{ns}:inventory:{{stock}}");
    let url = suite_url(t);
    let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let stalled = std::thread::spawn({
        let (ns, resource) = (ns.clone(), resource.clone());
        move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let redis = connect(&url).await;
                let locks = locks(&redis, &ns, Duration::from_millis(500));
                let guard = locks.lock("stock").acquire().await.expect("first holder");
                let lost = guard.lost();
                tx.send(guard.fence()).expect("send");
                // The whole runtime stalls: no renewal can run.
                std::thread::sleep(Duration::from_millis(1500));
                let _ = resume_rx.recv_timeout(Duration::from_secs(10));
                let reason = tokio::time::timeout(Duration::from_millis(200), lost)
                    .await
                    .expect("the lease-loss signal fires as soon as the holder runs again");
                let write = fenced_set(&redis, &resource, guard.fence(), "first")
                    .await
                    .expect("fenced write");
                (reason, write, guard.release().await.expect("release"))
            })
        }
    });
    let first = rx.await.expect("first fence");
    let second_locks = locks(&redis, &ns, Duration::from_millis(500));
    let start = Instant::now();
    let g2 = second_locks
        .lock("stock")
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .expect("the second owner gets the lock once the lease ran out");
    let took = start.elapsed();
    assert!(g2.fence() > first, "{} > {first}", g2.fence());
    assert_eq!(
        fenced_set(&redis, &resource, g2.fence(), "second")
            .await
            .expect("write"),
        Fenced::Written
    );
    resume_tx.send(()).expect("resume");
    let (reason, write, released) = tokio::task::block_in_place(|| stalled.join()).expect("thread");
    assert_eq!(reason, LostReason::Deadline);
    assert_eq!(
        write,
        Fenced::Rejected {
            highest: g2.fence()
        }
    );
    assert_eq!(released, Released::AlreadyExpired);
    let v: Option<String> = redis.pool().get(&resource).await.expect("GET");
    assert_eq!(v.as_deref(), Some("second"));
    g2.release().await.expect("release");
    eprintln!("second owner acquired {took:?} after the first holder stalled (lease 500 ms)");
}

/// A holder process killed with SIGKILL: the lock is free after at most one lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_frees_the_lock_within_one_lease() {
    use std::io::BufRead;
    let (redis, t) = shared(Kind::Standalone).await;
    let ns = namespace("sigkill");
    let lease = Duration::from_millis(1000);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dlock-hold"))
        .args([suite_url(t).as_str(), ns.as_str(), "k", "1000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dlock-hold");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let line = tokio::task::block_in_place(|| {
        let mut line = String::new();
        reader.read_line(&mut line).map(|_| line)
    })
    .expect("read");
    let line = if line.starts_with("WAITING") {
        tokio::task::block_in_place(|| {
            let mut l = String::new();
            reader.read_line(&mut l).map(|_| l)
        })
        .expect("read")
    } else {
        line
    };
    let fence: u64 = line
        .strip_prefix("HELD ")
        .and_then(|f| f.trim().parse().ok())
        .unwrap_or_else(|| panic!("holder said {line:?}"));
    let locks = locks(&redis, &ns, lease);
    // Held, and kept held past its lease by the holder's watchdog.
    tokio::time::sleep(lease * 2).await;
    assert!(locks.lock("k").try_acquire().await.expect("try").is_none());
    child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let g = locks
        .lock("k")
        .wait(Duration::from_secs(10))
        .acquire()
        .await
        .expect("free after the lease");
    let took = killed.elapsed();
    let _ = child.wait();
    assert!(
        took <= lease + Duration::from_millis(200),
        "free {took:?} after the kill"
    );
    assert!(g.fence() > fence);
    g.release().await.expect("release");
    eprintln!("lock free {took:?} after SIGKILL of its holder (lease {lease:?})");
}

/// After release no renewal traffic remains: EVALSHA calls on a private server stop growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_renewal_traffic_remains_after_release() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Standalone).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let redis = connect(&topo.url()).await;
    let lease = Duration::from_millis(300);
    let locks = locks(&redis, &namespace("quiet"), lease);
    let scripts = || {
        let node = &topo.nodes()[0];
        let info =
            tokio::task::block_in_place(|| node.conn().and_then(|mut c| c.info("commandstats")))
                .expect("INFO commandstats");
        info.iter()
            .filter(|(k, _)| k == "cmdstat_evalsha" || k == "cmdstat_eval")
            .filter_map(|(_, v)| {
                v.split(',')
                    .find_map(|f| f.strip_prefix("calls="))
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .sum::<u64>()
    };
    let guards = futures::future::join_all((0..20).map(|i| {
        let locks = locks.clone();
        async move {
            locks
                .lock(&format!("l{i}"))
                .acquire()
                .await
                .expect("acquire")
        }
    }))
    .await;
    let before = scripts();
    tokio::time::sleep(lease * 3).await;
    let during = scripts() - before;
    assert!(
        during >= 2,
        "the 20 leases were renewed in batches ({during} script calls)"
    );
    for g in guards {
        g.release().await.expect("release");
    }
    let after_release = scripts();
    tokio::time::sleep(lease * 3).await;
    let later = scripts() - after_release;
    assert_eq!(later, 0, "script calls after every hold was released");
    assert_eq!(locks.stats().held, 0);
    eprintln!("20 holds over 3 leases: {during} renewal script calls; 0 after release");
}

fn sentinel() -> testkit::Topology {
    tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Sentinel).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// With `WAIT 1`: while no replica can acknowledge, acquiring fails closed (`NotReplicated`,
/// the grant is given back); once one can, a lock survives the primary's SIGKILL: after the
/// failover it is still held, and its holder keeps renewing it on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_keeps_a_lock_acknowledged_by_wait() {
    let topo = sentinel();
    let redis = connect(&topo.url()).await;
    let ns = namespace("wait");
    let mut cfg = LockConfig::new(ns.clone());
    cfg.lease = Duration::from_secs(10);
    cfg.replication = Some(dlock::Replication::new(1, Duration::from_millis(200)));
    let holder = LockClient::new(redis.clone(), cfg).expect("config");

    let primary = topo.current_primary().expect("primary");
    let replicas = topo.replicas_of(primary);
    for r in &replicas {
        tokio::task::block_in_place(|| topo.pause(r)).expect("pause replica");
    }
    let refused = holder.lock("w").try_acquire().await;
    for r in &replicas {
        tokio::task::block_in_place(|| topo.resume(r)).expect("resume replica");
    }
    assert!(
        matches!(
            refused,
            Err(Error::NotReplicated {
                acked: 0,
                wanted: 1,
                ..
            })
        ),
        "{refused:?}"
    );

    let guard = holder.lock("w").acquire().await.expect("replicated grant");
    let old = primary.addr;
    tokio::task::block_in_place(|| topo.kill(primary)).expect("kill -9");
    let failover =
        tokio::task::block_in_place(|| topo.wait_for_new_primary(old, Duration::from_secs(30)))
            .expect("failover");
    let other = locks(&connect(&topo.url()).await, &ns, Duration::from_secs(10));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        match other.lock("w").try_acquire().await {
            Ok(None) => {}
            Ok(Some(g)) => panic!(
                "the acknowledged lock was lost in the failover (fence {})",
                g.fence()
            ),
            Err(e) => eprintln!("after failover: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    guard
        .extend()
        .await
        .expect("the holder still owns it on the new primary");
    assert!(!guard.is_lost());
    assert_eq!(guard.release().await.expect("release"), Released::Free);
    eprintln!("WAIT 1: lock survived a primary SIGKILL (failover {failover:?})");
}

/// Without `WAIT`, a grant the replicas never saw dies with the primary: after the failover a
/// second owner acquires while the first still runs. The first holder's lease-loss signal
/// fires (renewal refused) and its token, older than the second's even though the counter was
/// lost with the primary (tokens are at least the server time in µs), is refused by the fenced
/// resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_can_lose_an_unreplicated_lock_and_fencing_catches_it() {
    let topo = sentinel();
    let redis = connect(&topo.url()).await;
    let ns = namespace("nowait");
    let resource = format!("{ns}:res:{{r}}");
    let first = locks(&redis, &ns, Duration::from_secs(6));
    let primary = topo.current_primary().expect("primary");
    let replicas = topo.replicas_of(primary);
    for r in &replicas {
        tokio::task::block_in_place(|| topo.pause(r)).expect("pause replica");
    }
    // Cut the replication links too: bytes already in a paused replica's socket would still
    // reach it when it resumes.
    tokio::task::block_in_place(|| primary.cmd(&["CLIENT", "KILL", "TYPE", "replica"]))
        .expect("CLIENT KILL TYPE replica");
    let guard = first
        .lock("r")
        .acquire()
        .await
        .expect("grant on the primary only");
    let lost = guard.lost();
    let old = primary.addr;
    tokio::task::block_in_place(|| topo.kill(primary)).expect("kill -9");
    for r in &replicas {
        tokio::task::block_in_place(|| topo.resume(r)).expect("resume replica");
    }
    let failover =
        tokio::task::block_in_place(|| topo.wait_for_new_primary(old, Duration::from_secs(30)))
            .expect("failover");
    let second = locks(&connect(&topo.url()).await, &ns, Duration::from_secs(6));
    let g2 = second
        .lock("r")
        .wait(Duration::from_secs(10))
        .acquire()
        .await
        .expect("the lock is free on the new primary");
    assert!(
        g2.fence() > guard.fence(),
        "{} > {}",
        g2.fence(),
        guard.fence()
    );
    assert_eq!(
        fenced_set(&redis, &resource, g2.fence(), "second")
            .await
            .expect("write"),
        Fenced::Written
    );
    let reason = tokio::time::timeout(Duration::from_secs(8), lost)
        .await
        .expect("the first holder learns it lost the lease");
    assert_eq!(
        fenced_set(&redis, &resource, guard.fence(), "first")
            .await
            .expect("write"),
        Fenced::Rejected {
            highest: g2.fence()
        }
    );
    g2.release().await.expect("release");
    eprintln!(
        "no WAIT: grant lost with the primary (failover {failover:?}); second owner acquired; \
         first holder told '{reason}'; its fenced write refused"
    );
}

/// 32 contenders over 2 clients on a 4-permit semaphore: never more than 4 inside at once.
async fn a_semaphore_never_has_more_holders_than_permits(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("sem");
    let a = locks(&redis, &ns, Duration::from_secs(5));
    let b = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(5));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tasks = (0..32).map(|i| {
        let locks = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (inside, most) = (inside.clone(), most.clone());
        tokio::spawn(async move {
            for _ in 0..3 {
                let permit = locks
                    .semaphore("pool", 4)
                    .wait(Duration::from_secs(60))
                    .acquire()
                    .await
                    .expect("permit");
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(permit.release().await.expect("release"), Released::Free);
            }
        })
    });
    for t in futures::future::join_all(tasks).await {
        t.expect("task");
    }
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 4, "{most} holders of 4 permits");
    assert_eq!(most, 4, "the permits were used in parallel");
}

async fn rwlock_admits_many_readers_or_one_writer(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("rw");
    let a = locks(&redis, &ns, Duration::from_secs(5));
    let b = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(5));
    let mut readers = Vec::new();
    for i in 0..5 {
        let l = if i % 2 == 0 { &a } else { &b };
        readers.push(
            l.rwlock("doc")
                .wait(Duration::from_secs(2))
                .read()
                .await
                .expect("reader"),
        );
    }
    // A writer waits for the readers; meanwhile new readers are held back (writer preference).
    let writer = {
        let b = b.clone();
        tokio::spawn(async move {
            b.rwlock("doc")
                .wait(Duration::from_secs(10))
                .write()
                .await
                .expect("writer")
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        a.rwlock("doc").try_read().await.expect("try").is_none(),
        "a reader got in while a writer waits"
    );
    for r in readers {
        assert_eq!(r.release().await.expect("release"), Released::Free);
    }
    let w = writer.await.expect("task");
    assert!(w.fence() > 0);
    assert!(
        a.rwlock("doc").try_read().await.expect("try").is_none(),
        "a reader beside the writer"
    );
    let second_writer = a
        .rwlock("doc")
        .wait(Duration::from_millis(200))
        .write()
        .await;
    assert!(
        matches!(second_writer, Err(Error::Timeout { .. })),
        "two writers"
    );
    w.release().await.expect("release");
    let r = a
        .rwlock("doc")
        .wait(Duration::from_secs(5))
        .read()
        .await
        .expect("readers again after the writer");
    r.release().await.expect("release");
}

/// Eight readers keep the lock read-held without pause; a writer still gets in quickly.
async fn a_stream_of_readers_does_not_starve_a_writer(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("rw-starve");
    let a = locks(&redis, &ns, Duration::from_secs(5));
    let b = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(5));
    let stop = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let (l, stop) = (if i % 2 == 0 { a.clone() } else { b.clone() }, stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u32;
                while stop.load(Ordering::SeqCst) == 0 {
                    let r = l
                        .rwlock("hot")
                        .wait(Duration::from_secs(10))
                        .read()
                        .await
                        .expect("read");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    r.release().await.expect("release");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let w = b
        .rwlock("hot")
        .wait(Duration::from_secs(5))
        .write()
        .await
        .expect("the writer is not starved");
    let took = start.elapsed();
    w.release().await.expect("release");
    stop.store(1, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await.expect("reader");
    }
    assert!(reads > 16, "readers kept reading ({reads})");
    assert!(took < Duration::from_secs(1), "writer waited {took:?}");
    eprintln!("writer got in {took:?} into a stream of 8 readers ({reads} reads)");
}

/// A semaphore permit held by a process killed with SIGKILL comes back within its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_permit_comes_back() {
    use std::io::BufRead;
    let (redis, t) = shared(Kind::Standalone).await;
    let ns = namespace("sem-kill");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dlock-hold"))
        .args([suite_url(t).as_str(), ns.as_str(), "one", "1000", "sem=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dlock-hold");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    for _ in 0..2 {
        let line = tokio::task::block_in_place(|| {
            let mut l = String::new();
            reader.read_line(&mut l).map(|_| l)
        })
        .expect("read");
        if line.starts_with("HELD") {
            break;
        }
    }
    let locks = locks(&redis, &ns, Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1500)).await; // renewed past its lease
    assert!(
        locks
            .semaphore("one", 1)
            .try_acquire()
            .await
            .expect("try")
            .is_none()
    );
    child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let p = locks
        .semaphore("one", 1)
        .wait(Duration::from_secs(10))
        .acquire()
        .await
        .expect("the permit comes back");
    let took = killed.elapsed();
    let _ = child.wait();
    assert!(
        took <= Duration::from_millis(1200),
        "permit back {took:?} after the kill"
    );
    p.release().await.expect("release");
    eprintln!("permit of a SIGKILLed holder back after {took:?} (lease 1 s)");
}

/// Redlock over 3 independent servers: with one down it still grants (majority); with two down
/// it fails with a typed error within its wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_needs_a_majority_of_independent_servers() {
    let topos: Vec<testkit::Topology> = (0..3)
        .map(|_| {
            tokio::task::block_in_place(|| {
                testkit::Topology::start(
                    testkit::Spec::from_env(Kind::Standalone).expect("backend"),
                )
            })
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut servers = Vec::new();
    for t in &topos {
        let mut cfg = RedisConfig::from_url(&t.url()).expect("url");
        cfg.command_timeout = Duration::from_millis(500);
        servers.push(RedisClient::connect(cfg).await.expect("connect"));
    }
    let mut cfg = LockConfig::new(namespace("redlock"));
    cfg.lease = Duration::from_secs(5);
    cfg.wait = Duration::from_millis(800);
    let redlock = dlock::Redlock::new(servers, cfg).expect("redlock");
    assert_eq!(redlock.quorum(), 2);

    let g = redlock.acquire("r").await.expect("all up");
    assert_eq!(g.granted(), 3);
    assert!(
        redlock.try_acquire("r").await.expect("try").is_none(),
        "exclusive"
    );
    let first = g.fence();
    assert_eq!(g.release().await, 3);

    let down = &topos[0];
    tokio::task::block_in_place(|| down.kill(&down.nodes()[0])).expect("kill one");
    let start = Instant::now();
    let g = redlock
        .acquire("r")
        .await
        .expect("one server down: still a majority");
    eprintln!(
        "redlock with one server down: granted by {} in {:?}",
        g.granted(),
        start.elapsed()
    );
    assert_eq!(g.granted(), 2);
    assert!(g.fence() > first);
    assert!(g.validity() > Duration::from_secs(3));
    g.release().await;

    let down = &topos[1];
    tokio::task::block_in_place(|| down.kill(&down.nodes()[0])).expect("kill another");
    let start = Instant::now();
    let err = redlock.acquire("r").await.expect_err("two of three down");
    let took = start.elapsed();
    assert!(
        matches!(
            err,
            Error::NoQuorum {
                granted: 1,
                servers: 3,
                quorum: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        took < Duration::from_millis(800) + Duration::from_millis(700),
        "{took:?}"
    );
    eprintln!("redlock with two servers down: {err} after {took:?} (wait 800 ms)");
}

/// Gives spawned requests time to make their first attempt and join the line.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

/// Spawns a request on `locks` that takes `name`, records `tag` and its token, holds it 10 ms
/// and releases it.
fn contender(
    locks: &LockClient,
    name: &'static str,
    fair: bool,
    tag: &'static str,
    log: &Arc<Mutex<Vec<(&'static str, u64)>>>,
) -> tokio::task::JoinHandle<Released> {
    let (locks, log) = (locks.clone(), log.clone());
    tokio::spawn(async move {
        let g = locks
            .lock(name)
            .fair(fair)
            .wait(Duration::from_secs(20))
            .acquire()
            .await
            .expect("contender");
        log.lock().expect("log").push((tag, g.fence()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        g.release().await.expect("release")
    })
}

/// A holder passes the lock to two waiters of its own client without Redis: each gets the next
/// token while another client is still refused; the release that ends the run raises the
/// counter, so a later grant elsewhere exceeds every token handed out — even with the counter
/// far ahead of the server clock (where `max(counter + 1, time)` alone would repeat a token).
async fn local_handoffs_skip_redis_and_later_grants_exceed_their_tokens(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("cohort");
    let a = locks(&redis, &ns, Duration::from_secs(10));
    let b = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(10));
    let ahead: u64 = 5_000_000_000_000_000; // ~2128 in µs: far ahead of any server clock
    let _: () = redis
        .pool()
        .set(format!("{ns}:{{c}}:fence"), ahead, None, None, false)
        .await
        .expect("SET fence");
    let holder = a.lock("c").acquire().await.expect("holder");
    assert_eq!(holder.fence(), ahead + 1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let w1 = contender(&a, "c", false, "a1", &log);
    settle().await;
    let w2 = contender(&a, "c", false, "a2", &log);
    settle().await;
    assert_eq!(
        holder.release().await.expect("release"),
        Released::HandedOff
    );
    assert_eq!(w1.await.expect("w1"), Released::HandedOff);
    assert_eq!(w2.await.expect("w2"), Released::Free);
    assert_eq!(
        *log.lock().expect("log"),
        vec![("a1", ahead + 2), ("a2", ahead + 3)],
        "each local hand-off gives the next token"
    );
    assert_eq!(a.stats().local_handoffs, 2, "{:?}", a.stats());
    let g = b.lock("c").try_acquire().await.expect("try").expect("free");
    assert!(
        g.fence() > ahead + 3,
        "token {} repeats one handed out locally",
        g.fence()
    );
    g.release().await.expect("release");
}

/// Fair mode: client b holds; a1 and a2 (client a) and then c1 (client c) queue in the Redis
/// line. b's release hands the lock to a1, a1 passes it locally to a2 (still in the Redis
/// line), and a2's release — which ends the run — takes a2's place out of the line before
/// handing the lock on: c1 gets it at once, in order, and nothing stale is left to hand the lock to (a stale place
/// would get the lock and hold the line up for a hand-off claim).
async fn fair_local_handoffs_leave_the_redis_line_clean(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("cohort-fair");
    let a = locks(&redis, &ns, Duration::from_secs(10));
    let b = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(10));
    let c = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(10));
    let holder = b.lock("f").fair(true).acquire().await.expect("holder");
    let log = Arc::new(Mutex::new(Vec::new()));
    let a1 = contender(&a, "f", true, "a1", &log);
    settle().await;
    let a2 = contender(&a, "f", true, "a2", &log);
    settle().await;
    let c1 = contender(&c, "f", true, "c1", &log);
    settle().await;
    let started = Instant::now();
    assert_eq!(
        holder.release().await.expect("release"),
        Released::HandedOff
    );
    assert_eq!(a1.await.expect("a1"), Released::HandedOff, "passed locally");
    assert_eq!(a2.await.expect("a2"), Released::HandedOff, "through Redis");
    assert_eq!(c1.await.expect("c1"), Released::Free);
    let took = started.elapsed();
    assert_eq!(a.stats().local_handoffs, 1, "{:?}", a.stats());
    let log = log.lock().expect("log").clone();
    let tags: Vec<_> = log.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, vec!["a1", "a2", "c1"]);
    assert!(log.windows(2).all(|w| w[0].1 < w[1].1), "{log:?}");
    assert!(
        took < Duration::from_secs(1),
        "three sections took {took:?}"
    );
    // LLEN is not in the suite user's rule: check with full rights.
    let queue: i64 = connect(t.url())
        .await
        .pool()
        .llen(format!("{ns}:{{f}}:queue"))
        .await
        .expect("LLEN");
    assert_eq!(queue, 0, "stale places left in the Redis line");
}

/// With `local_handoffs = 2`, a holder with five waiters of its own passes the lock twice, then
/// the lock goes through Redis to the other client's waiter that queued first (fair mode).
async fn local_handoffs_are_capped_so_other_clients_get_their_turn(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("cohort-cap");
    let cap = |c: &mut LockConfig| c.local_handoffs = 2;
    let a = locks_with(&redis, &ns, Duration::from_secs(10), cap);
    let b = locks_with(
        &connect(&suite_url(t)).await,
        &ns,
        Duration::from_secs(10),
        cap,
    );
    let holder = a.lock("k").fair(true).acquire().await.expect("holder");
    let log = Arc::new(Mutex::new(Vec::new()));
    let remote = contender(&b, "k", true, "b", &log);
    settle().await;
    let locals: Vec<_> = ["a1", "a2", "a3", "a4", "a5"]
        .into_iter()
        .map(|tag| contender(&a, "k", true, tag, &log))
        .collect();
    settle().await;
    holder.release().await.expect("release");
    remote.await.expect("b");
    for w in locals {
        w.await.expect("local");
    }
    let log = log.lock().expect("log").clone();
    let tags: Vec<_> = log.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags.len(), 6);
    // The local waiters may join the line in any order; two of them, then the other client.
    assert!(
        tags[..2].iter().all(|t| t.starts_with('a')) && tags[2] == "b",
        "{tags:?}"
    );
    assert!(log.windows(2).all(|w| w[0].1 < w[1].1), "{log:?}");
}

/// A local waiter whose acquire was cancelled is skipped: the next one gets the lock at once.
async fn a_cancelled_local_waiter_is_skipped(redis: RedisClient, _t: &SharedTopology) {
    let a = locks(&redis, &namespace("cohort-cancel"), Duration::from_secs(10));
    let holder = a.lock("x").acquire().await.expect("holder");
    let cancelled = {
        let a = a.clone();
        tokio::spawn(async move { a.lock("x").acquire().await.map(|g| g.fence()) })
    };
    settle().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let next = contender(&a, "x", false, "next", &log);
    settle().await;
    cancelled.abort();
    assert!(cancelled.await.is_err_and(|e| e.is_cancelled()));
    let (started, fence) = (Instant::now(), holder.fence());
    assert_eq!(
        holder.release().await.expect("release"),
        Released::HandedOff
    );
    assert_eq!(next.await.expect("next"), Released::Free);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(*log.lock().expect("log"), vec![("next", fence + 1)]);
}

/// A hold passed locally is the same Redis hold: the watchdog keeps renewing it (lease 600 ms,
/// held 1.5 s), and when the lock key is deleted behind its back, the new holder's lease-loss
/// signal fires and its release reports the expiry.
async fn a_locally_passed_hold_is_renewed_and_its_loss_is_signalled(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let ns = namespace("cohort-lease");
    let a = locks(&redis, &ns, Duration::from_millis(600));
    let holder = a.lock("l").acquire().await.expect("holder");
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.lock("l").acquire().await.expect("waiter") })
    };
    settle().await;
    let first = holder.fence();
    assert_eq!(
        holder.release().await.expect("release"),
        Released::HandedOff
    );
    let g = waiter.await.expect("waiter");
    assert_eq!(g.fence(), first + 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!g.is_lost(), "the passed hold was not renewed");
    let _: i64 = redis.pool().del(format!("{ns}:{{l}}")).await.expect("DEL");
    let reason = tokio::time::timeout(Duration::from_secs(2), g.lost())
        .await
        .expect("lease loss not signalled");
    assert_eq!(reason, LostReason::Refused);
    assert_eq!(
        g.release().await.expect("release"),
        Released::AlreadyExpired
    );
}

/// A request that waits behind a holder of its own client without asking Redis is not stuck
/// when that holder loses its lease and keeps its guard (it will never pass it on): once the
/// holder's deadline passes it asks Redis, and gets the lock long before its own wait ends.
async fn a_waiter_behind_a_lost_local_holder_asks_redis(redis: RedisClient, _t: &SharedTopology) {
    let ns = namespace("cohort-lost");
    let a = locks(&redis, &ns, Duration::from_millis(600));
    let holder = a.lock("z").acquire().await.expect("holder");
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let g = a
                .lock("z")
                .wait(Duration::from_secs(5))
                .acquire()
                .await
                .expect("waiter");
            (started.elapsed(), g)
        })
    };
    settle().await;
    let _: i64 = redis.pool().del(format!("{ns}:{{z}}")).await.expect("DEL");
    let (took, g) = waiter.await.expect("task");
    assert!(
        took < Duration::from_secs(2),
        "waited {took:?} behind a lost holder"
    );
    assert!(g.fence() > holder.fence());
    assert!(holder.is_lost());
    assert_eq!(g.release().await.expect("release"), Released::Free);
    assert_eq!(
        holder.release().await.expect("release"),
        Released::AlreadyExpired
    );
}

/// A lock passed to a waiting request whose future is never polled again (e.g. kept in a
/// `select!` loop that is busy elsewhere) is not kept alive by the watchdog: it lapses after
/// its lease and another client gets it.
async fn a_lock_passed_to_a_waiter_nobody_polls_lapses(redis: RedisClient, t: &SharedTopology) {
    let ns = namespace("cohort-unpolled");
    let lease = Duration::from_millis(600);
    let a = locks(&redis, &ns, lease);
    let b = locks(&connect(&suite_url(t)).await, &ns, lease);
    let holder = a.lock("p").acquire().await.expect("holder");
    let stuck = a.lock("p").wait(Duration::from_secs(10)).acquire();
    tokio::pin!(stuck);
    assert!(
        futures::poll!(stuck.as_mut()).is_pending(),
        "joined the local line"
    );
    assert_eq!(
        holder.release().await.expect("release"),
        Released::HandedOff
    );
    let started = Instant::now();
    let g = b
        .lock("p")
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .expect("the unclaimed lock lapses");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    g.release().await.expect("release");
    // Polled at last, the stale request ends one way or another without harm.
    let _ = tokio::time::timeout(Duration::from_secs(1), stuck).await;
}

/// Acquire futures dropped at random moments (before, while and after their script runs): the
/// janitor's give-back must never run ahead of the attempt it undoes, or the attempt grants a
/// lock (or a place in the fair line) that nobody will ever release. After each cancelled
/// attempt another client gets the lock at once (allowing a few milliseconds for commands
/// still on the wire).
async fn acquires_cancelled_at_any_moment_leave_nothing_behind(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let ns = namespace("cancelled");
    let mine = locks(&redis, &ns, Duration::from_secs(30));
    let other = locks(&connect(&suite_url(t)).await, &ns, Duration::from_secs(30));
    for fair in [false, true] {
        let name = if fair { "fair" } else { "plain" };
        // The cut range follows the outcomes (wider after a cancel, narrower after a grant), so
        // about half the attempts are cut, at every stage of their progress.
        let (mut cancelled, mut granted, mut span) = (0, 0, 500.0_f64);
        for i in 0..300 {
            // Timers tick in milliseconds: spin for the random cut, then abort the task.
            let c = mine.clone();
            let attempt = tokio::spawn(async move { c.lock(name).fair(fair).acquire().await });
            let cut = Duration::from_secs_f64(fastrand::f64() * span / 1e6);
            let spin = Instant::now();
            while spin.elapsed() < cut {
                std::hint::spin_loop();
            }
            attempt.abort();
            match attempt.await {
                Ok(g) => {
                    granted += 1;
                    span *= 0.9;
                    g.expect("acquire").release().await.expect("release");
                }
                Err(e) if e.is_cancelled() => {
                    cancelled += 1;
                    span *= 1.1;
                }
                Err(e) => panic!("attempt {i}: {e}"),
            }
            mine.flush(Duration::from_secs(2)).await;
            let started = Instant::now();
            loop {
                if let Some(g) = other
                    .lock(name)
                    .fair(fair)
                    .try_acquire()
                    .await
                    .expect("try")
                {
                    g.release().await.expect("release");
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_millis(500),
                    "attempt {i} ({name}): the lock is still held 500 ms after a cancelled acquire was given back"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        eprintln!("{name}: {cancelled} attempts cancelled, {granted} granted");
        assert!(
            cancelled >= 20 && granted >= 20,
            "{cancelled} cancelled, {granted} granted"
        );
    }
}
