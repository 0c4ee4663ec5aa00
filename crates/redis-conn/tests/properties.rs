//! Property tests of the configuration parsers, which read what users type: `from_url` and
//! `from_env_with` never panic on any input; a URL they accept prints (`Display`) as a URL
//! that parses back to the same configuration with its passwords shown as `***`, and neither
//! the printed URL nor an error ever contains a password. 2,000 cases each (more with
//! `PROPTEST_CASES`), from a fixed seed unless `PROPTEST_RNG_SEED` says otherwise; failures
//! are kept in `proptest-regressions/`.

use std::collections::BTreeMap;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use redis_conn::{Mode, RedisConfig, Secret};

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// A password no other part of a generated URL can contain.
fn password() -> impl Strategy<Value = String> {
    "TopSecret[A-Za-z0-9/?#@:%+ !*]{4,12}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,6}){0,2}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,5}".prop_map(|h| format!("[{h}]")),
    ]
}

fn endpoint() -> impl Strategy<Value = String> {
    (host(), prop::option::of(1u16..=65535)).prop_map(|(h, p)| match p {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

/// A URL of any of the accepted shapes, with the passwords it carries (decoded).
#[derive(Debug, Clone)]
struct Url {
    text: String,
    passwords: Vec<String>,
}

fn url() -> impl Strategy<Value = Url> {
    (
        prop::sample::select(vec![
            "redis",
            "rediss",
            "redis-sentinel",
            "rediss-sentinel",
            "redis+sentinel",
            "redis-cluster",
            "rediss-cluster",
            "redis+cluster",
        ]),
        prop::option::of((
            prop::option::of("[a-z][a-z0-9_.-]{0,8}"),
            prop::option::of(password()),
        )),
        prop::collection::vec(endpoint(), 1..4),
        prop::option::of("[a-zA-Z0-9 _./-]{1,12}"),
        prop::option::of(0u8..16),
        prop::collection::vec(
            prop_oneof![
                (1u64..100_000).prop_map(|v| format!("connect_timeout_ms={v}")),
                (1u64..100_000).prop_map(|v| format!("command_timeout_ms={v}")),
                (1usize..=256).prop_map(|v| format!("pool_size={v}")),
                endpoint().prop_map(|e| format!("node={}", enc(&e))),
                "[a-z]{1,8}".prop_map(|u| format!("sentinel_username={u}")),
                "(/[a-z]{1,6}){1,3}\\.pem".prop_map(|p| format!("tls_ca={}", enc(&p))),
                "[a-z]{1,8}(\\.[a-z]{1,5}){0,2}".prop_map(|n| format!("tls_server_name={n}")),
                ("[0-9.]{7,15}", "[a-z]{1,8}\\.internal")
                    .prop_map(|(a, n)| format!("tls_hosts={}", enc(&format!("{a}={n}")))),
            ],
            0..5,
        ),
        prop::option::of(password()),
    )
        .prop_map(
            |(scheme, userinfo, hosts, service, db, params, sentinel_pw)| {
                let mut passwords = Vec::new();
                let mut text = format!("{scheme}://");
                if let Some((user, pass)) = userinfo {
                    if let Some(u) = user {
                        text.push_str(&u);
                    }
                    text.push(':');
                    if let Some(p) = pass {
                        text.push_str(&enc(&p));
                        passwords.push(p);
                    }
                    text.push('@');
                }
                text.push_str(&hosts.join(","));
                let sentinel = scheme.contains("sentinel");
                let mut query = params;
                if sentinel {
                    text.push('/');
                    text.push_str(&enc(service.as_deref().unwrap_or("mymaster")));
                    if let Some(p) = sentinel_pw {
                        query.push(format!("sentinel_password={}", enc(&p)));
                        passwords.push(p);
                    }
                }
                if let Some(db) = db {
                    query.push(format!("db={db}"));
                }
                if !query.is_empty() {
                    text.push('?');
                    text.push_str(&query.join("&"));
                }
                Url { text, passwords }
            },
        )
}

/// The configuration as its printed URL parses back: passwords are `***`.
fn redacted(mut c: RedisConfig) -> RedisConfig {
    if c.password.is_some() {
        c.password = Some(Secret::new("***"));
    }
    if let Mode::Sentinel {
        sentinel_password, ..
    } = &mut c.mode
        && sentinel_password.is_some()
    {
        *sentinel_password = Some(Secret::new("***"));
    }
    c
}

const VARS: &[&str] = &[
    "REDIS_URL",
    "REDIS_MODE",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_SENTINEL_HOST",
    "REDIS_SENTINEL_PORT",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_USERNAME",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_CLUSTER_HOST",
    "REDIS_TLS",
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_KEY_FILE",
    "REDIS_TLS_SERVER_NAME",
    "REDIS_TLS_HOSTS",
    "REDIS_CONNECT_TIMEOUT_MS",
    "REDIS_COMMAND_TIMEOUT_MS",
    "REDIS_POOL_SIZE",
];

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        prop::sample::select(vec![
            "standalone",
            "sentinel",
            "cluster",
            "true",
            "false",
            "0",
            "1",
            "6379",
            "26379",
            "65536",
            "-1",
            "h1,h2:7000",
            "[::1]:7000",
            "mymaster",
            "a=b",
            "",
        ])
        .prop_map(str::to_string),
        url().prop_map(|u| u.text),
    ]
}

proptest! {
    #![proptest_config(testkit::proptest_config())]

    #[test]
    fn from_url_never_panics(text in "\\PC{0,80}") {
        let _ = RedisConfig::from_url(&text);
    }

    #[test]
    fn from_url_never_panics_on_near_urls(u in url(), cut in 0usize..200, junk in "[:/@?#%\\[\\],=&]{0,3}") {
        // Valid URLs cut short or with URL punctuation spliced in.
        let mut t: String = u.text.chars().take(cut).collect();
        t.push_str(&junk);
        t.extend(u.text.chars().skip(cut));
        let _ = RedisConfig::from_url(&t);
    }

    #[test]
    fn accepted_urls_print_and_parse_back_without_their_passwords(u in url()) {
        let parsed = RedisConfig::from_url(&u.text);
        let cfg = match parsed {
            Ok(c) => c,
            Err(e) => {
                let shown = format!("{e} {e:?}");
                for p in &u.passwords {
                    prop_assert!(!shown.contains(p.as_str()) && !shown.contains(&enc(p)), "{}", shown);
                }
                return Ok(());
            }
        };
        let printed = cfg.to_string();
        for p in &u.passwords {
            prop_assert!(!printed.contains(p.as_str()) && !printed.contains(&enc(p)), "{}", printed);
            let debug = format!("{cfg:?}");
            prop_assert!(!debug.contains(p.as_str()), "{}", debug);
        }
        let again = RedisConfig::from_url(&printed)
            .map_err(|e| TestCaseError::fail(format!("{printed} does not parse: {e}")))?;
        prop_assert_eq!(&again, &redacted(cfg.clone()), "{} -> {}", u.text, printed);
        prop_assert_eq!(again.to_string(), printed);
    }

    #[test]
    fn from_env_never_panics_and_never_echoes_a_password(
        vars in prop::collection::btree_map(prop::sample::select(VARS.to_vec()), env_value(), 0..8),
        pw in password(),
    ) {
        let mut vars: BTreeMap<&str, String> = vars;
        vars.insert("REDIS_PASSWORD", pw.clone());
        let r = RedisConfig::from_env_with(|k| vars.get(k).cloned());
        let shown = match &r {
            Ok(c) => format!("{c} {c:?} {}", c.target()),
            Err(e) => format!("{e} {e:?}"),
        };
        prop_assert!(!shown.contains(&pw), "{}", shown);
    }
}
