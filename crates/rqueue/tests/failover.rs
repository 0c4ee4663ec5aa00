//! Queues across failures of Redis itself: a Sentinel primary killed mid-run (measured and
//! reported: asynchronous replication can lose what the primary acknowledged last), and 8
//! queues working at once on a 3-primary cluster; pause and limits across a server restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_conn::{RedisClient, RedisConfig};
use rqueue::{Queue, QueueConfig, Worker, WorkerConfig};
use testkit::Kind;

mod common;

async fn connect(url: &str) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// A producer enqueues numbered messages one by one while a worker (concurrency 8) runs; the
/// primary is SIGKILLed mid-run and Sentinel promotes a replica. Afterwards the worker drains
/// the queue on the new primary. Every message whose enqueue was acknowledged AFTER the
/// failover is processed; of those acknowledged before it, the ones the replica had not
/// received yet are lost — the test counts and prints them (the figure documented in the
/// README), and checks that no more than the last moments before the kill can be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_mid_run_is_measured() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Sentinel).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let redis = connect(&topo.url()).await;
    let mut cfg = QueueConfig::new("failover");
    cfg.namespace = "t:rq".into();
    cfg.lease = Duration::from_secs(2);
    cfg.max_stalls = 100;
    let q: Queue<u64> = Queue::new(redis.clone(), cfg).expect("queue");

    // Acknowledged enqueues: number -> when (relative to the kill: before or after).
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let failed_enqueues = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (q, acked, failed, stop) = (
            q.clone(),
            acked.clone(),
            failed_enqueues.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match q.enqueue(&n).await {
                    Ok(_) => acked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((n, Instant::now())),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let processed: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let worker_stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (q, processed, worker_stop) = (q.clone(), processed.clone(), worker_stop.clone());
        let mut wcfg = WorkerConfig::default();
        wcfg.concurrency = 8;
        tokio::spawn(async move {
            Worker::new(q, wcfg)
                .run(
                    move |n: u64, _job| {
                        let processed = processed.clone();
                        async move {
                            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..4))).await;
                            *processed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .entry(n)
                                .or_default() += 1;
                            Ok::<_, String>(())
                        }
                    },
                    async move {
                        while !worker_stop.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    },
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let primary = topo.current_primary().expect("primary");
    let old = primary.addr;
    tokio::task::block_in_place(|| topo.kill(primary)).expect("kill -9");
    let killed = Instant::now();
    let failover =
        tokio::task::block_in_place(|| topo.wait_for_new_primary(old, Duration::from_secs(30)))
            .expect("failover");
    // Keep producing on the new primary for a while, then let the worker drain.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    producer.await.expect("producer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = q.stats().await;
        if let Ok(s) = &s
            && s.ready + s.in_flight + s.delayed == 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not drained after the failover: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker_stop.store(true, Ordering::Relaxed);
    let report = worker.await.expect("worker task").expect("worker");

    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let processed = processed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lost: Vec<(u64, Instant)> = acked
        .iter()
        .filter(|(n, _)| !processed.contains_key(n))
        .copied()
        .collect();
    let after: Vec<&(u64, Instant)> = acked.iter().filter(|(_, at)| *at > killed).collect();
    assert!(!after.is_empty(), "enqueues succeeded after the failover");
    let lost_after: Vec<&(u64, Instant)> = lost.iter().filter(|(_, at)| *at > killed).collect();
    assert!(
        lost_after.is_empty(),
        "acknowledged by the new primary, yet lost: {lost_after:?}"
    );
    // What is lost was acknowledged in the last moments before the kill (the replication
    // lag), never earlier.
    let oldest_lost = lost
        .iter()
        .map(|(_, at)| killed.duration_since(*at))
        .max()
        .unwrap_or_default();
    assert!(
        oldest_lost < Duration::from_secs(1),
        "lost a message acknowledged {oldest_lost:?} before the kill"
    );
    let duplicates: u32 = processed.values().map(|c| c - 1).sum();
    eprintln!(
        "sentinel failover mid-run: failover took {failover:.1?}; {} enqueues acknowledged ({} after the kill), \
         {} failed during the failover (the producer was told); lost {} acknowledged messages \
         (all acknowledged within {oldest_lost:?} before the kill); {duplicates} processed twice; worker report {report:?}",
        acked.len(),
        after.len(),
        failed_enqueues.load(Ordering::Relaxed),
        lost.len(),
    );
}

/// What asynchronous replication loses, made visible: the replicas are cut off (paused, their
/// links killed), then 50 more messages are enqueued and 5 deliveries acknowledged on the
/// primary alone, and the primary is SIGKILLed. After the failover the 50 enqueues are gone
/// (the producer was told "OK": this is the loss the README documents) and the 5 acked
/// messages come back (their acks were lost: delivered again after their lease, at least
/// once). Nothing acknowledged before the cut is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_loses_only_what_the_replicas_never_received() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Sentinel).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let redis = connect(&topo.url()).await;
    let mut cfg = QueueConfig::new("cut");
    cfg.namespace = "t:rq".into();
    cfg.lease = Duration::from_millis(500);
    let q: Queue<u64> = Queue::new(redis.clone(), cfg).expect("queue");
    let before: Vec<u64> = (0..100).collect();
    q.enqueue_batch(&before).await.expect("enqueue");
    let claimed = q.claim(5).await.expect("claim");
    assert_eq!(claimed.len(), 5);
    tokio::time::sleep(Duration::from_millis(300)).await; // replicated by now
    let primary = topo.current_primary().expect("primary");
    let replicas = topo.replicas_of(primary);
    for r in &replicas {
        tokio::task::block_in_place(|| topo.pause(r)).expect("pause replica");
    }
    tokio::task::block_in_place(|| primary.cmd(&["CLIENT", "KILL", "TYPE", "replica"]))
        .expect("CLIENT KILL TYPE replica");
    let after: Vec<u64> = (100..150).collect();
    q.enqueue_batch(&after)
        .await
        .expect("enqueue on the primary alone");
    for d in claimed {
        d.ack().await.expect("ack on the primary alone");
    }
    let old = primary.addr;
    tokio::task::block_in_place(|| topo.kill(primary)).expect("kill -9");
    for r in &replicas {
        tokio::task::block_in_place(|| topo.resume(r)).expect("resume replica");
    }
    let failover =
        tokio::task::block_in_place(|| topo.wait_for_new_primary(old, Duration::from_secs(30)))
            .expect("failover");
    // Drain everything the new primary has, reclaiming the leases the lost acks left.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = match q.stats().await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if s.ready + s.in_flight + s.delayed == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {s:?}");
        let _ = q.reclaim(100).await;
        if let Ok(got) = q.claim(100).await {
            for d in got {
                *seen.entry(*d.message()).or_default() += 1;
                d.ack().await.expect("ack");
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lost_before: Vec<u64> = (5..100).filter(|n| !seen.contains_key(n)).collect();
    assert!(
        lost_before.is_empty(),
        "replicated messages lost: {lost_before:?}"
    );
    let again: Vec<u64> = (0..5).filter(|n| seen.contains_key(n)).collect();
    let lost_after: Vec<u64> = (100..150).filter(|n| !seen.contains_key(n)).collect();
    assert_eq!(
        again,
        vec![0, 1, 2, 3, 4],
        "the acks the replica never saw are undone"
    );
    assert_eq!(lost_after.len(), 50, "the enqueues it never saw are lost");
    eprintln!(
        "replicas cut, then primary SIGKILLed (failover {failover:.1?}): all 95 replicated messages kept, \
         the 50 enqueued on the primary alone lost, the 5 acked on the primary alone delivered again"
    );
}

/// 8 queues whose hash tags spread over the 3 primaries, each with its own producer and
/// worker, all at once: every message of every queue processed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_queues_work_concurrently_on_a_cluster() {
    const PER_QUEUE: u64 = 2000;
    let (redis, _topo) = common::shared(Kind::Cluster).await;
    let routing = {
        use fred::interfaces::ClusterInterface;
        redis
            .next()
            .cached_cluster_state()
            .expect("cluster slot map")
    };
    let mut queues = Vec::new();
    let mut owners = std::collections::HashSet::new();
    for i in 0..8 {
        let mut cfg = QueueConfig::new(testkit::unique_name(&format!("c{i}")));
        cfg.namespace = "t:rq".into();
        let key = format!("t:rq:{{{}}}:jobs", cfg.name);
        let slot = redis_conn::keys::slot(key.as_bytes());
        let owner = routing.get_server(slot).expect("slot owner");
        owners.insert(format!("{}:{}", owner.host, owner.port));
        queues.push(Queue::<u64>::new(redis.clone(), cfg).expect("queue"));
    }
    // Names are random: with 8 of them, all 3 primaries are almost always used; 2 at least.
    assert!(owners.len() >= 2, "queues on {} primaries", owners.len());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for q in &queues {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let producer = {
                let q = q.clone();
                tokio::spawn(async move {
                    let all: Vec<u64> = (0..PER_QUEUE).collect();
                    for chunk in all.chunks(100) {
                        q.enqueue_batch(chunk).await.expect("enqueue");
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            };
            let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
            let record = seen.clone();
            let watch = seen.clone();
            let mut wcfg = WorkerConfig::default();
            wcfg.concurrency = 8;
            let report = Worker::new(q.clone(), wcfg)
                .run(
                    move |n: u64, _job| {
                        let record = record.clone();
                        async move {
                            record.lock().unwrap_or_else(|p| p.into_inner()).push(n);
                            Ok::<_, String>(())
                        }
                    },
                    async move {
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while watch.lock().unwrap_or_else(|p| p.into_inner()).len()
                            < PER_QUEUE as usize
                            && Instant::now() < deadline
                        {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                )
                .await
                .expect("worker");
            producer.await.expect("producer");
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..PER_QUEUE).collect::<Vec<_>>(), "{report:?}");
            let s = q.stats().await.expect("stats");
            assert_eq!((s.ready, s.in_flight, s.acked), (0, 0, PER_QUEUE), "{s:?}");
        }));
    }
    for t in tasks {
        t.await.expect("queue task");
    }
    eprintln!(
        "cluster: 8 queues on {} primaries, {} messages each, all processed once in {:.1?}",
        owners.len(),
        PER_QUEUE,
        started.elapsed()
    );
}

/// Pause, rate and concurrency limits live in Redis: after a restart of the server (its data
/// saved with `SAVE` first, as persistence would) they still hold, and so does the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_limits_survive_a_redis_restart_with_persistence() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Standalone).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = QueueConfig::new("controls");
    cfg.namespace = "t:rq".into();
    let q: Queue<u64> = Queue::new(connect(&topo.url()).await, cfg.clone()).expect("queue");
    q.enqueue_batch(&[1, 2, 3]).await.expect("enqueue");
    let limit = rqueue::RateLimit::per_second(50).expect("limit");
    q.set_rate_limit(Some(limit)).await.expect("rate");
    q.set_concurrency_limit(Some(2)).await.expect("conc");
    q.pause().await.expect("pause");
    let node = &topo.nodes()[0];
    node.cmd(&["SAVE"]).expect("SAVE");
    topo.kill(node).expect("kill");
    topo.restart(node).expect("restart");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.answers() {
        assert!(
            Instant::now() < deadline,
            "the restarted server does not answer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let q: Queue<u64> = Queue::new(connect(&topo.url()).await, cfg).expect("queue");
    let s = q.stats().await.expect("stats");
    assert!(s.paused, "still paused after the restart: {s:?}");
    assert_eq!(
        (s.rate_limit, s.concurrency_limit, s.ready),
        (Some(limit), Some(2), 3)
    );
    assert!(q.claim(10).await.expect("claim").is_empty(), "paused");
    q.resume().await.expect("resume");
    assert_eq!(
        q.claim(10).await.expect("claim").len(),
        2,
        "the concurrency limit holds"
    );
}
