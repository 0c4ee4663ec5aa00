//! The lock, cache and doctor pages in a real browser (headless chromium over WebDriver)
//! against a live standalone Redis, the console mounted under a service's own path, and a
//! live `/metrics` scrape checked by `promtool check metrics` and against the libraries'
//! own figures. Screenshots go to `<target>/console-screenshots/`.

use std::time::Duration;

use cache_core::Cache;
use redkit_console::Console;
use redkit_console::web::WebOptions;
use testkit::Kind;

mod common;
use common::browser::{Browser, get, serve, target_dir, urlenc};
use common::{
    cache_config, lock_client, qname, queue, registered, registered_prefix, seed, shared,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_pages_show_the_holder_and_force_release_needs_a_confirmation() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let ns = testkit::unique_name("t:console:web-locks");
    let locks = lock_client(&redis, &ns);
    let stuck = locks.lock("nightly<job>").acquire().await.expect("held");
    let info = locks
        .inspect("nightly<job>")
        .await
        .expect("inspect")
        .expect("held");
    registered_prefix(&redis, &ns).await;
    let (url, addr) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let browser = Browser::start("locks").await;
    browser.goto(&format!("{url}/locks")).await;
    browser
        .click(&format!("tr[data-namespace=\"{ns}\"] a"))
        .await;
    browser.wait_for("#locks", Duration::from_secs(10)).await;
    assert_eq!(browser.text("#held").await, "1");
    let row = "tr[data-lock=\"nightly<job>\"]";
    assert_eq!(
        browser.text(&format!("{row} td.fence")).await,
        stuck.fence().to_string()
    );
    assert_eq!(
        browser.text(&format!("{row} td.owners")).await,
        info.owners.join(" ")
    );
    browser.screenshot("held-locks").await;
    browser.click(&format!("{row} a")).await;
    browser.wait_for("#fence", Duration::from_secs(10)).await;
    assert_eq!(browser.text("#fence").await, stuck.fence().to_string());
    browser.screenshot("lock").await;
    browser.click("button[data-action=\"force_release\"]").await;
    browser.wait_for("#confirm", Duration::from_secs(10)).await;
    assert!(
        browser.source().await.contains("fencing token"),
        "the confirmation says what fencing does"
    );
    assert!(
        locks
            .inspect("nightly<job>")
            .await
            .expect("inspect")
            .is_some(),
        "not released before confirming"
    );
    browser.screenshot("force-release-confirm").await;
    browser.click("#confirm").await;
    browser.wait_for(".flash", Duration::from_secs(10)).await;
    assert_eq!(locks.inspect("nightly<job>").await.expect("inspect"), None);
    assert_eq!(browser.text("#held").await, "0");
    tokio::time::timeout(Duration::from_secs(5), stuck.lost())
        .await
        .expect("the holder learns it lost the lock");
    // Unknown namespace or lock: 404.
    assert_eq!(
        get(addr, "/locks/t%3Aconsole%3Ano-such-ns", "").await.0,
        404
    );
    assert_eq!(
        get(addr, &format!("/locks/{}/not-held", urlenc(&ns)), "")
            .await
            .0,
        404
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_pages_show_counters_summed_over_processes() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let ns = testkit::unique_name("t:console:web-cache");
    let a = Cache::new(redis.clone(), cache_config(&ns)).expect("a");
    let b = Cache::new(redis.clone(), cache_config(&ns)).expect("b");
    for (cache, n) in [(&a, 6), (&b, 4)] {
        for _ in 0..n {
            let _: Option<String> = cache
                .get_or_set("k", None, || async {
                    Ok::<_, std::convert::Infallible>(Some("v".into()))
                })
                .await
                .expect("get");
        }
        cache.flush_shared_stats().await.expect("flush");
    }
    registered_prefix(&redis, &ns).await;
    let (url, addr) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let browser = Browser::start("caches").await;
    browser.goto(&format!("{url}/caches")).await;
    let row = format!("tr[data-cache=\"{ns}\"]");
    // One build (a's first lookup), nine hits over the two instances.
    assert_eq!(browser.text(&format!("{row} td.hits")).await, "9");
    assert_eq!(browser.text(&format!("{row} td.misses")).await, "1");
    assert_eq!(browser.text(&format!("{row} td.ratio")).await, "90.0 %");
    assert_eq!(browser.text(&format!("{row} td.processes")).await, "2");
    browser.screenshot("caches").await;
    browser.click(&format!("{row} a")).await;
    browser
        .wait_for("#cache-processes", Duration::from_secs(10))
        .await;
    assert_eq!(browser.text("#hits").await, "9");
    assert_eq!(browser.count("#cache-processes tbody tr").await, 2);
    browser.screenshot("cache").await;
    assert_eq!(
        get(addr, "/caches/t%3Aconsole%3Ano-such-cache", "").await.0,
        404
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_page_lists_the_findings() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let report = Console::new(redis.clone()).doctor().await.expect("doctor");
    let (url, _) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let browser = Browser::start("doctor").await;
    browser.goto(&format!("{url}/doctor")).await;
    browser.wait_for("#findings", Duration::from_secs(30)).await;
    assert_eq!(
        browser.text("#worst").await,
        format!("{:?}", report.worst()).to_lowercase()
    );
    assert!(browser.count("#findings tbody tr").await >= 1);
    browser.screenshot("doctor").await;
    browser.close().await;
}

/// A service mounting the console under its own path, behind its own auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_mounted_under_a_service_path_links_under_it() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "web-nested");
    seed(&q, 2, 0, 0, 1).await;
    registered(&redis, &q).await;
    let mut opts = WebOptions::default();
    opts.base_path = "/ops/redkit".into();
    let console = redkit_console::web::router(Console::new(redis.clone()), opts);
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { "the service's own page" }),
        )
        .nest("/ops/redkit", console)
        .layer(axum::middleware::from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| async move {
                // The service's own auth in front of the console.
                if req.headers().contains_key("x-service-user")
                    || !req.uri().path().starts_with("/ops")
                {
                    next.run(req).await
                } else {
                    axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::FORBIDDEN,
                        "service auth",
                    ))
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    assert_eq!(
        get(addr, "/ops/redkit", "").await.0,
        403,
        "service auth first"
    );
    let (status, page) = get(addr, "/ops/redkit", "x-service-user: ops\r\n").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&qname(&q)), "{page}");
    for link in [
        "href=\"/ops/redkit\"",
        "href=\"/ops/redkit/style.css\"",
        "href=\"/ops/redkit/locks\"",
    ] {
        assert!(page.contains(link), "{link} missing");
    }
    assert!(
        page.contains(&format!(
            "href=\"/ops/redkit/queues/{}/{}\"",
            urlenc(&q.config().namespace),
            urlenc(&q.config().name)
        )),
        "queue links under the mount path"
    );
    assert!(
        !page.contains("href=\"/locks\""),
        "no link escapes the mount path"
    );
    // Every link of the page is routed through the mount: the console's own pages answer
    // 200; other tests' queues on the shared server may answer an error page about their
    // data (a foreign key type is 422), never a 404 of the router.
    let links: Vec<&str> = page
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(links.len() >= 6, "{links:?}");
    let ours = format!(
        "/ops/redkit/queues/{}/{}",
        urlenc(&q.config().namespace),
        urlenc(&q.config().name)
    );
    for link in links {
        let (status, _) = get(addr, link, "x-service-user: ops\r\n").await;
        if link.starts_with("/ops/redkit/queues/") && link != ours {
            assert_ne!(status, 404, "{link}");
        } else {
            assert_eq!(status, 200, "{link}");
        }
    }
    assert_eq!(get(addr, "/", "").await.0, 200, "the service's own routes");
}

/// Every series family the console adds to redis-diag's exporter.
const FAMILIES: &[&str] = &[
    "redkit_queue_ready",
    "redkit_queue_dead",
    "redkit_queue_processed_total",
    "redkit_lock_held",
    "redkit_lock_held_seconds",
    "redkit_lock_oldest_held_seconds",
    "redkit_lock_waiters",
    "redkit_cache_shared_hits_total",
    "redkit_cache_shared_misses_total",
    "redkit_cache_shared_breaker_open",
    "redkit_cache_shared_processes",
    "redkit_console_redis_up",
    "redis_up",
];

/// The value of the sample `name{labels}` (labels as the console writes them).
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let head = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&head))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_metrics_scrape_passes_promtool_and_matches_the_libraries() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "metrics\"q");
    seed(&q, 3, 1, 0, 2).await;
    registered(&redis, &q).await;
    let lock_ns = testkit::unique_name("t:console:metrics-locks");
    let locks = lock_client(&redis, &lock_ns);
    let held = locks.lock("a").acquire().await.expect("held");
    let cache_ns = testkit::unique_name("t:console:metrics-cache");
    let cache = Cache::new(redis.clone(), cache_config(&cache_ns)).expect("cache");
    for _ in 0..5 {
        let _: Option<String> = cache
            .get_or_set("k", None, || async {
                Ok::<_, std::convert::Infallible>(Some("v".into()))
            })
            .await
            .expect("get");
    }
    cache.flush_shared_stats().await.expect("flush");
    registered_prefix(&redis, &lock_ns).await;
    registered_prefix(&redis, &cache_ns).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the lock is held ≥ 1 s
    let (_, addr) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let (status, resp) = get(addr, "/metrics", "").await;
    assert_eq!(status, 200, "{resp}");
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .expect("a body");
    assert!(
        resp.to_ascii_lowercase().contains("content-length:"),
        "a sized body, not chunks"
    );
    let text = body;
    let file = target_dir().join("console-screenshots").join("metrics.txt");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("dir");
    std::fs::write(&file, &text).expect("save the scrape");

    if let Err(e) = testkit::promtool::check_metrics(&text) {
        panic!("{e}\nscrape saved at {}", file.display());
    }
    for f in FAMILIES {
        assert!(text.contains(&format!("# TYPE {f} ")), "no {f} family");
    }
    let s = q.stats().await.expect("stats");
    let ql = format!(
        "namespace=\"{}\",queue=\"{}\"",
        q.config().namespace,
        q.config().name.replace('"', "\\\"")
    );
    assert_eq!(
        sample(&text, "redkit_queue_ready", &ql),
        Some(s.ready as f64)
    );
    assert_eq!(sample(&text, "redkit_queue_dead", &ql), Some(s.dead as f64));
    let ll = format!("namespace=\"{lock_ns}\"");
    assert_eq!(sample(&text, "redkit_lock_held", &ll), Some(1.0));
    let oldest = sample(&text, "redkit_lock_oldest_held_seconds", &ll).expect("oldest");
    assert!((1.0..60.0).contains(&oldest), "{oldest}");
    let cl = format!("namespace=\"{cache_ns}\"");
    assert_eq!(
        sample(&text, "redkit_cache_shared_hits_total", &cl),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, "redkit_cache_shared_misses_total", &cl),
        Some(1.0)
    );
    assert_eq!(sample(&text, "redkit_console_redis_up", ""), None);
    assert!(text.contains("redkit_console_redis_up 1"), "redis up");
    held.release().await.expect("release");
}
