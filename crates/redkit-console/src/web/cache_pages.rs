//! Cache pages: every cache with its counters summed over processes, and one cache with its
//! processes and breakers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::app::Shared;
use super::layout::{duration, error_response, page, respond, seg, when};
use crate::caches::CacheView;

fn ratio(v: &CacheView) -> Markup {
    html! {
        @match v.hit_ratio {
            Some(r) => { (format!("{:.1} %", r * 100.0)) }
            None => { span.muted { "—" } }
        }
    }
}

fn breakers(v: &CacheView) -> Markup {
    html! {
        @if v.breakers_open > 0 {
            span.badge.bad { (v.breakers_open) " open" }
        } @else if v.live_processes > 0 {
            span.badge.ok { "closed" }
        } @else {
            span.muted { "no live process" }
        }
    }
}

/// `GET /caches`.
pub(crate) async fn list(State(app): State<Shared>) -> Response {
    let caches = match app.console.caches().await {
        Ok(c) => c,
        Err(e) => return error_response(&app, &e),
    };
    let body = html! {
        h1 { "Caches" }
        p.muted { "Counters are summed over every process that used the cache (each flushes at most once a second)." }
        @if caches.is_empty() { p.muted #empty { "No cache is registered yet. A cache-core Cache registers its namespace when it is created." } } @else {
            table #caches {
                thead { tr {
                    th { "cache" } th.n { "hits" } th.n { "misses" } th.n { "hit ratio" } th.n { "builds" } th.n { "stale served" } th.n { "redis errors" } th.n { "processes" } th { "breaker" }
                } }
                tbody { @for v in &caches {
                    @let link = app.link(&format!("/caches/{}", seg(&v.namespace)));
                    @if let Some(err) = &v.error {
                        tr.error data-cache=(v.namespace) {
                            td { a href=(link) { (v.namespace) } }
                            td colspan="8" { "cannot be read: " (err) }
                        }
                    } @else {
                        tr data-cache=(v.namespace) {
                            td { a href=(link) { (v.namespace) } }
                            td.n.hits { (v.hits) }
                            td.n.misses { (v.misses) }
                            td.n.ratio { (ratio(v)) }
                            td.n.builds { (v.builds) }
                            td.n { (v.stale_served) }
                            td.n { (v.redis_errors) }
                            td.n.processes { (v.live_processes) }
                            td.breaker { (breakers(v)) }
                        }
                    }
                } }
            }
        }
    };
    respond(StatusCode::OK, page(&app, "Caches", body))
}

/// `GET /caches/{ns}`.
pub(crate) async fn one(State(app): State<Shared>, Path(ns): Path<String>) -> Response {
    let v = match app.console.cache(&ns).await {
        Ok(v) => v,
        Err(e) => return error_response(&app, &e),
    };
    let body = html! {
        h1 { "Cache " (v.namespace) " " (breakers(&v)) }
        div.cards {
            div.card { "hits" b #hits { (v.hits) } }
            div.card { "misses" b #misses { (v.misses) } }
            div.card { "hit ratio" b #ratio { (ratio(&v)) } }
            div.card { "builds" b #builds { (v.builds) } }
            div.card { "stale served" b #stale { (v.stale_served) } }
            div.card { "live processes" b #processes { (v.live_processes) } }
        }
        @if !v.settings.is_empty() {
            p.muted { "settings: " @for (k, val) in &v.settings { code { (k) "=" (val) } " " } }
        }
        h2 { "Every counter (all processes)" }
        table.kv #counters { @for (k, n) in &v.counters { tr { th { (k) } td.n { (n) } } } }
        h2 { "Processes (last hour)" }
        @if v.processes.is_empty() { p.muted { "No process has flushed its counters in the last hour." } } @else {
            table #cache-processes {
                thead { tr { th { "process" } th { "breaker" } th { "last flush" } th.n { "hits" } th.n { "misses" } th.n { "builds" } } }
                tbody { @for p in &v.processes {
                    tr.muted[!p.live] {
                        td { code { (p.id) } }
                        td { @if p.breaker == "open" { span.badge.bad { (p.breaker) } } @else { (p.breaker) } }
                        td { (when(Some(p.last_seen_ms))) @if !p.live { " (gone: " (duration(p.age_ms)) ")" } }
                        td.n { (p.hits) } td.n { (p.misses) } td.n { (p.builds) }
                    }
                } }
            }
        }
    };
    respond(StatusCode::OK, page(&app, &v.namespace, body))
}
