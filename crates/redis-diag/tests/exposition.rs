//! Property tests of the exporter's output, whatever the label values (node addresses, roles,
//! check names and nodes of findings come from servers and users): `escape_label` round-trips
//! through the text format's unescaping, and every `render_prometheus` output parses as
//! Prometheus text with a strict parser written from the format's specification, giving back
//! the label values that went in. 100 generated outputs also go through
//! `promtool check metrics` (Debian's `prometheus` package). 2,000 cases each (more with
//! `PROPTEST_CASES`), from a fixed seed unless `PROPTEST_RNG_SEED` says otherwise.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use redis_diag::{Finding, NodeInfo, Report, Severity, escape_label, render_prometheus};

/// A label value as the text format reads it: the inside of `"…"`, with `\\`, `\"` and `\n`
/// the only escapes. `None` for anything else (a bare `"`, a raw line feed, an unknown escape).
fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                _ => return None,
            },
            '"' | '\n' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// One sample line: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses the exposition strictly: `# HELP` / `# TYPE` lines (each family typed once, before
/// its samples), and samples `name{label="value",…} value`.
fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut typed = BTreeSet::new();
    let mut out = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next(), parts.next());
            match (kw, name) {
                (Some("TYPE"), Some(n)) => {
                    if !typed.insert(n.to_string()) {
                        return Err(format!("{n} typed twice"));
                    }
                }
                (Some("HELP"), Some(_)) => {}
                _ => return Err(format!("bad comment line {line:?}")),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| format!("no value: {line:?}"))?;
        let name = &line[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return Err(format!("bad metric name in {line:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut b = body;
            loop {
                if let Some(after) = b.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let eq = b
                    .find("=\"")
                    .ok_or_else(|| format!("bad label in {line:?}"))?;
                let key = &b[..eq];
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("bad label name {key:?}"));
                }
                // The value ends at the first quote not escaped.
                let v = &b[eq + 2..];
                let mut end = None;
                let mut escaped = false;
                for (i, c) in v.char_indices() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(i);
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                let end = end.ok_or_else(|| format!("unterminated label value in {line:?}"))?;
                let value = unescape(&v[..end])
                    .ok_or_else(|| format!("bad escape in label value of {line:?}"))?;
                labels.push((key.to_string(), value));
                b = &v[end + 1..];
                b = b.strip_prefix(',').unwrap_or(b);
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("no space before the value in {line:?}"))?;
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|e| format!("bad value {v:?}: {e}"))?,
        };
        if !typed.contains(name) {
            return Err(format!("{name} sampled before its TYPE"));
        }
        out.push((name.to_string(), labels, v));
    }
    Ok(out)
}

/// Any label value: unicode, quotes, backslashes, line feeds, carriage returns, braces.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\r'),
                Just('{'),
                Just('}'),
                Just(','),
                Just('='),
                Just(' '),
                any::<char>(),
            ],
            0..12
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Ok),
        Just(Severity::Info),
        Just(Severity::Warning),
        Just(Severity::Critical),
    ]
}

proptest! {
    #![proptest_config(testkit::proptest_config())]

    #[test]
    fn escaped_label_values_read_back_unchanged(v in label_value()) {
        let e = escape_label(&v);
        prop_assert!(!e.contains('\n'));
        prop_assert_eq!(unescape(&e), Some(v));
    }

    #[test]
    fn every_exporter_output_parses_with_the_labels_that_went_in(
        nodes in prop::collection::btree_map(label_value(), (label_value(), any::<bool>(), prop::option::of(any::<u32>())), 0..4),
        findings in prop::collection::vec((label_value(), label_value(), severity()), 0..6),
    ) {
        let infos: Vec<NodeInfo> = nodes
            .iter()
            .map(|(addr, (role, up, clients))| {
                let mut info = HashMap::new();
                if let Some(c) = clients {
                    info.insert("connected_clients".to_string(), c.to_string());
                    info.insert("master_link_status".to_string(), "up".to_string());
                }
                NodeInfo { addr: addr.clone(), role: role.clone(), up: *up, info: Some(info) }
            })
            .collect();
        let report = Report {
            schema: redis_diag::SCHEMA.into(),
            mode: "standalone".into(),
            nodes: vec![],
            findings: findings
                .iter()
                .map(|(check, node, s)| Finding::new(check, *s, node, "title"))
                .collect(),
        };
        let text = render_prometheus(&report, &infos);
        let samples = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for (addr, (role, _, _)) in &nodes {
            let want = vec![("addr".to_string(), addr.clone()), ("role".to_string(), role.clone())];
            prop_assert!(samples.iter().any(|(n, l, _)| n == "redis_up" && *l == want), "{}", text);
        }
        for (check, node, _) in &findings {
            prop_assert!(
                samples.iter().any(|(n, l, _)| n == "redis_diag_check"
                    && l.first() == Some(&("check".to_string(), check.clone()))
                    && l.get(1) == Some(&("node".to_string(), node.clone()))),
                "{}", text
            );
        }
    }
}

/// 100 outputs with hostile label values, each checked by `promtool check metrics`.
#[test]
fn promtool_accepts_exporter_outputs_with_hostile_labels() {
    let mut runner = proptest::test_runner::TestRunner::new(testkit::proptest_config());
    let mut texts = Vec::new();
    let strategy = (
        prop::collection::btree_map(label_value(), label_value(), 1..4),
        prop::collection::vec((label_value(), label_value(), severity()), 1..6),
    );
    for _ in 0..100 {
        let (nodes, findings) = strategy.new_tree(&mut runner).expect("a case").current();
        let infos: Vec<NodeInfo> = nodes
            .iter()
            .map(|(addr, role)| NodeInfo {
                addr: addr.clone(),
                role: role.clone(),
                up: true,
                info: Some(HashMap::from([(
                    "used_memory".to_string(),
                    "1024".to_string(),
                )])),
            })
            .collect();
        let report = Report {
            schema: redis_diag::SCHEMA.into(),
            mode: "cluster".into(),
            nodes: vec![],
            findings: findings
                .iter()
                .map(|(check, node, s)| Finding::new(check, *s, node, "t"))
                .collect(),
        };
        texts.push(render_prometheus(&report, &infos));
    }
    for (i, text) in texts.iter().enumerate() {
        if let Err(e) = testkit::promtool::check_metrics(text) {
            panic!("output {i}: {e}\n{text}");
        }
    }
}

/// The check above can fail: promtool refuses an unescaped quote in a label value, and a
/// family without help text (its lint), and accepts the escaped form.
#[test]
fn promtool_refuses_a_broken_exposition() {
    let help = "# HELP up 1 when up.\n# TYPE up gauge\n";
    assert!(testkit::promtool::check_metrics(&format!("{help}up{{addr=\"a\"b\"}} 1\n")).is_err());
    assert!(testkit::promtool::check_metrics("# TYPE up gauge\nup 1\n").is_err());
    assert!(testkit::promtool::check_metrics(&format!("{help}up{{addr=\"a\\\"b\"}} 1\n")).is_ok());
}
