//! A tiny blocking RESP2 client for the harness: readiness probes, topology set-up and faults.
//!
//! The harness must work before any async runtime exists (xtask is synchronous) and without
//! `redis-cli`, so it speaks the protocol itself. It is not a general client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n ...` (`None` for a nil bulk string)
    Bulk(Option<Vec<u8>>),
    /// `*n ...` (`None` for a nil array)
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (status or bulk string), if it is one.
    ///
    /// ```
    /// use testkit::resp::Reply;
    /// assert_eq!(Reply::Status("OK".into()).text().as_deref(), Some("OK"));
    /// ```
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The reply as an integer, if it is one.
    ///
    /// ```
    /// use testkit::resp::Reply;
    /// assert_eq!(Reply::Int(3).int(), Some(3));
    /// ```
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The elements of an array reply (empty for anything else).
    ///
    /// ```
    /// use testkit::resp::Reply;
    /// assert_eq!(Reply::Array(Some(vec![Reply::Int(1)])).items().len(), 1);
    /// ```
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// A plaintext or TLS socket.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// TLS settings for [`Conn::connect_tls`]: the client configuration and the name to verify.
#[derive(Debug, Clone)]
pub struct ConnTls {
    /// Roots and client certificate.
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must carry.
    pub server_name: rustls::pki_types::ServerName<'static>,
}

/// A blocking connection to one Redis or Sentinel node.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    reader: BufReader<Stream>,
}

impl Conn {
    /// Connects with the given timeout (also used for reads and writes) and authenticates
    /// when `auth` is `Some((username, password))`.
    ///
    /// ```no_run
    /// let mut conn = testkit::resp::Conn::connect("127.0.0.1:6379".parse().unwrap(), std::time::Duration::from_secs(1), None).unwrap();
    /// conn.cmd(&["PING"]).unwrap();
    /// ```
    pub fn connect(
        addr: SocketAddr,
        timeout: Duration,
        auth: Option<(&str, &str)>,
    ) -> Result<Self> {
        Conn::connect_tls(addr, timeout, auth, None)
    }

    /// Like [`Conn::connect`], over TLS when `tls` is `Some`.
    pub fn connect_tls(
        addr: SocketAddr,
        timeout: Duration,
        auth: Option<(&str, &str)>,
        tls: Option<&ConnTls>,
    ) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| Error::new(format!("cannot connect to {addr}: {e}")))?;
        stream.set_read_timeout(Some(timeout)).ok();
        stream.set_write_timeout(Some(timeout)).ok();
        stream.set_nodelay(true).ok();
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(t) => {
                let conn = rustls::ClientConnection::new(t.config.clone(), t.server_name.clone())
                    .map_err(|e| Error::new(format!("{addr}: TLS set-up: {e}")))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, stream)))
            }
        };
        let mut conn = Conn {
            addr,
            reader: BufReader::new(stream),
        };
        if let Some((user, pass)) = auth {
            conn.ok(&["AUTH", user, pass])?;
        }
        Ok(conn)
    }

    /// Changes the read timeout (for commands such as `DEBUG SLEEP` that answer late).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.reader
            .get_ref()
            .tcp()
            .set_read_timeout(Some(timeout))
            .ok();
    }

    /// Sends one command and reads its reply. A server error is returned as `Reply::Error`.
    pub fn cmd(&mut self, args: &[&str]) -> Result<Reply> {
        self.send(args)?;
        self.read()
    }

    /// Sends one command without reading the reply (for `DEBUG SLEEP` and friends).
    pub fn send(&mut self, args: &[&str]) -> Result<()> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&buf)
            .map_err(|e| Error::new(format!("{}: write failed: {e}", self.addr)))
    }

    /// Reads one reply.
    pub fn read(&mut self) -> Result<Reply> {
        read_reply(&mut self.reader)
            .map_err(|e| Error::new(format!("{}: read failed: {e}", self.addr)))
    }

    /// Runs a command and turns a server error into an `Err`.
    pub fn ok(&mut self, args: &[&str]) -> Result<Reply> {
        match self.cmd(args)? {
            Reply::Error(e) => Err(Error::new(format!(
                "{}: `{}` failed: {e}",
                self.addr,
                args.first().copied().unwrap_or_default()
            ))),
            other => Ok(other),
        }
    }

    /// `INFO <section>` parsed into `field -> value` pairs.
    pub fn info(&mut self, section: &str) -> Result<Vec<(String, String)>> {
        let text = self.ok(&["INFO", section])?.text().unwrap_or_default();
        Ok(parse_info(&text))
    }

    /// One field of `INFO <section>`.
    pub fn info_field(&mut self, section: &str, field: &str) -> Result<Option<String>> {
        Ok(self
            .info(section)?
            .into_iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v))
    }
}

/// Parses `INFO` text into `field -> value` pairs.
///
/// ```
/// let pairs = testkit::resp::parse_info("# Replication\r\nrole:master\r\n");
/// assert_eq!(pairs, vec![("role".to_string(), "master".to_string())]);
/// ```
pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

fn read_reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let num = || -> std::io::Result<i64> {
        rest.parse()
            .map_err(|_| bad(format!("bad length in {line:?}")))
    };
    Ok(match kind {
        "+" => Reply::Status(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(num()?),
        "$" => {
            let n = num()?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                std::io::Read::read_exact(r, &mut buf)?;
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
        }
        "*" => {
            let n = num()?;
            if n < 0 {
                Reply::Array(None)
            } else {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(read_reply(r)?);
                }
                Reply::Array(Some(items))
            }
        }
        _ => return Err(bad(format!("unexpected reply line {line:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_replies() {
        let raw = b"*3\r\n$3\r\nfoo\r\n:7\r\n*1\r\n$-1\r\n";
        let reply = read_reply(&mut &raw[..]).expect("valid RESP");
        assert_eq!(
            reply,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"foo".to_vec())),
                Reply::Int(7),
                Reply::Array(Some(vec![Reply::Bulk(None)])),
            ]))
        );
    }

    #[test]
    fn truncated_reply_is_an_error() {
        assert!(read_reply(&mut &b"$5\r\nab"[..]).is_err());
        assert!(read_reply(&mut &b"?x\r\n"[..]).is_err());
    }
}
