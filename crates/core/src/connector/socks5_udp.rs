//! SOCKS5 UDP ASSOCIATE (RFC 1928 §7), client side: GOST's socks5 connector
//! with `relay=udp` (go-gost/x `connector/socks/v5/connector.go` `relayUDP`,
//! `conn.go` `udpRelayConn`). Without that option GOST (and Portway) carry UDP
//! in UDP-TUN frames on the TCP connection instead, which only GOST-speaking
//! servers understand; `relay=udp` is what a third-party SOCKS5 server needs.
//!
//! [`associate`] asks for the association and returns a [`UdpAssociateStream`]:
//! to the caller it is a byte stream of GOST's UDP-over-stream frames, exactly
//! like the UDP-TUN tunnel, so the engine's UDP data path takes it unchanged.
//! Underneath, each frame becomes one real datagram to the server's relay
//! port (`00 00 00 ADDR payload`) and each datagram back becomes one frame.
//! The control connection is kept open (closing it ends the association) and
//! watched: when the server closes it, reads fail.

use super::socks5::Socks5Connector;
use crate::codec::addr::{Addr, Host};
use crate::codec::socks5::Socks5Error;
use crate::codec::udptun::{self, MAX_FRAME_LEN};
use crate::tls::MaybeTls;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tracing::debug;

/// GOST's connector `udpBufferSize` default (`connector/socks/v5/metadata.go`):
/// the largest datagram read back from the relay, header included.
pub const DEFAULT_BUFFER_SIZE: usize = 4096;

/// Handshake + UDP ASSOCIATE on `control`, then a UDP socket connected to the
/// relay address the server answered. `server` is the node's `host:port`: a
/// server that answers an unspecified address (`0.0.0.0`) means "my own
/// address", so the datagrams go to `server`'s host at the answered port.
/// The control connection runs inside TLS when the server chose GOST's `80`/`82`
/// (the datagrams themselves go plain, as GOST's `relayUDP` sends them).
pub async fn associate<C>(connector: &Socks5Connector, control: C, server: &str, buf_size: usize) -> Result<UdpAssociateStream<MaybeTls<C>>, Socks5Error>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (control, bnd) = connector.udp_associate(control).await?;
    let relay = relay_addr(&bnd, server).await?;
    let bind = if relay.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
    let udp = UdpSocket::bind(SocketAddr::new(bind, 0)).await?;
    udp.connect(relay).await.map_err(|e| io::Error::new(e.kind(), format!("UDP relay {relay}: {e}")))?;
    debug!(server, relay = %relay, "socks5 udp: association open");
    Ok(UdpAssociateStream::new(control, udp, buf_size))
}

/// Where to send datagrams for a reply address `bnd` from `server`.
async fn relay_addr(bnd: &Addr, server: &str) -> Result<SocketAddr, Socks5Error> {
    let host = match &bnd.host {
        Host::Ip(ip) if !ip.is_unspecified() => return Ok(SocketAddr::new(*ip, bnd.port)),
        Host::Ip(_) => crate::config::validate::split_host_port(server).map(|(h, _)| h.to_string()).unwrap_or_default(),
        Host::Domain(name) => name.clone(),
    };
    let found = crate::chain::resolve(&format!("{}:{}", bracket(&host), bnd.port)).await.map_err(|e| io::Error::new(e.kind(), format!("UDP relay address {host}: {e}")))?;
    // IPv4 first, as Go's dialer prefers it on a dual-stack name.
    let pick = found.iter().find(|a| a.is_ipv4()).or(found.first()).copied();
    pick.ok_or_else(|| Socks5Error::Io(io::Error::new(io::ErrorKind::NotFound, format!("UDP relay address {host}: no address"))))
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A UDP association seen as a stream of UDP-over-stream frames (see the
/// module docs). Frames written must be whole and well-formed; datagrams that
/// come back malformed or fragmented are dropped.
pub struct UdpAssociateStream<C> {
    control: C,
    udp: UdpSocket,
    /// Frame bytes written but not yet a whole frame.
    wbuf: Vec<u8>,
    /// A datagram the socket did not take yet.
    pending: Option<Vec<u8>>,
    /// The frame being read out, and how far.
    rbuf: Vec<u8>,
    rpos: usize,
    recv: Vec<u8>,
    control_closed: bool,
}

impl<C> UdpAssociateStream<C> {
    fn new(control: C, udp: UdpSocket, buf_size: usize) -> Self {
        UdpAssociateStream {
            control,
            udp,
            wbuf: Vec::new(),
            pending: None,
            rbuf: Vec::new(),
            rpos: 0,
            recv: vec![0u8; buf_size.clamp(512, 65535)],
            control_closed: false,
        }
    }

    /// The server's relay address the datagrams go to.
    pub fn relay_addr(&self) -> io::Result<SocketAddr> {
        self.udp.peer_addr()
    }
}

impl<C: AsyncRead + Unpin> UdpAssociateStream<C> {
    /// Reads (and throws away) anything on the control connection; `Ready`
    /// once it is closed.
    fn poll_control(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut sink = [0u8; 64];
        loop {
            if self.control_closed {
                return Poll::Ready(());
            }
            let mut rb = ReadBuf::new(&mut sink);
            match Pin::new(&mut self.control).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => self.control_closed = true,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    debug!("socks5 udp: control connection: {e}");
                    self.control_closed = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Turns one datagram from the relay into the frame to read out; `false`
    /// when it is dropped.
    fn take_datagram(&mut self, n: usize) -> bool {
        let raw = self.recv.get(..n).unwrap_or_default();
        let d = match udptun::decode_datagram(raw) {
            Ok(d) => d,
            Err(e) => {
                debug!("socks5 udp: dropped a datagram from the relay: {e}");
                return false;
            }
        };
        if d.frag != 0 {
            debug!("socks5 udp: dropped a fragment from the relay (FRAG {})", d.frag);
            return false;
        }
        self.rbuf.clear();
        self.rpos = 0;
        let payload = raw.get(d.payload).unwrap_or_default();
        // An empty datagram cannot be framed on a stream (codec::udptun).
        udptun::encode(&d.addr, payload, &mut self.rbuf).is_ok()
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for UdpAssociateStream<C> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if let Some(rest) = me.rbuf.get(me.rpos..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.remaining());
                buf.put_slice(rest.get(..n).unwrap_or_default());
                me.rpos += n;
                return Poll::Ready(Ok(()));
            }
            if me.poll_control(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "socks5: the server closed the UDP ASSOCIATE control connection")));
            }
            let mut rb = ReadBuf::new(&mut me.recv);
            match ready!(me.udp.poll_recv(cx, &mut rb)) {
                Ok(()) => {
                    let n = rb.filled().len();
                    me.take_datagram(n);
                }
                // An ICMP error for an earlier send; the association lives on.
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<C: AsyncWrite + Unpin> UdpAssociateStream<C> {
    /// Sends every whole frame written so far as a datagram.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(d) = &self.pending {
                match ready!(self.udp.poll_send(cx, d)) {
                    Ok(_) => {}
                    // Too large for UDP, or an ICMP error from an earlier one:
                    // this datagram is lost, as UDP allows.
                    Err(e) => debug!("socks5 udp: send to the relay failed: {e}"),
                }
                self.pending = None;
            }
            let Some((addr, range, used)) = udptun::decode(&self.wbuf).map_err(io::Error::from)? else {
                return Poll::Ready(Ok(()));
            };
            let mut d = Vec::with_capacity(udptun::MAX_DATAGRAM_HEADER_LEN + range.len());
            udptun::encode_datagram(&addr, self.wbuf.get(range).unwrap_or_default(), &mut d);
            self.wbuf.drain(..used);
            self.pending = Some(d);
        }
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for UdpAssociateStream<C> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        ready!(me.poll_push(cx))?;
        // After a push only part of one frame is left, so there is room.
        let room = MAX_FRAME_LEN.saturating_sub(me.wbuf.len());
        if room == 0 {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "socks5 udp: frame longer than any datagram")));
        }
        let n = buf.len().min(room);
        me.wbuf.extend_from_slice(buf.get(..n).unwrap_or_default());
        // Send at once what is complete; a full socket buffer is finished by
        // the next write or flush (the waker is registered).
        if let Poll::Ready(Err(e)) = me.poll_push(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_push(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_push(cx))?;
        Pin::new(&mut me.control).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Frames in, datagrams out, and back, against a relay socket played here.
    #[tokio::test]
    async fn frames_become_datagrams_and_back() {
        let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.connect(relay.local_addr().unwrap()).await.unwrap();
        let (control, mut server_side) = tokio::io::duplex(64);
        let mut s = UdpAssociateStream::new(control, udp, 4096);
        let target = Addr::parse("192.168.1.1:53").unwrap();
        let mut frame = Vec::new();
        udptun::encode(&target, b"query", &mut frame).unwrap();
        // Written in two pieces: nothing goes out until the frame is whole.
        s.write_all(&frame[..4]).await.unwrap();
        s.write_all(&frame[4..]).await.unwrap();
        s.flush().await.unwrap();
        let mut b = [0u8; 128];
        let (n, from) = tokio::time::timeout(std::time::Duration::from_secs(5), relay.recv_from(&mut b)).await.unwrap().unwrap();
        assert_eq!(&b[..n], &[&[0u8, 0, 0, 1, 192, 168, 1, 1, 0, 53][..], b"query"].concat()[..]);

        // A fragment and garbage are dropped; the good answer comes out framed.
        relay.send_to(&[0, 0, 1, 1, 192, 168, 1, 1, 0, 53, b'x'], from).await.unwrap();
        relay.send_to(&[0, 0], from).await.unwrap();
        relay.send_to(&[&[0u8, 0, 0, 1, 192, 168, 1, 1, 0, 53][..], b"answer"].concat(), from).await.unwrap();
        let mut want = Vec::new();
        udptun::encode(&target, b"answer", &mut want).unwrap();
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut got)).await.unwrap().unwrap();
        assert_eq!(got, want);

        // The server closing the control connection ends the stream with a reason.
        server_side.shutdown().await.unwrap();
        drop(server_side);
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut got)).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("closed the UDP ASSOCIATE control connection"), "{e}");
    }

    #[tokio::test]
    async fn unspecified_reply_means_the_server_host() {
        let a = relay_addr(&Addr::parse("0.0.0.0:4000").unwrap(), "127.0.0.1:1080").await.unwrap();
        assert_eq!(a.to_string(), "127.0.0.1:4000");
        let a = relay_addr(&Addr::parse("127.0.0.2:4001").unwrap(), "127.0.0.1:1080").await.unwrap();
        assert_eq!(a.to_string(), "127.0.0.2:4001");
        let a = relay_addr(&Addr::parse("[::]:4002").unwrap(), "[::1]:1080").await.unwrap();
        assert_eq!(a.to_string(), "[::1]:4002");
    }
}
