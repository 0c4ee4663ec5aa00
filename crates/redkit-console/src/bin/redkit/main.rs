//! `redkit`: the operator console for redkit queues, locks and caches, and the doctor.
//!
//! ```text
//! redkit [--url URL] [--format table|json] queues
//! redkit queue NAME                          # depths, counters, head age, paused state
//! redkit queue NAME dead [--page N]          # the dead set, paged
//! redkit queue NAME list ready|delayed|in_flight|dead|completed [--page N]
//! redkit queue NAME replay ID... | --all     # dead messages back to ready
//! redkit queue NAME delete ID...             # dead messages, for good
//! redkit queue NAME purge --yes              # the whole dead set, for good
//! redkit queue NAME pause | resume
//! redkit job QUEUE ID                        # decoded payload as JSON, attempts, errors
//! redkit find ID                             # a job id in every queue
//! redkit replay-everything --yes             # every dead message of every queue
//! redkit locks NAMESPACE                     # held locks: owner, fence, TTL left, waiters
//! redkit lock NAMESPACE NAME [force-release --yes]
//! redkit caches | cache NAME                 # hits, misses, builds, stale serves, breaker
//! redkit doctor                              # redis-diag's checks
//! redkit serve --listen ADDR [--token T] [--read-only]
//! ```
//! A queue is `NAME` (namespace `rq`) or `NAMESPACE/NAME`. Without `--url`, the connection
//! comes from the `REDIS_*` variables (`RedisConfig::from_env`).
//!
//! Exit codes: 0 done; 1 failed (or the doctor's worst finding is a warning); 2 usage error
//! (or the doctor found something critical); 3 Redis unreachable or erroring; 4 no such
//! queue, lock, cache, job or message; 5 refused (e.g. `purge` without `--yes`).

mod cmd;
mod cmd_locks;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use redkit_console::exit;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the action failed; `doctor`: the worst finding is a warning
  2  usage error (bad arguments, URL or REDIS_* variable); `doctor`: a critical finding
  3  Redis could not be reached or answered an error
  4  no such queue, lock, cache, job or message
  5  refused: a destructive action without --yes, a running job, ...";

#[derive(Parser)]
#[command(
    name = "redkit",
    version,
    about = "Operator console for redkit queues, locks, caches and the Redis doctor",
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    /// The deployment (redis://, rediss://, redis-sentinel://, redis-cluster:// URLs);
    /// default: the REDIS_* variables.
    #[arg(long, global = true, env = "REDKIT_URL")]
    pub(crate) url: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub(crate) format: Format,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Every queue with its depths.
    Queues,
    /// One queue: depths, counters, head age, paused state; or an action on it.
    Queue {
        /// `NAME` or `NAMESPACE/NAME`.
        name: String,
        #[command(subcommand)]
        action: Option<QueueAction>,
    },
    /// One job: state, decoded payload, attempts and every error, newest first.
    Job {
        /// `NAME` or `NAMESPACE/NAME`.
        queue: String,
        /// The job id.
        id: String,
    },
    /// Look a job id up in every queue.
    Find {
        /// The job id.
        id: String,
    },
    /// Replay every dead message of every queue.
    ReplayEverything {
        /// Really do it.
        #[arg(long)]
        yes: bool,
    },
    /// Lock namespaces, or the held locks of one.
    Locks {
        /// The namespace (omit to list the namespaces).
        namespace: Option<String>,
        /// Most locks listed.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One lock; or force-release it.
    Lock {
        /// The namespace.
        namespace: String,
        /// The lock's name.
        name: String,
        #[command(subcommand)]
        action: Option<LockAction>,
    },
    /// Every cache with its counters (summed over processes).
    Caches,
    /// One cache's counters, per-process breaker states.
    Cache {
        /// The cache's namespace.
        name: String,
    },
    /// redis-diag's security and health checks on every node.
    Doctor,
    /// Serve the web console.
    Serve {
        /// Address to listen on; anything but loopback requires --token or --basic-auth.
        #[arg(long, default_value = "127.0.0.1:9400")]
        listen: std::net::SocketAddr,
        /// Access token (also from REDKIT_CONSOLE_TOKEN, which keeps it out of `ps`).
        #[arg(long, env = "REDKIT_CONSOLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// HTTP basic auth as USER:PASSWORD (also from REDKIT_CONSOLE_BASIC_AUTH).
        #[arg(
            long,
            env = "REDKIT_CONSOLE_BASIC_AUTH",
            hide_env_values = true,
            conflicts_with = "token"
        )]
        basic_auth: Option<String>,
        /// Hide and refuse every mutating action.
        #[arg(long)]
        read_only: bool,
        /// Path prefix when served behind a reverse proxy under a sub-path.
        #[arg(long, default_value = "")]
        base_path: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum QueueAction {
    /// The dead set, oldest first.
    Dead {
        /// Page number (from 0).
        #[arg(long, default_value_t = 0)]
        page: usize,
        /// Messages per page.
        #[arg(long, default_value_t = 50)]
        per_page: usize,
    },
    /// One list of messages.
    List {
        /// ready, delayed, in_flight, dead or completed.
        list: String,
        /// Page number (from 0).
        #[arg(long, default_value_t = 0)]
        page: usize,
        /// Messages per page.
        #[arg(long, default_value_t = 50)]
        per_page: usize,
    },
    /// Move dead messages back to ready.
    Replay {
        /// Message ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// The whole dead set.
        #[arg(long)]
        all: bool,
    },
    /// Delete dead messages for good.
    Delete {
        /// Message ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete the whole dead set for good.
    Purge {
        /// Really do it.
        #[arg(long)]
        yes: bool,
    },
    /// Stop handing out messages (running jobs finish).
    Pause,
    /// Hand out messages again.
    Resume,
}

#[derive(Subcommand)]
pub(crate) enum LockAction {
    /// Delete the lock whoever holds it.
    ForceRelease {
        /// Really do it.
        #[arg(long)]
        yes: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REDKIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cmd::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("redkit: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
