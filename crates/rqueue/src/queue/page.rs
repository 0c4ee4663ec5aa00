//! Reading a page of a set of stored messages (the dead set or the completed list), shared
//! by [`Queue::dead_letters`] and [`Queue::completed`].

use std::time::Duration;

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::core::Queue;
use crate::error::Error;

static DEAD_PAGE: Script = Script::new("rqueue_dead_page", include_str!("../lua/dead_page.lua"));

/// One entry of [`Queue::page`]: id, time (the set's score), reason, message.
pub(super) type PageEntry<T> = (String, std::time::SystemTime, String, Result<T, String>);

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// A page of a sorted set of stored messages (the dead or the completed set), with the
    /// score as a time, the recorded reason and the decoded message.
    pub(super) async fn page(
        &self,
        set: &str,
        offset: usize,
        count: usize,
        order: &str,
    ) -> Result<Vec<PageEntry<T>>, Error> {
        let k = &self.inner.keys;
        let reply: Vec<Value> = DEAD_PAGE
            .run(
                self.inner.redis.pool(),
                vec![set, k.jobs.as_str(), k.reasons.as_str()],
                vec![
                    Value::from(offset as i64),
                    Value::from(count.max(1) as i64),
                    Value::from(order),
                ],
            )
            .await?;
        let mut out = Vec::new();
        for d in reply.chunks(4) {
            let [id, at, reason, payload] = d else {
                return Err(Error::Protocol(format!("page reply {d:?}")));
            };
            let ms = at
                .as_string()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            out.push((
                id.as_string().unwrap_or_default(),
                std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0.0) as u64),
                reason.as_string().unwrap_or_default(),
                rmp_serde::from_slice::<T>(payload.as_bytes().unwrap_or_default())
                    .map_err(|e| e.to_string()),
            ));
        }
        Ok(out)
    }
}
