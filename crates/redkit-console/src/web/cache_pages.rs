//! Cache pages: every cache, one cache's counters.

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::app::App;
use super::layout::{page, respond};

pub(crate) async fn list(app: &App) -> Response {
    respond(
        StatusCode::OK,
        page(app, "Caches", html! { h1 { "Caches" } }),
    )
}

pub(crate) async fn one(app: &App, ns: &str) -> Response {
    respond(
        StatusCode::OK,
        page(app, ns, html! { h1 { "Cache " (ns) } }),
    )
}
