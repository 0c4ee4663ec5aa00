//! Queue pages: the overview, a queue with its lists, a job, the job finder and the
//! mutating actions (replay, delete, purge, pause, resume).

use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::app::{App, Session, Shared, check_csrf};
use super::layout::{
    Flash, action_button, confirm_page, duration, error_response, flash, page, redirect_done,
    respond, seg, sparkline, when,
};
use crate::error::Error;
use crate::messages::{List, MessageRow};
use crate::queue_ref::QueueRef;
use crate::queues::QueueSummary;

/// Rows per page of a list.
const PAGE: usize = 25;

pub(crate) fn queue_link(app: &App, q: &QueueRef) -> String {
    app.link(&format!("/queues/{}/{}", seg(&q.namespace), seg(&q.name)))
}

fn per_minute(s: &QueueSummary) -> (u64, u64, Vec<u64>, Vec<u64>) {
    // The last complete minute (the current one is still filling).
    let n = s.per_minute.len();
    let last = if n >= 2 {
        s.per_minute.get(n - 2)
    } else {
        None
    };
    (
        last.map_or(0, |m| m.processed),
        last.map_or(0, |m| m.failed),
        s.per_minute.iter().map(|m| m.processed).collect(),
        s.per_minute.iter().map(|m| m.failed).collect(),
    )
}

/// `GET /`: every queue with its depths and last hour.
pub(crate) async fn overview(
    State(app): State<Shared>,
    Extension(session): Extension<Session>,
    Query(f): Query<Flash>,
) -> Response {
    let queues = match app.console.queues().await {
        Ok(q) => q,
        Err(e) => return error_response(&app, &e),
    };
    let (entries, _) = match redis_conn::registry::registered(app.console.redis(), None).await {
        Ok(e) => e,
        Err(e) => return error_response(&app, &e.into()),
    };
    let locks = entries
        .iter()
        .filter(|e| e.kind == redis_conn::registry::Kind::Locks)
        .count();
    let caches = entries
        .iter()
        .filter(|e| e.kind == redis_conn::registry::Kind::Cache)
        .count();
    let dead: u64 = queues.iter().map(|q| q.dead).sum();
    let body = html! {
        (flash(f.done.as_deref()))
        h1 { "Queues" }
        div.cards {
            div.card { "queues" b #queue-count { (queues.len()) } }
            div.card { "ready" b { (queues.iter().map(|q| q.ready).sum::<u64>()) } }
            div.card { "in flight" b { (queues.iter().map(|q| q.in_flight).sum::<u64>()) } }
            div.card { "dead" b #dead-total { (dead) } }
            div.card { a href=(app.link("/locks")) { "lock namespaces" } b { (locks) } }
            div.card { a href=(app.link("/caches")) { "caches" } b { (caches) } }
        }
        @if !app.opts.read_only && dead > 0 {
            div.actions {
                (action_button(&app, &session, &app.link("/actions/replay-everything"), &[("action", "replay_everything")], "Replay every dead message of every queue", true))
            }
        }
        @if queues.is_empty() {
            p.muted { "No queue is registered yet. Queues register themselves when a process creates them (rqueue ≥ 0.1)." }
        } @else {
            table #queues {
                thead { tr {
                    th { "queue" } th.n { "ready" } th.n { "delayed" } th.n { "in flight" } th.n { "dead" }
                    th { "oldest ready" } th.n { "processed/min" } th.n { "failed/min" } th { "last hour (processed)" } th { "state" }
                } }
                tbody {
                    @for q in &queues {
                        @let r = QueueRef::new(q.namespace.clone(), q.name.clone());
                        @let (p, fl, ps, _fs) = per_minute(q);
                        @if let Some(err) = &q.error {
                            tr.error data-queue=(q.queue) {
                                td { a href=(queue_link(&app, &r)) { (q.queue) } }
                                td colspan="9" { "cannot be read: " (err) }
                            }
                        } @else {
                            tr data-queue=(q.queue) {
                                td { a href=(queue_link(&app, &r)) { (q.queue) } }
                                td.n.ready { (q.ready) }
                                td.n.delayed { (q.delayed) }
                                td.n.in_flight { (q.in_flight) }
                                td.n.dead { (q.dead) }
                                td { @if let Some(a) = q.oldest_ready_age_ms { (duration(a)) } @else { span.muted { "—" } } }
                                td.n.processed { (p) }
                                td.n.failed { (fl) }
                                td { (sparkline(&ps)) }
                                td { @if q.paused { span.badge.warn { "paused" } } @else { span.badge.ok { "running" } } }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, page(&app, "Queues", body))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    list: Option<String>,
    page: Option<usize>,
    done: Option<String>,
}

/// `GET /queues/{ns}/{name}`: counters, controls and one list, paged.
pub(crate) async fn queue(
    State(app): State<Shared>,
    Extension(session): Extension<Session>,
    Path((ns, name)): Path<(String, String)>,
    Query(lq): Query<ListQuery>,
) -> Response {
    let r = QueueRef::new(ns, name);
    let list = match lq.list.as_deref().unwrap_or("dead").parse::<List>() {
        Ok(l) => l,
        Err(e) => return error_response(&app, &e),
    };
    let page_no = lq.page.unwrap_or(0);
    let s = match app.console.queue(&r).await {
        Ok(s) => s,
        Err(e) => return error_response(&app, &e),
    };
    let rows = match app.console.messages(&r, list, page_no * PAGE, PAGE).await {
        Ok(rows) => rows,
        Err(e) => return error_response(&app, &e),
    };
    let total = match list {
        List::Ready => s.ready,
        List::Delayed => s.delayed,
        List::InFlight => s.in_flight,
        List::Dead => s.dead,
        List::Completed => 0,
    };
    let base = queue_link(&app, &r);
    let action = format!("{base}/action");
    let (p, fl, ps, fs) = per_minute(&s);
    let body = html! {
        (flash(lq.done.as_deref()))
        h1 { "Queue " (r.to_string()) @if s.paused { " " span.badge.warn #paused { "paused" } } }
        div.cards {
            div.card { "ready" b #ready { (s.ready) } }
            div.card { "delayed" b #delayed { (s.delayed) } }
            div.card { "in flight" b #in-flight { (s.in_flight) } }
            div.card { "dead" b #dead { (s.dead) } }
            div.card { "oldest ready" b { @if let Some(a) = s.oldest_ready_age_ms { (duration(a)) } @else { "—" } } }
            div.card { "processed/min" b { (p) } (sparkline(&ps)) }
            div.card { "failed/min" b { (fl) } (sparkline(&fs)) }
        }
        table.counters {
            tr {
                th { "enqueued" } th { "claimed" } th { "processed" } th { "failed" } th { "died" } th { "replayed" } th { "purged" } th { "reclaimed" } th { "limits" }
            }
            tr {
                td.n { (s.enqueued) } td.n { (s.claimed) } td.n { (s.processed) } td.n { (s.failed) } td.n { (s.died) }
                td.n { (s.replayed) } td.n { (s.purged) } td.n { (s.reclaimed) }
                td {
                    @if let Some((max, window)) = s.rate_limit { (max) " per " (duration(window)) " " }
                    @if let Some(c) = s.concurrency_limit { "≤ " (c) " in flight" }
                    @if s.rate_limit.is_none() && s.concurrency_limit.is_none() { span.muted { "none" } }
                }
            }
        }
        @if !app.opts.read_only {
            div.actions {
                @if s.paused {
                    (action_button(&app, &session, &action, &[("action", "resume")], "Resume", false))
                } @else {
                    (action_button(&app, &session, &action, &[("action", "pause")], "Pause", false))
                }
                @if s.dead > 0 {
                    (action_button(&app, &session, &action, &[("action", "replay_all")], "Replay all dead", false))
                    (action_button(&app, &session, &action, &[("action", "purge")], "Purge dead set", true))
                }
            }
        }
        h2 { "Messages" }
        nav.tabs {
            @for l in List::ALL {
                a.on[l == list] href=(format!("{base}?list={}", l.name())) { (l.name().replace('_', " ")) }
            }
        }
        (rows_table(&app, &session, &r, list, &rows, &action))
        div.actions {
            @if page_no > 0 { a href=(format!("{base}?list={}&page={}", list.name(), page_no - 1)) { "← newer page" } }
            span.muted { "page " (page_no + 1) @if total > 0 { " of " (total.div_ceil(PAGE as u64)) } }
            @if rows.len() == PAGE { a href=(format!("{base}?list={}&page={}", list.name(), page_no + 1)) { "next page →" } }
        }
    };
    respond(StatusCode::OK, page(&app, &r.to_string(), body))
}

fn rows_table(
    app: &App,
    session: &Session,
    r: &QueueRef,
    list: List,
    rows: &[MessageRow],
    action: &str,
) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted #empty { "Nothing in this list." }
        } @else {
            table #messages {
                thead { tr {
                    th { "id" } th { "state" } th { "time" } th { "reason" } th { "payload" }
                    @if list == List::Dead && !app.opts.read_only { th { "" } }
                } }
                tbody {
                    @for m in rows {
                        tr data-id=(m.id) {
                            td { a href=(format!("{}/jobs/{}", queue_link(app, r), seg(&m.id))) { (m.id) } }
                            td { (m.state) }
                            td { (when(m.at_ms)) }
                            td { @if let Some(reason) = &m.reason { (reason) } }
                            td.payload {
                                @if let Some(v) = &m.payload { code { (short(&v.to_string())) } }
                                @if let Some(e) = &m.payload_error { span.bad { (e) } }
                            }
                            @if list == List::Dead && !app.opts.read_only {
                                td {
                                    (action_button(app, session, action, &[("action", "replay"), ("id", &m.id)], "Replay", false))
                                    " "
                                    (action_button(app, session, action, &[("action", "delete"), ("id", &m.id)], "Delete", true))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 160 {
        let mut out: String = s.chars().take(160).collect();
        out.push('…');
        out
    } else {
        s.to_string()
    }
}

/// `GET /queues/{ns}/{name}/jobs/{id}`.
pub(crate) async fn job(
    State(app): State<Shared>,
    Path((ns, name, id)): Path<(String, String, String)>,
) -> Response {
    let r = QueueRef::new(ns, name);
    let j = match app.console.job(&r, &id).await {
        Ok(j) => j,
        Err(e) => return error_response(&app, &e),
    };
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let body = html! {
        h1 { "Job " (j.id) " " span.badge #state { (j.state) } }
        p { "in " a href=(queue_link(&app, &r)) { (r.to_string()) } }
        table.kv {
            tr { th { "enqueued" } td { (when(j.enqueued_ms)) } }
            @if j.due_ms.is_some() { tr { th { "due" } td { (when(j.due_ms)) } } }
            @if let Some(w) = &j.worker { tr { th { "worker" } td { (w) } } }
            @if j.lease_deadline_ms.is_some() { tr { th { "lease ends" } td { (when(j.lease_deadline_ms)) } } }
            tr { th { "started" } td { (when(j.started_ms)) } }
            @if j.finished_ms.is_some() { tr { th { "finished" } td { (when(j.finished_ms)) } } }
            @if j.died_ms.is_some() { tr { th { "died" } td { (when(j.died_ms)) } } }
            tr { th { "attempts" } td { (j.failures) " failed of " (j.max_attempts) " allowed; " (j.stalls) " stalls" } }
            tr { th { "priority" } td { (j.priority) } }
            @if let Some((v, m)) = &j.progress { tr { th { "progress" } td { (v) " — " (m) } } }
            @if let Some(s) = &j.schedule { tr { th { "schedule" } td { (s) } } }
        }
        h2 { "Errors, newest first" }
        @if j.errors.is_empty() { p.muted { "None." } } @else {
            table #errors {
                thead { tr { th { "attempt" } th { "when" } th { "error" } } }
                tbody { @for e in &j.errors { tr { td.n { (e.attempt) } td { (when(e.at_ms)) } td { (e.error) } } } }
            }
        }
        h2 { "Payload" }
        @match &j.payload { Some(p) => pre #payload { (pretty(p)) }, None => p.muted { "Not stored any more." } }
        @if let Some(res) = &j.result { h2 { "Result" } pre #result { (pretty(res)) } }
    };
    respond(StatusCode::OK, page(&app, &j.id, body))
}

#[derive(Deserialize)]
pub(crate) struct FindQuery {
    id: Option<String>,
}

/// `GET /find?id=…`: a job by id, in any queue.
pub(crate) async fn find(State(app): State<Shared>, Query(fq): Query<FindQuery>) -> Response {
    let id = fq.id.unwrap_or_default();
    let id = id.trim();
    if id.is_empty() {
        return error_response(&app, &Error::Usage("give a job id to look for".into()));
    }
    let found = match app.console.find_job(id).await {
        Ok(f) => f,
        Err(e) => return error_response(&app, &e),
    };
    if let [one] = found.as_slice()
        && let Ok(r) = QueueRef::parse(&one.queue)
    {
        let to = format!("{}/jobs/{}", queue_link(&app, &r), seg(&one.id));
        return Redirect::to(&to).into_response();
    }
    if found.is_empty() {
        return error_response(
            &app,
            &Error::NotFound {
                kind: "job",
                name: id.to_string(),
            },
        );
    }
    let body = html! {
        h1 { "Job " (id) }
        ul { @for j in &found {
            @if let Ok(r) = QueueRef::parse(&j.queue) {
                li { a href=(format!("{}/jobs/{}", queue_link(&app, &r), seg(&j.id))) { (j.queue) } " — " (j.state) }
            }
        } }
    };
    respond(StatusCode::OK, page(&app, "Find", body))
}

#[derive(Deserialize)]
pub(crate) struct ActionForm {
    action: String,
    id: Option<String>,
    csrf: String,
    confirm: Option<String>,
}

/// `POST /queues/{ns}/{name}/action`: replay / delete one dead message, replay all, purge,
/// pause, resume — after a confirmation page.
pub(crate) async fn action(
    State(app): State<Shared>,
    Extension(session): Extension<Session>,
    Path((ns, name)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(e) = check_csrf(&app, &session, &form.csrf) {
        return error_response(&app, &e);
    }
    let r = QueueRef::new(ns, name);
    let base = queue_link(&app, &r);
    let action_url = format!("{base}/action");
    let id = form.id.clone().unwrap_or_default();
    let (question, warning) = match form.action.as_str() {
        "replay" => (format!("Replay dead message {id} of {r}?"), None),
        "delete" => (
            format!("Delete dead message {id} of {r} for good?"),
            Some("Its payload is gone afterwards."),
        ),
        "replay_all" => (format!("Replay every dead message of {r}?"), None),
        "purge" => (
            format!("Delete every dead message of {r} for good?"),
            Some("Their payloads are gone afterwards."),
        ),
        "pause" => (
            format!("Pause {r}? Workers stop claiming; running jobs finish."),
            None,
        ),
        "resume" => (format!("Resume {r}?"), None),
        other => {
            return error_response(&app, &Error::Usage(format!("unknown action {other:?}")));
        }
    };
    if form.confirm.as_deref() != Some("yes") {
        let mut fields = vec![("action", form.action.as_str())];
        if form.id.is_some() {
            fields.push(("id", id.as_str()));
        }
        return confirm_page(
            &app,
            &session,
            &action_url,
            &fields,
            &question,
            warning,
            &base,
        );
    }
    let c = &app.console;
    let ids = vec![id.clone()];
    let done = match form.action.as_str() {
        "replay" => c
            .replay(&r, &ids)
            .await
            .map(|n| format!("Replayed {n} message(s).")),
        "delete" => c
            .delete_dead(&r, &ids)
            .await
            .map(|n| format!("Deleted {n} message(s).")),
        "replay_all" => c
            .replay_all(&r, |_| {})
            .await
            .map(|n| format!("Replayed {n} message(s).")),
        "purge" => c
            .purge_dead(&r)
            .await
            .map(|n| format!("Purged {n} message(s).")),
        "pause" => c.set_paused(&r, true).await.map(|()| "Paused.".to_string()),
        _ => c
            .set_paused(&r, false)
            .await
            .map(|()| "Resumed.".to_string()),
    };
    match done {
        Ok(msg) => {
            tracing::info!(queue = %r, action = %form.action, id = %id, result = %msg, "console action");
            redirect_done(&format!("{base}?list=dead"), &msg)
        }
        Err(e) => error_response(&app, &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: String,
    confirm: Option<String>,
}

/// `POST /actions/replay-everything`: replays every dead message of every queue.
pub(crate) async fn replay_everything(
    State(app): State<Shared>,
    Extension(session): Extension<Session>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Err(e) = check_csrf(&app, &session, &form.csrf) {
        return error_response(&app, &e);
    }
    let url = app.link("/actions/replay-everything");
    if form.confirm.as_deref() != Some("yes") {
        return confirm_page(
            &app,
            &session,
            &url,
            &[("action", "replay_everything")],
            "Replay every dead message of every queue?",
            None,
            &app.link("/"),
        );
    }
    match app.console.replay_everything().await {
        Ok(done) => {
            let n: u64 = done.iter().map(|(_, n)| n).sum();
            tracing::info!(
                replayed = n,
                queues = done.len(),
                "console replayed every dead message"
            );
            redirect_done(
                &app.link("/"),
                &format!("Replayed {n} message(s) in {} queue(s).", done.len()),
            )
        }
        Err(e) => error_response(&app, &e),
    }
}
