//! Server side of GOST's BIND family, shared by SOCKS5 (MUX-BIND `F2`, UDP-TUN
//! bind) and relay (BIND TCP/UDP): listening where the client asked, and the
//! multiplexed accept loop in which this server is the smux *client* and opens
//! one stream per inbound connection (go-gost/x `handler/socks/v5/mbind.go`,
//! `handler/relay/bind.go`, `entrypoint.go`).
//!
//! Engine flow for a MUX-BIND / relay BIND TCP:
//! ```text
//! let mut srv = socks5::mux_bind(conn, &req, conn_local_ip, mux_cfg).await?;   // or relay::bind_tcp
//! while let Some(inb) = srv.accept().await? {
//!     spawn(pipe inb.peer <-> inb.stream, counting bytes, listed as a connection)
//! }   // None: the control connection ended; the listener is closed already
//! ```

use crate::codec::addr::{Addr, Host};
use crate::mux::{MuxConfig, MuxSession, MuxStream};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Where to listen for a requested address. A host-less address (GOST v3.2.6
/// sends `:8080` as an empty domain) is every interface; a name is resolved and
/// its first address used, as Go's `net.Listen` does.
pub async fn listen_addr(addr: &Addr) -> io::Result<SocketAddr> {
    match &addr.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, addr.port)),
        Host::Domain(d) if d.is_empty() => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port)),
        Host::Domain(d) => tokio::net::lookup_host((d.as_str(), addr.port))
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{d} has no address"))),
    }
}

/// Listens strictly: a port in use is an error, never another port.
pub async fn listen_tcp(addr: &Addr) -> io::Result<TcpListener> {
    TcpListener::bind(listen_addr(addr).await?).await
}

pub async fn listen_udp(addr: &Addr) -> io::Result<UdpSocket> {
    UdpSocket::bind(listen_addr(addr).await?).await
}

/// The bytes a server writes at the start of each stream, given the peer.
pub type StreamHeader = fn(&Addr) -> Vec<u8>;

/// One inbound connection on the bound port, with its stream already opened and
/// the per-stream header written: pipe `peer` and `stream`.
#[derive(Debug)]
pub struct Inbound {
    pub peer: TcpStream,
    pub peer_addr: SocketAddr,
    pub stream: MuxStream,
}

/// A bound port whose connections travel as smux streams over the control
/// connection. The listener closes when the control connection ends or when
/// this is dropped.
#[derive(Debug)]
pub struct MuxBindServer {
    listener: Option<TcpListener>,
    bound: SocketAddr,
    session: Arc<MuxSession>,
    header: StreamHeader,
}

impl MuxBindServer {
    /// Starts the smux session (this side opens streams) on `control`, whose
    /// bind answer has been written already.
    pub fn new<S>(control: S, listener: TcpListener, header: StreamHeader, cfg: MuxConfig) -> io::Result<MuxBindServer>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let bound = listener.local_addr()?;
        let session = Arc::new(MuxSession::client(control, cfg));
        // GOST accepts and closes whatever the client opens: it has no use for it.
        let s = session.clone();
        tokio::spawn(async move {
            while let Some(stream) = s.accept().await {
                drop(stream);
            }
        });
        Ok(MuxBindServer { listener: Some(listener), bound, session, header })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.bound
    }

    /// The next inbound connection; `Ok(None)` once the control connection has
    /// ended (the listener is closed by then). An `Err` is the listener's own
    /// accept error, after which accepting may be tried again.
    pub async fn accept(&mut self) -> io::Result<Option<Inbound>> {
        let Some(listener) = &self.listener else { return Ok(None) };
        let accepted = tokio::select! {
            a = listener.accept() => Some(a),
            _ = self.session.closed() => None,
        };
        let Some(accepted) = accepted else {
            self.listener = None;
            return Ok(None);
        };
        let (peer, peer_addr) = accepted?;
        let mut stream = match self.session.open() {
            Ok(s) => s,
            Err(_) => {
                self.listener = None;
                return Ok(None);
            }
        };
        let header = (self.header)(&Addr::from(unmap(peer_addr)));
        if !header.is_empty() && stream.write_all(&header).await.is_err() {
            // Only a dead session refuses a write.
            self.listener = None;
            return Ok(None);
        }
        Ok(Some(Inbound { peer, peer_addr, stream }))
    }

    /// Why the control connection's session ended, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.session.close_reason()
    }

    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }
}

impl Drop for MuxBindServer {
    fn drop(&mut self) {
        // The accept-and-close task holds the session too.
        self.session.close();
    }
}

/// A v4-mapped peer on a dual-stack listener is reported as plain IPv4.
pub fn unmap(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// The address a SOCKS5 BIND / MUX-BIND reply carries: GOST puts the control
/// connection's local IP (or `publicAddr`) with the listener's port, since the
/// listener's own wildcard address tells the client nothing
/// (`handler/socks/v5/mbind.go`). Without a known local IP the listener's
/// address is sent.
pub fn reply_addr(listener: SocketAddr, reply_ip: Option<IpAddr>) -> Addr {
    Addr::ip(reply_ip.unwrap_or(listener.ip()), listener.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listen_addresses() {
        let a = listen_addr(&Addr { host: Host::Domain(String::new()), port: 8080 }).await.unwrap();
        assert_eq!(a.to_string(), "0.0.0.0:8080");
        let a = listen_addr(&Addr::parse("[::1]:9").unwrap()).await.unwrap();
        assert_eq!(a.to_string(), "[::1]:9");
        let a = listen_addr(&Addr::parse("localhost:7").unwrap()).await.unwrap();
        assert!(a.ip().is_loopback() && a.port() == 7, "{a}");
        assert_eq!(reply_addr("0.0.0.0:80".parse().unwrap(), Some("10.0.0.1".parse().unwrap())).to_string(), "10.0.0.1:80");
        assert_eq!(unmap("[::ffff:1.2.3.4]:5".parse().unwrap()).to_string(), "1.2.3.4:5");
    }
}
