//! A small TCP fault proxy: put it between a client and one Redis node to delay, black-hole,
//! refuse or cut that one link while everything else keeps working.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use testkit::{FaultProxy, ProxyMode};
//!
//! let proxy = FaultProxy::start("127.0.0.1:6379".parse().unwrap()).await?;
//! // point the client at proxy.addr() ...
//! proxy.set_mode(ProxyMode::Delay(Duration::from_millis(200)));
//! proxy.set_mode(ProxyMode::BlackHole); // bytes stop flowing, sockets stay open
//! proxy.set_mode(ProxyMode::Pass);      // held bytes flow again
//! proxy.cut();                          // every open connection is closed
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward everything at once.
    Pass,
    /// Hold every chunk for this long before forwarding it (both directions).
    Delay(Duration),
    /// Stop forwarding and keep the sockets open (a stalled network or a frozen peer); held
    /// bytes flow again when the mode changes back.
    BlackHole,
    /// Close new connections right after accepting them; open ones keep passing.
    Refuse,
}

/// A running proxy; dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    target: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    cut: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `target` (mode [`ProxyMode::Pass`]).
    pub async fn start(target: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(ProxyMode::Pass);
        let (cut, _) = watch::channel(0u64);
        let (m, c) = (mode.clone(), cut.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *m.borrow() == ProxyMode::Refuse {
                    drop(client);
                    continue;
                }
                let (m, c) = (m.subscribe(), c.subscribe());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    client.set_nodelay(true).ok();
                    server.set_nodelay(true).ok();
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, m.clone(), c.clone()), pump(sr, cw, m, c));
                });
            }
        });
        Ok(FaultProxy {
            addr,
            target,
            mode,
            cut,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where traffic goes.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Changes how traffic is treated, for open and new connections.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }

    /// Closes every open connection (both sides see EOF); new ones are accepted as the mode says.
    pub fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
    mut cut: watch::Receiver<u64>,
) {
    // A fresh receiver already treats the current generation as seen, so a cut() made while
    // this connection was being set up still closes it.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = cut.changed() => return,
        };
        loop {
            let current = *mode.borrow_and_update();
            match current {
                ProxyMode::Pass | ProxyMode::Refuse => break,
                ProxyMode::Delay(d) => tokio::select! {
                    _ = tokio::time::sleep(d) => break,
                    _ = cut.changed() => return,
                },
                ProxyMode::BlackHole => tokio::select! {
                    r = mode.changed() => if r.is_err() { return },
                    _ = cut.changed() => return,
                },
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    to.shutdown().await.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        s.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(within, s.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf.to_vec())
    }

    #[tokio::test]
    async fn black_hole_holds_bytes_until_healed_and_cut_closes() {
        let proxy = FaultProxy::start(echo_server().await).await.expect("proxy");
        let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(
            roundtrip(&mut s, Duration::from_secs(2)).await.as_deref(),
            Some(&b"ping"[..])
        );

        proxy.set_mode(ProxyMode::BlackHole);
        assert_eq!(
            roundtrip(&mut s, Duration::from_millis(200)).await,
            None,
            "black hole must hold bytes"
        );
        proxy.set_mode(ProxyMode::Pass);
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .expect("held bytes flow after healing")
            .expect("read");

        proxy.cut();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest))
            .await
            .expect("cut closes the connection");
        assert!(matches!(n, Ok(0) | Err(_)));

        proxy.set_mode(ProxyMode::Refuse);
        let mut s2 = TcpStream::connect(proxy.addr())
            .await
            .expect("accepted then closed");
        assert_eq!(roundtrip(&mut s2, Duration::from_millis(500)).await, None);
    }

    #[tokio::test]
    async fn delay_slows_each_chunk() {
        let proxy = FaultProxy::start(echo_server().await).await.expect("proxy");
        proxy.set_mode(ProxyMode::Delay(Duration::from_millis(150)));
        let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
        let start = std::time::Instant::now();
        assert!(roundtrip(&mut s, Duration::from_secs(3)).await.is_some());
        // Two hops of 150 ms each; a lower bound only (no upper bound on a shared machine).
        assert!(start.elapsed() >= Duration::from_millis(300));
    }
}
