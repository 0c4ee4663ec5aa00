//! The console's error type and the CLI's exit codes.

/// What went wrong in a console call.
///
/// ```
/// let e = redkit_console::Error::NotFound { kind: "queue", name: "rq:{nope}".into() };
/// assert_eq!(e.exit_code(), redkit_console::exit::NOT_FOUND);
/// assert!(e.to_string().contains("no queue"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such queue, lock, cache, job or message.
    #[error(
        "no {kind} {name:?}: check the name (`redkit queues`, `redkit caches`, `redkit locks NAMESPACE` list what exists)"
    )]
    NotFound {
        /// What was looked for (`queue`, `lock namespace`, `lock`, `cache`, `job`).
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// Redis could not be reached or answered an error.
    #[error("redis: {0}")]
    Redis(String),
    /// Bad arguments or configuration.
    #[error("{0}")]
    Usage(String),
    /// A mutating action was refused (read-only console, missing `--yes`, bad CSRF token).
    #[error("refused: {0}")]
    Refused(String),
    /// A key of the component holds something the console cannot read (wrong type, foreign
    /// data).
    #[error("unreadable data: {0}")]
    Unreadable(String),
}

impl Error {
    /// The CLI's exit code for this error ([`exit`](crate::exit)).
    ///
    /// ```
    /// assert_eq!(redkit_console::Error::Redis("down".into()).exit_code(), 3);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotFound { .. } => crate::exit::NOT_FOUND,
            Error::Redis(_) => crate::exit::REDIS,
            Error::Usage(_) => crate::exit::USAGE,
            Error::Refused(_) => crate::exit::REFUSED,
            Error::Unreadable(_) => crate::exit::FAILED,
        }
    }

    /// Whether Redis itself is the problem (unreachable, timing out, loading, ...).
    ///
    /// ```
    /// assert!(redkit_console::Error::Redis("x".into()).is_redis());
    /// ```
    pub fn is_redis(&self) -> bool {
        matches!(self, Error::Redis(_))
    }
}

impl From<redis_conn::Error> for Error {
    fn from(e: redis_conn::Error) -> Error {
        match e {
            redis_conn::Error::WrongType(m) => Error::Unreadable(m),
            redis_conn::Error::Config { .. } => Error::Usage(e.to_string()),
            other => Error::Redis(other.to_string()),
        }
    }
}

impl From<rqueue::Error> for Error {
    fn from(e: rqueue::Error) -> Error {
        match e {
            rqueue::Error::Redis(r) => r.into(),
            rqueue::Error::UnknownJob { id, .. } => Error::NotFound {
                kind: "job",
                name: id,
            },
            rqueue::Error::Config(m) => Error::Usage(m),
            rqueue::Error::Protocol(m) => Error::Unreadable(m),
            other => Error::Refused(other.to_string()),
        }
    }
}

impl From<fred::error::Error> for Error {
    fn from(e: fred::error::Error) -> Error {
        redis_conn::Error::from(e).into()
    }
}
