//! `rqueue-soak-worker <redis-url> <namespace> <queue> <record-key> [concurrency] [lease-ms]
//! [max-job-ms]`: a worker process over a queue of `u64` messages, for soak and crash tests
//! (and as a small end-to-end check of a deployment). Each job sleeps a random 0..max-job-ms
//! (default 10), then counts its message in the Redis hash `<record-key>` (`HINCRBY`, so a
//! message processed twice shows a count of 2) and succeeds. Prints `RUNNING` once started;
//! on SIGTERM or SIGINT it shuts down gracefully (5 s grace) and prints
//! `REPORT acked=… retried=… dead=… lost=… released=…`. As an ACL user it needs
//! `rqueue::acl_rule_in(<namespace>, <queue>)` plus the key `<record-key>`. With
//! `RQUEUE_SOAK_STARTS=<key>` each job first records its message's claim time (server ms, from
//! the delivery) in the hash `<key>` (`HSET <message> <ms>`), for flow-control tests.

use std::time::Duration;

use fred::interfaces::HashesInterface;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    const USAGE: &str = "usage: rqueue-soak-worker <redis-url> <namespace> <queue> <record-key> [concurrency] [lease-ms] [max-job-ms]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace, name, record, rest @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let number = |i: usize, default: u64| -> Result<u64, String> {
        match rest.get(i) {
            Some(v) => v.parse().map_err(|e| format!("{v:?}: {e}; {USAGE}")),
            None => Ok(default),
        }
    };
    let concurrency = number(0, 8)?;
    let lease = Duration::from_millis(number(1, 30_000)?);
    let max_job_ms = number(2, 10)?;
    let redis = redis_conn::RedisClient::connect(redis_conn::RedisConfig::from_url(url)?).await?;
    let mut cfg = rqueue::QueueConfig::new(name.clone());
    cfg.namespace = namespace.clone();
    cfg.lease = lease;
    cfg.max_stalls = 1000;
    let queue: rqueue::Queue<u64> = rqueue::Queue::new(redis.clone(), cfg)?;
    let mut wcfg = rqueue::WorkerConfig::default();
    wcfg.concurrency = usize::try_from(concurrency)?;
    wcfg.shutdown_grace = Duration::from_secs(5);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let record = record.clone();
    let starts = std::env::var("RQUEUE_SOAK_STARTS").ok();
    println!("RUNNING");
    let report = rqueue::Worker::new(queue, wcfg)
        .run(
            move |n: u64, job: rqueue::JobInfo| {
                let (redis, record, starts) = (redis.clone(), record.clone(), starts.clone());
                async move {
                    if let Some(starts) = starts {
                        let ms = job
                            .claimed_at
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_millis() as u64);
                        redis
                            .pool()
                            .hset::<i64, _, _>(starts.as_str(), (n.to_string(), ms))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    if max_job_ms > 0 {
                        let ms = fastrand::u64(0..max_job_ms);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    redis
                        .pool()
                        .hincrby::<i64, _, _>(record.as_str(), n.to_string(), 1)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            },
            shutdown,
        )
        .await?;
    println!(
        "REPORT acked={} retried={} dead={} lost={} released={}",
        report.acked, report.retried, report.dead, report.lost, report.released
    );
    Ok(())
}
