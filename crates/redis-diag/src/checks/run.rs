//! One node's checks: connect, gather its answers, run the checks of the scope.

use std::collections::HashMap;

use fred::interfaces::ClientLike;
use redis_conn::RedisConfig;

use super::auth::{acl_audit, weak_passwords};
use super::health::health_checks;
use super::probe::{Probe, config_get, parse_info, text};
use super::security::security_checks;
use super::sentinel::sentinel_checks;
use crate::node::{self, NodeRole, Target, call};
use crate::options::{Options, Scope};
use crate::passwords::{self};
use crate::report::{Finding, NodeSummary, Severity};

/// Runs the node's checks; a node that does not answer, or refuses the credentials, is one
/// critical finding (`node.reachable`, `node.auth`).
pub(crate) async fn run_node(
    config: &RedisConfig,
    target: &Target,
    scope: Scope,
    opts: &Options,
) -> (NodeSummary, Vec<Finding>, Option<HashMap<String, String>>) {
    let addr = target.addr();
    let sentinel = target.role == NodeRole::Sentinel;
    let client = match node::connect(config, &target.endpoint, sentinel, opts.probe_timeout).await {
        Ok(c) => c,
        Err(e) => return (e.summary(target), vec![e.finding(target)], None),
    };
    let info = match call(&client, "INFO", vec!["everything".into()]).await {
        Ok(v) => parse_info(&text(&v).unwrap_or_default()),
        Err(_) => match call(&client, "INFO", vec![]).await {
            Ok(v) => parse_info(&text(&v).unwrap_or_default()),
            Err(_) => HashMap::new(),
        },
    };
    let role = match (target.role, info.get("role").map(String::as_str)) {
        (NodeRole::Sentinel, _) => "sentinel",
        (_, Some("master")) => "primary",
        (_, Some("slave")) => "replica",
        (r, _) => r.name(),
    }
    .to_string();
    let (config_map, config_error) = if sentinel {
        (None, None)
    } else {
        match config_get(
            &client,
            &[
                "protected-mode",
                "bind",
                "port",
                "tls-port",
                "maxmemory",
                "maxmemory-policy",
                "save",
                "appendonly",
                "appendfsync",
                "maxclients",
                "replica-read-only",
                "dir",
                "dbfilename",
                "enable-debug-command",
                "enable-module-command",
                "enable-protected-configs",
                "latency-monitor-threshold",
                "slowlog-log-slower-than",
            ],
        )
        .await
        {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        }
    };
    let probe = Probe {
        client: &client,
        addr: addr.clone(),
        role: role.clone(),
        info,
        config: config_map,
        config_error,
        password_less: config.password.is_none(),
        password_well_known: config
            .password
            .as_ref()
            .is_some_and(|p| passwords::is_well_known(p.expose())),
    };
    let mut found = Vec::new();
    if probe.info.is_empty() {
        found.push(
            probe
                .finding(
                    "info.unavailable",
                    Severity::Info,
                    "INFO cannot be run by this user: memory, persistence and replication checks are skipped",
                )
                .fix("give the diagnosing user +info (INFO is in the @dangerous category)"),
        );
    }
    if let Some(e) = &probe.config_error {
        found.push(
            probe
                .finding(
                    "config.unavailable",
                    Severity::Info,
                    "CONFIG cannot be read: configuration checks use INFO only",
                )
                .evidence(e.clone()),
        );
    }
    if sentinel {
        if scope != Scope::Health {
            // A sentinel without a password lets anyone reconfigure or fail over the service.
            let audit = acl_audit(&probe).await;
            found.extend(weak_passwords(&probe, &audit, None));
            found.extend(audit.findings);
        }
        if scope != Scope::Security {
            found.extend(sentinel_checks(&probe, config).await);
        }
    } else {
        if scope != Scope::Health {
            found.extend(security_checks(&probe).await);
        }
        if scope != Scope::Security {
            found.extend(health_checks(&probe, opts).await);
        }
    }
    let summary = NodeSummary {
        addr,
        role,
        reachable: true,
        auth_failed: false,
        version: probe.info.get("redis_version").cloned(),
    };
    let _ = client.quit().await;
    let Probe { info, .. } = probe;
    (summary, found, (!info.is_empty()).then_some(info))
}
