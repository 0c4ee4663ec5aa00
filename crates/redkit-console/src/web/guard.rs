//! The middleware in front of every page: authentication, the session cookie, and the
//! read-only, CSRF-session and same-origin rules for `POST`s.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::app::{Session, Shared};
use super::auth::{authorized, cookie, hex};
use super::layout;
use super::pages;

/// Authentication, the session cookie and the read-only / CSRF rules for `POST`s.
pub(crate) async fn guard(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
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
