//! Property tests of what rqueue reads back from Redis: message ids, delivery tokens, the
//! stored backoff, progress and error history, and a job's whole record as `lua/job.lua`
//! returns it. None panics on arbitrary input, and each reads back exactly what was written.
//! 2,000 cases each (more with `PROPTEST_CASES`), from a fixed seed unless
//! `PROPTEST_RNG_SEED` says otherwise; failures are kept in `proptest-regressions/`.

use std::time::{Duration, UNIX_EPOCH};

use fred::types::Value;
use proptest::prelude::*;

use super::attempts;
use super::config::Backoff;
use super::job::{JobState, Progress, check_id, id_time, job_from_reply, token_parts};
use crate::error::Error;

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Double),
        any::<bool>().prop_map(Value::Boolean),
        "\\PC{0,12}".prop_map(|s| Value::String(s.into())),
        "[0-9|:.-]{0,16}".prop_map(|s| Value::String(s.into())),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::Bytes(b.into())),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::Array)
    })
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into().into())
}

proptest! {
    #![proptest_config(testkit::proptest_config())]

    #[test]
    fn ids_are_checked_exactly(id in prop_oneof!["\\PC{0,24}", "[0-9]{12,14}-[0-9]{5,7}", "[0-9]{13}-[0-9]{6}"]) {
        let well_formed = id.len() == 20
            && id.as_bytes()[13] == b'-'
            && id.bytes().enumerate().all(|(i, b)| i == 13 || b.is_ascii_digit());
        prop_assert_eq!(check_id(&id).is_ok(), well_formed, "{}", id);
        let _ = id_time(&id);
    }

    #[test]
    fn an_id_carries_its_enqueue_time(ms in 0u64..10_000_000_000_000, seq in 0u32..1_000_000) {
        let id = format!("{ms:013}-{seq:06}");
        prop_assert!(check_id(&id).is_ok());
        prop_assert_eq!(id_time(&id), Some(UNIX_EPOCH + Duration::from_millis(ms)));
    }

    #[test]
    fn tokens_never_panic_and_carry_worker_and_claim_time(
        junk in "\\PC{0,32}",
        worker in "[a-z0-9.-]{1,20}",
        delivery in any::<u32>(),
        serial in any::<u64>(),
        ms in 0u64..10_000_000_000_000,
    ) {
        let _ = token_parts(&junk);
        let token = format!("{worker}:{delivery}:{serial}:{ms}");
        let (w, at) = token_parts(&token).expect("a token");
        prop_assert_eq!(w, worker.as_str());
        prop_assert_eq!(at, UNIX_EPOCH + Duration::from_millis(ms));
    }

    #[test]
    fn a_stored_backoff_reads_back(base in 0u64..u64::from(u32::MAX), max in 0u64..u64::from(u32::MAX), jitter in any::<bool>(), junk in "\\PC{0,16}") {
        let _ = Backoff::decode(&junk);
        let b = Backoff { base: Duration::from_millis(base), max: Duration::from_millis(max), jitter };
        prop_assert_eq!(Backoff::decode(&b.encode()), Some(b));
    }

    #[test]
    fn progress_reads_back(value in -1e12f64..1e12, message in "\\PC{0,40}", junk in "\\PC{0,40}") {
        let _ = Progress::parse(&junk);
        let p = Progress::parse(&format!("{value}|{message}")).expect("progress");
        prop_assert_eq!(p.value, value);
        prop_assert_eq!(p.message, message);
    }

    #[test]
    fn error_histories_never_panic_and_keep_each_attempt(
        junk in "\\PC{0,64}",
        entries in prop::collection::vec((0u64..10_000_000_000_000, 1u32..1000, "\\PC{0,40}"), 1..10),
    ) {
        let _ = attempts::parse(&junk);
        // As errors.lua writes them: entries newest first, each `ms␟attempt␟text`.
        let raw: String = entries
            .iter()
            .map(|(ms, a, text)| format!("\u{1e}{ms}\u{1f}{a}\u{1f}{}", attempts::sanitize(text)))
            .collect();
        let parsed = attempts::parse(&raw);
        prop_assert_eq!(parsed.len(), entries.len());
        for (p, (ms, a, text)) in parsed.iter().zip(&entries) {
            prop_assert_eq!(p.at, Some(UNIX_EPOCH + Duration::from_millis(*ms)));
            prop_assert_eq!(p.attempt, *a);
            prop_assert_eq!(&p.error, &attempts::sanitize(text));
        }
    }

    #[test]
    fn job_records_never_panic(reply in prop::collection::vec(any_value(), 0..14), id in "[0-9]{13}-[0-9]{6}") {
        let _ = job_from_reply::<u64>(&id, &reply);
        let _ = job_from_reply::<String>(&id, &reply);
    }

    #[test]
    fn a_job_record_reads_back(
        state in prop::sample::select(vec!["waiting", "delayed", "active", "dead", "completed"]),
        score in 1u64..10_000_000_000_000,
        payload in any::<u64>(),
        priority in any::<i32>(),
        failures in any::<u32>(),
        max_attempts in any::<u32>(),
        stalls in any::<u32>(),
        error in "\\PC{0,20}",
        worker in "[a-z0-9-]{1,12}",
        claimed in 1u64..10_000_000_000_000,
        progress in (-1e9f64..1e9, "\\PC{0,20}"),
    ) {
        let id = "1764064000123-000042";
        let history = format!("\u{1e}{score}\u{1f}1\u{1f}{}", attempts::sanitize(&error));
        let reply = vec![
            s(state),
            s(score.to_string()),
            Value::Bytes(rmp_serde::to_vec(&payload).expect("encode").into()),
            s(format!("{priority}|{failures}|{max_attempts}|{stalls}")),
            s(history),
            s(format!("{}|{}", progress.0, progress.1)),
            s(""),
            s(format!("{worker}:1:7:{claimed}")),
            Value::Integer(1_764_064_000_999),
        ];
        let job = job_from_reply::<u64>(id, &reply).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let at = UNIX_EPOCH + Duration::from_millis(score);
        prop_assert_eq!(job.state.name(), state);
        match &job.state {
            JobState::Delayed { due } => prop_assert_eq!(*due, at),
            JobState::Active { worker: w, claimed_at, lease_deadline } => {
                prop_assert_eq!(w, &worker);
                prop_assert_eq!(*claimed_at, UNIX_EPOCH + Duration::from_millis(claimed));
                prop_assert_eq!(*lease_deadline, at);
            }
            JobState::Dead { died_at, reason } => {
                prop_assert_eq!(*died_at, at);
                prop_assert_eq!(reason, &attempts::sanitize(&error));
            }
            JobState::Completed { finished_at } => prop_assert_eq!(*finished_at, at),
            _ => {}
        }
        prop_assert_eq!(job.message, Some(payload));
        prop_assert_eq!(job.priority, priority);
        prop_assert_eq!(job.failures, failures);
        prop_assert_eq!(job.max_attempts, max_attempts);
        prop_assert_eq!(job.stalls, stalls);
        prop_assert_eq!(job.enqueued_at, id_time(id));
        let p = job.progress.expect("progress");
        prop_assert_eq!((p.value, p.message), progress);
    }
}

#[test]
fn an_unknown_job_is_typed_and_a_foreign_state_is_a_protocol_error() {
    let id = "1764064000123-000042";
    assert!(matches!(
        job_from_reply::<u64>(id, &[s("unknown")]),
        Err(Error::UnknownJob { .. })
    ));
    assert!(matches!(
        job_from_reply::<u64>(id, &[s("active")]),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(
        job_from_reply::<u64>(id, &[]),
        Err(Error::Protocol(_))
    ));
}
