//! Prometheus's `promtool` (Debian's `prometheus` package) for tests that check what an
//! exporter writes or what alert rules say: found on `PATH`, or a failure that says how to
//! install it — such tests never skip.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `promtool` from `PATH`; panics with the command that installs it when it is missing.
///
/// ```no_run
/// let out = std::process::Command::new(testkit::promtool::path())
///     .args(["check", "rules", "alerts.yml"])
///     .output()
///     .unwrap();
/// ```
pub fn path() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "promtool is not on PATH: install it (Debian/Ubuntu: `apt-get install -y prometheus`; \
                 `cargo xtask ci` and .ci/run do); this test does not skip"
            )
        })
}

/// `promtool check metrics` of an exposition: `Err` with what promtool said when it refuses
/// it (syntax, or its lint rules).
///
/// ```no_run
/// testkit::promtool::check_metrics("# TYPE up gauge\nup 1\n").unwrap();
/// ```
pub fn check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new(path())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("promtool has no stdin")?;
    // Written from another thread: promtool may answer before it has read everything.
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool: {e}"))?;
    let _ = writer.join();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
