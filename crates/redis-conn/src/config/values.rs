//! Parsers for single setting values, shared by the URL and environment readers: each error
//! names the setting (`what`) and the accepted values.

use std::time::Duration;

use super::types::Endpoint;
use crate::error::{Error, Result};

pub(super) fn parse_port(s: &str, what: &str) -> Result<u16> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::config(
            what,
            format!("{s:?} is not a valid port: expected a number from 1 to 65535"),
        )),
    }
}

pub(super) fn parse_endpoint(s: &str, default_port: u16, what: &str) -> Result<Endpoint> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        // [ipv6]:port
        let (h, after) = rest.split_once(']').ok_or_else(|| {
            Error::config(what, format!("{s:?}: unclosed '[' in an IPv6 address"))
        })?;
        if !after.is_empty() && !after.starts_with(':') {
            return Err(Error::config(
                what,
                format!("{s:?}: expected [ipv6]:port, found {after:?} after ']'"),
            ));
        }
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(Error::config(
            what,
            format!("{s:?} has no host: expected host[:port]"),
        ));
    }
    if host.contains(['/', '@', '?', '#', '[', ']', ','])
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::config(what, format!("{host:?} is not a host name")));
    }
    let port = match port {
        Some(p) => parse_port(p, &format!("{what} port"))?,
        None => default_port,
    };
    Ok(Endpoint {
        host: host.to_string(),
        port,
    })
}

pub(super) fn parse_host_list(s: &str, default_port: u16, what: &str) -> Result<Vec<Endpoint>> {
    s.split(',')
        .filter(|h| !h.trim().is_empty())
        .map(|h| parse_endpoint(h, default_port, what))
        .collect()
}

pub(super) fn parse_db(s: &str, what: &str) -> Result<u8> {
    s.parse::<u8>().map_err(|_| {
        Error::config(
            what,
            format!("{s:?} is not a database index: expected a number from 0 to 255"),
        )
    })
}

pub(super) fn parse_millis(s: &str, what: &str) -> Result<Duration> {
    match s.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(Error::config(
            what,
            format!("{s:?} is not a duration: expected milliseconds greater than 0"),
        )),
    }
}

pub(super) fn parse_pool_size(s: &str, what: &str) -> Result<usize> {
    match s.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(Error::config(
            what,
            format!("{s:?} is not a pool size: expected a number from 1 to 256"),
        )),
    }
}
