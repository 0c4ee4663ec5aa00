//! Running one command: connect, act, print (table or JSON), choose the exit code.

use redkit_console::web::{Auth, WebOptions};
use redkit_console::{Console, Error, List, MessageRow, QueueRef, QueueSummary, exit};
use serde::Serialize;

use crate::table;
use crate::{Cli, Command, Format, LockAction, QueueAction};

fn json<T: Serialize>(v: &T) -> Result<(), Error> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Unreadable(e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn age(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0))
}

fn refuse_without_yes(yes: bool, what: &str) -> Result<(), Error> {
    if yes {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "{what} cannot be undone: add --yes to do it"
        )))
    }
}

async fn connect(cli: &Cli) -> Result<Console, Error> {
    let config = match &cli.url {
        Some(url) => redis_conn::RedisConfig::from_url(url),
        None => redis_conn::RedisConfig::from_env(),
    }
    .map_err(|e| Error::Usage(e.to_string()))?;
    Console::connect(config).await
}

/// Runs the command; `Ok(code)` for commands whose exit code depends on what they found.
pub(crate) async fn run(cli: Cli) -> Result<u8, Error> {
    // Refuse destructive commands without --yes before connecting.
    match &cli.command {
        Command::Queue {
            action: Some(QueueAction::Purge { yes }),
            ..
        } => refuse_without_yes(*yes, "purging the dead set")?,
        Command::ReplayEverything { yes } => {
            refuse_without_yes(*yes, "replaying every queue's dead set")?;
        }
        Command::Lock {
            action: Some(LockAction::ForceRelease { yes }),
            ..
        } => {
            eprintln!(
                "redkit: warning: force-releasing a lock does not stop its holder. If it is still running, \
                 it and the next holder both think they hold the lock; only fencing tokens checked by the \
                 protected resource keep it safe."
            );
            refuse_without_yes(*yes, "force-releasing a lock")?;
        }
        _ => {}
    }
    let console = connect(&cli).await?;
    let f = cli.format;
    match cli.command {
        Command::Queues => {
            let queues = console.queues().await?;
            if f == Format::Json {
                json(&queues)?;
            } else {
                print_queues(&queues);
            }
        }
        Command::Queue { name, action } => {
            let q = QueueRef::parse(&name)?;
            queue(&console, f, &q, action).await?;
        }
        Command::Job { queue, id } => {
            let q = QueueRef::parse(&queue)?;
            let j = console.job(&q, &id).await?;
            if f == Format::Json {
                json(&j)?;
            } else {
                table::pairs(&[
                    ("queue", j.queue.clone()),
                    ("id", j.id.clone()),
                    ("state", j.state.clone()),
                    ("enqueued_ms", opt(j.enqueued_ms)),
                    (
                        "attempts",
                        format!("{} failed of {} allowed", j.failures, j.max_attempts),
                    ),
                    ("stalls", j.stalls.to_string()),
                    ("worker", opt(j.worker.clone())),
                    ("due_ms", opt(j.due_ms)),
                    ("died_ms", opt(j.died_ms)),
                ]);
                println!("errors (newest first):");
                for e in &j.errors {
                    println!("  #{} {}  {}", e.attempt, opt(e.at_ms), e.error);
                }
                println!("payload:");
                let p = j
                    .payload
                    .as_ref()
                    .map(|p| serde_json::to_string_pretty(p).unwrap_or_default())
                    .unwrap_or_else(|| "(not stored)".into());
                println!("{p}");
            }
        }
        Command::Find { id } => {
            let found = console.find_job(&id).await?;
            if found.is_empty() {
                return Err(Error::NotFound {
                    kind: "job",
                    name: id,
                });
            }
            if f == Format::Json {
                json(&found)?;
            } else {
                let rows: Vec<Vec<String>> = found
                    .iter()
                    .map(|j| vec![j.queue.clone(), j.id.clone(), j.state.clone()])
                    .collect();
                table::print(&["queue", "id", "state"], &rows);
            }
        }
        Command::ReplayEverything { .. } => {
            let done = console.replay_everything().await?;
            if f == Format::Json {
                let v: Vec<serde_json::Value> = done
                    .iter()
                    .map(|(q, n)| serde_json::json!({"queue": q, "replayed": n}))
                    .collect();
                json(&v)?;
            } else {
                for (q, n) in &done {
                    println!("{q}: replayed {n}");
                }
                println!("total: {}", done.iter().map(|(_, n)| n).sum::<u64>());
            }
        }
        Command::Locks { namespace, limit } => {
            crate::cmd_locks::locks(&console, f, namespace, limit).await?;
        }
        Command::Lock {
            namespace,
            name,
            action,
        } => crate::cmd_locks::lock(&console, f, &namespace, &name, action.is_some()).await?,
        Command::Caches => crate::cmd_locks::caches(&console, f).await?,
        Command::Cache { name } => crate::cmd_locks::cache(&console, f, &name).await?,
        Command::Doctor => {
            let report = console.doctor().await?;
            if f == Format::Json {
                println!("{}", redis_diag::render_json(&report));
            } else {
                print!("{}", redis_diag::render_table(&report, 100));
            }
            return Ok(match report.worst() {
                redis_diag::Severity::Critical => exit::USAGE,
                redis_diag::Severity::Warning => exit::FAILED,
                _ => exit::OK,
            });
        }
        Command::Serve {
            listen,
            token,
            basic_auth,
            read_only,
            base_path,
        } => {
            let mut opts = WebOptions::default();
            opts.read_only = read_only;
            opts.base_path = base_path.trim_end_matches('/').to_string();
            opts.auth = match (token, basic_auth) {
                (Some(t), _) if !t.is_empty() => Auth::Token(t),
                (_, Some(b)) => {
                    let (user, password) = b
                        .split_once(':')
                        .ok_or_else(|| Error::Usage("--basic-auth takes USER:PASSWORD".into()))?;
                    Auth::Basic {
                        user: user.into(),
                        password: password.into(),
                    }
                }
                _ => Auth::None,
            };
            eprintln!(
                "redkit: serving the console on http://{listen}{}/{}",
                opts.base_path,
                if read_only { " (read-only)" } else { "" }
            );
            redkit_console::web::serve(console, listen, opts, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Error::Usage(e.to_string()))?;
        }
    }
    Ok(exit::OK)
}

fn print_queues(queues: &[QueueSummary]) {
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| match &q.error {
            Some(e) => vec![
                q.queue.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("error: {e}"),
            ],
            None => vec![
                q.queue.clone(),
                q.ready.to_string(),
                q.delayed.to_string(),
                q.in_flight.to_string(),
                q.dead.to_string(),
                age(q.oldest_ready_age_ms),
                if q.paused { "paused" } else { "running" }.into(),
            ],
        })
        .collect();
    table::print(
        &[
            "queue",
            "ready",
            "delayed",
            "in_flight",
            "dead",
            "oldest",
            "state",
        ],
        &rows,
    );
}

fn print_rows(rows: &[MessageRow]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            let mut p = m
                .payload
                .as_ref()
                .map(|v| v.to_string())
                .or_else(|| m.payload_error.clone().map(|e| format!("({e})")))
                .unwrap_or_default();
            if p.chars().count() > 60 {
                p = p.chars().take(60).collect::<String>() + "…";
            }
            vec![
                m.id.clone(),
                m.state.clone(),
                opt(m.at_ms),
                m.reason.clone().unwrap_or_default(),
                p,
            ]
        })
        .collect();
    table::print(&["id", "state", "at_ms", "reason", "payload"], &rows);
}

async fn queue(
    console: &Console,
    f: Format,
    q: &QueueRef,
    action: Option<QueueAction>,
) -> Result<(), Error> {
    let report = |key: &str, n: u64| -> Result<(), Error> {
        if f == Format::Json {
            json(&serde_json::json!({ "queue": q.to_string(), key: n }))
        } else {
            println!("{q}: {key} {n}");
            Ok(())
        }
    };
    match action {
        None => {
            let s = console.queue(q).await?;
            if f == Format::Json {
                return json(&s);
            }
            table::pairs(&[
                ("queue", s.queue.clone()),
                ("state", if s.paused { "paused" } else { "running" }.into()),
                ("ready", s.ready.to_string()),
                ("delayed", s.delayed.to_string()),
                ("in_flight", s.in_flight.to_string()),
                ("dead", s.dead.to_string()),
                ("oldest_ready", age(s.oldest_ready_age_ms)),
                ("enqueued", s.enqueued.to_string()),
                ("claimed", s.claimed.to_string()),
                ("processed", s.processed.to_string()),
                ("failed", s.failed.to_string()),
                ("died", s.died.to_string()),
                ("replayed", s.replayed.to_string()),
                ("purged", s.purged.to_string()),
                (
                    "last_minute",
                    s.per_minute.iter().rev().nth(1).map_or_else(
                        || "-".into(),
                        |m| format!("{} processed, {} failed", m.processed, m.failed),
                    ),
                ),
            ]);
            Ok(())
        }
        Some(QueueAction::Dead { page, per_page }) => {
            let rows = console
                .messages(q, List::Dead, page * per_page, per_page)
                .await?;
            if f == Format::Json {
                json(&rows)
            } else {
                print_rows(&rows);
                Ok(())
            }
        }
        Some(QueueAction::List {
            list,
            page,
            per_page,
        }) => {
            let list: List = list.parse()?;
            let rows = console.messages(q, list, page * per_page, per_page).await?;
            if f == Format::Json {
                json(&rows)
            } else {
                print_rows(&rows);
                Ok(())
            }
        }
        Some(QueueAction::Replay { ids, all }) => {
            let n = if all {
                let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
                console
                    .replay_all(q, |done| {
                        if tty {
                            eprint!("\rreplayed {done}…");
                        } else {
                            eprintln!("replayed {done}");
                        }
                    })
                    .await?
            } else {
                console.replay(q, &ids).await?
            };
            if all && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!();
            }
            if !all && n < ids.len() as u64 {
                eprintln!(
                    "redkit: {} of {} ids were not in the dead set",
                    ids.len() as u64 - n,
                    ids.len()
                );
            }
            report("replayed", n)
        }
        Some(QueueAction::Delete { ids }) => {
            let n = console.delete_dead(q, &ids).await?;
            if n < ids.len() as u64 {
                eprintln!(
                    "redkit: {} of {} ids were not dead messages and were left alone",
                    ids.len() as u64 - n,
                    ids.len()
                );
            }
            report("deleted", n)
        }
        Some(QueueAction::Purge { .. }) => {
            let n = console.purge_dead(q).await?;
            report("purged", n)
        }
        Some(QueueAction::Pause) => {
            console.set_paused(q, true).await?;
            report("paused", 1)
        }
        Some(QueueAction::Resume) => {
            console.set_paused(q, false).await?;
            report("paused", 0)
        }
    }
}
