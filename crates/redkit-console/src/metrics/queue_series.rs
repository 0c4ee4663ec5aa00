//! The queue series of `/metrics`.

use super::text::{as_f64, comment, family, labels};
use crate::console::Console;
use crate::queues::QueueSummary;

/// Every registered queue's depths, counters and state. Returns the sections that failed;
/// Redis being down sets `up` to 0.
pub(crate) async fn series(console: &Console, out: &mut String, up: &mut f64) -> u64 {
    match console.queues().await {
        Ok(queues) => {
            let l = |q: &QueueSummary| labels(&[("namespace", &q.namespace), ("queue", &q.name)]);
            let ok: Vec<&QueueSummary> = queues.iter().filter(|q| q.error.is_none()).collect();
            let series = |f: &dyn Fn(&QueueSummary) -> f64| -> Vec<(String, f64)> {
                ok.iter().map(|q| (l(q), f(q))).collect()
            };
            family(
                out,
                "redkit_queue_ready",
                "gauge",
                "Messages ready now.",
                &series(&|q| as_f64(q.ready)),
            );
            family(
                out,
                "redkit_queue_delayed",
                "gauge",
                "Messages waiting for their due time.",
                &series(&|q| as_f64(q.delayed)),
            );
            family(
                out,
                "redkit_queue_in_flight",
                "gauge",
                "Messages leased to workers.",
                &series(&|q| as_f64(q.in_flight)),
            );
            family(
                out,
                "redkit_queue_dead",
                "gauge",
                "Messages in the dead set.",
                &series(&|q| as_f64(q.dead)),
            );
            family(
                out,
                "redkit_queue_oldest_ready_age_seconds",
                "gauge",
                "Age of the message served next (0 when none is ready).",
                &series(&|q| q.oldest_ready_age_ms.map_or(0.0, |ms| ms as f64 / 1000.0)),
            );
            family(
                out,
                "redkit_queue_paused",
                "gauge",
                "1 while the queue is paused.",
                &series(&|q| f64::from(u8::from(q.paused))),
            );
            family(
                out,
                "redkit_queue_enqueued_total",
                "counter",
                "Messages enqueued.",
                &series(&|q| as_f64(q.enqueued)),
            );
            family(
                out,
                "redkit_queue_claimed_total",
                "counter",
                "Deliveries made.",
                &series(&|q| as_f64(q.claimed)),
            );
            family(
                out,
                "redkit_queue_processed_total",
                "counter",
                "Deliveries acknowledged.",
                &series(&|q| as_f64(q.processed)),
            );
            family(
                out,
                "redkit_queue_failed_total",
                "counter",
                "Failed attempts (retried and died).",
                &series(&|q| as_f64(q.failed)),
            );
            family(
                out,
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
                out,
                "redkit_queue_up",
                "gauge",
                "1 when the queue's keys were read fine.",
                &up_series,
            );
        }
        Err(e) => {
            if e.is_redis() {
                *up = 0.0;
            }
            comment(out, "queues", &e.to_string());
            return 1;
        }
    }
    0
}
