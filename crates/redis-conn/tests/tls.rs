//! TLS and ACL end to end on TLS-only servers (`port 0`, `tls-port`) with throwaway
//! certificates: mutual TLS, certificates that name host names only (verified through the
//! host mapping on Sentinel and Cluster, whose nodes are reached by IP), and every way a TLS or
//! ACL set-up can be wrong. Each bad case is refused with a typed error that names the address
//! and never the password, within the connect timeout + 1 s.

mod common;

use std::time::{Duration, Instant};

use common::{blocking, own_spec};
use fred::prelude::*;
use redis_conn::{AclRule, Error, RedisClient, RedisConfig, Script};
use testkit::{Kind, Spec, TlsSpec, Topology, Validity};

/// The connect timeout every bad-input case runs with.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const APP_PASSWORD: &str = "app-secret-7f3a";

fn spec(kind: Kind, tls: TlsSpec) -> Spec {
    Spec::from_env(kind)
        .expect("valid REDKIT_BACKEND")
        .tls(tls)
        .auth(Some("admin"), "admin-secret-19c2")
        .user("app", APP_PASSWORD, &app_rule().to_string())
}

/// What the `app` user may do: GET and SET on `app:*`, and run scripts.
fn app_rule() -> AclRule {
    AclRule::connection().keys("app:*").commands(["get", "set"])
}

fn with_timeout(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}connect_timeout_ms={}",
        CONNECT_TIMEOUT.as_millis()
    )
}

async fn connect(url: &str) -> redis_conn::Result<RedisClient> {
    Box::pin(RedisClient::connect(RedisConfig::from_url(url)?)).await
}

async fn round_trip(redis: &RedisClient, key: &str) {
    let _: () = redis
        .pool()
        .set(key, "v", Some(Expiration::EX(60)), None, false)
        .await
        .unwrap_or_else(|e| panic!("SET {key}: {e}"));
    let v: String = redis.pool().get(key).await.expect("GET");
    assert_eq!(v, "v");
}

/// Connects to `url`, expecting a refusal: returns the error after checking it came within
/// the connect timeout + 1 s, names `addr` and does not contain a password.
async fn refused(url: &str, addr: &str) -> Error {
    let start = Instant::now();
    let result = connect(&with_timeout(url)).await;
    let took = start.elapsed();
    let err = match result {
        Ok(_) => panic!("connecting to {addr} should have failed"),
        Err(e) => e,
    };
    let text = err.to_string();
    eprintln!("refused in {took:?}: {text}");
    assert!(
        took <= CONNECT_TIMEOUT + Duration::from_secs(1),
        "took {took:?} (limit: connect timeout {CONNECT_TIMEOUT:?} + 1 s): {text}"
    );
    assert!(
        text.contains(addr),
        "the error names the address {addr}: {text}"
    );
    for secret in [APP_PASSWORD, "admin-secret-19c2", "wrong-password-x"] {
        assert!(!text.contains(secret), "the error shows a password: {text}");
    }
    err
}

fn tls_reason(err: Error) -> String {
    match err {
        Error::Tls { reason, .. } => reason,
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

fn addr(topo: &Topology) -> String {
    topo.nodes()[0].addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate_and_serves_one_with_it() {
    for kind in [Kind::Standalone, Kind::Sentinel, Kind::Cluster] {
        let topo = own_spec(spec(kind, TlsSpec::mutual()));
        let url = topo.url_as("app", APP_PASSWORD);
        let redis = connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        round_trip(&redis, "app:{mtls}:a").await;
        round_trip(&redis, "app:{mtls}:b").await;
        redis.quit().await.ok();

        let without_cert = url.replace(&topo.tls_query().expect("tls"), &{
            let files = topo.tls_files().expect("tls");
            files.query(false)
        });
        let first = match kind {
            Kind::Sentinel => topo.sentinels().next().expect("sentinel").addr.to_string(),
            _ => addr(&topo),
        };
        let reason = tls_reason(refused(&without_cert, &first).await);
        assert!(
            reason.contains("requires a client certificate"),
            "{kind}: {reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_name_host_names_only_verify_through_the_host_mapping_on_every_topology()
{
    let tls = TlsSpec {
        ip_sans: false,
        ..TlsSpec::default()
    };
    for kind in [Kind::Standalone, Kind::Sentinel, Kind::Cluster] {
        let topo = own_spec(spec(kind, tls.clone()));
        // The harness URL maps every node's address to the name its certificate carries.
        let url = topo.url_as("app", APP_PASSWORD);
        assert!(url.contains("tls_hosts="), "{url}");
        let redis = connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{kind} with tls_hosts: {e}"));
        for i in 0..20 {
            round_trip(&redis, &format!("app:{{h{i}}}")).await;
        }
        redis.quit().await.ok();

        // One name for every node (every certificate also names nodes.redkit.test).
        let map = format!("&tls_hosts={}", topo.host_map());
        let one_name = url.replace(&map, "&tls_server_name=nodes.redkit.test");
        let redis = connect(&one_name)
            .await
            .unwrap_or_else(|e| panic!("{kind} with tls_server_name: {e}"));
        round_trip(&redis, "app:{one-name}").await;
        redis.quit().await.ok();

        // Without a mapping the IPs are checked against certificates that do not name them.
        let first = match kind {
            Kind::Sentinel => topo.sentinels().next().expect("sentinel").addr.to_string(),
            _ => addr(&topo),
        };
        let reason = tls_reason(refused(&url.replace(&map, ""), &first).await);
        assert!(reason.contains("does not name"), "{kind}: {reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_a_typed_tls_error_naming_the_address() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::default()));
    let other = own_spec(spec(Kind::Standalone, TlsSpec::default()));
    let url = topo.url_as("app", APP_PASSWORD).replace(
        &topo.tls_files().expect("tls").ca.display().to_string(),
        &other.tls_files().expect("tls").ca.display().to_string(),
    );
    let reason = tls_reason(refused(&url, &addr(&topo)).await);
    assert!(
        reason.contains("not signed by a CA this client trusts"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_server_certificate_is_a_typed_tls_error() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::default()));
    blocking(|| topo.reissue_certificate(&topo.nodes()[0], Validity::Expired))
        .expect("expired certificate");
    let reason = tls_reason(refused(&topo.url_as("app", APP_PASSWORD), &addr(&topo)).await);
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_a_typed_tls_error() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::default()));
    let url = format!(
        "{}&tls_server_name=db.elsewhere.example",
        topo.url_as("app", APP_PASSWORD)
    );
    let reason = tls_reason(refused(&url, &addr(&topo)).await);
    assert!(reason.contains("does not name"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_client_at_a_tls_port_is_told_to_use_rediss() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::default()));
    let url = format!("redis://app:{APP_PASSWORD}@{}", addr(&topo));
    let reason = tls_reason(refused(&url, &addr(&topo)).await);
    assert!(reason.contains("rediss://"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_at_a_plaintext_port_is_told_to_use_redis() {
    let topo = own_spec(
        Spec::from_env(Kind::Standalone)
            .expect("valid REDKIT_BACKEND")
            .auth(Some("admin"), "admin-secret-19c2"),
    );
    let url = format!("rediss://admin:admin-secret-19c2@{}", addr(&topo));
    let reason = tls_reason(refused(&url, &addr(&topo)).await);
    assert!(reason.contains("plaintext port"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_client_certificate_is_a_typed_tls_error_when_one_is_required() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::mutual()));
    let files = topo.tls_files().expect("tls").clone();
    let url = topo
        .url_as("app", APP_PASSWORD)
        .replace(&files.query(true), &files.query(false));
    let reason = tls_reason(refused(&url, &addr(&topo)).await);
    assert!(reason.contains("tls_cert"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_acl_password_over_tls_is_an_auth_failure_without_the_password() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::mutual()));
    let url = topo.url_as("app", "wrong-password-x");
    match refused(&url, &addr(&topo)).await {
        Error::Connect { reason, .. } => {
            assert!(reason.contains("authentication failed"), "{reason}")
        }
        other => panic!("expected Error::Connect (authentication), got {other:?}"),
    }
}

static BUMP: Script = Script::new("bump", "return redis.call('INCR', KEYS[1])");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_or_key_is_a_typed_no_permission_error_naming_it() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::mutual()));
    let admin = connect(&topo.url()).await.expect("admin");
    let _: () = admin
        .pool()
        .set("other:kept", "1", None, None, false)
        .await
        .expect("SET as admin");
    let redis = connect(&topo.url_as("app", APP_PASSWORD))
        .await
        .expect("app user");

    let start = Instant::now();
    let err: Error = redis
        .pool()
        .del::<i64, _>("app:x")
        .await
        .map_err(Error::from)
        .expect_err("DEL is not granted");
    assert!(start.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(1));
    match &err {
        Error::NoPermission(m) => assert!(m.contains("'del'"), "names the command: {m}"),
        other => panic!("expected NoPermission, got {other:?}"),
    }

    let err: Error = redis
        .pool()
        .get::<Option<String>, _>("other:kept")
        .await
        .map_err(Error::from)
        .expect_err("other:* is not granted");
    assert!(matches!(err, Error::NoPermission(_)), "{err:?}");

    // Inside a script: INCR is not granted; the error names the script and its key.
    let err = BUMP
        .run::<i64, _, _, _>(redis.pool(), vec!["app:{bump}:n"], Vec::<String>::new())
        .await
        .expect_err("INCR is not granted");
    match &err {
        Error::NoPermission(m) => {
            assert!(
                m.contains("script bump") && m.contains("app:{bump}:n"),
                "{m}"
            )
        }
        other => panic!("expected NoPermission, got {other:?}"),
    }
    // Nothing was changed by the refused calls.
    let kept: Option<String> = admin.pool().get("other:kept").await.expect("GET");
    assert_eq!(kept.as_deref(), Some("1"));
    let n: Option<i64> = admin.pool().get("app:{bump}:n").await.expect("GET");
    assert_eq!(n, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_or_mismatched_tls_files_are_config_errors_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing-ca.pem");
    let cfg = RedisConfig::from_url(&format!("rediss://h:1?tls_ca={}", missing.display()))
        .expect("parses: the file is read at connect");
    let err = RedisClient::connect(cfg).await.expect_err("missing CA");
    let text = err.to_string();
    assert!(
        text.contains("tls_ca") && text.contains("missing-ca.pem"),
        "{text}"
    );

    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    let cfg = RedisConfig::from_url(&format!("rediss://h:1?tls_ca={}", not_pem.display()))
        .expect("parses");
    let text = RedisClient::connect(cfg)
        .await
        .expect_err("not PEM")
        .to_string();
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");

    let text = RedisConfig::from_url("rediss://h:1?tls_cert=/c.pem")
        .expect_err("certificate without key")
        .to_string();
    assert!(text.contains("tls_key"), "{text}");
    let text = RedisConfig::from_url("redis://h:1?tls_ca=/ca.pem")
        .expect_err("TLS settings on a plaintext URL")
        .to_string();
    assert!(text.contains("rediss://"), "{text}");
    let text = RedisConfig::from_url("rediss://h:1?tls_hosts=10.0.0.1")
        .expect_err("a host map entry without a name")
        .to_string();
    assert!(text.contains("address=name"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_with_their_own_user_over_tls_need_its_credentials() {
    let topo = own_spec(
        spec(Kind::Sentinel, TlsSpec::mutual()).sentinel_auth("watcher", "watcher-secret-55"),
    );
    let url = topo.url_as("app", APP_PASSWORD);
    assert!(url.contains("sentinel_username=watcher"), "{url}");
    let redis = connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    round_trip(&redis, "app:{sentinel-auth}").await;
    redis.quit().await.ok();

    let first = topo.sentinels().next().expect("sentinel").addr.to_string();
    let wrong = url.replace("watcher-secret-55", "wrong-password-x");
    match refused(&wrong, &first).await {
        Error::Connect { reason, .. } => assert!(
            reason.contains("sentinel") && reason.contains("authentication failed"),
            "{reason}"
        ),
        other => panic!("expected Error::Connect (sentinel authentication), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscribe_is_a_typed_no_permission_error() {
    let topo = own_spec(spec(Kind::Standalone, TlsSpec::default()));
    let redis = connect(&topo.url_as("app", APP_PASSWORD))
        .await
        .expect("app user");
    let err = redis
        .listen("other:events", |_| std::ops::ControlFlow::Continue(()))
        .await
        .expect_err("the app user has no channel");
    assert!(matches!(err, Error::NoPermission(_)), "{err:?}");
    assert!(err.to_string().contains("other:events"), "{err}");
}
