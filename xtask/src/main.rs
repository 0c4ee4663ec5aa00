//! `cargo xtask`: start and stop Redis topologies (processes or containers), run the
//! integration matrix, the benches, the demo and everything CI checks.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use testkit::{Backend, Kind, Spec, State, Topology};

mod layers;
mod package;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "redkit developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TopologyArg {
    Standalone,
    Sentinel,
    Cluster,
}

impl From<TopologyArg> for Kind {
    fn from(t: TopologyArg) -> Kind {
        match t {
            TopologyArg::Standalone => Kind::Standalone,
            TopologyArg::Sentinel => Kind::Sentinel,
            TopologyArg::Cluster => Kind::Cluster,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    /// redis-server processes on 127.0.0.1
    Process,
    /// containers on a private bridge network (image built from the local redis-server)
    Docker,
    /// process, plus docker when a Docker engine answers
    Auto,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a topology in the background (`cargo xtask down` stops it).
    Up {
        topology: TopologyArg,
        #[arg(long, value_enum, default_value = "process")]
        backend: BackendArg,
        /// A local image to use instead of building one (docker backend).
        #[arg(long)]
        image: Option<String>,
        /// Require this password on the data nodes.
        #[arg(long)]
        password: Option<String>,
        /// ACL user to create (with --password).
        #[arg(long, requires = "password")]
        username: Option<String>,
        /// TLS only (mutual TLS, certificates naming host names only) with an admin ACL user
        /// and the default user off, as the secure CI pass runs (`REDKIT_SECURE=1` for tests).
        #[arg(long, conflicts_with = "password")]
        secure: bool,
    },
    /// Stop topologies started with `up` (all when none is named).
    Down { topology: Vec<TopologyArg> },
    /// Show the topologies started with `up` and whether their nodes answer.
    Status,
    /// Print `export REDKIT_*_URL=...` lines for the topologies started with `up`.
    Env,
    /// Bring topologies up, run the test suite against them, tear them down (even on failure).
    Test {
        /// Topologies to run (default: all three).
        #[arg(long = "topology", value_enum)]
        topologies: Vec<TopologyArg>,
        #[arg(long, value_enum, default_value = "auto")]
        backend: BackendArg,
        /// A local image for the docker backend.
        #[arg(long)]
        image: Option<String>,
        /// Secure topologies (TLS + ACL): every suite runs as its crate's least-privilege ACL
        /// user; only the tests on shared topologies run.
        #[arg(long)]
        secure: bool,
        /// Extra arguments for the test runner (after `--`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// Run the criterion benches against a throwaway standalone server.
    Bench {
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// The shop story (cache, lock and queue together, then a flash sale) on a throwaway
    /// standalone server, and the production setup example on every topology (or both
    /// against REDIS_URL / REDIS_MODE when set).
    Demo,
    /// Check that no source file under crates/*/src is longer than 800 lines and that each
    /// crate's modules import one another as a tree (no module imports one that imports it
    /// back).
    Layers {
        /// Also list every module's imports.
        #[arg(long)]
        edges: bool,
    },
    /// Every library crate alone: clippy without default features, with each feature, with
    /// all features; cache-core without defaults pulls none of its optional libraries.
    Features,
    /// `cargo package` of every publishable crate (verified), and a scratch project outside
    /// the workspace on the packaged rqueue alone.
    Package,
    /// Everything CI checks: fmt, clippy -D warnings, layers, docs, features, packages, the
    /// whole test matrix.
    Ci,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Up {
            topology,
            backend,
            image,
            password,
            username,
            secure,
        } => up(topology.into(), backend, image, password, username, secure),
        Cmd::Down { topology } => down(topology.into_iter().map(Kind::from).collect()),
        Cmd::Status => status(),
        Cmd::Env => env(),
        Cmd::Test {
            topologies,
            backend,
            image,
            secure,
            extra,
        } => test(
            &Progress(Instant::now()),
            &topologies,
            backend,
            image,
            secure,
            &extra,
        ),
        Cmd::Bench { extra } => bench(&extra),
        Cmd::Demo => demo(),
        Cmd::Layers { edges } => check_layers(edges, true),
        Cmd::Features => package::features(&Progress(Instant::now())),
        Cmd::Package => package::package(&Progress(Instant::now())),
        Cmd::Ci => ci(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn state_dir() -> PathBuf {
    project_root().join("target").join("redkit")
}

struct Progress(Instant);

impl Progress {
    fn say(&self, msg: impl std::fmt::Display) {
        eprintln!("[xtask {:>6.1}s] {msg}", self.0.elapsed().as_secs_f64());
    }
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(project_root());
    c
}

fn run(cmd: &mut Command) -> Result {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|d| d.join(bin).is_file())
}

/// Makes sure redis-server and redis-cli exist: installs them with apt-get on a Debian-like
/// machine when running as root, otherwise explains how.
fn ensure_redis(p: &Progress) -> Result {
    if std::env::var_os("REDKIT_REDIS_SERVER").is_some()
        || (on_path("redis-server") && on_path("redis-cli"))
    {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if on_path("apt-get") && root {
        p.say("redis-server / redis-cli not found: installing Debian's redis-server package (apt-get)");
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "redis-server", "redis-tools"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        return Ok(());
    }
    Err("redis-server was not found. Install it, e.g. `sudo apt-get install -y redis-server` (Debian/Ubuntu), \
         `brew install redis` (macOS), or set REDKIT_REDIS_SERVER=/path/to/redis-server"
        .into())
}

/// The console's tests drive Debian's chromium over WebDriver and check its alert rules and
/// `/metrics` with promtool: install them the way redis-server is (root + apt-get), or say
/// how.
fn ensure_console_tools(p: &Progress) -> Result {
    // The browser tests take any of these browsers (tests/common/browser.rs).
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .any(on_path);
    let missing: Vec<&str> = [
        (browser, "chromium"),
        (on_path("chromedriver"), "chromium-driver"),
        (on_path("promtool"), "prometheus"),
    ]
    .into_iter()
    .filter(|(found, _)| !found)
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if on_path("apt-get") && root {
        p.say(format!(
            "the console's browser and alerting tests need {}: installing them (apt-get)",
            missing.join(", ")
        ));
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        return Ok(());
    }
    Err(format!(
        "the console's tests need {} (chromium, chromedriver, promtool on PATH): \
         `sudo apt-get install -y {}` on Debian/Ubuntu",
        missing.join(", "),
        missing.join(" ")
    ))
}

fn backends(arg: BackendArg, image: Option<String>, p: &Progress) -> Vec<Backend> {
    match arg {
        BackendArg::Process => vec![Backend::Process],
        BackendArg::Docker => vec![Backend::Docker { image }],
        BackendArg::Auto => {
            if testkit::docker::available() {
                vec![Backend::Process, Backend::Docker { image }]
            } else {
                p.say("no Docker engine answers: running the process backend only");
                vec![Backend::Process]
            }
        }
    }
}

fn start(kind: Kind, backend: &Backend, secure: bool, p: &Progress) -> Result<Topology> {
    let what = if secure { " (TLS + ACL)" } else { "" };
    p.say(format!("{}/{kind}{what}: starting", backend.name()));
    let t = Instant::now();
    let mut spec = Spec::new(kind).backend(backend.clone());
    if secure {
        spec = testkit::secure_spec(spec);
    }
    let topo = Topology::start(spec).map_err(|e| e.to_string())?;
    p.say(format!(
        "{}/{kind}: ready in {:.1}s at {}",
        backend.name(),
        t.elapsed().as_secs_f64(),
        topo.url()
    ));
    Ok(topo)
}

fn up(
    kind: Kind,
    backend: BackendArg,
    image: Option<String>,
    password: Option<String>,
    username: Option<String>,
    secure: bool,
) -> Result {
    let p = Progress(Instant::now());
    let path = state_dir().join(format!("{kind}.json"));
    if path.exists() {
        return Err(format!(
            "a {kind} topology is already up (see `cargo xtask status`); `cargo xtask down {kind}` first"
        ));
    }
    let backend = match backend {
        BackendArg::Process => Backend::Process,
        BackendArg::Docker => Backend::Docker { image },
        BackendArg::Auto => backends(BackendArg::Auto, image, &p)
            .pop()
            .unwrap_or(Backend::Process),
    };
    if backend == Backend::Process {
        ensure_redis(&p)?;
    }
    let mut spec = Spec::new(kind).backend(backend.clone());
    if let Some(pw) = &password {
        spec = spec.auth(username.as_deref(), pw);
    }
    if secure {
        spec = testkit::secure_spec(spec);
    }
    p.say(format!("{}/{kind}: starting", backend.name()));
    let topo = Topology::start(spec).map_err(|e| e.to_string())?;
    let state = topo.detach();
    std::fs::create_dir_all(state_dir()).map_err(|e| e.to_string())?;
    let json = serde_json_string(&state)?;
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    p.say(format!("{kind} is up: {}", state.url));
    println!("export {}='{}'", kind.url_var(), state.url);
    Ok(())
}

fn serde_json_string(state: &State) -> Result<String> {
    serde_json::to_string_pretty(state).map_err(|e| e.to_string())
}

fn states() -> Vec<(PathBuf, State)> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        let path = state_dir().join(format!("{kind}.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            match serde_json::from_str::<State>(&text) {
                Ok(s) => out.push((path, s)),
                Err(e) => eprintln!("ignoring unreadable {}: {e}", path.display()),
            }
        }
    }
    out
}

fn down(kinds: Vec<Kind>) -> Result {
    let p = Progress(Instant::now());
    let all = states();
    if all.is_empty() {
        p.say("nothing is up");
    }
    for (path, state) in all {
        if kinds.is_empty() || kinds.contains(&state.kind) {
            Topology::stop_detached(&state);
            std::fs::remove_file(&path).ok();
            p.say(format!("{} ({}) stopped", state.kind, state.backend));
        }
    }
    Ok(())
}

fn status() -> Result {
    let all = states();
    if all.is_empty() {
        println!(
            "no topology is up (start one with `cargo xtask up <standalone|sentinel|cluster>`)"
        );
    }
    for (_, s) in all {
        println!("{} ({}): {}", s.kind, s.backend, s.url);
        for n in &s.nodes {
            let up = n.answers();
            println!(
                "  {:<12} {:<22} {}",
                n.name,
                n.addr,
                if up { "answers" } else { "DOWN" }
            );
        }
    }
    Ok(())
}

fn env() -> Result {
    let all = states();
    if all.is_empty() {
        return Err(
            "no topology is up: `cargo xtask up <standalone|sentinel|cluster>` first".into(),
        );
    }
    for (_, s) in all {
        println!("export {}='{}'", s.kind.url_var(), s.url);
    }
    Ok(())
}

/// The test binaries whose tests start topologies of their own (faults, own servers): a secure
/// pass leaves them out, it re-runs the suites on the shared topologies.
const OWN_TOPOLOGY_BINARIES: &[&str] = &[
    "failover",
    "crash",
    "backlog",
    "topologies",
    "links",
    "connect",
    "tls",
    "acl",
    "diag",
];

fn test_runner(extra: &[String], skipped: &[Kind], secure: bool) -> Command {
    let nextest = cargo()
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut cmd = cargo();
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        let mut filters = Vec::new();
        if !skipped.is_empty() {
            let names: Vec<&str> = skipped.iter().map(|k| k.name()).collect();
            filters.push(format!("not test(/^({})::/)", names.join("|")));
        }
        if secure {
            filters.push("test(/^(standalone|sentinel|cluster)::/)".to_string());
            for b in OWN_TOPOLOGY_BINARIES {
                filters.push(format!("not binary({b})"));
            }
        }
        if !filters.is_empty() {
            cmd.args(["-E", &filters.join(" and ")]);
        }
        cmd.args(extra);
    } else {
        eprintln!(
            "cargo-nextest not found: using `cargo test` (install it with `cargo install cargo-nextest` for per-test isolation)"
        );
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
        let (runner_args, test_args) = match extra.iter().position(|a| a == "--") {
            Some(i) => (&extra[..i], &extra[i + 1..]),
            None => (extra, &[][..]),
        };
        cmd.args(runner_args).arg("--").args(test_args);
        for k in skipped {
            cmd.args(["--skip", &format!("{}::", k.name())]);
        }
        if secure {
            eprintln!(
                "without cargo-nextest the secure pass runs every test, own topologies included"
            );
        }
    }
    cmd
}

fn test(
    p: &Progress,
    topologies: &[TopologyArg],
    backend: BackendArg,
    image: Option<String>,
    secure: bool,
    extra: &[String],
) -> Result {
    ensure_redis(p)?;
    ensure_console_tools(p)?;
    let kinds: Vec<Kind> = if topologies.is_empty() {
        Kind::ALL.to_vec()
    } else {
        topologies.iter().copied().map(Kind::from).collect()
    };
    // Build first so server start-up is not counted against build time.
    p.say("building tests");
    run(cargo().args(["test", "--workspace", "--no-run", "--quiet"]))?;
    let skipped: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| !kinds.contains(k))
        .collect();
    let mut failures = Vec::new();
    if extra.is_empty() && !secure {
        // nextest does not run doctests; they need no servers.
        p.say("doctests");
        if let Err(e) = run(cargo().args(["test", "--workspace", "--doc", "--quiet"])) {
            failures.push(format!("doctests: {e}"));
        }
    }
    for backend in backends(backend, image, p) {
        let mut topos = Vec::new();
        for kind in &kinds {
            topos.push(start(*kind, &backend, secure, p)?);
        }
        p.say(format!(
            "{}: running the suite on {}",
            backend.name(),
            kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut cmd = test_runner(extra, &skipped, secure);
        cmd.env("REDKIT_BACKEND", backend.name());
        if secure {
            cmd.env("REDKIT_SECURE", "1");
        }
        if let Backend::Docker { image: Some(img) } = &backend {
            cmd.env("REDKIT_DOCKER_IMAGE", img);
        }
        for t in &topos {
            cmd.env(t.spec().kind.url_var(), t.url());
        }
        let result = run(&mut cmd);
        p.say(format!("{}: tearing down", backend.name()));
        drop(topos);
        match result {
            Ok(()) => p.say(format!("{}: suite passed", backend.name())),
            Err(e) => {
                p.say(format!("{}: suite FAILED", backend.name()));
                failures.push(format!("{} backend: {e}", backend.name()));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn bench(extra: &[String]) -> Result {
    let p = Progress(Instant::now());
    ensure_redis(&p)?;
    let topo = start(Kind::Standalone, &Backend::Process, false, &p)?;
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "benches", "--"])
        .args(extra)
        .env(Kind::Standalone.url_var(), topo.url());
    run(&mut cmd)
}

fn demo() -> Result {
    let p = Progress(Instant::now());
    p.say("building the examples");
    run(cargo().args(["build", "-p", "examples", "--examples", "--quiet"]))?;
    let user_env = ["REDIS_URL", "REDIS_MODE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let example = |name: &str, envs: &[(&str, String)]| -> Result {
        let mut cmd = cargo();
        cmd.args(["run", "--quiet", "-p", "examples", "--example", name]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    if user_env {
        p.say("REDIS_URL / REDIS_MODE set: running against your Redis");
        example("shop_demo", &[])?;
        return example("production_setup", &[]);
    }
    ensure_redis(&p)?;
    for kind in Kind::ALL {
        let topo = start(kind, &Backend::Process, false, &p)?;
        let envs: Vec<(&str, String)> = match kind {
            Kind::Standalone => {
                let a = topo.nodes()[0].addr;
                vec![
                    ("REDIS_MODE", "standalone".into()),
                    ("REDIS_HOST", a.ip().to_string()),
                    ("REDIS_PORT", a.port().to_string()),
                ]
            }
            Kind::Sentinel => vec![
                ("REDIS_MODE", "sentinel".into()),
                (
                    "REDIS_SENTINEL_HOST",
                    topo.sentinels()
                        .map(|s| s.addr.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                ("REDIS_SENTINEL_MASTER", topo.spec().master_name.clone()),
            ],
            Kind::Cluster => vec![
                ("REDIS_MODE", "cluster".into()),
                (
                    "REDIS_CLUSTER_HOST",
                    topo.data_nodes()
                        .take(3)
                        .map(|s| s.addr.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ],
        };
        p.say(format!(
            "{kind}: {}",
            envs.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        if kind == Kind::Standalone {
            p.say("the shop: cache, lock and queue together");
            example("shop_demo", &envs)?;
            p.say("production setup from the environment, on each topology");
        }
        example("production_setup", &envs)?;
    }
    Ok(())
}

/// `cargo xtask layers`: file lengths and module cycles (see `layers.rs`).
fn check_layers(edges: bool, print_summary: bool) -> Result {
    let (problems, summary) = layers::check(&project_root(), edges);
    if print_summary {
        for line in &summary {
            println!("{line}");
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} layering problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    }
}

fn ci() -> Result {
    let p = Progress(Instant::now());
    p.say("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    p.say("cargo clippy --all-targets -D warnings");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    p.say(format!(
        "layers: files under crates/*/src at most {} lines, module imports form a tree",
        layers::MAX_LINES
    ));
    check_layers(false, false)?;
    p.say("cargo doc --all-features, as docs.rs builds it (warnings are errors)");
    run(cargo()
        .args([
            "doc",
            "--workspace",
            "--no-deps",
            "--all-features",
            "--quiet",
        ])
        .env("RUSTDOCFLAGS", "-D warnings --cfg docsrs"))?;
    p.say("features: every library crate alone without defaults, with each feature, with all");
    package::features(&p)?;
    package::package(&p)?;
    p.say("test matrix");
    test(
        &p,
        &[],
        BackendArg::Auto,
        std::env::var("REDKIT_DOCKER_IMAGE").ok(),
        false,
        &[],
    )?;
    p.say("secure pass: the suites on TLS + ACL Sentinel and Cluster, each as its least-privilege user");
    test(
        &p,
        &[TopologyArg::Sentinel, TopologyArg::Cluster],
        BackendArg::Process,
        None,
        true,
        &[],
    )?;
    p.say("all checks passed");
    Ok(())
}
