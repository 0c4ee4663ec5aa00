//! Opt-in, throttled key sampling: the biggest keys by `MEMORY USAGE`, per primary.

use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::Value;

use crate::error::Error;
use crate::node::{self, NodeRole, call, is_denied};
use crate::options::Options;
use crate::report::{Finding, NodeSummary, Report, SCHEMA, Severity};

/// Settings of [`big_keys`].
///
/// ```
/// let b = redis_diag::BigKeyOptions::default();
/// assert_eq!(b.max_keys, 10_000);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BigKeyOptions {
    /// Most keys examined per node. Default 10,000.
    pub max_keys: usize,
    /// `SCAN … COUNT`. Default 100.
    pub scan_count: u32,
    /// Pause after each `SCAN` batch, so the server is never kept busy. Default 2 ms.
    pub pause: Duration,
    /// Keys listed per node. Default 10.
    pub top: usize,
    /// From this size on a key is a warning. Default 1 MiB.
    pub big_bytes: u64,
}

impl Default for BigKeyOptions {
    fn default() -> BigKeyOptions {
        BigKeyOptions {
            max_keys: 10_000,
            scan_count: 100,
            pause: Duration::from_millis(2),
            top: 10,
            big_bytes: 1024 * 1024,
        }
    }
}

fn key_text(v: &Value) -> String {
    match v.as_bytes() {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => v.as_string().unwrap_or_default(),
    }
}

/// Samples keys on every primary (SCAN, then `TYPE` and `MEMORY USAGE … SAMPLES 5` per key,
/// pausing between batches) and reports the biggest: `keys.big` findings (warning from
/// `big_bytes` on, info below) and one `keys.sampled` finding per node saying how much was
/// examined. Replicas hold the same keys as their primary and are skipped, as are sentinels.
///
/// ```no_run
/// # async fn demo(cfg: redis_conn::RedisConfig) -> Result<(), redis_diag::Error> {
/// let r = redis_diag::big_keys(&cfg, &redis_diag::Options::default(), &redis_diag::BigKeyOptions::default()).await?;
/// println!("{}", redis_diag::render_table(&r, 80));
/// # Ok(()) }
/// ```
pub async fn big_keys(
    config: &redis_conn::RedisConfig,
    opts: &Options,
    bk: &BigKeyOptions,
) -> Result<Report, Error> {
    let (targets, mut findings) = node::discover(config, opts).await?;
    let mut nodes = Vec::new();
    for t in targets
        .iter()
        .filter(|t| matches!(t.role, NodeRole::Primary | NodeRole::Unknown))
    {
        let addr = t.addr();
        let client = match node::connect(config, &t.endpoint, false, opts.probe_timeout).await {
            Ok(c) => c,
            Err(e) => {
                nodes.push(e.summary(t));
                findings.push(e.finding(t));
                continue;
            }
        };
        nodes.push(NodeSummary {
            addr: addr.clone(),
            role: "primary".into(),
            reachable: true,
            auth_failed: false,
            version: None,
        });
        let mut sizes: Vec<(String, String, u64)> = Vec::new();
        let mut cursor = "0".to_string();
        let mut examined = 0usize;
        let mut error = None;
        loop {
            let reply = call(
                &client,
                "SCAN",
                vec![cursor.clone(), "COUNT".into(), bk.scan_count.to_string()],
            )
            .await;
            let (next, keys) = match reply {
                Ok(Value::Array(mut a)) if a.len() == 2 => {
                    let keys = match a.pop() {
                        Some(Value::Array(k)) => k,
                        _ => Vec::new(),
                    };
                    (
                        a.pop().map(|c| key_text(&c)).unwrap_or_else(|| "0".into()),
                        keys,
                    )
                }
                Ok(other) => {
                    error = Some(format!("unexpected SCAN reply {other:?}"));
                    break;
                }
                Err(e) if is_denied(&e) => {
                    error = Some(format!("the user needs +scan ({})", e.details()));
                    break;
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            };
            for k in keys {
                if examined >= bk.max_keys {
                    break;
                }
                examined += 1;
                let name = key_text(&k);
                let bytes = call(
                    &client,
                    "MEMORY",
                    vec!["USAGE".into(), name.clone(), "SAMPLES".into(), "5".into()],
                )
                .await;
                let kind = call(&client, "TYPE", vec![name.clone()]).await;
                // A refused right stops the sampling: every key would be refused alike.
                if let Some((right, e)) = [("memory|usage", &bytes), ("type", &kind)]
                    .into_iter()
                    .find_map(|(r, v)| v.as_ref().err().filter(|e| is_denied(e)).map(|e| (r, e)))
                {
                    error = Some(format!("the user needs +{right} ({})", e.details()));
                    break;
                }
                let bytes = bytes.ok().and_then(|v| v.as_u64()).unwrap_or(0);
                let kind = kind.ok().and_then(|v| v.as_string()).unwrap_or_default();
                sizes.push((name, kind, bytes));
                if sizes.len() > bk.top.max(1) * 4 {
                    sizes.sort_by_key(|s| std::cmp::Reverse(s.2));
                    sizes.truncate(bk.top.max(1));
                }
            }
            cursor = next;
            if error.is_some() || cursor == "0" || examined >= bk.max_keys {
                break;
            }
            tokio::time::sleep(bk.pause).await;
        }
        let _ = client.quit().await;
        sizes.sort_by_key(|s| std::cmp::Reverse(s.2));
        sizes.truncate(bk.top);
        for (name, kind, bytes) in sizes {
            let severity = if bytes >= bk.big_bytes {
                Severity::Warning
            } else {
                Severity::Info
            };
            let mut f = Finding::new(
                "keys.big",
                severity,
                &addr,
                format!("key {name:?} uses {:.1} KiB", bytes as f64 / 1024.0),
            )
            .evidence(format!("type {kind}, {bytes} B (MEMORY USAGE, 5 samples)"));
            if severity == Severity::Warning {
                f = f.fix("split it (e.g. hash buckets), trim it, or move it to a store built for large values; deleting it may block: use UNLINK");
            }
            f.role = "primary".into();
            findings.push(f);
        }
        let mut f = Finding::new(
            "keys.sampled",
            if error.is_some() {
                Severity::Warning
            } else {
                Severity::Ok
            },
            &addr,
            format!("{examined} keys examined"),
        )
        .evidence(match &error {
            Some(e) => format!("stopped early: {e}"),
            None => format!(
                "limit {} keys, SCAN COUNT {}, {:?} pause per batch",
                bk.max_keys, bk.scan_count, bk.pause
            ),
        });
        f.role = "primary".into();
        findings.push(f);
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.node.cmp(&b.node))
    });
    Ok(Report {
        schema: SCHEMA.into(),
        mode: config.mode.name().into(),
        nodes,
        findings,
    })
}
