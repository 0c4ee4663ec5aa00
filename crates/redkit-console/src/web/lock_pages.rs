//! Lock pages: the namespaces, the held locks of one, one lock, and force-release (after a
//! confirmation page that says what fencing does and does not protect).

use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::app::{App, Session, Shared, check_csrf};
use super::layout::{
    Flash, action_button, confirm_page, duration, error_response, flash, page, redirect_done,
    respond, seg, when,
};
use crate::locks::LockView;

/// Held locks listed per namespace page.
const LIMIT: usize = 500;

/// What force-release does not do, said before and after it.
pub(crate) const FENCING_WARNING: &str = "Force-releasing does not stop the holder. If it is still running, it and \
     the next holder both believe they hold the lock until its next renewal fails; only \
     writes that carry the fencing token, checked by the resource, stay safe.";

fn lock_link(app: &App, ns: &str, name: &str) -> String {
    app.link(&format!("/locks/{}/{}", seg(ns), seg(name)))
}

fn ttl(l: &LockView) -> Markup {
    html! { @if let Some(t) = l.ttl_left_ms { (duration(t)) } @else { span.muted { "—" } } }
}

/// `GET /locks`.
pub(crate) async fn namespaces(State(app): State<Shared>) -> Response {
    let namespaces = match app.console.lock_namespaces().await {
        Ok(n) => n,
        Err(e) => return error_response(&app, &e),
    };
    let body = html! {
        h1 { "Lock namespaces" }
        @if namespaces.is_empty() { p.muted #empty { "No lock namespace is registered yet. A dlock LockClient registers its namespace when it is created." } } @else {
            table #lock-namespaces {
                thead { tr { th { "namespace" } th { "registered" } th { "settings" } } }
                tbody { @for n in &namespaces {
                    tr data-namespace=(n.namespace) {
                        td { a href=(app.link(&format!("/locks/{}", seg(&n.namespace)))) { (n.namespace) } }
                        td { @if n.registered_ms.is_some() { (when(n.registered_ms)) } @else { span.muted { "found by scanning" } } }
                        td.muted { @for (k, v) in &n.settings { (k) "=" (v) " " } }
                    }
                } }
            }
        }
    };
    respond(StatusCode::OK, page(&app, "Locks", body))
}

/// `GET /locks/{ns}`: the held locks.
pub(crate) async fn namespace(
    State(app): State<Shared>,
    Path(ns): Path<String>,
    Query(f): Query<Flash>,
) -> Response {
    let held = match app.console.held_locks(&ns, LIMIT).await {
        Ok(h) => h,
        Err(e) => return error_response(&app, &e),
    };
    let body = html! {
        (flash(f.done.as_deref()))
        h1 { "Locks of " (ns) }
        div.cards {
            div.card { "held" b #held { (held.locks.len()) @if !held.complete { "+" } } }
            div.card { "waiters" b #waiters { (held.locks.iter().map(|l| l.waiters).sum::<usize>()) } }
            div.card { "longest hold" b { @match held.locks.iter().filter_map(|l| l.held_for_ms).max() { Some(ms) => (duration(ms)), None => "—" } } }
        }
        @if !held.complete { p.warn { "More locks are held than listed here (" (held.scanned) " keys looked at)." } }
        @if held.locks.is_empty() { p.muted #empty { "No lock of this namespace is held." } } @else {
            table #locks {
                thead { tr {
                    th { "lock" } th { "kind" } th { "owner(s)" } th.n { "fence" } th { "lease left" } th { "held for" } th.n { "holds" } th.n { "waiters" }
                } }
                tbody { @for l in &held.locks {
                    tr data-lock=(l.name) {
                        td { a href=(lock_link(&app, &ns, &l.name)) { (l.name) } }
                        td { (l.kind) }
                        td.owners { @for o in &l.owners { code { (o) } " " } }
                        td.n.fence { @if let Some(f) = l.fence { (f) } }
                        td { (ttl(l)) }
                        td { @if let Some(h) = l.held_for_ms { (duration(h)) } @else { span.muted { "—" } } }
                        td.n { (l.holds) }
                        td.n.waiters { (l.waiters) @if l.waiting { span.muted title="a non-fair waiter announced itself" { " +" } } }
                    }
                } }
            }
        }
    };
    respond(StatusCode::OK, page(&app, &ns, body))
}

/// `GET /locks/{ns}/{name}`.
pub(crate) async fn lock(
    State(app): State<Shared>,
    Extension(session): Extension<Session>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let l = match app.console.lock(&ns, &name).await {
        Ok(l) => l,
        Err(e) => return error_response(&app, &e),
    };
    let body = html! {
        h1 { "Lock " (l.name) " " span.badge #kind { (l.kind) } }
        p { "in " a href=(app.link(&format!("/locks/{}", seg(&ns)))) { (ns) } }
        @if let Some(p) = &l.problem { p.bad #problem { (p) } }
        table.kv {
            tr { th { "owner(s)" } td #owners { @for o in &l.owners { code { (o) } br; } } }
            tr { th { "fencing token" } td #fence { @if let Some(f) = l.fence { (f) } @else { span.muted { "—" } } } }
            tr { th { "lease left" } td { (ttl(&l)) } }
            tr { th { "held for" } td { @if let Some(h) = l.held_for_ms { (duration(h)) } @else { span.muted { "—" } } } }
            tr { th { "holds" } td { (l.holds) } }
            tr { th { "non-fair waiter" } td { @if l.waiting { "yes" } @else { "no" } } }
        }
        h2 { "Fair line (" (l.waiters) ")" }
        @if l.fair_line.is_empty() { p.muted { "Nobody in line." } } @else {
            ol #fair-line { @for w in &l.fair_line { li { code { (w) } } } }
        }
        @if !app.opts.read_only && l.kind == "lock" {
            div.actions {
                (action_button(&app, &session, &format!("{}/force-release", lock_link(&app, &ns, &name)), &[("action", "force_release")], "Force-release", true))
            }
            p.muted { (FENCING_WARNING) }
        }
    };
    respond(StatusCode::OK, page(&app, &l.name, body))
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: String,
    confirm: Option<String>,
}

/// `POST /locks/{ns}/{name}/force-release`: a confirmation page, then the release.
pub(crate) async fn force_release(
    State(app): State<Shared>,
    Extension(session): Extension<Session>,
    Path((ns, name)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Err(e) = check_csrf(&app, &session, &form.csrf) {
        return error_response(&app, &e);
    }
    let back = lock_link(&app, &ns, &name);
    if form.confirm.as_deref() != Some("yes") {
        return confirm_page(
            &app,
            &session,
            &format!("{back}/force-release"),
            &[("action", "force_release")],
            &format!("Force-release lock {name} of {ns}, whoever holds it?"),
            Some(FENCING_WARNING),
            &back,
        );
    }
    match app.console.force_release(&ns, &name).await {
        Ok(()) => {
            tracing::warn!(namespace = %ns, lock = %name, "console force-released a lock");
            redirect_done(
                &app.link(&format!("/locks/{}", seg(&ns))),
                &format!("Released {name}."),
            )
        }
        Err(e) => error_response(&app, &e),
    }
}
