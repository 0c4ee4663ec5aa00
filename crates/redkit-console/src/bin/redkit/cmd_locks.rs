//! Lock and cache commands.

use redkit_console::{CacheView, Console, Error, LockView};

use crate::Format;
use crate::table;

fn json<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Unreadable(e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// `redkit locks [NAMESPACE]`: the namespaces, or the held locks of one.
pub(crate) async fn locks(
    console: &Console,
    f: Format,
    namespace: Option<String>,
    limit: usize,
) -> Result<(), Error> {
    let Some(ns) = namespace else {
        let all = console.lock_namespaces().await?;
        if f == Format::Json {
            return json(&all);
        }
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|n| {
                vec![
                    n.namespace.clone(),
                    n.registered_ms
                        .map_or_else(|| "found by scanning".into(), |_| "registered".into()),
                ]
            })
            .collect();
        table::print(&["namespace", "source"], &rows);
        return Ok(());
    };
    let held = console.held_locks(&ns, limit).await?;
    if f == Format::Json {
        return json(&held);
    }
    let rows: Vec<Vec<String>> = held
        .locks
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.kind.clone(),
                l.owners.join(","),
                opt(l.fence),
                ms(l.ttl_left_ms),
                ms(l.held_for_ms),
                l.waiters.to_string(),
            ]
        })
        .collect();
    table::print(
        &[
            "lock", "kind", "owner", "fence", "ttl_left", "held_for", "waiters",
        ],
        &rows,
    );
    if !held.complete {
        eprintln!(
            "redkit: more locks are held than listed ({} keys looked at); raise --limit",
            held.scanned
        );
    }
    Ok(())
}

fn print_lock(l: &LockView) {
    table::pairs(&[
        ("namespace", l.namespace.clone()),
        ("lock", l.name.clone()),
        ("kind", l.kind.clone()),
        ("owners", l.owners.join(", ")),
        ("fence", opt(l.fence)),
        ("ttl_left", ms(l.ttl_left_ms)),
        ("held_for", ms(l.held_for_ms)),
        ("holds", l.holds.to_string()),
        ("waiters", l.waiters.to_string()),
        ("non_fair_waiter", l.waiting.to_string()),
        ("problem", l.problem.clone().unwrap_or_else(|| "-".into())),
    ]);
    for (i, w) in l.fair_line.iter().enumerate() {
        println!("  line #{}: {w}", i + 1);
    }
}

/// `redkit lock NAMESPACE NAME [force-release --yes]` (`--yes` was checked before).
pub(crate) async fn lock(
    console: &Console,
    f: Format,
    namespace: &str,
    name: &str,
    force_release: bool,
) -> Result<(), Error> {
    let before = console.lock(namespace, name).await?;
    if !force_release {
        if f == Format::Json {
            return json(&before);
        }
        print_lock(&before);
        return Ok(());
    }
    console.force_release(namespace, name).await?;
    if f == Format::Json {
        return json(&serde_json::json!({ "released": before }));
    }
    println!(
        "released {namespace}/{name} (was held by {}, fence {}); the next holder gets a larger fence",
        before.owners.join(", "),
        opt(before.fence)
    );
    Ok(())
}

fn ratio(v: &CacheView) -> String {
    v.hit_ratio
        .map_or_else(|| "-".into(), |r| format!("{r:.3}"))
}

/// `redkit caches`.
pub(crate) async fn caches(console: &Console, f: Format) -> Result<(), Error> {
    let all = console.caches().await?;
    if f == Format::Json {
        return json(&all);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|c| match &c.error {
            Some(e) => vec![c.namespace.clone(), format!("error: {e}")],
            None => vec![
                c.namespace.clone(),
                c.hits.to_string(),
                c.misses.to_string(),
                ratio(c),
                c.builds.to_string(),
                c.stale_served.to_string(),
                c.live_processes.to_string(),
                c.breakers_open.to_string(),
            ],
        })
        .collect();
    table::print(
        &[
            "cache",
            "hits",
            "misses",
            "ratio",
            "builds",
            "stale",
            "processes",
            "breakers_open",
        ],
        &rows,
    );
    Ok(())
}

/// `redkit cache NAME`.
pub(crate) async fn cache(console: &Console, f: Format, name: &str) -> Result<(), Error> {
    let v = console.cache(name).await?;
    if f == Format::Json {
        return json(&v);
    }
    table::pairs(&[
        ("cache", v.namespace.clone()),
        ("hits", v.hits.to_string()),
        ("misses", v.misses.to_string()),
        ("hit_ratio", ratio(&v)),
        ("builds", v.builds.to_string()),
        ("build_errors", v.build_errors.to_string()),
        ("stale_served", v.stale_served.to_string()),
        ("redis_errors", v.redis_errors.to_string()),
        ("live_processes", v.live_processes.to_string()),
        ("breakers_open", v.breakers_open.to_string()),
    ]);
    let rows: Vec<Vec<String>> = v
        .processes
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.breaker.clone(),
                format!("{:.1}s", p.age_ms as f64 / 1000.0),
                p.hits.to_string(),
                p.misses.to_string(),
                p.builds.to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        println!();
        table::print(
            &[
                "process",
                "breaker",
                "last_flush_ago",
                "hits",
                "misses",
                "builds",
            ],
            &rows,
        );
    }
    Ok(())
}
