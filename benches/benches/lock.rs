//! dlock beside the raw commands a minimal lock is made of, in the same run and runtime:
//! uncontended acquire + release vs a raw `SET NX PX` + `EVALSHA` delete-if-equal pair, with
//! three references that locate the gap: two no-op scripts (what two `EVALSHA` round trips
//! cost at all), the cheapest lock that returns a fencing token (`MULTI` `SET NX PX` + `INCR`,
//! then delete-if-equal) and dlock's own two scripts alone (its Redis-side Lua work, without
//! the client); a contended lock (8 workers over 2 clients, `INCR` inside) with hand-off
//! fairness and the longest wait; the watchdog's cost to renew 1,000 held locks.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dlock::{LockClient, LockConfig};
use fred::prelude::*;
use fred::types::{Expiration, SetOptions};
use redis_conn::{RedisClient, RedisConfig, Script};

use benches::{runtime, standalone_client};

static DEL_IF_EQUAL: Script = Script::new(
    "del_if_equal",
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
);

// dlock's own acquire and release scripts with nothing around them: what the Lua work in Redis
// costs, apart from the client.
static ACQUIRE: Script = Script::new(
    "bench_dlock_acquire",
    include_str!("../../crates/dlock/src/lua/acquire.lua"),
);
static RELEASE: Script = Script::new(
    "bench_dlock_release",
    include_str!("../../crates/dlock/src/lua/release.lua"),
);

/// The minimal lock: `SET NX PX`, then a delete-if-equal script.
async fn raw_pair(redis: &RedisClient) {
    let token = "0123456789abcdef0123456789abcdef";
    let ok: Option<String> = redis
        .pool()
        .set(
            "bench:rawlock",
            token,
            Some(Expiration::PX(30_000)),
            Some(SetOptions::NX),
            false,
        )
        .await
        .expect("SET NX");
    assert!(ok.is_some());
    let n: i64 = redis
        .pool()
        .evalsha(DEL_IF_EQUAL.sha1(), vec!["bench:rawlock"], vec![token])
        .await
        .expect("release");
    assert_eq!(n, 1);
}

/// dlock's two scripts, called directly.
async fn scripts_pair(redis: &RedisClient) {
    let (key, fence, flag) = (
        "bench:lock:{s}",
        "bench:lock:{s}:fence",
        "bench:lock:{s}:waiting",
    );
    // Fresh random ids per grant, as dlock sends them.
    let owner = format!("{:032x}", fastrand::u128(..));
    let field = format!("h:{:032x}", fastrand::u128(..));
    let granted: Vec<i64> = ACQUIRE
        .run(
            redis.pool(),
            vec![key, fence, flag],
            vec![owner.as_str(), field.as_str(), "30000"],
        )
        .await
        .expect("acquire");
    assert_eq!(granted.first(), Some(&1));
    let left: i64 = RELEASE
        .run(
            redis.pool(),
            vec![key, flag, fence],
            vec![field.as_str(), "bench:lock:channel", "l:s", "0", "1"],
        )
        .await
        .expect("release");
    assert_eq!(left, 0);
}

static NOOP_ACQUIRE: Script = Script::new("bench_noop_acquire", "return {1, 1, 1}");
static NOOP_RELEASE: Script = Script::new("bench_noop_release", "return 0");

/// Two scripts that do nothing, with the keys and arguments of dlock's: the price of two
/// `EVALSHA` round trips instead of a `SET` and an `EVALSHA`.
async fn noop_pair(redis: &RedisClient) {
    let (key, fence, flag) = (
        "bench:noop:{s}",
        "bench:noop:{s}:fence",
        "bench:noop:{s}:waiting",
    );
    let granted: Vec<i64> = NOOP_ACQUIRE
        .run(
            redis.pool(),
            vec![key, fence, flag],
            vec!["owner", "h:1", "30000"],
        )
        .await
        .expect("acquire");
    assert_eq!(granted.first(), Some(&1));
    let left: i64 = NOOP_RELEASE
        .run(
            redis.pool(),
            vec![key, flag, fence],
            vec!["h:1", "bench:lock:channel", "l:s", "0", "1"],
        )
        .await
        .expect("release");
    assert_eq!(left, 0);
}

/// The cheapest lock that hands out a fencing token: `SET NX PX` and `INCR` of a counter in one
/// `MULTI` (atomic, so tokens grow in grant order), then the delete-if-equal script. No
/// re-entry, no wake-ups, no renewal: only the token's extra write.
async fn fenced_pair(redis: &RedisClient) {
    let token = "0123456789abcdef0123456789abcdef";
    let trx = redis.pool().next().multi();
    let _: () = trx
        .set(
            "bench:fenced:{l}",
            token,
            Some(Expiration::PX(30_000)),
            Some(SetOptions::NX),
            false,
        )
        .await
        .expect("queue SET");
    let _: () = trx
        .incr("bench:fenced:{l}:fence")
        .await
        .expect("queue INCR");
    let (ok, fence): (Option<String>, i64) = trx.exec(true).await.expect("EXEC");
    assert!(ok.is_some() && fence > 0);
    let n: i64 = redis
        .pool()
        .evalsha(DEL_IF_EQUAL.sha1(), vec!["bench:fenced:{l}"], vec![token])
        .await
        .expect("release");
    assert_eq!(n, 1);
}

async fn dlock_pair(locks: &LockClient) {
    let guard = locks.lock("u").acquire().await.expect("acquire");
    guard.release().await.expect("release");
}

fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let locks = LockClient::new(redis.clone(), LockConfig::new("bench:lock")).expect("locks");
    // The raw pair calls EVALSHA itself: the script must be on the server.
    let _: i64 = rt
        .block_on(DEL_IF_EQUAL.run(redis.pool(), vec!["bench:rawlock"], vec!["-"]))
        .expect("load the release script");
    let mut g = c.benchmark_group("lock/uncontended");
    g.measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("raw SET NX PX + EVALSHA release", |b| {
        b.to_async(&rt).iter(|| raw_pair(&redis))
    });
    g.bench_function("dlock acquire + release", |b| {
        b.to_async(&rt).iter(|| dlock_pair(&locks))
    });
    g.finish();
    if !criterion_filter_matches("lock/uncontended") {
        return;
    }
    // The machine's speed drifts over the seconds between criterion's benches: every pair,
    // interleaved (in a rotating order) over the same seconds, gives the steadier ratios.
    const LABELS: [&str; 5] = [
        "raw SET NX PX + EVALSHA release",
        "two no-op scripts",
        "cheapest fenced lock (MULTI SET NX PX + INCR, delete-if-equal)",
        "dlock's two scripts alone",
        "dlock acquire + release",
    ];
    let mut times: [Vec<Duration>; 5] = Default::default();
    rt.block_on(async {
        for round in 0..6000usize {
            for k in 0..LABELS.len() {
                let which = (round + k) % LABELS.len();
                let started = Instant::now();
                match which {
                    0 => raw_pair(&redis).await,
                    1 => noop_pair(&redis).await,
                    2 => fenced_pair(&redis).await,
                    3 => scripts_pair(&redis).await,
                    _ => dlock_pair(&locks).await,
                }
                if round >= 500 {
                    times[which].push(started.elapsed());
                }
            }
        }
    });
    let medians = times.map(|mut t| {
        t.sort();
        t[t.len() / 2]
    });
    eprintln!("uncontended, interleaved medians (ratio = raw time / this time):");
    for (label, m) in LABELS.iter().zip(medians) {
        eprintln!(
            "  {label}: {m:?} ({:.2}x raw)",
            medians[0].as_secs_f64() / m.as_secs_f64()
        );
    }
}

/// Whether criterion's name filter (the first free argument) lets `group` run.
fn criterion_filter_matches(group: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_none_or(|f| group.contains(&f) || f.contains(group))
}

/// Per-worker section counts and every wait, over the measured rounds of the contended bench.
#[derive(Default)]
struct Fairness {
    per_worker: Vec<u64>,
    waits: Vec<Duration>,
}

/// One round: 8 workers over the clients take the lock `iters` times in all, `INCR` inside.
async fn round(
    clients: Vec<(LockClient, RedisClient)>,
    fair: bool,
    iters: u64,
    stats: Arc<Mutex<Fairness>>,
) -> Duration {
    let remaining = Arc::new(AtomicI64::new(iters as i64));
    let start = Instant::now();
    let workers = (0..8).map(|w| {
        let (locks, redis) = clients[w % clients.len()].clone();
        let (remaining, stats) = (remaining.clone(), stats.clone());
        tokio::spawn(async move {
            let (mut done, mut waits) = (0u64, Vec::new());
            loop {
                let asked = Instant::now();
                let guard = locks
                    .lock(if fair { "hot-fair" } else { "hot" })
                    .fair(fair)
                    .acquire()
                    .await
                    .expect("acquire");
                waits.push(asked.elapsed());
                if remaining.fetch_sub(1, Ordering::SeqCst) <= 0 {
                    guard.release().await.expect("release");
                    break;
                }
                let _: i64 = redis.pool().incr("bench:contended:n").await.expect("INCR");
                guard.release().await.expect("release");
                done += 1;
            }
            let mut s = stats.lock().expect("stats");
            s.per_worker[w] += done;
            s.waits.extend(waits);
        })
    });
    for w in futures::future::join_all(workers).await {
        w.expect("worker");
    }
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let rt = runtime();
    let (_, url) = standalone_client(&rt);
    let clients: Vec<(LockClient, RedisClient)> = (0..2)
        .map(|_| {
            let r = rt
                .block_on(RedisClient::connect(
                    RedisConfig::from_url(url).expect("url"),
                ))
                .expect("connect");
            let mut cfg = LockConfig::new("bench:contended");
            cfg.wait = Duration::from_secs(30);
            (LockClient::new(r.clone(), cfg).expect("locks"), r)
        })
        .collect();
    let mut g = c.benchmark_group("lock/contended");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    for (label, fair) in [("fair", true), ("non-fair", false)] {
        let fresh = || {
            Arc::new(Mutex::new(Fairness {
                per_worker: vec![0; 8],
                waits: Vec::new(),
            }))
        };
        // Steady state only: the first contention of a client also connects its wake-up
        // subscriber (once per client, a few ms), which is not a hand-off.
        rt.block_on(round(clients.clone(), fair, 500, fresh()));
        let stats = fresh();
        let name = format!("{label}: 8 workers x 2 clients, INCR inside (time per section)");
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter_custom(|iters| round(clients.clone(), fair, iters, stats.clone()))
        });
        let mut s = stats.lock().expect("stats");
        let total: u64 = s.per_worker.iter().sum();
        if total == 0 {
            continue; // filtered out
        }
        let share = total as f64 / 8.0;
        let (min, max) = (
            s.per_worker.iter().min().copied().unwrap_or(0),
            s.per_worker.iter().max().copied().unwrap_or(0),
        );
        s.waits.sort();
        let at = |q: f64| {
            s.waits
                .get(((s.waits.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or_default()
        };
        eprintln!(
            "contended ({label}) over {total} sections: per worker {:?} (fair share {share:.0}; min {:.2}x, max {:.2}x); wait p50 {:?}, p99 {:?}, max {:?}",
            s.per_worker,
            min as f64 / share,
            max as f64 / share,
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    g.finish();
}

fn renewal_cost(c: &mut Criterion) {
    let rt = runtime();
    let (redis, _) = standalone_client(&rt);
    let mut cfg = LockConfig::new("bench:renew");
    cfg.lease = Duration::from_secs(3);
    let locks = LockClient::new(redis.clone(), cfg).expect("locks");
    let guards = rt.block_on(async {
        let mut out = Vec::with_capacity(1000);
        for i in 0..1000 {
            out.push(
                locks
                    .lock(&format!("r{i}"))
                    .acquire()
                    .await
                    .expect("acquire"),
            );
        }
        out
    });
    let mut g = c.benchmark_group("lock/renewal");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("renew 1,000 held locks (watchdog batches)", |b| {
        b.to_async(&rt).iter(|| async {
            let n = locks.renew_all().await.expect("renew");
            assert_eq!(n, 1000);
        })
    });
    g.bench_function("raw: 1,000 PEXPIREs, one pipeline", |b| {
        b.to_async(&rt).iter(|| async {
            let pipe = redis.pool().next().pipeline();
            for i in 0..1000 {
                let _: () = pipe
                    .pexpire(format!("bench:renew:{{r{i}}}"), 3000, None)
                    .await
                    .expect("queue");
            }
            let _: Vec<i64> = pipe.all().await.expect("PEXPIRE");
        })
    });
    g.finish();
    let s = locks.stats();
    eprintln!(
        "1,000 held locks (lease 3 s): {} renewals, {} failures, {} lost, worst lateness {} µs",
        s.renewals, s.renewal_failures, s.losses, s.max_renewal_lateness_us
    );
    rt.block_on(async {
        for g in guards {
            g.release().await.expect("release");
        }
    });
}

criterion_group!(benches, uncontended, contended, renewal_cost);
criterion_main!(benches);
