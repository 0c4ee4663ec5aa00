//! The `redkit` CLI against live Redis, on standalone and Cluster: every command's JSON
//! parses and matches the library's own figures; replay and purge change exactly what they
//! say; unknown names exit 4; a dead Redis exits 3; destructive commands need `--yes`.

use redis_conn::RedisClient;
use redkit_console::exit;
use testkit::SharedTopology;

mod common;
use common::{qname, queue, redkit, redkit_json, registered, seed};

two_topologies!(
    queues_and_queue_json_match_the_library_figures,
    dead_lists_replay_delete_and_purge_change_exactly_what_they_say,
    job_and_find_show_the_decoded_payload_and_errors,
    pause_and_resume_show_in_stats,
    unknown_names_exit_4_and_destructive_commands_need_yes,
);

fn u(v: &serde_json::Value, k: &str) -> u64 {
    v.get(k)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no {k} in {v}"))
}

async fn queues_and_queue_json_match_the_library_figures(redis: RedisClient, t: &SharedTopology) {
    let a = queue(&redis, "cli-a");
    let b = queue(&redis, "cli-b");
    seed(&a, 5, 2, 1, 3).await;
    seed(&b, 1, 0, 0, 0).await;
    registered(&redis, &a).await;
    registered(&redis, &b).await;
    let all = redkit_json(t.url(), &["queues"]);
    let list = all.as_array().expect("an array");
    for q in [&a, &b] {
        let s = q.stats().await.expect("stats");
        let row = list
            .iter()
            .find(|r| r.get("queue").and_then(|v| v.as_str()) == Some(qname(q).as_str()))
            .unwrap_or_else(|| panic!("{} not listed in {all}", qname(q)));
        assert_eq!(u(row, "ready"), s.ready);
        assert_eq!(u(row, "delayed"), s.delayed);
        assert_eq!(u(row, "in_flight"), s.in_flight);
        assert_eq!(u(row, "dead"), s.dead);
        assert_eq!(u(row, "enqueued"), s.enqueued);
        assert_eq!(u(row, "claimed"), s.claimed);
        assert_eq!(u(row, "died"), s.died);
        let mut one = redkit_json(t.url(), &["queue", &qname(q)]);
        let mut row = row.clone();
        // The head's age and the minute counters move between the two calls.
        for v in [&mut one, &mut row] {
            if let Some(m) = v.as_object_mut() {
                m.remove("oldest_ready_age_ms");
                m.remove("per_minute");
            }
        }
        assert_eq!(one, row, "`queue NAME` and `queues` agree");
    }
    let s = a.stats().await.expect("stats");
    assert_eq!((s.ready, s.delayed, s.in_flight, s.dead), (5, 2, 1, 3));
    // The table format prints every queue too.
    let (code, out, err) = redkit(t.url(), &["queues"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&qname(&a)) && out.contains("ready"), "{out}");
}

async fn dead_lists_replay_delete_and_purge_change_exactly_what_they_say(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let q = queue(&redis, "cli-dead");
    let dead = seed(&q, 0, 0, 0, 6).await;
    let name = qname(&q);
    let page = redkit_json(t.url(), &["queue", &name, "dead", "--per-page", "4"]);
    let page = page.as_array().expect("array");
    assert_eq!(page.len(), 4);
    let ids: Vec<&str> = page
        .iter()
        .filter_map(|r| r.get("id").and_then(|v| v.as_str()))
        .collect();
    assert_eq!(
        ids,
        dead[..4].iter().map(String::as_str).collect::<Vec<_>>(),
        "oldest first"
    );
    assert_eq!(
        page[0].pointer("/payload/0").and_then(|v| v.as_u64()),
        Some(1000),
        "the payload is decoded: {}",
        page[0]
    );
    let second = redkit_json(
        t.url(),
        &["queue", &name, "dead", "--per-page", "4", "--page", "1"],
    );
    assert_eq!(second.as_array().map(Vec::len), Some(2));

    // Replay two ids (one of them twice, one unknown): exactly two move.
    let r = redkit_json(
        t.url(),
        &[
            "queue",
            &name,
            "replay",
            &dead[0],
            &dead[1],
            &dead[1],
            "0000000000000-000000",
        ],
    );
    assert_eq!(u(&r, "replayed"), 2);
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.dead, s.replayed), (2, 4, 2));
    // Delete one dead message; a ready one named alongside is left alone.
    let r = redkit_json(t.url(), &["queue", &name, "delete", &dead[2], &dead[0]]);
    assert_eq!(u(&r, "deleted"), 1);
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.dead), (2, 3));
    // Purge without --yes: refused before connecting, nothing changes.
    let (code, _, err) = redkit(t.url(), &["queue", &name, "purge"]);
    assert_eq!(code, i32::from(exit::REFUSED), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(q.stats().await.expect("stats").dead, 3);
    // Replay --all, then purge the one left after a new death.
    let r = redkit_json(t.url(), &["queue", &name, "replay", "--all"]);
    assert_eq!(u(&r, "replayed"), 3);
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.dead), (5, 0));
    let d = q.claim(1).await.expect("claim").pop().expect("one");
    d.dead("again").await.expect("dead");
    let r = redkit_json(t.url(), &["queue", &name, "purge", "--yes"]);
    assert_eq!(u(&r, "purged"), 1);
    let s = q.stats().await.expect("stats");
    assert_eq!((s.ready, s.dead, s.purged), (4, 0, 1));
}

async fn job_and_find_show_the_decoded_payload_and_errors(redis: RedisClient, t: &SharedTopology) {
    let mut cfg = rqueue::QueueConfig::new(testkit::unique_name("cli-job"));
    cfg.namespace = common::NS.into();
    cfg.max_attempts = 3;
    let mut backoff = rqueue::Backoff::default();
    backoff.base = std::time::Duration::from_millis(1);
    backoff.max = std::time::Duration::from_millis(1);
    backoff.jitter = false;
    cfg.backoff = backoff;
    let q: rqueue::Queue<common::Order> = rqueue::Queue::new(redis.clone(), cfg).expect("queue");
    let id = q
        .enqueue(&common::Order {
            id: 7,
            note: "<b>seven</b>".into(),
        })
        .await
        .expect("enqueue");
    for attempt in 1..=3 {
        let d = loop {
            if let Some(d) = q.claim(1).await.expect("claim").pop() {
                break d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        d.nack(&format!("failure {attempt}")).await.expect("nack");
    }
    let j = redkit_json(t.url(), &["job", &qname(&q), &id]);
    assert_eq!(j.get("state").and_then(|v| v.as_str()), Some("dead"));
    assert_eq!(
        j.pointer("/payload/1").and_then(|v| v.as_str()),
        Some("<b>seven</b>")
    );
    assert_eq!(u(&j, "failures"), 3);
    let errors: Vec<&str> = j
        .get("errors")
        .and_then(|v| v.as_array())
        .expect("errors")
        .iter()
        .filter_map(|e| e.get("error").and_then(|v| v.as_str()))
        .collect();
    assert_eq!(
        errors.first().copied(),
        Some("failure 3"),
        "newest first: {j}"
    );
    let found = redkit_json(t.url(), &["find", &id]);
    let found = found.as_array().expect("array");
    assert!(
        found
            .iter()
            .any(|f| f.get("queue").and_then(|v| v.as_str()) == Some(qname(&q).as_str())),
        "{found:?}"
    );
}

async fn pause_and_resume_show_in_stats(redis: RedisClient, t: &SharedTopology) {
    let q = queue(&redis, "cli-pause");
    seed(&q, 1, 0, 0, 0).await;
    let name = qname(&q);
    redkit_json(t.url(), &["queue", &name, "pause"]);
    assert!(q.stats().await.expect("stats").paused);
    assert_eq!(
        redkit_json(t.url(), &["queue", &name]).get("paused"),
        Some(&serde_json::Value::Bool(true))
    );
    assert!(
        q.claim(1).await.expect("claim").is_empty(),
        "paused: nothing handed out"
    );
    redkit_json(t.url(), &["queue", &name, "resume"]);
    assert!(!q.stats().await.expect("stats").paused);
    assert_eq!(q.claim(1).await.expect("claim").len(), 1);
}

async fn unknown_names_exit_4_and_destructive_commands_need_yes(
    redis: RedisClient,
    t: &SharedTopology,
) {
    let q = queue(&redis, "cli-unknown");
    seed(&q, 1, 0, 0, 0).await;
    let (code, _, err) = redkit(t.url(), &["queue", "t:console/no-such-queue"]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    assert!(
        err.contains("no queue") && err.contains("no-such-queue"),
        "{err}"
    );
    let (code, _, err) = redkit(t.url(), &["job", &qname(&q), "1764064000123-000001"]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    let (code, _, err) = redkit(t.url(), &["job", &qname(&q), "garbage<>"]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    let (code, _, err) = redkit(t.url(), &["find", "1764064000123-000001"]);
    assert_eq!(code, i32::from(exit::NOT_FOUND), "{err}");
    let (code, _, err) = redkit(t.url(), &["queue", "bad{name}"]);
    assert_eq!(code, i32::from(exit::USAGE), "{err}");
    let (code, _, err) = redkit(t.url(), &["replay-everything"]);
    assert_eq!(code, i32::from(exit::REFUSED), "{err}");
    // Redis unreachable: exit 3 with the address in the message.
    let (code, _, err) = redkit("redis://127.0.0.1:1", &["queues"]);
    assert_eq!(code, i32::from(exit::REDIS), "{err}");
    // Serving beyond loopback without a token is refused.
    let (code, _, err) = redkit(t.url(), &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(code, i32::from(exit::USAGE), "{err}");
    assert!(err.contains("--token"), "{err}");
}
