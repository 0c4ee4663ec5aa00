//! What an operator console reads from a queue, on every topology: processed / failed per
//! minute (`Queue::throughput`, counted by the scripts, expiring, pruned), every attempt's
//! error newest first (`Job::errors`, `DeadLetter::errors`, old single-error values included),
//! the queue's entry in the redkit registry, and reads that survive payloads of another type.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use redis_conn::registry::{Kind, registered};
use redis_conn::{RedisClient, RedisConfig};
use rqueue::{Error, JobState, Queue, QueueConfig};
use testkit::SharedTopology;

mod common;
use common::shared;

fn config(test: &str) -> QueueConfig {
    let mut cfg = QueueConfig::new(testkit::unique_name(&format!("console-{test}")));
    cfg.namespace = "t:rq".into();
    cfg
}

/// The key `name` of the queue configured as `cfg`.
fn key(cfg: &QueueConfig, name: &str) -> String {
    format!("t:rq:{{{}}}:{name}", cfg.name)
}

testkit::topology_tests!(
    acks_and_failures_are_counted_in_their_minute,
    minutes_older_than_an_hour_are_dropped_on_a_minutes_first_write,
    every_attempt_error_is_kept_newest_first_until_death,
    error_histories_are_capped_and_old_single_errors_still_read,
    a_new_queue_is_listed_in_the_registry,
    reads_survive_payloads_that_do_not_decode,
);

/// A client with full rights, for checks with commands the suite's user may not run.
async fn admin(t: &SharedTopology) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(t.url()).expect("url"))
        .await
        .expect("connect admin")
}

/// The server clock (Unix ms), by `TIME` on the node holding `key`.
async fn server_ms(admin: &RedisClient, key: &str) -> u64 {
    let t: Vec<String> = admin
        .for_key(key)
        .custom(fred::cmd!("TIME"), Vec::<String>::new())
        .await
        .expect("TIME");
    let secs: u64 = t[0].parse().expect("seconds");
    let micros: u64 = t[1].parse().expect("microseconds");
    secs * 1000 + micros / 1000
}

/// The current minute of the server clock once at least `secs` seconds of it are left
/// (waits for the next minute otherwise), so that what follows happens within it.
async fn a_minute_with(admin: &RedisClient, key: &str, secs: u64) -> u64 {
    let now = server_ms(admin, key).await;
    let left = 60_000 - now % 60_000;
    if left < secs * 1000 {
        tokio::time::sleep(Duration::from_millis(left + 50)).await;
        return server_ms(admin, key).await / 60_000;
    }
    now / 60_000
}

/// Acks (one by one and in a batch, with and without kept results), retries, deaths and
/// reclaimed stalls land in the current minute with exact counts; a stale ack counts nothing; the minutes are consecutive and the hash expires.
async fn acks_and_failures_are_counted_in_their_minute(redis: RedisClient, t: &SharedTopology) {
    let admin = admin(t).await;
    let mut cfg = config("count");
    cfg.lease = Duration::from_millis(300);
    let q: Queue<u32> = Queue::new(redis.clone(), cfg.clone()).expect("queue");
    let minutes_key = key(&cfg, "minutes");
    let minute = a_minute_with(&admin, &minutes_key, 15).await;
    let empty = q.throughput(3).await.expect("throughput");
    assert_eq!(empty.len(), 3);
    assert!(
        empty.iter().all(|m| (m.processed, m.failed) == (0, 0)),
        "{empty:?}"
    );
    q.enqueue_batch(&(0..8).collect::<Vec<u32>>())
        .await
        .expect("enqueue");
    let mut got = q.claim(8).await.expect("claim").into_iter();
    for d in got.by_ref().take(3) {
        d.ack().await.expect("ack");
    }
    let d = got.next().expect("4th");
    d.retry_after(Duration::from_secs(60), "later")
        .await
        .expect("retry");
    got.next().expect("5th").dead("bad").await.expect("dead");
    // The 6th stalls: reclaimed (a failed attempt); its stale ack is refused and not counted.
    let stale = got.next().expect("6th");
    let rest: Vec<_> = got.collect();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (back, dead) = q.reclaim(100).await.expect("reclaim");
    assert_eq!((back, dead), (3, 0), "the 6th, 7th and 8th lapsed");
    assert!(matches!(stale.ack().await, Err(Error::LeaseLost { .. })));
    drop(rest);
    // A worker's batched acks, with results kept (the ack script reads TIME then).
    let mut kept_cfg = cfg.clone();
    kept_cfg.keep_results = Some(Duration::from_secs(60));
    let kept: Queue<u32> = Queue::new(redis.clone(), kept_cfg).expect("queue");
    for d in kept.claim(3).await.expect("claim") {
        d.ack_with(&1u8).await.expect("ack");
    }
    let counts = q.throughput(3).await.expect("throughput");
    assert_eq!(counts.len(), 3);
    assert_eq!(
        counts
            .iter()
            .map(|m| (m.processed, m.failed))
            .collect::<Vec<_>>(),
        vec![(0, 0), (0, 0), (6, 5)],
        "3 acks + 3 kept-result acks; 1 retry + 1 death + 3 stalls"
    );
    let starts: Vec<u64> = counts
        .iter()
        .map(|m| {
            m.minute
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_millis() as u64
        })
        .collect();
    assert_eq!(
        starts,
        vec![
            (minute - 2) * 60_000,
            (minute - 1) * 60_000,
            minute * 60_000
        ]
    );
    let ttl: i64 = admin.pool().pttl(&minutes_key).await.expect("PTTL");
    assert!(ttl > 7_000_000 && ttl <= 7_200_000, "TTL {ttl} ms");
    let fields: HashMap<String, u64> = admin.pool().hgetall(&minutes_key).await.expect("HGETALL");
    assert_eq!(
        fields,
        HashMap::from([(format!("p:{minute}"), 6), (format!("f:{minute}"), 5)])
    );
    // Bounds: at least one minute, at most the hour kept.
    assert_eq!(q.throughput(0).await.expect("throughput").len(), 1);
    assert_eq!(q.throughput(1000).await.expect("throughput").len(), 60);
}

/// Fields of minutes more than an hour old go when a field is first written in a minute
/// (the current field deleted by hand to force one); the last hour's stay and read back.
async fn minutes_older_than_an_hour_are_dropped_on_a_minutes_first_write(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let admin = admin(t).await;
    let cfg = config("prune");
    let minutes_key = key(&cfg, "minutes");
    let q: Queue<u32> = Queue::new(redis, cfg).expect("queue");
    let m = a_minute_with(&admin, &minutes_key, 10).await;
    q.enqueue_batch(&[1, 2, 3]).await.expect("enqueue");
    let mut got = q.claim(3).await.expect("claim").into_iter();
    got.next().expect("1").ack().await.expect("ack");
    let _: () = admin
        .pool()
        .hset(
            &minutes_key,
            vec![
                (format!("p:{}", m - 100), 5u64),
                (format!("f:{}", m - 61), 2),
                (format!("p:{}", m - 59), 7),
                (format!("f:{}", m - 30), 4),
            ],
        )
        .await
        .expect("HSET");
    let _: () = admin.pool().persist(&minutes_key).await.expect("PERSIST");
    // Not a minute's first write: nothing is pruned, the TTL stays unset.
    got.next().expect("2").ack().await.expect("ack");
    let fields: HashMap<String, u64> = admin.pool().hgetall(&minutes_key).await.expect("HGETALL");
    assert_eq!(fields.len(), 5, "{fields:?}");
    let _: i64 = admin
        .pool()
        .hdel(&minutes_key, format!("p:{m}"))
        .await
        .expect("HDEL");
    got.next().expect("3").ack().await.expect("ack");
    let fields: HashMap<String, u64> = admin.pool().hgetall(&minutes_key).await.expect("HGETALL");
    assert_eq!(
        fields,
        HashMap::from([
            (format!("p:{}", m - 59), 7),
            (format!("f:{}", m - 30), 4),
            (format!("p:{m}"), 1),
        ]),
        "the fields of minutes {} and {} are pruned",
        m - 100,
        m - 61
    );
    let ttl: i64 = admin.pool().pttl(&minutes_key).await.expect("PTTL");
    assert!(ttl > 0, "the expiry is set again: {ttl}");
    let hour = q.throughput(60).await.expect("throughput");
    assert_eq!(hour.len(), 60);
    assert_eq!((hour[0].processed, hour[0].failed), (7, 0), "{:?}", hour[0]);
    assert_eq!((hour[29].processed, hour[29].failed), (0, 4));
    assert_eq!((hour[59].processed, hour[59].failed), (1, 0));
    let total: u64 = hour.iter().map(|m| m.processed + m.failed).sum();
    assert_eq!(total, 12);
}

/// A message failing twice, stalling once and then dying shows each attempt's error, newest
/// first, with increasing attempt numbers and times, in `job()` and in `dead_letters()`.
async fn every_attempt_error_is_kept_newest_first_until_death(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let mut cfg = config("errors");
    cfg.max_attempts = 3;
    cfg.lease = Duration::from_millis(200);
    let q: Queue<String> = Queue::new(redis, cfg).expect("queue");
    let id = q.enqueue(&"x".to_string()).await.expect("enqueue");
    let claim = || async { q.claim(1).await.expect("claim").pop().expect("the message") };
    let d = claim().await;
    d.retry_after(Duration::ZERO, "first: timeout")
        .await
        .expect("nack");
    let d = claim().await;
    // Separators in an error text are replaced, not taken for entries.
    d.retry_after(Duration::ZERO, "second\u{1e}with\u{1f}separators")
        .await
        .expect("nack");
    drop(claim().await);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(q.reclaim(10).await.expect("reclaim"), (1, 0));
    let j = q.job(&id).await.expect("job");
    assert_eq!(j.state, JobState::Waiting);
    assert_eq!(j.last_error.as_deref(), Some("stalled"));
    let d = claim().await;
    assert!(
        d.retry_after(Duration::ZERO, "fourth: fatal")
            .await
            .expect("nack"),
        "dies at its third failure"
    );
    let j = q.job(&id).await.expect("job");
    let expected = vec![
        (4, "fourth: fatal"),
        (3, "stalled"),
        (2, "second with separators"),
        (1, "first: timeout"),
    ];
    let seen = |errors: &[rqueue::AttemptError]| {
        errors
            .iter()
            .map(|e| (e.attempt, e.error.clone()))
            .collect::<Vec<_>>()
    };
    let expected: Vec<(u32, String)> = expected
        .into_iter()
        .map(|(a, e)| (a, e.to_string()))
        .collect();
    assert_eq!(seen(&j.errors), expected);
    assert_eq!(j.last_error.as_deref(), Some("fourth: fatal"));
    match &j.state {
        JobState::Dead { reason, .. } => assert_eq!(reason, "fourth: fatal"),
        other => panic!("not dead: {other:?}"),
    }
    let times: Vec<SystemTime> = j.errors.iter().map(|e| e.at.expect("a time")).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let now = SystemTime::now();
    assert!(times.iter().all(|t| {
        t.duration_since(now)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .is_ok_and(|d| d < Duration::from_secs(30))
    }));
    let dead = q.dead_letters(0, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "fourth: fatal");
    assert_eq!(dead[0].errors, j.errors);
    // A replay starts a new history.
    assert_eq!(q.replay(&[id.as_str()]).await.expect("replay"), 1);
    assert!(q.job(&id).await.expect("job").errors.is_empty());
}

/// Twelve failures keep the newest ten; long errors are cut at 2 KiB and the history stays
/// within 8 KiB; a value written by an older version (one plain error) reads as one entry
/// without time or attempt, in `job()`, in `dead_letters()` and below new entries.
async fn error_histories_are_capped_and_old_single_errors_still_read(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let admin = admin(t).await;
    let mut cfg = config("cap");
    cfg.max_attempts = 100;
    let reasons = key(&cfg, "reasons");
    let q: Queue<u32> = Queue::new(redis, cfg).expect("queue");
    let id = q.enqueue(&1).await.expect("enqueue");
    let fail = |text: String| {
        let q = q.clone();
        async move {
            let d = q.claim(1).await.expect("claim").pop().expect("message");
            d.retry_after(Duration::ZERO, &text).await.expect("nack")
        }
    };
    for i in 1..=12 {
        fail(format!("error {i}")).await;
    }
    let j = q.job(&id).await.expect("job");
    assert_eq!(j.errors.len(), 10);
    assert_eq!(
        j.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        (3..=12).rev().collect::<Vec<u32>>()
    );
    assert_eq!(j.errors[0].error, "error 12");
    for i in 0..5 {
        fail(format!("{i}{}", "y".repeat(5000))).await;
    }
    let raw: String = admin.pool().hget(&reasons, &id).await.expect("HGET");
    assert!(raw.len() <= 8192, "{} bytes", raw.len());
    let j = q.job(&id).await.expect("job");
    assert_eq!(j.errors.len(), 3, "three 2 KiB errors fit in 8 KiB");
    assert_eq!(j.errors[0].attempt, 17);
    assert_eq!(j.errors[0].error.len(), 2048);
    assert!(j.errors[0].error.starts_with("4yyy"));
    // An older version's value: one plain error.
    let _: () = admin
        .pool()
        .hset(&reasons, (id.as_str(), "legacy: upstream down"))
        .await
        .expect("HSET");
    let j = q.job(&id).await.expect("job");
    assert_eq!(j.last_error.as_deref(), Some("legacy: upstream down"));
    assert_eq!(
        (j.errors.len(), j.errors[0].at, j.errors[0].attempt),
        (1, None, 0)
    );
    fail("after the upgrade".into()).await;
    let j = q.job(&id).await.expect("job");
    assert_eq!(
        j.errors
            .iter()
            .map(|e| (e.at.is_some(), e.attempt, e.error.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (true, 18, "after the upgrade"),
            (false, 0, "legacy: upstream down")
        ]
    );
    // A dead message whose reason an older version wrote.
    let d = q.claim(1).await.expect("claim").pop().expect("message");
    d.dead("gone").await.expect("dead");
    let _: () = admin
        .pool()
        .hset(&reasons, (id.as_str(), "old reason"))
        .await
        .expect("HSET");
    let dead = q.dead_letters(0, 10).await.expect("dead letters");
    assert_eq!(dead[0].reason, "old reason");
    assert_eq!(dead[0].errors.len(), 1);
    assert_eq!((dead[0].errors[0].at, dead[0].errors[0].attempt), (None, 0));
    match q.job(&id).await.expect("job").state {
        JobState::Dead { reason, .. } => assert_eq!(reason, "old reason"),
        other => panic!("not dead: {other:?}"),
    }
}

/// `Queue::new` announces the queue in `redkit:registry` (in the background) with its
/// settings.
async fn a_new_queue_is_listed_in_the_registry(redis: RedisClient, t: &SharedTopology) {
    let mut cfg = config("registry");
    cfg.max_attempts = 7;
    // Registered by the queue's own (least-privilege) user; read as the console reads it.
    let q: Queue<u32> = Queue::new(redis.clone(), cfg).expect("queue");
    let console = admin(t).await;
    let prefix = format!("t:rq:{{{}}}", q.config().name);
    let deadline = Instant::now() + Duration::from_secs(2);
    let entry = loop {
        let (all, _bad) = registered(&console, Some(Kind::Queue))
            .await
            .expect("registry");
        if let Some(e) = all.into_iter().find(|e| e.prefix == prefix) {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "{prefix} is not registered after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (entry.kind, entry.namespace.as_str(), entry.name.as_str()),
        (Kind::Queue, "t:rq", q.config().name.as_str())
    );
    let setting = |k: &str| {
        entry
            .settings
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(setting("max_attempts").as_deref(), Some("7"));
    assert_eq!(setting("lease").as_deref(), Some("30s"));
    assert_eq!(setting("dead_cap").as_deref(), Some("none"));
    assert_eq!(setting("keep_results").as_deref(), Some("none"));
}

/// A client whose `T` does not match some payloads (a console's generic view) still reads
/// them: `job()` gives the job without its message, `dead_letters()` and `completed()` give
/// every entry, the odd one with its decode error.
async fn reads_survive_payloads_that_do_not_decode(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = config("untyped");
    cfg.keep_completed = 10;
    let strings: Queue<String> = Queue::new(redis.clone(), cfg.clone()).expect("queue");
    let numbers: Queue<u64> = Queue::new(redis, cfg).expect("queue");
    let text = strings.enqueue(&"text".to_string()).await.expect("enqueue");
    let number = numbers.enqueue(&7).await.expect("enqueue");
    let j = numbers.job(&text).await.expect("job");
    assert_eq!((j.state, j.message), (JobState::Waiting, None));
    assert_eq!(numbers.job(&number).await.expect("job").message, Some(7));
    // Both die (claimed through the strings' client, whose type fits one of them)...
    for d in strings.claim(1).await.expect("claim") {
        d.dead("no").await.expect("dead");
    }
    for d in numbers.claim(1).await.expect("claim") {
        d.dead("no").await.expect("dead");
    }
    let dead = numbers.dead_letters(0, 10).await.expect("dead letters");
    assert_eq!(dead.len(), 2);
    assert!(
        dead[0].message.is_err() && dead[1].message == Ok(7),
        "{dead:?}"
    );
    // ... are replayed and complete (each claimed by the client it decodes for: a claim moves
    // an undecodable payload to the dead set).
    assert_eq!(numbers.replay_all().await.expect("replay"), 2);
    for d in strings.claim(1).await.expect("claim") {
        d.ack().await.expect("ack");
    }
    for d in numbers.claim(1).await.expect("claim") {
        d.ack().await.expect("ack");
    }
    let done = numbers.completed(0, 10).await.expect("completed");
    assert_eq!(done.len(), 2, "{done:?}");
    assert_eq!(done.iter().filter(|c| c.message.is_err()).count(), 1);
    assert_eq!(
        strings.throughput(1).await.expect("throughput")[0].processed,
        2
    );
}
