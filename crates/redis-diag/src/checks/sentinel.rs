//! Sentinel checks: the monitored primary's quorum.

use redis_conn::{Mode, RedisConfig};

use super::probe::{Probe, text};
use crate::node::{call, is_denied};
use crate::report::{Finding, Severity};

pub(super) async fn sentinel_checks(p: &Probe<'_>, config: &RedisConfig) -> Vec<Finding> {
    let Mode::Sentinel { service_name, .. } = &config.mode else {
        return Vec::new();
    };
    match call(
        p.client,
        "SENTINEL",
        vec!["CKQUORUM".into(), service_name.clone()],
    )
    .await
    {
        Ok(v) => vec![
            p.finding(
                "sentinel.quorum",
                Severity::Ok,
                format!("quorum reachable for {service_name:?}"),
            )
            .evidence(text(&v).unwrap_or_default()),
        ],
        Err(e) if e.to_string().contains("NOQUORUM") => vec![
            p.finding(
                "sentinel.quorum",
                Severity::Critical,
                format!("no usable quorum for {service_name:?}"),
            )
            .evidence(e.to_string())
            .fix("start the missing sentinels or lower the quorum; a failover cannot happen now"),
        ],
        Err(e) if is_denied(&e) => vec![
            p.unavailable(
                "sentinel.quorum",
                "sentinel|ckquorum",
                "SENTINEL CKQUORUM",
                &e,
            )
            .fix("grant +sentinel|ckquorum to the sentinel user (redis_diag::sentinel_acl_rule())"),
        ],
        Err(e) => vec![
            p.finding(
                "sentinel.quorum",
                Severity::Info,
                "the quorum could not be checked",
            )
            .evidence(e.to_string()),
        ],
    }
}
