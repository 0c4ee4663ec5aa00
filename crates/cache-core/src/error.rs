//! The errors of cache-core: [`Error`] for plain reads, writes and invalidation, [`BuildError`]
//! for the lookups that build.

use std::sync::Arc;

use crate::codec::CodecError;

/// Errors of `get`, `set`, `delete` and invalidation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis failed.
    #[error("cache backend: {0}")]
    Redis(#[from] redis_conn::Error),
    /// A value could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The configuration is invalid.
    #[error("invalid cache configuration: {0}")]
    Config(String),
}

/// Errors of [`Cache::get_or_set`](crate::Cache::get_or_set): only the builder's own failure or an unencodable value.
/// Redis failures never surface here: the builder's value is returned instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError<E> {
    /// The builder failed (shared by every caller that waited on the same build).
    #[error("builder failed: {0}")]
    Builder(Arc<E>),
    /// The built value could not be encoded (or decoded by a waiter).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The builder of the call that led this build panicked; the message is the panic's. Only
    /// the calls that waited for that build get this error: the panic itself goes on unwinding
    /// in the call whose builder it was, and the rebuild lease is given back at once.
    #[error("the builder of the call this one waited for panicked: {0}")]
    Panicked(String),
}
