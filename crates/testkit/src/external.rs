//! ACL users on a topology known only by its URL (started by `xtask` and handed to the test
//! processes in `REDKIT_<KIND>_URL`): the URL is one [`Topology::url`](crate::Topology::url)
//! wrote, so it names the admin credentials, the data nodes (or the sentinels, which name
//! them) and the TLS files.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::resp::{Conn, Reply};
use crate::tls::{HarnessTls, TlsFiles};

/// The parts of a harness URL.
#[derive(Debug)]
struct Parsed {
    scheme: String,
    creds: Option<(String, String)>,
    hosts: Vec<SocketAddr>,
    path: String,
    query: String,
    tls: Option<TlsFiles>,
    names: Vec<(IpAddr, String)>,
    sentinel_creds: Option<(String, String)>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len() + 1
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse(url: &str) -> Result<Parsed> {
    let bad = || {
        Error::new(format!(
            "not a harness URL: {}",
            url.split('@').next_back().unwrap_or("")
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (creds, hosts) = match authority.rsplit_once('@') {
        Some((c, h)) => {
            let (u, p) = c.split_once(':').unwrap_or(("", c));
            (Some((decode(u), decode(p))), h)
        }
        None => (None, authority),
    };
    let hosts = hosts
        .split(',')
        .map(|h| h.parse::<SocketAddr>().map_err(|_| bad()))
        .collect::<Result<Vec<_>>>()?;
    let mut ca = None;
    let mut cert = None;
    let mut key = None;
    let mut names = Vec::new();
    let (mut s_user, mut s_pass) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "tls_ca" => ca = Some(PathBuf::from(decode(v))),
            "tls_cert" => cert = Some(PathBuf::from(decode(v))),
            "tls_key" => key = Some(PathBuf::from(decode(v))),
            "tls_hosts" => {
                for entry in v.split(',') {
                    if let Some((ip, name)) = entry.split_once('=')
                        && let Ok(ip) = ip.parse()
                    {
                        names.push((ip, name.to_string()));
                    }
                }
            }
            "sentinel_username" => s_user = Some(decode(v)),
            "sentinel_password" => s_pass = Some(decode(v)),
            _ => {}
        }
    }
    let sentinel_creds = s_pass.map(|p| (s_user.unwrap_or_else(|| "default".into()), p));
    let tls = match (ca, cert, key) {
        (Some(ca), Some(client_cert), Some(client_key)) => Some(TlsFiles {
            ca,
            client_cert,
            client_key,
        }),
        _ => None,
    };
    Ok(Parsed {
        scheme: scheme.to_string(),
        creds,
        hosts,
        path: path.to_string(),
        query: query.to_string(),
        tls,
        names,
        sentinel_creds,
    })
}

impl Parsed {
    fn conn(&self, addr: SocketAddr, creds: Option<&(String, String)>) -> Result<Conn> {
        let tls = match &self.tls {
            Some(files) => Some(
                HarnessTls {
                    files: files.clone(),
                    server_name: self
                        .names
                        .iter()
                        .find(|(ip, _)| *ip == addr.ip())
                        .map(|(_, n)| n.clone()),
                }
                .conn_tls(addr.ip())?,
            ),
            None => None,
        };
        let auth = creds.map(|(u, p)| {
            (
                if u.is_empty() { "default" } else { u.as_str() },
                p.as_str(),
            )
        });
        Conn::connect_tls(addr, Duration::from_secs(2), auth, tls.as_ref())
    }

    /// Every data node: the URL's hosts, or what its sentinels say.
    fn data_nodes(&self) -> Result<Vec<SocketAddr>> {
        if !self.scheme.contains("sentinel") {
            return Ok(self.hosts.clone());
        }
        let master = self.path.split('/').next().unwrap_or("mymaster");
        let first = *self
            .hosts
            .first()
            .ok_or_else(|| Error::new("a sentinel URL without sentinels"))?;
        let mut c = self.conn(first, self.sentinel_creds.as_ref())?;
        let addr_of = |fields: &[Reply]| -> Option<SocketAddr> {
            let get = |k: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0].text().as_deref() == Some(k))
                    .and_then(|kv| kv.get(1).and_then(Reply::text))
            };
            format!("{}:{}", get("ip")?, get("port")?).parse().ok()
        };
        let mut out = Vec::new();
        let primary = c.ok(&["SENTINEL", "MASTER", master])?;
        out.extend(addr_of(primary.items()));
        let replicas = c.ok(&["SENTINEL", "REPLICAS", master])?;
        for r in replicas.items() {
            out.extend(addr_of(r.items()));
        }
        Ok(out)
    }
}

/// Creates (or replaces) ACL user `user` with `password` and `rules` on every data node of
/// the topology behind `url` (which must carry admin credentials) and returns the user's URL.
pub(crate) fn create_user(url: &str, user: &str, password: &str, rules: &str) -> Result<String> {
    let parsed = parse(url)?;
    for addr in parsed.data_nodes()? {
        let mut c = parsed
            .conn(addr, parsed.creds.as_ref())
            .map_err(|e| Error::new(format!("creating ACL user {user} on {addr}: {e}")))?;
        let pw = format!(">{password}");
        let mut args = vec!["ACL", "SETUSER", user, "reset", "on", pw.as_str()];
        args.extend(rules.split_whitespace());
        c.ok(&args)?;
    }
    let hosts: Vec<String> = parsed.hosts.iter().map(ToString::to_string).collect();
    let mut out = format!(
        "{}://{user}:{}@{}",
        parsed.scheme,
        crate::topology::encode_userinfo(password),
        hosts.join(",")
    );
    if !parsed.path.is_empty() {
        out.push('/');
        out.push_str(&parsed.path);
    }
    if !parsed.query.is_empty() {
        out.push('?');
        out.push_str(&parsed.query);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_urls_parse() {
        let p = parse("rediss-sentinel://redkit-admin:a%40b@127.0.0.1:1,127.0.0.1:2/mymaster?tls_ca=/t/ca.crt&tls_cert=/t/c.crt&tls_key=/t/c.key&tls_hosts=127.0.0.1=nodes.redkit.test").expect("parse");
        assert_eq!(p.creds, Some(("redkit-admin".into(), "a@b".into())));
        assert_eq!(p.hosts.len(), 2);
        assert_eq!(p.path, "mymaster");
        assert!(p.tls.is_some());
        assert_eq!(p.names[0].1, "nodes.redkit.test");
    }
}
