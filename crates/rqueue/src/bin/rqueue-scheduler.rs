//! `rqueue-scheduler <redis-url> <namespace> <queue> [command]`: periodic jobs for a queue of
//! `String` messages.
//!
//! - no command, or `run [--reload-ms N] [--grace-ms N]`: runs a [`rqueue::Scheduler`] until
//!   SIGTERM or SIGINT. Prints `RUNNING` once connected, then, on the signal,
//!   `REPORT enqueued=… skipped=… refused=…`, and exits 0. Run several for availability:
//!   each tick is enqueued once.
//! - `add <name> (--every-ms N | --cron PATTERN [--tz ZONE]) [--missed skip|run-once|catch-up:N]
//!   [--priority P] [--payload TEXT]`: stores a schedule (payload default: the name).
//! - `remove <name>`: removes one; prints `removed` or `absent`.
//! - `list`: one line per schedule: name, schedule, last handled and next tick (Unix ms).
//!
//! As an ACL user it needs `rqueue::acl_rule_in(<namespace>, <queue>)`.

use std::time::{Duration, UNIX_EPOCH};

use rqueue::{Missed, Queue, QueueConfig, Schedule, Scheduler, SchedulerConfig};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: rqueue-scheduler <redis-url> <namespace> <queue> \
    [run [--reload-ms N] [--grace-ms N] \
    | add <name> (--every-ms N | --cron PATTERN [--tz ZONE]) [--missed skip|run-once|catch-up:N] [--priority P] [--payload TEXT] \
    | remove <name> | list]";

type Failure = Box<dyn std::error::Error>;

/// `--flag value` pairs after a command.
fn options(rest: &[String]) -> Result<Vec<(&str, &str)>, Failure> {
    let mut out = Vec::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return Err(format!("{flag} needs a value; {USAGE}").into());
        };
        out.push((flag.as_str(), value.as_str()));
    }
    Ok(out)
}

fn number<N: std::str::FromStr>(flag: &str, v: &str) -> Result<N, Failure>
where
    N::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e| format!("{flag} {v:?}: {e}; {USAGE}").into())
}

fn millis(t: Option<std::time::SystemTime>) -> String {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or_else(|| "-".into(), |d| d.as_millis().to_string())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace, name, rest @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let (command, rest) = match rest.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("run", rest),
    };
    let redis = redis_conn::RedisClient::connect(redis_conn::RedisConfig::from_url(url)?).await?;
    let mut qcfg = QueueConfig::new(name.clone());
    qcfg.namespace = namespace.clone();
    let queue: Queue<String> = Queue::new(redis, qcfg)?;
    match command {
        "run" => {
            let mut cfg = SchedulerConfig::default();
            for (flag, v) in options(rest)? {
                match flag {
                    "--reload-ms" => cfg.reload = Duration::from_millis(number(flag, v)?),
                    "--grace-ms" => cfg.grace = Duration::from_millis(number(flag, v)?),
                    _ => return Err(format!("unknown option {flag}; {USAGE}").into()),
                }
            }
            let scheduler = Scheduler::with_config(queue, cfg)?;
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            let shutdown = async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            };
            println!("RUNNING");
            let report = scheduler.run(shutdown).await?;
            println!(
                "REPORT enqueued={} skipped={} refused={}",
                report.enqueued, report.skipped, report.refused
            );
        }
        "add" => {
            let [sched_name, rest @ ..] = rest else {
                return Err(USAGE.into());
            };
            let mut schedule: Option<Schedule> = None;
            let mut zone = None;
            let mut missed = Missed::Skip;
            let mut priority = 0;
            let mut payload = sched_name.clone();
            for (flag, v) in options(rest)? {
                match flag {
                    "--every-ms" => {
                        schedule = Some(Schedule::every(Duration::from_millis(number(flag, v)?)));
                    }
                    "--cron" => schedule = Some(Schedule::cron(v)?),
                    "--tz" => zone = Some(v),
                    "--missed" => {
                        missed = match v {
                            "skip" => Missed::Skip,
                            "run-once" => Missed::RunOnce,
                            _ => match v.strip_prefix("catch-up:") {
                                Some(n) => Missed::CatchUp(number(flag, n)?),
                                None => return Err(format!("--missed {v:?}; {USAGE}").into()),
                            },
                        }
                    }
                    "--priority" => priority = number(flag, v)?,
                    "--payload" => payload = v.to_string(),
                    _ => return Err(format!("unknown option {flag}; {USAGE}").into()),
                }
            }
            let Some(mut schedule) = schedule else {
                return Err(format!("add needs --every-ms or --cron; {USAGE}").into());
            };
            if let Some(zone) = zone {
                schedule = schedule.time_zone(zone)?;
            }
            let schedule = schedule.missed(missed).priority(priority);
            Scheduler::new(queue)
                .add(sched_name, &schedule, &payload)
                .await?;
            println!("added {sched_name}: {schedule}");
        }
        "remove" => {
            let [sched_name] = rest else {
                return Err(USAGE.into());
            };
            let existed = Scheduler::new(queue).remove(sched_name).await?;
            println!("{}", if existed { "removed" } else { "absent" });
        }
        "list" => {
            if !rest.is_empty() {
                return Err(USAGE.into());
            }
            for info in Scheduler::new(queue).list().await? {
                let what = match &info.schedule {
                    Ok(s) => s.to_string(),
                    Err(why) => format!("UNREADABLE ({why})"),
                };
                println!(
                    "{}\t{what}\tlast={}\tnext={}",
                    info.name,
                    millis(info.last_handled),
                    millis(info.next_tick)
                );
            }
        }
        other => return Err(format!("unknown command {other:?}; {USAGE}").into()),
    }
    Ok(())
}
