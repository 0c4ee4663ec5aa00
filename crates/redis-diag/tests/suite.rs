//! The doctor on each shared topology (standalone, sentinel, cluster), run as its
//! least-privilege user (`acl_rule()`): on a secure topology (`REDKIT_SECURE=1`: TLS only,
//! mutual TLS, host-name-only certificates, ACL) every node is reached over TLS with that
//! user, nothing is reported as missing a right and every certificate is valid; on a
//! plaintext one the same checks run without TLS findings.

use redis_conn::RedisConfig;
use redis_diag::{Options, Report, Severity, acl_rule, diagnose};
use testkit::{Kind, SharedTopology};

/// The URL of the doctor's least-privilege user on the shared topology of `kind` (the
/// topology's own URL on a plaintext one, which has no ACL).
async fn shared(kind: Kind) -> (String, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    let url = tokio::task::block_in_place(|| topo.url_for("redis-diag", &acl_rule().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    (url, topo)
}

fn summary(r: &Report) -> String {
    r.findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} — {} — {}",
                f.severity.name(),
                f.node,
                f.check,
                f.title,
                f.evidence
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Criticals a healthy testkit topology has anyway: DEBUG enabled on data nodes (for its
/// faults), open sentinels, and no password at all on plaintext topologies (which the docker
/// backend also binds beyond loopback with protected mode off).
fn expected_critical(check: &str, role: &str, secure: bool) -> bool {
    check == "config.enable-debug-command"
        || (check == "auth.nopass" && (role == "sentinel" || !secure))
        || (check == "network.protected-mode" && !secure)
}

testkit::topology_tests!(every_node_is_checked_as_the_least_privilege_user);

async fn every_node_is_checked_as_the_least_privilege_user(url: String, topo: &SharedTopology) {
    let secure = topo.is_secure();
    assert_eq!(secure, url.contains("redis-diag:"), "{}", topo.url());
    let cfg = RedisConfig::from_url(&url).expect("url");
    let mut opts = Options::default();
    opts.pings = 5;
    let r = Box::pin(diagnose(&cfg, redis_diag::Scope::All, &opts))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = match topo.kind {
        Kind::Standalone => 1,
        Kind::Sentinel | Kind::Cluster => 6,
    };
    assert_eq!(r.nodes.len(), expected, "{:?}", r.nodes);
    assert!(r.nodes.iter().all(|n| n.reachable), "{:?}", r.nodes);
    let unexpected: Vec<_> = r
        .findings
        .iter()
        .filter(|f| {
            f.severity == Severity::Critical && !expected_critical(&f.check, &f.role, secure)
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    let data_nodes = r.nodes.iter().filter(|n| n.role != "sentinel").count();
    let count = |check: &str, severity: Severity| {
        r.of(check)
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    };
    if secure {
        // Over TLS with mutual TLS: a valid certificate everywhere, sound settings on every
        // data node, and the rule is enough for every check.
        assert_eq!(
            count("tls.certificate-expiry", Severity::Ok),
            expected,
            "{}",
            summary(&r)
        );
        assert_eq!(
            count("tls.protocols", Severity::Ok),
            data_nodes,
            "{}",
            summary(&r)
        );
        assert_eq!(
            count("tls.auth-clients", Severity::Ok),
            data_nodes,
            "{}",
            summary(&r)
        );
        assert_eq!(
            count("network.tls", Severity::Warning),
            0,
            "{}",
            summary(&r)
        );
        let refused: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.title.contains("needs +"))
            .collect();
        assert!(refused.is_empty(), "the rule must be enough: {refused:#?}");
        assert_eq!(
            count("commands.dangerous", Severity::Ok),
            data_nodes,
            "the doctor's user can run no dangerous command: {}",
            summary(&r)
        );
    } else {
        // Plaintext: no TLS is used, so no TLS finding at all.
        assert!(
            r.findings
                .iter()
                .all(|f| !f.check.starts_with("tls.") && f.check != "node.tls"),
            "{}",
            summary(&r)
        );
    }
}
