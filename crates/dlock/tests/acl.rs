//! dlock as a least-privilege ACL user (`dlock::acl_rule`) on standalone, Sentinel and
//! Cluster: with the documented rule every kind of lock works and Redis logs no refusal; with
//! one right removed the operation fails with `Error::NoPermission` naming the missing right,
//! and the locks in Redis — checked with the admin user — are exactly as they were. One
//! plaintext topology per kind, several users on it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dlock::{Error, LockClient, LockConfig, Released, Replication};
use fred::prelude::*;
use redis_conn::{AclRule, RedisClient, RedisConfig};
use testkit::{Kind, Spec, Topology};

const NS: &str = "acl:locks";

async fn connect(url: &str) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// Creates ACL user `name` (password `pw`) with `rule` on every data node.
fn create(topo: &Topology, name: &str, rule: &AclRule) {
    tokio::task::block_in_place(|| topo.create_user(name, "pw", &rule.to_string()))
        .expect("create user");
}

/// A lock client as ACL user `name` (lease 10 s, wait 5 s unless `tune` changes them).
async fn user(topo: &Topology, name: &str, tune: impl FnOnce(&mut LockConfig)) -> LockClient {
    let mut cfg = LockConfig::new(NS);
    cfg.lease = Duration::from_secs(10);
    cfg.wait = Duration::from_secs(5);
    tune(&mut cfg);
    LockClient::new(connect(&topo.url_as(name, "pw")).await, cfg).expect("config")
}

/// Everything Redis keeps of a lock: its hash, fence counter and fair line.
async fn snapshot(
    admin: &RedisClient,
    name: &str,
) -> (HashMap<String, String>, Option<String>, i64) {
    let key = format!("{NS}:{{{name}}}");
    let hash: HashMap<String, String> = admin.pool().hgetall(&key).await.expect("HGETALL");
    let fence: Option<String> = admin.pool().get(format!("{key}:fence")).await.expect("GET");
    let line: i64 = admin
        .pool()
        .llen(format!("{key}:queue"))
        .await
        .expect("LLEN");
    (hash, fence, line)
}

/// The refusals Redis logged for `user` on any data node (`ACL LOG`), as text.
fn refusals(topo: &Topology, user: &str) -> Vec<String> {
    tokio::task::block_in_place(|| topo.acl_refusals(user))
        .expect("ACL LOG")
        .into_iter()
        .map(|r| r.text)
        .collect()
}

/// The message of a permission refusal, or a panic naming what came instead.
fn denied<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) -> String {
    match r {
        Err(Error::NoPermission(inner @ redis_conn::Error::NoPermission(_))) => {
            let msg = inner.to_string();
            eprintln!("{what}: {msg}");
            msg
        }
        other => panic!("{what}: expected Error::NoPermission, got {other:?}"),
    }
}

async fn scenarios(kind: Kind) {
    let topo = tokio::task::block_in_place(|| {
        Topology::start(
            Spec::from_env(kind)
                .expect("backend")
                .auth(Some("admin"), "pw"),
        )
    })
    .expect("topology");
    testkit::run_logged(
        Some(&topo),
        Box::pin(async {
            let admin = connect(&topo.url()).await;
            let rule = dlock::acl_rule(NS);
            let channel = format!("{NS}:__released__");
            for (name, rule) in [
                ("dlock-full", rule.clone()),
                ("dlock-holder", rule.clone()),
                (
                    "dlock-noscript",
                    rule.clone()
                        .without_command("evalsha")
                        .without_command("eval"),
                ),
                (
                    "dlock-nokeys",
                    rule.clone().without_keys(&format!("{NS}:*")),
                ),
                ("dlock-nochannel", rule.clone().without_channels(&channel)),
                ("dlock-notime", rule.clone().without_command("time")),
                ("dlock-nowait", rule.clone().without_command("wait")),
            ] {
                create(&topo, name, &rule);
            }
            Box::pin(with_the_rule_everything_works(&topo, kind)).await;
            Box::pin(without_scripts(&topo, &admin)).await;
            Box::pin(without_the_keys(&topo, &admin)).await;
            Box::pin(without_the_channel(&topo, &admin)).await;
            Box::pin(without_a_command_the_script_calls(&topo, &admin)).await;
            Box::pin(without_wait(&topo, &admin, kind)).await;
            for name in ["dlock-full", "dlock-holder"] {
                let refused = refusals(&topo, name);
                assert!(
                    refused.is_empty(),
                    "the documented rule was refused: {refused:#?}"
                );
            }
        }),
    )
    .await;
}

/// Plain, contended, fair, semaphore, read-write, replicated (`WAIT`) and fenced use as the
/// documented user: all work, and Redis refused nothing.
async fn with_the_rule_everything_works(topo: &Topology, kind: Kind) {
    let replicas = if kind == Kind::Standalone { 0 } else { 1 };
    let a = user(topo, "dlock-full", |c| {
        c.replication = Some(Replication::new(replicas, Duration::from_secs(2)));
    })
    .await;
    let b = user(topo, "dlock-full", |_| {}).await;
    // Plain, extended, released.
    let g = a.lock("plain").acquire().await.expect("acquire");
    g.extend().await.expect("extend");
    assert_eq!(g.release().await.expect("release"), Released::Free);
    // Contended: the waiter is woken by the release (publish + subscribe).
    let held = b.lock("busy").acquire().await.expect("holder");
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.lock("busy").acquire().await.map(|g| (Instant::now(), g)) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = Instant::now();
    held.release().await.expect("release");
    let (at, g) = waiter.await.expect("task").expect("waiter");
    assert!(
        at.duration_since(released) < Duration::from_secs(2),
        "woken by the release"
    );
    g.release().await.expect("release");
    // Fair: handed straight to the waiter in line.
    let held = b
        .lock("fair")
        .fair(true)
        .acquire()
        .await
        .expect("fair holder");
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.lock("fair").fair(true).acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(held.release().await.expect("release"), Released::HandedOff);
    let g = waiter.await.expect("task").expect("fair waiter");
    g.release().await.expect("release");
    // Semaphore: two permits, a third waits for one to come back.
    let p1 = a.semaphore("sem", 2).acquire().await.expect("permit 1");
    let p2 = b.semaphore("sem", 2).acquire().await.expect("permit 2");
    assert!(
        a.semaphore("sem", 2)
            .try_acquire()
            .await
            .expect("try")
            .is_none()
    );
    let third = {
        let b = b.clone();
        tokio::spawn(async move { b.semaphore("sem", 2).acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    p1.release().await.expect("release");
    let p3 = third.await.expect("task").expect("permit 3");
    for p in [p2, p3] {
        p.release().await.expect("release");
    }
    // Read-write lock.
    let r = a.rwlock("rw").read().await.expect("read");
    r.release().await.expect("release");
    let w = b.rwlock("rw").write().await.expect("write");
    // A fenced write to a key of the namespace.
    let res = format!("{NS}:res:{{stock}}");
    let written = dlock::fenced_set(
        &connect(&topo.url_as("dlock-full", "pw")).await,
        &res,
        w.fence(),
        "1",
    )
    .await
    .expect("fenced write");
    assert_eq!(written, dlock::Fenced::Written);
    w.release().await.expect("release");
    // Inspection for operators: inspect, held_locks (SCAN on every primary), force_release.
    let held = b.lock("inspected").acquire().await.expect("hold");
    let info = a
        .inspect("inspected")
        .await
        .expect("inspect")
        .expect("held");
    assert_eq!(info.fence, Some(held.fence()));
    let listed = a.held_locks(10).await.expect("held_locks");
    assert!(
        listed.locks.iter().any(|l| l.name == "inspected"),
        "{listed:?}"
    );
    assert!(a.force_release("inspected").await.expect("force_release"));
    drop(held);
    a.flush(Duration::from_secs(2)).await;
    b.flush(Duration::from_secs(2)).await;
}

/// Without `+evalsha +eval` nothing runs: a free lock stays free, a held one stays its
/// holder's, with its fence.
async fn without_scripts(topo: &Topology, admin: &RedisClient) {
    let holder = user(topo, "dlock-holder", |_| {}).await;
    let g = holder.lock("held").acquire().await.expect("holder");
    let before = snapshot(admin, "held").await;
    let weak = user(topo, "dlock-noscript", |_| {}).await;
    let msg = denied(
        "acquire without evalsha",
        weak.lock("held").try_acquire().await,
    );
    assert!(msg.contains("'evalsha'"), "{msg}");
    let msg = denied(
        "free lock without evalsha",
        weak.lock("free").acquire().await,
    );
    assert!(msg.contains("'evalsha'"), "{msg}");
    weak.flush(Duration::from_secs(2)).await;
    assert_eq!(
        snapshot(admin, "held").await,
        before,
        "the held lock changed"
    );
    assert_eq!(
        snapshot(admin, "free").await,
        Default::default(),
        "the free lock was touched"
    );
    g.extend().await.expect("still held by its owner");
    assert_eq!(g.release().await.expect("release"), Released::Free);
}

/// Without the key pattern: refused before running, and the message names the keys.
async fn without_the_keys(topo: &Topology, admin: &RedisClient) {
    let holder = user(topo, "dlock-holder", |_| {}).await;
    let g = holder.lock("held").acquire().await.expect("holder");
    let before = snapshot(admin, "held").await;
    let weak = user(topo, "dlock-nokeys", |_| {}).await;
    let msg = denied(
        "acquire without the keys",
        weak.lock("held").acquire().await,
    );
    assert!(
        msg.contains(&format!("{NS}:{{held}}")),
        "names the key: {msg}"
    );
    let msg = denied(
        "semaphore without the keys",
        weak.semaphore("sem", 1).acquire().await,
    );
    assert!(
        msg.contains(&format!("{NS}:sem:{{sem}}")),
        "names the key: {msg}"
    );
    weak.flush(Duration::from_secs(2)).await;
    assert_eq!(
        snapshot(admin, "held").await,
        before,
        "the held lock changed"
    );
    let permits: i64 = admin
        .pool()
        .zcard(format!("{NS}:sem:{{sem}}"))
        .await
        .expect("ZCARD");
    assert_eq!(permits, 0);
    assert_eq!(g.release().await.expect("release"), Released::Free);
}

/// Without the wake-up channel: a waiter fails when it would subscribe, a fair request before
/// it joins the line, and a release that would wake someone fails before it writes — the lock
/// stays its holder's with its fence until its lease ends, then the waiter gets it.
async fn without_the_channel(topo: &Topology, admin: &RedisClient) {
    let channel = format!("{NS}:__released__");
    let full = user(topo, "dlock-holder", |_| {}).await;
    let weak = user(topo, "dlock-nochannel", |c| {
        c.lease = Duration::from_secs(2);
    })
    .await;
    // Waiting on a held lock.
    let g = full.lock("held").acquire().await.expect("holder");
    let before = snapshot(admin, "held").await;
    let msg = denied(
        "waiting without the channel",
        weak.lock("held").acquire().await,
    );
    assert!(msg.contains(&channel), "names the channel: {msg}");
    let (hash, fence, _) = snapshot(admin, "held").await;
    assert_eq!(
        (&hash, &fence),
        (&before.0, &before.1),
        "the held lock changed"
    );
    g.release().await.expect("release");
    // A fair request: refused before it joins the line.
    let msg = denied(
        "fair without the channel",
        weak.lock("fair2").fair(true).acquire().await,
    );
    assert!(msg.contains(&channel), "names the channel: {msg}");
    assert_eq!(
        snapshot(admin, "fair2").await,
        Default::default(),
        "fair state left behind"
    );
    // Uncontended locks need no channel; the release that must wake a waiter is refused whole.
    let mine = weak.lock("mine").acquire().await.expect("uncontended");
    let fence = mine.fence();
    let waiter = {
        let full = full.clone();
        tokio::spawn(async move {
            full.lock("mine")
                .wait(Duration::from_secs(10))
                .acquire()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = snapshot(admin, "mine").await;
    let msg = denied(
        "release that wakes without the channel",
        mine.release().await,
    );
    assert!(msg.contains(&channel), "names the channel: {msg}");
    let after = snapshot(admin, "mine").await;
    assert_eq!(after.0, before.0, "the lock changed");
    assert_eq!(
        after.0.get("f"),
        Some(&fence.to_string()),
        "held with its fence"
    );
    // Its lease ends (no one renews it any more) and the waiter takes over with a larger token.
    let g = waiter.await.expect("task").expect("waiter after the lease");
    assert!(g.fence() > fence);
    g.release().await.expect("release");
}

/// Without a command one of the scripts calls before it writes (`TIME`): the message names it
/// (Redis only gives the script line).
async fn without_a_command_the_script_calls(topo: &Topology, admin: &RedisClient) {
    let weak = user(topo, "dlock-notime", |_| {}).await;
    let msg = denied("acquire without TIME", weak.lock("t").try_acquire().await);
    assert!(msg.contains("command TIME"), "names the command: {msg}");
    assert_eq!(
        snapshot(admin, "t").await,
        Default::default(),
        "the lock was touched"
    );
}

/// Replication without `+wait`: the grant is refused after the script ran and given back, so
/// the lock is free again (nothing half-applied).
async fn without_wait(topo: &Topology, admin: &RedisClient, kind: Kind) {
    let replicas = if kind == Kind::Standalone { 0 } else { 1 };
    let weak = user(topo, "dlock-nowait", |c| {
        c.replication = Some(Replication::new(replicas, Duration::from_secs(1)));
    })
    .await;
    let msg = denied("acquire without WAIT", weak.lock("rep").acquire().await);
    assert!(msg.contains("'wait'"), "names the command: {msg}");
    weak.flush(Duration::from_secs(2)).await;
    let (hash, _, line) = snapshot(admin, "rep").await;
    assert!(
        hash.is_empty() && line == 0,
        "the refused grant was not given back: {hash:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_least_privilege() {
    Box::pin(scenarios(Kind::Standalone)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_least_privilege() {
    Box::pin(scenarios(Kind::Sentinel)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_least_privilege() {
    Box::pin(scenarios(Kind::Cluster)).await;
}
