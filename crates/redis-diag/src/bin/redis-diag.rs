//! `redis-diag`: check a Redis deployment (every node) for security and health problems.
//!
//! ```text
//! redis-diag [--url URL] [--format table|json] check      # security + health
//! redis-diag security | health
//! redis-diag bigkeys [--sample N] [--top N]  # opt-in, throttled key sampling
//! redis-diag serve --listen 127.0.0.1:9121   # Prometheus /metrics
//! redis-diag acl-rule [--sentinel | --bigkeys] # the least-privilege ACL rule to paste
//! ```
//! Without `--url`, the connection comes from the same variables as redis-conn
//! (`REDIS_URL`, `REDIS_MODE`, `REDIS_HOST`, … — see `RedisConfig::from_env`).
//!
//! Exit codes (also printed by `--help`; `redis_diag::exit` has them as constants):
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | the worst finding is ok or info |
//! | 1 | the worst finding is a warning |
//! | 2 | the worst finding is critical |
//! | 3 | nothing could be checked: no node answered, or the topology could not be discovered |
//! | 4 | nothing could be checked: every node that answered refused the credentials |
//! | 5 | invalid configuration or arguments: malformed URL, bad `REDIS_*` variable, usage error |
//!
//! Usage errors exit 5, not clap's usual 2, which would read as "critical".

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use redis_diag::exit;

/// The exit-code table of `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  the worst finding is ok or info
  1  the worst finding is a warning
  2  the worst finding is critical
  3  nothing could be checked: no node answered, or the topology could not be discovered
  4  nothing could be checked: every node that answered refused the credentials
  5  invalid configuration or arguments (malformed URL, bad REDIS_* variable, usage error)";

#[derive(Parser)]
#[command(
    name = "redis-diag",
    version,
    about = "A doctor for Redis deployments: security and health on every node",
    after_help = EXIT_CODES
)]
struct Cli {
    /// The deployment (redis://, rediss://, redis-sentinel://, redis-cluster:// URLs);
    /// default: the REDIS_* variables.
    #[arg(long, global = true)]
    url: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    format: Format,
    /// Table width in columns.
    #[arg(long, default_value_t = 80, global = true)]
    width: usize,
    /// Slow log entries at least this many milliseconds long are reported.
    #[arg(long, default_value_t = 10, global = true)]
    slow_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Security and health checks.
    Check,
    /// Security checks only.
    Security,
    /// Health checks only.
    Health,
    /// The biggest keys, by sampling (SCAN + MEMORY USAGE, throttled) on every primary.
    Bigkeys {
        /// Most keys examined per node.
        #[arg(long, default_value_t = 10_000)]
        sample: usize,
        /// Keys listed per node.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// From this many bytes on a key is a warning.
        #[arg(long, default_value_t = 1024 * 1024)]
        big_bytes: u64,
    },
    /// Print the smallest ACL rule the checks need, for `ACL SETUSER redis-diag on >pw <rule>`.
    AclRule {
        /// The rule for the sentinels' own ACL instead.
        #[arg(long, conflicts_with = "bigkeys")]
        sentinel: bool,
        /// The rule for `bigkeys` instead.
        #[arg(long)]
        bigkeys: bool,
    },
    /// Serve Prometheus metrics (`GET /metrics`): redis_exporter-compatible node metrics
    /// plus every finding as a gauge; each scrape runs the checks.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9121")]
        listen: std::net::SocketAddr,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, and are no error.
            let _ = e.print();
            return if e.use_stderr() {
                code(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Command::AclRule { sentinel, bigkeys } = cli.command {
        let rule = match (sentinel, bigkeys) {
            (true, _) => redis_diag::sentinel_acl_rule(),
            (_, true) => redis_diag::big_keys_acl_rule(),
            _ => redis_diag::acl_rule(),
        };
        println!("{rule}");
        return ExitCode::SUCCESS;
    }
    let config = match &cli.url {
        Some(url) => redis_conn::RedisConfig::from_url(url),
        None => redis_conn::RedisConfig::from_env(),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redis-diag: {e}");
            return code(exit::USAGE);
        }
    };
    let mut opts = redis_diag::Options::default();
    opts.slow_command = std::time::Duration::from_millis(cli.slow_ms);
    let scope = match cli.command {
        Command::Check => redis_diag::Scope::All,
        Command::Security => redis_diag::Scope::Security,
        Command::Health => redis_diag::Scope::Health,
        Command::Bigkeys {
            sample,
            top,
            big_bytes,
        } => {
            let mut bk = redis_diag::BigKeyOptions::default();
            bk.max_keys = sample;
            bk.top = top;
            bk.big_bytes = big_bytes;
            return match redis_diag::big_keys(&config, &opts, &bk).await {
                Ok(report) => finish(&report, cli.format, cli.width),
                Err(e) => {
                    eprintln!("redis-diag: {e}");
                    code(e.exit_code())
                }
            };
        }
        Command::AclRule { .. } => return ExitCode::SUCCESS,
        Command::Serve { listen } => {
            eprintln!("redis-diag: serving http://{listen}/metrics");
            return match redis_diag::serve(config, listen, redis_diag::Scope::All, opts).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("redis-diag: {e}");
                    code(e.exit_code())
                }
            };
        }
    };
    match redis_diag::diagnose(&config, scope, &opts).await {
        Ok(report) => finish(&report, cli.format, cli.width),
        Err(e) => {
            eprintln!("redis-diag: {e}");
            code(e.exit_code())
        }
    }
}

/// Prints the report; the exit code follows its worst finding (3 when no node answered, 4
/// when every node that answered refused the credentials).
fn finish(report: &redis_diag::Report, format: Format, width: usize) -> ExitCode {
    match format {
        Format::Table => print!("{}", redis_diag::render_table(report, width)),
        Format::Json => println!("{}", redis_diag::render_json(report)),
    }
    code(report.exit_code())
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(2))
}
