//! One node's checks: connect, gather its answers, run the checks of the scope.

use std::collections::HashMap;

use fred::interfaces::ClientLike;
use redis_conn::RedisConfig;

use super::auth::{acl_audit, weak_passwords};
#[cfg(feature = "tls")]
use super::certificate::certificate_expiry;
use super::health::health_checks;
use super::probe::{Probe, config_get, parse_info, text};
use super::security::security_checks;
use super::sentinel::sentinel_checks;
use crate::node::{self, ConnectFailure, NodeRole, Target, call};
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
    // The credentials used on this node (a sentinel's own, for a sentinel).
    let logged_in = node::node_config(config, &target.endpoint, sentinel, opts.probe_timeout);
    // The certificate is read by a handshake of its own, so an expired one is dated even
    // when the connection below refuses it.
    #[cfg(feature = "tls")]
    let certificate = certificate_expiry(config, target, opts.probe_timeout).await;
    #[cfg(not(feature = "tls"))]
    let certificate: Option<Finding> = None;
    let client = match node::connect(config, &target.endpoint, sentinel, opts.probe_timeout).await {
        Ok(c) => c,
        Err(e) => {
            let mut found = vec![e.finding(target)];
            // A node that does not answer at all has nothing more to say.
            let silent = matches!(e, ConnectFailure::Unreachable(_));
            found.extend(certificate.filter(|f| !(silent && f.severity == Severity::Info)));
            return (e.summary(target), found, None);
        }
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
                "tls-protocols",
                "tls-ciphers",
                "tls-auth-clients",
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
        username: logged_in.username.clone(),
        tls: config.tls.is_some(),
        password_less: logged_in.password.is_none(),
        password_well_known: logged_in
            .password
            .as_ref()
            .is_some_and(|p| passwords::is_well_known(p.expose())),
    };
    let mut found: Vec<Finding> = certificate
        .map(|mut f| {
            f.role = role.clone();
            f
        })
        .into_iter()
        .collect();
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
        let f = if node::is_denied(e) {
            probe
                .finding(
                    "config.unavailable",
                    Severity::Info,
                    "CONFIG GET is refused, needs +config|get: configuration checks use INFO only",
                )
                .fix("grant +config|get to the diagnosing user (redis_diag::acl_rule() has every right the checks need)")
        } else {
            probe.finding(
                "config.unavailable",
                Severity::Info,
                "CONFIG cannot be read: configuration checks use INFO only",
            )
        };
        found.push(f.evidence(e.details().to_string()));
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
