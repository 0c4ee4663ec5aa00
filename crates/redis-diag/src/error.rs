//! What can stop a diagnosis altogether.

use crate::exit;

/// What can stop a diagnosis altogether (a node that does not answer is a finding, not an
/// error).
///
/// ```
/// let e = redis_diag::Error::Discovery("no sentinel answered".into());
/// assert!(e.to_string().contains("sentinel"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration or connection setup failed.
    #[error(transparent)]
    Redis(#[from] redis_conn::Error),
    /// The topology's nodes could not be found.
    #[error("cannot discover the topology: {0}")]
    Discovery(String),
    /// The topology could not be discovered because every seed (or sentinel) that answered
    /// refused the credentials. Never contains the password.
    #[error("cannot discover the topology: authentication failed on {0}")]
    Auth(String),
}

impl Error {
    /// The `redis-diag` exit code for a diagnosis that stopped with this error (see
    /// [`exit`]): 5 for invalid configuration, 4 for refused credentials, 3 otherwise.
    ///
    /// ```
    /// let e = redis_diag::Error::Discovery("no sentinel answered".into());
    /// assert_eq!(e.exit_code(), redis_diag::exit::UNREACHABLE);
    /// let e = redis_diag::Error::Auth("127.0.0.1:26379: WRONGPASS".into());
    /// assert_eq!(e.exit_code(), redis_diag::exit::AUTH_FAILED);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Redis(redis_conn::Error::Config { .. }) => exit::USAGE,
            Error::Redis(redis_conn::Error::Auth(_)) | Error::Auth(_) => exit::AUTH_FAILED,
            Error::Redis(_) | Error::Discovery(_) => exit::UNREACHABLE,
        }
    }
}
