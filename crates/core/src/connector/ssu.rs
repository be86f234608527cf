//! Client side of GOST's `ssu` node (go-gost/x `connector/ss/udp`).
//!
//! - Datagram transport (the default `udp` dialer): [`SsuAssociation`], one
//!   Shadowsocks AEAD UDP packet per datagram, `salt | seal(ADDR | payload)`.
//! - Stream transport (`ssu+tls`, `ssu+ws`, … or a non-last hop): [`SsStream`]
//!   wraps the stream in a Shadowsocks AEAD (SIP004) stream and GOST's
//!   UDP-over-stream frames ([`crate::codec::udptun`], written with
//!   [`crate::framed::write_frame`]) travel inside it. GOST writes **no** target
//!   address at the start of that stream (`ss.ShadowConn(…, nil)`): every frame
//!   carries its own address, so the stream is not a standard Shadowsocks TCP
//!   relay that `ss-server` could serve.
//!
//! Without a cipher (empty method or password, or `none`) GOST sends the same
//! layouts unencrypted; `None` does that here.

use crate::codec::addr::{Addr, Host};
use crate::codec::ss::{decode_udp, encode_udp, SsCipher, SsError, StreamOpener, StreamSealer, MAX_CHUNK};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tracing::debug;

/// A UDP association through a Shadowsocks server: datagrams to any target go
/// out through one local socket connected to the server.
#[derive(Debug)]
pub struct SsuAssociation {
    sock: UdpSocket,
    cipher: Option<SsCipher>,
}

impl SsuAssociation {
    /// Wraps a socket already connected to the server.
    pub fn new(sock: UdpSocket, cipher: Option<SsCipher>) -> SsuAssociation {
        SsuAssociation { sock, cipher }
    }

    /// Binds a socket of the server's family on an ephemeral port and connects it.
    pub async fn connect(server: SocketAddr, cipher: Option<SsCipher>) -> io::Result<SsuAssociation> {
        let any = match server {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let sock = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
        sock.connect(server).await?;
        Ok(SsuAssociation::new(sock, cipher))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sends one datagram for `target`. GOST's connector resolves a host name on
    /// the client before sending (`net.ResolveUDPAddr`); the caller decides that,
    /// a name left in `target` goes out as ATYP 0x03 for the server to resolve.
    pub async fn send(&self, target: &Addr, payload: &[u8]) -> Result<(), SsError> {
        let mut pkt = Vec::with_capacity(payload.len() + 64);
        encode_udp(self.cipher.as_ref(), target, payload, &mut pkt)?;
        self.sock.send(&pkt).await?;
        Ok(())
    }

    /// The next answer: the address it came from and its payload. Datagrams that
    /// do not decrypt (a stray sender, a server with another key) are skipped.
    pub async fn recv(&self) -> Result<(Addr, Vec<u8>), SsError> {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = self.sock.recv(&mut buf).await?;
            match decode_udp(self.cipher.as_ref(), buf.get(..n).unwrap_or_default()) {
                Ok(v) => return Ok(v),
                Err(e) => debug!("ssu: dropped a {n}-byte datagram from the server: {e}"),
            }
        }
    }
}

/// Resolves a target the way GOST's connector does before sending: names become
/// an IP address (the first one found); an IP address stays as it is.
pub async fn resolve_target(target: &Addr) -> io::Result<Addr> {
    match &target.host {
        Host::Ip(_) => Ok(target.clone()),
        Host::Domain(name) => {
            let mut it = tokio::net::lookup_host((name.as_str(), target.port)).await?;
            let a = it.next().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name}: no address found")))?;
            Ok(Addr::ip(a.ip(), a.port()))
        }
    }
}

/// A Shadowsocks AEAD stream (SIP004) over `inner`, or `inner` as it is when
/// there is no cipher. Used by both ends of `ssu` over a stream transport.
pub struct SsStream<S> {
    inner: S,
    crypt: Option<Crypt>,
}

struct Crypt {
    sealer: StreamSealer,
    opener: StreamOpener,
    /// Sealed bytes accepted by `poll_write` but not yet written to `inner`.
    out: Vec<u8>,
    out_pos: usize,
    /// Decrypted bytes not yet handed to the reader.
    plain: Vec<u8>,
    plain_pos: usize,
    eof: bool,
}

/// Most plaintext one `poll_write` takes: bounds the sealed backlog.
const WRITE_MAX: usize = 4 * MAX_CHUNK;
const READ_MAX: usize = 16 * 1024;

impl<S> SsStream<S> {
    pub fn new(inner: S, cipher: Option<&SsCipher>) -> SsStream<S> {
        let crypt = cipher.map(|c| Crypt {
            sealer: StreamSealer::new(c),
            opener: StreamOpener::new(c),
            out: Vec::new(),
            out_pos: 0,
            plain: Vec::new(),
            plain_pos: 0,
            eof: false,
        });
        SsStream { inner, crypt }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

fn drain_out<S: AsyncWrite + Unpin>(inner: &mut S, c: &mut Crypt, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    while c.out_pos < c.out.len() {
        let n = ready!(Pin::new(&mut *inner).poll_write(cx, &c.out[c.out_pos..]))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        c.out_pos += n;
    }
    c.out.clear();
    c.out_pos = 0;
    Poll::Ready(Ok(()))
}

impl<S: AsyncRead + Unpin> AsyncRead for SsStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let Some(c) = me.crypt.as_mut() else { return Pin::new(&mut me.inner).poll_read(cx, buf) };
        loop {
            if let Some(rest) = c.plain.get(c.plain_pos..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..n]);
                c.plain_pos += n;
                return Poll::Ready(Ok(()));
            }
            if c.eof {
                return Poll::Ready(Ok(()));
            }
            if let Some(chunk) = c.opener.next_chunk().map_err(io::Error::from)? {
                c.plain = chunk;
                c.plain_pos = 0;
                continue;
            }
            let mut tmp = vec![0u8; c.opener.need().min(READ_MAX)];
            let mut rb = ReadBuf::new(&mut tmp);
            ready!(Pin::new(&mut me.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                if !c.opener.at_boundary() {
                    return Poll::Ready(Err(SsError::Truncated.into()));
                }
                c.eof = true;
                continue;
            }
            c.opener.push(rb.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SsStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let Some(c) = me.crypt.as_mut() else { return Pin::new(&mut me.inner).poll_write(cx, data) };
        ready!(drain_out(&mut me.inner, c, cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = data.len().min(WRITE_MAX);
        c.sealer.seal(&data[..n], &mut c.out);
        // The bytes are ours now; whatever `inner` does not take yet goes out on
        // the next write or flush.
        if let Poll::Ready(Err(e)) = drain_out(&mut me.inner, c, cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if let Some(c) = me.crypt.as_mut() {
            ready!(drain_out(&mut me.inner, c, cx))?;
        }
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if let Some(c) = me.crypt.as_mut() {
            ready!(drain_out(&mut me.inner, c, cx))?;
        }
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framed::{read_frame, write_frame, FrameBuf};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn udptun_frames_cross_an_encrypted_stream_in_small_pieces() {
        let c = SsCipher::new("aes-256-gcm", "pw", None).unwrap().unwrap();
        let (a, b) = tokio::io::duplex(5);
        let mut client = SsStream::new(a, Some(&c));
        let mut server = SsStream::new(b, Some(&c));
        let target = Addr::parse("192.168.1.1:53").unwrap();
        let w = tokio::spawn(async move {
            for i in 1..40usize {
                write_frame(&mut client, &target, &vec![i as u8; i * 100]).await.unwrap();
            }
            client.shutdown().await.unwrap();
        });
        let mut fb = FrameBuf::new();
        for i in 1..40usize {
            let (addr, p) = read_frame(&mut server, &mut fb).await.unwrap().unwrap();
            assert_eq!(addr.to_string(), "192.168.1.1:53");
            assert_eq!(p, &vec![i as u8; i * 100][..]);
        }
        assert!(read_frame(&mut server, &mut fb).await.unwrap().is_none());
        w.await.unwrap();
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_chunk_is_an_error_and_wrong_key_too() {
        let c = SsCipher::new("chacha20-ietf-poly1305", "pw", None).unwrap().unwrap();
        let mut wire = Vec::new();
        StreamSealer::new(&c).seal(b"hello world", &mut wire);
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(&wire[..wire.len() - 1]).await.unwrap();
        drop(a);
        let mut s = SsStream::new(b, Some(&c));
        let e = s.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("middle of an encrypted chunk"), "{e}");

        let other = SsCipher::new("chacha20-ietf-poly1305", "other", None).unwrap().unwrap();
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(&wire).await.unwrap();
        let mut s = SsStream::new(b, Some(&other));
        let e = s.read(&mut [0u8; 64]).await.unwrap_err();
        assert!(e.to_string().contains("could not decrypt"), "{e}");
    }
}
