//! Periodic jobs on real servers: storing schedules, refusing bad ones, and every tick
//! enqueued exactly once by competing schedulers — in-process on every topology, and as
//! `rqueue-scheduler` PROCESSES killed at random (standalone), with each missed-ticks policy
//! checked tick by tick after every scheduler was down.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use redis_conn::{RedisClient, Script};
use rqueue::{Error, Missed, Queue, QueueConfig, Schedule, ScheduleInfo, Scheduler};
use testkit::{Kind, SharedTopology};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

mod common;
use common::shared;

const NAMESPACE: &str = "t:rq";

testkit::topology_tests!(
    schedules_can_be_added_listed_replaced_and_removed,
    bad_schedules_are_refused_with_typed_errors_and_nothing_is_stored,
    two_schedulers_enqueue_every_tick_of_a_100ms_interval_exactly_once,
);

fn queue(redis: &RedisClient, test: &str) -> Queue<String> {
    let mut cfg = QueueConfig::new(testkit::unique_name(&format!("sched-{test}")));
    cfg.namespace = NAMESPACE.into();
    Queue::new(redis.clone(), cfg).expect("queue")
}

fn base(q: &Queue<String>) -> String {
    format!("{NAMESPACE}:{{{}}}", q.config().name)
}

fn ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis(),
    )
    .expect("ms")
}

static SERVER_TIME: Script = Script::new(
    "test_server_time",
    "local t = redis.call('TIME') return {t[1], t[2]}",
);

/// The server's clock (ms) on the node holding the queue `base`.
async fn server_ms(redis: &RedisClient, base: &str) -> u64 {
    let t: Vec<String> = SERVER_TIME
        .run(
            redis.pool(),
            vec![format!("{base}:sched_last")],
            Vec::<String>::new(),
        )
        .await
        .expect("TIME");
    let secs: u64 = t[0].parse().expect("seconds");
    let micros: u64 = t[1].parse().expect("microseconds");
    secs * 1000 + micros / 1000
}

async fn hgetall(redis: &RedisClient, key: &str) -> HashMap<String, String> {
    redis.pool().hgetall(key).await.expect("HGETALL")
}

/// Every job a schedule enqueued: id → (tick ms, schedule name).
async fn origins(redis: &RedisClient, base: &str) -> HashMap<String, (u64, String)> {
    hgetall(redis, &format!("{base}:origin"))
        .await
        .into_iter()
        .map(|(id, v)| {
            let (tick, name) = v.split_once('|').expect("<tick>|<name>");
            (id, (tick.parse().expect("tick ms"), name.to_string()))
        })
        .collect()
}

/// Per schedule, the ticks of its jobs, sorted (a tick enqueued twice appears twice).
fn ticks_by_schedule(origins: &HashMap<String, (u64, String)>) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (tick, name) in origins.values() {
        out.entry(name.clone()).or_default().push(*tick);
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

async fn ready_ids(redis: &RedisClient, base: &str) -> HashSet<String> {
    let ids: Vec<String> = redis
        .pool()
        .zrange(format!("{base}:ready"), 0, -1, None, false, None, false)
        .await
        .expect("ZRANGE");
    ids.into_iter().collect()
}

async fn last_handled(redis: &RedisClient, base: &str) -> HashMap<String, u64> {
    hgetall(redis, &format!("{base}:sched_last"))
        .await
        .into_iter()
        .map(|(k, v)| (k, v.parse().expect("last tick ms")))
        .collect()
}

/// The multiples of `step` in `(after, until]`.
fn multiples(after: u64, until: u64, step: u64) -> Vec<u64> {
    let mut t = (after / step + 1) * step;
    let mut out = Vec::new();
    while t <= until {
        out.push(t);
        t += step;
    }
    out
}

fn info<'a>(list: &'a [ScheduleInfo<String>], name: &str) -> &'a ScheduleInfo<String> {
    list.iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
}

async fn schedules_can_be_added_listed_replaced_and_removed(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "crud");
    let b = base(&q);
    let s = Scheduler::new(q.clone());
    let fast = Schedule::every(Duration::from_millis(100)).priority(3);
    let paris = Schedule::cron("0 0 9 * * MON-FRI")
        .and_then(|s| s.time_zone("Europe/Paris"))
        .expect("cron")
        .missed(Missed::CatchUp(3));
    let before = server_ms(&redis, &b).await;
    s.add("fast", &fast, &"a".to_string()).await.expect("add");
    s.add("paris", &paris, &"b".to_string()).await.expect("add");
    let after = server_ms(&redis, &b).await;
    let list = s.list().await.expect("list");
    assert_eq!(
        list.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["fast", "paris"]
    );
    for (name, schedule, payload) in [("fast", &fast, "a"), ("paris", &paris, "b")] {
        let i = info(&list, name);
        assert_eq!(i.schedule.as_ref().expect("readable"), schedule);
        assert_eq!(i.payload.as_deref(), Some(payload));
        let last = i.last_handled.expect("added at");
        assert!((before..=after).contains(&ms(last)), "{i:?}");
        assert_eq!(i.next_tick, schedule.next_tick_after(last));
        assert!(i.next_tick.expect("next") > last);
    }
    assert_eq!(
        info(&list, "paris")
            .schedule
            .as_ref()
            .expect("paris")
            .time_zone_name(),
        Some("Europe/Paris")
    );
    // The same definition again: nothing changes (its ticks go on).
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.add("fast", &fast, &"a".to_string())
        .await
        .expect("re-add");
    let again = s.list().await.expect("list");
    assert_eq!(
        info(&again, "fast").last_handled,
        info(&list, "fast").last_handled
    );
    // A different payload replaces it and starts it from now.
    s.add("fast", &fast, &"a2".to_string())
        .await
        .expect("replace");
    let replaced = s.list().await.expect("list");
    assert_eq!(info(&replaced, "fast").payload.as_deref(), Some("a2"));
    assert!(info(&replaced, "fast").last_handled > info(&list, "fast").last_handled);
    // Definitions this version cannot run are listed with the reason, never a panic.
    let schedules = format!("{b}:schedules");
    let _: i64 = redis
        .pool()
        .hset(
            &schedules,
            [
                ("alien", "rqs9|every|10||skip|0|x".as_bytes().to_vec()),
                // A u64 payload (MessagePack 7), not a String.
                ("wrong-type", b"rqs1|every|1000||skip|0|\x07".to_vec()),
            ],
        )
        .await
        .expect("HSET");
    let list = s.list().await.expect("list with bad entries");
    for name in ["alien", "wrong-type"] {
        let i = info(&list, name);
        assert!(i.schedule.is_err(), "{i:?}");
        assert!(i.payload.is_none());
    }
    assert!(
        info(&list, "alien")
            .schedule
            .as_ref()
            .expect_err("alien")
            .contains("format")
    );
    for name in ["fast", "paris", "alien", "wrong-type"] {
        assert!(s.remove(name).await.expect("remove"), "{name}");
    }
    assert!(!s.remove("fast").await.expect("remove again"));
    assert!(s.list().await.expect("list").is_empty());
    assert!(hgetall(&redis, &schedules).await.is_empty());
    assert!(last_handled(&redis, &b).await.is_empty());
}

async fn bad_schedules_are_refused_with_typed_errors_and_nothing_is_stored(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "bad");
    let b = base(&q);
    let s = Scheduler::new(q.clone());
    let unnamed = |r: Result<Schedule, Error>, what: &str| match r {
        Err(Error::InvalidSchedule { name: None, reason }) => reason,
        other => panic!("{what}: {other:?}"),
    };
    for pattern in ["61 * * * *", "* * *", "every monday", "", "0 0 30 2 *"] {
        let why = unnamed(Schedule::cron(pattern), pattern);
        assert!(!why.is_empty());
    }
    let why = unnamed(
        Schedule::cron("0 0 9 * * *").and_then(|c| c.time_zone("Mars/Olympus")),
        "unknown zone",
    );
    assert!(why.contains("Mars/Olympus"), "{why}");
    unnamed(
        Schedule::every(Duration::from_secs(1)).time_zone("UTC"),
        "zone on an interval",
    );
    let ok = Schedule::every(Duration::from_secs(1));
    let cases: [(&str, Schedule); 6] = [
        ("zero", Schedule::every(Duration::ZERO)),
        ("sub-ms", Schedule::every(Duration::from_micros(500))),
        ("catch-up-0", ok.clone().missed(Missed::CatchUp(0))),
        ("", ok.clone()),
        ("a{b}", ok.clone()),
        ("x}", ok.clone()),
    ];
    for (name, schedule) in cases {
        match s.add(name, &schedule, &"p".to_string()).await {
            Err(Error::InvalidSchedule {
                name: Some(n),
                reason,
            }) => {
                assert_eq!(n, name);
                assert!(!reason.is_empty());
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }
    let e = s
        .add("too-many", &ok.missed(Missed::CatchUp(10_001)), &"p".into())
        .await
        .expect_err("CatchUp above the limit");
    assert!(e.to_string().contains("too-many"), "{e}");
    assert!(hgetall(&redis, &format!("{b}:schedules")).await.is_empty());
    assert!(last_handled(&redis, &b).await.is_empty());
    assert!(s.list().await.expect("list").is_empty());
}

async fn two_schedulers_enqueue_every_tick_of_a_100ms_interval_exactly_once(
    redis: RedisClient,
    _t: &SharedTopology,
) {
    let q = queue(&redis, "twice");
    let b = base(&q);
    let s = Scheduler::new(q.clone());
    s.add(
        "fast",
        &Schedule::every(Duration::from_millis(100)).priority(2),
        &"tick".to_string(),
    )
    .await
    .expect("add");
    let added = ms(s.list().await.expect("list")[0]
        .last_handled
        .expect("added at"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let other = Scheduler::new(q.clone());
        let mut stopped = stopped.clone();
        runs.push(tokio::spawn(async move {
            other
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    stop.send(true).expect("stop");
    let mut reports = Vec::new();
    for r in runs {
        reports.push(r.await.expect("join").expect("run"));
    }
    let last = last_handled(&redis, &b).await["fast"];
    let expected = multiples(added, last, 100);
    assert!(expected.len() >= 17, "{} ticks in 2.1 s", expected.len());
    let origins = origins(&redis, &b).await;
    let ticks = ticks_by_schedule(&origins);
    assert_eq!(ticks.keys().collect::<Vec<_>>(), ["fast"]);
    assert_eq!(ticks["fast"], expected, "every tick exactly once");
    let ready = ready_ids(&redis, &b).await;
    let ids: HashSet<String> = origins.keys().cloned().collect();
    assert_eq!(ready, ids, "every job is ready (no worker ran)");
    let payload = rmp_serde::to_vec(&"tick".to_string()).expect("encode");
    for id in &ids {
        let stored: Vec<u8> = redis
            .pool()
            .hget(format!("{b}:jobs"), id)
            .await
            .expect("HGET jobs");
        assert_eq!(stored, payload);
        let meta: String = redis
            .pool()
            .hget(format!("{b}:meta"), id)
            .await
            .expect("HGET meta");
        assert_eq!(meta, "2|0|5|0");
    }
    let n = expected.len() as u64;
    assert_eq!(reports.iter().map(|r| r.enqueued).sum::<u64>(), n);
    assert_eq!(reports.iter().map(|r| r.skipped).sum::<u64>(), 0);
    let stats = hgetall(&redis, &format!("{b}:stats")).await;
    assert_eq!(stats.get("sched_enqueued"), Some(&n.to_string()));
    assert_eq!(stats.get("enqueued"), Some(&n.to_string()));
    assert_eq!(q.stats().await.expect("stats").ready, n);
    eprintln!(
        "two schedulers: {n} ticks, reports {reports:?} (each refusal is a tick the other handled first)"
    );
}

/// A `rqueue-scheduler` process, its stdout read line by line.
struct Proc {
    child: Child,
    out: Lines<BufReader<ChildStdout>>,
}

async fn spawn_scheduler(t: &SharedTopology, queue: &str) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rqueue-scheduler"))
        .args([t.url(), NAMESPACE, queue, "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rqueue-scheduler");
    let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut p = Proc { child, out };
    let line = tokio::time::timeout(Duration::from_secs(20), p.out.next_line())
        .await
        .expect("RUNNING within 20 s")
        .expect("read stdout");
    assert_eq!(line.as_deref(), Some("RUNNING"));
    p
}

async fn sigkill(p: &mut Proc) {
    p.child.start_kill().expect("SIGKILL");
    let _ = p.child.wait().await;
}

/// Sleeps until the server's clock reaches `at` (ms).
async fn until_server(redis: &RedisClient, b: &str, at: u64) -> u64 {
    loop {
        let now = server_ms(redis, b).await;
        if now >= at {
            return now;
        }
        tokio::time::sleep(Duration::from_millis((at - now).min(20))).await;
    }
}

/// 3 scheduler processes over 5 schedules ticking every second (intervals and `* * * * * *`
/// crons, each missed-ticks policy), 20 SIGKILLs at random moments (the victim restarted at
/// once, so never all three down) over 60+ ticks: every tick of every schedule enqueued
/// exactly once. Then all three killed for 6 ticks and one started again: each schedule
/// handles the missed ticks exactly as its policy says, tick by tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_scheduler_processes_neither_lose_nor_double_a_tick_and_missed_ticks_follow_policy()
{
    const KILLS: usize = 20;
    const PART_ONE: Duration = Duration::from_secs(61);
    let (redis, t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "chaos");
    let name = q.config().name.clone();
    let b = base(&q);
    let s = Scheduler::new(q.clone());
    let second = Duration::from_secs(1);
    let schedules: [(&str, Schedule, usize); 5] = [
        // (name, schedule, how many of the newest missed ticks it enqueues)
        ("iv", Schedule::every(second), 0),
        ("cron", Schedule::cron("* * * * * *").expect("cron"), 0),
        ("skip", Schedule::every(second).missed(Missed::Skip), 0),
        (
            "run-once",
            Schedule::cron("* * * * * *")
                .expect("cron")
                .missed(Missed::RunOnce),
            1,
        ),
        (
            "catch-up-3",
            Schedule::every(second).missed(Missed::CatchUp(3)),
            3,
        ),
    ];
    for (n, sched, _) in &schedules {
        s.add(n, sched, &format!("job of {n}")).await.expect("add");
    }
    let added: HashMap<String, u64> = last_handled(&redis, &b).await;
    let started = Instant::now();
    let mut procs = Vec::new();
    for _ in 0..3 {
        procs.push(spawn_scheduler(t, &name).await);
    }
    // Part 1: random SIGKILLs, the victim restarted at once.
    let mut kills = 0;
    while kills < KILLS || started.elapsed() < PART_ONE {
        if kills >= KILLS {
            tokio::time::sleep(PART_ONE.saturating_sub(started.elapsed())).await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(1000..=2800))).await;
        let victim = fastrand::usize(..procs.len());
        sigkill(&mut procs[victim]).await;
        procs[victim] = spawn_scheduler(t, &name).await;
        kills += 1;
    }
    // All down.
    for p in &mut procs {
        sigkill(p).await;
    }
    let part_one_took = started.elapsed();
    let down = last_handled(&redis, &b).await;
    let newest = *down.values().max().expect("ticks");
    // Part 2: back 7 s after the newest handled tick, 100 ms into a second, so that the
    // restarted scheduler's first pass (well within that second) finds the ticks of the
    // whole seconds before as missed (more than 1 s late) and only this second's on time.
    let restart_at = newest + 7_000 + 100;
    let restarted_at = until_server(&redis, &b, restart_at).await;
    let mut back = spawn_scheduler(t, &name).await;
    let running_at = server_ms(&redis, &b).await;
    let on_time = restarted_at / 1000 * 1000;
    assert!(
        running_at < on_time + 800,
        "the restarted scheduler took too long to start ({restarted_at} .. {running_at}) to tell its first tick exactly"
    );
    until_server(&redis, &b, on_time + 3_500).await;
    let pid = back.child.id().expect("pid").to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(ok.success());
    let status = back.child.wait().await.expect("wait");
    assert!(status.success(), "exit {status:?}");
    let mut report = String::new();
    while let Ok(Some(line)) = back.out.next_line().await {
        report = line;
    }
    let end = last_handled(&redis, &b).await;

    // Checks, schedule by schedule.
    let origins = origins(&redis, &b).await;
    let ticks = ticks_by_schedule(&origins);
    let mut skipped_total = 0u64;
    let mut enqueued_after = 0u64;
    for (n, sched, keep) in &schedules {
        let (a, l, e) = (added[*n], down[*n], end[*n]);
        let part_one = multiples(a, l, 1000);
        assert!(
            part_one.len() >= 58,
            "{n}: {} ticks before the outage",
            part_one.len()
        );
        let missed = multiples(l, on_time - 1, 1000);
        assert!(missed.len() >= 6, "{n}: {} ticks missed", missed.len());
        let caught: Vec<u64> = missed[missed.len() - keep..].to_vec();
        let after = multiples(on_time - 1, e, 1000);
        assert!(
            after.len() >= 3,
            "{n}: {} ticks after the restart",
            after.len()
        );
        let mut expected = part_one.clone();
        expected.extend(&caught);
        expected.extend(&after);
        assert_eq!(
            ticks.get(*n).cloned().unwrap_or_default(),
            expected,
            "{n} ({sched}): last handled {l} before the outage, back on time at {on_time}"
        );
        skipped_total += (missed.len() - keep) as u64;
        enqueued_after += (caught.len() + after.len()) as u64;
    }
    let total = origins.len() as u64;
    let stats = hgetall(&redis, &format!("{b}:stats")).await;
    assert_eq!(stats.get("sched_enqueued"), Some(&total.to_string()));
    assert_eq!(stats.get("sched_skipped"), Some(&skipped_total.to_string()));
    assert_eq!(
        report,
        format!("REPORT enqueued={enqueued_after} skipped={skipped_total} refused=0"),
        "only the restarted scheduler ran after the outage"
    );
    let ready = ready_ids(&redis, &b).await;
    assert_eq!(ready, origins.keys().cloned().collect::<HashSet<_>>());
    eprintln!(
        "scheduler chaos: {KILLS} SIGKILLs over {part_one_took:.1?}, {total} jobs from 5 schedules, \
         {skipped_total} missed ticks skipped after the outage, restarted scheduler: {report}"
    );
}
