//! The `metrics` facade for every redkit crate, behind one feature: with `metrics` on (the
//! default) this is the [`metrics`](https://docs.rs/metrics) crate's `counter!`, `gauge!`,
//! `histogram!` and their handles; with it off, the same names are no-ops that compile away,
//! so a service that does not export metrics does not build the facade.
//!
//! cache-core, dlock and rqueue record through this module; their own `metrics` features turn
//! on `redis-conn/metrics`.
//!
//! ```
//! use redis_conn::telemetry::{Counter, counter};
//! let hits: Counter = counter!("myapp_hits_total", "cache" => "users".to_string());
//! hits.increment(1);
//! ```

#[cfg(feature = "metrics")]
pub use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

#[cfg(not(feature = "metrics"))]
pub use self::noop::{Counter, Gauge, Histogram};
#[cfg(not(feature = "metrics"))]
pub use crate::{
    __redkit_noop_counter as counter, __redkit_noop_gauge as gauge,
    __redkit_noop_histogram as histogram,
};

#[cfg(not(feature = "metrics"))]
mod noop {
    /// A counter that records nothing (the `metrics` feature is off).
    ///
    /// ```
    /// redis_conn::telemetry::Counter::default().increment(1);
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Counter;

    impl Counter {
        /// Does nothing.
        ///
        /// ```
        /// redis_conn::telemetry::Counter::default().increment(3);
        /// ```
        pub fn increment(&self, _value: u64) {}

        /// Does nothing.
        ///
        /// ```
        /// redis_conn::telemetry::Counter::default().absolute(3);
        /// ```
        pub fn absolute(&self, _value: u64) {}
    }

    /// A gauge that records nothing (the `metrics` feature is off).
    ///
    /// ```
    /// redis_conn::telemetry::Gauge::default().set(1.0);
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Gauge;

    impl Gauge {
        /// Does nothing.
        ///
        /// ```
        /// redis_conn::telemetry::Gauge::default().set(2.0);
        /// ```
        pub fn set<T>(&self, _value: T) {}

        /// Does nothing.
        ///
        /// ```
        /// redis_conn::telemetry::Gauge::default().increment(1.0);
        /// ```
        pub fn increment<T>(&self, _value: T) {}

        /// Does nothing.
        ///
        /// ```
        /// redis_conn::telemetry::Gauge::default().decrement(1.0);
        /// ```
        pub fn decrement<T>(&self, _value: T) {}
    }

    /// A histogram that records nothing (the `metrics` feature is off).
    ///
    /// ```
    /// redis_conn::telemetry::Histogram::default().record(0.5);
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Histogram;

    impl Histogram {
        /// Does nothing.
        ///
        /// ```
        /// redis_conn::telemetry::Histogram::default().record(0.5);
        /// ```
        pub fn record<T>(&self, _value: T) {}
    }
}

/// `counter!` without the `metrics` feature: evaluates its arguments, returns a no-op.
#[cfg(not(feature = "metrics"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __redkit_noop_counter {
    ($name:expr, $labels:expr $(,)?) => {{
        let _ = ($name, $labels);
        $crate::telemetry::Counter
    }};
    ($name:expr $(, $k:expr => $v:expr)* $(,)?) => {{
        let _ = ($name, $(($k, $v)),*);
        $crate::telemetry::Counter
    }};
}

/// `gauge!` without the `metrics` feature: evaluates its arguments, returns a no-op.
#[cfg(not(feature = "metrics"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __redkit_noop_gauge {
    ($name:expr, $labels:expr $(,)?) => {{
        let _ = ($name, $labels);
        $crate::telemetry::Gauge
    }};
    ($name:expr $(, $k:expr => $v:expr)* $(,)?) => {{
        let _ = ($name, $(($k, $v)),*);
        $crate::telemetry::Gauge
    }};
}

/// `histogram!` without the `metrics` feature: evaluates its arguments, returns a no-op.
#[cfg(not(feature = "metrics"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __redkit_noop_histogram {
    ($name:expr, $labels:expr $(,)?) => {{
        let _ = ($name, $labels);
        $crate::telemetry::Histogram
    }};
    ($name:expr $(, $k:expr => $v:expr)* $(,)?) => {{
        let _ = ($name, $(($k, $v)),*);
        $crate::telemetry::Histogram
    }};
}
