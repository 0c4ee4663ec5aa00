//! Lists of a queue's messages ([`List`], [`MessageRow`], [`Console::messages`]).

use fred::interfaces::SortedSetsInterface;
use fred::types::Value;
use futures::StreamExt;
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;
use crate::millis::ms;
use crate::payload::Payload;
use crate::queue_ref::QueueRef;

/// Which messages of a queue to list ([`Console::messages`]).
///
/// ```
/// assert_eq!("dead".parse::<redkit_console::List>().unwrap(), redkit_console::List::Dead);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum List {
    /// Ready, in the order they are served.
    Ready,
    /// Waiting for their due time, soonest first.
    Delayed,
    /// Leased to workers, oldest lease deadline first.
    InFlight,
    /// The dead set, oldest first.
    Dead,
    /// Recently completed (when the queue keeps them), newest first.
    Completed,
}

impl List {
    /// Every list, in display order.
    pub const ALL: [List; 5] = [
        List::Ready,
        List::Delayed,
        List::InFlight,
        List::Dead,
        List::Completed,
    ];

    /// The list's name in URLs and the CLI.
    ///
    /// ```
    /// assert_eq!(redkit_console::List::InFlight.name(), "in_flight");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            List::Ready => "ready",
            List::Delayed => "delayed",
            List::InFlight => "in_flight",
            List::Dead => "dead",
            List::Completed => "completed",
        }
    }
}

impl std::str::FromStr for List {
    type Err = Error;
    fn from_str(s: &str) -> Result<List, Error> {
        List::ALL
            .into_iter()
            .find(|l| l.name() == s || (s == "in-flight" && *l == List::InFlight))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown list {s:?}: ready, delayed, in_flight, dead or completed"
                ))
            })
    }
}

/// One message of a list.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
/// for m in c.messages(&q, redkit_console::List::Dead, 0, 20).await? {
///     println!("{} {}", m.id, m.reason.unwrap_or_default());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MessageRow {
    /// The message id.
    pub id: String,
    /// Its state (`waiting`, `delayed`, `active`, `completed`, `dead`), `gone` when it left
    /// the list while it was read.
    pub state: String,
    /// The list's time: enqueued (ready), due (delayed), lease deadline (in flight), died,
    /// completed (Unix ms).
    pub at_ms: Option<u64>,
    /// Failed attempts so far.
    pub failures: u32,
    /// Why it died or last failed.
    pub reason: Option<String>,
    /// The payload as JSON (`None` when it does not decode: see `payload_error`).
    pub payload: Option<serde_json::Value>,
    /// Why the payload does not decode, when it does not.
    pub payload_error: Option<String>,
}

fn payload_fields(
    p: Result<serde_json::Value, String>,
) -> (Option<serde_json::Value>, Option<String>) {
    match p {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

impl Console {
    /// A page of one list of a queue.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let ready = c.messages(&q, redkit_console::List::Ready, 0, 50).await?;
    /// # drop(ready); Ok(()) }
    /// ```
    pub async fn messages(
        &self,
        q: &QueueRef,
        list: List,
        offset: usize,
        count: usize,
    ) -> Result<Vec<MessageRow>, Error> {
        let queue = self.existing(q).await?;
        let count = count.clamp(1, 1000);
        match list {
            List::Dead => Ok(queue
                .dead_letters(offset, count)
                .await?
                .into_iter()
                .map(|d| {
                    let (payload, payload_error) = payload_fields(d.message.map(|p| p.to_json()));
                    MessageRow {
                        id: d.id,
                        state: "dead".into(),
                        at_ms: Some(ms(d.died_at)),
                        failures: 0,
                        reason: Some(d.reason),
                        payload,
                        payload_error,
                    }
                })
                .collect()),
            List::Completed => Ok(queue
                .completed(offset, count)
                .await?
                .into_iter()
                .map(|d| {
                    let (payload, payload_error) = payload_fields(d.message.map(|p| p.to_json()));
                    MessageRow {
                        id: d.id,
                        state: "completed".into(),
                        at_ms: Some(ms(d.completed_at)),
                        failures: 0,
                        reason: None,
                        payload,
                        payload_error,
                    }
                })
                .collect()),
            List::Ready | List::Delayed | List::InFlight => {
                let key = format!(
                    "{}:{}",
                    q.base(),
                    match list {
                        List::Ready => "ready",
                        List::Delayed => "delayed",
                        _ => "inflight",
                    }
                );
                let start = i64::try_from(offset).unwrap_or(i64::MAX);
                let stop = start.saturating_add(i64::try_from(count).unwrap_or(1000) - 1);
                let ids: Vec<Value> = self
                    .redis
                    .for_key(&key)
                    .zrange(&key, start, stop, None, false, None, true)
                    .await?;
                let pairs: Vec<(String, f64)> = ids
                    .chunks(2)
                    .filter_map(|c| {
                        let id = c.first()?.as_string()?;
                        let score = c.get(1)?.as_f64().unwrap_or(0.0);
                        Some((id, score))
                    })
                    .collect();
                let rows = futures::stream::iter(pairs)
                    .map(|(id, score)| {
                        let queue = queue.clone();
                        async move { (queue.job(&id).await, id, score) }
                    })
                    .buffered(16)
                    .collect::<Vec<_>>()
                    .await;
                let mut out = Vec::new();
                for (job, id, score) in rows {
                    let at = match list {
                        List::Ready => rqueue_id_ms(&id),
                        _ => Some(score.max(0.0) as u64),
                    };
                    out.push(match job {
                        Ok(j) => MessageRow {
                            id,
                            state: j.state.name().into(),
                            at_ms: at,
                            failures: j.failures,
                            reason: j.last_error.clone(),
                            payload_error: j
                                .message
                                .is_none()
                                .then(|| "payload missing or not MessagePack".to_string()),
                            payload: j.message.as_ref().map(Payload::to_json),
                        },
                        Err(rqueue::Error::UnknownJob { .. }) => MessageRow {
                            id,
                            state: "gone".into(),
                            at_ms: at,
                            failures: 0,
                            reason: None,
                            payload: None,
                            payload_error: Some("left the list while it was read".into()),
                        },
                        Err(e) => return Err(e.into()),
                    });
                }
                Ok(out)
            }
        }
    }
}

fn rqueue_id_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}
