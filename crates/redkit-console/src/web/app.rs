//! The state every page shares: the console, its [`WebOptions`], the CSRF secret and the
//! browser's session.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::auth::{Auth, hex, same};
use crate::console::Console;
use crate::error::Error;

/// The web console's settings.
///
/// ```
/// let mut o = redkit_console::web::WebOptions::default();
/// o.read_only = true;
/// assert_eq!(o.base_path, "");
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WebOptions {
    /// Hide and refuse every mutating action.
    pub read_only: bool,
    /// Authentication.
    pub auth: Auth,
    /// The path the router is mounted under (`""` at the root; `/ops/redkit` when nested).
    pub base_path: String,
}

pub(crate) struct App {
    pub(crate) console: Console,
    pub(crate) opts: WebOptions,
    /// Signs CSRF tokens; random per process.
    secret: [u8; 32],
}

pub(crate) type Shared = Arc<App>;

/// The browser's session id (the `redkit_csrf` cookie), set by the middleware.
#[derive(Clone)]
pub(crate) struct Session(pub(crate) String);

impl App {
    pub(crate) fn new(console: Console, opts: WebOptions) -> App {
        let mut secret = [0u8; 32];
        for b in &mut secret {
            *b = fastrand::u8(..);
        }
        App {
            console,
            opts,
            secret,
        }
    }

    /// `path` under the mount path. The home page of a nested console is the mount path
    /// itself (`/ops/redkit`, not `/ops/redkit/`: axum's `nest` serves the nested `/` there).
    pub(crate) fn link(&self, path: &str) -> String {
        let base = self.opts.base_path.trim_end_matches('/');
        if path == "/" && !base.is_empty() {
            base.to_string()
        } else {
            format!("{base}{path}")
        }
    }

    pub(crate) fn csrf(&self, session: &Session) -> String {
        hex(&Sha256::new()
            .chain_update(self.secret)
            .chain_update(session.0.as_bytes())
            .finalize())
    }
}

/// Checks a form's CSRF token.
pub(crate) fn check_csrf(app: &App, session: &Session, given: &str) -> Result<(), Error> {
    if same(given, &app.csrf(session)) {
        Ok(())
    } else {
        Err(Error::Refused(
            "the form's CSRF token does not match this session: reload the page".into(),
        ))
    }
}
