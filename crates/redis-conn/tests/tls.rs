//! TLS and ACL end to end: TLS-only topologies (standalone, Sentinel, Cluster) with throwaway
//! certificates, mutual TLS, host-name verification through a host mapping, and every way a
//! TLS or ACL set-up can be wrong, each refused with a typed error naming the address within
//! the connect timeout.

use std::time::Instant;

use fred::prelude::*;
use redis_conn::{AclRule, RedisClient, RedisConfig};
use testkit::{Kind, Spec, TlsSpec, Topology};

fn start(spec: Spec) -> Topology {
    Topology::start(spec).unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(url: &str) -> redis_conn::Result<RedisClient> {
    RedisClient::connect(RedisConfig::from_url(url)?).await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_smoke() {
    let rule = AclRule::connection().keys("t:*").commands(["get", "set"]);
    for kind in [Kind::Standalone, Kind::Sentinel, Kind::Cluster] {
        let t0 = Instant::now();
        let topo = start(
            Spec::from_env(kind)
                .expect("spec")
                .tls(TlsSpec {
                    ip_sans: false,
                    ..TlsSpec::mutual()
                })
                .auth(Some("admin"), "adm")
                .user("app", "app-pw", &rule.to_string()),
        );
        eprintln!("{kind} started in {:?}", t0.elapsed());
        let redis = connect(&topo.url_as("app", "app-pw"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        round_trip(&redis, "t:{a}").await;
        round_trip(&redis, "t:{b}").await;
        let h = redis_conn::health(&redis).await;
        eprintln!("health: {:?}", h.map(|h| h.primaries().count()));
        let n = testkit::resp::Conn::connect(
            topo.nodes()[0].addr,
            std::time::Duration::from_secs(1),
            None,
        );
        eprintln!("plain conn: {:?}", n.map(|_| ()));
        for node in topo.data_nodes() {
            let log = node.cmd(&["ACL", "LOG", "5"]).expect("acl log");
            eprintln!("{} acl log: {:?}", node.name, log);
        }
    }
}
