//! rqueue on real servers: every topology for the message life cycle.

use std::time::{Duration, Instant};

use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use rqueue::{Error, Queue, QueueConfig};
use testkit::{Kind, SharedTopology};

mod common;
use common::{shared, suite_client};

fn config(test: &str) -> QueueConfig {
    let mut cfg = QueueConfig::new(testkit::unique_name(&format!("t-{test}")));
    cfg.namespace = "t:rq".into();
    cfg
}

fn queue<T>(redis: &RedisClient, cfg: QueueConfig) -> Queue<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    Queue::new(redis.clone(), cfg).expect("config")
}

testkit::topology_tests!(
    enqueued_messages_are_claimed_in_order_and_acked_away,
    strict_priority_then_fifo_within_a_priority,
    delayed_messages_are_never_delivered_early,
    a_stale_ack_racing_a_reclaim_is_rejected,
    failures_retry_after_backoff_then_die,
    undecodable_payloads_go_to_the_dead_set,
    a_dedup_key_returns_the_existing_id,
    a_message_that_keeps_stalling_dies_as_stalled,
    a_waiting_claim_is_woken_by_an_enqueue,
    a_waiting_claim_wakes_when_a_delayed_message_is_due,
    one_signal_wakes_waiters_in_turn,
    the_dead_set_can_be_listed_replayed_and_purged,
    a_capped_dead_set_drops_its_oldest_and_counts_them,
    run_at_head_age_kept_completed_and_no_leftover_reasons,
    a_message_with_its_own_backoff_follows_it_across_retries_and_reclaims,
    a_stale_delivery_cannot_ack_after_its_message_was_replayed,
    batch_ids_are_the_stored_ids_even_across_a_sequence_rollover,
);

/// A client with full rights, for checks with commands the suite's user may not run.
async fn admin(t: &SharedTopology) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(t.url()).expect("url"))
        .await
        .expect("connect admin")
}

/// The ids of up to 10 claimed messages, in claim order.
async fn claimed_ids(q: &Queue<u32>) -> Vec<String> {
    q.claim(10)
        .await
        .expect("claim")
        .iter()
        .map(|d| d.id().to_string())
        .collect()
}

/// A uniform batch gets only its first id back and derives the rest: they must be exactly the
/// ids stored, also when the per-millisecond sequence rolls over (forced by setting the last
/// id to a future millisecond at sequence 999,998).
async fn batch_ids_are_the_stored_ids_even_across_a_sequence_rollover(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q: Queue<u32> = queue(&redis, config("ids"));
    let future_ms = 9_000_000_000_000u64;
    let _: () = redis
        .pool()
        .set(
            format!("t:rq:{{{}}}:seq", q.config().name),
            format!("{future_ms:013}-999998"),
            None,
            None,
            false,
        )
        .await
        .expect("SET");
    let ids = q.enqueue_batch(&[1, 2, 3, 4]).await.expect("enqueue");
    assert_eq!(
        ids,
        vec![
            format!("{future_ms:013}-999999"),
            format!("{:013}-000000", future_ms + 1),
            format!("{:013}-000001", future_ms + 1),
            format!("{:013}-000002", future_ms + 1),
        ]
    );
    let claimed = claimed_ids(&q).await;
    assert_eq!(claimed, ids, "the ids returned are the ids stored");
    let more = q.enqueue_batch(&[5, 6]).await.expect("enqueue");
    let claimed = claimed_ids(&q).await;
    assert_eq!(claimed, more);
}

/// Delivery 1 of a message stalls and dies; the message is replayed (its counts reset) and
/// the SAME client claims it again, as delivery 1 again: the first handle's late ack must
/// still be refused — tokens never repeat.
async fn a_stale_delivery_cannot_ack_after_its_message_was_replayed(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let mut cfg = config("replay-token");
    cfg.lease = Duration::from_millis(50);
    cfg.max_stalls = 1;
    let q: Queue<u32> = queue(&redis, cfg);
    q.enqueue(&7).await.expect("enqueue");
    let stale = q.claim(1).await.expect("claim").pop().expect("one");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        q.reclaim(10).await.expect("reclaim"),
        (0, 1),
        "dead as stalled"
    );
    assert_eq!(q.replay_all().await.expect("replay"), 1);
    let fresh = q.claim(1).await.expect("claim").pop().expect("one");
    assert_eq!((stale.delivery(), fresh.delivery()), (1, 1));
    assert!(
        matches!(stale.ack().await, Err(Error::LeaseLost { .. })),
        "the stale delivery's ack is refused"
    );
    fresh.ack().await.expect("the current delivery acks");
}

/// One message enqueued with its own backoff (500 ms, doubling, no jitter), one with the
/// queue's (20 ms): each retry follows its own; the message's backoff survives a reclaim, and
/// the stall does not count as a failure (the first failure waits one base, not two).
async fn a_message_with_its_own_backoff_follows_it_across_retries_and_reclaims(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let mut cfg = config("own-backoff");
    cfg.backoff.base = Duration::from_millis(20);
    cfg.backoff.jitter = false;
    cfg.lease = Duration::from_millis(100);
    let q: Queue<u32> = queue(&redis, cfg);
    let mut slow = rqueue::Backoff::default();
    slow.base = Duration::from_millis(500);
    slow.jitter = false;
    q.send_batch(&[q.message(&1).backoff(slow), q.message(&2)])
        .await
        .expect("enqueue");
    // A stall first (the reclaim rewrites the message's meta).
    drop(q.claim(10).await.expect("claim"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(q.reclaim(10).await.expect("reclaim"), (2, 0));
    let failed = Instant::now();
    for d in q.claim(10).await.expect("claim") {
        d.nack("fails").await.expect("nack"); // delivery 2, failure 1: one base
    }
    // The queue's backoff: 20 ms; the message's own: 500 ms.
    let first = q
        .claim_wait(10, Duration::from_secs(1))
        .await
        .expect("claim");
    assert_eq!(
        first.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![2]
    );
    for d in first {
        d.ack().await.expect("ack");
    }
    let second = q
        .claim_wait(10, Duration::from_secs(3))
        .await
        .expect("claim");
    let waited = failed.elapsed();
    assert_eq!(
        second.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![1]
    );
    assert!(
        waited >= Duration::from_millis(480) && waited < Duration::from_millis(950),
        "its own backoff (500 ms, not 1 s: the stall is no failure) was followed: {waited:?}"
    );
    for d in second {
        d.ack().await.expect("ack");
    }
}

/// `run_at` (future: delayed until then; past: ready now), the age of the next message, kept
/// completed messages (`keep_completed = 2`: the newest two, with payloads), and no error text
/// left behind by a message that failed once and then succeeded.
async fn run_at_head_age_kept_completed_and_no_leftover_reasons(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let mut cfg = config("run-at");
    cfg.keep_completed = 2;
    let q: Queue<u32> = queue(&redis, cfg);
    let base = format!("t:rq:{{{}}}", q.config().name);
    let soon = std::time::SystemTime::now() + Duration::from_millis(400);
    let sent = Instant::now();
    q.message(&1).run_at(soon).send().await.expect("enqueue");
    q.message(&2)
        .run_at(std::time::SystemTime::now() - Duration::from_secs(5))
        .send()
        .await
        .expect("enqueue");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.delayed), (1, 1), "{s:?}");
    let age = s.head_age.expect("a ready message");
    assert!(
        age >= Duration::from_millis(50) && age < Duration::from_secs(5),
        "{age:?}"
    );
    let first = q.claim(10).await.expect("claim");
    assert_eq!(
        first.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![2]
    );
    // Fails once, then succeeds: its error text must not stay behind.
    for d in first {
        d.retry_after(Duration::ZERO, "flaky").await.expect("nack");
    }
    for d in q.claim(10).await.expect("claim") {
        d.ack().await.expect("ack");
    }
    let got = q
        .claim_wait(10, Duration::from_secs(3))
        .await
        .expect("claim");
    let waited = sent.elapsed();
    assert_eq!(
        got.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![1]
    );
    assert!(
        waited >= Duration::from_millis(350),
        "delivered {waited:?} after enqueue"
    );
    for d in got {
        d.ack().await.expect("ack");
    }
    q.enqueue(&3).await.expect("enqueue");
    for d in q.claim(10).await.expect("claim") {
        d.ack().await.expect("ack");
    }
    let kept: Vec<u32> = q
        .completed(0, 10)
        .await
        .expect("completed")
        .into_iter()
        .map(|c| c.message.expect("decodes"))
        .collect();
    assert_eq!(kept, vec![3, 1], "the newest two, newest first");
    let jobs: u64 = admin(t)
        .await
        .pool()
        .hlen(format!("{base}:jobs"))
        .await
        .expect("HLEN");
    let reasons: u64 = admin(t)
        .await
        .pool()
        .hlen(format!("{base}:reasons"))
        .await
        .expect("HLEN");
    assert_eq!((jobs, reasons), (2, 0));
    assert_eq!(q.stats().await.expect("stats").head_age, None);
}

/// With `dead_cap = 3`, five deaths (four given up, one stalled) leave the three youngest;
/// the two oldest are deleted with their payloads and counted, never silently.
async fn a_capped_dead_set_drops_its_oldest_and_counts_them(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let mut cfg = config("dead-cap");
    cfg.dead_cap = Some(3);
    cfg.lease = Duration::from_millis(50);
    cfg.max_stalls = 1;
    let q: Queue<u32> = queue(&redis, cfg);
    let mut ids = Vec::new();
    for n in 0..4u32 {
        ids.push(q.enqueue(&n).await.expect("enqueue"));
        let d = q.claim(1).await.expect("claim").pop().expect("one");
        d.dead(&format!("bad {n}")).await.expect("dead");
        tokio::time::sleep(Duration::from_millis(2)).await; // distinct death times
    }
    // The fifth dies by stalling (the reclaim path).
    ids.push(q.enqueue(&4).await.expect("enqueue"));
    drop(q.claim(1).await.expect("claim"));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(q.reclaim(10).await.expect("reclaim"), (0, 1));
    let s = q.stats().await.expect("stats");
    assert_eq!((s.dead, s.died, s.dead_trimmed), (3, 5, 2), "{s:?}");
    let mut left: Vec<String> = q
        .dead_letters(0, 10)
        .await
        .expect("list")
        .into_iter()
        .map(|d| d.id)
        .collect();
    left.sort();
    assert_eq!(left, ids[2..].to_vec(), "the youngest three stay");
    let jobs: u64 = admin(t)
        .await
        .pool()
        .hlen(format!("t:rq:{{{}}}:jobs", q.config().name))
        .await
        .expect("HLEN");
    assert_eq!(jobs, 3, "the trimmed payloads are deleted too");
}

async fn enqueued_messages_are_claimed_in_order_and_acked_away(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q: Queue<String> = queue(&redis, config("fifo"));
    let ids = q
        .enqueue_batch(&["a".into(), "b".into(), "c".into()])
        .await
        .expect("enqueue");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not time-ordered: {ids:?}"
    );
    let got = q.claim(10).await.expect("claim");
    let msgs: Vec<_> = got.iter().map(|d| d.message().clone()).collect();
    assert_eq!(msgs, vec!["a", "b", "c"]);
    assert!(got.iter().all(|d| d.delivery() == 1));
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.in_flight, s.claimed), (0, 3, 3), "{s:?}");
    for d in got {
        d.ack().await.expect("ack");
    }
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.ready, s.in_flight, s.acked, s.enqueued),
        (0, 0, 3, 3),
        "{s:?}"
    );
    assert!(q.claim(10).await.expect("claim").is_empty());
}

async fn strict_priority_then_fifo_within_a_priority(redis: RedisClient, _t: &SharedTopology) {
    let q: Queue<String> = queue(&redis, config("prio"));
    for (m, p) in [
        ("low-1", 0),
        ("high-1", 5),
        ("low-2", 0),
        ("high-2", 5),
        ("mid", 1),
        ("neg", -3),
    ] {
        q.message(&m.to_string())
            .priority(p)
            .send()
            .await
            .expect("enqueue");
    }
    let mut order = Vec::new();
    loop {
        let got = q.claim(1).await.expect("claim");
        let Some(d) = got.into_iter().next() else {
            break;
        };
        order.push(d.message().clone());
        d.ack().await.expect("ack");
    }
    assert_eq!(
        order,
        vec!["high-1", "high-2", "mid", "low-1", "low-2", "neg"]
    );
}

async fn delayed_messages_are_never_delivered_early(redis: RedisClient, _t: &SharedTopology) {
    let q: Queue<u32> = queue(&redis, config("delay"));
    let sent = Instant::now();
    q.message(&1)
        .delay(Duration::from_millis(400))
        .send()
        .await
        .expect("enqueue");
    q.enqueue(&2).await.expect("enqueue");
    let first = q.claim(10).await.expect("claim");
    assert_eq!(
        first.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![2]
    );
    for d in first {
        d.ack().await.expect("ack");
    }
    assert_eq!(q.stats().await.expect("stats").delayed, 1);
    let got = loop {
        let got = q.claim(10).await.expect("claim");
        if !got.is_empty() {
            break got;
        }
        assert!(sent.elapsed() < Duration::from_secs(3), "never became due");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "delivered after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "delivered late: {waited:?}"
    );
    assert_eq!(*got[0].message(), 1);
}

async fn a_stale_ack_racing_a_reclaim_is_rejected(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = config("stale");
    cfg.lease = Duration::from_millis(200);
    let q: Queue<u32> = queue(&redis, cfg);
    q.enqueue(&7).await.expect("enqueue");
    let first = q.claim(1).await.expect("claim").pop().expect("one");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(q.reclaim(100).await.expect("reclaim"), (1, 0));
    let second = q.claim(1).await.expect("claim").pop().expect("redelivered");
    assert_eq!(second.id(), first.id());
    assert_eq!(second.delivery(), 2);
    let id = first.id().to_string();
    match first.ack().await {
        Err(Error::LeaseLost { id: lost }) => assert_eq!(lost, id),
        other => panic!("a stale ack was not refused: {other:?}"),
    }
    assert_eq!(
        q.stats().await.expect("stats").in_flight,
        1,
        "the stale ack changed state"
    );
    second.ack().await.expect("the current delivery acks");
    let s = q.stats().await.expect("stats");
    assert_eq!((s.in_flight, s.acked, s.reclaimed), (0, 1, 1), "{s:?}");
}

async fn failures_retry_after_backoff_then_die(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = config("retry");
    cfg.max_attempts = 2;
    cfg.backoff.base = Duration::from_millis(300);
    cfg.backoff.jitter = false;
    let q: Queue<u32> = queue(&redis, cfg);
    q.enqueue(&1).await.expect("enqueue");
    let d = q.claim(1).await.expect("claim").pop().expect("one");
    let failed = Instant::now();
    assert!(
        !d.nack("boom").await.expect("nack"),
        "dead after one failure"
    );
    assert!(
        q.claim(1).await.expect("claim").is_empty(),
        "retried before its backoff"
    );
    let again = loop {
        if let Some(d) = q.claim(1).await.expect("claim").pop() {
            break d;
        }
        assert!(failed.elapsed() < Duration::from_secs(3), "never retried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        failed.elapsed() >= Duration::from_millis(300),
        "retried after {:?}",
        failed.elapsed()
    );
    assert_eq!(again.delivery(), 2);
    assert!(
        again.nack("boom again").await.expect("nack"),
        "not dead after max attempts"
    );
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.dead, s.died, s.retried, s.in_flight, s.ready, s.delayed),
        (1, 1, 1, 0, 0, 0),
        "{s:?}"
    );
}

async fn undecodable_payloads_go_to_the_dead_set(redis: RedisClient, t: &SharedTopology) {
    let cfg = config("decode");
    let numbers: Queue<u64> = queue(&redis, cfg.clone());
    let strings: Queue<String> = queue(&redis, cfg);
    numbers.enqueue(&1).await.expect("enqueue");
    strings
        .enqueue(&"not a number".to_string())
        .await
        .expect("enqueue");
    numbers.enqueue(&2).await.expect("enqueue");
    let got = numbers.claim(10).await.expect("claim");
    assert_eq!(
        got.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![1, 2]
    );
    for d in got {
        d.ack().await.expect("ack");
    }
    let s = numbers.stats().await.expect("stats");
    assert_eq!((s.dead, s.in_flight, s.acked), (1, 0, 2), "{s:?}");
    let reason: Option<String> = admin(t)
        .await
        .pool()
        .hvals::<Vec<String>, _>(format!("t:rq:{{{}}}:reasons", numbers.config().name))
        .await
        .expect("HVALS")
        .pop();
    // Stored as an error history: "\u{1e}<ms>\u{1f}<attempt>\u{1f}<error>".
    assert!(
        reason.is_some_and(|r| r.starts_with('\u{1e}') && r.contains("\u{1f}1\u{1f}decode")),
        "reason recorded"
    );
}

async fn a_dedup_key_returns_the_existing_id(redis: RedisClient, _t: &SharedTopology) {
    let q: Queue<u32> = queue(&redis, config("dedup"));
    let ttl = Duration::from_secs(60);
    let a = q
        .message(&1)
        .dedup("order:7", ttl)
        .send()
        .await
        .expect("enqueue");
    let b = q
        .message(&2)
        .dedup("order:7", ttl)
        .send()
        .await
        .expect("enqueue");
    assert_eq!(a, b);
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.enqueued), (1, 1), "{s:?}");
    let d = q.claim(1).await.expect("claim").pop().expect("one");
    assert_eq!(*d.message(), 1);
    d.ack().await.expect("ack");
    // Done: the key no longer dedups against a message that is gone.
    let c = q
        .message(&3)
        .dedup("order:7", ttl)
        .send()
        .await
        .expect("enqueue");
    assert_ne!(c, a);
}

async fn a_message_that_keeps_stalling_dies_as_stalled(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = config("stalls");
    cfg.lease = Duration::from_millis(100);
    cfg.max_stalls = 2;
    let q: Queue<u32> = queue(&redis, cfg);
    q.enqueue(&1).await.expect("enqueue");
    for round in 1..=2u32 {
        let d = q.claim(1).await.expect("claim").pop().expect("delivered");
        assert_eq!(d.delivery(), round);
        drop(d); // the worker "dies"
        tokio::time::sleep(Duration::from_millis(150)).await;
        let expected = if round < 2 { (1, 0) } else { (0, 1) };
        assert_eq!(q.reclaim(100).await.expect("reclaim"), expected);
    }
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.dead, s.ready, s.in_flight, s.reclaimed),
        (1, 0, 0, 2),
        "{s:?}"
    );
}

async fn a_waiting_claim_is_woken_by_an_enqueue(redis: RedisClient, _t: &SharedTopology) {
    let q: Queue<u32> = queue(&redis, config("wake"));
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move {
            let got = q
                .claim_wait(1, Duration::from_secs(10))
                .await
                .expect("claim");
            (Instant::now(), got)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    q.enqueue(&5).await.expect("enqueue");
    let (woken, got) = waiter.await.expect("waiter");
    assert_eq!(
        got.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![5]
    );
    let latency = woken.duration_since(sent);
    assert!(
        latency < Duration::from_millis(500),
        "woken {latency:?} after the enqueue"
    );
    for d in got {
        d.ack().await.expect("ack");
    }
    // Nothing comes: the wait ends at its timeout, empty.
    let started = Instant::now();
    assert!(
        q.claim_wait(1, Duration::from_millis(300))
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

async fn a_waiting_claim_wakes_when_a_delayed_message_is_due(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q: Queue<u32> = queue(&redis, config("wake-due"));
    q.message(&9)
        .delay(Duration::from_millis(600))
        .send()
        .await
        .expect("enqueue");
    let started = Instant::now();
    let got = q
        .claim_wait(1, Duration::from_secs(10))
        .await
        .expect("claim");
    let waited = started.elapsed();
    assert_eq!(
        got.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![9]
    );
    assert!(waited >= Duration::from_millis(550), "early: {waited:?}");
    assert!(waited < Duration::from_millis(1500), "late: {waited:?}");
    for d in got {
        d.ack().await.expect("ack");
    }
}

/// Three waiters on three clients, one batch enqueue of three messages: the single wake-up
/// token is passed on by each claim while messages stay ready, so all three are served.
async fn one_signal_wakes_waiters_in_turn(redis: RedisClient, t: &SharedTopology) {
    let cfg = config("wake-chain");
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let other = suite_client(t).await;
        let q: Queue<u32> = queue(&other, cfg.clone());
        waiters.push(tokio::spawn(async move {
            q.claim_wait(1, Duration::from_secs(10))
                .await
                .expect("claim")
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let q: Queue<u32> = queue(&redis, cfg);
    let sent = Instant::now();
    q.enqueue_batch(&[1, 2, 3]).await.expect("enqueue");
    let mut got = Vec::new();
    for w in waiters {
        for d in w.await.expect("waiter") {
            got.push(*d.message());
            d.ack().await.expect("ack");
        }
    }
    got.sort();
    assert_eq!(got, vec![1, 2, 3]);
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "took {:?}",
        sent.elapsed()
    );
}

async fn the_dead_set_can_be_listed_replayed_and_purged(redis: RedisClient, _t: &SharedTopology) {
    let cfg = config("dlq");
    let q: Queue<u32> = queue(&redis, cfg.clone());
    let strings: Queue<String> = queue(&redis, cfg);
    q.enqueue_batch(&[1, 2, 3]).await.expect("enqueue");
    strings
        .enqueue(&"garbage".to_string())
        .await
        .expect("enqueue");
    for d in q.claim(10).await.expect("claim") {
        let reason = format!("bad {}", d.message());
        d.dead(&reason).await.expect("dead");
    }
    let all = q.dead_letters(0, 10).await.expect("page");
    assert_eq!(all.len(), 4);
    let page: Vec<_> = all.iter().filter(|d| d.message.is_ok()).cloned().collect();
    let seen: Vec<_> = page
        .iter()
        .map(|d| (d.reason.clone(), d.message.clone().ok()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("bad 1".to_string(), Some(1)),
            ("bad 2".to_string(), Some(2)),
            ("bad 3".to_string(), Some(3)),
        ]
    );
    let undecodable: Vec<_> = all.iter().filter(|d| d.message.is_err()).collect();
    assert_eq!(undecodable.len(), 1);
    assert!(
        undecodable[0].reason.starts_with("decode"),
        "{undecodable:?}"
    );
    assert_eq!(
        q.dead_letters(1, 1).await.expect("page")[0].id,
        all[1].id,
        "paged"
    );
    // One by id, then the rest of the decodable ones; the garbage is purged.
    assert_eq!(
        q.replay(&[page[1].id.as_str(), "no-such-id"])
            .await
            .expect("replay"),
        1
    );
    assert_eq!(
        q.replay(&[page[0].id.as_str(), page[2].id.as_str()])
            .await
            .expect("replay"),
        2
    );
    assert_eq!(q.purge_dead().await.expect("purge"), 1);
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.ready, s.dead, s.replayed, s.purged),
        (3, 0, 3, 1),
        "{s:?}"
    );
    let again = q.claim(10).await.expect("claim");
    assert_eq!(
        again.iter().map(|d| *d.message()).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for d in again {
        assert_eq!(d.delivery(), 1, "replay resets the counts");
        d.dead("again").await.expect("dead");
    }
    assert_eq!(q.replay_all().await.expect("replay all"), 3);
    assert_eq!(q.stats().await.expect("stats").ready, 3);
}

/// The start-up check reads the real settings of the server holding the queue: the harness's
/// servers run without persistence (warned), and an allkeys eviction policy is warned about.
/// Standalone only: it changes a server setting (harmless without maxmemory) and restores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durability_check_reports_eviction_and_persistence() {
    let (redis, topo) = shared(Kind::Standalone).await;
    testkit::run_logged(topo.topology(), async move {
        let q: Queue<u32> = queue(&redis, config("durability"));
        let d = q.check_durability().await.expect("check");
        assert_eq!(d.maxmemory_policy.as_deref(), Some("noeviction"), "{d:?}");
        assert_eq!(d.aof, Some(false), "{d:?}");
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("persistence is off") || w.contains("AOF is off")),
            "{d:?}"
        );
        assert!(
            !d.warnings.iter().any(|w| w.contains("maxmemory-policy")),
            "{d:?}"
        );
        // CONFIG SET is not in the suite user's rule.
        let admin = admin(topo).await;
        let set = |policy: &'static str| {
            let redis = admin.clone();
            async move {
                let _: Value = redis
                    .pool()
                    .custom(
                        fred::types::CustomCommand::new_static("CONFIG", None, false),
                        vec!["SET", "maxmemory-policy", policy],
                    )
                    .await
                    .expect("CONFIG SET");
            }
        };
        set("allkeys-lru").await;
        let d = q.check_durability().await;
        set("noeviction").await;
        let d = d.expect("check");
        assert!(
            d.warnings.iter().any(|w| w.contains("allkeys-lru")),
            "{d:?}"
        );
    })
    .await;
}
