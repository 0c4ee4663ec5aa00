//! One node's answers, gathered once for all checks: `INFO`, `CONFIG GET`, and how findings
//! are made for the node.

use std::collections::HashMap;

use fred::clients::Client;
use fred::types::Value;

use crate::node::{call, is_denied};
use crate::report::{Finding, Severity};

/// `INFO` text → fields.
pub(crate) fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One node's answers, gathered once for all checks.
pub(super) struct Probe<'a> {
    pub(super) client: &'a Client,
    pub(super) addr: String,
    pub(super) role: String,
    pub(super) info: HashMap<String, String>,
    /// `CONFIG GET` results (`None` when CONFIG is renamed, disabled or denied).
    pub(super) config: Option<HashMap<String, String>>,
    pub(super) config_error: Option<fred::error::Error>,
    /// The user we logged in as (`None`: `default`), for when `ACL WHOAMI` is refused.
    pub(super) username: Option<String>,
    /// We connected over TLS.
    pub(super) tls: bool,
    /// We connected without sending a password.
    pub(super) password_less: bool,
    /// The password we connected with is a well-known one (the password itself is not kept).
    pub(super) password_well_known: bool,
}

impl Probe<'_> {
    pub(super) fn info_u64(&self, k: &str) -> Option<u64> {
        self.info.get(k).and_then(|v| v.parse().ok())
    }

    pub(super) fn info_f64(&self, k: &str) -> Option<f64> {
        self.info.get(k).and_then(|v| v.parse().ok())
    }

    pub(super) fn conf(&self, k: &str) -> Option<&str> {
        self.config.as_ref()?.get(k).map(String::as_str)
    }

    pub(super) fn finding(
        &self,
        check: &str,
        severity: Severity,
        title: impl Into<String>,
    ) -> Finding {
        let mut f = Finding::new(check, severity, &self.addr, title);
        f.role = self.role.clone();
        f
    }

    /// `check` could not be run: the command it needs failed with `error`. An ACL refusal
    /// (`NOPERM`) names the right to grant (`needs +slowlog|get`); anything else (a renamed
    /// command, an old server) says the command failed. Info: nothing is known either way.
    pub(super) fn unavailable(
        &self,
        check: &str,
        right: &str,
        what: &str,
        error: &fred::error::Error,
    ) -> Finding {
        if is_denied(error) {
            self.finding(
                check,
                Severity::Info,
                format!("not checked: the user may not run {}, needs +{right}", command_name(right)),
            )
            .evidence(format!("{what}: {}", error.details()))
            .fix(format!(
                "grant +{right} to the diagnosing user (redis_diag::acl_rule() has every right the checks need)"
            ))
        } else {
            self.finding(
                check,
                Severity::Info,
                format!("not checked: {} failed", command_name(right)),
            )
            .evidence(format!("{what}: {error}"))
        }
    }
}

/// `config|get` → `CONFIG GET`.
pub(super) fn command_name(right: &str) -> String {
    right.replace('|', " ").to_uppercase()
}

pub(super) fn text(v: &Value) -> Option<String> {
    v.as_string()
}

/// `CONFIG GET` of many parameters (one call each pattern keeps replies small).
pub(super) async fn config_get(
    client: &Client,
    names: &[&str],
) -> Result<HashMap<String, String>, fred::error::Error> {
    let mut out = HashMap::new();
    for n in names {
        let v = call(client, "CONFIG", vec!["GET".into(), (*n).into()]).await?;
        let pairs: Vec<String> = match v {
            Value::Array(a) => a.iter().filter_map(text).collect(),
            Value::Map(m) => m
                .inner()
                .iter()
                .flat_map(|(k, v)| [k.as_str().map(|s| s.to_string()), text(v)])
                .flatten()
                .collect(),
            _ => Vec::new(),
        };
        for kv in pairs.chunks(2) {
            if let [k, v] = kv {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(out)
}
