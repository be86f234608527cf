//! SOCKS5 UDP ASSOCIATE (RFC 1928 §7), server side, as GOST's `socks5` handler
//! serves it with `udp=true` (go-gost/x `handler/socks/v5/udp.go`,
//! `internal/util/socks/conn.go` `udpConn`).
//!
//! [`associate`] binds the client-facing UDP socket on the IP the client reached
//! (port 0) and answers with it. Then one of the relays runs until the client
//! closes the control connection: [`relay_direct`] sends each datagram from a
//! socket of ours to the target its header names, [`relay_stream`] frames it
//! onto a stream through the service's chain (GOST's UDP-over-stream).
//!
//! Only datagrams from the control connection's IP are taken (GOST's
//! `filteredPacketConn`); the client's port is learned from its first datagram
//! and later datagrams from another port are dropped (RFC 1928 lets the server
//! learn it; GOST instead answers whichever port spoke last). Fragments
//! (FRAG ≠ 0) are dropped, as RFC 1928 requires of a server that does not
//! reassemble (GOST passes them on as whole datagrams).

use super::socks5::{reply, transient, unmap, NameCache};
use crate::codec::addr::Addr;
use crate::codec::socks5::{self as s5, cmd, rep, Socks5Error};
use crate::codec::udptun::{self, UdpTunError};
use crate::framed::{read_frame, write_frame, FrameBuf};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::UdpSocket;
use tracing::debug;

/// GOST's `udpBufferSize` default and bounds (`handler/socks/v5/metadata.go`:
/// 4096, clamped to 512..64 KiB). Datagrams longer than the buffer arrive cut,
/// as in GOST.
pub const DEFAULT_BUFFER_SIZE: usize = 4096;

/// `udpBufferSize` as GOST reads it: unset or ≤ 0 → 4096, else within 512..65535.
pub fn buffer_size(configured: Option<i64>) -> usize {
    match configured {
        Some(n) if n > 0 => (n.min(65535) as usize).max(512),
        _ => DEFAULT_BUFFER_SIZE,
    }
}

/// Payload byte counters: client → targets, and the answers back.
pub struct Meters<'a> {
    pub to_targets: &'a (dyn Fn(u64) + Send + Sync),
    pub to_client: &'a (dyn Fn(u64) + Send + Sync),
}

/// The client-facing half of one association.
pub struct Association {
    sock: UdpSocket,
    client_ip: IpAddr,
    /// The client's address, fixed by its first datagram.
    client: OnceLock<SocketAddr>,
    buf_size: usize,
    dropped: AtomicU64,
}

impl Association {
    /// Where the client sends its datagrams.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Datagrams dropped so far: wrong source, fragments, bad headers.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn drop_one(&self, from: SocketAddr, why: &str) {
        self.dropped.fetch_add(1, Relaxed);
        debug!(client = %self.client_ip, "socks5 udp: dropped a datagram from {from}: {why}");
    }

    /// Waits for the next datagram from the client: its target and where its
    /// payload sits in `buf`. Anything else that arrives is dropped.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(Addr, Range<usize>)> {
        loop {
            let (n, from) = match self.sock.recv_from(buf).await {
                Ok(x) => x,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            };
            let from = unmap(from);
            if from.ip() != self.client_ip {
                self.drop_one(from, "not the client's IP");
                continue;
            }
            if *self.client.get_or_init(|| from) != from {
                self.drop_one(from, "not the port the association started from");
                continue;
            }
            let d = match udptun::decode_datagram(buf.get(..n).unwrap_or_default()) {
                Ok(d) => d,
                Err(e) => {
                    self.drop_one(from, &e.to_string());
                    continue;
                }
            };
            if d.frag != 0 {
                self.drop_one(from, "a fragment (FRAG ≠ 0; fragmentation is not supported)");
                continue;
            }
            return Ok((d.addr, d.payload));
        }
    }

    /// Sends `payload` to the client with `from` in its header. Before the
    /// client's first datagram there is nowhere to send it: dropped.
    pub async fn send(&self, from: &Addr, payload: &[u8]) -> io::Result<()> {
        let Some(client) = self.client.get() else { return Ok(()) };
        let mut out = Vec::with_capacity(udptun::MAX_DATAGRAM_HEADER_LEN + payload.len());
        udptun::encode_datagram(from, payload, &mut out);
        self.sock.send_to(&out, client).await.map(|_| ())
    }
}

/// Answers a UDP ASSOCIATE that passed the gates: binds a UDP socket on
/// `local_ip` (the IP the control connection reached; unspecified when the
/// transport hides it) and replies `00` with its address, or `01` if the bind
/// fails. `client_ip` is the control connection's peer.
pub async fn associate<S>(control: &mut S, local_ip: Option<IpAddr>, client_ip: IpAddr, buf_size: usize) -> Result<Association, Socks5Error>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let client_ip = unmap(SocketAddr::new(client_ip, 0)).ip();
    let bind_ip = match local_ip.map(|ip| unmap(SocketAddr::new(ip, 0)).ip()) {
        Some(ip) => ip,
        None if client_ip.is_ipv4() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let sock = match UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await {
        Ok(s) => s,
        Err(source) => {
            reply(control, rep::GENERAL_FAILURE, None).await?;
            return Err(Socks5Error::ListenFailed { cmd: s5::cmd_name(cmd::UDP_ASSOCIATE), addr: format!("{bind_ip}:0"), source });
        }
    };
    let bound = sock.local_addr()?;
    reply(control, rep::SUCCEEDED, Some(&Addr::from(bound))).await?;
    Ok(Association { sock, client_ip, client: OnceLock::new(), buf_size: buf_size.clamp(512, 65535), dropped: AtomicU64::new(0) })
}

/// Resolves once the client closed the control connection (or it failed).
/// Whatever the client sends on it meanwhile is read and thrown away, as GOST
/// does (`io.Copy(io.Discard, conn)`).
pub async fn control_closed<C: AsyncRead + Unpin>(mut control: C) {
    let mut sink = [0u8; 512];
    while let Ok(n) = control.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}

/// Relays without a chain: datagrams go from one socket of ours (dual-stack
/// where the machine has IPv6) to the targets their headers name; names are
/// resolved here (IPv4 first, as GOST's `resolvePacketConn`). Answers go back
/// with their source in the header. Ends when `control` closes.
pub async fn relay_direct<C>(control: C, assoc: &Association, meters: Meters<'_>) -> io::Result<()>
where
    C: AsyncRead + Unpin,
{
    let up = bind_any().await?;
    let v6 = up.local_addr()?.is_ipv6();
    let up = &up;
    let uplink = async {
        let mut buf = vec![0u8; assoc.buf_size];
        let mut names = NameCache::default();
        loop {
            let (target, range) = assoc.recv(&mut buf).await?;
            let Some(dst) = names.resolve(&target, v6).await else { continue };
            let payload = buf.get(range).unwrap_or_default();
            match up.send_to(payload, dst).await {
                Ok(n) => (meters.to_targets)(n as u64),
                Err(e) => debug!("socks5 udp: send to {dst} failed: {e}"),
            }
        }
    };
    let downlink = async {
        let mut buf = vec![0u8; assoc.buf_size];
        loop {
            let (n, from) = match up.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err::<(), io::Error>(e),
            };
            let payload = buf.get(..n).unwrap_or_default();
            // Counted before the send, as the UDP service does: once the client
            // holds the answer, the rule's counters already include it.
            (meters.to_client)(n as u64);
            if let Err(e) = assoc.send(&Addr::from(unmap(from)), payload).await {
                debug!("socks5 udp: answer to the client failed: {e}");
            }
        }
    };
    tokio::select! {
        _ = control_closed(control) => Ok(()),
        r = uplink => r,
        r = downlink => r,
    }
}

/// Relays through the service's chain: `stream` is the chain's UDP tunnel
/// (GOST's UDP-over-stream frames), each frame addressed to the datagram's
/// target; frames coming back carry the source that answered. Ends when
/// `control` closes or the chain closes the tunnel.
pub async fn relay_stream<C, S>(control: C, assoc: &Association, stream: S, meters: Meters<'_>) -> Result<(), UdpTunError>
where
    C: AsyncRead + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let uplink = async {
        let mut buf = vec![0u8; assoc.buf_size];
        loop {
            let (target, range) = assoc.recv(&mut buf).await?;
            let payload = buf.get(range).unwrap_or_default();
            // A stream frame cannot carry an empty datagram (codec::udptun).
            if payload.is_empty() {
                continue;
            }
            write_frame(&mut wr, &target, payload).await?;
            (meters.to_targets)(payload.len() as u64);
        }
    };
    let downlink = async {
        let mut fb = FrameBuf::new();
        while let Some((from, payload)) = read_frame(&mut rd, &mut fb).await? {
            (meters.to_client)(payload.len() as u64);
            if let Err(e) = assoc.send(&from, payload).await {
                debug!("socks5 udp: answer to the client failed: {e}");
            }
        }
        Ok::<(), UdpTunError>(())
    };
    tokio::select! {
        _ = control_closed(control) => Ok(()),
        r = uplink => r,
        r = downlink => r,
    }
}

async fn bind_any() -> io::Result<UdpSocket> {
    match UdpSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)).await {
        Ok(s) => Ok(s),
        Err(_) => UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_size_follows_gost() {
        assert_eq!(buffer_size(None), 4096);
        assert_eq!(buffer_size(Some(0)), 4096);
        assert_eq!(buffer_size(Some(-5)), 4096);
        assert_eq!(buffer_size(Some(100)), 512);
        assert_eq!(buffer_size(Some(9000)), 9000);
        assert_eq!(buffer_size(Some(1 << 20)), 65535);
    }

    #[tokio::test]
    async fn reply_names_the_bound_socket_on_the_reached_ip() {
        let mut out = Vec::new();
        let a = associate(&mut out, Some("::ffff:127.0.0.1".parse().unwrap()), "127.0.0.1".parse().unwrap(), 4096).await.unwrap();
        let bound = a.local_addr().unwrap();
        assert_eq!(bound.ip().to_string(), "127.0.0.1");
        let mut want = vec![5, 0, 0, 1, 127, 0, 0, 1];
        want.extend_from_slice(&bound.port().to_be_bytes());
        assert_eq!(out, want);
    }
}
