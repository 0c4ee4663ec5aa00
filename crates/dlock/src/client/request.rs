//! A lock request and its options ([`LockRequest`]), and the explicit owner of reentrant holds
//! ([`Owner`]). Acquiring is in `acquire`.

use std::time::Duration;

use crate::error::Error;
use crate::keys::check_name;
use crate::state::LockClient;

/// An owner of reentrant holds: requests made with the same owner re-enter a lock it already
/// holds (each hold is released on its own; the lock is free when the last one is). There is
/// no thread or task identity in async Rust, so ownership is this explicit value.
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// let me = locks.owner();
/// let outer = locks.lock("account:7").owner(&me).acquire().await?;
/// let inner = locks.lock("account:7").owner(&me).try_acquire().await?.expect("re-entered");
/// assert_eq!(outer.fence(), inner.fence());
/// inner.release().await?;
/// outer.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub(super) id: String,
}

impl Owner {
    /// The owner's id as stored in Redis.
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// assert!(!locks.owner().id().is_empty());
    /// # }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A lock request: options, then [`LockRequest::acquire`] or [`LockRequest::try_acquire`].
///
/// ```no_run
/// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
/// use std::time::Duration;
/// let guard = locks
///     .lock("report")
///     .lease(Duration::from_secs(5))
///     .wait(Duration::from_millis(200))
///     .acquire()
///     .await?;
/// # drop(guard); Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a lock request does nothing until acquired"]
pub struct LockRequest<'a> {
    pub(super) client: &'a LockClient,
    pub(super) name: String,
    pub(super) lease: Duration,
    pub(super) wait: Duration,
    pub(super) owner: Option<Owner>,
    pub(super) fair: bool,
}

impl<'a> LockRequest<'a> {
    /// This request's lease (default: the client's).
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let req = locks.lock("x").lease(std::time::Duration::from_secs(5));
    /// # drop(req); }
    /// ```
    pub fn lease(mut self, lease: Duration) -> LockRequest<'a> {
        self.lease = lease;
        self
    }

    /// How long [`LockRequest::acquire`] waits (default: the client's).
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let req = locks.lock("x").wait(std::time::Duration::from_millis(100));
    /// # drop(req); }
    /// ```
    pub fn wait(mut self, wait: Duration) -> LockRequest<'a> {
        self.wait = wait;
        self
    }

    /// Acquire for `owner`: re-enters when `owner` already holds the lock.
    ///
    /// ```no_run
    /// # fn demo(locks: dlock::LockClient) {
    /// let me = locks.owner();
    /// let req = locks.lock("x").owner(&me);
    /// # drop(req); }
    /// ```
    pub fn owner(mut self, owner: &Owner) -> LockRequest<'a> {
        self.owner = Some(owner.clone());
        self
    }

    pub(super) fn check(&self) -> Result<(), Error> {
        if self.lease < Duration::from_millis(30) {
            return Err(Error::Config("lease must be at least 30 ms".into()));
        }
        check_name(&self.name)
    }

    /// FIFO fairness for this request: it waits in a line kept in Redis, and a release hands
    /// the lock straight to the first live waiter (one message, no retry round trip), so no
    /// waiter starves and hand-offs are fast. Use one mode per lock name. Waiters of the
    /// holder's own client may still be served first, up to [`LockConfig::local_handoffs`] in
    /// a row (0: strict FIFO across clients).
    ///
    /// ```no_run
    /// # async fn demo(locks: dlock::LockClient) -> Result<(), dlock::Error> {
    /// let guard = locks.lock("printer").fair(true).acquire().await?;
    /// # drop(guard); Ok(()) }
    /// ```
    ///
    /// [`LockConfig::local_handoffs`]: crate::LockConfig::local_handoffs
    pub fn fair(mut self, fair: bool) -> LockRequest<'a> {
        self.fair = fair;
        self
    }
}
