//! `dlock-hold <redis-url> <namespace> <lock> [lease-ms] [fair | sem=N]`: takes a lock (waiting
//! up to 30 s; in line when `fair`; a permit of the N-permit semaphore `<lock>` with `sem=N`),
//! prints `WAITING` before and
//! prints `HELD <fence>`, keeps it renewed until stdin closes, then releases it and prints
//! `RELEASED`. Useful to fence off a resource by hand during maintenance, and used by the
//! tests as a holder process to kill with SIGKILL. As an ACL user it needs
//! `dlock::acl_rule(<namespace>)` (it waits, fair or not, and takes semaphore permits).

use std::io::Write;
use std::time::Duration;

use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace, name, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: dlock-hold <redis-url> <namespace> <lock> [lease-ms] [fair | sem=N]".into(),
        );
    };
    let lease = match rest.first() {
        Some(ms) => Duration::from_millis(ms.parse()?),
        None => Duration::from_secs(30),
    };
    let fair = rest.get(1).is_some_and(|f| f == "fair");
    let permits: Option<u32> = match rest.get(1).and_then(|m| m.strip_prefix("sem=")) {
        Some(n) => Some(n.parse()?),
        None => None,
    };
    let redis = redis_conn::RedisClient::connect(redis_conn::RedisConfig::from_url(url)?).await?;
    let mut cfg = dlock::LockConfig::new(namespace.clone());
    cfg.lease = lease;
    let locks = dlock::LockClient::new(redis, cfg)?;
    println!("WAITING");
    let guard = match permits {
        Some(n) => {
            locks
                .semaphore(name, n)
                .wait(Duration::from_secs(30))
                .acquire()
                .await?
        }
        None => {
            locks
                .lock(name)
                .fair(fair)
                .wait(Duration::from_secs(30))
                .acquire()
                .await?
        }
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "HELD {}", guard.fence())?;
        out.flush()?;
    }
    let mut sink = Vec::new();
    let mut stdin = tokio::io::stdin();
    tokio::select! {
        _ = stdin.read_to_end(&mut sink) => {}
        reason = guard.lost() => return Err(format!("lease lost: {reason}").into()),
    }
    guard.release().await?;
    println!("RELEASED");
    Ok(())
}
