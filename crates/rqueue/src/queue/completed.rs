//! The completed list kept by
//! [`QueueConfig::keep_completed`](crate::QueueConfig::keep_completed): [`Completed`] and
//! [`Queue::completed`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::core::Queue;
use crate::error::Error;

/// An acknowledged message kept by
/// [`QueueConfig::keep_completed`](crate::QueueConfig::keep_completed).
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
/// if let Some(last) = q.completed(0, 1).await?.pop() {
///     println!("last done: {} ({:?})", last.id, last.message);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Completed<T> {
    /// The message id.
    pub id: String,
    /// When it was acknowledged (server clock).
    pub completed_at: std::time::SystemTime,
    /// The message, or why its payload does not decode.
    pub message: Result<T, String>,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// A page of the completed messages kept by
    /// [`QueueConfig::keep_completed`](crate::QueueConfig::keep_completed), newest first
    /// (empty when the queue keeps none).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for c in q.completed(0, 20).await? {
    ///     println!("{} done at {:?}", c.id, c.completed_at);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn completed(&self, offset: usize, count: usize) -> Result<Vec<Completed<T>>, Error> {
        let page = self
            .page(&self.inner.keys.completed, offset, count, "rev")
            .await?;
        Ok(page
            .into_iter()
            .map(|(id, completed_at, _reason, message)| Completed {
                id,
                completed_at,
                message,
            })
            .collect())
    }
}
