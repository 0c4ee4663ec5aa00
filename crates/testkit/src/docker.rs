//! The container backend: an image built locally from the installed `redis-server` (no registry
//! is needed), a private bridge network per topology, and container lifecycle through the
//! `docker` CLI.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::host::{redis_server_bin, run_quiet};

/// Whether a Docker engine answers.
///
/// ```no_run
/// if testkit::docker::available() { println!("docker backend usable"); }
/// ```
pub fn available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns a usable image name: `image` itself when given (it must exist locally, e.g.
/// `redis:7.2` loaded with `docker load`), otherwise `redkit-redis:<version>`, built on first
/// use from the local `redis-server` binary and the shared libraries it links (`ldd`) as a
/// FROM-scratch root filesystem imported with `docker import`.
///
/// ```no_run
/// let image = testkit::docker::ensure_image(None).unwrap();
/// assert!(image.starts_with("redkit-redis:"));
/// ```
pub fn ensure_image(image: Option<&str>) -> Result<String> {
    if !available() {
        return Err(Error::new(
            "no Docker engine answers (`docker version` failed): start dockerd, or use the process backend \
             (REDKIT_BACKEND=process / --backend process)",
        ));
    }
    if let Some(image) = image {
        return if exists(image) {
            Ok(image.to_string())
        } else {
            Err(Error::new(format!(
                "image {image} is not present locally and no registry is reachable: `docker load` it first, \
                 or leave --image / REDKIT_DOCKER_IMAGE unset to build one from the local redis-server"
            )))
        };
    }
    let bin = redis_server_bin()?;
    let version = run_quiet(Command::new(&bin).arg("--version"))?;
    let version = version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or("local")
        .to_string();
    let tag = format!("redkit-redis:{version}");
    if exists(&tag) {
        return Ok(tag);
    }
    build_image(&bin, &tag)?;
    Ok(tag)
}

fn exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build_image(bin: &Path, tag: &str) -> Result<()> {
    let root = tempfile::tempdir().map_err(|e| Error::new(format!("tempdir: {e}")))?;
    let root = root.path();
    let real = std::fs::canonicalize(bin)
        .map_err(|e| Error::new(format!("cannot resolve {}: {e}", bin.display())))?;
    let mut files = vec![(real, "/usr/bin/redis-server".to_string())];
    let ldd = run_quiet(Command::new("ldd").arg(bin))?;
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let real = std::fs::canonicalize(lib)
            .map_err(|e| Error::new(format!("cannot resolve {lib}: {e}")))?;
        files.push((real, lib.to_string()));
    }
    for (src, dst) in &files {
        let dst = root.join(dst.trim_start_matches('/'));
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::new(format!("mkdir: {e}")))?;
        }
        std::fs::copy(src, &dst)
            .map_err(|e| Error::new(format!("copy {} -> {}: {e}", src.display(), dst.display())))?;
    }
    for d in ["data", "tmp"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| Error::new(format!("mkdir: {e}")))?;
    }
    let mut tar = Command::new("tar")
        .args(["-C"])
        .arg(root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("cannot run tar: {e}")))?;
    let out = Command::new("docker")
        .args([
            "import",
            "--change",
            "ENTRYPOINT [\"/usr/bin/redis-server\"]",
            "--change",
            "ENV PATH=/usr/bin:/bin",
            "--change",
            "WORKDIR /data",
            "-",
            tag,
        ])
        .stdin(
            tar.stdout
                .take()
                .ok_or_else(|| Error::new("tar has no stdout"))?,
        )
        .output()
        .map_err(|e| Error::new(format!("cannot run docker import: {e}")))?;
    let tar_status = tar.wait().map_err(|e| Error::new(format!("tar: {e}")))?;
    if !tar_status.success() {
        // A partial root filesystem must not stay cached under the tag.
        run_quiet(Command::new("docker").args(["rmi", "--force", tag])).ok();
        return Err(Error::new(format!(
            "tar of the image root filesystem failed ({tar_status})"
        )));
    }
    if !out.status.success() {
        return Err(Error::new(format!(
            "docker import {tag} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Creates a private bridge network for one run; returns its name and the first three octets of
/// its /24 subnet (containers get `.11`, `.12`, ...).
pub(crate) fn create_network(run_id: &str) -> Result<(String, String)> {
    let name = format!("redkit-{run_id}");
    let mut last = String::new();
    for attempt in 0..20u64 {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0)
            ^ (std::process::id() as u64).wrapping_mul(2654435761)
            ^ attempt.wrapping_mul(40503);
        let prefix = format!("10.{}.{}", 200 + seed % 50, (seed / 50) % 250 + 1);
        match run_quiet(Command::new("docker").args([
            "network",
            "create",
            "--driver",
            "bridge",
            "--label",
            &format!("redkit.run={run_id}"),
            "--subnet",
            &format!("{prefix}.0/24"),
            &name,
        ])) {
            Ok(_) => return Ok((name, prefix)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(Error::new(format!(
        "cannot create docker network {name}: {last}"
    )))
}

/// Starts one container running `redis-server` with `args`, its `/data` bound to `host_dir`.
pub(crate) fn run_container(
    image: &str,
    name: &str,
    run_id: &str,
    network: &str,
    ip: &str,
    host_dir: &Path,
    args: &[String],
) -> Result<()> {
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--detach", "--name", name, "--label"])
        .arg(format!("redkit.run={run_id}"))
        .args(["--network", network, "--ip", ip, "--volume"])
        .arg(format!("{}:/data", host_dir.display()))
        .args(["--entrypoint", "redis-server", image])
        .args(args);
    run_quiet(&mut cmd).map(|_| ())
}

/// Removes every container and network a run created (by label).
pub(crate) fn remove_run(run_id: &str) {
    let filter = format!("label=redkit.run={run_id}");
    if let Ok(ids) = run_quiet(Command::new("docker").args(["ps", "-aq", "--filter", &filter])) {
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            run_quiet(
                Command::new("docker")
                    .args(["rm", "--force", "--volumes"])
                    .args(&ids),
            )
            .ok();
        }
    }
    if let Ok(nets) =
        run_quiet(Command::new("docker").args(["network", "ls", "-q", "--filter", &filter]))
    {
        for net in nets.split_whitespace() {
            run_quiet(Command::new("docker").args(["network", "rm", net])).ok();
        }
    }
}
