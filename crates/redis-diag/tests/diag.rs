//! redis-diag against real servers: hardened and open servers, provoked health problems on
//! the right node, every topology, the CLI's JSON (validated against the schema), table and
//! exit codes; TLS topologies and the least-privilege rule in `diag/secure.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_conn::RedisConfig;
use redis_diag::{Options, Report, Scope, Severity, diagnose};
use testkit::Kind;

#[path = "diag/secure.rs"]
mod secure;

/// A redis-server process of our own on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One RESP command over a plain socket (setup only).
fn raw(port: u16, args: &[&str]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    send(&mut s, args)
}

/// One RESP command over an open socket; the reply's first read (setup only).
fn send(s: &mut TcpStream, args: &[&str]) -> String {
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).expect("write");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).to_string()
}

/// Polls `INFO replication` of `port` until it contains `line`.
fn wait_for_info(port: u16, line: &str, what: &str) {
    let started = Instant::now();
    while !raw(port, &["INFO", "replication"]).contains(line) {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(args: &[&str]) -> Server {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("redis-diag-test-{port}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--dir", dir.to_str().expect("utf-8 dir")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start redis-server ({e}): install it (`apt-get install -y redis-server`)")
    });
    let server = Server { child, port };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

fn quick() -> Options {
    let mut o = Options::default();
    o.pings = 5;
    o
}

async fn run(url: &str, scope: Scope) -> Report {
    let cfg = RedisConfig::from_url(url).expect("url");
    diagnose(&cfg, scope, &quick()).await.expect("diagnose")
}

fn has(report: &Report, check: &str, severity: Severity) -> bool {
    report.of(check).iter().any(|f| f.severity == severity)
}

fn summary(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} — {}",
                f.severity.name(),
                f.node,
                f.check,
                f.evidence
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// ACL user with a password, the default user off, protected-mode on, dangerous commands
/// denied by ACL (and FLUSHALL disabled): no critical security finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hardened_server_has_no_critical_security_finding() {
    let s = start(&[
        "--protected-mode",
        "yes",
        "--user",
        "default",
        "off",
        "--user",
        "app",
        "on",
        ">app-secret",
        "~*",
        "&*",
        "+@all",
        "-@dangerous",
        "--rename-command",
        "FLUSHALL",
        "",
    ]);
    let r = run(
        &format!("redis://app:app-secret@127.0.0.1:{}", s.port),
        Scope::Security,
    )
    .await;
    let critical: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .collect();
    assert!(critical.is_empty(), "{}", summary(&r));
    assert!(
        !has(&r, "commands.dangerous", Severity::Warning),
        "{}",
        summary(&r)
    );
    let json = redis_diag::render_json(&r);
    assert!(!json.contains("app-secret"), "the password never appears");
}

/// No password, protected mode off, DEBUG enabled, bound to 0.0.0.0 — inside a network
/// namespace of its own (`unshare -rn`: only a loopback interface exists there, so nothing is
/// exposed), checked by the CLI from inside it: each expected finding, exit code 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_server_in_its_own_network_namespace_shows_each_expected_finding() {
    let port = free_port();
    let diag = env!("CARGO_BIN_EXE_redis-diag");
    let script = format!(
        "ip link set lo up && \
         (redis-server --port {port} --bind 0.0.0.0 --protected-mode no --enable-debug-command yes \
            --save '' --appendonly no --dir /tmp >/dev/null 2>&1 &) && \
         for i in $(seq 100); do redis-cli -p {port} ping >/dev/null 2>&1 && break; sleep 0.05; done; \
         {diag} --url redis://127.0.0.1:{port} --format json security; code=$?; \
         redis-cli -p {port} shutdown nosave >/dev/null 2>&1; exit $code"
    );
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare ({e}): util-linux's unshare is needed"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.trim().is_empty(),
        "no report (this test needs util-linux's unshare, iproute2's ip and redis-cli); stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Report = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(out.status.code(), Some(2), "exit code for critical");
    for (check, severity) in [
        ("auth.nopass", Severity::Critical),
        ("network.protected-mode", Severity::Critical),
        ("network.tls", Severity::Warning),
        ("config.enable-debug-command", Severity::Critical),
        ("commands.dangerous", Severity::Warning),
    ] {
        assert!(
            has(&r, check, severity),
            "{check} {severity:?}:\n{}",
            summary(&r)
        );
    }
    let dangerous = &r.of("commands.dangerous")[0].evidence;
    for cmd in ["FLUSHALL", "CONFIG", "DEBUG", "SHUTDOWN"] {
        assert!(dangerous.contains(cmd), "{dangerous}");
    }
}

/// Health problems provoked for real, each found on the right node: memory filled to
/// maxmemory, a slow command in the slow log, a replica whose primary was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provoked_health_problems_are_found_on_the_right_node() {
    // Memory: 2 MB maxmemory filled until writes are refused.
    let full = start(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let value = "x".repeat(10_000);
    for i in 0..1000 {
        let reply = raw(full.port, &["SET", &format!("k{i}"), &value]);
        if reply.starts_with("-OOM") {
            break;
        }
    }
    // Slow command.
    let slow = start(&["--enable-debug-command", "yes"]);
    raw(slow.port, &["DEBUG", "SLEEP", "0.05"]);
    // A replica whose primary is killed.
    let mut primary = start(&[]);
    let replica = start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let started = Instant::now();
    while !raw(replica.port, &["INFO", "replication"]).contains("master_link_status:up") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replica never synced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    primary.child.kill().expect("kill -9 the primary");
    let _ = primary.child.wait();

    let r = run(&format!("redis://127.0.0.1:{}", full.port), Scope::Health).await;
    assert!(
        has(&r, "memory.maxmemory", Severity::Critical),
        "{}",
        summary(&r)
    );
    let r = run(&format!("redis://127.0.0.1:{}", slow.port), Scope::Health).await;
    let f = r.of("slowlog");
    assert!(
        f.iter()
            .any(|f| f.severity == Severity::Warning && f.evidence.contains("DEBUG SLEEP")),
        "{}",
        summary(&r)
    );
    assert!(!has(&r, "memory.maxmemory", Severity::Critical));
    let r = run(
        &format!("redis://127.0.0.1:{}", replica.port),
        Scope::Health,
    )
    .await;
    let link = r.of("replication.link");
    assert!(
        link.iter().any(|f| f.severity == Severity::Critical
            && f.node == format!("127.0.0.1:{}", replica.port)
            && f.role == "replica"),
        "{}",
        summary(&r)
    );
}

/// Every node of each shared topology is found and checked: 1 for standalone; the primary,
/// 2 replicas and 3 sentinels (whose quorum is fine) for Sentinel; 3 primaries and 3 replicas
/// for Cluster (state ok).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_every_topology_is_checked() {
    for (kind, expect) in [
        (Kind::Standalone, vec![("unknown", 0), ("primary", 1)]),
        (
            Kind::Sentinel,
            vec![("primary", 1), ("replica", 2), ("sentinel", 3)],
        ),
        (Kind::Cluster, vec![("primary", 3), ("replica", 3)]),
    ] {
        let topo =
            tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
        let r = run(topo.url(), Scope::All).await;
        assert!(
            r.nodes.iter().all(|n| n.reachable),
            "{kind:?}: {:?}",
            r.nodes
        );
        for (role, n) in expect {
            let got = r.nodes.iter().filter(|x| x.role == role).count();
            if role != "unknown" {
                assert_eq!(got, n, "{kind:?} {role}: {:?}", r.nodes);
            }
        }
        if kind == Kind::Sentinel {
            // The primary sees its two replicas online.
            assert_eq!(r.of("replication.replica-lag").len(), 2, "{}", summary(&r));
        }
        match kind {
            Kind::Sentinel => assert_eq!(
                r.of("sentinel.quorum")
                    .iter()
                    .filter(|f| f.severity == Severity::Ok)
                    .count(),
                3,
                "{}",
                summary(&r)
            ),
            Kind::Cluster => assert_eq!(
                r.of("cluster.state")
                    .iter()
                    .filter(|f| f.severity == Severity::Ok)
                    .count(),
                6,
                "{}",
                summary(&r)
            ),
            Kind::Standalone => {}
        }
    }
}

/// A cluster with a killed primary: the dead node is reported unreachable and marked failed
/// by its peers (critical), on that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_failed_node_is_reported() {
    let topo = tokio::task::block_in_place(|| {
        testkit::Topology::start(testkit::Spec::from_env(Kind::Cluster).expect("backend"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let victim = topo.primaries().expect("primaries")[0];
    let addr = victim.addr;
    tokio::task::block_in_place(|| topo.kill(victim)).expect("kill -9");
    // Wait until the others flag it as failed (node timeout 2 s).
    let url = topo.url();
    let started = Instant::now();
    let r = loop {
        let r = run(&url, Scope::Health).await;
        if !r.of("topology.failed-node").is_empty() {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never flagged: {}",
            summary(&r)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let node = addr.to_string();
    assert!(
        r.of("topology.failed-node")
            .iter()
            .any(|f| f.node == node && f.severity == Severity::Critical),
        "{}",
        summary(&r)
    );
    assert!(
        r.of("node.reachable").iter().any(|f| f.node == node),
        "{}",
        summary(&r)
    );
    assert_eq!(r.exit_code(), 2);
}

/// The CLI's JSON validates against `schema/report.v1.json`; the table fits 80 columns; exit
/// codes: 1 for a worst warning, 3 when nothing answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_json_matches_the_schema_table_fits_and_exit_codes_follow_severity() {
    let s = start(&[]); // default: no password on loopback → critical auth.nopass
    let diag = env!("CARGO_BIN_EXE_redis-diag");
    let url = format!("redis://127.0.0.1:{}", s.port);
    let out = Command::new(diag)
        .args(["--url", &url, "--format", "json", "check"])
        .output()
        .expect("run redis-diag");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/report.v1.json")).expect("the schema parses");
    let mut errors = Vec::new();
    validate(&schema, &json, "$", &mut errors);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_eq!(out.status.code(), Some(2));

    let table = Command::new(diag)
        .args(["--url", &url, "check"])
        .output()
        .expect("run redis-diag");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.lines().count() > 5, "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    assert!(
        text.contains("CRIT") && text.contains("auth.nopass"),
        "{text}"
    );

    // Health only: no security finding, and this server's worst health finding is a
    // warning (persistence off is not it: RDB snapshots are on by default) or info.
    let health = Command::new(diag)
        .args(["--url", &url, "--format", "json", "health"])
        .output()
        .expect("run redis-diag");
    let r: Report = serde_json::from_slice(&health.stdout).expect("json");
    assert!(r.of("auth.nopass").is_empty());
    assert_eq!(health.status.code(), Some(r.exit_code()));

    let nobody = Command::new(diag)
        .args([
            "--url",
            &format!("redis://127.0.0.1:{}", free_port()),
            "check",
        ])
        .output()
        .expect("run redis-diag");
    assert_eq!(nobody.status.code(), Some(3));
}

/// The JSON Schema keywords the report schema uses: type (incl. lists), required,
/// properties, additionalProperties: false, items, enum.
fn validate(
    schema: &serde_json::Value,
    v: &serde_json::Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    use serde_json::Value as J;
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            J::String(s) => vec![s.as_str()],
            J::Array(a) => a.iter().filter_map(J::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{path}: expected {types:?}, got {v}"));
            return;
        }
    }
    if let Some(J::Array(allowed)) = schema.get("enum")
        && !allowed.contains(v)
    {
        errors.push(format!("{path}: {v} not in {allowed:?}"));
    }
    if let (Some(J::Array(req)), J::Object(obj)) = (schema.get("required"), v) {
        for r in req.iter().filter_map(J::as_str) {
            if !obj.contains_key(r) {
                errors.push(format!("{path}: missing {r}"));
            }
        }
    }
    if let (Some(J::Object(props)), J::Object(obj)) = (schema.get("properties"), v) {
        for (k, val) in obj {
            match props.get(k) {
                Some(s) => validate(s, val, &format!("{path}.{k}"), errors),
                None if schema.get("additionalProperties") == Some(&J::Bool(false)) => {
                    errors.push(format!("{path}: unexpected property {k}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), J::Array(arr)) = (schema.get("items"), v) {
        for (i, item) in arr.iter().enumerate() {
            validate(items, item, &format!("{path}[{i}]"), errors);
        }
    }
}

/// `redis-diag serve` answers `GET /metrics` with Prometheus text: every sample line parses
/// (name, labels, value), redis_exporter names are there, findings are gauges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_is_scraped_over_http_and_parses_as_prometheus_text() {
    let s = start(&[]);
    let listen = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redis-diag"))
        .args([
            "--url",
            &format!("redis://127.0.0.1:{}", s.port),
            "serve",
            "--listen",
            &format!("127.0.0.1:{listen}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn redis-diag serve");
    let started = Instant::now();
    let response = loop {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", listen)) {
            c.set_read_timeout(Some(Duration::from_secs(10))).ok();
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("request");
            let mut body = String::new();
            c.read_to_string(&mut body).expect("response");
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the exporter never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut names = std::collections::HashSet::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                matches!(words.first(), Some(&"HELP") | Some(&"TYPE")),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("value of {line:?}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "metric name {name:?}"
        );
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels of {line:?}"));
            for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("label {pair:?} in {line:?}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{k}"
                );
                assert!(!v.contains('\n'));
            }
        }
        names.insert(name.to_string());
    }
    for expected in [
        "redis_up",
        "redis_memory_used_bytes",
        "redis_connected_clients",
        "redis_keyspace_hits_total",
        "redis_diag_check",
        "redis_diag_worst_severity",
    ] {
        assert!(names.contains(expected), "{expected} missing: {names:?}");
    }
    assert!(
        body.contains(&format!(
            "redis_up{{addr=\"127.0.0.1:{}\",role=\"unknown\"}} 1",
            s.port
        )) || body.contains(&format!("redis_up{{addr=\"127.0.0.1:{}\"", s.port)),
        "{body}"
    );
    assert!(
        body.contains("redis_diag_check{check=\"auth.nopass\""),
        "{body}"
    );
}

/// `redis-diag bigkeys` samples keys with SCAN + MEMORY USAGE: a 2 MB string among 500 small
/// keys is a warning, on its node; exit code 1. On a cluster the big key is reported by the
/// primary that holds its slot, and only there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_keys_are_found_by_sampling_on_the_node_that_holds_them() {
    let s = start(&[]);
    let blob = "b".repeat(2 * 1024 * 1024);
    raw(s.port, &["SET", "big:blob", &blob]);
    for i in 0..500 {
        raw(s.port, &["SET", &format!("small:{i}"), "v"]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_redis-diag"))
        .args([
            "--url",
            &format!("redis://127.0.0.1:{}", s.port),
            "--format",
            "json",
            "bigkeys",
        ])
        .output()
        .expect("run redis-diag");
    let r: Report = serde_json::from_slice(&out.stdout).expect("json");
    let big = r.of("keys.big");
    assert!(
        big.iter()
            .any(|f| f.severity == Severity::Warning && f.title.contains("big:blob")),
        "{}",
        summary(&r)
    );
    assert_eq!(
        big.iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
        1,
        "{}",
        summary(&r)
    );
    assert!(
        r.of("keys.sampled")[0].title.starts_with("501 keys"),
        "{}",
        summary(&r)
    );
    assert_eq!(out.status.code(), Some(1));

    // Cluster: the node that owns the slot reports it.
    let topo = tokio::task::block_in_place(|| testkit::shared(Kind::Cluster))
        .unwrap_or_else(|e| panic!("{e}"));
    let redis = redis_conn::RedisClient::connect(RedisConfig::from_url(topo.url()).expect("url"))
        .await
        .expect("connect");
    let key = testkit::unique_name("t:diag:big");
    {
        use fred::interfaces::{ClusterInterface, KeysInterface};
        let _: () = redis
            .pool()
            .set(&key, blob.as_str(), None, None, false)
            .await
            .expect("SET");
        let routing = redis.next().cached_cluster_state().expect("slot map");
        let owner = routing
            .get_server(redis_conn::keys::slot(key.as_bytes()))
            .expect("owner");
        let owner = format!("{}:{}", owner.host, owner.port);
        let mut bk = redis_diag::BigKeyOptions::default();
        bk.max_keys = 1_000_000;
        bk.pause = Duration::ZERO;
        let r = redis_diag::big_keys(
            &RedisConfig::from_url(topo.url()).expect("url"),
            &quick(),
            &bk,
        )
        .await
        .expect("big keys");
        let _: i64 = redis.pool().del(&key).await.expect("DEL");
        let ours: Vec<_> = r
            .of("keys.big")
            .into_iter()
            .filter(|f| f.title.contains(&key))
            .collect();
        assert_eq!(ours.len(), 1, "{}", summary(&r));
        assert_eq!(ours[0].node, owner);
        assert_eq!(r.of("keys.sampled").len(), 3, "one per primary");
    }
}

/// `appendonly yes` with `appendfsync no`: Redis never fsyncs the AOF (the OS flushes when it
/// likes) — a warning naming the setting and `everysec` as the fix; `everysec` is ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aof_that_redis_never_fsyncs_is_a_warning() {
    let never = start(&["--appendonly", "yes", "--appendfsync", "no"]);
    let r = run(&format!("redis://127.0.0.1:{}", never.port), Scope::Health).await;
    let f = r.of("persistence.aof-fsync");
    assert!(
        f.iter().any(|f| f.severity == Severity::Warning
            && f.evidence.contains("appendfsync no")
            && f.remediation.contains("appendfsync everysec")),
        "{}",
        summary(&r)
    );
    let everysec = start(&["--appendonly", "yes"]);
    let r = run(
        &format!("redis://127.0.0.1:{}", everysec.port),
        Scope::Health,
    )
    .await;
    assert!(
        has(&r, "persistence.aof-fsync", Severity::Ok),
        "{}",
        summary(&r)
    );
}

/// Connected clients against `maxclients 20`, before any connection is refused: ok when
/// idle, a warning with 17 idle connections (85 %), critical with 19 (95 %). The
/// diagnosis's own connection is not counted; the count is read over one of the held
/// connections, so no short-lived setup connection is still open when the doctor runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_near_maxclients_are_reported_before_any_is_refused() {
    let s = start(&["--maxclients", "20"]);
    let url = format!("redis://127.0.0.1:{}", s.port);
    let r = run(&url, Scope::Health).await;
    assert!(
        has(&r, "clients.maxclients", Severity::Ok),
        "{}",
        summary(&r)
    );
    let mut held: Vec<TcpStream> = Vec::new();
    for (count, expected) in [(17, Severity::Warning), (19, Severity::Critical)] {
        while held.len() < count {
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
            c.set_read_timeout(Some(Duration::from_secs(5))).ok();
            assert!(send(&mut c, &["PING"]).starts_with("+PONG"));
            held.push(c);
        }
        let started = Instant::now();
        while !send(&mut held[0], &["INFO", "clients"])
            .contains(&format!("connected_clients:{count}\r\n"))
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the server never counted {count} clients"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = run(&url, Scope::Health).await;
        let f = r.of("clients.maxclients");
        assert!(
            f.iter().any(|f| f.severity == expected
                && f.title.starts_with(&format!("{count} of 20"))
                && f.evidence.contains("maxclients 20")),
            "{count} connections:\n{}",
            summary(&r)
        );
        assert!(
            r.of("stats.rejected-connections").is_empty(),
            "{}",
            summary(&r)
        );
    }
}

/// `requirepass foobared` (the example of redis.conf) and an ACL user whose password is
/// `changeme`: each is a critical weak-password finding — compared by the SHA-256 hashes
/// `ACL LIST` shows — and neither password appears anywhere in the report. A short
/// `requirepass` is a warning that gives its length only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_and_short_passwords_are_flagged_without_being_printed() {
    let s = start(&[
        "--requirepass",
        "foobared",
        "--user",
        "ops",
        "on",
        ">changeme",
        "~*",
        "+@read",
    ]);
    let r = run(
        &format!("redis://:foobared@127.0.0.1:{}", s.port),
        Scope::Security,
    )
    .await;
    for user in ["default", "ops"] {
        assert!(
            r.of("auth.weak-password")
                .iter()
                .any(|f| f.severity == Severity::Critical
                    && f.title.contains(&format!("{user:?}"))
                    && f.evidence.contains("well-known")),
            "{user}:\n{}",
            summary(&r)
        );
    }
    let json = redis_diag::render_json(&r);
    for secret in ["foobared", "changeme"] {
        assert!(!json.contains(secret), "{secret} is printed:\n{json}");
    }

    let short = start(&["--requirepass", "Zq7-x91a"]);
    let r = run(
        &format!("redis://:Zq7-x91a@127.0.0.1:{}", short.port),
        Scope::Security,
    )
    .await;
    assert!(
        r.of("auth.weak-password")
            .iter()
            .any(|f| f.severity == Severity::Warning && f.evidence.contains("8 characters")),
        "{}",
        summary(&r)
    );
    assert!(!redis_diag::render_json(&r).contains("Zq7-x91a"));

    let strong = start(&["--requirepass", "kR4-vT9!pLw2#mQx"]);
    let r = run(
        &format!("redis://:kR4-vT9!pLw2%23mQx@127.0.0.1:{}", strong.port),
        Scope::Security,
    )
    .await;
    assert!(
        has(&r, "auth.weak-password", Severity::Ok)
            && !has(&r, "auth.weak-password", Severity::Warning)
            && !has(&r, "auth.weak-password", Severity::Critical),
        "{}",
        summary(&r)
    );
}

/// A replica started with `--replica-read-only no` accepts writes that are not replicated:
/// a warning on the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writable_replica_is_a_warning() {
    let primary = start(&[]);
    let replica = start(&[
        "--replicaof",
        "127.0.0.1",
        &primary.port.to_string(),
        "--replica-read-only",
        "no",
    ]);
    wait_for_info(
        replica.port,
        "master_link_status:up",
        "replica never synced",
    );
    let r = run(
        &format!("redis://127.0.0.1:{}", replica.port),
        Scope::Health,
    )
    .await;
    assert!(
        r.of("replication.writable-replica")
            .iter()
            .any(|f| f.severity == Severity::Warning && f.role == "replica"),
        "{}",
        summary(&r)
    );
    let r = run(
        &format!("redis://127.0.0.1:{}", primary.port),
        Scope::Health,
    )
    .await;
    assert!(r.of("replication.writable-replica").is_empty());
}

/// A replica in its first sync: the primary (disk-based sync) writes its RDB slowly —
/// `rdb-key-save-delay` 100 ms for each of 100 keys — so the replica sits in
/// `master_sync_in_progress:1` for 10 s. That is info, not a critical "link down", and no
/// negative duration (Redis's -1 for "unknown") is printed anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_in_its_first_sync_is_info_without_negative_durations() {
    /// Shuts the primary down cleanly, which also kills its saving child (a kill -9 of the
    /// parent would leave it writing on).
    struct ShutDown(Server);
    impl Drop for ShutDown {
        fn drop(&mut self) {
            let _ = raw(self.0.port, &["SHUTDOWN", "NOSAVE", "NOW"]);
        }
    }
    let primary = ShutDown(start(&[
        "--repl-diskless-sync",
        "no",
        "--rdb-key-save-delay",
        "100000",
        "--save",
        "",
    ]));
    for i in 0..100 {
        raw(primary.0.port, &["SET", &format!("k{i}"), "v"]);
    }
    let replica = start(&["--replicaof", "127.0.0.1", &primary.0.port.to_string()]);
    wait_for_info(
        replica.port,
        "master_sync_in_progress:1",
        "the replica never started its sync",
    );
    let r = run(&format!("redis://127.0.0.1:{}", replica.port), Scope::All).await;
    // The sync was still running after the diagnosis, so the doctor saw it.
    assert!(raw(replica.port, &["INFO", "replication"]).contains("master_sync_in_progress:1"));
    let link = r.of("replication.link");
    assert!(
        link.iter()
            .any(|f| f.severity == Severity::Info
                && f.evidence.contains("master_sync_in_progress 1")),
        "{}",
        summary(&r)
    );
    assert!(
        !link.iter().any(|f| f.severity == Severity::Critical),
        "{}",
        summary(&r)
    );
    let json = redis_diag::render_json(&r);
    for unit in [" s", " ms", " µs", "%"] {
        for n in 1..=2 {
            let bad = format!("-{n}{unit}");
            assert!(!json.contains(&bad), "{bad:?} printed:\n{json}");
        }
    }
    assert!(!json.contains("-0.00"), "{json}");
}

/// Exit codes through the CLI: a wrong password is an authentication failure (4, saying so),
/// as is a missing one; a port nobody listens on is unreachable (3); a malformed URL or a bad
/// flag is a usage error (5, not clap's 2, which means critical).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_tell_authentication_failures_unreachable_nodes_and_usage_errors_apart() {
    let s = start(&["--requirepass", "kR4-vT9pLw2mQx7z"]);
    let diag = env!("CARGO_BIN_EXE_redis-diag");
    let cli = |args: &[&str]| {
        let out = Command::new(diag)
            .args(args)
            .output()
            .expect("run redis-diag");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    for url in [
        format!("redis://:wrong-password@127.0.0.1:{}", s.port),
        format!("redis://127.0.0.1:{}", s.port),
    ] {
        let (code, text) = cli(&["--url", &url, "--format", "json", "check"]);
        assert_eq!(code, Some(4), "{url}: {text}");
        assert!(text.contains("authentication"), "{text}");
        assert!(!text.contains("does not answer"), "{text}");
        assert!(!text.contains("wrong-password"), "{text}");
        let r: Report = serde_json::from_str(text.trim()).expect("a JSON report");
        assert!(
            has(&r, "node.auth", Severity::Critical) && r.of("node.reachable").is_empty(),
            "{}",
            summary(&r)
        );
    }
    let (code, text) = cli(&[
        "--url",
        &format!("redis://127.0.0.1:{}", free_port()),
        "check",
    ]);
    assert_eq!(code, Some(3), "{text}");
    let (code, text) = cli(&["--url", "http://127.0.0.1:6379", "check"]);
    assert_eq!(code, Some(5), "{text}");
    let (code, text) = cli(&["--url", "redis://127.0.0.1:not-a-port", "check"]);
    assert_eq!(code, Some(5), "{text}");
    let (code, text) = cli(&["--format", "xml", "check"]);
    assert_eq!(code, Some(5), "{text}");
    let (code, text) = cli(&["--help"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Exit codes"), "{text}");
}
