//! The page shell, the stylesheet and small rendering helpers shared by every page.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::app::{App, Session};
use crate::error::Error;

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f8f9fb; --ok:#1a7f37; --warn:#9a6700; --bad:#cf222e; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.2rem; background:#1d2330; color:#fff; flex-wrap:wrap; }
header a { color:#d0d7e2; text-decoration:none; } header a:hover { color:#fff; }
header .brand { font-weight:700; color:#fff; }
header form { margin-left:auto; display:flex; gap:.3rem; }
main { padding:1rem 1.2rem 3rem; max-width:1400px; }
h1 { font-size:1.3rem; margin:.2rem 0 1rem; } h2 { font-size:1.05rem; margin:1.5rem 0 .5rem; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:.35rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f2f4f7; font-weight:600; font-size:.85rem; color:var(--muted); }
td.n, th.n { text-align:right; font-variant-numeric: tabular-nums; }
tr.error td { background:#fff1f0; color:var(--bad); }
a { color:var(--accent); }
pre { background:#fff; border:1px solid var(--line); padding:.6rem; overflow:auto; max-height:30rem; white-space:pre-wrap; word-break:break-all; }
.muted { color:var(--muted); } .ok { color:var(--ok); } .warn { color:var(--warn); } .bad { color:var(--bad); }
.badge { display:inline-block; padding:0 .45rem; border-radius:.6rem; font-size:.8rem; background:#eef2f6; }
.badge.bad { background:#ffebe9; } .badge.warn { background:#fff8c5; } .badge.ok { background:#dafbe1; }
.spark { font-family: ui-monospace, monospace; letter-spacing:-1px; color:var(--accent); }
.cards { display:flex; gap:1rem; flex-wrap:wrap; margin-bottom:1rem; }
.card { background:#fff; border:1px solid var(--line); padding:.6rem .9rem; min-width:9rem; }
.card b { display:block; font-size:1.3rem; }
.actions { display:flex; gap:.5rem; flex-wrap:wrap; margin:.6rem 0; }
.actions form, td form { display:inline; }
button { font:inherit; padding:.2rem .7rem; border:1px solid #c9ced6; background:#fff; border-radius:4px; cursor:pointer; }
button.danger { border-color:var(--bad); color:var(--bad); }
nav.tabs a { margin-right:.8rem; } nav.tabs a.on { font-weight:700; color:var(--fg); text-decoration:none; }
.flash { background:#dafbe1; border:1px solid #aceebb; padding:.5rem .8rem; margin-bottom:1rem; }
.outage { background:#ffebe9; border:1px solid #ffb8b0; padding:.8rem; }
input[type=text], input[type=password] { font:inherit; padding:.2rem .4rem; border:1px solid #c9ced6; border-radius:4px; }
"#;

/// `GET /style.css`.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE,
    )
        .into_response()
}

/// A path segment, percent-encoded.
pub(crate) fn seg(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The page shell.
pub(crate) fn page(app: &App, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · redkit" }
                link rel="stylesheet" href=(app.link("/style.css"));
            }
            body {
                header {
                    a.brand href=(app.link("/")) { "redkit" }
                    a href=(app.link("/")) { "Queues" }
                    a href=(app.link("/locks")) { "Locks" }
                    a href=(app.link("/caches")) { "Caches" }
                    a href=(app.link("/doctor")) { "Doctor" }
                    a href=(app.link("/metrics")) { "Metrics" }
                    @if app.opts.read_only { span.badge { "read-only" } }
                    form method="get" action=(app.link("/find")) {
                        input type="text" name="id" placeholder="find a job by id" aria-label="job id";
                        button type="submit" { "Find" }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

pub(crate) fn error_page(app: &App, status: StatusCode, title: &str, message: &str) -> Response {
    respond(
        status,
        page(
            app,
            title,
            html! {
                h1 { (title) }
                p.bad { (message) }
                p { a href=(app.link("/")) { "Back to the overview" } }
            },
        ),
    )
}

/// Redis is down: say so, and reload every 5 s until it is back.
pub(crate) fn outage_page(app: &App, message: &str) -> Response {
    let body = html! {
        meta http-equiv="refresh" content="5";
        h1 { "Redis is unreachable" }
        div.outage #outage {
            p { (message) }
            p.muted { "This page reloads every 5 seconds and shows the console again as soon as Redis answers." }
        }
    };
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        page(app, "Redis unreachable", body),
    )
}

/// The `?done=…` of a page reached after an action.
#[derive(Deserialize)]
pub(crate) struct Flash {
    pub(crate) done: Option<String>,
}

/// The message of a finished action, above the page.
pub(crate) fn flash(done: Option<&str>) -> Markup {
    html! { @if let Some(d) = done { div.flash role="status" { (d) } } }
}

/// `303 See Other` to `to`, carrying `done` for [`flash`].
pub(crate) fn redirect_done(to: &str, done: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let url = format!("{to}{sep}done={}", seg(done));
    (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response()
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf_field(app: &App, session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(app.csrf(session)); }
}

/// A one-button POST form (no confirmation flag: the server answers with a confirmation page).
pub(crate) fn action_button(
    app: &App,
    session: &Session,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    danger: bool,
) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf_field(app, session))
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            @let act = fields.iter().find(|(k, _)| *k == "action").map_or("", |(_, v)| *v);
            @if danger {
                button.danger type="submit" data-action=(act) { (label) }
            } @else {
                button type="submit" data-action=(act) { (label) }
            }
        }
    }
}

/// The confirmation step of a mutating action: the same form again, with `confirm=yes`.
pub(crate) fn confirm_page(
    app: &App,
    session: &Session,
    action: &str,
    fields: &[(&str, &str)],
    question: &str,
    warning: Option<&str>,
    back: &str,
) -> Response {
    let body = html! {
        h1 { "Confirm" }
        p { (question) }
        @if let Some(w) = warning { p.warn { (w) } }
        div.actions {
            form method="post" action=(action) {
                (csrf_field(app, session))
                @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
                input type="hidden" name="confirm" value="yes";
                button.danger type="submit" id="confirm" { "Yes, do it" }
            }
            a href=(back) { "Cancel" }
        }
    };
    respond(StatusCode::OK, page(app, "Confirm", body))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `3 s ago`, `in 2 min`, with the UTC time as a tooltip.
pub(crate) fn when(ms: Option<u64>) -> Markup {
    let Some(ms) = ms else {
        return html! { span.muted { "—" } };
    };
    let now = now_ms();
    let rel = if ms <= now {
        format!("{} ago", duration(now - ms))
    } else {
        format!("in {}", duration(ms - now))
    };
    html! { span title=(utc(ms)) { (rel) } }
}

/// A duration in ms, short: `850 ms`, `12 s`, `3 min`, `2 h`, `4 d`.
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        7_200_000..172_800_000 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// A text sparkline of per-minute counts.
pub(crate) fn sparkline(values: &[u64]) -> Markup {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    let s: String = values
        .iter()
        .map(|&v| {
            if max == 0 || v == 0 {
                ' '
            } else {
                let i = usize::try_from(v.saturating_mul(7) / max).unwrap_or(7);
                BARS.get(i).copied().unwrap_or('█')
            }
        })
        .collect();
    html! { span.spark { (PreEscaped("&#8203;")) (s) } }
}

/// An error as a page: 404 for unknown names, 503 (reloading itself) when Redis is down.
pub(crate) fn error_response(app: &App, e: &Error) -> Response {
    match e {
        Error::NotFound { .. } => {
            error_page(app, StatusCode::NOT_FOUND, "Not found", &e.to_string())
        }
        Error::Redis(_) => outage_page(app, &e.to_string()),
        Error::Usage(_) => error_page(app, StatusCode::BAD_REQUEST, "Bad request", &e.to_string()),
        Error::Refused(_) => error_page(app, StatusCode::FORBIDDEN, "Refused", &e.to_string()),
        Error::Unreadable(_) => error_page(
            app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unreadable data",
            &e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(1_764_064_000_123), "2025-11-25 09:46:40.123 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(duration(61_000), "61 s");
        assert_eq!(seg("a/b {c}"), "a%2Fb%20%7Bc%7D");
    }
}
