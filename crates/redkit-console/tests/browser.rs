//! The web console in a real browser (headless chromium over WebDriver) against a live
//! standalone Redis with seeded queues. Each test saves screenshots under
//! `<target>/console-screenshots/`.

use std::time::Duration;

use redkit_console::Console;
use redkit_console::web::{Auth, WebOptions};
use testkit::Kind;

mod common;
use common::browser::{Browser, get, http, serve, urlenc};
use common::{Order, qname, queue, registered, seed, shared};

fn sel_queue(q: &str, cell: &str) -> String {
    format!("tr[data-queue=\"{q}\"] td.{cell}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_lists_the_seeded_queues_with_their_counts() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let a = queue(&redis, "web-a");
    let b = queue(&redis, "web-b");
    seed(&a, 4, 2, 1, 3).await;
    seed(&b, 7, 0, 0, 1).await;
    registered(&redis, &a).await;
    registered(&redis, &b).await;
    let (url, _) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let browser = Browser::start("overview").await;
    browser.goto(&format!("{url}/")).await;
    for q in [&a, &b] {
        let s = q.stats().await.expect("stats");
        let name = qname(q);
        for (cell, want) in [
            ("ready", s.ready),
            ("delayed", s.delayed),
            ("in_flight", s.in_flight),
            ("dead", s.dead),
        ] {
            assert_eq!(
                browser.text(&sel_queue(&name, cell)).await,
                want.to_string(),
                "{name} {cell}"
            );
        }
    }
    assert_eq!(browser.text(&sel_queue(&qname(&a), "ready")).await, "4");
    browser.screenshot("overview").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_one_then_replay_all_from_the_dead_page() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "web-replay");
    let dead = seed(&q, 0, 0, 0, 4).await;
    let (url, _) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let page = format!(
        "{url}/queues/{}/{}?list=dead",
        urlenc(&q.config().namespace),
        urlenc(&q.config().name)
    );
    let browser = Browser::start("replay").await;
    browser.goto(&page).await;
    assert_eq!(browser.text("#dead").await, "4");
    browser.screenshot("dead-set").await;
    let one = &dead[1];
    browser
        .click(&format!(
            "tr[data-id=\"{one}\"] button[data-action=\"replay\"]"
        ))
        .await;
    // The confirmation step; nothing changed yet.
    browser.wait_for("#confirm", Duration::from_secs(10)).await;
    assert_eq!(
        q.stats().await.expect("stats").dead,
        4,
        "not before confirming"
    );
    browser.screenshot("confirm").await;
    browser.click("#confirm").await;
    browser.wait_for(".flash", Duration::from_secs(10)).await;
    let s = q.stats().await.expect("stats");
    assert_eq!((s.dead, s.ready), (3, 1));
    assert_eq!(
        browser.text("#dead").await,
        s.dead.to_string(),
        "page and stats() agree"
    );
    assert_eq!(browser.count(&format!("tr[data-id=\"{one}\"]")).await, 0);
    assert_eq!(browser.count("#messages tbody tr").await, 3);
    browser.screenshot("replayed-one").await;
    browser.click("button[data-action=\"replay_all\"]").await;
    browser.wait_for("#confirm", Duration::from_secs(10)).await;
    browser.click("#confirm").await;
    browser.wait_for(".flash", Duration::from_secs(10)).await;
    let s = q.stats().await.expect("stats");
    assert_eq!((s.dead, s.ready), (0, 4));
    assert_eq!(browser.text("#dead").await, "0");
    assert_eq!(browser.count("#empty").await, 1, "the dead list is empty");
    browser.screenshot("replayed-all").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_payload_renders_as_text_and_does_not_run() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "web-xss");
    let evil = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";
    q.enqueue(&Order {
        id: 1,
        note: evil.into(),
    })
    .await
    .expect("enqueue");
    let d = q.claim(1).await.expect("claim").pop().expect("one");
    let id = d.id().to_string();
    d.dead("<script>window.__pwned = 3</script>")
        .await
        .expect("dead");
    let (url, _) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let base = format!(
        "{url}/queues/{}/{}",
        urlenc(&q.config().namespace),
        urlenc(&q.config().name)
    );
    let browser = Browser::start("xss").await;
    for page in [format!("{base}?list=dead"), format!("{base}/jobs/{id}")] {
        browser.goto(&page).await;
        let pwned = browser
            .client
            .execute("return typeof window.__pwned;", vec![])
            .await
            .expect("execute");
        assert_eq!(
            pwned,
            serde_json::json!("undefined"),
            "a script ran on {page}"
        );
        assert!(
            browser.source().await.contains("&lt;script&gt;"),
            "escaped on {page}"
        );
    }
    assert!(
        browser
            .text("#payload")
            .await
            .contains("<script>window.__pwned = 1</script>")
    );
    browser.screenshot("job-with-script-payload").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_every_page_is_401() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "web-token");
    seed(&q, 1, 0, 0, 0).await;
    let mut opts = WebOptions::default();
    opts.auth = Auth::Token("s3cret-token".into());
    let (url, addr) = serve(Console::new(redis.clone()), opts).await;
    for path in ["/", "/metrics", "/locks", "/queues/t%3Aconsole/x"] {
        assert_eq!(get(addr, path, "").await.0, 401, "{path}");
        assert_eq!(
            get(addr, path, "Authorization: Bearer wrong\r\n").await.0,
            401,
            "{path}"
        );
    }
    let (status, body) = get(addr, "/metrics", "Authorization: Bearer s3cret-token\r\n").await;
    assert_eq!(status, 200, "{body}");
    let browser = Browser::start("token").await;
    browser.goto(&format!("{url}/")).await;
    assert_eq!(
        browser.count("#queues").await,
        0,
        "no data without the token"
    );
    browser.screenshot("sign-in").await;
    browser
        .client
        .find(fantoccini::Locator::Css("input[name=token]"))
        .await
        .expect("token field")
        .send_keys("s3cret-token")
        .await
        .expect("type");
    browser.click("main form button[type=submit]").await;
    browser
        .wait_for("#queue-count", Duration::from_secs(10))
        .await;
    browser.screenshot("signed-in").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_renders_no_control_and_refuses_a_forged_post() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "web-ro");
    let dead = seed(&q, 1, 0, 0, 2).await;
    let mut opts = WebOptions::default();
    opts.read_only = true;
    let (url, addr) = serve(Console::new(redis.clone()), opts).await;
    let base = format!(
        "/queues/{}/{}",
        urlenc(&q.config().namespace),
        urlenc(&q.config().name)
    );
    let browser = Browser::start("read-only").await;
    for page in [
        "/".to_string(),
        format!("{base}?list=dead"),
        format!("{base}/jobs/{}", dead[0]),
    ] {
        browser.goto(&format!("{url}{page}")).await;
        assert_eq!(
            browser.count("form[method=post]").await,
            0,
            "a control on {page}"
        );
        assert_eq!(
            browser.count("button[data-action]").await,
            0,
            "a control on {page}"
        );
    }
    browser.goto(&format!("{url}{base}?list=dead")).await;
    assert_eq!(
        browser.count("#messages tbody tr").await,
        2,
        "the dead set is shown"
    );
    browser.screenshot("read-only-dead-set").await;
    // A forged POST with a session cookie: refused, nothing changes.
    let body = format!("action=replay&id={}&csrf=x&confirm=yes", dead[0]);
    let (status, text) = http(
        addr,
        &format!(
            "POST {base}/action HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: redkit_csrf=0123456789abcdef0123456789abcdef\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let s = q.stats().await.expect("stats");
    assert_eq!((s.dead, s.ready, s.replayed), (2, 1, 0));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_posts_without_the_csrf_token_are_refused() {
    let (redis, _t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "web-csrf");
    let dead = seed(&q, 0, 0, 0, 1).await;
    let (_url, addr) = serve(Console::new(redis.clone()), WebOptions::default()).await;
    let base = format!(
        "/queues/{}/{}",
        urlenc(&q.config().namespace),
        urlenc(&q.config().name)
    );
    let post = |cookie: &str, origin: &str, csrf: &str| {
        let body = format!("action=replay&id={}&csrf={csrf}&confirm=yes", dead[0]);
        format!(
            "POST {base}/action HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}{origin}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let cookie = "Cookie: redkit_csrf=0123456789abcdef0123456789abcdef\r\n";
    assert_eq!(http(addr, &post("", "", "x")).await.0, 403, "no session");
    assert_eq!(http(addr, &post(cookie, "", "x")).await.0, 403, "bad token");
    assert_eq!(
        http(addr, &post(cookie, "Origin: http://evil.example\r\n", "x"))
            .await
            .0,
        403,
        "cross-site"
    );
    assert_eq!(q.stats().await.expect("stats").dead, 1, "nothing replayed");
    // Unknown queue: 404.
    assert_eq!(
        get(addr, "/queues/t%3Aconsole/no-such-queue", "").await.0,
        404
    );
    assert_eq!(get(addr, "/no/such/page", "").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_shown_and_the_page_recovers_by_itself() {
    let (redis, t) = shared(Kind::Standalone).await;
    let q = queue(&redis, "web-outage");
    seed(&q, 2, 0, 0, 0).await;
    registered(&redis, &q).await;
    let target: std::net::SocketAddr = t
        .url()
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .and_then(|a| a.rsplit('@').next())
        .and_then(|a| a.parse().ok())
        .expect("standalone address");
    let proxy = testkit::FaultProxy::start(target).await.expect("proxy");
    let mut cfg =
        redis_conn::RedisConfig::from_url(&format!("redis://{}", proxy.addr())).expect("url");
    cfg.command_timeout = Duration::from_secs(2);
    let console = Console::connect(cfg).await.expect("console via proxy");
    let (url, _) = serve(console, WebOptions::default()).await;
    let browser = Browser::start("outage").await;
    browser.goto(&format!("{url}/")).await;
    browser.wait_for("#queues", Duration::from_secs(10)).await;
    proxy.set_mode(testkit::ProxyMode::Refuse);
    proxy.cut();
    browser.goto(&format!("{url}/")).await;
    browser.wait_for("#outage", Duration::from_secs(20)).await;
    browser.screenshot("outage").await;
    proxy.set_mode(testkit::ProxyMode::Pass);
    // No navigation: the outage page reloads itself.
    browser.wait_for("#queues", Duration::from_secs(30)).await;
    browser.screenshot("recovered").await;
    browser.close().await;
}
