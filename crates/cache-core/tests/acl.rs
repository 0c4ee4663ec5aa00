//! cache-core as least-privilege ACL users, on one topology of each kind (plaintext: TLS is
//! covered by the secure runs of the suite). With [`cache_core::acl_rule`] everything works and
//! nothing is refused; with one right removed, the calls that return errors fail with
//! `Error::Redis(NoPermission)` naming what was refused, the lookups that build return the
//! built value and count the refusal, and — checked as the admin — every cached value is still
//! there and decodable and no rebuild lease is left behind.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cache_core::{
    BloomFilter, Cache, CacheConfig, Envelope, Error, Lookup, NearConfig, acl_rule, bloom_acl_rule,
};
use fred::prelude::*;
use futures::TryStreamExt;
use redis_conn::{AclRule, RedisClient, RedisConfig};
use testkit::{Kind, Spec, Topology};

/// Every cache of these tests lives here (each test has its own topology).
const NS: &str = "t:acl:shop";
const PASSWORD: &str = "user-pw";

fn config() -> CacheConfig {
    let mut cfg = CacheConfig::new(NS);
    cfg.near = Some(NearConfig::new(1_000, Duration::from_secs(60)));
    cfg
}

/// The documented rights of a near cache and a Bloom filter under [`NS`].
fn full_rule() -> AclRule {
    acl_rule(&config()).merge(&bloom_acl_rule(NS))
}

/// The users of each topology: the documented rule, and that rule with one right removed.
fn users() -> Vec<(&'static str, AclRule)> {
    let full = full_rule();
    vec![
        ("cache", full.clone()),
        (
            "no-scripts",
            full.clone()
                .without_command("evalsha")
                .without_command("eval"),
        ),
        (
            "no-channel",
            full.clone().without_channels(&format!("{NS}:__filled__")),
        ),
        (
            "no-lease-keys",
            full.clone().without_keys(&format!("{{{NS}:*}}:rebuild")),
        ),
        (
            "narrow-keys",
            full.clone()
                .without_keys(&format!("{NS}:*"))
                .keys(format!("{NS}:public:*")),
        ),
        ("no-unlink", full.clone().without_command("unlink")),
        ("no-sadd", full.clone().without_command("sadd")),
        ("no-tracking", full.without_command("client|tracking")),
    ]
}

struct Env {
    topo: Topology,
    admin: RedisClient,
}

impl Env {
    async fn start(kind: Kind) -> Env {
        let mut spec = Spec::new(kind).auth(Some("admin"), "admin-pw");
        for (name, rule) in users() {
            spec = spec.user(name, PASSWORD, &rule.to_string());
        }
        let topo = tokio::task::block_in_place(|| Topology::start(spec))
            .unwrap_or_else(|e| panic!("{kind} topology: {e}"));
        let admin = connect(&topo.url()).await;
        Env { topo, admin }
    }

    async fn client(&self, user: &str) -> RedisClient {
        connect(&self.topo.url_as(user, PASSWORD)).await
    }

    /// A cache with the near cache on, as `user`.
    async fn cache(&self, user: &str) -> Cache {
        Cache::new(self.client(user).await, config()).expect("cache")
    }

    /// What the admin finds under `key`: the decoded value (`None`: no entry).
    async fn stored(&self, key: &str) -> Option<String> {
        let raw: Option<fred::bytes::Bytes> = self
            .admin
            .pool()
            .get(format!("{NS}:{key}"))
            .await
            .expect("admin GET");
        raw.map(|b| {
            let env = Envelope::decode_bytes(b).expect("a whole envelope");
            env.codec.decode::<String>(&env.payload).expect("decodable")
        })
    }

    /// Rebuild leases left under the namespace, as the admin sees them (every primary).
    async fn leases(&self) -> Vec<String> {
        let pattern = format!("{{{NS}:*}}:rebuild");
        let pages: Vec<Vec<fred::types::Key>> = redis_conn::scan_keys(&self.admin, &pattern, 100)
            .try_collect()
            .await
            .expect("admin SCAN");
        pages
            .into_iter()
            .flatten()
            .map(|k| String::from_utf8_lossy(k.as_bytes()).into_owned())
            .collect()
    }

    async fn assert_no_lease(&self, after: &str) {
        let left = self.leases().await;
        assert!(
            left.is_empty(),
            "after {after}: leases left behind: {left:?}"
        );
    }
}

async fn connect(url: &str) -> RedisClient {
    RedisClient::connect(RedisConfig::from_url(url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// cache-core's warnings (the lookups that build report refusals only there), captured from
/// the first call on.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where the log ends now; [`logged_since`] gives what came after.
fn log_mark() -> usize {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        // Another test of this process may have set it already: it writes to the same log.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    LOG.lock().unwrap_or_else(|p| p.into_inner()).len()
}

fn logged_since(mark: usize) -> String {
    let log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(log.get(mark..).unwrap_or_default()).into_owned()
}

fn value(s: &str) -> Result<Option<String>, std::convert::Infallible> {
    Ok(Some(s.to_string()))
}

/// The message of a permission refusal; panics on anything else.
fn refusal<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) -> String {
    match result {
        Err(Error::Redis(redis_conn::Error::NoPermission(msg))) => msg,
        other => panic!("{what}: expected a NoPermission refusal, got {other:?}"),
    }
}

mod standalone {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_documented_rule_runs_the_cache_and_each_missing_right_is_named_without_damage() {
        super::run(testkit::Kind::Standalone).await;
    }
}

mod sentinel {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_documented_rule_runs_the_cache_and_each_missing_right_is_named_without_damage() {
        super::run(testkit::Kind::Sentinel).await;
    }
}

mod cluster {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_documented_rule_runs_the_cache_and_each_missing_right_is_named_without_damage() {
        super::run(testkit::Kind::Cluster).await;
    }
}

/// One topology per kind for every case (each start costs seconds).
async fn run(kind: Kind) {
    let env = Env::start(kind).await;
    testkit::run_logged(Some(&env.topo), async {
        Box::pin(with_the_documented_rule(&env)).await;
        Box::pin(without_scripts(&env)).await;
        Box::pin(without_the_channel(&env)).await;
        Box::pin(without_the_lease_keys(&env)).await;
        Box::pin(with_narrowed_keys(&env)).await;
        Box::pin(without_one_command(&env)).await;
        Box::pin(without_tracking(&env)).await;
    })
    .await;
}

/// Every feature as the `cache` user, from two clients (two processes), with no refusal.
async fn with_the_documented_rule(env: &Env) {
    let a = env.cache("cache").await;
    let b = env.cache("cache").await;
    let builds = AtomicUsize::new(0);
    for _ in 0..3 {
        let v: Option<String> = a
            .get_or_set("kept", None, || async {
                builds.fetch_add(1, Ordering::SeqCst);
                value("v1")
            })
            .await
            .expect("get_or_set");
        assert_eq!(v.as_deref(), Some("v1"));
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert!(a.stats().l1_hits >= 1, "near cache serves: {:?}", a.stats());

    // Near cache coherence: another process's write reaches this one's L1.
    b.set("kept", &"v2", None).await.expect("set");
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let v: Option<String> = a
            .get_or_set("kept", None, || async { value("unexpected build") })
            .await
            .expect("get_or_set");
        if v.as_deref() == Some("v2") {
            break;
        }
        assert!(Instant::now() < until, "the near cache still serves {v:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.set("kept", &"v1", None).await.expect("set");

    // Cross-process stampede: `b` waits on `a`'s lease and is woken by pub/sub.
    let slow = {
        let a = a.clone();
        tokio::spawn(async move {
            a.get_or_set("slow", None, || async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                value("built by a")
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waited: Option<String> = b
        .get_or_set("slow", None, || async { value("built by b") })
        .await
        .expect("get_or_set");
    assert_eq!(waited.as_deref(), Some("built by a"));
    assert_eq!(
        slow.await.expect("task").expect("get_or_set").as_deref(),
        Some("built by a")
    );
    let s = b.stats();
    assert!(
        s.builds == 0 && s.lease_waits >= 1 && s.woken >= 1,
        "b waited and was woken: {s:?}"
    );

    // Tags, patterns, batches, deletes.
    for k in ["tagged:1", "tagged:2"] {
        a.set_tagged(k, &"t", None, &["cat"])
            .await
            .expect("set_tagged");
    }
    assert_eq!(a.invalidate_tag("cat").await.expect("invalidate_tag"), 2);
    let keys: Vec<String> = (0..20).map(|i| format!("batch:{i}")).collect();
    let items: Vec<(&str, &String)> = keys.iter().map(|k| (k.as_str(), k)).collect();
    a.set_many(&items, None).await.expect("set_many");
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found: Vec<Lookup<String>> = a.get_many(&names).await.expect("get_many");
    assert!(
        found.iter().all(|l| matches!(l, Lookup::Hit(_))),
        "{found:?}"
    );
    assert_eq!(
        a.invalidate_pattern("batch:*")
            .await
            .expect("invalidate_pattern"),
        20
    );
    a.set("gone", &"x", None).await.expect("set");
    assert_eq!(a.delete(&["gone"]).await.expect("delete"), 1);

    // A Bloom filter under the namespace.
    let filter =
        BloomFilter::new(env.client("cache").await, NS, "ids", 1_000, 0.01).expect("filter");
    filter.add_many(&["p1", "p2"]).await.expect("add");
    assert!(filter.contains("p1").await.expect("contains"));
    let filtered: Option<String> = a
        .get_or_set_filtered(&filter, "ghost", None, || async { value("never") })
        .await
        .expect("filtered");
    assert_eq!(filtered, None);

    for (who, c) in [("a", &a), ("b", &b)] {
        assert_eq!(
            c.stats().redis_errors,
            0,
            "{who}: nothing refused: {:?}",
            c.stats()
        );
    }
    assert_eq!(env.stored("kept").await.as_deref(), Some("v1"));
    env.assert_no_lease("the documented rule").await;

    // Shared stats: both processes flush and read as the cache user.
    for c in [&a, &b] {
        assert!(c.flush_shared_stats().await.expect("flush_shared_stats"));
    }
    let shared = cache_core::SharedStats::load(&env.client("cache").await, NS)
        .await
        .expect("SharedStats::load");
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(shared.totals.hits, sa.hits + sb.hits, "{shared:?}");
    assert_eq!(shared.totals.l1_hits, sa.l1_hits + sb.l1_hits, "{shared:?}");
    assert_eq!(
        shared.live_processes(Duration::from_secs(10)),
        2,
        "{shared:?}"
    );
    // And the cache registered itself for the console.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (found, _) = redis_conn::registry::registered(&env.admin, None)
            .await
            .expect("registry");
        if found.iter().any(|r| r.prefix == NS) {
            break;
        }
        assert!(Instant::now() < until, "not registered: {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Without `EVALSHA` / `EVAL`: the Bloom filter's calls are refused, naming the command; a
/// lookup still caches what it builds (plain `SET`) and gives its lease back without the script.
async fn without_scripts(env: &Env) {
    let client = env.client("no-scripts").await;
    let filter = BloomFilter::new(client.clone(), NS, "ids", 1_000, 0.01).expect("filter");
    let msg = refusal("bloom contains", filter.contains("p1").await);
    eprintln!("no-scripts: {msg}");
    assert!(msg.contains("'evalsha'"), "{msg}");
    assert!(msg.contains(&format!("{NS}:{{bloom:ids}}:bits")), "{msg}");

    let cache = Cache::new(client, config()).expect("cache");
    let kept: Option<String> = cache
        .get_or_set("kept", None, || async { value("rebuilt") })
        .await
        .expect("get_or_set");
    assert_eq!(
        kept.as_deref(),
        Some("v1"),
        "cached values are still served"
    );
    let mark = log_mark();
    let fresh: Option<String> = cache
        .get_or_set("fresh:scripts", None, || async { value("built") })
        .await
        .expect("get_or_set");
    assert_eq!(fresh.as_deref(), Some("built"));
    let s = cache.stats();
    assert_eq!(s.redis_errors, 2, "the refused fill and release: {s:?}");
    let log = logged_since(mark);
    assert!(
        log.contains("'evalsha'")
            && log.contains("script cache_fill")
            && log.contains("script cache_release"),
        "the warnings name the refused command and scripts: {log}"
    );
    assert_eq!(env.stored("fresh:scripts").await.as_deref(), Some("built"));
    assert_eq!(env.stored("kept").await.as_deref(), Some("v1"));
    env.assert_no_lease("a lookup without scripts").await;
    let as_admin = BloomFilter::new(env.admin.clone(), NS, "ids", 1_000, 0.01).expect("filter");
    assert!(
        as_admin.contains("p1").await.expect("contains"),
        "the Bloom filter is intact"
    );
}

/// Without the wake-up channel: the fill script refuses before writing anything, naming the
/// channel; the value is cached without it, and the lease is released.
async fn without_the_channel(env: &Env) {
    let cache = env.cache("no-channel").await;
    let mark = log_mark();
    let fresh: Option<String> = cache
        .get_or_set("fresh:channel", None, || async { value("built") })
        .await
        .expect("get_or_set");
    assert_eq!(fresh.as_deref(), Some("built"));
    let s = cache.stats();
    assert_eq!(s.redis_errors, 2, "the refused fill and release: {s:?}");
    let log = logged_since(mark);
    assert!(
        log.contains(&format!("PUBLISH to channel {NS}:__filled__")),
        "the warnings name the channel: {log}"
    );
    assert_eq!(env.stored("fresh:channel").await.as_deref(), Some("built"));
    env.assert_no_lease("a lookup without the channel").await;
}

/// Without the rebuild leases' key pattern: builds run without the lease, and are cached.
async fn without_the_lease_keys(env: &Env) {
    let cache = env.cache("no-lease-keys").await;
    let mark = log_mark();
    let fresh: Option<String> = cache
        .get_or_set("fresh:lease", None, || async { value("built") })
        .await
        .expect("get_or_set");
    assert_eq!(fresh.as_deref(), Some("built"));
    assert_eq!(cache.stats().redis_errors, 1, "{:?}", cache.stats());
    let log = logged_since(mark);
    assert!(
        log.contains(&format!("SET {{{NS}:fresh:lease}}:rebuild NX PX")),
        "the warning names the lease key: {log}"
    );
    assert_eq!(env.stored("fresh:lease").await.as_deref(), Some("built"));
    env.assert_no_lease("a lookup without the lease keys").await;
}

/// Keys narrowed to `<ns>:public:*`: reads and writes of other keys are refused with the key
/// named; what was cached there stays as it was.
async fn with_narrowed_keys(env: &Env) {
    let cache = env.cache("narrow-keys").await;
    let full = format!("{NS}:kept");
    let msg = refusal("set", cache.set("kept", &"overwritten", None).await);
    assert!(msg.contains(&format!("SET {full}")), "{msg}");
    let msg = refusal("get", cache.get::<String>("kept").await);
    assert!(msg.contains(&format!("GET {full}")), "{msg}");
    eprintln!("narrow-keys: {msg}");
    let before = cache.stats().redis_errors;
    let built: Option<String> = cache
        .get_or_set("kept", None, || async { value("built uncached") })
        .await
        .expect("get_or_set");
    assert_eq!(built.as_deref(), Some("built uncached"));
    assert_eq!(
        cache.stats().redis_errors,
        before + 1,
        "{:?}",
        cache.stats()
    );
    cache
        .set("public:x", &"ok", None)
        .await
        .expect("allowed key");
    // The stats hash is out of the user's keys: the flush is refused, naming the script and
    // key, and nothing else changes.
    let msg = refusal("flush_shared_stats", cache.flush_shared_stats().await);
    assert!(
        msg.contains("cache_stats_flush") && msg.contains(&format!("{NS}:__stats__")),
        "{msg}"
    );
    assert_eq!(env.stored("kept").await.as_deref(), Some("v1"));
    env.assert_no_lease("narrowed keys").await;
}

/// One command removed: `UNLINK` (`delete`) and `SADD` (`set_tagged`) are refused, naming the
/// command; nothing changes (a tagged write records its tags first).
async fn without_one_command(env: &Env) {
    let cache = env.cache("no-unlink").await;
    let msg = refusal("delete", cache.delete(&["kept"]).await);
    eprintln!("no-unlink: {msg}");
    assert!(
        msg.contains("'unlink'") && msg.contains(&format!("UNLINK {NS}:kept")),
        "{msg}"
    );
    assert_eq!(env.stored("kept").await.as_deref(), Some("v1"));

    let cache = env.cache("no-sadd").await;
    let msg = refusal(
        "set_tagged",
        cache.set_tagged("tagged:3", &"t", None, &["cat"]).await,
    );
    eprintln!("no-sadd: {msg}");
    assert!(
        msg.contains("'sadd'") && msg.contains(&format!("{NS}:__tag__:cat")),
        "{msg}"
    );
    assert_eq!(env.stored("tagged:3").await, None, "nothing written");
}

/// Without `CLIENT TRACKING`: the near cache stays off, so another process's write is seen at
/// once (never a stale L1 entry).
async fn without_tracking(env: &Env) {
    let cache = env.cache("no-tracking").await;
    let writer = env.cache("cache").await;
    let mark = log_mark();
    for expected in ["v1", "v3"] {
        let v: Option<String> = cache
            .get_or_set("kept", None, || async { value("rebuilt") })
            .await
            .expect("get_or_set");
        assert_eq!(v.as_deref(), Some(expected));
        writer.set("kept", &"v3", None).await.expect("set");
    }
    assert_eq!((cache.stats().l1_hits, cache.near_len()), (0, 0));
    let log = logged_since(mark);
    assert!(
        log.contains("near cache disabled") && log.contains("'client|tracking'"),
        "the warning names the refused command: {log}"
    );
}
