//! What `cargo xtask ci` checks about the crates as packages: every library crate builds
//! (clippy-clean) alone with no default features, with each feature alone and with all of
//! them; cache-core without defaults pulls none of its optional libraries; `cargo package`
//! of every publishable crate passes (each verified by building it from its `.crate`); and a
//! project outside the workspace that depends on the packaged rqueue alone builds without
//! moka.

use std::process::Command;

use crate::{Progress, Result, cargo, project_root, run};

/// The crates meant for crates.io, in dependency order.
pub(crate) const PUBLISHED: &[&str] = &[
    "redis-conn",
    "testkit",
    "cache-core",
    "dlock",
    "rqueue",
    "redis-diag",
    "redkit-console",
];

/// Each library crate's optional features (checked one at a time).
const FEATURES: &[(&str, &[&str])] = &[
    ("redis-conn", &["tls", "metrics"]),
    ("testkit", &["proptest"]),
    (
        "cache-core",
        &["json", "msgpack", "near-cache", "bloom", "metrics", "tls"],
    ),
    ("dlock", &["metrics", "tls"]),
    ("rqueue", &["metrics", "tls"]),
    ("redis-diag", &["tls"]),
    ("redkit-console", &["tls"]),
];

/// What cache-core must not pull without its default features.
const CACHE_CORE_OPTIONAL: &[&str] = &["moka", "metrics", "serde_json", "rmp-serde"];

fn clippy(krate: &str, args: &[&str]) -> Result {
    run(cargo()
        .args(["clippy", "--quiet", "-p", krate])
        .args(args)
        .args(["--", "-D", "warnings"]))
}

/// Every library crate alone: no default features (the library), each feature alone (the
/// library), all features (every target).
pub(crate) fn features(p: &Progress) -> Result {
    for (krate, features) in FEATURES {
        p.say(format!("{krate}: --no-default-features"));
        clippy(krate, &["--lib", "--no-default-features"])?;
        if features.len() > 1 {
            for f in *features {
                p.say(format!("{krate}: --no-default-features --features {f}"));
                clippy(krate, &["--lib", "--no-default-features", "--features", f])?;
            }
        }
        p.say(format!("{krate}: --all-features --all-targets"));
        clippy(krate, &["--all-targets", "--all-features"])?;
    }
    p.say("cache-core --no-default-features pulls none of its optional libraries");
    let out = cargo()
        .args([
            "tree",
            "-p",
            "cache-core",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .map_err(|e| format!("cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let pulled: Vec<&str> = CACHE_CORE_OPTIONAL
        .iter()
        .copied()
        .filter(|c| tree.lines().any(|l| l.split(' ').next() == Some(*c)))
        .collect();
    if !pulled.is_empty() {
        return Err(format!(
            "cache-core --no-default-features still pulls {}:\n{tree}",
            pulled.join(", ")
        ));
    }
    Ok(())
}

/// `cargo package` of every publishable crate (verified: each is built from its `.crate`,
/// with the others it needs taken from their own `.crate`s), then a scratch project outside
/// the workspace that depends on the packaged rqueue alone.
pub(crate) fn package(p: &Progress) -> Result {
    p.say(format!("cargo package: {}", PUBLISHED.join(", ")));
    let mut cmd = cargo();
    cmd.args(["package", "--quiet", "--allow-dirty"]);
    for k in PUBLISHED {
        cmd.args(["-p", k]);
    }
    run(&mut cmd)?;
    let unpacked = |k: &str| {
        project_root()
            .join("target")
            .join("package")
            .join(format!("{k}-{}", env!("CARGO_PKG_VERSION")))
    };
    let dir = project_root().join("target").join("scratch-rqueue");
    std::fs::create_dir_all(dir.join("src")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let manifest = format!(
        r#"[package]
name = "scratch-rqueue"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
rqueue = {{ path = "{}" }}
serde = {{ version = "1", features = ["derive"] }}

[patch.crates-io]
redis-conn = {{ path = "{}" }}

[workspace]
"#,
        unpacked("rqueue").display(),
        unpacked("redis-conn").display()
    );
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("Cargo.toml", &manifest)?;
    write(
        "src/main.rs",
        r#"//! Depends on the packaged rqueue alone.
#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
}

fn main() {
    let config = rqueue::QueueConfig::new("orders");
    let _typed: Option<rqueue::Queue<Order>> = None;
    println!("{}", config.name);
}
"#,
    )?;
    p.say("a scratch project on the packaged rqueue alone: cargo tree (no moka) and cargo build");
    let in_scratch = |args: &[&str]| {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(&dir)
            .args(args)
            // The workspace's target dir: dependencies built for the workspace are reused.
            .env("CARGO_TARGET_DIR", project_root().join("target"));
        c
    };
    let out = in_scratch(&["tree", "-e", "normal", "--prefix", "none"])
        .output()
        .map_err(|e| format!("cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    if tree.lines().any(|l| l.split(' ').next() == Some("moka")) {
        return Err(format!("the packaged rqueue pulls moka:\n{tree}"));
    }
    if !tree
        .lines()
        .any(|l| l.starts_with("rqueue v") && l.contains("target/package"))
    {
        return Err(format!(
            "the scratch project does not use the packaged rqueue:\n{tree}"
        ));
    }
    run(&mut in_scratch(&["build", "--quiet"]))
}
