//! Worker PROCESSES (`rqueue-soak-worker`) killed with SIGKILL at random moments, and stopped
//! with SIGTERM under load, on the shared standalone server.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fred::prelude::*;
use redis_conn::RedisClient;
use rqueue::{Queue, QueueConfig};
use testkit::{Kind, SharedTopology};

mod common;
use common::shared;

const NAMESPACE: &str = "t:rq";

fn spawn_worker(t: &SharedTopology, name: &str, record: &str, lease_ms: u64, job_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rqueue-soak-worker"))
        .args([
            t.url(),
            NAMESPACE,
            name,
            record,
            "8",
            &lease_ms.to_string(),
            &job_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn rqueue-soak-worker")
}

async fn fill(q: &Queue<u64>, n: u64) {
    let all: Vec<u64> = (0..n).collect();
    for chunk in all.chunks(500) {
        q.enqueue_batch(chunk).await.expect("enqueue");
    }
}

/// Per message, how many times the workers processed it.
async fn processed(redis: &RedisClient, record: &str) -> HashMap<u64, u64> {
    let raw: HashMap<String, u64> = redis.pool().hgetall(record).await.expect("HGETALL");
    raw.into_iter()
        .map(|(k, v)| (k.parse().expect("message number"), v))
        .collect()
}

fn queue(redis: &RedisClient, name: &str, lease: Duration) -> Queue<u64> {
    let mut cfg = QueueConfig::new(name);
    cfg.namespace = NAMESPACE.into();
    cfg.lease = lease;
    cfg.max_stalls = 1000;
    Queue::new(redis.clone(), cfg).expect("queue")
}

fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    let ok = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(ok.success(), "kill -TERM {pid}");
}

/// 20,000 messages, 4 worker processes × concurrency 8, at least 30 SIGKILLs at random
/// moments (each victim restarted at once): every message processed at least once, none lost,
/// none dead; duplicates (a job done but its ack lost with the process) counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_processes_lose_no_message() {
    const N: u64 = 20_000;
    const KILLS: usize = 40;
    let (redis, t) = shared(Kind::Standalone).await;
    let name = testkit::unique_name("crash");
    let record = format!("{NAMESPACE}:crash-record:{name}");
    let lease = Duration::from_millis(1000);
    let q = queue(&redis, &name, lease);
    fill(&q, N).await;
    let mut workers: Vec<Child> = (0..4)
        .map(|_| spawn_worker(t, &name, &record, 1000, 30))
        .collect();
    let started = Instant::now();
    let mut kills = 0;
    let mut done_at_kill = Vec::new();
    while kills < KILLS {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(100..300))).await;
        let victim = fastrand::usize(..workers.len());
        workers[victim].kill().expect("SIGKILL");
        let _ = workers[victim].wait();
        kills += 1;
        workers[victim] = spawn_worker(t, &name, &record, 1000, 30);
        let done: u64 = redis.pool().hlen(&record).await.expect("HLEN");
        done_at_kill.push(done);
    }
    let killing_took = started.elapsed();
    // Then let them finish: everything processed and nothing left in the queue.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = q.stats().await.expect("stats");
        let done: u64 = redis.pool().hlen(&record).await.expect("HLEN");
        if done == N && s.ready + s.in_flight + s.delayed == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not drained 120 s after the kills: {done} of {N} processed, {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = started.elapsed();
    for w in &workers {
        sigterm(w);
    }
    for mut w in workers {
        let _ = w.wait();
    }
    let counts = processed(&redis, &record).await;
    let missing: Vec<u64> = (0..N).filter(|n| !counts.contains_key(n)).collect();
    assert!(missing.is_empty(), "lost messages: {missing:?}");
    let total: u64 = counts.values().sum();
    let duplicates = total - N;
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.dead, s.died, s.ready, s.in_flight, s.delayed),
        (0, 0, 0, 0, 0),
        "{s:?}"
    );
    // Only SIGKILLs interrupt jobs here: a duplicate needs a job done whose ack died with its
    // process, so there cannot be more than 8 running + 64 prefetched per kill.
    assert!(duplicates <= (KILLS as u64) * 72, "{duplicates} duplicates");
    eprintln!(
        "crash test: {N} messages, {kills} SIGKILLs over {killing_took:.1?} (processed at each kill: {done_at_kill:?}), \
         drained after {drained:.1?}; 0 lost, {duplicates} processed twice or more, \
         {} reclaimed (stalls), 0 dead",
        s.reclaimed
    );
    let _: i64 = redis.pool().del(&record).await.expect("DEL");
}

/// SIGTERM to 4 busy worker processes: they stop claiming, finish (or give back) what they
/// hold and exit; nothing is left in flight and nothing is lost. A fresh worker then drains
/// the rest: every message processed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_and_leaves_nothing_in_flight() {
    const N: u64 = 10_000;
    let (redis, t) = shared(Kind::Standalone).await;
    let name = testkit::unique_name("sigterm");
    let record = format!("{NAMESPACE}:sigterm-record:{name}");
    let q = queue(&redis, &name, Duration::from_secs(30));
    fill(&q, N).await;
    let workers: Vec<Child> = (0..4)
        .map(|_| spawn_worker(t, &name, &record, 30_000, 50))
        .collect();
    // Under load: wait until a good part is done, not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: u64 = redis.pool().hlen(&record).await.expect("HLEN");
        if done >= 500 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers made no progress: {done}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in &workers {
        sigterm(w);
    }
    let mut reports = Vec::new();
    for w in workers {
        let out = tokio::task::spawn_blocking(move || w.wait_with_output())
            .await
            .expect("join")
            .expect("worker output");
        assert!(out.status.success(), "worker exit {:?}", out.status);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains("REPORT"), "{text}");
        reports.push(text.lines().last().unwrap_or_default().to_string());
    }
    let s = q.stats().await.expect("stats");
    let counts = processed(&redis, &record).await;
    let done = counts.len() as u64;
    assert_eq!(s.in_flight, 0, "nothing stuck in flight: {s:?}");
    assert_eq!(
        done + s.ready,
        N,
        "every message either processed or ready again: {s:?}"
    );
    assert!(s.ready > 0, "the shutdown came under load: {s:?}");
    // Drain the rest.
    let mut last = spawn_worker(t, &name, &record, 30_000, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = q.stats().await.expect("stats");
        if s.ready + s.in_flight == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigterm(&last);
    let _ = last.wait();
    let counts = processed(&redis, &record).await;
    let twice: Vec<(&u64, &u64)> = counts.iter().filter(|(_, c)| **c != 1).collect();
    assert_eq!(counts.len() as u64, N, "all processed");
    assert!(twice.is_empty(), "processed more than once: {twice:?}");
    eprintln!(
        "SIGTERM under load: {done} of {N} done at the signal, 0 in flight after, {} back to ready; reports: {reports:?}",
        N - done
    );
    let _: i64 = redis.pool().del(&record).await.expect("DEL");
}
