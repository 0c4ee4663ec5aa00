//! Queue-wide flow control on real servers: pause / resume, the rate limit and the concurrency
//! limit — in-process on every topology, and across 4 worker PROCESSES (`rqueue-soak-worker`)
//! on the shared standalone server.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};
use rqueue::{Error, Queue, QueueConfig, RateLimit};
use testkit::{Kind, SharedTopology};

mod common;
use common::shared;

const NAMESPACE: &str = "t:rq";

fn queue(redis: &RedisClient, test: &str) -> Queue<u64> {
    let mut cfg = QueueConfig::new(testkit::unique_name(&format!("flow-{test}")));
    cfg.namespace = NAMESPACE.into();
    cfg.max_stalls = 1000;
    Queue::new(redis.clone(), cfg).expect("queue")
}

testkit::topology_tests!(
    a_paused_queue_hands_out_nothing_and_resume_wakes_a_waiter,
    the_rate_limit_holds_claims_to_its_window,
    the_concurrency_limit_caps_in_flight_and_an_ack_wakes_a_waiter,
    bad_limits_are_refused_and_nothing_is_stored,
);

/// Pause: claims get nothing, enqueues and lease renewals still work, the state is in the
/// stats; a blocked claimer is woken by resume at once (not after its 2-s re-check).
async fn a_paused_queue_hands_out_nothing_and_resume_wakes_a_waiter(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "pause");
    q.enqueue_batch(&[1, 2, 3]).await.expect("enqueue");
    let running = q.claim(1).await.expect("claim").pop().expect("one");
    q.pause().await.expect("pause");
    q.pause().await.expect("pausing twice changes nothing");
    let s = q.stats().await.expect("stats");
    assert!(s.paused && s.paused_since.is_some(), "{s:?}");
    assert_eq!(s.pauses, 1, "a second pause is not counted");
    assert!(q.claim(10).await.expect("claim").is_empty(), "paused");
    q.enqueue(&4).await.expect("enqueues work while paused");
    running
        .extend()
        .await
        .expect("leases are renewed while paused");
    running
        .ack()
        .await
        .expect("running jobs finish while paused");
    let started = Instant::now();
    let got = q
        .claim_wait(10, Duration::from_millis(300))
        .await
        .expect("claim_wait");
    assert!(got.is_empty(), "nothing while paused");
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "waited, did not spin out"
    );
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move {
            let got = q.claim_wait(10, Duration::from_secs(5)).await;
            (got, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resumed = Instant::now();
    q.resume().await.expect("resume");
    let (got, at) = waiter.await.expect("waiter");
    let got = got.expect("claim_wait");
    assert_eq!(got.len(), 3, "the three waiting messages");
    let woke = at - resumed;
    eprintln!("resume woke the blocked claimer after {woke:?}");
    assert!(
        woke < Duration::from_millis(500),
        "woken by resume, not by its re-check: {woke:?}"
    );
    assert!(!q.stats().await.expect("stats").paused);
    for d in got {
        d.ack().await.expect("ack");
    }
}

/// At most `max` claims in any window: the rest wait, and a blocking claim sleeps until the
/// slot the script named instead of polling.
async fn the_rate_limit_holds_claims_to_its_window(redis: RedisClient, _t: &SharedTopology) {
    let q = queue(&redis, "rate");
    let limit = RateLimit::new(5, Duration::from_millis(400)).expect("limit");
    q.set_rate_limit(Some(limit)).await.expect("set");
    assert_eq!(q.stats().await.expect("stats").rate_limit, Some(limit));
    q.enqueue_batch(&(0..20).collect::<Vec<_>>())
        .await
        .expect("enqueue");
    let first = q.claim(20).await.expect("claim");
    let at = Instant::now();
    assert_eq!(first.len(), 5, "five per window");
    assert!(
        q.claim(20).await.expect("claim").is_empty(),
        "window used up"
    );
    let next = q
        .claim_wait(20, Duration::from_secs(3))
        .await
        .expect("claim_wait");
    let waited = at.elapsed();
    assert_eq!(next.len(), 5, "the next window's five");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
        "slept until the slot: {waited:?}"
    );
    let s = q.stats().await.expect("stats");
    assert!(s.rate_limited >= 2, "{s:?}");
    q.set_rate_limit(None).await.expect("remove");
    assert_eq!(q.stats().await.expect("stats").rate_limit, None);
    assert_eq!(
        q.claim(20).await.expect("claim").len(),
        10,
        "no limit any more"
    );
    drop((first, next));
}

/// At most `max` in flight; an ack frees a slot and wakes a waiting claimer.
async fn the_concurrency_limit_caps_in_flight_and_an_ack_wakes_a_waiter(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "conc");
    q.set_concurrency_limit(Some(2)).await.expect("set");
    q.enqueue_batch(&(0..6).collect::<Vec<_>>())
        .await
        .expect("enqueue");
    let mut held = q.claim(10).await.expect("claim");
    assert_eq!(held.len(), 2);
    assert!(q.claim(10).await.expect("claim").is_empty(), "full");
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move {
            (
                q.claim_wait(10, Duration::from_secs(5)).await,
                Instant::now(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let acked = Instant::now();
    held.pop().expect("one").ack().await.expect("ack");
    let (got, at) = waiter.await.expect("waiter");
    let got = got.expect("claim_wait");
    assert_eq!(got.len(), 1, "one slot freed");
    assert!(
        at - acked < Duration::from_millis(500),
        "woken by the ack: {:?}",
        at - acked
    );
    let s = q.stats().await.expect("stats");
    assert_eq!((s.in_flight, s.concurrency_limit), (2, Some(2)), "{s:?}");
    // A retry (failure) frees a slot too.
    held.pop()
        .expect("one")
        .retry_after(Duration::from_secs(60), "later")
        .await
        .expect("nack");
    assert_eq!(q.claim(10).await.expect("claim").len(), 1);
    q.set_concurrency_limit(None).await.expect("remove");
    assert_eq!(
        q.claim(10).await.expect("claim").len(),
        2,
        "no limit any more"
    );
    drop(got);
}

/// Zero or out-of-range limits are typed errors, and nothing reaches Redis.
async fn bad_limits_are_refused_and_nothing_is_stored(redis: RedisClient, _t: &SharedTopology) {
    let q = queue(&redis, "bad");
    assert!(matches!(RateLimit::per_second(0), Err(Error::Config(_))));
    assert!(matches!(
        RateLimit::new(5, Duration::ZERO),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        RateLimit::new(RateLimit::MAX + 1, Duration::from_secs(1)),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        q.set_concurrency_limit(Some(0)).await,
        Err(Error::Config(_))
    ));
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.rate_limit, s.concurrency_limit, s.paused),
        (None, None, false)
    );
}

// ---- across worker processes (standalone) ----

fn spawn_worker(
    t: &SharedTopology,
    name: &str,
    record: &str,
    starts: &str,
    concurrency: u32,
    job_ms: u64,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rqueue-soak-worker"))
        .args([
            t.url(),
            NAMESPACE,
            name,
            record,
            &concurrency.to_string(),
            "30000",
            &job_ms.to_string(),
        ])
        .env("RQUEUE_SOAK_STARTS", starts)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rqueue-soak-worker")
}

fn stop(workers: Vec<Child>) {
    for w in &workers {
        let _ = Command::new("kill")
            .args(["-TERM", &w.id().to_string()])
            .status();
    }
    for mut w in workers {
        let _ = w.wait();
    }
}

async fn admin(t: &SharedTopology) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(t.url()).expect("url"))
        .await
        .expect("connect admin")
}

async fn server_ms(redis: &RedisClient) -> u64 {
    let t: Vec<u64> = redis
        .pool()
        .custom(fred::cmd!("TIME"), Vec::<String>::new())
        .await
        .expect("TIME");
    t[0] * 1000 + t[1] / 1000
}

/// Claim times (server ms) the workers recorded, by message.
async fn starts(redis: &RedisClient, key: &str) -> HashMap<u64, u64> {
    let raw: HashMap<String, u64> = redis.pool().hgetall(key).await.expect("HGETALL");
    raw.into_iter()
        .map(|(k, v)| (k.parse().expect("message"), v))
        .collect()
}

async fn evalsha_calls(redis: &RedisClient) -> u64 {
    let info: String = redis
        .pool()
        .info(Some(fred::types::InfoKind::CommandStats))
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn fill(q: &Queue<u64>, n: u64) {
    let all: Vec<u64> = (0..n).collect();
    for chunk in all.chunks(1000) {
        q.enqueue_batch(chunk).await.expect("enqueue");
    }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 4 worker processes under load; pause: within one claim round nothing new starts (no claim
/// after the pause returned), the running jobs finish and ack, the workers do not spin;
/// resume: work continues at once; in the end every message was processed, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_under_load_with_worker_processes() {
    const N: u64 = 6_000;
    let (redis, t) = shared(Kind::Standalone).await;
    let admin = admin(t).await;
    let name = testkit::unique_name("flow-pause");
    let record = format!("{NAMESPACE}:flow-record:{name}");
    let start_key = format!("{NAMESPACE}:flow-starts:{name}");
    let q = queue_named(&redis, &name);
    fill(&q, N).await;
    let workers: Vec<Child> = (0..4)
        .map(|_| spawn_worker(t, &name, &record, &start_key, 8, 10))
        .collect();
    wait_for("1,000 jobs done", Duration::from_secs(60), async || {
        admin.pool().hlen::<u64, _>(&record).await.expect("HLEN") >= 1000
    })
    .await;
    q.pause().await.expect("pause");
    let paused_at = server_ms(&admin).await;
    // Running (and prefetched) jobs finish and ack: nothing stays in flight.
    wait_for(
        "in-flight jobs to finish",
        Duration::from_secs(5),
        async || q.stats().await.expect("stats").in_flight == 0,
    )
    .await;
    let before = starts(&admin, &start_key).await.len();
    let calls_before = evalsha_calls(&admin).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = evalsha_calls(&admin).await - calls_before;
    let during = starts(&admin, &start_key).await;
    let late: Vec<_> = during.iter().filter(|(_, ms)| **ms > paused_at).collect();
    assert!(
        late.is_empty(),
        "claimed after the pause returned: {late:?}"
    );
    assert_eq!(during.len(), before, "nothing new started while paused");
    let s = q.stats().await.expect("stats");
    assert!(s.paused && s.in_flight == 0, "{s:?}");
    eprintln!("while paused: {calls} script calls in 1 s by 4 workers (no spinning)");
    assert!(
        calls < 60,
        "paused workers spin: {calls} script calls in 1 s"
    );
    let resumed_at = server_ms(&admin).await;
    q.resume().await.expect("resume");
    wait_for("work after resume", Duration::from_secs(5), async || {
        starts(&admin, &start_key)
            .await
            .values()
            .any(|ms| *ms >= resumed_at)
    })
    .await;
    let first = starts(&admin, &start_key)
        .await
        .values()
        .copied()
        .filter(|ms| *ms >= resumed_at)
        .min()
        .expect("a claim after resume");
    let latency = first - resumed_at;
    eprintln!("resume → first claim: {latency} ms (server clock)");
    assert!(latency < 250, "work continued {latency} ms after resume");
    wait_for("all processed", Duration::from_secs(120), async || {
        let s = q.stats().await.expect("stats");
        s.ready + s.in_flight + s.delayed == 0
    })
    .await;
    stop(workers);
    let done: HashMap<String, u64> = admin.pool().hgetall(&record).await.expect("HGETALL");
    let missing: Vec<u64> = (0..N)
        .filter(|n| !done.contains_key(&n.to_string()))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let s = q.stats().await.expect("stats");
    assert_eq!((s.dead, s.acked >= N), (0, true), "{s:?}");
    let _: () = admin.pool().del((record, start_key)).await.expect("DEL");
}

fn queue_named(redis: &RedisClient, name: &str) -> Queue<u64> {
    let mut cfg = QueueConfig::new(name);
    cfg.namespace = NAMESPACE.into();
    cfg.max_stalls = 1000;
    Queue::new(redis.clone(), cfg).expect("queue")
}

/// 200 claims/s across 4 worker processes on a 10,000-message backlog, for 10 s: in every 1-s
/// window (sliding, by the server's claim times) at most 200 claims, and throughput within 10 %
/// of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_across_worker_processes() {
    const N: u64 = 10_000;
    let (redis, t) = shared(Kind::Standalone).await;
    let admin = admin(t).await;
    let name = testkit::unique_name("flow-rate");
    let record = format!("{NAMESPACE}:flow-record:{name}");
    let start_key = format!("{NAMESPACE}:flow-starts:{name}");
    let q = queue_named(&redis, &name);
    fill(&q, N).await;
    q.set_rate_limit(Some(RateLimit::per_second(200).expect("limit")))
        .await
        .expect("set");
    let workers: Vec<Child> = (0..4)
        .map(|_| spawn_worker(t, &name, &record, &start_key, 8, 10))
        .collect();
    tokio::time::sleep(Duration::from_secs(11)).await;
    q.pause().await.expect("pause");
    stop(workers);
    let mut times: Vec<u64> = starts(&admin, &start_key).await.into_values().collect();
    times.sort_unstable();
    let t0 = *times.first().expect("claims");
    let mut worst = 0;
    for (i, &from) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|&&ms| ms < from + 1000)
            .count();
        worst = worst.max(in_window);
    }
    let in_ten = times.iter().filter(|&&ms| ms < t0 + 10_000).count();
    eprintln!(
        "rate limit 200/s, 4 processes: busiest 1-s window {worst} claims, {in_ten} claims in the first 10 s ({:.1}/s)",
        in_ten as f64 / 10.0
    );
    assert!(worst <= 200, "a 1-s window held {worst} claims");
    assert!(
        (1800..=2000).contains(&in_ten),
        "throughput {in_ten} claims in 10 s, not within 10 % of 2,000"
    );
    assert!(q.stats().await.expect("stats").rate_limited > 0);
    let _: () = admin.pool().del((record, start_key)).await.expect("DEL");
}

/// Concurrency limit 5 across 4 worker processes each running 10 at once: never more than 5 in
/// flight (sampled every few ms), and every message processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_across_worker_processes() {
    const N: u64 = 1_500;
    let (redis, t) = shared(Kind::Standalone).await;
    let admin = admin(t).await;
    let name = testkit::unique_name("flow-conc");
    let record = format!("{NAMESPACE}:flow-record:{name}");
    let start_key = format!("{NAMESPACE}:flow-starts:{name}");
    let q = queue_named(&redis, &name);
    q.set_concurrency_limit(Some(5)).await.expect("set");
    fill(&q, N).await;
    let workers: Vec<Child> = (0..4)
        .map(|_| spawn_worker(t, &name, &record, &start_key, 10, 20))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut most, mut samples) = (0, 0);
    loop {
        let s = q.stats().await.expect("stats");
        most = most.max(s.in_flight);
        samples += 1;
        assert!(
            s.in_flight <= 5,
            "{} in flight with a limit of 5",
            s.in_flight
        );
        if s.ready + s.in_flight == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {s:?}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    stop(workers);
    eprintln!("concurrency limit 5: at most {most} in flight over {samples} samples");
    assert_eq!(
        most, 5,
        "the limit was reached (it is what bounds the work)"
    );
    let done: HashMap<String, u64> = admin.pool().hgetall(&record).await.expect("HGETALL");
    assert_eq!(done.len() as u64, N, "every message processed");
    let _: () = admin.pool().del((record, start_key)).await.expect("DEL");
}
