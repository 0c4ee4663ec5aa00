//! Property tests of what cache-core reads back from Redis and how it names function results:
//! envelopes and every codec decode arbitrary bytes without panicking and give back exactly
//! what they encoded; `function_key` gives equal arguments equal keys — also in another
//! process — and different arguments different keys. 2,000 cases each (more with
//! `PROPTEST_CASES`), from a fixed seed unless `PROPTEST_RNG_SEED` says otherwise; failures
//! are kept in `proptest-regressions/`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use cache_core::{Codec, Envelope, function_key};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde::{Deserialize, Serialize};

/// A value with every shape serde offers: nested structs, enums, options, maps, floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    note: String,
    price: f64,
    tags: Vec<String>,
    extra: Option<Box<Order>>,
    attrs: BTreeMap<String, i64>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Gift(String),
    Split { parts: u8, weights: Vec<f32> },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Plain),
        "\\PC{0,8}".prop_map(Kind::Gift),
        (any::<u8>(), prop::collection::vec(any::<f32>(), 0..4))
            .prop_map(|(parts, weights)| Kind::Split { parts, weights }),
    ]
}

/// Any f64 (NaN and infinities included) when `all`, finite ones otherwise.
fn order_with(floats: BoxedStrategy<f64>) -> impl Strategy<Value = Order> {
    let leaf = (
        any::<u64>(),
        "\\PC{0,16}",
        floats.clone(),
        prop::collection::vec("\\PC{0,6}", 0..4),
        prop::collection::btree_map("\\PC{0,6}", any::<i64>(), 0..4),
        kind(),
    )
        .prop_map(|(id, note, price, tags, attrs, kind)| Order {
            id,
            note,
            price,
            tags,
            extra: None,
            attrs,
            kind,
        });
    leaf.prop_recursive(2, 4, 1, |inner| {
        (inner.clone(), inner).prop_map(|(mut a, b)| {
            a.extra = Some(Box::new(b));
            a
        })
    })
}

fn finite() -> BoxedStrategy<f64> {
    (prop::num::f64::POSITIVE
        | prop::num::f64::NEGATIVE
        | prop::num::f64::NORMAL
        | prop::num::f64::SUBNORMAL
        | prop::num::f64::ZERO)
        .boxed()
}

/// Whether the order holds a NaN or an infinite float anywhere.
fn non_finite(o: &Order) -> bool {
    !o.price.is_finite()
        || matches!(&o.kind, Kind::Split { weights, .. } if weights.iter().any(|w| !w.is_finite()))
        || o.extra.as_deref().is_some_and(non_finite)
}

/// Structural equality with floats compared by bit pattern (NaN equals itself).
fn same(a: &Order, b: &Order) -> bool {
    serde_json::to_string(a).ok() == serde_json::to_string(b).ok()
        && a.price.to_bits() == b.price.to_bits()
}

fn codecs() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::Json), Just(Codec::MessagePack)]
}

proptest! {
    #![proptest_config(testkit::proptest_config())]

    #[test]
    fn envelopes_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Envelope::decode(&bytes);
        // And with a valid header in front, so the decoder reaches the payload part.
        let mut framed = b"rk\x01\x01\x00".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = Envelope::decode(&framed);
    }

    #[test]
    fn envelopes_read_back_what_was_written(
        codec in prop_oneof![Just(Codec::Json), Just(Codec::MessagePack), Just(Codec::Raw)],
        null in any::<bool>(),
        created_ms in any::<u64>(),
        build_ms in 0u64..=u64::from(u32::MAX),
        soft_expiry_ms in any::<u64>(),
        payload in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let e = Envelope {
            codec,
            null,
            created_ms,
            build: Duration::from_millis(build_ms),
            soft_expiry_ms,
            payload: payload.into(),
        };
        prop_assert_eq!(Envelope::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn codecs_never_panic_on_arbitrary_bytes(
        codec in prop_oneof![Just(Codec::Json), Just(Codec::MessagePack), Just(Codec::Raw)],
        bytes in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let _ = codec.decode::<Order>(&bytes);
        let _ = codec.decode::<String>(&bytes);
        let _ = codec.decode::<Vec<u8>>(&bytes);
        let _ = codec.decode::<HashMap<String, Vec<Option<f64>>>>(&bytes);
    }

    #[test]
    fn json_and_messagepack_give_back_what_they_encoded(codec in codecs(), order in order_with(finite())) {
        let bytes = codec.encode(&order).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Order = codec.decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(&back, &order), "{:?} != {:?}", back, order);
    }

    #[test]
    fn messagepack_keeps_nan_and_infinities(order in order_with(any::<f64>().boxed())) {
        let bytes = Codec::MessagePack.encode(&order).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Order = Codec::MessagePack.decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(&back, &order));
    }

    #[test]
    fn raw_gives_back_strings_and_bytes(text in "\\PC{0,64}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let t: String = Codec::Raw.decode(&Codec::Raw.encode(&text).map_err(|e| TestCaseError::fail(e.to_string()))?)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t, text);
        let b: Vec<u8> = Codec::Raw.decode(&Codec::Raw.encode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(b, bytes);
    }

    #[test]
    fn equal_arguments_give_equal_keys_and_different_ones_different_keys(
        a in order_with(any::<f64>().boxed()),
        b in order_with(any::<f64>().boxed()),
    ) {
        match (function_key("f", &a), function_key("f", &a.clone())) {
            (Ok(k1), Ok(k2)) => {
                prop_assert!(!non_finite(&a));
                prop_assert_eq!(k1, k2);
            }
            (Err(_), Err(_)) => prop_assert!(non_finite(&a), "refused: {:?}", a),
            (x, y) => prop_assert!(false, "{:?} vs {:?}", x, y),
        }
        if let (Ok(ka), Ok(kb)) = (function_key("f", &a), function_key("f", &b)) {
            // Keys are equal exactly when the arguments are (floats: -0.0 == 0.0).
            prop_assert_eq!(ka == kb, a == b, "{:?} / {:?}", a, b);
        }
        prop_assert_ne!(function_key("f", &1u8).ok(), function_key("g", &1u8).ok());
    }

    #[test]
    fn maps_give_one_key_whatever_their_insertion_order(entries in prop::collection::vec(("\\PC{0,6}", any::<i32>()), 0..12)) {
        let forward: HashMap<String, i32> = entries.iter().cloned().collect();
        let mut backward: HashMap<String, i32> = HashMap::new();
        for (k, _) in entries.iter().rev() {
            backward.insert(k.clone(), forward[k]);
        }
        prop_assert_eq!(function_key("m", &forward).ok(), function_key("m", &backward).ok());
    }
}

#[test]
fn a_float_comes_back_from_the_json_codec_bit_for_bit() {
    // Found by `json_and_messagepack_give_back_what_they_encoded`: serde_json's default float
    // parsing may miss by one ULP; the `json` feature turns on its `float_roundtrip`.
    for v in [
        8.252597638452298e301,
        8.964614798171795e-309,
        0.1,
        f64::MAX,
        f64::MIN_POSITIVE,
    ] {
        let bytes = Codec::Json.encode(&v).expect("encode");
        let back: f64 = Codec::Json.decode(&bytes).expect("decode");
        assert_eq!(back.to_bits(), v.to_bits(), "{v:e}");
    }
}

#[test]
fn negative_zero_and_zero_share_a_key_and_nan_is_refused() {
    // Found by `equal_arguments_give_equal_keys_…`: -0.0 == 0.0 but JSON writes "-0.0";
    // NaN and None both became `null` (one key for two different arguments).
    assert_eq!(
        function_key("f", &-0.0f64).ok(),
        function_key("f", &0.0f64).ok()
    );
    assert!(function_key("f", &Some(f64::NAN)).is_err());
    assert!(function_key("f", &None::<f64>).is_ok());
}

const CHILD_ENV: &str = "REDKIT_TEST_KEYS_CHILD";

/// Another process computes the keys of 2,000 generated arguments (read as JSON lines on its
/// standard input); they must be the keys this process computed. Map iteration order, hash
/// seeds and allocation differ between processes.
#[test]
fn keys_are_the_same_in_another_process() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let mut out = std::io::stdout().lock();
        for line in std::io::stdin().lock().lines() {
            let line = line.expect("stdin");
            let (order, map): (Order, HashMap<String, i32>) =
                serde_json::from_str(&line).expect("a generated argument");
            let key = function_key("orders", &(order, map)).expect("a key");
            writeln!(out, "{key}").expect("stdout");
        }
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::new(testkit::proptest_config());
    let strategy = (
        order_with(finite()),
        prop::collection::hash_map("\\PC{0,6}", any::<i32>(), 0..8),
    );
    let mut args = Vec::new();
    for _ in 0..testkit::proptest_config().cases {
        args.push(strategy.new_tree(&mut runner).expect("a case").current());
    }
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "keys_are_the_same_in_another_process",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = args
        .iter()
        .map(|a| serde_json::to_string(a).expect("json") + "\n")
        .collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).expect("write");
    });
    let out = child.wait_with_output().expect("child");
    writer.join().expect("writer");
    assert!(out.status.success(), "child failed: {:?}", out.status);
    let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("fn:orders:"))
        .map(str::to_string)
        .collect();
    assert_eq!(theirs.len(), args.len(), "one key per argument");
    for (a, k) in args.iter().zip(&theirs) {
        assert_eq!(&function_key("orders", a).expect("a key"), k, "{a:?}");
    }
}
