//! A diagnosis: discover every node, run the checks on each, sort the findings.

use crate::checks;
use crate::error::Error;
use crate::node;
use crate::options::{Options, Scope};
use crate::report::{NodeInfo, Report, SCHEMA};

/// Runs the checks of `scope` on every node of the deployment `config` describes.
///
/// ```no_run
/// # async fn demo(cfg: redis_conn::RedisConfig) -> Result<(), redis_diag::Error> {
/// let report = redis_diag::diagnose(&cfg, redis_diag::Scope::Security, &redis_diag::Options::default()).await?;
/// println!("{}", redis_diag::render_table(&report, 80));
/// # Ok(()) }
/// ```
pub async fn diagnose(
    config: &redis_conn::RedisConfig,
    scope: Scope,
    opts: &Options,
) -> Result<Report, Error> {
    Ok(diagnose_nodes(config, scope, opts).await?.0)
}

/// [`diagnose`], also returning each node's `INFO` fields as the checks read them (for the
/// exporter: one visit per node and scrape).
pub(crate) async fn diagnose_nodes(
    config: &redis_conn::RedisConfig,
    scope: Scope,
    opts: &Options,
) -> Result<(Report, Vec<NodeInfo>), Error> {
    let (targets, mut findings) = node::discover(config, opts).await?;
    let mut nodes = Vec::new();
    let mut infos = Vec::new();
    for target in &targets {
        let (summary, mut found, info) = checks::run_node(config, target, scope, opts).await;
        infos.push(NodeInfo {
            addr: summary.addr.clone(),
            role: summary.role.clone(),
            up: summary.reachable,
            info,
        });
        nodes.push(summary);
        findings.append(&mut found);
    }
    if scope != Scope::Security {
        findings.extend(checks::topology_checks(config, &targets, opts).await);
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.node.cmp(&b.node))
            .then_with(|| a.check.cmp(&b.check))
    });
    let report = Report {
        schema: SCHEMA.into(),
        mode: config.mode.name().into(),
        nodes,
        findings,
    };
    Ok((report, infos))
}
