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

/// Adds what cache-core was doing to an ACL refusal (`NOPERM`, or a refusal inside a script):
/// Redis's reply names a refused command but never the key or channel, and inside a script
/// not even the command. Other errors pass through unchanged.
pub(crate) fn refused(err: redis_conn::Error, doing: impl FnOnce() -> String) -> redis_conn::Error {
    match err {
        redis_conn::Error::NoPermission(msg) => redis_conn::Error::NoPermission(format!(
            "{msg} [cache-core: {}; cache_core::acl_rule and bloom_acl_rule list the rights needed]",
            doing()
        )),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_what_was_refused_and_other_errors_pass_through() {
        let e = refused(
            redis_conn::Error::NoPermission("NOPERM keys".into()),
            || "GET app:1".into(),
        );
        assert!(e.to_string().contains("GET app:1"), "{e}");
        let other = refused(redis_conn::Error::Io("closed".into()), || unreachable!());
        assert!(matches!(other, redis_conn::Error::Io(_)));
    }
}
