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

mod app;
mod auth;
mod cache_pages;
mod guard;
mod layout;
mod lock_pages;
mod pages;
mod queue_pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use app::WebOptions;
use app::{App, Shared};
pub use auth::Auth;

use crate::console::Console;
use crate::error::Error;

/// The console's pages as a router (its own paths start at `/`; nest it anywhere).
///
/// ```no_run
/// # fn demo(redis: redis_conn::RedisClient) {
/// let app = redkit_console::web::router(redkit_console::Console::new(redis), Default::default());
/// # drop(app); }
/// ```
pub fn router(console: Console, opts: WebOptions) -> Router {
    let app: Shared = Arc::new(App::new(console, opts));
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
        .route("/locks", get(lock_pages::namespaces))
        .route("/locks/{ns}", get(lock_pages::namespace))
        .route("/locks/{ns}/{name}", get(lock_pages::lock))
        .route(
            "/locks/{ns}/{name}/force-release",
            post(lock_pages::force_release),
        )
        .route("/caches", get(cache_pages::list))
        .route("/caches/{ns}", get(cache_pages::one))
        .route("/doctor", get(pages::doctor))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard::guard))
        .with_state(app)
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
