//! Start-up behaviour: fail fast with errors that name the address, never the password; ACL
//! users on every topology.

mod common;

use std::time::{Duration, Instant};

use fred::prelude::*;
use redis_conn::{Error, RedisClient, RedisConfig};
use testkit::{Kind, Spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_fast_naming_the_address() {
    // A port nothing listens on (bound and released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = RedisConfig::from_url(&format!("redis://:Sekr1t@127.0.0.1:{port}")).expect("url");
    let start = Instant::now();
    let err = RedisClient::connect(config)
        .await
        .expect_err("nothing listens");
    let text = format!("{err} {err:?}");
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("Sekr1t"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "fail fast, took {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported_as_such_without_the_password() {
    let topo = common::own_spec(
        Spec::from_env(Kind::Standalone)
            .expect("backend")
            .auth(None, "right-pw"),
    );
    let addr = topo.nodes()[0].addr;
    let config = RedisConfig::from_url(&format!("redis://:Wr0ngPw@{addr}")).expect("url");
    let err = RedisClient::connect(config)
        .await
        .expect_err("wrong password");
    let text = format!("{err} {err:?}");
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(
        !text.contains("Wr0ngPw") && !text.contains("right-pw"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sentinel_service_name_fails_fast() {
    let (_, topo) = common::shared(Kind::Sentinel).await;
    let url = topo
        .url()
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/no-such-master"))
        .expect("url has a service name");
    let start = Instant::now();
    let err = RedisClient::connect(RedisConfig::from_url(&url).expect("url"))
        .await
        .expect_err("unknown master");
    let took = start.elapsed();
    let Error::Connect { target, reason } = &err else {
        panic!("expected a connect error, got {err:?}")
    };
    assert!(target.ends_with("/no-such-master"), "{target}");
    // fred's own answer (the sentinels know no such primary), not our start-up time limit.
    assert!(
        reason.contains("know no primary named \"no-such-master\""),
        "{reason}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}: {reason}");
    eprintln!("unknown master after {took:?}: {reason}");
}

/// An ACL user with a password works on each topology (sentinel: data nodes protected, the
/// sentinels open, as is common).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_users_connect_on_every_topology() {
    for kind in Kind::ALL {
        let topo = common::own_spec(
            Spec::from_env(kind)
                .expect("backend")
                .auth(Some("app"), "app-pw-123"),
        );
        let redis = RedisClient::connect(RedisConfig::from_url(&topo.url()).expect("url"))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let who: String = redis
            .next()
            .custom(fred::cmd!("ACL"), vec!["WHOAMI"])
            .await
            .expect("WHOAMI");
        assert_eq!(who, "app", "{kind}");
        let _: () = redis
            .pool()
            .set("{acl}:k", 1, None, None, false)
            .await
            .expect("SET");
        redis.quit().await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_replica_url_as_a_replica() {
    let topo = common::own(Kind::Sentinel);
    let primary = common::blocking(|| topo.current_primary().map(|n| n.addr)).expect("primary");
    let replica = topo.node("replica-1").expect("replica").addr;
    let redis =
        RedisClient::connect(RedisConfig::from_url(&format!("redis://{replica}")).expect("url"))
            .await
            .expect("connect to a replica");
    let h = redis_conn::health(&redis).await.expect("health");
    assert_eq!(h.nodes[0].role, "replica", "{h:?}");
    assert_eq!(
        h.nodes[0].primary.as_deref(),
        Some(primary.to_string().as_str()),
        "{h:?}"
    );
    assert!(h.nodes[0].ok, "{h:?}");
}

/// `redis://` pointed at a sentinel, or at one node of a cluster, is refused at connect with
/// the URL to use (before, it connected and every later command failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_url_pointed_at_a_sentinel_or_a_cluster_node_names_the_url_to_use() {
    for (kind, expected) in [
        (Kind::Sentinel, "redis-sentinel://"),
        (Kind::Cluster, "redis-cluster://"),
    ] {
        let (_, topo) = common::shared(kind).await;
        let node = match RedisConfig::from_url(topo.url()).expect("url").mode {
            redis_conn::Mode::Sentinel { sentinels, .. } => sentinels[0].clone(),
            redis_conn::Mode::Cluster { seeds } => seeds[0].clone(),
            other => panic!("{kind}: unexpected mode {other:?}"),
        };
        let url = format!("redis://{node}");
        let start = Instant::now();
        let err = RedisClient::connect(RedisConfig::from_url(&url).expect("url"))
            .await
            .expect_err("a sentinel / cluster node behind redis:// is refused");
        let Error::WrongTopology {
            target,
            found,
            hint,
        } = &err
        else {
            panic!("{kind}: expected WrongTopology, got {err:?}")
        };
        eprintln!("{kind}: {err}");
        assert_eq!(found, kind.name(), "{err}");
        assert!(target.contains(&node.to_string()), "{err}");
        assert!(hint.contains(&format!("{expected}{node}")), "{err}");
        if kind == Kind::Sentinel {
            let service = topo.url().rsplit('/').next().expect("service name");
            assert!(
                hint.contains(service),
                "the hint names the monitored service: {err}"
            );
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    // A standalone server behind redis:// still connects.
    let (_, topo) = common::shared(Kind::Standalone).await;
    RedisClient::connect(RedisConfig::from_url(topo.url()).expect("url"))
        .await
        .expect("standalone connects");
}

/// A one-node cluster that owns every slot (a dev server with `cluster-enabled yes`, a
/// single-shard managed cluster) answers every key from that node: `redis://` keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_node_cluster_that_owns_every_slot_still_connects_behind_redis_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--cluster-enabled", "yes", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install redis-server)");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut server);
    let cli = |args: &[&str]| {
        std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let start = Instant::now();
    while !cli(&["PING"]).contains("PONG") {
        assert!(start.elapsed() < Duration::from_secs(10), "server up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cli(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).contains("OK"));
    while !cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cluster state ok"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("redis://127.0.0.1:{port}");
    let redis = RedisClient::connect(RedisConfig::from_url(&url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("a one-node cluster behind redis:// connects: {e}"));
    for k in ["a", "b", "c", "{x}y"] {
        let _: () = redis
            .pool()
            .set(k, 1, None, None, false)
            .await
            .expect("SET");
    }
    redis.quit().await.ok();
}
