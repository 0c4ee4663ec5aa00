//! The doctor over TLS and as its least-privilege user: a TLS + ACL Cluster (mutual TLS,
//! host-name-only certificates) and a TLS Sentinel, each checked healthy on every node, then
//! with provoked TLS problems (a certificate valid for 3 days, one for 20, an expired one, TLS
//! 1.1 enabled, `tls-auth-clients no`); and every right of `acl_rule()` removed in turn.

use std::time::Duration;

use redis_conn::RedisConfig;
use redis_diag::{
    BigKeyOptions, Error, Report, Scope, Severity, acl_rule, big_keys, big_keys_acl_rule, diagnose,
    sentinel_acl_rule,
};
use testkit::resp::Reply;
use testkit::{Kind, Spec, TlsSpec, Topology, Validity};

use super::{has, quick, raw, run, start, summary};

fn start_topology(spec: Spec) -> Topology {
    tokio::task::block_in_place(|| Topology::start(spec)).unwrap_or_else(|e| panic!("{e}"))
}

fn cmd(topo: &Topology, node: &str, args: &[&str]) -> Reply {
    let n = topo.node(node).expect("node");
    tokio::task::block_in_place(|| n.cmd(args)).unwrap_or_else(|e| panic!("{node} {args:?}: {e}"))
}

/// Criticals a healthy testkit topology has anyway: testkit enables DEBUG on data nodes (for
/// its faults) and leaves the sentinels without a password.
fn expected_critical(check: &str, role: &str) -> bool {
    check == "config.enable-debug-command" || (check == "auth.nopass" && role == "sentinel")
}

/// Every node reachable, a valid certificate on each, no critical finding but the expected.
fn assert_healthy(r: &Report, nodes: usize) {
    assert_eq!(r.nodes.len(), nodes, "{:?}", r.nodes);
    assert!(r.nodes.iter().all(|n| n.reachable), "{:?}", r.nodes);
    let certs = r.of("tls.certificate-expiry");
    assert_eq!(certs.len(), nodes, "{}", summary(r));
    assert!(
        certs.iter().all(|f| f.severity == Severity::Ok),
        "{}",
        summary(r)
    );
    let unexpected: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical && !expected_critical(&f.check, &f.role))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}

/// `(check, node, severity)` of the findings that do not change between two runs a few
/// seconds apart, nor with the user the doctor runs as.
fn stable(r: &Report) -> Vec<(String, String, Severity)> {
    const VOLATILE: &[&str] = &[
        "latency.ping",
        "slowlog",
        "latency.monitor",
        "clients.maxclients",
        "replication.link",
        "replication.replica-lag",
        "keyspace.hit-ratio",
        "stats.blocked-clients",
        // About the user the doctor runs as (see the crate docs).
        "commands.dangerous",
    ];
    let mut v: Vec<_> = r
        .findings
        .iter()
        .filter(|f| !VOLATILE.contains(&f.check.as_str()))
        .map(|f| (f.check.clone(), f.node.clone(), f.severity))
        .collect();
    v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    v
}

/// The commands `ACL LOG` shows refused for `user` on `node`.
fn refusals(topo: &Topology, node: &str, user: &str) -> Vec<String> {
    let log = cmd(topo, node, &["ACL", "LOG"]);
    log.items()
        .iter()
        .filter_map(|entry| {
            let fields = entry.items();
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0].text().as_deref() == Some(name))
                    .and_then(|kv| kv.get(1))
                    .and_then(Reply::text)
            };
            (field("username").as_deref() == Some(user))
                .then(|| format!("{:?} {:?}", field("reason"), field("object")))
        })
        .collect()
}

fn mentions(r: &Report, text: &str) -> bool {
    r.findings.iter().any(|f| {
        f.title.contains(text) || f.evidence.contains(text) || f.remediation.contains(text)
    })
}

fn on<'a>(r: &'a Report, check: &str, node: &str) -> Vec<&'a redis_diag::Finding> {
    r.of(check).into_iter().filter(|f| f.node == node).collect()
}

/// A TLS + ACL cluster (mutual TLS, certificates naming host names only, mapped with
/// `tls_hosts`): healthy for the admin and the least-privilege user alike (and nothing
/// refused to the latter), the missing right named when `config|get`, `cluster|info` or
/// `cluster|nodes` is taken away; then certificates valid for 3 and 20 days, TLS 1.1 and
/// `tls-auth-clients no` on four nodes, and finally an expired certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_checked_on_every_node_and_its_tls_problems_are_found() {
    let rule = acl_rule();
    let topo = start_topology(
        Spec::from_env(Kind::Cluster)
            .expect("backend")
            .tls(TlsSpec {
                ip_sans: false,
                ..TlsSpec::mutual()
            })
            .auth(Some("admin"), "admin-pw-0123456789")
            .user("diag", "diag-pw-0123456789", &rule.to_string())
            .user(
                "diag-noconfig",
                "diag-pw-0123456789",
                &rule.clone().without_command("config|get").to_string(),
            )
            .user(
                "diag-noclusterinfo",
                "diag-pw-0123456789",
                &rule.clone().without_command("cluster|info").to_string(),
            )
            .user(
                "diag-bigkeys",
                "diag-pw-0123456789",
                &big_keys_acl_rule().to_string(),
            )
            .user(
                "diag-nonodes",
                "diag-pw-0123456789",
                &rule.clone().without_command("cluster|nodes").to_string(),
            ),
    );
    let names: Vec<String> = topo.data_nodes().map(|n| n.name.clone()).collect();
    let addr = |name: &str| topo.node(name).expect("node").addr.to_string();

    // Healthy, as the admin.
    let admin = run(&topo.url(), Scope::All).await;
    assert_healthy(&admin, 6);
    for check in ["tls.protocols", "tls.auth-clients"] {
        let ok = admin
            .of(check)
            .iter()
            .filter(|f| f.severity == Severity::Ok)
            .count();
        assert_eq!(ok, 6, "{check}: {}", summary(&admin));
    }
    assert!(!mentions(&admin, "needs +"), "{}", summary(&admin));

    // The same as the least-privilege user, with nothing refused to it.
    let least = run(&topo.url_as("diag", "diag-pw-0123456789"), Scope::All).await;
    assert_healthy(&least, 6);
    assert_eq!(stable(&least), stable(&admin), "{}", summary(&least));
    assert!(!mentions(&least, "needs +"), "{}", summary(&least));
    assert_eq!(
        least
            .of("commands.dangerous")
            .iter()
            .filter(|f| f.severity == Severity::Ok)
            .count(),
        6,
        "the doctor's own user can run no dangerous command: {}",
        summary(&least)
    );
    for n in &names {
        let refused = refusals(&topo, n, "diag");
        assert!(refused.is_empty(), "{n} refused to diag: {refused:?}");
    }

    // Without config|get: the configuration-based checks say so, on every node; the
    // certificate is still checked (it needs no right).
    let r = run(
        &topo.url_as("diag-noconfig", "diag-pw-0123456789"),
        Scope::All,
    )
    .await;
    assert!(r.nodes.iter().all(|n| n.reachable), "{:?}", r.nodes);
    for check in ["tls.protocols", "tls.auth-clients", "config.unavailable"] {
        let named: Vec<_> = r
            .of(check)
            .into_iter()
            .filter(|f| f.severity == Severity::Info && f.title.contains("+config|get"))
            .collect();
        assert_eq!(named.len(), 6, "{check}: {}", summary(&r));
        assert!(
            !has(&r, check, Severity::Ok),
            "no false ok: {}",
            summary(&r)
        );
    }
    assert_eq!(
        r.of("tls.certificate-expiry")
            .iter()
            .filter(|f| f.severity == Severity::Ok)
            .count(),
        6,
        "{}",
        summary(&r)
    );

    // Without cluster|info: cluster.state says which right it needs.
    let r = run(
        &topo.url_as("diag-noclusterinfo", "diag-pw-0123456789"),
        Scope::Health,
    )
    .await;
    let named = r
        .of("cluster.state")
        .iter()
        .filter(|f| f.severity == Severity::Info && f.title.contains("+cluster|info"))
        .count();
    assert_eq!(named, 6, "{}", summary(&r));

    // Without cluster|nodes the nodes cannot be found: a typed error naming the right.
    let cfg =
        RedisConfig::from_url(&topo.url_as("diag-nonodes", "diag-pw-0123456789")).expect("url");
    match diagnose(&cfg, Scope::All, &quick()).await {
        Err(Error::Redis(redis_conn::Error::NoPermission(m))) => {
            assert!(m.contains("+cluster|nodes"), "{m}")
        }
        other => panic!("expected NoPermission naming +cluster|nodes, got {other:?}"),
    }

    // Mutual TLS without a client certificate: no seed can be reached, a typed TLS error
    // says why.
    let cfg = RedisConfig::from_url(&topo.url_anonymous(false)).expect("url");
    match diagnose(&cfg, Scope::All, &quick()).await {
        Err(Error::Redis(redis_conn::Error::Tls { target, reason })) => {
            assert!(
                target.starts_with("rediss://") && reason.contains("client certificate"),
                "{target}: {reason}"
            )
        }
        other => panic!("expected a TLS error about the client certificate, got {other:?}"),
    }

    // Key sampling over TLS on every primary, as its own least-privilege user.
    let cfg =
        RedisConfig::from_url(&topo.url_as("diag-bigkeys", "diag-pw-0123456789")).expect("url");
    let r = Box::pin(big_keys(&cfg, &quick(), &BigKeyOptions::default()))
        .await
        .expect("big keys");
    assert_eq!(
        r.of("keys.sampled")
            .iter()
            .filter(|f| f.severity == Severity::Ok)
            .count(),
        3,
        "{}",
        summary(&r)
    );
    for n in &names {
        let refused = refusals(&topo, n, "diag-bigkeys");
        assert!(
            refused.is_empty(),
            "{n} refused to diag-bigkeys: {refused:?}"
        );
    }

    // Provoked problems, one per node.
    let (three, twenty, old, open) = (&names[0], &names[1], &names[2], &names[3]);
    tokio::task::block_in_place(|| {
        let n = topo.node(three).expect("node");
        topo.reissue_certificate(n, Validity::For(Duration::from_secs(3 * 86_400)))?;
        let n = topo.node(twenty).expect("node");
        topo.reissue_certificate(n, Validity::For(Duration::from_secs(20 * 86_400)))
    })
    .expect("re-issue certificates");
    cmd(
        &topo,
        old,
        &["CONFIG", "SET", "tls-protocols", "TLSv1.1 TLSv1.2"],
    );
    cmd(&topo, open, &["CONFIG", "SET", "tls-auth-clients", "no"]);
    let r = run(&topo.url(), Scope::All).await;
    assert!(r.nodes.iter().all(|n| n.reachable), "{:?}", r.nodes);
    let cert = |name: &str| {
        let found = on(&r, "tls.certificate-expiry", &addr(name));
        assert_eq!(found.len(), 1, "{name}: {}", summary(&r));
        found[0].clone()
    };
    let f = cert(three);
    assert_eq!(f.severity, Severity::Critical, "{f:?}");
    assert!(
        f.title.contains("expires in")
            && f.evidence.contains("not after 20")
            && f.evidence.contains(&format!("CN={three}.redkit.test")),
        "not-after date and subject: {f:?}"
    );
    let f = cert(twenty);
    assert_eq!(f.severity, Severity::Warning, "{f:?}");
    assert!(
        f.evidence.contains(&format!("CN={twenty}.redkit.test")),
        "{f:?}"
    );
    for n in &names[2..] {
        assert_eq!(cert(n).severity, Severity::Ok, "{n}: {}", summary(&r));
    }
    let f = on(&r, "tls.protocols", &addr(old));
    assert!(
        f.len() == 1 && f[0].severity == Severity::Warning && f[0].evidence.contains("TLSv1.1"),
        "{}",
        summary(&r)
    );
    let f = on(&r, "tls.auth-clients", &addr(open));
    assert!(
        f.len() == 1 && f[0].severity == Severity::Info && f[0].evidence.contains("no"),
        "{}",
        summary(&r)
    );
    assert_eq!(r.exit_code(), redis_diag::exit::CRITICAL);

    // An expired certificate: the doctor's own connection refuses it (node.tls, typed words,
    // naming the node) and the probe still dates it.
    let expired = &names[4];
    tokio::task::block_in_place(|| {
        topo.reissue_certificate(topo.node(expired).expect("node"), Validity::Expired)
    })
    .expect("re-issue an expired certificate");
    let r = run(&topo.url(), Scope::All).await;
    let node = addr(expired);
    let tls = on(&r, "node.tls", &node);
    assert!(
        tls.len() == 1
            && tls[0].severity == Severity::Critical
            && tls[0]
                .evidence
                .contains(&format!("TLS with rediss://{node} failed"))
            && tls[0].evidence.contains("expired"),
        "{}",
        summary(&r)
    );
    let f = on(&r, "tls.certificate-expiry", &node);
    assert!(
        f.len() == 1
            && f[0].severity == Severity::Critical
            && f[0].title.contains("expired")
            && f[0].evidence.contains(&format!("CN={expired}.redkit.test")),
        "{}",
        summary(&r)
    );
    assert!(
        r.nodes.iter().all(|n| n.reachable == (n.addr != node)),
        "{:?}",
        r.nodes
    );
}

/// A TLS Sentinel (certificates with IPs, `tls-auth-clients no`): every node — sentinels
/// included — reached over TLS and its certificate checked, the same findings for the
/// least-privilege user, the sentinels' own rule enough for the sentinels, and a refused
/// `SENTINEL REPLICAS` reported as replicas not checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_sentinel_is_checked_on_every_node_as_the_least_privilege_user() {
    let topo = start_topology(
        Spec::from_env(Kind::Sentinel)
            .expect("backend")
            .tls(TlsSpec::default())
            .auth(Some("admin"), "admin-pw-0123456789")
            .user("diag", "diag-pw-0123456789", &acl_rule().to_string()),
    );
    // The sentinels get a user of their own with the sentinel rule.
    let sentinels: Vec<String> = topo.sentinels().map(|n| n.name.clone()).collect();
    let sentinel_rule = sentinel_acl_rule().args();
    for s in &sentinels {
        let mut args = vec![
            "ACL",
            "SETUSER",
            "diag",
            "reset",
            "on",
            ">sentinel-pw-0123456789",
        ];
        args.extend(sentinel_rule.iter().map(String::as_str));
        cmd(&topo, s, &args);
    }
    let admin = run(&topo.url(), Scope::All).await;
    assert_healthy(&admin, 6);
    assert_eq!(
        admin
            .of("tls.auth-clients")
            .iter()
            .filter(|f| f.severity == Severity::Info)
            .count(),
        3,
        "tls-auth-clients no on every data node: {}",
        summary(&admin)
    );
    let url = format!(
        "{}&sentinel_username=diag&sentinel_password=sentinel-pw-0123456789",
        topo.url_as("diag", "diag-pw-0123456789")
    );
    let least = run(&url, Scope::All).await;
    assert_healthy(&least, 6);
    assert_eq!(stable(&least), stable(&admin), "{}", summary(&least));
    assert!(!mentions(&least, "needs +"), "{}", summary(&least));
    assert_eq!(
        least
            .of("sentinel.quorum")
            .iter()
            .filter(|f| f.severity == Severity::Ok)
            .count(),
        3,
        "{}",
        summary(&least)
    );
    for n in topo.nodes() {
        let refused = refusals(&topo, &n.name, "diag");
        assert!(
            refused.is_empty(),
            "{} refused to diag: {refused:?}",
            n.name
        );
    }

    // Without SENTINEL REPLICAS the replicas cannot be found: said, not silently skipped.
    for s in &sentinels {
        cmd(&topo, s, &["ACL", "SETUSER", "diag", "-sentinel|replicas"]);
    }
    let r = run(&url, Scope::All).await;
    assert_eq!(
        r.nodes.iter().filter(|n| n.role == "replica").count(),
        0,
        "{:?}",
        r.nodes
    );
    let f = r.of("topology.discovery");
    assert!(
        f.len() == 1
            && f[0].severity == Severity::Warning
            && f[0].title.contains("+sentinel|replicas"),
        "{}",
        summary(&r)
    );
}

/// `acl_rule()` is enough on a standalone server (nothing refused, no check reported as
/// missing a right), and each of its rights is needed: with one removed, the report names it
/// (and `latency.ping` is not a false critical without `+ping`). The cluster rights are
/// covered by the cluster test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_right_of_the_rule_is_needed_and_named_when_missing() {
    let s = start(&["--latency-monitor-threshold", "100"]);
    let rule = acl_rule();
    // The CLI prints the same rules, to paste into ACL SETUSER.
    for (flag, want) in [
        (None, rule.to_string()),
        (Some("--sentinel"), sentinel_acl_rule().to_string()),
        (Some("--bigkeys"), big_keys_acl_rule().to_string()),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_redis-diag"))
            .arg("acl-rule")
            .args(flag)
            .output()
            .expect("run redis-diag");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    }
    let setuser = |name: &str, rule: &redis_conn::AclRule| {
        let mut args = vec!["ACL", "SETUSER", name, "reset", "on", ">diag-pw-0123456789"];
        let rule_args = rule.args();
        args.extend(rule_args.iter().map(String::as_str));
        let reply = raw(s.port, &args);
        assert!(reply.starts_with("+OK"), "{reply}");
    };
    let url = |name: &str| format!("redis://{name}:diag-pw-0123456789@127.0.0.1:{}", s.port);
    setuser("diag", &rule);
    let full = run(&url("diag"), Scope::All).await;
    assert!(!mentions(&full, "needs +"), "{}", summary(&full));
    assert!(full.nodes.iter().all(|n| n.reachable), "{:?}", full.nodes);
    let log = raw(s.port, &["ACL", "LOG"]);
    assert!(!log.contains("diag"), "refused to diag: {log}");
    for (i, right) in rule.allowed_commands().iter().enumerate() {
        if right.starts_with("cluster|") {
            continue;
        }
        let user = format!("diag-{i}");
        setuser(&user, &rule.clone().without_command(right));
        let r = run(&url(&user), Scope::All).await;
        if right == "client|id" {
            // Only asked for by the client library at connect: nothing is lost, but the
            // refusal is logged.
            assert!(!mentions(&r, "needs +"), "{}", summary(&r));
            assert!(raw(s.port, &["ACL", "LOG"]).contains(&user));
            continue;
        }
        assert!(
            mentions(&r, &format!("+{right}")),
            "without +{right} the report must name it:\n{}",
            summary(&r)
        );
        assert!(
            r.nodes.iter().all(|n| n.reachable),
            "{right}: {:?}",
            r.nodes
        );
        if right == "ping" {
            assert!(
                !has(&r, "latency.ping", Severity::Critical),
                "{}",
                summary(&r)
            );
        }
    }

    // Key sampling: its own rule finds the key; without SCAN, TYPE or MEMORY USAGE the
    // sampling stops with a warning naming the right.
    let reply = raw(s.port, &["SET", "big", &"x".repeat(4096)]);
    assert!(reply.starts_with("+OK"), "{reply}");
    let bk_rule = big_keys_acl_rule();
    let sample = |user: String| async move {
        let cfg = RedisConfig::from_url(&url(&user)).expect("url");
        Box::pin(big_keys(&cfg, &quick(), &BigKeyOptions::default()))
            .await
            .expect("big keys")
    };
    setuser("bigkeys", &bk_rule);
    let r = sample("bigkeys".into()).await;
    assert!(has(&r, "keys.sampled", Severity::Ok), "{}", summary(&r));
    assert!(
        r.of("keys.big").iter().any(|f| f.title.contains("\"big\"")),
        "{}",
        summary(&r)
    );
    for right in ["scan", "type", "memory|usage"] {
        let user = format!("bigkeys-no-{}", right.replace('|', "-"));
        setuser(&user, &bk_rule.clone().without_command(right));
        let r = sample(user).await;
        let f = r.of("keys.sampled");
        assert!(
            f.len() == 1
                && f[0].severity == Severity::Warning
                && f[0].evidence.contains(&format!("+{right}")),
            "{right}: {}",
            summary(&r)
        );
    }
}
