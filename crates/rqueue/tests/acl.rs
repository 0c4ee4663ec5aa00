//! rqueue as a least-privilege ACL user (`rqueue::acl_rule_in`) on standalone, Sentinel and
//! Cluster: with the documented rule the whole message life cycle works and Redis logs no
//! refusal (besides the optional `CONFIG GET` of the durability check); with one right removed
//! the operation fails with `Error::Redis(NoPermission)` naming the missing right, and every
//! message — checked with the admin user — is where it was, once, with its payload. One
//! plaintext topology per kind, several users on it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fred::prelude::*;
use redis_conn::{AclRule, RedisClient, RedisConfig};
use rqueue::{Error, Queue, QueueConfig, Worker, WorkerConfig};
use testkit::{Kind, Spec, Topology};

const NS: &str = "acl:rq";

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

/// Runs `ACL SETUSER name <changes>` on every data node (rights taken away or given back while
/// the user's connections stay open: Redis applies them at once).
fn change(topo: &Topology, name: &str, changes: &[&str]) {
    for node in topo.data_nodes() {
        let mut args = vec!["ACL", "SETUSER", name];
        args.extend_from_slice(changes);
        tokio::task::block_in_place(|| node.cmd(&args)).expect("ACL SETUSER");
    }
}

/// The queue `name` as ACL user `user` (lease `lease`).
async fn queue(topo: &Topology, user: &str, name: &str, lease: Duration) -> Queue<String> {
    let mut cfg = QueueConfig::new(name);
    cfg.namespace = NS.into();
    cfg.lease = lease;
    cfg.backoff.base = Duration::from_millis(10);
    cfg.backoff.jitter = false;
    Queue::new(connect(&topo.url_as(user, "pw")).await, cfg).expect("config")
}

/// Where Redis keeps a queue's messages: the ready, delayed, in-flight and dead sets (id ->
/// score), the payloads and the leases (id -> token).
#[derive(Debug, PartialEq)]
struct State {
    ready: Vec<String>,
    delayed: Vec<String>,
    in_flight: Vec<String>,
    dead: Vec<String>,
    payloads: HashMap<String, Vec<u8>>,
    leases: HashMap<String, String>,
}

async fn state(admin: &RedisClient, queue: &str) -> State {
    let k = |s: &str| format!("{NS}:{{{queue}}}:{s}");
    let ids = |set: &'static str| {
        let key = k(set);
        async move {
            let ids: Vec<String> = admin
                .pool()
                .zrange(key, 0, -1, None, false, None, false)
                .await
                .expect("ZRANGE");
            ids
        }
    };
    let payloads: HashMap<String, Vec<u8>> =
        admin.pool().hgetall(k("jobs")).await.expect("HGETALL");
    let leases: HashMap<String, String> = admin.pool().hgetall(k("lease")).await.expect("HGETALL");
    State {
        ready: ids("ready").await,
        delayed: ids("delayed").await,
        in_flight: ids("inflight").await,
        dead: ids("dead").await,
        payloads,
        leases,
    }
}

/// The refusals Redis logged for `user` on any data node (`ACL LOG`), as text, leaving out
/// the `config|get` that `check_durability` tries on purpose.
fn refusals(topo: &Topology, user: &str) -> Vec<String> {
    tokio::task::block_in_place(|| topo.acl_refusals(user))
        .expect("ACL LOG")
        .into_iter()
        .filter(|r| r.object != "config|get")
        .map(|r| r.text)
        .collect()
}

/// The message of a permission refusal, or a panic naming what came instead.
fn denied<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) -> String {
    match r {
        Err(Error::Redis(e @ redis_conn::Error::NoPermission(_))) => {
            let msg = e.to_string();
            eprintln!("{what}: {msg}");
            msg
        }
        other => panic!("{what}: expected Error::Redis(NoPermission), got {other:?}"),
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
            let rule = rqueue::acl_rule_in(NS, "*");
            for (name, rule) in [
                ("rq-full", rule.clone()),
                ("rq-one", rqueue::acl_rule_in(NS, "one")),
                ("rq-revoked", rule.clone()),
                (
                    "rq-noscript",
                    rule.clone()
                        .without_command("evalsha")
                        .without_command("eval"),
                ),
                (
                    "rq-nokeys",
                    rule.clone().without_keys(&format!("{NS}:{{*}}:*")),
                ),
                ("rq-noblpop", rule.clone().without_command("blpop")),
                ("rq-notime", rule.clone().without_command("time")),
            ] {
                create(&topo, name, &rule);
            }
            Box::pin(with_the_rule_the_life_cycle_works(&topo)).await;
            for name in ["rq-full", "rq-one"] {
                let refused = refusals(&topo, name);
                assert!(
                    refused.is_empty(),
                    "the documented rule was refused for {name}: {refused:#?}"
                );
            }
            Box::pin(without_scripts(&topo, &admin)).await;
            Box::pin(without_the_keys(&topo, &admin)).await;
            Box::pin(without_a_command_the_scripts_call(&topo, &admin)).await;
            Box::pin(a_right_taken_away_mid_delivery(&topo, &admin)).await;
            Box::pin(without_blpop(&topo, &admin)).await;
            let refused = refusals(&topo, "rq-full");
            assert!(
                refused.is_empty(),
                "the documented rule was refused: {refused:#?}"
            );
        }),
    )
    .await;
}

/// Enqueue (dedup, delay), claim, ack, retry, dead, replay, purge, reclaim, extend, a waiting
/// claim woken by an enqueue, pages, stats, the durability check and a worker, as the
/// documented users (the family rule and the one-queue rule).
async fn with_the_rule_the_life_cycle_works(topo: &Topology) {
    let q = queue(topo, "rq-full", "life", Duration::from_secs(10)).await;
    let a = q.enqueue(&"a".to_string()).await.expect("enqueue");
    let dedup = |q: &Queue<String>| {
        let q = q.clone();
        async move {
            q.message(&"b".to_string())
                .dedup("b", Duration::from_secs(60))
                .send()
                .await
                .expect("enqueue with dedup")
        }
    };
    let b = dedup(&q).await;
    assert_eq!(dedup(&q).await, b, "the dedup key returns the first id");
    q.message(&"later".to_string())
        .delay(Duration::from_millis(100))
        .send()
        .await
        .expect("delayed");
    let got = q.claim(10).await.expect("claim");
    assert_eq!(
        got.iter().map(|d| d.id().to_string()).collect::<Vec<_>>(),
        vec![a.clone(), b.clone()]
    );
    let mut got = got.into_iter();
    got.next().expect("a").ack().await.expect("ack");
    let d = got.next().expect("b");
    d.extend().await.expect("extend");
    let dead = d
        .retry_after(Duration::ZERO, "try again")
        .await
        .expect("retry");
    assert!(!dead, "retried, not dead");
    let d = q.claim(1).await.expect("claim").pop().expect("b again");
    assert_eq!((d.id(), d.delivery()), (b.as_str(), 2));
    d.dead("bad").await.expect("dead");
    let dead = q.dead_letters(0, 10).await.expect("dead letters");
    assert_eq!((dead.len(), dead[0].reason.as_str()), (1, "bad"));
    assert_eq!(q.replay(&[b.as_str()]).await.expect("replay"), 1);
    let d = q
        .claim_wait(1, Duration::from_secs(2))
        .await
        .expect("claim")
        .pop()
        .expect("b replayed");
    d.dead("bad again").await.expect("dead");
    assert_eq!(q.purge_dead().await.expect("purge"), 1);
    let d = q
        .claim_wait(1, Duration::from_secs(2))
        .await
        .expect("wait")
        .pop()
        .expect("the delayed one");
    assert_eq!(d.message(), "later");
    d.ack().await.expect("ack");
    // A waiting claim woken by an enqueue from another client.
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.claim_wait(1, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    q.enqueue(&"wake".to_string()).await.expect("enqueue");
    let d = waiter
        .await
        .expect("task")
        .expect("claim_wait")
        .pop()
        .expect("woken");
    d.ack().await.expect("ack");
    // A lapsed lease is reclaimed.
    let short = queue(topo, "rq-full", "life", Duration::from_millis(50)).await;
    short.enqueue(&"stall".to_string()).await.expect("enqueue");
    drop(short.claim(1).await.expect("claim"));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(q.reclaim(10).await.expect("reclaim"), (1, 0));
    q.claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("reclaimed")
        .ack()
        .await
        .expect("ack");
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.ready, s.delayed, s.in_flight, s.dead),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(
        (
            s.acked,
            s.retried,
            s.died,
            s.replayed,
            s.purged,
            s.reclaimed
        ),
        (4, 1, 2, 1, 1, 1),
        "{s:?}"
    );
    let d = q.check_durability().await.expect("durability");
    assert!(d.maxmemory_policy.is_some() && d.rdb.is_none(), "{d:?}");
    // A worker, as the one-queue user.
    let one = queue(topo, "rq-one", "one", Duration::from_secs(10)).await;
    let msgs: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    one.enqueue_batch(&msgs).await.expect("enqueue");
    let done = Arc::new(AtomicUsize::new(0));
    let count = done.clone();
    let until = done.clone();
    let report = Worker::new(one.clone(), WorkerConfig::default())
        .run(
            move |_m: String, _job| {
                let count = count.clone();
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(())
                }
            },
            async move {
                while until.load(Ordering::SeqCst) < 20 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        )
        .await
        .expect("worker");
    assert_eq!(report.acked, 20, "{report:?}");
    let s = one.stats().await.expect("stats");
    assert_eq!((s.ready, s.in_flight, s.acked), (0, 0, 20), "{s:?}");
}

/// Without `+evalsha +eval` nothing runs: an enqueue stores nothing, a claim leaves the queued
/// message in ready, once, with its payload.
async fn without_scripts(topo: &Topology, admin: &RedisClient) {
    let full = queue(topo, "rq-full", "noscript", Duration::from_secs(10)).await;
    let id = full.enqueue(&"keep me".to_string()).await.expect("enqueue");
    let before = state(admin, "noscript").await;
    let weak = queue(topo, "rq-noscript", "noscript", Duration::from_secs(10)).await;
    let msg = denied(
        "enqueue without evalsha",
        weak.enqueue(&"lost?".to_string()).await,
    );
    assert!(msg.contains("'evalsha'"), "{msg}");
    let msg = denied("claim without evalsha", weak.claim(10).await);
    assert!(msg.contains("'evalsha'"), "{msg}");
    assert_eq!(state(admin, "noscript").await, before, "the queue changed");
    assert_eq!(before.ready, vec![id.clone()]);
    let d = full
        .claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("still there");
    assert_eq!((d.id(), d.message().as_str()), (id.as_str(), "keep me"));
    d.ack().await.expect("ack");
}

/// Without the queue's keys (the pattern removed, or another queue's rule) Redis refuses the
/// script before it runs, and the message names the keys.
async fn without_the_keys(topo: &Topology, admin: &RedisClient) {
    let full = queue(topo, "rq-full", "nokeys", Duration::from_secs(10)).await;
    let id = full.enqueue(&"keep me".to_string()).await.expect("enqueue");
    let before = state(admin, "nokeys").await;
    let weak = queue(topo, "rq-nokeys", "nokeys", Duration::from_secs(10)).await;
    let msg = denied("claim without the keys", weak.claim(10).await);
    assert!(
        msg.contains(&format!("{NS}:{{nokeys}}:ready")),
        "names the keys: {msg}"
    );
    let msg = denied(
        "enqueue without the keys",
        weak.enqueue(&"x".to_string()).await,
    );
    assert!(
        msg.contains(&format!("{NS}:{{nokeys}}:jobs")),
        "names the keys: {msg}"
    );
    // The one-queue rule covers its queue only.
    let other = queue(topo, "rq-one", "nokeys", Duration::from_secs(10)).await;
    let msg = denied("another queue's user", other.claim(10).await);
    assert!(
        msg.contains(&format!("{NS}:{{nokeys}}:")),
        "names the keys: {msg}"
    );
    assert_eq!(state(admin, "nokeys").await, before, "the queue changed");
    let d = full
        .claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("still there");
    assert_eq!((d.id(), d.message().as_str()), (id.as_str(), "keep me"));
    d.ack().await.expect("ack");
}

/// Without a command the scripts call before they write (`TIME`): the message names it (Redis
/// gives only the script line), and nothing changed.
async fn without_a_command_the_scripts_call(topo: &Topology, admin: &RedisClient) {
    let full = queue(topo, "rq-full", "notime", Duration::from_secs(10)).await;
    let id = full.enqueue(&"keep me".to_string()).await.expect("enqueue");
    let before = state(admin, "notime").await;
    let weak = queue(topo, "rq-notime", "notime", Duration::from_secs(10)).await;
    let msg = denied("enqueue without TIME", weak.enqueue(&"x".to_string()).await);
    assert!(msg.contains("[command TIME]"), "names the command: {msg}");
    let msg = denied("claim without TIME", weak.claim(1).await);
    assert!(msg.contains("[command TIME]"), "names the command: {msg}");
    assert_eq!(state(admin, "notime").await, before, "the queue changed");
    let d = full
        .claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("still there");
    assert_eq!((d.id(), d.message().as_str()), (id.as_str(), "keep me"));
    d.ack().await.expect("ack");
}

/// Rights taken away from a user holding a delivery: its ack, retry and extend are refused,
/// the message stays in flight once with its lease and payload; once the lease ends it is
/// reclaimed and delivered again, intact.
async fn a_right_taken_away_mid_delivery(topo: &Topology, admin: &RedisClient) {
    let q = queue(topo, "rq-revoked", "revoked", Duration::from_millis(500)).await;
    let id = q.enqueue(&"keep me".to_string()).await.expect("enqueue");
    let d = q.claim(1).await.expect("claim").pop().expect("one");
    let other = q.claim(1).await.expect("claim").pop();
    assert!(other.is_none());
    let before = state(admin, "revoked").await;
    assert_eq!(
        (before.in_flight.clone(), before.leases.len()),
        (vec![id.clone()], 1)
    );
    change(topo, "rq-revoked", &["-evalsha", "-eval"]);
    let msg = denied("extend without evalsha", d.extend().await);
    assert!(msg.contains("'evalsha'"), "{msg}");
    let msg = denied("ack without evalsha", d.ack().await);
    assert!(msg.contains("'evalsha'"), "{msg}");
    assert_eq!(
        state(admin, "revoked").await,
        before,
        "the in-flight message changed"
    );
    change(topo, "rq-revoked", &["+evalsha", "+eval"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(q.reclaim(10).await.expect("reclaim"), (1, 0));
    let d = q
        .claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("delivered again");
    assert_eq!(
        (d.id(), d.message().as_str(), d.delivery()),
        (id.as_str(), "keep me", 2)
    );
    d.ack().await.expect("ack");
    let after = state(admin, "revoked").await;
    assert!(
        after.payloads.is_empty() && after.in_flight.is_empty() && after.ready.is_empty(),
        "{after:?}"
    );
}

/// Without `+blpop`: claims work, a waiting claim fails once it would block, and a worker
/// finishes what it claimed, then stops with the error instead of spinning.
async fn without_blpop(topo: &Topology, admin: &RedisClient) {
    let weak = queue(topo, "rq-noblpop", "noblpop", Duration::from_secs(10)).await;
    let msg = denied(
        "claim_wait without blpop",
        weak.claim_wait(1, Duration::from_secs(1)).await,
    );
    assert!(msg.contains("'blpop'"), "{msg}");
    let msgs: Vec<String> = (0..5).map(|i| i.to_string()).collect();
    weak.enqueue_batch(&msgs).await.expect("enqueue");
    let done = Arc::new(AtomicUsize::new(0));
    let count = done.clone();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        Worker::new(weak.clone(), WorkerConfig::default()).run(
            move |_m: String, _job| {
                let count = count.clone();
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(())
                }
            },
            std::future::pending(),
        ),
    )
    .await
    .expect("the worker stops by itself");
    let msg = denied("worker without blpop", r);
    assert!(msg.contains("'blpop'"), "{msg}");
    assert_eq!(done.load(Ordering::SeqCst), 5);
    let s = state(admin, "noblpop").await;
    assert!(
        s.ready.is_empty() && s.in_flight.is_empty() && s.payloads.is_empty(),
        "{s:?}"
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
