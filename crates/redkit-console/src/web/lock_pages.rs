//! Lock pages: held locks of a namespace, one lock, force-release.

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::app::{App, Session};
use super::layout::{page, respond};

pub(crate) async fn namespace(app: &App, _session: &Session, ns: &str) -> Response {
    respond(
        StatusCode::OK,
        page(app, ns, html! { h1 { "Locks of " (ns) } }),
    )
}

pub(crate) async fn lock(app: &App, _session: &Session, ns: &str, name: &str) -> Response {
    respond(
        StatusCode::OK,
        page(app, name, html! { h1 { "Lock " (name) " of " (ns) } }),
    )
}

pub(crate) async fn force_release(
    app: &App,
    _session: &Session,
    ns: &str,
    name: &str,
    _confirmed: bool,
) -> Response {
    respond(
        StatusCode::OK,
        page(app, name, html! { h1 { "Lock " (name) " of " (ns) } }),
    )
}
