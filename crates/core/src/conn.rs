//! A connected byte stream of any transport: plain TCP (kept as a `TcpStream` so
//! the data path can splice it), or anything wrapped around it — TLS, a relay
//! stream that frames its first bytes, later an SSH channel.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Any stream a connector or dialer can hand on.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

pub type BoxStream = Box<dyn AsyncStream>;

pub enum Conn {
    Tcp(TcpStream),
    /// Bytes already read put back in front (a peeked protocol byte, data that
    /// came with a handshake). Kept apart from `Boxed` so the data path can send
    /// the bytes on and then splice the socket.
    Prefixed(Box<Prefixed<Conn>>),
    /// A relay CONNECT whose answer is read at the first read (GOST's lazy
    /// relay); kept apart so the data path can check it and then splice.
    Relay(Box<crate::connector::relay::RelayStream<Conn>>),
    Boxed(BoxStream),
    /// An SSH session to an `sshd` node: not a byte stream itself; its connector
    /// opens channels on it (`direct-tcpip`, `tcpip-forward`).
    Ssh(std::sync::Arc<crate::ssh::client::SshSession>),
}

impl Conn {
    pub fn boxed<S: AsyncStream + 'static>(s: S) -> Conn {
        Conn::Boxed(Box::new(s))
    }

    /// `conn` with `bytes` read in front of it (no wrapper when there are none).
    pub fn prefixed(bytes: Vec<u8>, conn: Conn) -> Conn {
        if bytes.is_empty() {
            conn
        } else {
            Conn::Prefixed(Box::new(Prefixed::new(bytes, conn)))
        }
    }

    /// `conn` with a relay answer still to read (and check) before its payload.
    pub fn with_relay_answer(conn: Conn, pending: Option<crate::connector::relay::PendingResponse>) -> Conn {
        Conn::boxed(RelayBack { inner: conn, pending })
    }

    /// The plain socket under this connection, if there is one, with what the
    /// data path must do before piping it: send bytes already read on, or read
    /// and check a relay answer. Wrapped transports (TLS) stay as they are.
    pub fn into_tcp(self) -> Result<(TcpStream, Pre), Conn> {
        match self {
            Conn::Tcp(s) => Ok((s, Pre::None)),
            Conn::Prefixed(p) => {
                let p = *p;
                let (rest, inner) = p.into_parts();
                match inner {
                    // A prefix in front of a pending relay answer cannot happen
                    // (the prefix is client data); only a plain socket is unwrapped.
                    Conn::Tcp(s) => Ok((s, Pre::Deliver(rest))),
                    other => Err(Conn::prefixed(rest, other)),
                }
            }
            Conn::Relay(r) => match r.into_parts() {
                Ok((Conn::Tcp(s), None)) => Ok((s, Pre::None)),
                Ok((Conn::Tcp(s), Some(pending))) => Ok((s, Pre::RelayAnswer(pending))),
                // Not a plain socket underneath (TLS): keep reading the answer
                // in front of the payload, through the wrapper.
                Ok((other, pending)) => Err(Conn::with_relay_answer(other, pending)),
                Err(r) => Err(Conn::Relay(Box::new(r))),
            },
            other => Err(other),
        }
    }

    /// This end's address when it is a plain socket (a proxy's reply reports it).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Conn::Tcp(s) => s.local_addr().ok(),
            Conn::Prefixed(p) => p.inner.local_addr(),
            Conn::Relay(r) => r.get_ref().local_addr(),
            Conn::Boxed(_) | Conn::Ssh(_) => None,
        }
    }
}

/// What comes before the payload on a socket taken out of its wrapper.
#[derive(Debug)]
pub enum Pre {
    None,
    /// Bytes already read from this socket, to pass on first.
    Deliver(Vec<u8>),
    /// A relay answer to read from this socket and check before any payload.
    RelayAnswer(crate::connector::relay::PendingResponse),
}

/// A relay stream over a wrapped transport, put back together after `into_tcp`
/// found no plain socket under it.
struct RelayBack {
    inner: Conn,
    pending: Option<crate::connector::relay::PendingResponse>,
}

impl AsyncRead for RelayBack {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        while let Some(p) = &mut me.pending {
            let need = p.need().map_err(io::Error::from)?;
            if need == 0 {
                p.finish().map_err(io::Error::from)?;
                me.pending = None;
                break;
            }
            let mut tmp = [0u8; 512];
            let mut rb = ReadBuf::new(&mut tmp[..need.min(512)]);
            std::task::ready!(Pin::new(&mut me.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("relay: {} closed without an answer", p.server))));
            }
            p.got.extend_from_slice(rb.filled());
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RelayBack {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conn::Tcp(s) => write!(f, "Conn::Tcp({:?})", s.peer_addr().ok()),
            Conn::Prefixed(_) => f.write_str("Conn::Prefixed"),
            Conn::Relay(_) => f.write_str("Conn::Relay"),
            Conn::Boxed(_) => f.write_str("Conn::Boxed"),
            Conn::Ssh(_) => f.write_str("Conn::Ssh"),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Prefixed(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Relay(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Boxed(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Ssh(_) => Poll::Ready(Err(not_a_stream())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Prefixed(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Relay(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Boxed(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Ssh(_) => Poll::Ready(Err(not_a_stream())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Prefixed(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Relay(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Boxed(s) => Pin::new(s).poll_flush(cx),
            Conn::Ssh(_) => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Prefixed(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Relay(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Boxed(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Ssh(_) => Poll::Ready(Ok(())),
        }
    }
    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Prefixed(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Conn::Relay(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Conn::Boxed(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Ssh(_) => Poll::Ready(Err(not_a_stream())),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Tcp(s) => s.is_write_vectored(),
            Conn::Prefixed(s) => s.is_write_vectored(),
            Conn::Relay(_) => false,
            Conn::Boxed(s) => s.is_write_vectored(),
            Conn::Ssh(_) => false,
        }
    }
}

/// A stream with bytes already read from it (a peeked protocol byte, data that
/// arrived with a handshake) put back in front.
pub struct Prefixed<S> {
    pre: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(pre: Vec<u8>, inner: S) -> Self {
        Prefixed { pre, pos: 0, inner }
    }

    /// The bytes not yet read and the stream.
    pub fn into_parts(self) -> (Vec<u8>, S) {
        let mut pre = self.pre;
        pre.drain(..self.pos.min(pre.len()));
        (pre, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.pos < me.pre.len() {
            let n = (me.pre.len() - me.pos).min(buf.remaining());
            buf.put_slice(&me.pre[me.pos..me.pos + n]);
            me.pos += n;
            if me.pos == me.pre.len() {
                me.pre = Vec::new();
                me.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// An sshd node used as if it were a stream (a later hop behind it, or a
/// protocol connector in front of it): GOST's `ssh: invalid connection`.
fn not_a_stream() -> io::Error {
    io::Error::other("ssh: invalid connection (an sshd node is reached through its channels; it must be the first hop and its own connector)")
}
