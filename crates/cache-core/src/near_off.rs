//! The near cache when the `near-cache` feature is off: a type with no value, so every use of
//! it in the lookup path compiles to nothing (`Cache::new` refuses a `NearConfig`).

use redis_conn::RedisClient;

/// Never constructed.
pub(crate) enum Near {}

impl Near {
    pub(crate) async fn ready(&self, _redis: &RedisClient) -> bool {
        match *self {}
    }

    pub(crate) fn is_ready(&self) -> bool {
        match *self {}
    }

    pub(crate) fn generation(&self) -> u64 {
        match *self {}
    }

    pub(crate) fn short<'k>(&self, _full: &'k str) -> &'k str {
        match *self {}
    }

    pub(crate) fn get<T: Clone + 'static>(&self, _key: &str) -> Option<Option<T>> {
        match *self {}
    }

    pub(crate) fn insert<T: Send + Sync + 'static>(
        &self,
        _key: &str,
        _value: Option<T>,
        _soft_expiry_ms: u64,
        _generation: u64,
    ) {
        match *self {}
    }

    pub(crate) fn invalidate(&self, _key: &str) {
        match *self {}
    }

    pub(crate) fn clear(&self) {
        match *self {}
    }

    pub(crate) fn len(&self) -> u64 {
        match *self {}
    }

    pub(crate) fn quit(&self) {
        match *self {}
    }
}
