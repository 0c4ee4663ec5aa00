//! The web console: an axum [`Router`] of server-rendered pages (no JavaScript needed), one
//! stylesheet, `/metrics`, and the safety rules:
//!
//! - **Authentication**: with [`Auth::Token`], every request needs the token — as
//!   `Authorization: Bearer <token>`, or the `redkit_token` cookie that `GET /login?token=…`
//!   (or the login form) sets; with [`Auth::Basic`], HTTP basic auth. Otherwise `401`.
//!   [`serve`] refuses to listen beyond loopback without one of them.
//! - **Mutations** are `POST`s carrying a CSRF token bound to the browser's session cookie
//!   (and refused when the `Origin` header names another site), and each goes through a
//!   confirmation page first.
//! - **Read-only** ([`WebOptions::read_only`]): no mutating control is rendered and every
//!   `POST` is refused with `403`.
//! - Every name, id, payload and error is HTML-escaped (maud escapes all interpolations).
//!
//! Embedding: mount [`router`] under a path of your own service with your own auth in
//! front (set [`WebOptions::base_path`] so links point under it):
//!
//! ```no_run
//! # async fn demo(redis: redis_conn::RedisClient) {
//! use redkit_console::web::{Auth, WebOptions, router};
//! let mut opts = WebOptions::default();
//! opts.base_path = "/ops/redkit".into();
//! let app = axum::Router::new().nest("/ops/redkit", router(redkit_console::Console::new(redis), opts));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

mod cache_pages;
mod layout;
mod lock_pages;
mod pages;
mod queue_pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use crate::console::Console;
use crate::error::Error;

/// How the console authenticates requests.
///
/// ```
/// let a = redkit_console::web::Auth::Token("s3cret".into());
/// assert!(a.is_required());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// None (loopback only, or behind the embedding service's own auth).
    #[default]
    None,
    /// A shared token: `Authorization: Bearer …` or the login cookie.
    Token(String),
    /// HTTP basic auth.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Token(_) => "Token(***)",
            Auth::Basic { .. } => "Basic(***)",
        })
    }
}

impl Auth {
    /// Whether requests must authenticate.
    ///
    /// ```
    /// assert!(!redkit_console::web::Auth::None.is_required());
    /// ```
    pub fn is_required(&self) -> bool {
        !matches!(self, Auth::None)
    }
}

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
    pub(crate) fn link(&self, path: &str) -> String {
        format!("{}{path}", self.opts.base_path.trim_end_matches('/'))
    }

    pub(crate) fn csrf(&self, session: &Session) -> String {
        hex(&Sha256::new()
            .chain_update(self.secret)
            .chain_update(session.0.as_bytes())
            .finalize())
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The console's pages as a router (its own paths start at `/`; nest it anywhere).
///
/// ```no_run
/// # fn demo(redis: redis_conn::RedisClient) {
/// let app = redkit_console::web::router(redkit_console::Console::new(redis), Default::default());
/// # drop(app); }
/// ```
pub fn router(console: Console, opts: WebOptions) -> Router {
    let mut secret = [0u8; 32];
    for b in &mut secret {
        *b = fastrand::u8(..);
    }
    let app: Shared = Arc::new(App {
        console,
        opts,
        secret,
    });
    Router::new()
        .route("/", get(queue_pages::overview))
        .route("/style.css", get(layout::stylesheet))
        .route("/metrics", get(pages::metrics))
        .route("/login", get(pages::login))
        .route("/find", get(queue_pages::find))
        .route("/queues/{ns}/{name}", get(queue_pages::queue))
        .route("/queues/{ns}/{name}/jobs/{id}", get(queue_pages::job))
        .route("/queues/{ns}/{name}/action", post(queue_pages::action))
        .route(
            "/actions/replay-everything",
            post(queue_pages::replay_everything),
        )
        .route("/locks", get(pages::locks))
        .route("/locks/{ns}", get(pages::lock_namespace))
        .route("/locks/{ns}/{name}", get(pages::lock))
        .route(
            "/locks/{ns}/{name}/force-release",
            post(pages::force_release),
        )
        .route("/caches", get(pages::caches))
        .route("/caches/{ns}", get(pages::cache))
        .route("/doctor", get(pages::doctor))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares digests, so the time taken says nothing about the token.
fn same(a: &str, b: &str) -> bool {
    digest(a) == digest(b)
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn authorized(auth: &Auth, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth {
        Auth::None => true,
        Auth::Token(t) => {
            given
                .and_then(|g| g.strip_prefix("Bearer "))
                .is_some_and(|g| same(g.trim(), t))
                || cookie(headers, "redkit_token").is_some_and(|c| same(c, &hex(&digest(t))))
        }
        Auth::Basic { user, password } => {
            let want = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
            given.is_some_and(|g| same(g.trim(), &want))
        }
    }
}

/// Authentication, the session cookie and the read-only / CSRF rules for `POST`s.
async fn guard(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let login = path.ends_with("/login") && req.method() == axum::http::Method::GET;
    if !login && !authorized(&app.opts.auth, req.headers()) {
        return pages::unauthorized(&app);
    }
    let (session, fresh) = match cookie(req.headers(), "redkit_csrf") {
        Some(s) if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (Session(s.to_string()), false)
        }
        _ => {
            let mut b = [0u8; 16];
            for x in &mut b {
                *x = fastrand::u8(..);
            }
            (Session(hex(&b)), true)
        }
    };
    if req.method() == axum::http::Method::POST {
        if app.opts.read_only {
            return layout::error_page(
                &app,
                StatusCode::FORBIDDEN,
                "Read-only console",
                "This console runs with --read-only: it changes nothing.",
            );
        }
        if fresh {
            return layout::error_page(
                &app,
                StatusCode::FORBIDDEN,
                "Refused",
                "The request carries no session cookie: open the page again and retry.",
            );
        }
        if let Some(origin) = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
        {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let origin_host = origin.split("://").nth(1).unwrap_or(origin);
            if origin != "null" && origin_host != host {
                return layout::error_page(
                    &app,
                    StatusCode::FORBIDDEN,
                    "Refused",
                    "Cross-site request: the Origin header names another site.",
                );
            }
        }
    }
    req.extensions_mut().insert(session.clone());
    let mut resp = next.run(req).await;
    if fresh {
        let path = if app.opts.base_path.is_empty() {
            "/".to_string()
        } else {
            app.opts.base_path.clone()
        };
        if let Ok(v) = HeaderValue::from_str(&format!(
            "redkit_csrf={}; Path={path}; HttpOnly; SameSite=Strict",
            session.0
        )) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
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

/// An error as a page: 404 for unknown names, 503 (reloading itself) when Redis is down.
pub(crate) fn error_response(app: &App, e: &Error) -> Response {
    match e {
        Error::NotFound { .. } => {
            layout::error_page(app, StatusCode::NOT_FOUND, "Not found", &e.to_string())
        }
        Error::Redis(_) => layout::outage_page(app, &e.to_string()),
        Error::Usage(_) => {
            layout::error_page(app, StatusCode::BAD_REQUEST, "Bad request", &e.to_string())
        }
        Error::Refused(_) => {
            layout::error_page(app, StatusCode::FORBIDDEN, "Refused", &e.to_string())
        }
        Error::Unreadable(_) => layout::error_page(
            app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unreadable data",
            &e.to_string(),
        ),
    }
}

/// Errors of `serve`.
///
/// ```
/// let e = redkit_console::web::ServeError::NeedsAuth("0.0.0.0:80".parse().unwrap());
/// assert!(e.to_string().contains("--token"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Listening beyond loopback without authentication.
    #[error(
        "refusing to listen on {0} without authentication: it is not a loopback address; pass --token (or --basic-auth USER:PASSWORD)"
    )]
    NeedsAuth(SocketAddr),
    /// The socket could not be bound or served.
    #[error("cannot serve on {0}: {1}")]
    Io(SocketAddr, std::io::Error),
}

/// Serves the console on `listen` until the process ends (or `shutdown` resolves). Refuses
/// a non-loopback address unless `opts.auth` is set.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::web::ServeError> {
/// redkit_console::web::serve(c, "127.0.0.1:9400".parse().unwrap(), Default::default(), std::future::pending()).await?;
/// # Ok(()) }
/// ```
pub async fn serve(
    console: Console,
    listen: SocketAddr,
    opts: WebOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if !listen.ip().is_loopback() && !opts.auth.is_required() {
        return Err(ServeError::NeedsAuth(listen));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServeError::Io(listen, e))?;
    axum::serve(listener, router(console, opts))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServeError::Io(listen, e))
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors_and_tokens_are_checked() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let mut h = HeaderMap::new();
        let auth = Auth::Token("t0k".into());
        assert!(!authorized(&auth, &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k"),
        );
        assert!(authorized(&auth, &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(!authorized(&auth, &h));
        let basic = Auth::Basic {
            user: "ops".into(),
            password: "pw".into(),
        };
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", base64(b"ops:pw")))
                .unwrap_or(HeaderValue::from_static("")),
        );
        assert!(authorized(&basic, &h));
    }
}
