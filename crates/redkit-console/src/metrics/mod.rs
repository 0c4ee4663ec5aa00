//! The console's `/metrics`: redis-diag's exporter output (node metrics and findings) plus
//! the queue, lock and cache figures read from Redis, in the Prometheus text format.

use std::fmt::Write as _;

mod cache_series;
mod lock_series;
mod queue_series;
mod text;

use crate::console::Console;
use text::{as_f64, family};

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
    errors += queue_series::series(console, &mut out, &mut up).await;
    errors += lock_series::series(console, &mut out, &mut up).await;
    errors += cache_series::series(console, &mut out, &mut up).await;
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
