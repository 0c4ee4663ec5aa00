//! What the rqueue test files share.

use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology};

/// A client for the shared topology of `kind` (started on first use), as the suite's user
/// ([`suite_client`]).
pub(crate) async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    (suite_client(topo).await, topo)
}

/// A new client as the suite's least-privilege user: on a secure topology (`REDKIT_SECURE=1`)
/// an ACL user `rqueue-suite-<pid>` with `rqueue::acl_rule_in("t:rq", "*")`, which covers
/// every test queue (namespace `t:rq`); otherwise the topology's URL. Checks that need other
/// commands connect to `t.url()` (full rights). One user per test process: `url_for` gives
/// each process its own password and resets the user's passwords, so processes sharing one
/// name (nextest runs each test in its own) would lock each other out.
pub(crate) async fn suite_client(t: &SharedTopology) -> RedisClient {
    let user = format!("rqueue-suite-{}", std::process::id());
    let rule = rqueue::acl_rule_in("t:rq", "*").to_string();
    let url = tokio::task::block_in_place(|| t.url_for(&user, &rule))
        .unwrap_or_else(|e| panic!("suite user: {e}"));
    RedisClient::connect(RedisConfig::from_url(&url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}
