//! Property tests of the parsers that read what a Redis server (or anything answering on its
//! port) sends: `INFO`, `CLUSTER NODES`, `ACL LIST` and `SLOWLOG GET`. Each never panics on
//! arbitrary input and reads back exactly what a well-formed reply says. 2,000 cases each
//! (more with `PROPTEST_CASES`), from a fixed seed unless `PROPTEST_RNG_SEED` says otherwise;
//! failures are kept in `proptest-regressions/`.

use std::collections::BTreeMap;

use fred::types::Value;
use proptest::prelude::*;
use redis_conn::Endpoint;

use super::auth::parse_acl_user;
use super::probe::parse_info;
use super::slowlog::slow_entry;
use crate::node::{NodeRole, parse_cluster_nodes};

fn seed() -> Endpoint {
    Endpoint {
        host: "10.9.9.9".into(),
        port: 7000,
    }
}

/// An INFO field name or value as servers write them: no `:` in names, no line breaks.
fn info_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z_][a-z0-9_]{0,20}", "[ -~&&[^\r\n]]{0,30}", 0..30)
}

/// One `CLUSTER NODES` line's address part and what it should parse to.
fn node_line() -> impl Strategy<Value = (String, Option<(String, u16, NodeRole, bool)>)> {
    (
        "[0-9a-f]{40}",
        prop_oneof![
            "[0-9]{1,3}(\\.[0-9]{1,3}){3}".prop_map(|s| s),
            "[a-f0-9:]{2,20}".prop_map(|s| format!("[{s}]")),
        ],
        0u16..=65535,
        prop::option::of("[a-z][a-z0-9.-]{0,15}"),
        prop::sample::subsequence(
            vec![
                "myself",
                "master",
                "slave",
                "fail?",
                "fail",
                "handshake",
                "noaddr",
            ],
            0..4,
        ),
        0usize..4,
    )
        .prop_map(|(id, host, port, hostname, flags, slots)| {
            let flags = if flags.is_empty() {
                vec!["noflags"]
            } else {
                flags
            };
            let addr = match &hostname {
                Some(h) => format!("{host}:{port}@{},{h}", port.wrapping_add(10000)),
                None => format!("{host}:{port}@{}", port.wrapping_add(10000)),
            };
            let mut line = format!(
                "{id} {addr} {} - 0 1700000000000 1 connected",
                flags.join(",")
            );
            for s in 0..slots {
                line.push_str(&format!(" {}-{}", s * 100, s * 100 + 99));
            }
            let role = if flags.contains(&"master") {
                NodeRole::Primary
            } else if flags.contains(&"slave") {
                NodeRole::Replica
            } else {
                NodeRole::Unknown
            };
            let want = (port != 0).then(|| {
                (
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                    port,
                    role,
                    flags.contains(&"fail"),
                )
            });
            (line, want)
        })
}

/// A `Value` tree of any shape, as a misbehaving peer might send.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Double),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,12}".prop_map(|s| Value::String(s.into())),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| Value::Bytes(b.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(Value::Array)
    })
}

proptest! {
    #![proptest_config(testkit::proptest_config())]

    #[test]
    fn info_never_panics(text in "\\PC*") {
        let _ = parse_info(&text);
    }

    #[test]
    fn info_reads_back_every_field(fields in info_map()) {
        let mut text = String::from("# Server\r\n");
        for (i, (k, v)) in fields.iter().enumerate() {
            if i % 7 == 3 {
                text.push_str("\r\n# Section\r\n");
            }
            text.push_str(&format!("{k}:{v}\r\n"));
        }
        let parsed = parse_info(&text);
        prop_assert_eq!(parsed.len(), fields.len());
        for (k, v) in &fields {
            prop_assert_eq!(parsed.get(k).map(String::as_str), Some(v.trim()));
        }
    }

    #[test]
    fn cluster_nodes_never_panics(text in "\\PC*") {
        let _ = parse_cluster_nodes(&text, &seed());
    }

    #[test]
    fn cluster_nodes_reads_every_addressed_node(lines in prop::collection::vec(node_line(), 0..12)) {
        let text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
        let got = parse_cluster_nodes(&text, &seed());
        let mut want: Vec<(String, u16, NodeRole, bool)> =
            lines.iter().filter_map(|(_, w)| w.clone()).collect();
        want.sort_by_key(|(h, p, _, _)| Endpoint { host: h.clone(), port: *p }.to_string());
        prop_assert_eq!(got.len(), want.len(), "{}", text);
        for (t, (host, port, role, failed)) in got.iter().zip(&want) {
            prop_assert_eq!(&t.endpoint.host, host);
            prop_assert_eq!(t.endpoint.port, *port);
            prop_assert_eq!(t.role, *role);
            prop_assert_eq!(t.marked_failed, *failed);
        }
    }

    #[test]
    fn acl_list_never_panics(rule in "\\PC*") {
        let _ = parse_acl_user(&rule);
    }

    #[test]
    fn acl_list_reads_the_rules_after_the_name(
        name in prop_oneof!["[a-z][a-z0-9_-]{0,12}", Just("on".to_string()), Just("nopass".to_string())],
        rules in prop::sample::subsequence(
            vec!["on", "off", "nopass", "+@all", "allcommands", "-@dangerous", "~*", "allkeys", "~app:*", "+get", "resetchannels", "&*"],
            0..8,
        ),
        hashes in prop::collection::vec("[0-9a-f]{64}", 0..3),
    ) {
        let mut words: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        words.extend(hashes.iter().map(|h| format!("#{h}")));
        let line = format!("user {name} {}", words.join(" "));
        let u = parse_acl_user(&line);
        let has = |w: &str| rules.contains(&w);
        prop_assert_eq!(&u.name, &name);
        prop_assert_eq!(u.on, has("on"));
        prop_assert_eq!(u.nopass, has("nopass"));
        prop_assert_eq!(u.all_commands, has("+@all") || has("allcommands"));
        prop_assert_eq!(u.minus_dangerous, has("-@dangerous"));
        prop_assert_eq!(u.all_keys, has("~*") || has("allkeys"));
        prop_assert_eq!(&u.hashes, &hashes);
    }

    #[test]
    fn slow_log_entries_never_panic(entry in any_value()) {
        let _ = slow_entry(&entry);
    }

    #[test]
    fn slow_log_entries_name_the_command_never_its_arguments(
        us in any::<u32>(),
        command in "[a-zA-Z]{1,10}",
        sub in "[a-zA-Z]{1,8}",
        secret in "[a-z]{6}-secret-[0-9]{4}",
    ) {
        let entry = Value::Array(vec![
            Value::Integer(1),
            Value::Integer(1_700_000_000),
            Value::Integer(i64::from(us)),
            Value::Array(vec![
                Value::String(command.clone().into()),
                Value::String(sub.clone().into()),
                Value::String(secret.clone().into()),
            ]),
            Value::String("127.0.0.1:5000".into()),
            Value::String("".into()),
        ]);
        let (got_us, name) = slow_entry(&entry).expect("an array entry");
        prop_assert_eq!(got_us, u64::from(us));
        prop_assert!(!name.contains(&secret), "{}", name);
        let upper = command.to_uppercase();
        if super::slowlog::CONTAINERS.contains(&upper.as_str()) {
            prop_assert_eq!(name, format!("{upper} {}", sub.to_uppercase()));
        } else {
            prop_assert_eq!(name, upper);
        }
    }
}
