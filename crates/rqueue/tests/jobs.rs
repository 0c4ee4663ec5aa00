//! Jobs by id on every topology: one job walked through every state, progress seen by another
//! client, kept results that expire, `wait_result` for request / response, cancel and remove,
//! and the typed errors of bad ids.

use std::time::{Duration, Instant, SystemTime};

use redis_conn::RedisClient;
use rqueue::{Error, JobState, Queue, QueueConfig, Worker, WorkerConfig};
use testkit::SharedTopology;

mod common;
use common::{shared, suite_client};

fn config(test: &str) -> QueueConfig {
    let mut cfg = QueueConfig::new(testkit::unique_name(&format!("jobs-{test}")));
    cfg.namespace = "t:rq".into();
    cfg
}

testkit::topology_tests!(
    one_job_walks_through_every_state,
    progress_is_seen_by_another_client_and_kept_with_the_result,
    kept_results_expire_after_their_ttl,
    wait_result_answers_within_milliseconds_of_completion,
    wait_result_reports_death_timeouts_and_misuse,
    cancel_and_remove_by_id,
    delete_dead_removes_only_what_is_still_dead,
    a_scheduled_job_names_its_schedule_and_tick,
);

/// A job a schedule enqueued says which schedule and tick, also once completed.
async fn a_scheduled_job_names_its_schedule_and_tick(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = config("sched");
    cfg.keep_results = Some(Duration::from_secs(60));
    let q: Queue<u64> = Queue::new(redis, cfg).expect("queue");
    let s = rqueue::Scheduler::new(q.clone());
    let every = rqueue::Schedule::every(Duration::from_millis(100));
    s.add("tick", &every, &9).await.expect("add");
    let report = s
        .run(tokio::time::sleep(Duration::from_millis(450)))
        .await
        .expect("run");
    assert!(report.enqueued >= 2, "{report:?}");
    let d = q
        .claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("a tick's job");
    let id = d.id().to_string();
    let tick = q.job(&id).await.expect("job").schedule.expect("origin");
    assert_eq!(tick.schedule, "tick");
    let ms = tick
        .tick
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    assert_eq!(
        ms % 100,
        0,
        "interval ticks are whole multiples of the interval"
    );
    d.ack().await.expect("ack");
    assert_eq!(
        q.job(&id).await.expect("kept").schedule,
        Some(tick),
        "kept with the result"
    );
}

fn close(a: SystemTime, b: SystemTime, within: Duration) -> bool {
    a.duration_since(b)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .is_ok_and(|d| d <= within)
}

/// delayed → waiting → active → (failure) delayed → waiting → active → completed → expired,
/// and a second job → dead, checked with `job(id)` at each step.
async fn one_job_walks_through_every_state(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = config("walk");
    cfg.keep_results = Some(Duration::from_secs(60));
    cfg.max_attempts = 2;
    let q: Queue<String> = Queue::new(redis.clone(), cfg).expect("queue");
    let id = q
        .message(&"walk".to_string())
        .delay(Duration::from_millis(300))
        .priority(3)
        .send()
        .await
        .expect("enqueue");
    let j = q.job(&id).await.expect("job");
    assert!(matches!(j.state, JobState::Delayed { .. }), "{j:?}");
    assert_eq!((j.priority, j.failures, j.max_attempts), (3, 0, 2));
    assert_eq!(j.message.as_deref(), Some("walk"));
    let enqueued = j.enqueued_at.expect("enqueue time");
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Promoted by the next claim; a claim of another queue would not do it, so claim 0 here
    // is not possible: look after promotion by claiming.
    let d = q
        .claim_wait(1, Duration::from_secs(2))
        .await
        .expect("claim")
        .pop()
        .expect("due");
    let j = q.job(&id).await.expect("job");
    match &j.state {
        JobState::Active {
            worker,
            claimed_at,
            lease_deadline,
        } => {
            assert!(worker.contains(&std::process::id().to_string()), "{worker}");
            assert!(
                *claimed_at >= enqueued && *lease_deadline > *claimed_at,
                "{j:?}"
            );
            assert_eq!(j.started_at, Some(*claimed_at));
        }
        other => panic!("not active: {other:?}"),
    }
    d.retry_after(Duration::from_millis(200), "flaky upstream")
        .await
        .expect("nack");
    let j = q.job(&id).await.expect("job");
    assert!(matches!(j.state, JobState::Delayed { .. }), "{j:?}");
    assert_eq!(
        (j.failures, j.last_error.as_deref()),
        (1, Some("flaky upstream"))
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Due now; still waiting until a claim promotes it, then ready ones are "waiting".
    let other = q.enqueue(&"second".to_string()).await.expect("enqueue");
    assert_eq!(q.job(&other).await.expect("job").state, JobState::Waiting);
    let mut got = q.claim(1).await.expect("claim");
    let d = got.pop().expect("the retried one first (priority 3)");
    assert_eq!(d.id(), id);
    assert_eq!(d.delivery(), 2);
    d.ack_with(&42u32).await.expect("ack");
    let j = q.job(&id).await.expect("job");
    let JobState::Completed { finished_at } = j.state else {
        panic!("not completed: {j:?}")
    };
    assert_eq!(j.finished_at, Some(finished_at));
    assert!(j.started_at.is_some_and(|s| s <= finished_at), "{j:?}");
    assert_eq!(j.result_as::<u32>().expect("decode"), Some(42));
    assert_eq!(j.failures, 1, "attempts are kept with the result");
    // The second job dies.
    let d = q.claim(1).await.expect("claim").pop().expect("second");
    d.dead("invalid order").await.expect("dead");
    let j = q.job(&other).await.expect("job");
    match &j.state {
        JobState::Dead { reason, died_at } => {
            assert_eq!(reason, "invalid order");
            assert!(close(*died_at, SystemTime::now(), Duration::from_secs(5)));
        }
        s => panic!("not dead: {s:?}"),
    }
    assert_eq!(
        j.message.as_deref(),
        Some("second"),
        "the payload stays for a replay"
    );
}

async fn progress_is_seen_by_another_client_and_kept_with_the_result(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let mut cfg = config("progress");
    cfg.keep_results = Some(Duration::from_secs(60));
    let q: Queue<u64> = Queue::new(redis.clone(), cfg.clone()).expect("queue");
    let watcher: Queue<u64> = Queue::new(suite_client(t).await, cfg).expect("queue");
    let id = q.enqueue(&7).await.expect("enqueue");
    let d = q.claim(1).await.expect("claim").pop().expect("one");
    assert!(watcher.job(&id).await.expect("job").progress.is_none());
    d.progress(25.0, "resizing").await.expect("progress");
    let p = watcher
        .job(&id)
        .await
        .expect("job")
        .progress
        .expect("seen elsewhere");
    assert_eq!((p.value, p.message.as_str()), (25.0, "resizing"));
    d.progress(75.5, &"é".repeat(2000))
        .await
        .expect("a long message is cut");
    let p = watcher.job(&id).await.expect("job").progress.expect("seen");
    assert!(
        p.value == 75.5 && p.message.len() <= 1024,
        "{}",
        p.message.len()
    );
    assert!(matches!(
        d.progress(f64::NAN, "x").await,
        Err(Error::Config(_))
    ));
    // A worker's handler reports through its JobInfo.
    d.ack().await.expect("ack");
    let j = watcher.job(&id).await.expect("job");
    assert_eq!(
        j.progress.map(|p| p.value),
        Some(75.5),
        "kept with the record"
    );
    let id2 = q.enqueue(&8).await.expect("enqueue");
    let worker = tokio::spawn(Worker::new(q.clone(), WorkerConfig::default()).run(
        |n: u64, job: rqueue::JobInfo| async move {
            job.progress(50.0, "half")
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, String>(n * 2)
        },
        tokio::time::sleep(Duration::from_secs(2)),
    ));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if watcher
            .job(&id2)
            .await
            .expect("job")
            .progress
            .is_some_and(|p| p.value == 50.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "handler progress never seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r: u64 = watcher
        .wait_result(&id2, Duration::from_secs(3))
        .await
        .expect("result");
    assert_eq!(r, 16);
    worker.await.expect("join").expect("worker");
}

async fn kept_results_expire_after_their_ttl(redis: RedisClient, _t: &SharedTopology) {
    let mut cfg = config("ttl");
    cfg.keep_results = Some(Duration::from_millis(400));
    let q: Queue<u64> = Queue::new(redis, cfg).expect("queue");
    let id = q.enqueue(&1).await.expect("enqueue");
    q.claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("one")
        .ack_with(&"done")
        .await
        .expect("ack");
    let j = q.job(&id).await.expect("kept");
    assert_eq!(
        j.result_as::<String>().expect("decode").as_deref(),
        Some("done")
    );
    assert!(j.message.is_none(), "the payload is deleted at ack");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        matches!(q.job(&id).await, Err(Error::UnknownJob { .. })),
        "expired"
    );
    assert!(matches!(
        q.wait_result::<String>(&id, Duration::from_millis(50))
            .await,
        Err(Error::UnknownJob { .. })
    ));
}

/// A worker finishes the job; `wait_result` returns its result within a few ms of the ack
/// (measured on the server's clock: ack time in the record vs server time after the return).
async fn wait_result_answers_within_milliseconds_of_completion(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let mut cfg = config("wait");
    cfg.keep_results = Some(Duration::from_secs(60));
    let q: Queue<u64> = Queue::new(redis.clone(), cfg).expect("queue");
    let worker = tokio::spawn(Worker::new(q.clone(), WorkerConfig::default()).run(
        |n: u64, _job| async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, String>(n + 1)
        },
        tokio::time::sleep(Duration::from_secs(3)),
    ));
    let mut lags = Vec::new();
    for n in 0..5u64 {
        let id = q.enqueue(&n).await.expect("enqueue");
        let r: u64 = q
            .wait_result(&id, Duration::from_secs(5))
            .await
            .expect("result");
        let returned = SystemTime::now();
        assert_eq!(r, n + 1);
        let finished = q
            .job(&id)
            .await
            .expect("job")
            .finished_at
            .expect("finished");
        // Local and server clocks are the same machine's here.
        let lag = returned.duration_since(finished).unwrap_or_default();
        lags.push(lag);
    }
    eprintln!("wait_result returned after the ack by {lags:?}");
    let worst = lags.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_millis(250),
        "wait_result lagged the ack by {worst:?}"
    );
    worker.await.expect("join").expect("worker");
}

async fn wait_result_reports_death_timeouts_and_misuse(redis: RedisClient, _t: &SharedTopology) {
    let plain: Queue<u64> = Queue::new(redis.clone(), config("nokeep")).expect("queue");
    let id = plain.enqueue(&1).await.expect("enqueue");
    assert!(matches!(
        plain
            .wait_result::<u64>(&id, Duration::from_millis(10))
            .await,
        Err(Error::Config(_))
    ));
    let mut cfg = config("death");
    cfg.keep_results = Some(Duration::from_secs(60));
    let q: Queue<u64> = Queue::new(redis.clone(), cfg).expect("queue");
    let id = q.enqueue(&1).await.expect("enqueue");
    let started = Instant::now();
    assert!(matches!(
        q.wait_result::<u64>(&id, Duration::from_millis(200)).await,
        Err(Error::WaitTimeout { .. })
    ));
    assert!(started.elapsed() >= Duration::from_millis(190));
    let waiter = {
        let (q, id) = (q.clone(), id.clone());
        tokio::spawn(async move { q.wait_result::<u64>(&id, Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    q.claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("one")
        .dead("bad input")
        .await
        .expect("dead");
    match waiter.await.expect("join") {
        Err(Error::JobDead { reason, .. }) => assert_eq!(reason, "bad input"),
        other => panic!("expected JobDead: {other:?}"),
    }
    // A plain ack (no value) keeps a record without a result.
    let id = q.enqueue(&2).await.expect("enqueue");
    q.claim(1)
        .await
        .expect("claim")
        .pop()
        .expect("one")
        .ack()
        .await
        .expect("ack");
    assert!(matches!(
        q.wait_result::<u64>(&id, Duration::from_millis(100)).await,
        Err(Error::NoResult { .. })
    ));
    for bad in ["", "nope", "1764064000123-00000x", "../../etc"] {
        assert!(
            matches!(q.job(bad).await, Err(Error::UnknownJob { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        q.job("1764064000123-000000").await,
        Err(Error::UnknownJob { .. })
    ));
}

async fn cancel_and_remove_by_id(redis: RedisClient, _t: &SharedTopology) {
    let q: Queue<u64> = Queue::new(redis.clone(), config("cancel")).expect("queue");
    let waiting = q.enqueue(&1).await.expect("enqueue");
    let delayed = q
        .message(&2)
        .delay(Duration::from_secs(60))
        .send()
        .await
        .expect("enqueue");
    assert_eq!(q.cancel(&waiting).await.expect("cancel"), "waiting");
    assert_eq!(q.cancel(&delayed).await.expect("cancel"), "delayed");
    for id in [&waiting, &delayed] {
        assert!(matches!(q.job(id).await, Err(Error::UnknownJob { .. })));
        assert!(matches!(q.cancel(id).await, Err(Error::UnknownJob { .. })));
    }
    let active = q.enqueue(&3).await.expect("enqueue");
    let d = q.claim(1).await.expect("claim").pop().expect("one");
    assert!(matches!(
        q.cancel(&active).await,
        Err(Error::JobActive { .. })
    ));
    assert!(matches!(
        q.remove(&active).await,
        Err(Error::JobActive { .. })
    ));
    d.dead("no").await.expect("dead");
    assert!(
        matches!(q.cancel(&active).await, Err(Error::NotCancellable { state, .. }) if state == "dead")
    );
    assert_eq!(q.remove(&active).await.expect("remove"), "dead");
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.ready, s.delayed, s.in_flight, s.dead),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(
        q.claim(10).await.expect("claim").is_empty(),
        "cancelled jobs never run"
    );
    assert!(matches!(
        q.cancel("garbage").await,
        Err(Error::UnknownJob { .. })
    ));
}

/// `delete_dead` deletes a dead message, and leaves alone one that was replayed (or is
/// waiting, in flight or unknown) by the time it runs; `replay_oldest` replays the oldest.
async fn delete_dead_removes_only_what_is_still_dead(redis: RedisClient, _t: &SharedTopology) {
    let q: Queue<u64> = Queue::new(redis.clone(), config("delete-dead")).expect("queue");
    let mut dead = Vec::new();
    for i in 0..3 {
        q.enqueue(&i).await.expect("enqueue");
    }
    for d in q.claim(3).await.expect("claim") {
        dead.push(d.id().to_string());
        d.dead("bad").await.expect("dead");
    }
    let waiting = q.enqueue(&9).await.expect("enqueue");
    // The oldest dead message is replayed before the delete runs: it stays, waiting.
    assert_eq!(q.replay_oldest(1).await.expect("replay_oldest"), 1);
    let ids: Vec<&str> = dead
        .iter()
        .map(String::as_str)
        .chain([waiting.as_str(), "garbage"])
        .collect();
    assert_eq!(q.delete_dead(&ids).await.expect("delete_dead"), 2);
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.dead), (2, 0), "{s:?}");
    assert_eq!(q.job(&dead[0]).await.expect("job").state.name(), "waiting");
    for id in &dead[1..] {
        assert!(matches!(q.job(id).await, Err(Error::UnknownJob { .. })));
    }
}
