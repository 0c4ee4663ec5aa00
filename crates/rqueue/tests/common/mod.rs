//! What the rqueue test files share.

use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology};

/// A client for the shared topology of `kind` (started on first use).
pub(crate) async fn shared(kind: Kind) -> (RedisClient, &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    let redis = RedisClient::connect(RedisConfig::from_url(topo.url()).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", topo.url()));
    (redis, topo)
}
