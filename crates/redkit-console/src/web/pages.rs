//! The other pages: `/metrics`, login, the doctor, 401 and 404.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::app::{App, Shared};
use super::auth::{Auth, digest, hex, same};
use super::layout::{error_page, error_response, page, respond};

/// `GET /metrics`.
pub(crate) async fn metrics(State(app): State<Shared>) -> Response {
    let text = crate::metrics::render(&app.console).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    token: Option<String>,
}

/// `GET /login?token=…`: checks the token and keeps it in a cookie (as its digest).
pub(crate) async fn login(State(app): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    let Auth::Token(want) = &app.opts.auth else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, app.link("/"))]).into_response();
    };
    match q.token {
        Some(t) if same(&t, want) => {
            let path = if app.opts.base_path.is_empty() {
                "/".to_string()
            } else {
                app.opts.base_path.clone()
            };
            let cookie = format!(
                "redkit_token={}; Path={path}; HttpOnly; SameSite=Strict",
                hex(&digest(want))
            );
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, app.link("/")),
                    (header::SET_COOKIE, cookie),
                ],
            )
                .into_response()
        }
        _ => unauthorized(&app),
    }
}

/// The 401 page (with a token form, or a basic-auth challenge).
pub(crate) fn unauthorized(app: &App) -> Response {
    let body = html! {
        h1 { "Sign in" }
        p { "This console needs its access token." }
        @if matches!(app.opts.auth, Auth::Token(_)) {
            form method="get" action=(app.link("/login")) {
                input type="password" name="token" placeholder="token" aria-label="token";
                " "
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut resp = respond(StatusCode::UNAUTHORIZED, page(app, "Sign in", body));
    if matches!(app.opts.auth, Auth::Basic { .. }) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"redkit\", charset=\"UTF-8\""),
        );
    }
    resp
}

/// Anything else: 404.
pub(crate) async fn not_found(State(app): State<Shared>) -> Response {
    error_page(
        &app,
        StatusCode::NOT_FOUND,
        "Not found",
        "No such page. The overview lists every queue.",
    )
}

/// `GET /doctor`: redis-diag's findings.
pub(crate) async fn doctor(State(app): State<Shared>) -> Response {
    let report = match app.console.doctor().await {
        Ok(r) => r,
        Err(e) => return error_response(&app, &e),
    };
    let sev = |s: redis_diag::Severity| match s {
        redis_diag::Severity::Critical => "bad",
        redis_diag::Severity::Warning => "warn",
        _ => "ok",
    };
    let body = html! {
        h1 { "Doctor" }
        p { "Deployment: " (report.mode) ", " (report.nodes.len()) " node(s); worst finding: "
            span.badge.(sev(report.worst())) #worst { (format!("{:?}", report.worst()).to_lowercase()) } }
        table #findings {
            thead { tr { th { "severity" } th { "check" } th { "node" } th { "finding" } th { "fix" } } }
            tbody { @for f in &report.findings {
                tr {
                    td { span.badge.(sev(f.severity)) { (format!("{:?}", f.severity).to_lowercase()) } }
                    td { code { (f.check) } }
                    td { (f.node) }
                    td { (f.title) @if !f.evidence.is_empty() { br; span.muted { (f.evidence) } } }
                    td { (f.remediation) }
                }
            } }
        }
    };
    respond(StatusCode::OK, page(&app, "Doctor", body))
}
