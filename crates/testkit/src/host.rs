//! What the harness needs from the host, for both backends: running its programs quietly
//! (`docker`, `kill`, `ldd`, `redis-server --version`), finding the `redis-server` binary and
//! writing small files (configs, scripts, markers).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Runs `cmd` with no stdin; returns its trimmed stdout, or an error with its stderr.
pub(crate) fn run_quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The `redis-server` binary: `REDKIT_REDIS_SERVER` or the first on `PATH`.
pub(crate) fn redis_server_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("REDKIT_REDIS_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::new(format!(
                "REDKIT_REDIS_SERVER={} does not exist",
                p.display()
            )))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::new(
                "redis-server was not found on PATH. Install it (Debian/Ubuntu: `apt-get update && \
                 apt-get install -y redis-server`), set REDKIT_REDIS_SERVER to the binary, or point the \
                 tests at running servers with REDKIT_STANDALONE_URL / REDKIT_SENTINEL_URL / \
                 REDKIT_CLUSTER_URL (`cargo xtask up <topology>` then `cargo xtask env`)",
            )
        })
}

/// Creates (or truncates) `path` and writes `text` to it.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))
}
