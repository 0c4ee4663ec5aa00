//! The console's `/metrics`: redis-diag's exporter output (node metrics and findings) plus
//! the queue, lock and cache figures read from Redis, in the Prometheus text format.

use std::fmt::Write as _;

use redis_diag::escape_label as esc;

use crate::console::Console;

/// Appends one metric family (`# HELP`, `# TYPE`, then its samples).
pub(crate) fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, f64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

fn as_f64(n: u64) -> f64 {
    n as f64
}

/// One scrape: the doctor's series (redis-diag's exporter, reused), then every registered
/// queue, lock namespace and cache. A section that cannot be read is counted in
/// `redkit_console_scrape_errors`; Redis being down gives `redkit_console_redis_up 0`.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) {
/// let text = redkit_console::metrics::render(&c).await;
/// assert!(text.contains("redkit_console_redis_up"));
/// # }
/// ```
pub async fn render(console: &Console) -> String {
    let mut out = String::new();
    let mut errors = 0u64;
    match redis_diag::scrape(
        &console.config,
        redis_diag::Scope::All,
        &redis_diag::Options::default(),
    )
    .await
    {
        Ok(text) => out.push_str(&text),
        Err(e) => {
            errors += 1;
            let _ = writeln!(out, "# redis-diag: {}", e.to_string().replace('\n', " "));
        }
    }
    let mut up = 1.0;
    match console.queues().await {
        Ok(queues) => {
            let l = |q: &crate::queues::QueueSummary| {
                format!(
                    "namespace=\"{}\",queue=\"{}\"",
                    esc(&q.namespace),
                    esc(&q.name)
                )
            };
            let ok: Vec<&crate::queues::QueueSummary> =
                queues.iter().filter(|q| q.error.is_none()).collect();
            let series = |f: &dyn Fn(&crate::queues::QueueSummary) -> f64| -> Vec<(String, f64)> {
                ok.iter().map(|q| (l(q), f(q))).collect()
            };
            family(
                &mut out,
                "redkit_queue_ready",
                "gauge",
                "Messages ready now.",
                &series(&|q| as_f64(q.ready)),
            );
            family(
                &mut out,
                "redkit_queue_delayed",
                "gauge",
                "Messages waiting for their due time.",
                &series(&|q| as_f64(q.delayed)),
            );
            family(
                &mut out,
                "redkit_queue_in_flight",
                "gauge",
                "Messages leased to workers.",
                &series(&|q| as_f64(q.in_flight)),
            );
            family(
                &mut out,
                "redkit_queue_dead",
                "gauge",
                "Messages in the dead set.",
                &series(&|q| as_f64(q.dead)),
            );
            family(
                &mut out,
                "redkit_queue_oldest_ready_age_seconds",
                "gauge",
                "Age of the message served next (0 when none is ready).",
                &series(&|q| q.oldest_ready_age_ms.map_or(0.0, |ms| ms as f64 / 1000.0)),
            );
            family(
                &mut out,
                "redkit_queue_paused",
                "gauge",
                "1 while the queue is paused.",
                &series(&|q| f64::from(u8::from(q.paused))),
            );
            family(
                &mut out,
                "redkit_queue_enqueued_total",
                "counter",
                "Messages enqueued.",
                &series(&|q| as_f64(q.enqueued)),
            );
            family(
                &mut out,
                "redkit_queue_claimed_total",
                "counter",
                "Deliveries made.",
                &series(&|q| as_f64(q.claimed)),
            );
            family(
                &mut out,
                "redkit_queue_processed_total",
                "counter",
                "Deliveries acknowledged.",
                &series(&|q| as_f64(q.processed)),
            );
            family(
                &mut out,
                "redkit_queue_failed_total",
                "counter",
                "Failed attempts (retried and died).",
                &series(&|q| as_f64(q.failed)),
            );
            family(
                &mut out,
                "redkit_queue_died_total",
                "counter",
                "Messages moved to the dead set.",
                &series(&|q| as_f64(q.died)),
            );
            let up_series: Vec<(String, f64)> = queues
                .iter()
                .map(|q| (l(q), if q.error.is_none() { 1.0 } else { 0.0 }))
                .collect();
            family(
                &mut out,
                "redkit_queue_up",
                "gauge",
                "1 when the queue's keys were read fine.",
                &up_series,
            );
        }
        Err(e) => {
            errors += 1;
            if e.is_redis() {
                up = 0.0;
            }
            let _ = writeln!(out, "# queues: {}", e.to_string().replace('\n', " "));
        }
    }
    errors += crate::locks::metrics(console, &mut out, &mut up).await;
    errors += crate::caches::metrics(console, &mut out, &mut up).await;
    family(
        &mut out,
        "redkit_console_scrape_errors",
        "gauge",
        "Sections of this scrape that could not be read.",
        &[(String::new(), as_f64(errors))],
    );
    family(
        &mut out,
        "redkit_console_redis_up",
        "gauge",
        "1 when the console could read Redis in this scrape.",
        &[(String::new(), up)],
    );
    out
}
