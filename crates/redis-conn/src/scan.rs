//! `SCAN` over the whole keyspace: every primary of a cluster, or the one server otherwise.

use std::collections::VecDeque;

use fred::interfaces::{ClusterInterface, KeysInterface};
use fred::prelude::Server;
use fred::types::{Key, Value};
use futures::Stream;
use tracing::Instrument;

use crate::client::RedisClient;
use crate::error::{Error, Result};

/// Scans every primary for keys matching `pattern`, yielding one page (≈ `count` keys) at a
/// time, so callers can delete or inspect in batches without `KEYS`.
///
/// On a cluster the primaries are taken from the client's current slot map; each is scanned to
/// the end of its own cursor. A node that fails mid-scan yields an error item and the stream
/// ends; scanning again is safe (SCAN guarantees keys present for the whole scan are returned
/// at least once, possibly more).
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
/// use futures::TryStreamExt;
/// let mut pages = std::pin::pin!(redis_conn::scan_keys(&redis, "shop:cache:*", 500));
/// while let Some(keys) = pages.try_next().await? {
///     println!("{} keys", keys.len());
/// }
/// # Ok(()) }
/// ```
pub fn scan_keys(
    client: &RedisClient,
    pattern: &str,
    count: u32,
) -> impl Stream<Item = Result<Vec<Key>>> + Send + 'static {
    let client = client.clone();
    let pattern = pattern.to_string();
    let nodes: Result<VecDeque<Option<Server>>> = if client.is_cluster() {
        client
            .next()
            .cached_cluster_state()
            .map(|s| s.unique_primary_nodes().into_iter().map(Some).collect())
            .ok_or_else(|| Error::Client("the cluster slot map is not known yet".into()))
    } else {
        Ok(VecDeque::from([None]))
    };
    let state = nodes.map(|n| (n, None::<String>));
    futures::stream::try_unfold(
        (state, client, pattern, count),
        |(state, client, pattern, count)| async move {
            let (mut nodes, mut cursor) = state?;
            loop {
                let Some(node) = nodes.front().cloned() else {
                    return Ok(None);
                };
                let start = cursor.clone().unwrap_or_else(|| "0".into());
                let span = tracing::debug_span!("redis.scan", node = ?node, cursor = %start);
                let reply: Value = match &node {
                    Some(server) => {
                        client
                            .next()
                            .with_cluster_node(server.clone())
                            .scan_page(start, pattern.clone(), Some(count), None)
                            .instrument(span)
                            .await?
                    }
                    None => {
                        client
                            .next()
                            .scan_page(start, pattern.clone(), Some(count), None)
                            .instrument(span)
                            .await?
                    }
                };
                let (next, keys) = parse_page(reply)?;
                if next == "0" {
                    nodes.pop_front();
                    cursor = None;
                } else {
                    cursor = Some(next);
                }
                if !keys.is_empty() {
                    return Ok(Some((keys, (Ok((nodes, cursor)), client, pattern, count))));
                }
            }
        },
    )
}

fn parse_page(reply: Value) -> Result<(String, Vec<Key>)> {
    let bad = || Error::Parse("SCAN reply is not [cursor, [keys]]".into());
    let Value::Array(mut parts) = reply else {
        return Err(bad());
    };
    if parts.len() != 2 {
        return Err(bad());
    }
    let keys = parts.pop().ok_or_else(bad)?;
    let cursor = parts.pop().ok_or_else(bad)?;
    let cursor = cursor.as_string().ok_or_else(bad)?;
    let Value::Array(keys) = keys else {
        return Err(bad());
    };
    let keys = keys
        .into_iter()
        .map(|k| k.as_bytes().map(Key::from).ok_or_else(bad))
        .collect::<Result<Vec<_>>>()?;
    Ok((cursor, keys))
}
